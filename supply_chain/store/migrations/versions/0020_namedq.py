"""Named EPCIS queries (issue 10): ``epcis_named_queries``, the standard query parameters an organisation
stored under a name (the REST binding's ``/queries``), unique per organisation; ``epcis_subscriptions``, the
webhook subscriptions to them (the client's signature token sealed under the KEK).

Written out by hand, never importing the models (see 0001).

Revision ID: 0020_namedq
Revises: 0019_epcisquery
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020_namedq"
down_revision: str | Sequence[str] | None = "0019_epcisquery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "epcis_named_queries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("query", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_epcis_named_queries_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_named_queries")),
        sa.UniqueConstraint("organisation_id", "name", name=op.f("uq_epcis_named_queries_organisation_id_name")),
    )
    op.create_table(
        "epcis_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("query_id", sa.Integer(), nullable=False),
        sa.Column("dest", sa.String(length=2000), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("sealed_token", sa.Text(), nullable=True),
        sa.Column("key_encryption_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_epcis_subscriptions_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["query_id"], ["epcis_named_queries.id"], name=op.f("fk_epcis_subscriptions_query_id_epcis_named_queries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_subscriptions")),
        sa.UniqueConstraint("uid", name=op.f("uq_epcis_subscriptions_uid")),
    )
    op.create_index(op.f("ix_epcis_subscriptions_query_id"), "epcis_subscriptions", ["query_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_epcis_subscriptions_query_id"), table_name="epcis_subscriptions")
    op.drop_table("epcis_subscriptions")
    op.drop_table("epcis_named_queries")
