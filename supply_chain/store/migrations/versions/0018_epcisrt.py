"""A Lotline export captured by a second instance on the same chain (issue 10): the lots and events it
holds become lot-model rows there.

- ``events.disclosure``: for an event whose payload this store holds only in part (the fields a Lotline
  export showed), the proof that came with them (``lotline:proof``: the public part, the salted commitments,
  the salts of the fields shown): with it the shown fields are re-hashed to the chain's ``dataHash`` without
  the event salt. Null for events written here.
- ``organisations.known_from_chain``: an organisation this instance knows only from the chain (the signer,
  creator or custodian of such a lot): it holds no key here, no user and no token, and acts in nothing.

Written out by hand, never importing the models (see 0001).

Revision ID: 0018_epcisrt
Revises: 0017_epcisspan
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018_epcisrt"
down_revision: str | Sequence[str] | None = "0017_epcisspan"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events",
        sa.Column("disclosure", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
    )
    op.add_column(
        "organisations",
        sa.Column("known_from_chain", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("organisations", "known_from_chain")
    op.drop_column("events", "disclosure")
