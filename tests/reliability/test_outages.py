"""The chain node or the database goes away while writes stream in through `lotline serve`.

While it is away, a write answers 503 with a message that says what is down and whether anything was kept;
reads that need only the other half keep answering. When it is back, the client sends again what was not
acknowledged (same Idempotency-Key), the server settles what it had kept pending, and in the end every write
sent is stored once, in order, confirmed and verified: sent = acknowledged, lost = 0.

The database outage stops a PostgreSQL server of the test's own (initdb in a temporary folder, run as the
`postgres` user), so the suite's shared server is not touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supply_chain.chain.devnode import ANVIL_BINARY, free_port, start_anvil, stop
from tests.serving import (
    KEK,
    SECRET,
    Stream,
    check_every_write_stored_once_and_verified,
    get,
    new_producer,
    reopen,
    serve,
    settled,
    unanswered,
)

pytestmark = pytest.mark.slow

IN_CI = os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# ------------------------------------------------------------------ the pieces that go away


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """An anvil node keeping its chain in a state file, so it can be stopped and started again."""
    if not ANVIL_BINARY.is_file():
        _missing("anvil not installed (npm ci installs @foundry-rs/anvil)")
    state = tmp_path / "anvil-state.json"
    url, node = start_anvil(tmp_path / "anvil.log", state=state)
    port = int(url.rsplit(":", 1)[1])
    box = {"url": url, "node": node}

    def stop_node() -> None:
        stop(box["node"])  # SIGTERM: anvil writes its state file on the way out

    def start_node() -> None:
        box["node"] = start_anvil(tmp_path / "anvil-again.log", port=port, state=state)[1]

    box |= {"stop": stop_node, "start": start_node}
    try:
        yield box
    finally:
        stop(box["node"])


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


@pytest.fixture
def own_postgres() -> Iterator[dict[str, Any]]:
    """A PostgreSQL server of this test's own, started and stopped with pg_ctl as the postgres user."""
    bindir = _pg_bindir()
    if bindir is None or shutil.which("runuser") is None:
        _missing("PostgreSQL server binaries not installed (apt-get install postgresql)")
    if os.geteuid() != 0:
        _missing("stopping a PostgreSQL server of its own needs root (to run pg_ctl as postgres)")
    folder = Path(tempfile.mkdtemp(prefix="lotline-pg-outage-"))
    data = folder / "data"
    port = free_port()
    subprocess.run(["chown", "postgres", str(folder)], check=True)

    def as_postgres(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *args], check=check, capture_output=True, text=True, cwd="/"
        )

    as_postgres(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={data}"

    def start_server() -> None:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o", options, "start")

    def stop_server() -> None:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")

    start_server()
    as_postgres(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "lotline")
    try:
        yield {
            "url": f"postgresql+psycopg://postgres@127.0.0.1:{port}/lotline",
            "start": start_server,
            "stop": stop_server,
        }
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ a producer and a stream of writes


# ------------------------------------------------------------------ the tests


def test_chain_outage_mid_stream_answers_503_keeps_reads_and_reconciles_after(
    tmp_path: Path, anvil: dict[str, Any]
) -> None:
    producer = new_producer(anvil["url"], None, tmp_path / "home")
    env = {
        "LOTLINE_CHAIN_URL": anvil["url"],
        "LOTLINE_SECRET_KEY": SECRET,
        "LOTLINE_KEK": KEK,
        "LOTLINE_SYNC_SECONDS": "1",
        "LOTLINE_PENDING_GRACE_SECONDS": "3",
    }
    server = serve(tmp_path / "home", env)
    page = f"{server.base}/01/{producer['gtin']}/10/{producer['code']}"
    try:
        with Stream(server, producer) as stream:
            stream.wait_for(12)
            stream.phase = "outage"
            anvil["stop"]()
            time.sleep(4)  # writes keep coming while the node is away
            refusals = [a["answer"] for a in list(stream.sent.values()) if a["status"] == 503]
            health, _ = get(server.base + "/healthz")
            read, body = get(page, headers={"Accept": "application/json"})
            anvil["start"]()
            stream.phase = "after"
            stream.wait_for(12)
        stream.phase = "resent"
        stream.resend_unacknowledged()
        settled(producer, server)
    finally:
        server.process.terminate()
        server.process.wait(30)
    assert refusals, stream.answers
    assert {r["error"] for r in refusals} == {"chain_unavailable"}, refusals[:3]
    assert all("chain" in r["message"].lower() for r in refusals), refusals[:3]
    assert health == 503
    assert read == 200 and body["lot"]["lot_code"] == producer["code"]  # reads need only the database
    assert not unanswered(stream), (unanswered(stream), stream.answers)
    figures = check_every_write_stored_once_and_verified(producer, stream)
    assert figures["sent"] == figures["acknowledged"] == figures["stored"]
    producer["runtime"].close()


def test_database_outage_mid_stream_answers_503_and_reconciles_after(
    tmp_path: Path, anvil: dict[str, Any], own_postgres: dict[str, Any]
) -> None:
    producer = new_producer(anvil["url"], own_postgres["url"], tmp_path / "home")
    producer["runtime"].close()  # no connection of the test's own is open when the server goes away
    env = {
        "LOTLINE_CHAIN_URL": anvil["url"],
        "LOTLINE_DATABASE_URL": own_postgres["url"],
        "LOTLINE_SECRET_KEY": SECRET,
        "LOTLINE_KEK": KEK,
        "LOTLINE_SYNC_SECONDS": "1",
        "LOTLINE_PENDING_GRACE_SECONDS": "3",
    }
    server = serve(tmp_path / "home", env)
    try:
        with Stream(server, producer) as stream:
            stream.wait_for(12)
            stream.phase = "outage"
            own_postgres["stop"]()
            time.sleep(4)
            refusals = [a["answer"] for a in list(stream.sent.values()) if a["status"] == 503]
            health, _ = get(server.base + "/healthz")
            own_postgres["start"]()
            reopen(producer)
            stream.phase = "after"
            stream.wait_for(12)
        stream.phase = "resent"
        stream.resend_unacknowledged()
        if unanswered(stream):
            server.process.send_signal(signal.SIGUSR1)  # every thread's stack into the log, for the failure
            time.sleep(1)
        settled(producer, server)
        alive, _ = get(server.base + "/healthz")
    finally:
        server.process.terminate()
        server.process.wait(30)
    assert refusals, stream.answers
    assert {r["error"] for r in refusals} <= {"database_unavailable", "chain_unavailable"}, refusals[:3]
    assert any(r["error"] == "database_unavailable" for r in refusals), refusals[:3]
    assert health == 503 and alive == 200
    assert not unanswered(stream), (unanswered(stream), stream.answers)
    figures = check_every_write_stored_once_and_verified(producer, stream)
    assert figures["sent"] == figures["acknowledged"] == figures["stored"]
    producer["runtime"].close()
