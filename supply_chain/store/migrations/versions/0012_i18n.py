"""A user's language (issue 13, "Languages"): ``users.language`` holds the Babel locale the user chose for pages
and e-mails (``en``, ``zh_Hans``); NULL follows the browser's ``Accept-Language``.

Written out by hand, never importing the models (see 0001).

Revision ID: 0012_i18n
Revises: 0011_master_data
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_i18n"
down_revision: str | Sequence[str] | None = "0011_master_data"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
