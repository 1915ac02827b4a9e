"""What the waitress server under ``lotline serve`` tells about itself: a quiet record of its request queue in
the log and the figures ``GET /metrics`` shows (``app.health``).

Waitress's own dispatcher writes "Task queue depth is N" at WARNING for every request that has to wait for a
thread, tens of thousands of lines in a busy minute. `QuietDispatcher` replaces that with one line when requests
start to queue, a summary at most every ``LOTLINE_QUEUE_LOG_SECONDS`` (default 60) while they still do, and one
line when the queue has drained, each with the figures an operator asks about (how many waited, the deepest the
queue got, for how long).

The figures live in `ServerGauges`: one slot of counters per worker process in memory shared across the
fork, so whichever worker answers ``/metrics`` reports every worker of the server, each labelled with its
number. Nothing in them says anything about lots, organisations or users.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger("lotline.server")

QUEUE_LOG_SECONDS_ENV = "LOTLINE_QUEUE_LOG_SECONDS"
QUEUE_LOG_SECONDS = 60.0

# One slot per worker: these signed 64-bit fields, in this order.
FIELDS = ("threads", "busy", "queue", "queue_peak", "queued_total", "requests_total", "backlogs_total")
_SLOT = struct.Struct(f"<{len(FIELDS)}q")
_INDEX = {name: i for i, name in enumerate(FIELDS)}


class ServerGauges:
    """Counters of each worker process, in anonymous shared memory made before the workers are forked (so
    every worker reads every other's). Each worker writes only its own slot."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._memory = mmap.mmap(-1, _SLOT.size * workers)

    def reset(self, worker: int) -> None:
        """Zero ``worker``'s slot (a worker started, or started again after it died)."""
        _SLOT.pack_into(self._memory, worker * _SLOT.size, *([0] * len(FIELDS)))

    def set(self, worker: int, **values: int) -> None:
        for name, value in values.items():
            struct.pack_into("<q", self._memory, worker * _SLOT.size + 8 * _INDEX[name], value)

    def add(self, worker: int, name: str, amount: int = 1) -> None:
        offset = worker * _SLOT.size + 8 * _INDEX[name]
        (value,) = struct.unpack_from("<q", self._memory, offset)
        struct.pack_into("<q", self._memory, offset, value + amount)

    def read(self, worker: int) -> dict[str, int]:
        return dict(zip(FIELDS, _SLOT.unpack_from(self._memory, worker * _SLOT.size), strict=True))


class QuietDispatcher(ThreadedTaskDispatcher):
    """Waitress's thread pool, with the queue logged by episode instead of by request, and its figures kept
    in ``gauges`` (slot ``worker``).

    "Queue depth" is waitress's own measure: requests handed to the pool that no idle thread is about to
    take, i.e. that wait because every thread is busy."""

    def __init__(
        self,
        gauges: ServerGauges,
        worker: int = 0,
        log_every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.gauges = gauges
        self.worker = worker
        every = os.environ.get(QUEUE_LOG_SECONDS_ENV, "").strip()
        self.log_every = log_every if log_every is not None else float(every or QUEUE_LOG_SECONDS)
        self._clock = clock
        self._busy = 0
        self._backlog: dict[str, float] | None = None  # the episode under way: since, last_line, peak, waited
        gauges.reset(worker)

    def set_thread_count(self, count: int) -> None:
        super().set_thread_count(count)
        self.gauges.set(self.worker, threads=count)

    def add_task(self, task: Any) -> None:
        with self.lock:
            self.queue.append(_Watched(task, self))
            self.queue_cv.notify()
            line = self._note(queued=True)
        _emit(line)

    def started(self) -> None:
        """A thread took a request (called by that thread)."""
        with self.lock:
            self._busy += 1
            line = self._note()
        _emit(line)

    def finished(self) -> None:
        with self.lock:
            self._busy -= 1
            line = self._note()
        _emit(line)

    def _depth(self) -> int:
        idle = len(self.threads) - self.stop_count - self.active_count
        return max(0, len(self.queue) - idle)

    def _note(self, queued: bool = False) -> tuple[int, str, tuple[Any, ...]] | None:
        """Update the figures (the lock is held) and say which line to log, if any."""
        depth = self._depth()
        gauges, worker = self.gauges, self.worker
        gauges.set(worker, busy=self._busy, queue=depth)
        if depth > 0 and queued:
            gauges.add(worker, "queued_total")
        if depth > gauges.read(worker)["queue_peak"]:
            gauges.set(worker, queue_peak=depth)
        if self.stop_count:
            return None  # shutting down: the threads are leaving, a queue now says nothing about load
        now = self._clock()
        episode = self._backlog
        if episode is None:
            if depth == 0:
                return None
            self._backlog = {"since": now, "last_line": now, "peak": depth, "waited": 1, "since_line": 0}
            gauges.add(worker, "backlogs_total")
            threads = len(self.threads) - self.stop_count
            return (
                logging.WARNING,
                "requests are queueing: %d waiting for a free thread (all %d busy); the next line about it at "
                "most %g s from now, or when the queue drains",
                (depth, threads, self.log_every),
            )
        if depth == 0:
            self._backlog = None
            return (
                logging.WARNING,
                "request queue drained after %.1f s: %d requests waited, at most %d at once",
                (now - episode["since"], episode["waited"], episode["peak"]),
            )
        episode["peak"] = max(episode["peak"], depth)
        if queued:
            episode["waited"] += 1
            episode["since_line"] += 1
        if now - episode["last_line"] < self.log_every:
            return None
        waited, episode["since_line"], episode["last_line"] = episode["since_line"], 0, now
        return (
            logging.WARNING,
            "requests still queueing after %.0f s: %d waiting now, at most %d at once, %d more waited since the "
            "last line",
            (now - episode["since"], depth, episode["peak"], waited),
        )


def _emit(line: tuple[int, str, tuple[Any, ...]] | None) -> None:
    if line is not None:
        level, message, args = line
        log.log(level, message, *args)


class _Watched:
    """A task handed to the pool, telling the dispatcher when a thread starts and ends it."""

    def __init__(self, task: Any, dispatcher: QuietDispatcher) -> None:
        self.task = task
        self.dispatcher = dispatcher

    def service(self) -> None:
        self.dispatcher.started()
        try:
            self.task.service()
        finally:
            self.dispatcher.finished()

    def cancel(self) -> None:
        self.task.cancel()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def __repr__(self) -> str:
        return repr(self.task)


def counting(app: Callable[..., Iterable[bytes]], gauges: ServerGauges, worker: int) -> Callable[..., Any]:
    """``app`` as a WSGI callable that counts the requests it is handed in ``gauges``."""
    lock = threading.Lock()

    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            gauges.add(worker, "requests_total")
        return app(environ, start_response)

    return counted


# ------------------------------------------------------------------ the text /metrics answers

_HELP = (
    ("threads", "gauge", "lotline_server_threads", "Request threads of the worker process."),
    ("busy", "gauge", "lotline_server_busy_threads", "Threads serving a request now."),
    (
        "queue",
        "gauge",
        "lotline_server_queue_depth",
        "Requests waiting for a free thread now (every thread busy).",
    ),
    (
        "queue_peak",
        "gauge",
        "lotline_server_queue_depth_peak",
        "The deepest the request queue has been since the worker started.",
    ),
    (
        "queued_total",
        "counter",
        "lotline_server_queued_requests_total",
        "Requests that had to wait for a free thread.",
    ),
    (
        "backlogs_total",
        "counter",
        "lotline_server_queue_backlogs_total",
        "Times requests started to queue (one log line each, not one per request).",
    ),
    ("requests_total", "counter", "lotline_server_requests_total", "HTTP requests handed to the app."),
)


def prometheus_text(gauges: ServerGauges | None, worker: int | None) -> str:
    """The Prometheus text exposition (format 0.0.4) of every worker's figures; ``worker`` is the one
    answering (``lotline_server_answering_worker``). Without gauges (the app is not under ``lotline serve``)
    only ``lotline_up``."""
    lines = ["# HELP lotline_up 1 when the app answers.", "# TYPE lotline_up gauge", "lotline_up 1"]
    if gauges is None:
        return "\n".join(lines) + "\n"
    slots = [gauges.read(i) for i in range(gauges.workers)]
    lines += [
        "# HELP lotline_server_workers Worker processes of the server.",
        "# TYPE lotline_server_workers gauge",
        f"lotline_server_workers {gauges.workers}",
        "# HELP lotline_server_answering_worker The worker process that answered this scrape.",
        "# TYPE lotline_server_answering_worker gauge",
        f"lotline_server_answering_worker {worker or 0}",
    ]
    for field, kind, name, text in _HELP:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f'{name}{{worker="{i}"}} {slot[field]}' for i, slot in enumerate(slots)]
    return "\n".join(lines) + "\n"


def create_server(app: Callable[..., Any], gauges: ServerGauges, worker: int, threads: int, **where: Any) -> Any:
    """A waitress server for ``app`` (``where``: ``host``/``port`` or ``sockets``, as ``waitress.serve``
    takes them) with `QuietDispatcher` as its thread pool and every request counted; ``run()`` serves until
    interrupted. ``_dispatcher`` is waitress's documented seam for its pool (``create_server``)."""
    from waitress import create_server as waitress_server

    dispatcher = QuietDispatcher(gauges, worker)
    dispatcher.set_thread_count(threads)
    return waitress_server(counting(app, gauges, worker), _dispatcher=dispatcher, threads=threads, **where)
