"""The recall lifecycle (issue 12): drafts, history steps, the in-app notifications inbox and holders'
acknowledgements; the issued recall gains its depth, public-notice flag, contact and termination.

- ``recalls``: ``depth``, ``public_notice``, ``contact``, ``terminated_at``, ``terminated_by_org_id``,
  ``termination_reason``, ``termination_hash`` (plain ``ADD COLUMN``s, as in 0003).
- ``recall_drafts``: a recall before it is issued (draft, review; issued or discarded).
- ``recall_steps``: every step of a recall's history (who, when, text).
- ``notifications``: an organisation's inbox (``services.notifications.notify`` writes it).
- ``recall_acknowledgements``: what each notified holder did with the product.

Written out by hand, never importing the models (see 0001).

Revision ID: 0008_recall_lifecycle
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_recall_lifecycle"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def _quantity() -> sa.types.TypeEngine:
    return sa.Numeric(precision=18, scale=6)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def _index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    for column in (
        sa.Column("depth", sa.String(length=16), nullable=True),
        sa.Column("public_notice", sa.Boolean(), nullable=True),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("terminated_at", _utc(), nullable=True),
        sa.Column("termination_reason", sa.Text(), nullable=True),
        sa.Column("termination_hash", sa.String(length=66), nullable=True),
    ):
        op.add_column("recalls", column)
    fk_name = op.f("fk_recalls_terminated_by_org_id_organisations")
    if op.get_bind().dialect.name == "sqlite":
        op.add_column(
            "recalls",
            sa.Column("terminated_by_org_id", sa.Integer(), sa.ForeignKey("organisations.id", name=fk_name)),
            inline_references=True,
        )
    else:
        op.add_column("recalls", sa.Column("terminated_by_org_id", sa.Integer(), nullable=True))
        op.create_foreign_key(fk_name, "recalls", "organisations", ["terminated_by_org_id"], ["id"])

    op.create_table(
        "recall_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("recall_class", sa.String(length=3), nullable=False),
        sa.Column("depth", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("public_notice", sa.Boolean(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("created_by_org_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("recall_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("recall_class IN ('I', 'II', 'III')", name=op.f("ck_recall_drafts_recall_class")),
        sa.CheckConstraint("depth IN ('wholesale', 'retail', 'consumer')", name=op.f("ck_recall_drafts_depth")),
        sa.CheckConstraint(
            "stage IN ('draft', 'review', 'issued', 'discarded')", name=op.f("ck_recall_drafts_stage")
        ),
        _fk("lot_id", "recall_drafts", "lots"),
        _fk("created_by_org_id", "recall_drafts", "organisations"),
        _fk("recall_id", "recall_drafts", "recalls"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall_drafts")),
        sa.UniqueConstraint("recall_id", name=op.f("uq_recall_drafts_recall_id")),
    )
    _index("recall_drafts", "lot_id")

    op.create_table(
        "recall_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("recall_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("actor_org_id", sa.Integer(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("at", _utc(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('drafted', 'edited', 'reviewed', 'issued', 'update', 'reminder', 'terminated', 'discarded')",
            name=op.f("ck_recall_steps_kind"),
        ),
        _fk("draft_id", "recall_steps", "recall_drafts"),
        _fk("recall_id", "recall_steps", "recalls"),
        _fk("actor_org_id", "recall_steps", "organisations"),
        _fk("actor_user_id", "recall_steps", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall_steps")),
    )
    _index("recall_steps", "draft_id")
    _index("recall_steps", "recall_id")

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("recall_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("read_at", _utc(), nullable=True),
        sa.Column("read_by_user_id", sa.Integer(), nullable=True),
        _fk("organisation_id", "notifications", "organisations"),
        _fk("recall_id", "notifications", "recalls"),
        _fk("read_by_user_id", "notifications", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    _index("notifications", "organisation_id")
    _index("notifications", "recall_id")

    op.create_table(
        "recall_acknowledgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recall_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("quantity_removed", _quantity(), nullable=False),
        sa.Column("quantity_destroyed", _quantity(), nullable=False),
        sa.Column("quantity_returned", _quantity(), nullable=False),
        sa.Column("quantity_in_stock", _quantity(), nullable=False),
        sa.Column("quantity_forwarded", _quantity(), nullable=False),
        sa.Column("forwarded_to", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("acknowledged_at", _utc(), nullable=False),
        sa.CheckConstraint(
            "quantity_removed >= 0 AND quantity_destroyed >= 0 AND quantity_returned >= 0 "
            "AND quantity_in_stock >= 0 AND quantity_forwarded >= 0",
            name=op.f("ck_recall_acknowledgements_quantities_not_negative"),
        ),
        _fk("recall_id", "recall_acknowledgements", "recalls"),
        _fk("organisation_id", "recall_acknowledgements", "organisations"),
        _fk("user_id", "recall_acknowledgements", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recall_acknowledgements")),
        sa.UniqueConstraint(
            "recall_id", "organisation_id", name=op.f("uq_recall_acknowledgements_recall_id_organisation_id")
        ),
    )
    _index("recall_acknowledgements", "recall_id")


def downgrade() -> None:
    op.drop_index(op.f("ix_recall_acknowledgements_recall_id"), table_name="recall_acknowledgements")
    op.drop_table("recall_acknowledgements")
    op.drop_index(op.f("ix_notifications_recall_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_organisation_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_recall_steps_recall_id"), table_name="recall_steps")
    op.drop_index(op.f("ix_recall_steps_draft_id"), table_name="recall_steps")
    op.drop_table("recall_steps")
    op.drop_index(op.f("ix_recall_drafts_lot_id"), table_name="recall_drafts")
    op.drop_table("recall_drafts")
    with op.batch_alter_table("recalls") as batch:
        for column in (
            "terminated_by_org_id",
            "termination_hash",
            "termination_reason",
            "terminated_at",
            "contact",
            "public_notice",
            "depth",
        ):
            batch.drop_column(column)
