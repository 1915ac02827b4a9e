"""A writer killed with SIGKILL in the middle of its work loses nothing it acknowledged, and after a restart
the store and the (durable, embedded) chain agree again: no write left pending, every lot verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent(
    """
    import sys
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots, orgs
    from supply_chain.services.demo import gln, gtin
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up

    rt = Runtime(Settings.from_env(env={}, home=sys.argv[1], secret_key="crash-test"))
    catch_up(rt)
    with rt.ctx() as ctx:
        farm = orgs.onboard(ctx, None, "Farm", ["producer"], "0700001")
        site = orgs.register_location(ctx, farm, gln("0700001", "00001"), "Field").gln
        product = orgs.register_product(ctx, farm, gtin("0700001", "00001"), "Greens").gtin
        lot = lots.create_lot(ctx, farm, product, "CRASH-1", EventKind.HARVESTING,
                              {"location_gln": site, "harvest_date": "2026-11-20", "commodity": "greens"}, "10")
        print("READY", flush=True)
        for i in range(10_000):
            event = lots.record_event(ctx, farm, lot, EventKind.OBSERVATION,
                                      {"note": f"check {i}", "date": "2026-11-21"})
            print("ACK", event.id, event.seq, flush=True)
    """
)


def test_sigkill_during_writes_loses_no_acknowledged_event_and_restart_reconciles(tmp_path: Path) -> None:
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up
    from supply_chain.services.verify import verify_all
    from supply_chain.store.models import Event, PendingTransaction

    home = tmp_path / "home"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    acked: list[tuple[int, int]] = []
    deadline = time.monotonic() + 120
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("ACK"):
                _, event_id, seq = line.split()
                acked.append((int(event_id), int(seq)))
                if len(acked) >= 8:
                    break
            assert time.monotonic() < deadline, "writer too slow"
        # Let it get into the next write, then kill it without warning.
        time.sleep(0.03)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert len(acked) >= 8

    runtime = Runtime(Settings.from_env(env={}, home=home, secret_key="crash-test"))
    try:
        catch_up(runtime)
        with runtime.ctx() as ctx:
            for event_id, seq in acked:
                event = ctx.session.get(Event, event_id)
                assert event is not None and event.status == "confirmed" and event.seq == seq
            assert ctx.session.scalar(select(func.count()).select_from(PendingTransaction)) == 0
            assert ctx.session.scalar(select(func.count()).select_from(Event).where(Event.status == "pending")) == 0
            results = verify_all(ctx)
            assert [r.state for r in results] == ["verified"], [r.detail for r in results]
            lot = results[0].lot
            assert lot.event_count == ctx.ledger.get_lot(lot.lot_id).event_count >= len(acked) + 1
    finally:
        runtime.close()
