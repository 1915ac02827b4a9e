"""Documents spanning organisations (issue 10): whose event a stored EPCIS event is when it is not the
capturer's own.

- ``epcis_events.attribution``: for an event of another organisation, the party it is attributed to and how
  (``source`` ``location``: the owner of its place, reported by the capturer; ``chain``: the signer of the
  on-chain event it was matched to). Null for the capturer's own events.

Written out by hand, never importing the models (see 0001).

Revision ID: 0017_epcisspan
Revises: 0016_epcis_repo
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_epcisspan"
down_revision: str | Sequence[str] | None = "0016_epcis_repo"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "epcis_events",
        sa.Column("attribution", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("epcis_events", "attribution")
