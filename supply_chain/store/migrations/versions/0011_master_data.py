"""Master data over the API (issue 10): an organisation may hold several GS1 company prefixes.

- ``company_prefixes``: the prefixes added after the first (which stays in ``organisations.gs1_company_prefix``).

Written out by hand, never importing the models (see 0001).

Revision ID: 0011_master_data
Revises: 0010_flat_queries
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_master_data"
down_revision: str | Sequence[str] | None = "0010_flat_queries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "company_prefixes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(prefix) >= 4 AND length(prefix) <= 12", name=op.f("ck_company_prefixes_prefix_length")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_company_prefixes_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_prefixes")),
        sa.UniqueConstraint("prefix", name=op.f("uq_company_prefixes_prefix")),
    )
    op.create_index(op.f("ix_company_prefixes_organisation_id"), "company_prefixes", ["organisation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_company_prefixes_organisation_id"), table_name="company_prefixes")
    op.drop_table("company_prefixes")
