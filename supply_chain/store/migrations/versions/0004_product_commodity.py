"""The commodity and variety a product defines: events on its lots fill them in and may not name others.

Written out by hand, never importing the models (see 0001); plain ``ADD COLUMN``s as in 0002.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("products", sa.Column("commodity", sa.String(length=100), nullable=True))
    op.add_column("products", sa.Column("variety", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.drop_column("variety")
        batch.drop_column("commodity")
