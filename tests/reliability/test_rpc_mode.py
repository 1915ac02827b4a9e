"""JSON-RPC mode end to end on a real node (anvil): `lotline deploy`'s service deploys once, the demo scenario
runs through the same services with transactions signed locally and sent raw, every lot verifies; when the
node goes away, a write is refused with ChainUnavailable and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from supply_chain.chain.devnode import ANVIL_BINARY, start_anvil, stop

pytestmark = pytest.mark.slow


def test_demo_on_anvil_verifies_and_an_outage_writes_nothing(tmp_path: Path) -> None:
    from supply_chain.domain.errors import ChainUnavailable
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots, orgs
    from supply_chain.services.demo import seed
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.verify import verify_all
    from supply_chain.store.models import Event, Organisation

    if not ANVIL_BINARY.is_file():
        pytest.skip("anvil not installed: run npm ci")
    url, node = start_anvil(tmp_path / "anvil.log")
    runtime = None
    try:
        settings = Settings.from_env(env={}, home=tmp_path / "home", chain_url=url, secret_key="rpc-test")
        runtime = Runtime(settings)
        with runtime.ctx() as ctx:
            first = orgs.deploy(ctx)
        with runtime.ctx() as ctx:
            assert orgs.deploy(ctx).address == first.address  # deploying again keeps the ledger
        seed(runtime)
        with runtime.ctx() as ctx:
            results = verify_all(ctx)
            assert len(results) == 5 and {r.state for r in results} == {"verified"}
            assert ctx.ledger.chain_id() == 31337
            farm = ctx.session.scalars(select(Organisation).where(Organisation.name == "Sunrise Fields")).one()
            # the organisation's own key signed its events: the chain records who said it
            lot = lots.get_lot(ctx, "00614142000028", "SF-SPN-2611B")
            assert lot.events[0].actor_address == farm.chain_address
            assert ctx.ledger.get_lot(lot.lot_id).creator == farm.chain_address
            events_before = ctx.session.scalar(select(func.count()).select_from(Event))
        stop(node)
        with pytest.raises(ChainUnavailable) as err, runtime.ctx() as ctx:  # the unit of work rolls back
            packer = ctx.session.scalars(select(Organisation).where(Organisation.name == "Coastal Packing Co")).one()
            lot = lots.get_lot(ctx, "00614141000012", "GV-ROM-2611C")
            lots.record_event(ctx, packer, lot, EventKind.OBSERVATION, {"note": "x", "date": "2026-11-26"})
        assert "unreachable" in err.value.message or "127.0.0.1" in err.value.message, err.value.message
        with runtime.ctx() as ctx:
            assert ctx.session.scalar(select(func.count()).select_from(Event)) == events_before
    finally:
        if runtime is not None:
            runtime.close()
        stop(node)
