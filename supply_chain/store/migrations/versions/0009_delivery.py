"""Outbound delivery of notifications (issue 12): e-mail and signed webhooks, with retries and a log.

- ``organisations.notification_email``: where an organisation's notices go by e-mail;
- ``webhook_endpoints``: an organisation's endpoints, their signing secret sealed under the KEK;
- ``deliveries``: the outbox, one row per notice and channel, claimed by a worker with a lease;
- ``delivery_attempts``: every try, with the HTTP status or SMTP error and the next try.

Written out by hand, never importing the models (see 0001).

Revision ID: 0009_delivery
Revises: 0008_recall_lifecycle
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_delivery"
down_revision: str | Sequence[str] | None = "0008_recall_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _large() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("organisations", sa.Column("notification_email", sa.String(length=1000), nullable=True))
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("key_encryption_id", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_webhook_endpoints_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(op.f("ix_webhook_endpoints_organisation_id"), "webhook_endpoints", ["organisation_id"])
    op.create_table(
        "deliveries",
        sa.Column("id", _large(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=2000), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=True),
        sa.Column("lease_until", _utc(), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("delivered_at", _utc(), nullable=True),
        sa.CheckConstraint("channel IN ('email', 'webhook')", name=op.f("ck_deliveries_channel")),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'delivered', 'failed', 'not_configured', 'cancelled')",
            name=op.f("ck_deliveries_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_deliveries_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"], name=op.f("fk_deliveries_endpoint_id_webhook_endpoints")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("uid", name=op.f("uq_deliveries_uid")),
    )
    op.create_index(op.f("ix_deliveries_organisation_id"), "deliveries", ["organisation_id"])
    op.create_index(op.f("ix_deliveries_endpoint_id"), "deliveries", ["endpoint_id"])
    op.create_index(op.f("ix_deliveries_status"), "deliveries", ["status"])
    op.create_index(op.f("ix_deliveries_next_attempt_at"), "deliveries", ["next_attempt_at"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", _large(), nullable=False),
        sa.Column("delivery_id", _large(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("attempted_at", _utc(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_delivery_attempts_delivery_id_deliveries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    op.create_index(op.f("ix_delivery_attempts_delivery_id"), "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_attempts_delivery_id"), table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    for name in ("next_attempt_at", "status", "endpoint_id", "organisation_id"):
        op.drop_index(op.f(f"ix_deliveries_{name}"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_webhook_endpoints_organisation_id"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
    with op.batch_alter_table("organisations") as batch:
        batch.drop_column("notification_email")
