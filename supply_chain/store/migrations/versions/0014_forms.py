"""Form drafts kept across an expired session (issue 13, "forms for hurried people").

- ``form_drafts``: what a user typed into a form when their session had ended, one row per user and form
  path, shown again filled once they sign in and deleted then (``services.drafts``).

Written out by hand, never importing the models (see 0001).

Revision ID: 0014_forms
Revises: 0013_scan_cache
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_forms"
down_revision: str | Sequence[str] | None = "0013_scan_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("fields", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_form_drafts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_drafts")),
        sa.UniqueConstraint("user_id", "path", name=op.f("uq_form_drafts_user_id_path")),
    )
    op.create_index(op.f("ix_form_drafts_user_id"), "form_drafts", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_form_drafts_user_id"), table_name="form_drafts")
    op.drop_table("form_drafts")
