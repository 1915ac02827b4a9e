"""Initial schema: organisations, users, sites, products, lots and lineage, events, inspections, documents,
recalls, sensor batches and readings, chain bookkeeping, API tokens and idempotency records.

Written out by hand from the models of the time (``supply_chain/store/models.py``), never importing them:
this script must keep creating this schema whatever the models become. ``tests/integration/test_store.py``
checks that migrating an empty database to head gives exactly what the models declare.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    """JSON on SQLite, JSONB on PostgreSQL."""
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id64() -> sa.types.TypeEngine:
    """64-bit keys on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.types.TypeEngine:
    """Timezone-aware timestamps (the models' UTCDateTime stores this)."""
    return sa.DateTime(timezone=True)


def _quantity() -> sa.types.TypeEngine:
    return sa.Numeric(precision=18, scale=6)


def _hash() -> sa.types.TypeEngine:
    return sa.String(length=66)


def _address() -> sa.types.TypeEngine:
    return sa.String(length=42)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    # --- chain bookkeeping ------------------------------------------------------------------------
    op.create_table(
        "chain_deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract_name", sa.String(length=100), nullable=False),
        sa.Column("address", _address(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("deployed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_deployments")),
        sa.UniqueConstraint(
            "chain_id", "contract_name", name=op.f("uq_chain_deployments_chain_id_contract_name")
        ),
    )
    op.create_table(
        "pending_transactions",
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("sender", _address(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("function", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", name=op.f("pk_pending_transactions")),
    )
    op.create_table(
        "indexer_cursors",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_cursors")),
    )

    # --- organisations and what they own ----------------------------------------------------------
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("roles", _json(), nullable=False),
        sa.Column("chain_address", _address(), nullable=False),
        sa.Column("encrypted_key", sa.Text(), nullable=False),
        sa.Column("gs1_company_prefix", sa.String(length=12), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("chain_address", name=op.f("uq_organisations_chain_address")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("last_used_at", _utc(), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f("ck_api_tokens_scope")),
        _fk("organisation_id", "api_tokens", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    _index("api_tokens", "organisation_id")
    op.create_table(
        "idempotency_records",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=128), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        _fk("organisation_id", "idempotency_records", "organisations"),
        sa.PrimaryKeyConstraint("organisation_id", "key", name=op.f("pk_idempotency_records")),
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.CheckConstraint("length(gln) = 13", name=op.f("ck_locations_gln_length")),
        sa.CheckConstraint(
            "latitude IS NULL OR (latitude >= -90 AND latitude <= 90)",
            name=op.f("ck_locations_latitude_range"),
        ),
        sa.CheckConstraint(
            "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)",
            name=op.f("ck_locations_longitude_range"),
        ),
        _fk("organisation_id", "locations", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
        sa.UniqueConstraint("gln", name=op.f("uq_locations_gln")),
    )
    _index("locations", "organisation_id")
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=True),
        sa.Column("on_food_traceability_list", sa.Boolean(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.CheckConstraint("length(gtin) = 14", name=op.f("ck_products_gtin_length")),
        _fk("organisation_id", "products", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("gtin", name=op.f("uq_products_gtin")),
    )
    _index("products", "organisation_id")
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_login_at", _utc(), nullable=True),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        _fk("organisation_id", "users", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    _index("users", "organisation_id")

    # --- lots and lineage ---------------------------------------------------------------------------
    op.create_table(
        "lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=False),
        sa.Column("lot_id", _hash(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("creator_org_id", sa.Integer(), nullable=False),
        sa.Column("custodian_org_id", sa.Integer(), nullable=False),
        sa.Column("pending_custodian_org_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("quantity", _quantity(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("initial_quantity", _quantity(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("pack_date", sa.Date(), nullable=True),
        sa.Column("harvest_date", sa.Date(), nullable=True),
        sa.Column("origin_location_id", sa.Integer(), nullable=True),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("head_hash", _hash(), nullable=False),
        sa.Column("verification_state", sa.String(length=16), nullable=True),
        sa.Column("verification_detail", sa.Text(), nullable=True),
        sa.Column("verified_at", _utc(), nullable=True),
        sa.CheckConstraint("length(gtin) = 14", name=op.f("ck_lots_gtin_length")),
        sa.CheckConstraint("length(lot_code) BETWEEN 1 AND 20", name=op.f("ck_lots_lot_code_length")),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'in_transit', 'held', 'recalled', 'closed')", name=op.f("ck_lots_status")
        ),
        sa.CheckConstraint(
            "verification_state IS NULL OR "
            "verification_state IN ('verified', 'tampered', 'pending', 'unverifiable')",
            name=op.f("ck_lots_verification_state"),
        ),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_lots_quantity_not_negative")),
        sa.CheckConstraint("initial_quantity > 0", name=op.f("ck_lots_initial_quantity_positive")),
        sa.CheckConstraint("event_count >= 0", name=op.f("ck_lots_event_count_not_negative")),
        _fk("product_id", "lots", "products"),
        _fk("creator_org_id", "lots", "organisations"),
        _fk("custodian_org_id", "lots", "organisations"),
        _fk("pending_custodian_org_id", "lots", "organisations"),
        _fk("origin_location_id", "lots", "locations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
        sa.UniqueConstraint("gtin", "lot_code", name=op.f("uq_lots_gtin_lot_code")),
        sa.UniqueConstraint("lot_id", name=op.f("uq_lots_lot_id")),
    )
    for column in ("product_id", "creator_org_id", "custodian_org_id", "pending_custodian_org_id"):
        _index("lots", column)
    op.create_table(
        "lot_inputs",
        sa.Column("output_lot_id", sa.Integer(), nullable=False),
        sa.Column("input_lot_id", sa.Integer(), nullable=False),
        sa.Column("quantity", _quantity(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.CheckConstraint("output_lot_id <> input_lot_id", name=op.f("ck_lot_inputs_not_own_input")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_lot_inputs_quantity_positive")),
        _fk("output_lot_id", "lot_inputs", "lots"),
        _fk("input_lot_id", "lot_inputs", "lots"),
        # the primary key (output first) serves backward walks, the index below forward walks
        sa.PrimaryKeyConstraint("output_lot_id", "input_lot_id", name=op.f("pk_lot_inputs")),
    )
    _index("lot_inputs", "input_lot_id")

    # --- events ---------------------------------------------------------------------------------
    op.create_table(
        "events",
        sa.Column("id", _id64(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("actor_org_id", sa.Integer(), nullable=False),
        sa.Column("actor_address", _address(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("payload_hash", _hash(), nullable=False),
        sa.Column("visibility", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("tx_hash", _hash(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("log_index", sa.Integer(), nullable=True),
        sa.Column("head_after", _hash(), nullable=True),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("recorded_at", _utc(), nullable=False),
        sa.Column("confirmed_at", _utc(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint("seq IS NULL OR seq >= 1", name=op.f("ck_events_seq_positive")),
        sa.CheckConstraint("status IN ('pending', 'confirmed', 'failed')", name=op.f("ck_events_status")),
        _fk("lot_id", "events", "lots"),
        _fk("actor_org_id", "events", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        # also the index for "events of a lot"
        sa.UniqueConstraint("lot_id", "seq", name=op.f("uq_events_lot_id_seq")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_events_idempotency_key")),
    )
    for column in ("actor_org_id", "status", "tx_hash", "batch_id"):
        _index("events", column)
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", _id64(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("inspector_org_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint("outcome IN ('pass', 'fail', 'conditional')", name=op.f("ck_inspections_outcome")),
        _fk("event_id", "inspections", "events"),
        _fk("lot_id", "inspections", "lots"),
        _fk("inspector_org_id", "inspections", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("event_id", name=op.f("uq_inspections_event_id")),
    )
    _index("inspections", "lot_id")
    _index("inspections", "inspector_org_id")
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inspection_id", sa.Integer(), nullable=True),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("uploader_org_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_path", sa.String(length=500), nullable=False),
        sa.Column("uploaded_at", _utc(), nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_documents_size_not_negative")),
        _fk("inspection_id", "documents", "inspections"),
        _fk("lot_id", "documents", "lots"),
        _fk("uploader_org_id", "documents", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    _index("documents", "inspection_id")
    _index("documents", "lot_id")
    op.create_table(
        "recalls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("event_id", _id64(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recall_class", sa.String(length=3), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("issuer_org_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", _utc(), nullable=False),
        sa.CheckConstraint("recall_class IN ('I', 'II', 'III')", name=op.f("ck_recalls_recall_class")),
        _fk("lot_id", "recalls", "lots"),
        _fk("event_id", "recalls", "events"),
        _fk("issuer_org_id", "recalls", "organisations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recalls")),
        sa.UniqueConstraint("event_id", name=op.f("uq_recalls_event_id")),
    )
    _index("recalls", "lot_id")

    # --- cold chain ---------------------------------------------------------------------------------
    op.create_table(
        "sensor_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("event_id", _id64(), nullable=False),
        sa.Column("merkle_root", _hash(), nullable=False),
        sa.Column("reading_count", sa.Integer(), nullable=False),
        sa.Column("period_start", _utc(), nullable=False),
        sa.Column("period_end", _utc(), nullable=False),
        sa.Column("min_temp", sa.Float(), nullable=False),
        sa.Column("max_temp", sa.Float(), nullable=False),
        sa.CheckConstraint("reading_count > 0", name=op.f("ck_sensor_batches_reading_count_positive")),
        sa.CheckConstraint("period_end >= period_start", name=op.f("ck_sensor_batches_period_order")),
        sa.CheckConstraint("min_temp <= max_temp", name=op.f("ck_sensor_batches_temp_order")),
        _fk("lot_id", "sensor_batches", "lots"),
        _fk("event_id", "sensor_batches", "events"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_batches")),
        sa.UniqueConstraint("event_id", name=op.f("uq_sensor_batches_event_id")),
    )
    _index("sensor_batches", "lot_id")
    op.create_table(
        "sensor_readings",
        sa.Column("id", _id64(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", _utc(), nullable=False),
        sa.Column("temperature_c", sa.Float(), nullable=False),
        sa.Column("humidity", sa.Float(), nullable=True),
        sa.Column("sensor_id", sa.String(length=100), nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=False),
        sa.CheckConstraint("leaf_index >= 0", name=op.f("ck_sensor_readings_leaf_index_not_negative")),
        _fk("batch_id", "sensor_readings", "sensor_batches"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensor_readings")),
        # also the index for "readings of a batch"
        sa.UniqueConstraint("batch_id", "leaf_index", name=op.f("uq_sensor_readings_batch_id_leaf_index")),
    )


def downgrade() -> None:
    # children before parents; dropping a table drops its indexes
    for table in (
        "sensor_readings",
        "sensor_batches",
        "recalls",
        "documents",
        "inspections",
        "events",
        "lot_inputs",
        "lots",
        "users",
        "products",
        "locations",
        "idempotency_records",
        "api_tokens",
        "organisations",
        "indexer_cursors",
        "pending_transactions",
        "chain_deployments",
    ):
        op.drop_table(table)
