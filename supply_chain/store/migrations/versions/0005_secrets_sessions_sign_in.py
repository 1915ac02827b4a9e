"""Secrets, sessions and sign-in (issue 9, items 5 and 6).

- ``organisations.key_encryption_id``: the fingerprint of the key-encryption key (KEK) an organisation's chain
  key is encrypted under; NULL for keys still under the session secret of earlier releases, which the next
  start re-encrypts under the KEK (``services.keyring``).
- ``user_sessions``: server-side browser sessions (the cookie carries a token, the row its SHA-256), so that
  sign-out, a password change and a suspension end a session wherever its cookie went. They replace
  ``organisations.session_epoch`` (suspension now deletes the sessions), which is dropped: every browser signs
  in again once after the upgrade.
- ``sign_in_throttles``: sign-in attempts per account and per client address, shared by every process.

Written out by hand, never importing the models (see 0001). ``DROP COLUMN`` runs natively on SQLite (3.35+;
the column has no constraint), so ``organisations`` is not copied by batch mode (see 0002).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("organisations", sa.Column("key_encryption_id", sa.String(length=32), nullable=True))
    op.drop_column("organisations", "session_epoch")
    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_user_sessions")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"])
    op.create_index(op.f("ix_user_sessions_expires_at"), "user_sessions", ["expires_at"])
    op.create_table(
        "sign_in_throttles",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("window_started", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_throttles")),
    )
    op.create_index(op.f("ix_sign_in_throttles_window_started"), "sign_in_throttles", ["window_started"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_throttles_window_started"), table_name="sign_in_throttles")
    op.drop_table("sign_in_throttles")
    op.drop_index(op.f("ix_user_sessions_expires_at"), table_name="user_sessions")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
    op.add_column("organisations", sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    op.drop_column("organisations", "key_encryption_id")
