"""The faithful EPCIS event repository (issue 10).

- ``epcis_events``: every event of a captured EPCIS document as it was sent (``body``, with the document's
  ``@context``), its CBV 2.0 event hash ID, the columns the standard query parameters ask for, and its Merkle
  leaf; ``epcis_event_epcs``: the identifiers each event names (``MATCH_epc``, ``MATCH_anyEPC``, ...).
- ``epcis_anchors``: per capture job, the Merkle root of its events and the transaction that anchors it.

Written out by hand, never importing the models (see 0001).

Revision ID: 0016_epcis_repo
Revises: 0015_bulk_import
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016_epcis_repo"
down_revision: str | Sequence[str] | None = "0015_bulk_import"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _large() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "epcis_events",
        sa.Column("id", _large(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("capture_job_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=64), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=500), nullable=True),
        sa.Column("hash_id", sa.String(length=120), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=True),
        sa.Column("biz_step", sa.String(length=300), nullable=True),
        sa.Column("disposition", sa.String(length=300), nullable=True),
        sa.Column("read_point", sa.String(length=300), nullable=True),
        sa.Column("biz_location", sa.String(length=300), nullable=True),
        sa.Column("has_error_declaration", sa.Boolean(), nullable=False),
        sa.Column("declared_erroneous_by_id", _large(), nullable=True),
        sa.Column("body", _json(), nullable=False),
        sa.Column("context", _json(), nullable=True),
        sa.Column("leaf", sa.String(length=66), nullable=False),
        sa.CheckConstraint("state IN ('pending', 'captured', 'failed')", name=op.f("ck_epcis_events_state")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_epcis_events_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["capture_job_id"], ["capture_jobs.id"], name=op.f("fk_epcis_events_capture_job_id_capture_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["declared_erroneous_by_id"],
            ["epcis_events.id"],
            name=op.f("fk_epcis_events_declared_erroneous_by_id_epcis_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_events")),
        sa.UniqueConstraint("capture_job_id", "position", name=op.f("uq_epcis_events_capture_job_id_position")),
    )
    for column in (
        "capture_job_id",
        "event_type",
        "event_id",
        "hash_id",
        "event_time",
        "record_time",
        "biz_step",
        "disposition",
        "read_point",
        "biz_location",
    ):
        op.create_index(op.f(f"ix_epcis_events_{column}"), "epcis_events", [column])
    op.create_index("ix_epcis_events_org_time", "epcis_events", ["organisation_id", "event_time"])
    op.create_table(
        "epcis_event_epcs",
        sa.Column("id", _large(), nullable=False),
        sa.Column("event_pk", _large(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("epc", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_pk"], ["epcis_events.id"], name=op.f("fk_epcis_event_epcs_event_pk_epcis_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_event_epcs")),
    )
    op.create_index(op.f("ix_epcis_event_epcs_event_pk"), "epcis_event_epcs", ["event_pk"])
    op.create_index(op.f("ix_epcis_event_epcs_epc"), "epcis_event_epcs", ["epc"])
    op.create_table(
        "epcis_anchors",
        sa.Column("capture_job_id", sa.Integer(), nullable=False),
        sa.Column("merkle_root", sa.String(length=66), nullable=False),
        sa.Column("leaf_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=42), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["capture_job_id"], ["capture_jobs.id"], name=op.f("fk_epcis_anchors_capture_job_id_capture_jobs")
        ),
        sa.PrimaryKeyConstraint("capture_job_id", name=op.f("pk_epcis_anchors")),
    )


def downgrade() -> None:
    op.drop_table("epcis_anchors")
    op.drop_index(op.f("ix_epcis_event_epcs_epc"), table_name="epcis_event_epcs")
    op.drop_index(op.f("ix_epcis_event_epcs_event_pk"), table_name="epcis_event_epcs")
    op.drop_table("epcis_event_epcs")
    op.drop_table("epcis_events")
