"""Indexes that match the hot queries (issue 11, "queries that stay flat").

- ``ix_events_status`` becomes partial (``WHERE status <> 'confirmed'``): nearly every event is confirmed, and
  SQLite chose the plain index for every ``status = 'confirmed'`` filter, reading most of the table through
  it. The partial one still serves the look-ups of pending and failed rows.
- ``ix_events_confirmed_kind`` (``kind, lot_id WHERE status = 'confirmed'``): the rare kinds an
  organisation's record counts (holds, recalls) without reading every event of its lots.
- ``ix_lots_creator_org_id_status`` replaces ``ix_lots_creator_org_id``: lots an organisation made, by status,
  counted from the index alone; ``ix_lots_held`` (``id WHERE status = 'held'``): the held lots (oversight),
  newest first, without reading every lot.

SQLite's statistics are kept by ``store.db.refresh_statistics`` (at start and in the maintenance pass).

Written out by hand, never importing the models (see 0001).

Revision ID: 0010_flat_queries
Revises: 0009_delivery
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_flat_queries"
down_revision: str | Sequence[str] | None = "0009_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIRMED = sa.text("status = 'confirmed'")
UNCONFIRMED = sa.text("status <> 'confirmed'")
HELD = sa.text("status = 'held'")


def upgrade() -> None:
    op.drop_index("ix_events_status", table_name="events")
    op.create_index("ix_events_status", "events", ["status"], sqlite_where=UNCONFIRMED, postgresql_where=UNCONFIRMED)
    op.create_index(
        "ix_events_confirmed_kind",
        "events",
        ["kind", "lot_id"],
        sqlite_where=CONFIRMED,
        postgresql_where=CONFIRMED,
    )
    op.drop_index("ix_lots_creator_org_id", table_name="lots")
    op.create_index("ix_lots_creator_org_id_status", "lots", ["creator_org_id", "status"])
    op.create_index("ix_lots_held", "lots", ["id"], sqlite_where=HELD, postgresql_where=HELD)


def downgrade() -> None:
    op.drop_index("ix_lots_held", table_name="lots")
    op.drop_index("ix_lots_creator_org_id_status", table_name="lots")
    op.create_index("ix_lots_creator_org_id", "lots", ["creator_org_id"])
    op.drop_index("ix_events_confirmed_kind", table_name="events")
    op.drop_index("ix_events_status", table_name="events")
    op.create_index("ix_events_status", "events", ["status"])
