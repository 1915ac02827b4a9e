"""Bulk import jobs (issue 13, "bulk import"): ``capture_jobs.source`` tells an EPCIS capture (``epcis``,
every job so far) from the rows of an imported CSV or XLSX file (``import``). Both are written by the same
batches (``services.epcis.jobs``).

Written out by hand, never importing the models (see 0001).

Revision ID: 0015_bulk_import
Revises: 0014_forms
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_bulk_import"
down_revision: str | Sequence[str] | None = "0014_forms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("capture_jobs", sa.Column("source", sa.String(length=16), server_default="epcis", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("capture_jobs") as batch:
        batch.drop_column("source")
