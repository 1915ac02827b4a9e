"""What the tests that drive a real `lotline serve` process share: starting one on a free port, a small JSON
client (urllib, no session state) that reports refusals and lost connections instead of raising, and a stream
of writes with the checks that every acknowledged one is stored once and verified."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from supply_chain.chain.devnode import free_port

SECRET = "serving-test-session-secret"
KEK = "serving-test-key-encryption-key-0123456789"
LOST = 0
"""The status `post` and `get` report when no whole answer came (connection refused, reset, timed out, or cut
off before the end of its body)."""


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def serve(
    home: Path, env: dict[str, str], port: int | None = None, timeout: float = 90, args: tuple[str, ...] = ()
) -> Server:
    """`lotline serve` on LOTLINE_HOME=`home` with `env` and the options `args` added, once /healthz answers
    (200 or 503)."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "serve.log"
    full = (
        dict(os.environ)
        | {
            "LOTLINE_HOME": str(home),
            "LOTLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PYTHONUNBUFFERED": "1",
        }
        | env
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "supply_chain.cli", "serve", "--port", str(port), *args],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"lotline serve exited {process.returncode}:\n{server.tail()}")
        status, _ = get(server.base + "/healthz", timeout=2)
        if status in (200, 503):
            return server
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"lotline serve did not answer:\n{server.tail()}")


def _call(request: urllib.request.Request, timeout: float) -> tuple[int, Any]:
    try:
        return _answer(request, timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        # refused, reset, timed out, or cut off mid-answer (the server killed after its status line, before
        # the body's end: IncompleteRead): no whole answer, so the write counts as unanswered and is resent
        return LOST, None


def _answer(request: urllib.request.Request, timeout: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw.decode(errors="replace")
    except urllib.error.HTTPError as err:
        raw = err.read() or b"{}"
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")


def post(url: str, token: str, body: dict[str, Any], key: str | None = None, timeout: float = 180) -> tuple[int, Any]:
    """POST `body` as JSON with a bearer token (and an Idempotency-Key); (status, parsed body), or (LOST, None)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    return _call(request, timeout)


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any]:
    return _call(urllib.request.Request(url, headers=headers or {}), timeout)


# ------------------------------------------------------------------ a stream of writes and what must hold after


@dataclass
class Stream:
    """Writers sending observation events, each with its own Idempotency-Key, until stopped."""

    server: Server
    producer: dict[str, Any]
    threads: int = 3
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> last answer
    answers: Counter[str] = field(default_factory=Counter)  # phase/status -> count
    history: dict[str, list[str]] = field(default_factory=dict)  # key -> phase/status of every attempt
    phase: str = "before"
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _count: int = 0

    @property
    def url(self) -> str:
        p = self.producer
        return f"{self.server.base}/api/v1/lots/{p['gtin']}/{p['code']}/events"

    def send(self, key: str) -> tuple[int, Any]:
        body = {"kind": "observation", "payload": {"note": key, "date": "2026-11-21"}}
        status, answer = post(self.url, self.producer["token"], body, key=key, timeout=60)
        with self._lock:
            self.sent[key] = {"status": status, "answer": answer}
            self.answers[f"{self.phase}/{status}"] += 1
            self.history.setdefault(key, []).append(f"{self.phase}/{status}@{time.monotonic():.1f}")
        return status, answer

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._count += 1
                key = f"w{self._count:05d}"
            status, _ = self.send(key)
            if status != 201:
                time.sleep(0.1)

    def __enter__(self) -> Stream:
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(90)

    def acknowledged(self) -> int:
        with self._lock:
            return sum(1 for a in self.sent.values() if a["status"] == 201)

    def wait_for(self, more: int, timeout: float = 120) -> None:
        target = self.acknowledged() + more
        deadline = time.monotonic() + timeout
        while self.acknowledged() < target:
            assert time.monotonic() < deadline, (self.answers, self.server.tail())
            time.sleep(0.2)

    def resend_unacknowledged(self, attempts: int = 20) -> None:
        """What a careful client does after an outage: the same request, the same key, until acknowledged."""
        for key in sorted(k for k, a in self.sent.items() if a["status"] != 201):
            for _ in range(attempts):
                if self.send(key)[0] == 201:
                    break
                time.sleep(0.5)


def settled(producer: dict[str, Any], server: Server, timeout: float = 90) -> None:
    """Wait until the server's maintenance pass has settled every pending write."""
    from supply_chain.store.models import PendingTransaction

    deadline = time.monotonic() + timeout
    while True:
        with producer["runtime"].ctx() as ctx:
            left = ctx.session.scalar(select(func.count()).select_from(PendingTransaction))
        if not left:
            return
        assert time.monotonic() < deadline, f"{left} writes still pending:\n{server.tail()}"
        time.sleep(0.5)


def check_every_write_stored_once_and_verified(producer: dict[str, Any], stream: Stream) -> dict[str, int]:
    from supply_chain.services import lots as lot_service
    from supply_chain.services.startup import catch_up
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Event

    runtime = producer["runtime"]
    catch_up(runtime)
    with runtime.ctx() as ctx:
        lot = lot_service.get_lot(ctx, producer["gtin"], producer["code"])
        events = list(ctx.session.scalars(select(Event).where(Event.lot_id == lot.id, Event.status == "confirmed")))
        events.sort(key=lambda e: e.seq)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert lot.event_count == len(events) and lot.head_hash == events[-1].head_after
        stored = Counter(e.payload["note"] for e in events[1:])
        assert verify_lot(ctx, lot).state == "verified"
    acknowledged = {k for k, a in stream.sent.items() if a["status"] == 201}
    twice = [k for k, n in stored.items() if n > 1]
    lost = acknowledged - set(stored)
    unacknowledged_but_stored = set(stored) - acknowledged
    assert not twice, twice
    assert not lost, lost
    assert not unacknowledged_but_stored, unacknowledged_but_stored
    figures = {"sent": len(stream.sent), "acknowledged": len(acknowledged), "stored": sum(stored.values())}
    figures |= {"lost": len(lost), "stored_twice": len(twice)}
    print("figures:", figures, dict(stream.answers))  # docs/reliability.md quotes a run of these
    return figures


def unanswered(stream: Stream) -> dict[str, list[str]]:
    """Writes whose last attempt was not acknowledged, with every attempt's phase/status@time."""
    return {k: [*stream.history[k][-3:], str(a["answer"])[:300]] for k, a in stream.sent.items() if a["status"] != 201}


def new_producer(chain_url: str | None, database_url: str | None, home: Path) -> dict[str, Any]:
    """Deploy the ledger, onboard a producer with one lot, and give it a write token."""
    from supply_chain.domain.identifiers import gs1_check_digit
    from supply_chain.services import lots, orgs, tokens
    from supply_chain.services.runtime import Runtime, Settings

    env = {"LOTLINE_DATABASE_URL": database_url} if database_url else {}
    settings = Settings.from_env(env=env, home=home, chain_url=chain_url, secret_key=SECRET, kek=KEK)
    runtime = Runtime(settings)
    with runtime.ctx() as ctx:
        orgs.deploy(ctx)
        regulator = orgs.onboard(ctx, None, "Outage Regulator", ["regulator", "admin"])
        prefix = "0720001"
        gtin = "0" + prefix + "00001"
        gtin += str(gs1_check_digit(gtin))
        site = prefix + "00001"
        site += str(gs1_check_digit(site))
        farm = orgs.onboard(ctx, regulator, "Outage Farm", ["producer"], prefix)
        orgs.register_location(ctx, farm, site, "Field", "1 Road", None, None, "farm")
        orgs.register_product(ctx, farm, gtin, "Greens", "test", True, "kg")
        _, token = tokens.create(ctx, farm, "write", "write")
        lots.create_lot(
            ctx,
            farm,
            gtin,
            "OUT-1",
            lots.EventKind.HARVESTING,
            {"location_gln": site, "harvest_date": "2026-11-20", "commodity": "greens"},
            "100",
            "kg",
        )
    return {"runtime": runtime, "settings": settings, "gtin": gtin, "code": "OUT-1", "token": token}


def reopen(producer: dict[str, Any]) -> None:
    """Close the test's own runtime and open a fresh one (its pool holds no connection from before an outage)."""
    from supply_chain.services.runtime import Runtime

    producer["runtime"].close()
    producer["runtime"] = Runtime(producer["settings"])
