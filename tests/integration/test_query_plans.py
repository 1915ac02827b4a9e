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
