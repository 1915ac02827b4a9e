"""Two `lotline serve` processes on one PostgreSQL database and one JSON-RPC node (anvil): 200 concurrent writes
through both, on one lot and over lots of three organisations, each stored once, in order, and verified.

The writers of one organisation in different processes take their nonces in turn (an advisory lock per signing
key) and apply receipts idempotently, so neither process's view of a lot goes stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from supply_chain.chain.devnode import ANVIL_BINARY, free_port, start_anvil, stop
from tests.integration.conftest import _postgres_base_url, _postgres_schema_url
from tests.serving import post

pytestmark = pytest.mark.slow

WRITES = 200
THREADS = 50
SECRET = "two-servers-session-secret"
KEK = "two-servers-key-encryption-key-0123456789"


@pytest.fixture
def network(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Anvil, a PostgreSQL schema, the ledger deployed, three producers with a lot each and write tokens."""
    if not ANVIL_BINARY.is_file():
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("anvil not installed (npm ci installs @foundry-rs/anvil)", pytrace=False)
        pytest.skip("anvil not installed: run npm ci")
    from supply_chain.domain.identifiers import gs1_check_digit
    from supply_chain.services import lots, orgs, tokens
    from supply_chain.services.runtime import Runtime, Settings

    base = _postgres_base_url()
    url, node = start_anvil(tmp_path / "anvil.log")
    schema = _postgres_schema_url(base)
    db_url = next(schema)
    runtime = None
    try:
        settings = Settings.from_env(
            env={}, home=tmp_path / "setup", chain_url=url, database_url=db_url, secret_key=SECRET, kek=KEK
        )
        runtime = Runtime(settings)
        writers = []
        with runtime.ctx() as ctx:
            orgs.deploy(ctx)
            regulator = orgs.onboard(ctx, None, "Two Regulator", ["regulator", "admin"])
            for number in range(3):
                prefix = f"071000{number}"
                body = "0" + prefix + "00001"
                gtin = body + str(gs1_check_digit(body))
                site = prefix + "00001"
                site += str(gs1_check_digit(site))
                org = orgs.onboard(ctx, regulator, f"Two Farm {number}", ["producer"], prefix)
                orgs.register_location(ctx, org, site, f"Field {number}", "1 Road", None, None, "farm")
                orgs.register_product(ctx, org, gtin, f"Greens {number}", "test", True, "kg")
                _, token = tokens.create(ctx, org, "write", "write")
                ctx.session.commit()
                codes = []
                for lot_number in range(7 if number else 6):
                    code = f"TWO-{number}-{lot_number}"
                    lots.create_lot(
                        ctx,
                        org,
                        gtin,
                        code,
                        lots.EventKind.HARVESTING,
                        {"location_gln": site, "harvest_date": "2026-11-20", "commodity": "greens"},
                        "100",
                        "kg",
                    )
                    ctx.session.commit()
                    codes.append(code)
                writers.append({"gtin": gtin, "token": token, "codes": codes})
        yield {"chain_url": url, "db_url": db_url, "writers": writers, "runtime": runtime, "home": tmp_path}
    finally:
        if runtime is not None:
            runtime.close()
        stop(node)
        next(schema, None)  # drops the schema


def _serve(home: Path, chain_url: str, db_url: str) -> tuple[str, subprocess.Popen[bytes], Path]:
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "serve.log"
    env = dict(os.environ) | {
        "LOTLINE_HOME": str(home),
        "LOTLINE_CHAIN_URL": chain_url,
        "LOTLINE_DATABASE_URL": db_url,
        "LOTLINE_SECRET_KEY": SECRET,
        "LOTLINE_KEK": KEK,
        "LOTLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOTLINE_SYNC_SECONDS": "1",  # each server indexes the other's transactions all through the storm
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "supply_chain.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lotline serve exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return base, process, log
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"lotline serve did not answer:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("spread", [False, True], ids=["one lot", "20 lots of 3 organisations"])
def test_two_servers_on_postgresql_and_anvil_store_every_write_once(network: dict[str, Any], spread: bool) -> None:
    from supply_chain.services import lots as lot_service
    from supply_chain.services.startup import catch_up
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Event, PendingTransaction

    writers = network["writers"]
    targets = [(w, code) for w in writers for code in w["codes"]] if spread else [(writers[0], writers[0]["codes"][0])]
    servers = [_serve(network["home"] / f"serve-{n}", network["chain_url"], network["db_url"]) for n in range(2)]
    try:

        def write(number: int) -> tuple[int, dict[str, Any]]:
            writer, code = targets[number % len(targets)]
            base = servers[number % 2][0]
            note = {"kind": "observation", "payload": {"note": f"two {number}", "date": "2026-11-21"}}
            return post(f"{base}/api/v1/lots/{writer['gtin']}/{code}/events", writer["token"], note)

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(write, range(WRITES)))
    finally:
        for _, process, _ in servers:
            process.terminate()
        for _, process, _ in servers:
            process.wait(30)
    statuses = Counter(status for status, _ in results)
    logs = "\n".join(log.read_text()[-2000:] for _, _, log in servers)
    assert statuses == {201: WRITES}, (statuses, [b for s, b in results if s != 201][:3], logs)
    acknowledged = [body["event"] for _, body in results]
    assert all(a["status"] == "confirmed" and a["seq"] for a in acknowledged), Counter(
        (a["status"], bool(a["seq"])) for a in acknowledged
    )
    runtime = network["runtime"]
    catch_up(runtime)
    with runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(PendingTransaction)) == 0
        stored: Counter[str] = Counter()
        for writer, code in targets:
            lot = lot_service.get_lot(ctx, writer["gtin"], code)
            events = list(ctx.session.scalars(select(Event).where(Event.lot_id == lot.id).order_by(Event.seq)))
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), code
            assert all(e.status == "confirmed" for e in events), code
            assert lot.event_count == len(events) and lot.head_hash == events[-1].head_after
            stored.update(e.payload["note"] for e in events[1:])
            assert verify_lot(ctx, lot).state == "verified", code
        assert stored == Counter(a["payload"]["note"] for a in acknowledged)
