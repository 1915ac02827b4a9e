"""The scan page's cache key (issue 11, "The scan page"): ``lots.revision``, a counter every update of a lot's row
moves, summed over a lineage; ``ix_events_unconfirmed_lot_id`` (``lot_id, id WHERE status <> 'confirmed'``), a
lineage's pending and failed events found per lot.

Written out by hand, never importing the models (see 0001).

Revision ID: 0013_scan_cache
Revises: 0012_i18n
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_scan_cache"
down_revision: str | Sequence[str] | None = "0012_i18n"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UNCONFIRMED = sa.text("status <> 'confirmed'")


def upgrade() -> None:
    with op.batch_alter_table("lots") as batch:
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(
        "ix_events_unconfirmed_lot_id",
        "events",
        ["lot_id", "id"],
        sqlite_where=UNCONFIRMED,
        postgresql_where=UNCONFIRMED,
    )


def downgrade() -> None:
    op.drop_index("ix_events_unconfirmed_lot_id", table_name="events")
    with op.batch_alter_table("lots") as batch:
        batch.drop_column("revision")
