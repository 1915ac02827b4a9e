"""Tampering with the off-chain store is caught: an altered payload, a deleted event, two events swapped and a
forged event inserted directly in SQL each make verification name the first bad event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, update

from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot

pytestmark = pytest.mark.slow


@pytest.fixture
def history(network: Any) -> Any:
    """The network's lot with four events: harvesting, cooling, initial packing, an observation."""
    with network.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, network.lot_pk)
        lots.record_events(
            ctx,
            network.org("farm", ctx),
            lot,
            [
                (EventKind.COOLING, {"location_gln": network.farm_site, "cooling_date": "2026-11-20"}),
                (EventKind.INITIAL_PACKING, {"location_gln": network.farm_site, "packing_date": "2026-11-21"}),
                (EventKind.OBSERVATION, {"note": "pallets wrapped", "date": "2026-11-21"}),
            ],
        )
        assert verify_lot(ctx, lot).state == "verified"
        network.event_ids = [e.id for e in sorted(lot.events, key=lambda e: e.seq)]
    return network


def _verify(net: Any) -> Any:
    with net.runtime.ctx() as ctx:
        return verify_lot(ctx, ctx.session.get(Lot, net.lot_pk))


def _sql(net: Any, statement: Any) -> None:
    with net.runtime.engine.begin() as conn:
        conn.execute(statement)


def test_changed_payload_field_is_caught_and_named(history: Any) -> None:
    target = history.event_ids[1]
    with history.runtime.ctx() as ctx:
        payload = dict(ctx.session.get(Event, target).payload) | {"cooling_date": "2026-11-19"}
    _sql(history, update(Event.__table__).where(Event.__table__.c.id == target).values(payload=payload))
    result = _verify(history)
    assert result.state == "tampered" and result.bad_event_id == target
    assert "event #2 (cooling" in result.detail and "altered" in result.detail


def test_deleted_event_is_caught(history: Any) -> None:
    _sql(history, delete(Event.__table__).where(Event.__table__.c.id == history.event_ids[1]))
    result = _verify(history)
    assert result.state == "tampered"
    assert "event #2 (kind cooling" in result.detail and "missing" in result.detail


def test_two_reordered_events_are_caught(history: Any) -> None:
    table = Event.__table__
    first, second = history.event_ids[1], history.event_ids[2]
    _sql(history, update(table).where(table.c.id == first).values(seq=99))
    _sql(history, update(table).where(table.c.id == second).values(seq=2))
    _sql(history, update(table).where(table.c.id == first).values(seq=3))
    result = _verify(history)
    assert result.state == "tampered" and result.bad_event_id == second
    assert "out of order" in result.detail


def test_forged_event_inserted_in_sql_is_caught(history: Any) -> None:
    with history.runtime.ctx() as ctx:
        model = ctx.session.get(Event, history.event_ids[-1])
        row = {c.name: getattr(model, c.key) for c in Event.__table__.columns if c.name != "id"}
    row |= {"seq": 5, "payload": {"note": "extra pallet found", "date": "2026-11-22"}, "tx_hash": "0x" + "ab" * 32}
    _sql(history, insert(Event.__table__).values(**row))
    result = _verify(history)
    assert result.state == "tampered" and "event #5" in result.detail and "not on the chain" in result.detail


def test_cli_verify_all_exits_1_naming_the_lot_and_event_after_an_sql_update(network: Any, tmp_path: Path) -> None:
    from supply_chain.cli import main

    rt = network.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    with rt.ctx() as ctx:
        lot = ctx.session.get(Lot, network.lot_pk)
        event = lot.events[0]
        payload = dict(event.payload) | {"commodity": "spinach"}
        event_id, code = event.id, lot.lot_code
    rt.close()  # the embedded chain is opened by one process at a time; the CLI opens it next
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", "--all"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.output
    rt.engine.dispose()
    from supply_chain.store.db import make_engine

    engine = make_engine(rt.settings.database_url)
    with engine.begin() as conn:
        conn.execute(update(Event.__table__).where(Event.__table__.c.id == event_id).values(payload=payload))
    engine.dispose()
    bad = runner.invoke(main, ["verify", "--all"], env=env)
    assert bad.exit_code == 1, bad.output
    assert "tampered" in bad.output and code in bad.output and f"id {event_id}" in bad.output
    usage = runner.invoke(main, ["verify"], env=env)
    assert usage.exit_code == 2


def test_cli_trace_json_reindex_and_bad_input_exit_codes(network: Any) -> None:
    import json

    from supply_chain.cli import main

    rt = network.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    rt.close()
    runner = CliRunner()
    traced = runner.invoke(main, ["trace", network.greens, "LOT-1", "--direction", "forward", "--json"], env=env)
    assert traced.exit_code == 0, traced.output
    assert [i["lot_code"] for i in json.loads(traced.output)["lots"]] == ["LOT-1"]
    bad_gtin = runner.invoke(main, ["trace", "12345678", "LOT-1", "--direction", "forward"], env=env)
    assert bad_gtin.exit_code == 2 and "GTIN" in bad_gtin.output
    unknown = runner.invoke(main, ["trace", network.greens, "NOPE", "--direction", "backward"], env=env)
    assert unknown.exit_code == 2 and "no lot NOPE" in unknown.output
    rebuilt = runner.invoke(main, ["reindex"], env=env)
    assert rebuilt.exit_code == 0 and "1 events applied" in rebuilt.output, rebuilt.output
    for command in (
        ["--help"],
        ["demo", "--help"],
        ["serve", "--help"],
        ["verify", "--help"],
        ["trace", "--help"],
        ["reindex", "--help"],
        ["deploy", "--help"],
        ["bench", "--help"],
        ["export", "--help"],
    ):
        shown = runner.invoke(main, command)
        assert shown.exit_code == 0 and "Usage:" in shown.output, command
