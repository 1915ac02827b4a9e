"""The waitress server under `lotline serve`: its request queue logged by episode, not once per waiting request,
and its figures at ``GET /metrics`` (Prometheus text) behind the metrics token.

The burst test serves the real app with the pool `lotline serve` builds (app.wsgi.make_waitress), holds every
thread with requests that wait on an event, and queues more behind them: no timed assertions, only waits for
the state to be reached.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from waitress import wasyncore

from app import wsgi
from app.server_metrics import QuietDispatcher, ServerGauges

TOKEN = "metrics-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _metric(text: str, name: str, worker: int) -> int:
    match = re.search(rf'^{name}{{worker="{worker}"}} (\d+)$', text, re.M)
    assert match, f"{name} of worker {worker} not in:\n{text}"
    return int(match.group(1))


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 60  # a bound on the wait, not a timed assertion
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


# ------------------------------------------------------------------ who may read /metrics


def test_metrics_are_not_served_without_a_token_configured(make_app: Any) -> None:
    assert make_app().test_client().get("/metrics").status_code == 404


@pytest.mark.parametrize("given", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer "])
def test_metrics_refuse_a_request_without_the_token(make_app: Any, given: str | None) -> None:
    client = make_app(METRICS_TOKEN=TOKEN).test_client()
    response = client.get("/metrics", headers={"Authorization": given} if given else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "lotline_" not in response.get_data(as_text=True)


def test_metrics_report_every_workers_slot_whichever_answers(make_app: Any) -> None:
    """Worker 1 answers; worker 0's figures (written by another process into the shared slots) are there too."""
    app = make_app(METRICS_TOKEN=TOKEN)
    gauges = ServerGauges(2)
    gauges.set(0, threads=8, busy=8, queue=5, requests_total=120)
    gauges.set(1, threads=8, busy=1, requests_total=7)
    app.extensions["lotline_server_gauges"] = (gauges, 1)
    response = app.test_client().get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    assert _metric(text, "lotline_server_queue_depth", 0) == 5
    assert _metric(text, "lotline_server_requests_total", 0) == 120
    assert _metric(text, "lotline_server_busy_threads", 1) == 1
    assert "lotline_server_workers 2" in text and "lotline_server_answering_worker 1" in text
    assert "# TYPE lotline_server_requests_total counter" in text


# ------------------------------------------------------------------ a burst against the real pool


@pytest.fixture
def held(make_app: Any) -> Iterator[dict[str, Any]]:
    """The app served by waitress with 2 threads and `/test-hold` (answers once ``gate`` is set)."""
    app: Flask = make_app(METRICS_TOKEN=TOKEN)
    gate = threading.Event()
    entered = threading.Semaphore(0)

    def hold() -> str:
        entered.release()
        gate.wait(120)
        return "released"

    app.add_url_rule("/test-hold", "test_hold", hold)
    gauges = ServerGauges(1)
    server = wsgi.make_waitress(app, gauges, 0, threads=2, host="127.0.0.1", port=0)
    runner = threading.Thread(target=server.run, name="test-waitress", daemon=True)
    runner.start()
    try:
        yield {"app": app, "gauges": gauges, "gate": gate, "entered": entered, "port": server.effective_port}
    finally:
        gate.set()
        # Close every socket from the loop's own thread; the loop ends once it has nothing left to watch.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        runner.join(30)
        server.task_dispatcher.shutdown()


def _get(port: int, path: str, answers: list[int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        answers.append(response.status)
    finally:
        connection.close()


def test_a_burst_logs_two_lines_and_metrics_show_the_queue_while_requests_are_held(
    held: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port, gauges, answers = held["port"], held["gauges"], []
    clients = [threading.Thread(target=_get, args=(port, "/test-hold", answers)) for _ in range(2)]
    for client in clients:
        client.start()
    for _ in range(2):
        assert held["entered"].acquire(timeout=60), "the holding requests never reached the app"
    # Both threads are held: these wait in the queue.
    queued = [threading.Thread(target=_get, args=(port, "/test-hold", answers)) for _ in range(12)]
    for client in queued:
        client.start()
    _wait_for(lambda: gauges.read(0)["queue"] == 12, "12 queued requests")

    # The scrape reads the live figures (through the app, as any worker's /metrics would).
    text = held["app"].test_client().get("/metrics", headers=AUTH).get_data(as_text=True)
    assert _metric(text, "lotline_server_queue_depth", 0) == 12
    assert _metric(text, "lotline_server_busy_threads", 0) == 2
    assert _metric(text, "lotline_server_threads", 0) == 2

    held["gate"].set()
    for client in clients + queued:
        client.join(120)
    assert answers == [200] * 14

    # A client has its answer a moment before the pool's thread counts itself idle again: wait for that.
    _wait_for(lambda: gauges.read(0)["busy"] == 0, "the pool's threads idle again")
    after = gauges.read(0)
    assert after["queue"] == 0 and after["busy"] == 0
    assert after["queue_peak"] == 12 and after["queued_total"] == 12 and after["backlogs_total"] == 1
    assert after["requests_total"] == 14
    lines = [r.getMessage() for r in caplog.records if r.name in ("lotline.server", "waitress.queue")]
    # Waitress alone writes "Task queue depth is N" once per queued request: 12 lines here.
    assert not [line for line in lines if "Task queue depth" in line]
    assert len(lines) == 2, lines
    assert lines[0].startswith("requests are queueing: 1 waiting")
    assert lines[1].startswith("request queue drained after") and "12 requests waited, at most 12" in lines[1]


class _Task:
    def service(self) -> None:  # pragma: no cover - never run: the pool here has no threads
        pass

    def cancel(self) -> None:
        pass


def test_a_long_backlog_is_summarised_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    """A pool without threads (every task waits) and a clock the test moves."""
    caplog.set_level(logging.INFO, logger="lotline.server")
    now = [0.0]
    pool = QuietDispatcher(ServerGauges(1), log_every=60, clock=lambda: now[0])
    for second in range(0, 180):
        now[0] = float(second)
        for _ in range(10):
            pool.add_task(_Task())
    pool.queue.clear()
    pool.started()  # a thread took the last one: the queue has drained
    lines = [r.getMessage() for r in caplog.records if r.name == "lotline.server"]
    assert len(lines) == 1 + 2 + 1, lines  # start, a summary at 60 s and at 120 s, drained
    assert lines[1].startswith("requests still queueing after 60 s: 601 waiting now")
    assert "600 more waited since the last line" in lines[1]
    assert lines[-1].startswith("request queue drained after 179.0 s: 1800 requests waited, at most 1800")
