"""``lots.revision``: a counter each change to a lot (its row, events, inspections, sensor batches) moves, so the
scan page can be cached under the sum of its lineage's revisions (issue 11, "The scan page").

Written out by hand, never importing the models (see 0001).

Revision ID: 0011_scan_cache
Revises: 0010_flat_queries
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_scan_cache"
down_revision: str | Sequence[str] | None = "0010_flat_queries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lots") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("lots") as batch:
        batch.drop_column("revision")
