"""The lot a recall started from, for a recalled lot (the chain's `recallSourceOf`, indexed from `LotRecalled`).

Written out by hand, never importing the models (see 0001); a plain ``ADD COLUMN`` as in 0002.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    fk_name = op.f("fk_lots_recall_source_id_lots")
    if op.get_bind().dialect.name == "sqlite":
        op.add_column(
            "lots",
            sa.Column("recall_source_id", sa.Integer(), sa.ForeignKey("lots.id", name=fk_name)),
            inline_references=True,
        )
    else:
        op.add_column("lots", sa.Column("recall_source_id", sa.Integer(), nullable=True))
        op.create_foreign_key(fk_name, "lots", "lots", ["recall_source_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("lots") as batch:
        batch.drop_column("recall_source_id")
