"""`lotline serve --workers N`: several processes on one port, on a JSON-RPC chain and PostgreSQL and on the
defaults (the embedded chain, held by the first process for the others, and SQLite).

The processes are told apart by the ``X-Lotline-Worker`` header (worker number and process id), which the
server adds only with ``LOTLINE_SHOW_WORKER=1``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from supply_chain.chain.devnode import ANVIL_BINARY, start_anvil, stop
from supply_chain.domain.errors import InvalidInput
from supply_chain.services.runtime import Settings
from tests.integration.conftest import _postgres_base_url, _postgres_schema_url
from tests.serving import KEK, SECRET, new_producer, post, serve

pytestmark = pytest.mark.slow
METRICS_TOKEN = "workers-test-metrics-token"


def _answer(url: str, headers: dict[str, str] | None = None) -> tuple[int, str | None, Any]:
    """(status, the X-Lotline-Worker header, parsed JSON body) of a GET on a new connection."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers.get("X-Lotline-Worker"), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("X-Lotline-Worker"), err.read()


def _pid(header: str | None) -> int:
    assert header, "no X-Lotline-Worker header"
    return int(header.split()[1])


# ------------------------------------------------------------------ the embedded chain and SQLite


def test_worker_count_rules(tmp_path: Path) -> None:
    embedded = Settings.from_env(env={}, home=tmp_path)
    assert embedded.workers == 1 and embedded.worker_processes() == 1
    # several processes on the defaults too: the first holds the embedded chain for the others
    assert embedded.worker_processes("3") == 3
    assert Settings.from_env(env={"LOTLINE_WORKERS": "auto"}, home=tmp_path).worker_processes() == (os.cpu_count() or 1)
    for bad in ("0", "many", "-1", "65"):
        with pytest.raises(InvalidInput) as wrong:
            Settings.from_env(env={"LOTLINE_WORKERS": bad}, home=tmp_path)
        assert wrong.value.field == "LOTLINE_WORKERS" and "from 1 to 64 or auto" in wrong.value.message


def _wait_for(predicate: Any, what: str, server: Any, bound: float = 120) -> None:
    deadline = time.monotonic() + bound  # a bound on the wait, not a timed assertion
    while not predicate():
        assert time.monotonic() < deadline, f"{what}:\n{server.tail()}"
        time.sleep(0.2)


def test_two_workers_on_the_embedded_chain_share_it_and_writes_answer_503_without_its_holder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    p = new_producer(None, None, home)  # the embedded chain and SQLite in `home`, the defaults
    p["runtime"].close()
    env = {"LOTLINE_SECRET_KEY": SECRET, "LOTLINE_KEK": KEK, "LOTLINE_SHOW_WORKER": "1"}
    server = serve(home, env, timeout=300, args=("--workers", "2"))  # the holder opens the chain first
    stopped_parent = False
    try:
        lot_url = f"{server.base}/api/v1/lots/{p['gtin']}/{p['code']}"
        auth = {"Authorization": f"Bearer {p['token']}"}
        _wait_for(lambda: _answer(server.base + "/healthz")[0] == 200, "never healthy", server)
        # A write through the API, answered by whichever process took it ...
        status, _ = post(
            lot_url + "/events",
            p["token"],
            {"kind": "observation", "payload": {"note": "one write", "date": "2026-11-21"}},
        )
        assert status == 201, server.tail()
        # ... is seen by both processes (each answers from the store; one of them holds the chain).
        seen: dict[int, list[str]] = {}
        with ThreadPoolExecutor(8) as pool:
            for _round in range(50):
                for code, header, body in pool.map(lambda _n: _answer(lot_url + "/events", auth), range(16)):
                    assert code == 200, (code, body, server.tail())
                    seen[_pid(header)] = [e["payload"].get("note") for e in body["items"]]
                if len(seen) == 2:
                    break
        assert len(seen) == 2 and server.process.pid not in seen, (seen, server.tail())
        assert all("one write" in notes for notes in seen.values()), seen
        # The consumer page renders.
        page = urllib.request.urlopen(f"{server.base}/01/{p['gtin']}/10/{p['code']}", timeout=60)
        with page:
            assert page.status == 200 and p["code"] in page.read().decode()

        log = server.tail(50_000)
        holder = int(re.search(r"worker 0 \(pid (\d+)\) holds the embedded chain", log).group(1))  # type: ignore[union-attr]
        assert holder in seen and log.count("holds the embedded chain") == 1  # one holder, the other reaches it
        # The holder dies while its parent cannot start it again: writes answer 503 at once, reads still answer.
        os.kill(server.process.pid, signal.SIGSTOP)
        stopped_parent = True
        os.kill(holder, signal.SIGKILL)
        status, body = post(
            lot_url + "/events", p["token"], {"kind": "observation", "payload": {"note": "lost", "date": "2026-11-21"}}
        )
        assert status == 503, (status, body)
        assert "holding the embedded chain" in body["message"], body
        code, header, body = _answer(lot_url + "/events", auth)
        assert code == 200 and _pid(header) != holder and "lost" not in str(body), body
        page = urllib.request.urlopen(f"{server.base}/01/{p['gtin']}/10/{p['code']}", timeout=60)
        with page:
            assert page.status == 200
    finally:
        if stopped_parent:  # it then stops the holder it starts again, and the other worker
            os.kill(server.process.pid, signal.SIGCONT)
        server.process.terminate()
        code = server.process.wait(timeout=120)
    assert code == 0, server.tail()


def test_bench_workers_needs_counts_and_a_postgresql_url_if_any(tmp_path: Path) -> None:
    def bench(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOTLINE_")} | {"LOTLINE_HOME": str(tmp_path)}
        return subprocess.run(
            [sys.executable, "-m", "supply_chain.cli", "bench", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    wrong = bench("--workers", "1,two")
    assert wrong.returncode == 2 and "(field: --workers)" in wrong.stderr and "1,2,4" in wrong.stderr
    # --postgres must be PostgreSQL (without it, the figures are taken on the defaults)
    sqlite = bench("--workers", "1,2", "--postgres", f"sqlite:///{tmp_path / 'x.db'}")
    assert sqlite.returncode == 2 and "(field: --postgres)" in sqlite.stderr and "PostgreSQL" in sqlite.stderr


# ------------------------------------------------------------------ PostgreSQL + anvil: several processes


@pytest.fixture
def rpc_producer(tmp_path: Path) -> Iterator[dict[str, Any]]:
    if not ANVIL_BINARY.is_file():
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("anvil not installed (npm ci installs @foundry-rs/anvil)", pytrace=False)
        pytest.skip("anvil not installed: run npm ci")
    base = _postgres_base_url()
    url, node = start_anvil(tmp_path / "anvil.log")
    schema = _postgres_schema_url(base)
    db_url = next(schema)
    producer = None
    try:
        producer = new_producer(url, db_url, tmp_path / "setup")
        producer |= {"chain_url": url, "database_url": db_url}
        yield producer
    finally:
        if producer is not None:
            producer["runtime"].close()
        schema.close()
        stop(node)


def test_two_workers_serve_one_port_and_see_each_others_writes(rpc_producer: dict[str, Any], tmp_path: Path) -> None:
    env = {
        "LOTLINE_CHAIN_URL": rpc_producer["chain_url"],
        "LOTLINE_DATABASE_URL": rpc_producer["database_url"],
        "LOTLINE_SECRET_KEY": SECRET,
        "LOTLINE_KEK": KEK,
        "LOTLINE_SHOW_WORKER": "1",
        "LOTLINE_METRICS_TOKEN": METRICS_TOKEN,
    }
    server = serve(tmp_path / "home", env, args=("--workers", "2"))
    try:
        # Requests on new connections, 8 at a time, until both processes have answered.
        pids: set[int] = set()
        with ThreadPoolExecutor(8) as pool:
            for _round in range(50):
                answers = list(pool.map(lambda _n: _answer(server.base + "/healthz"), range(16)))
                assert all(status == 200 for status, _, _ in answers), (answers, server.tail())
                pids |= {_pid(header) for _, header, _ in answers}
                if len(pids) == 2:
                    break
        assert len(pids) == 2, (pids, server.tail())
        assert server.process.pid not in pids  # the parent only supervises

        # Whichever worker answers /metrics reports both: each has served requests (counted in memory the
        # workers share), and its own request is counted too.
        scrape = urllib.request.Request(server.base + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        with urllib.request.urlopen(scrape, timeout=60) as response:
            metrics = response.read().decode()
        served = {
            int(worker): int(count)
            for worker, count in re.findall(r'^lotline_server_requests_total\{worker="(\d)"\} (\d+)$', metrics, re.M)
        }
        assert set(served) == {0, 1} and all(count > 0 for count in served.values()), metrics
        assert "lotline_server_workers 2" in metrics and 'lotline_server_threads{worker="1"} 8' in metrics

        # A write answered by one process...
        p = rpc_producer
        lot_url = f"{server.base}/api/v1/lots/{p['gtin']}/{p['code']}"
        request = urllib.request.Request(
            lot_url + "/events",
            data=json.dumps({"kind": "observation", "payload": {"note": "through one", "date": "2026-11-21"}}).encode(),
            headers={"Authorization": f"Bearer {p['token']}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 201
            writer = _pid(response.headers.get("X-Lotline-Worker"))
        # ... is read through the other.
        auth = {"Authorization": f"Bearer {p['token']}"}
        seen_by_other = None
        with ThreadPoolExecutor(8) as pool:
            for _round in range(50):
                answers = list(pool.map(lambda _n: _answer(lot_url + "/events", auth), range(16)))
                others = [body for status, header, body in answers if status == 200 and _pid(header) != writer]
                if others:
                    seen_by_other = others[0]
                    break
        assert seen_by_other is not None, server.tail()
        notes = [e["payload"].get("note") for e in seen_by_other["items"]]
        assert "through one" in notes, seen_by_other

        # A second write, whichever process takes it, follows the first on the lot (one nonce order, one head).
        status, _ = post(
            lot_url + "/events",
            p["token"],
            {"kind": "observation", "payload": {"note": "second", "date": "2026-11-21"}},
        )
        assert status == 201

        # A worker that dies is started again: answers come from two processes again, one of them new.
        os.kill(writer, signal.SIGKILL)
        after: set[int] = set()
        deadline = time.monotonic() + 300  # a bound on the wait, not a timed assertion
        while not (len(after) == 2 and writer not in after) and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _n: _answer(server.base + "/healthz"), range(16)))
            after = {_pid(header) for status, header, _ in answers if status == 200} | (after - {writer})
            time.sleep(0.5)
        assert writer not in after and len(after) == 2 and len(after - pids) == 1, (after, pids, server.tail())
        assert "starting it again" in server.tail(20_000)
    finally:
        server.process.terminate()
        code = server.process.wait(timeout=120)
    assert code == 0, server.tail()
    log = server.tail(20_000)
    assert "with 2 worker processes" in log and log.count("stopped") >= 3  # both workers and the parent


def test_the_chain_holder_answers_only_requests_that_carry_its_secret(tmp_path: Path) -> None:
    from supply_chain.chain.connect import ChainHolderAddress, connect, use_chain_holder
    from supply_chain.services.chainshare import hold_chain, new_holder_address
    from supply_chain.services.runtime import Runtime

    runtime = Runtime(Settings.from_env(env={}, home=tmp_path))
    address = new_holder_address()
    holder = hold_chain(runtime, address)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
        for given in ("", "Bearer wrong"):
            request = urllib.request.Request(address.url, data=body, headers={"Authorization": given}, method="POST")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 401
            refused.value.close()
        # with it, the ordinary JSON-RPC client reaches the same chain, as the embedded mode
        use_chain_holder(ChainHolderAddress(address.url, address.secret))
        try:
            remote = connect(tmp_path)
        finally:
            use_chain_holder(None)
        try:
            assert remote.mode == "embedded" and remote.w3.eth.chain_id == runtime.chain.w3.eth.chain_id
            assert remote.w3.eth.get_block("latest")["hash"] == runtime.chain.w3.eth.get_block("latest")["hash"]
        finally:
            remote.close()
    finally:
        holder.stop()
        runtime.close()


def test_a_write_through_the_chain_holder_reads_its_receipt_as_a_local_write_would(tmp_path: Path) -> None:
    """The holder relays the in-process provider's answers, whose numbers are ints where a node sends hex
    strings: the raw receipt read of a write (`Ledger.submit` over HTTP) takes both."""
    from supply_chain.bench import commissioning_document
    from supply_chain.chain.connect import ChainHolderAddress, use_chain_holder
    from supply_chain.domain.identifiers import gs1_check_digit
    from supply_chain.services import lots
    from supply_chain.services.chainshare import hold_chain, new_holder_address
    from supply_chain.services.epcis import jobs
    from supply_chain.services.runtime import Runtime

    home = tmp_path / "home"
    p = new_producer(None, None, home)
    address = new_holder_address()
    holder = hold_chain(p["runtime"], address)
    try:
        use_chain_holder(ChainHolderAddress(address.url, address.secret))  # as in a worker: the chain is opened lazily
        worker = Runtime(p["settings"])
        try:
            assert worker.chain.mode == "embedded" and "127.0.0.1" in str(worker.chain.w3.provider.endpoint_uri)
            with worker.ctx() as ctx:
                lot = lots.get_lot(ctx, p["gtin"], p["code"])
                site = p["gtin"][1:8] + "00001"
                site += str(gs1_check_digit(site))
                payload = {"location_gln": site, "cooling_date": "2026-11-21"}
                event = lots.record_event(ctx, lot.custodian, lot, lots.EventKind.COOLING, payload)
            local = p["runtime"].chain.w3.eth.get_transaction_receipt(event.tx_hash)
            assert event.block_number == local["blockNumber"] and event.status == "confirmed"
            # a capture job's batch, sent without a pre-flight (its gas limit from the latest block, read raw)
            document = commissioning_document(p["gtin"], site, 3, name="urn:test:holder", lot="H-{}", day="2026-11-22")
            with worker.ctx() as ctx:
                farm = lots.get_lot(ctx, p["gtin"], p["code"]).custodian
                job, _ = jobs.submit(ctx, farm, document, inline_calls=0)
            assert jobs.run_pending(worker) == {job.id: "done"}
            with worker.ctx() as ctx:
                made = [lots.get_lot(ctx, p["gtin"], f"H-{i}") for i in range(3)]
                assert [m.event_count for m in made] == [1, 1, 1]
                assert all(e.status == "confirmed" for m in made for e in m.events)
        finally:
            worker.close()
    finally:
        use_chain_holder(None)
        holder.stop()
        p["runtime"].close()
