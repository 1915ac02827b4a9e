"""The query interface's third round (issue 10): EPC patterns, quantities, sensor reports, error declarations.

- ``epcis_event_epcs`` gains ``scheme`` and ``pattern_key`` (an identifier's GS1 key digits, company prefix
  first: ``MATCH_*`` patterns such as ``urn:epc:idpat:sgtin:0614141.*.*`` are ranges of it), ``amount`` (a
  quantity element's quantity; its ``uom`` goes into ``qualifier``), and rows of the new roles ``xform``
  (transformationID), ``pd_set``/``pd_unset`` (persistentDisposition), ``err_why`` (errorDeclaration reason) and
  ``fix_id`` (correctiveEventIDs).
- ``epcis_events.error_declaration_time``: the declarationTime of the event's errorDeclaration.
- ``epcis_sensor_reports``: one row per sensorReport, its sensorMetadata folded in.

The backfill rewrites the index rows of every stored event with ``services.epcis.indexing`` - the functions
capture uses - so the rows of events stored before equal those of events captured after. (An exception to
"never import the models": that module holds no models, only the pure extraction; a later change of what it
writes needs a migration of its own that rewrites the rows again.)

Revision ID: 0021_q3
Revises: 0020_namedq
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0021_q3"
down_revision: str | Sequence[str] | None = "0020_namedq"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def _large() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_SENSOR_COLUMNS = (
    ("type", sa.String(length=300)),
    ("device_id", sa.String(length=500)),
    ("data_processing_method", sa.String(length=500)),
    ("biz_rules", sa.String(length=500)),
    ("microorganism", sa.String(length=500)),
    ("chemical_substance", sa.String(length=500)),
    ("string_value", sa.String(length=500)),
    ("boolean_value", sa.Boolean()),
    ("hex_binary_value", sa.String(length=500)),
    ("uri_value", sa.String(length=500)),
    ("time", _TIME),
    ("start_time", _TIME),
    ("end_time", _TIME),
    ("value", sa.Float()),
    ("min_value", sa.Float()),
    ("max_value", sa.Float()),
    ("mean_value", sa.Float()),
    ("s_dev", sa.Float()),
    ("perc_rank", sa.Float()),
    ("perc_value", sa.Float()),
    ("uom", sa.String(length=16)),
)


def _events(connection: Any) -> Iterator[Any]:
    """Every stored event, 500 at a time (a large repository is never held in memory whole)."""
    after = 0
    while True:
        batch = connection.execute(
            sa.text("SELECT id, body FROM epcis_events WHERE id > :after ORDER BY id LIMIT 500"), {"after": after}
        ).fetchall()
        if not batch:
            return
        yield from batch
        after = batch[-1][0]


def upgrade() -> None:
    op.add_column("epcis_events", sa.Column("error_declaration_time", _TIME, nullable=True))
    op.create_index(op.f("ix_epcis_events_error_declaration_time"), "epcis_events", ["error_declaration_time"])
    op.add_column("epcis_event_epcs", sa.Column("amount", sa.Float(), nullable=True))
    op.add_column("epcis_event_epcs", sa.Column("scheme", sa.String(length=8), nullable=True))
    op.add_column("epcis_event_epcs", sa.Column("pattern_key", sa.String(length=20), nullable=True))
    op.create_index("ix_epcis_event_epcs_pattern", "epcis_event_epcs", ["scheme", "pattern_key"])
    op.create_index("ix_epcis_event_epcs_amount", "epcis_event_epcs", ["role", "amount"])
    op.create_table(
        "epcis_sensor_reports",
        sa.Column("id", _large(), nullable=False),
        sa.Column("event_pk", _large(), nullable=False),
        *(sa.Column(name, kind, nullable=True) for name, kind in _SENSOR_COLUMNS),
        sa.ForeignKeyConstraint(
            ["event_pk"], ["epcis_events.id"], name=op.f("fk_epcis_sensor_reports_event_pk_epcis_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epcis_sensor_reports")),
    )
    for column in ("event_pk", "device_id", "time"):
        op.create_index(op.f(f"ix_epcis_sensor_reports_{column}"), "epcis_sensor_reports", [column])
    op.create_index("ix_epcis_sensor_reports_type_value", "epcis_sensor_reports", ["type", "value"])
    _backfill()


def _backfill() -> None:
    from supply_chain.services.epcis import indexing

    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"

    def when(moment: datetime | None) -> datetime | None:
        # as the models' UTCDateTime writes it: UTC, without offset on SQLite
        if moment is None:
            return None
        moment = moment.astimezone(UTC)
        return moment.replace(tzinfo=None) if sqlite else moment

    epcs = sa.table(
        "epcis_event_epcs",
        sa.column("event_pk", sa.Integer()),
        sa.column("role", sa.String()),
        sa.column("epc", sa.String()),
        sa.column("qualifier", sa.String()),
        sa.column("amount", sa.Float()),
        sa.column("scheme", sa.String()),
        sa.column("pattern_key", sa.String()),
    )
    reports = sa.table(
        "epcis_sensor_reports", sa.column("event_pk", sa.Integer()), *(sa.column(n, k) for n, k in _SENSOR_COLUMNS)
    )
    events = sa.table("epcis_events", sa.column("id", sa.Integer()), sa.column("error_declaration_time", _TIME))
    for event_pk, raw in _events(connection):
        body: Any = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(body, dict):
            continue
        connection.execute(sa.delete(epcs).where(epcs.c.event_pk == event_pk))
        rows = [{"event_pk": event_pk, **vars(row)} for row in indexing.rows(body)]
        if rows:
            connection.execute(sa.insert(epcs), rows)
        found = indexing.sensor_reports(body)
        for report in found:
            for name in ("time", "start_time", "end_time"):
                report[name] = when(report[name])
        if found:
            connection.execute(sa.insert(reports), [{"event_pk": event_pk, **r} for r in found])
        declared = when(indexing.error_declaration_time(body))
        if declared is not None:
            connection.execute(sa.update(events).where(events.c.id == event_pk).values(error_declaration_time=declared))


def downgrade() -> None:
    op.execute("DELETE FROM epcis_event_epcs WHERE role IN ('xform', 'pd_set', 'pd_unset', 'err_why', 'fix_id')")
    op.execute("UPDATE epcis_event_epcs SET qualifier = NULL WHERE role IN ('class', 'inclass', 'outclass')")
    op.drop_table("epcis_sensor_reports")
    op.drop_index("ix_epcis_event_epcs_amount", table_name="epcis_event_epcs")
    op.drop_index("ix_epcis_event_epcs_pattern", table_name="epcis_event_epcs")
    with op.batch_alter_table("epcis_event_epcs") as batch:
        batch.drop_column("pattern_key")
        batch.drop_column("scheme")
        batch.drop_column("amount")
    op.drop_index(op.f("ix_epcis_events_error_declaration_time"), table_name="epcis_events")
    with op.batch_alter_table("epcis_events") as batch:
        batch.drop_column("error_declaration_time")
