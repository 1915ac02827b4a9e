"""EPCIS capture jobs (issue 9 item 3, issue 10's capture-job binding).

- ``capture_jobs``: an accepted EPCIS document, its frozen write plan, status, progress counters and
  per-event results; written in bounded batches by a background worker (``services.epcis.jobs``).
- ``idempotency_records.response_location``: the ``Location`` header of a stored answer (a 202's job
  address), replayed with it.

Written out by hand, never importing the models (see 0001). Revision 0007 follows 0005 here; 0006 is
another branch's and the chain is rebased when both are merged.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "capture_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document", _json(), nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("events_total", sa.Integer(), nullable=False),
        sa.Column("events_written", sa.Integer(), nullable=False),
        sa.Column("writes_total", sa.Integer(), nullable=False),
        sa.Column("writes_done", sa.Integer(), nullable=False),
        sa.Column("batches_done", sa.Integer(), nullable=False),
        sa.Column("results", _json(), nullable=False),
        sa.Column("plan", _json(), nullable=True),
        sa.Column("transactions", _json(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_field", sa.String(length=300), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_capture_jobs_status")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_capture_jobs_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_capture_jobs")),
        sa.UniqueConstraint(
            "organisation_id", "idempotency_key", name=op.f("uq_capture_jobs_organisation_id_idempotency_key")
        ),
    )
    op.create_index(op.f("ix_capture_jobs_organisation_id"), "capture_jobs", ["organisation_id"])
    op.create_index(op.f("ix_capture_jobs_status"), "capture_jobs", ["status"])
    op.create_index(op.f("ix_capture_jobs_document_sha256"), "capture_jobs", ["document_sha256"])
    op.add_column("idempotency_records", sa.Column("response_location", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("idempotency_records", "response_location")
    op.drop_index(op.f("ix_capture_jobs_document_sha256"), table_name="capture_jobs")
    op.drop_index(op.f("ix_capture_jobs_status"), table_name="capture_jobs")
    op.drop_index(op.f("ix_capture_jobs_organisation_id"), table_name="capture_jobs")
    op.drop_table("capture_jobs")
