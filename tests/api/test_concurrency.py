"""Concurrent writers on one lot through a real threaded HTTP server: every acknowledged write is stored once,
in order, with the lot's counter equal to its last sequence number, while the maintenance pass indexes the
same transactions from the chain; the store still catches up and verifies afterwards."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from supply_chain.services import lots as lot_service
from supply_chain.services.startup import catch_up
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, PendingTransaction
from tests.api.conftest import Api, harvest_body, new_code
from tests.serving import post

pytestmark = pytest.mark.slow

WRITES = 200
THREADS = 50  # client threads; the server has `lotline serve`'s thread count


@pytest.fixture
def live_api(app: Any) -> Any:
    """The app under waitress with the thread count ``lotline serve`` uses; 50 client threads queue on it."""
    from waitress.server import create_server

    from app.wsgi import THREADS as SERVER_THREADS

    server = create_server(app, host="127.0.0.1", port=0, threads=SERVER_THREADS)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/api/v1"
    finally:
        server.close()
        thread.join(10)


def _another_producer(runtime: Any, network: Any, prefix: str) -> Any:
    """One more organisation writing at the same time (its own key, so its own nonce sequence)."""
    from supply_chain.services import orgs, tokens
    from tests.api.conftest import Member, gln, gtin

    with runtime.ctx() as ctx:
        regulator = ctx.session.merge(network["regulator"].org)
        org = orgs.onboard(ctx, regulator, f"Race Farm {prefix}", ["producer"], prefix)
        site = gln(prefix, "00001")
        orgs.register_location(ctx, org, site, "Race Farm field", "11 Test Road", None, None, "farm")
        member = Member("producer", org, prefix, site)
        member.gtin = orgs.register_product(ctx, org, gtin(prefix, "00001"), "Race greens", "test", True, "kg").gtin
        _, member.write = tokens.create(ctx, org, "race write", "write")
        ctx.session.commit()
    return member


@pytest.mark.parametrize(
    "spread", [False, True], ids=["200 writes on one lot", "200 writes over 20 lots of 3 organisations"]
)
def test_concurrent_writes_are_each_stored_once_in_order(
    live_api: str, client: Any, network: Any, api_runtime: Any, spread: bool
) -> None:
    writers = [network["producer"]]
    if spread:
        writers += [_another_producer(api_runtime, network, prefix) for prefix in ("0700011", "0700012")]
    lots: list[tuple[Any, str]] = []
    for number in range(20 if spread else 1):
        member = writers[number % len(writers)]
        code = new_code("RACE")
        response = Api(client, member)("POST", "/lots", json=harvest_body(member, code))
        assert response.status_code == 201, response.get_json()
        lots.append((member, code))

    def write(number: int) -> tuple[int, dict[str, Any]]:
        member, code = lots[number % len(lots)]
        note = {"kind": "observation", "payload": {"note": f"check {number}", "date": "2025-05-02"}}
        return post(f"{live_api}/lots/{member.gtin}/{code}/events", member.write, note)

    stop = threading.Event()
    maintenance_errors: list[BaseException] = []

    def maintenance() -> None:  # `lotline serve`'s background pass, far more often than its 30 s
        while not stop.wait(0.2):
            try:
                catch_up(api_runtime)
            except BaseException as exc:  # noqa: BLE001 - reported below
                maintenance_errors.append(exc)
                return

    indexer = threading.Thread(target=maintenance, daemon=True)
    indexer.start()
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(write, range(WRITES)))
    finally:
        stop.set()
        indexer.join(120)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: WRITES}, (statuses, [body for status, body in results if status != 201][:3])
    acknowledged = [body["event"] for _, body in results]
    assert all(a["status"] == "confirmed" and a["seq"] for a in acknowledged)
    assert maintenance_errors == []
    catch_up(api_runtime)  # a maintenance pass after the storm works
    with api_runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(PendingTransaction)) == 0
        stored: Counter[str] = Counter()
        for member, code in lots:
            lot = lot_service.get_lot(ctx, member.gtin, code)
            events = list(ctx.session.scalars(select(Event).where(Event.lot_id == lot.id).order_by(Event.seq)))
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), code
            assert all(e.status == "confirmed" for e in events)
            assert lot.event_count == len(events) and lot.head_hash == events[-1].head_after
            stored.update(e.payload["note"] for e in events[1:])
            assert verify_lot(ctx, lot).state == "verified", code
        assert stored == Counter(a["payload"]["note"] for a in acknowledged)  # each write once, none lost
