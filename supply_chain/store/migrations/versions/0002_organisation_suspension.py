"""Organisation suspension: when, why and by whom an organisation was suspended, the roles it held, and a session
epoch that ends its users' browser sessions.

Written out by hand, never importing the models (see 0001). Plain ``ADD COLUMN``s on every backend: SQLite can
add a nullable column with an inline ``REFERENCES`` in place, so ``organisations`` (which most tables reference)
is not copied and dropped by batch mode, which ``PRAGMA foreign_keys=ON`` would refuse on a database with data.
The downgrade does use batch mode on SQLite (it cannot drop a column that a constraint names).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUSPENSION_COLUMNS = ("suspended_at", "suspended_reason", "suspended_roles", "suspended_by_id", "session_epoch")


def upgrade() -> None:
    op.add_column("organisations", sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("organisations", sa.Column("suspended_reason", sa.Text(), nullable=True))
    op.add_column(
        "organisations",
        sa.Column(
            "suspended_roles",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
    )
    fk_name = op.f("fk_organisations_suspended_by_id_organisations")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a constraint only inline with its column (and keeps no name for it)
        op.add_column(
            "organisations",
            sa.Column("suspended_by_id", sa.Integer(), sa.ForeignKey("organisations.id", name=fk_name)),
            inline_references=True,
        )
    else:
        op.add_column("organisations", sa.Column("suspended_by_id", sa.Integer(), nullable=True))
        op.create_foreign_key(fk_name, "organisations", "organisations", ["suspended_by_id"], ["id"])
    op.add_column("organisations", sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("organisations") as batch:
        for column in reversed(_SUSPENSION_COLUMNS):
            batch.drop_column(column)
