"""Salted commitments for the fields of an event that are not public (issue 9, item 7).

- ``events.hash_scheme``: how ``payload_hash`` was computed. Every event already stored was hashed whole
  (``keccak256(JCS(payload))``), scheme 1, which is what the server default gives the existing rows; new
  events are written under scheme 2 (docs/hashing.md section 6).
- ``events.salt``: the 32 random bytes a scheme-2 event derives each sealed field's salt from; NULL for
  scheme 1.

Written out by hand, never importing the models (see 0001); plain ``ADD COLUMN``s as in 0002, and plain
``DROP COLUMN``s as in 0005 (neither column has a constraint or an index).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("events", sa.Column("hash_scheme", sa.SmallInteger(), server_default="1", nullable=False))
    op.add_column("events", sa.Column("salt", sa.String(length=66), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "salt")
    op.drop_column("events", "hash_scheme")
