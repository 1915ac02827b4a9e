"""Query plans of the hot read paths at a generated 100k-event store (issue 11, "queries that stay flat").

The store is built by ``scripts/plan_store.py`` (bulk SQL inserts of realistic rows, ~10k lots with lineage;
no chain). Each test calls a service the way a page does, captures the SQL it sends and asks the database
how it would run it (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL): no statement may read the
whole events table, and none may go through the status index (partial, for pending and failed rows only).
No timings are asserted; docs/benchmarks.md has the measured figures.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from supply_chain.services import credit, trace, views
from supply_chain.services.runtime import Ctx
from supply_chain.store.db import make_engine, migrate, refresh_statistics
from supply_chain.store.models import Lot, Organisation

_spec = importlib.util.spec_from_file_location(
    "plan_store", Path(__file__).resolve().parents[2] / "scripts" / "plan_store.py"
)
assert _spec is not None and _spec.loader is not None
plan_store = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("plan_store", plan_store)  # dataclasses look their module up there
_spec.loader.exec_module(plan_store)

BASE_URL = "https://lotline.example"


@pytest.fixture(scope="module")
def store(module_db_url: str) -> Iterator[tuple[Engine, Any]]:
    engine = make_engine(module_db_url)
    try:
        migrate(engine)
        made = plan_store.build(engine)
        refresh_statistics(engine)
        yield engine, made
    finally:
        engine.dispose()


def _ctx(session: Session) -> Ctx:
    return Ctx(session, SimpleNamespace(settings=SimpleNamespace(public_url=BASE_URL)))  # type: ignore[arg-type]


def _captured(engine: Engine, call: Callable[[Ctx], object]) -> list[tuple[str, Any]]:
    """The SELECTs ``call`` sends, once each, with the parameters of their first use."""
    seen: dict[str, Any] = {}

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.setdefault(statement, parameters)

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with Session(engine) as session:
            call(_ctx(session))
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert seen, "the call sent no query"
    return list(seen.items())


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in rows)
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(str(row[0]) for row in rows)


SMALL_PARTIAL_INDEXES = ("ix_lots_held",)
"""Partial indexes over a few rows: reading one whole is no full scan."""

FULL_SCAN = {
    # also "SCAN t USING INDEX i": the whole index, as many entries as rows
    "sqlite": lambda table: re.compile(
        rf"\bSCAN {table}\b(?! USING (COVERING )?INDEX ({'|'.join(SMALL_PARTIAL_INDEXES)})\b)"
    ),
    "postgresql": lambda table: re.compile(rf"Seq Scan on {table}\b"),
}


SCAN_WORTH = 0.02
"""PostgreSQL reads a table whole when it expects to return a good part of it (a lot of 50 ingredients loads
~500 lots' events, 4% of this small store): a plan that expects at least this fraction is its costed choice,
not a missing index. SQLite, which has no such costs, gets no allowance."""


def _worth_a_scan(engine: Engine, table: str, plan: str) -> bool:
    if engine.dialect.name != "postgresql":
        return False
    expected = int(re.search(r"rows=(\d+)", plan).group(1))  # type: ignore[union-attr]
    with engine.connect() as connection:
        total = connection.exec_driver_sql(
            f"SELECT reltuples FROM pg_class WHERE oid = to_regclass('{table}')"
        ).scalar()
    return expected >= SCAN_WORTH * float(total or 0)


def assert_flat(engine: Engine, call: Callable[[Ctx], object], tables: tuple[str, ...] = ("events",)) -> int:
    """Every statement ``call`` sends that reads one of ``tables`` uses an index for it, and none uses the
    status index; returns how many statements were checked."""
    checked = 0
    for statement, parameters in _captured(engine, call):
        plan = _plan(engine, statement, parameters)
        assert "ix_events_status" not in plan, f"status index used:\n{statement}\n{plan}"
        for table in tables:
            if re.search(rf"\b{table}\b", statement) and FULL_SCAN[engine.dialect.name](table).search(plan):
                assert _worth_a_scan(engine, table, plan), f"full scan:\n{statement[:1000]}\n{plan[:2000]}"
        checked += 1
    return checked


def _lot(engine: Engine, pk: int) -> Callable[[Ctx], Lot]:
    def get(ctx: Ctx) -> Lot:
        lot = ctx.session.get(Lot, pk)
        assert lot is not None
        return lot

    return get


LOTS = ("farm_lot", "packed_lot", "transformed_lot", "deep_lot", "wide_lot", "held_lot", "recalled_lot")


@pytest.mark.parametrize("which", LOTS)
def test_the_scan_page_reads_no_whole_table(store: tuple[Engine, Any], which: str) -> None:
    engine, made = store
    lot = _lot(engine, getattr(made, which))
    assert assert_flat(engine, lambda ctx: views.consumer_view(ctx, lot(ctx))) >= 5


@pytest.mark.parametrize("which", LOTS)
def test_the_scan_page_version_is_one_statement_reading_no_whole_table(store: tuple[Engine, Any], which: str) -> None:
    """What every cached scan asks the database (``views.consumer_version`` with the maker's line known): the
    lot by its key, then one statement walking the lineage and summing its revisions by primary key."""
    engine, made = store
    lot = _lot(engine, getattr(made, which))
    line = {"organisation": "-", "summary": "-"}
    checked = assert_flat(
        engine, lambda ctx: views.consumer_version(ctx, lot(ctx), line), ("events", "lots", "lot_inputs")
    )
    assert checked == 2


@pytest.mark.parametrize("which", LOTS)
def test_the_lot_page_reads_no_whole_table(store: tuple[Engine, Any], which: str) -> None:
    engine, made = store
    lot = _lot(engine, getattr(made, which))
    assert_flat(engine, lambda ctx: views.lot_page(ctx, lot(ctx), lot(ctx).creator))


@pytest.mark.parametrize(
    ("which", "direction"),
    [("farm_lot", "forward"), ("deep_lot", "backward"), ("wide_lot", "backward"), ("recalled_lot", "forward")],
)
def test_traces_read_no_whole_table(store: tuple[Engine, Any], which: str, direction: str) -> None:
    engine, made = store
    lot = _lot(engine, getattr(made, which))
    assert_flat(engine, lambda ctx: trace.trace(ctx, lot(ctx), direction))
    assert_flat(engine, lambda ctx: views.trace_view(ctx, lot(ctx), direction))


def test_the_compliance_line_is_indexed_and_says_what_the_record_says(store: tuple[Engine, Any]) -> None:
    engine, made = store
    with Session(engine) as session:
        ctx = _ctx(session)
        for org in session.scalars(select(Organisation).order_by(Organisation.id)):
            whole = credit.summary(ctx, org)
            assert credit.line(ctx, org) == {"organisation": whole["organisation"], "summary": whole["summary"]}
        maker = session.get(Lot, made.held_lot).creator  # type: ignore[union-attr]
        assert "1 failed; 2 holds" in credit.line(ctx, maker)["summary"]
    org_id = maker.id
    assert_flat(engine, lambda ctx: credit.line(ctx, ctx.session.get(Organisation, org_id)))


def test_the_dashboard_lists_read_no_whole_table(store: tuple[Engine, Any]) -> None:
    engine, made = store

    def lists(ctx: Ctx) -> None:
        org = ctx.session.get(Organisation, made.orgs[7])
        assert org is not None
        views.inbox(ctx, org)
        views.lot_counts(ctx, org)
        views.recent_inspections(ctx, org)
        assert [lot.id for lot in views.held_lots(ctx)] == [made.held_lot]
        views.recalls(ctx)

    assert_flat(engine, lists, tables=("events", "lots"))


def test_statistics_are_kept_on_sqlite(store: tuple[Engine, Any]) -> None:
    engine, _made = store
    if engine.dialect.name != "sqlite":
        # PostgreSQL keeps its own statistics (autovacuum's ANALYZE); Lotline relies on it being on
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW autovacuum").scalar() == "on"
        return
    with engine.connect() as connection:
        analysed = {row[0] for row in connection.exec_driver_sql("SELECT idx FROM sqlite_stat1 WHERE tbl = 'events'")}
    assert {"ix_events_status", "ix_events_confirmed_kind"} <= analysed


# ------------------------------------------------------------------ the EPCIS query interface

EPCIS_ORGS = 12
EPCIS_PER_ORG = 400
EPCIS_STEPS = ("shipping", "receiving", "packing", "inspecting", "storing", "commissioning")


@pytest.fixture(scope="module")
def epcis_store(store: tuple[Engine, Any]) -> tuple[Engine, list[int], int]:
    """~5,000 repository events beside the plan store (bulk rows, as capture writes them: 12 organisations,
    varied steps, read points of which some are sub-locations, EPCs, classes, business transactions,
    sources), and a regulator; returns the engine, the organisations' ids and the regulator's."""
    from sqlalchemy import insert

    from supply_chain.domain.identifiers import GS1Key, gtin_check_digit, pattern_key
    from supply_chain.store.models import CaptureJob, EpcisEvent, EpcisEventEpc, EpcisSensorReport

    engine, made = store
    with Session(engine) as session, session.begin():
        regulator = Organisation(
            name="Plan regulator", roles=["regulator"], chain_address="0x" + "ab" * 20, encrypted_key="{}"
        )
        session.add(regulator)
        session.flush()
        events, pk = [], 10_000_000
        identifiers, reports = [], []
        for n, org in enumerate(made.orgs[:EPCIS_ORGS]):
            job = CaptureJob(
                organisation_id=org, document={}, document_sha256=f"{n:064d}", events_total=1, writes_total=0
            )
            session.add(job)
            session.flush()
            for i in range(EPCIS_PER_ORG):
                pk += 1
                gln = f"https://id.gs1.org/414/{n:04d}{i % 50:09d}"
                read_point = f"{gln}/254/{i % 3}" if i % 3 else gln
                events.append(
                    {
                        "id": pk, "organisation_id": org, "capture_job_id": job.id, "position": i,
                        "state": "captured", "applied": False, "event_type": "ObjectEvent",
                        "event_id": f"urn:uuid:plan-{pk}", "hash_id": f"ni:///sha-256;{pk}?ver=CBV2.0",
                        "event_time": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=pk % 100_000),
                        "record_time": datetime(2024, 6, 1, tzinfo=UTC) + timedelta(seconds=i),
                        "action": ("ADD", "OBSERVE", "DELETE")[i % 3], "biz_step": EPCIS_STEPS[i % 6],
                        "disposition": "in_transit", "read_point": read_point, "biz_location": gln,
                        "has_error_declaration": i % 50 == 0, "body": {}, "leaf": "0x" + "00" * 32,
                        "error_declaration_time": (
                            datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=i) if i % 50 == 0 else None
                        ),
                    }
                )  # fmt: skip
                # a GTIN of company prefix {n:07d} and item reference {i % 40:05d} (indicator 0): its pattern key
                body = f"0{n:07d}{i % 40:05d}"
                key = pattern_key(GS1Key("gtin", body + str(gtin_check_digit(body))))
                identifiers += [
                    {"event_pk": pk, "role": "epc", "epc": f"https://id.gs1.org/01/0{n:04d}00000000/21/{i}",
                     "scheme": "sgtin", "pattern_key": key},
                    {"event_pk": pk, "role": "in_epc", "epc": f"https://id.gs1.org/01/0{n:04d}00000000/21/in{i}",
                     "scheme": "sgtin", "pattern_key": key},
                    {"event_pk": pk, "role": "class", "epc": f"https://id.gs1.org/01/0{n:04d}00000000/10/L{i % 40}",
                     "scheme": "lgtin", "pattern_key": key, "qualifier": "KGM", "amount": float(i % 100)},
                    {"event_pk": pk, "role": "biztx", "epc": f"urn:x:po:{n}:{i % 80}", "qualifier": "po"},
                    {"event_pk": pk, "role": "source", "epc": gln, "qualifier": "location"},
                    {"event_pk": pk, "role": "xform", "epc": f"urn:x:xf:{n}:{i % 80}"},
                    {"event_pk": pk, "role": "pd_set", "epc": ("completeness_verified", "other")[i % 2]},
                ]  # fmt: skip
                if i % 50 == 0:
                    identifiers.append({"event_pk": pk, "role": "err_why", "epc": "did_not_occur"})
                reports.append(
                    {
                        "event_pk": pk, "type": ("Temperature", "RelativeHumidity")[i % 2],
                        "device_id": f"urn:x:dev:{n}:{i % 20}", "value": float(i % 40), "uom": "CEL",
                        "time": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=pk % 100_000),
                    }
                )  # fmt: skip
                if i % 3:
                    identifiers.append({"event_pk": pk, "role": "rp_in", "epc": gln})
        session.execute(insert(EpcisEvent), events)
        blank = {"qualifier": None, "scheme": None, "pattern_key": None, "amount": None}
        session.execute(insert(EpcisEventEpc), [blank | row for row in identifiers])
        session.execute(insert(EpcisSensorReport), reports)
        regulator_id = regulator.id
    refresh_statistics(engine)
    return engine, made.orgs[:EPCIS_ORGS], regulator_id


EPCIS_QUERIES = [
    "",
    "EQ_bizStep=shipping&EQ_action=ADD",
    "WD_readPoint=https://id.gs1.org/414/0003000000007",
    "EQ_readPoint=https://id.gs1.org/414/0003000000007/254/1",
    "WD_bizLocation=https://id.gs1.org/414/0003000000007",
    "MATCH_inputEPC=https://id.gs1.org/01/0000300000000/21/in7",
    "MATCH_anyEPC=https://id.gs1.org/01/0000300000000/21/7",
    "MATCH_anyEPCClass=https://id.gs1.org/01/0000300000000/10/L7",
    "EQ_bizTransaction_po=urn:x:po:3:7",
    "EQ_source_location=https://id.gs1.org/414/0003000000007",
    "orderBy=eventTime&GE_eventTime=2024-02-01T00:00:00Z",
    "orderBy=recordTime&orderDirection=ASC&eventCountLimit=5&GE_recordTime=2024-06-01T00:05:00Z",
    "maxEventCount=50&EQ_bizTransaction_po=urn:x:po:3:7",
    # the third round: EPC patterns, quantities, transformation ID, persistent disposition, error declarations,
    # sensor reports
    "MATCH_epc=urn:epc:idpat:sgtin:0000003.000007.*",
    "MATCH_anyEPC=urn:epc:idpat:sgtin:0000003.*.*",
    "MATCH_epcClass=urn:epc:idpat:sgtin:0000003.000007.*",
    "GE_quantity=99",
    "EQ_quantity_KGM=7",
    "EQ_transformationID=urn:x:xf:3:7",
    "EQ_persistentDisposition_set=completeness_verified&EQ_bizStep=shipping",
    "GE_errorDeclarationTime=2024-03-01T12:00:00Z",
    "EQ_errorReason=did_not_occur",
    "EQ_type=Temperature&GE_value_CEL=39",
    "EQ_deviceID=urn:x:dev:3:7",
    "GE_time=2024-01-02T00:00:00Z&LT_time=2024-01-02T01:00:00Z",
]


@pytest.mark.parametrize("oversight", [False, True], ids=["organisation", "regulator"])
@pytest.mark.parametrize("query", EPCIS_QUERIES)
def test_epcis_queries_read_no_whole_table(
    epcis_store: tuple[Engine, list[int], int], query: str, oversight: bool
) -> None:
    """Each standard parameter is answered through an index: an organisation's queries start from its own
    events, oversight's from the parameter's column or identifier rows. (Oversight's unfiltered query walks
    the events in capture order and stops at a page: not a query a parameter narrows, left out.)"""
    from urllib.parse import parse_qs

    from supply_chain.services.epcis import repository

    engine, orgs, regulator = epcis_store
    if oversight and not query:
        return
    args = parse_qs(query, keep_blank_values=True)
    viewer = regulator if oversight else orgs[3]

    def run(ctx: Ctx) -> None:
        org = ctx.session.get(Organisation, viewer)
        rows, _next = repository.query(ctx, org, repository.parse_query(args))
        if "WD_readPoint" in args and not oversight:
            assert len(rows) == 8  # the GLN's own events and its sub-locations' (1 in 50 of 400)

    assert_flat(engine, run, tables=("epcis_events", "epcis_event_epcs", "epcis_sensor_reports"))


@pytest.mark.parametrize("name", ["epcs", "bizSteps", "readPoints", "bizLocations", "dispositions"])
def test_epcis_listings_of_an_organisation_read_no_whole_table(
    epcis_store: tuple[Engine, list[int], int], name: str
) -> None:
    from supply_chain.services.epcis import repository

    engine, orgs, _regulator = epcis_store

    def run(ctx: Ctx) -> None:
        org = ctx.session.get(Organisation, orgs[3])
        values, next_token = repository.listing(ctx, org, name, 30)
        assert len(values) == 30 and next_token is not None  # each has more than a page

    assert_flat(engine, run, tables=("epcis_events", "epcis_event_epcs"))
