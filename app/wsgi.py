"""Serving the app with waitress (``lotline serve``), and a factory for other WSGI servers.

Nothing happens at import time: ``application()`` builds the app when a server asks for it, e.g.
``waitress-serve --call app.wsgi:application``.

Verification after a start: the store may have been edited while the server was stopped, so before it serves
its first request every lot is marked unchecked (pages say "Pending verification", never "verified") and a
background pass verifies every lot against the chain, committing as it goes; each lot's page says "verified"
again once its own check has passed. We chose this over verifying everything before listening: the pages
(recalls and holds included, which come from the anchored events) are available at once however many lots
there are, and none of them claims more than has been checked.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import mmap
import os
import signal
import socket
import threading
import time
from datetime import timedelta
from typing import Any

from flask import Flask

from app import create_app
from app.server_metrics import ServerGauges, create_server
from supply_chain.services.chainshare import ChainHolderAddress, hold_chain, new_holder_address, reach_chain_through
from supply_chain.services.delivery import DeliveryWorker
from supply_chain.services.epcis.jobs import CaptureWorker
from supply_chain.services.startup import Maintenance, mark_unchecked

THREADS = 8


def application() -> Flask:
    """A new app from the ``LOTLINE_*`` environment, its lots marked unchecked and verified in the background."""
    app = create_app()
    start_maintenance(app)
    start_capture_worker(app)
    start_delivery_worker(app)
    return app


def start_maintenance(app: Flask, mark: bool = True) -> Maintenance:
    """Mark every lot unchecked (unless ``mark`` is False: a parent process did it), then start the background
    thread that verifies them all at once and keeps indexing and re-verifying on a schedule
    (``LOTLINE_SYNC_SECONDS``, ``LOTLINE_VERIFY_SECONDS``); a pending write older than
    ``LOTLINE_PENDING_GRACE_SECONDS`` (default 120) that no writer is sending is settled by that pass."""
    runtime = app.extensions["lotline"]
    if mark:
        marked = mark_unchecked(runtime)
        logging.getLogger("lotline").info("%d lots marked unchecked until verified against the chain", marked)
    maintenance = Maintenance(
        runtime,
        sync_seconds=float(os.environ.get("LOTLINE_SYNC_SECONDS", "30")),
        verify_seconds=float(os.environ.get("LOTLINE_VERIFY_SECONDS", "600")),
        verify_at_start=True,
        pending_grace=timedelta(seconds=float(os.environ.get("LOTLINE_PENDING_GRACE_SECONDS", "120"))),
    )
    maintenance.start()
    app.extensions["lotline_maintenance"] = maintenance
    return maintenance


def start_capture_worker(app: Flask) -> CaptureWorker:
    """Start the thread that writes EPCIS capture jobs in the background (woken by each new job, and every
    ``LOTLINE_JOB_POLL_SECONDS`` for jobs queued by another process or left by a crash)."""
    worker = CaptureWorker(
        app.extensions["lotline"], poll_seconds=float(os.environ.get("LOTLINE_JOB_POLL_SECONDS", "5"))
    )
    worker.start()
    app.extensions["lotline_capture_worker"] = worker
    return worker


def start_delivery_worker(app: Flask) -> DeliveryWorker:
    """Start the thread that sends notices by e-mail and webhook (woken after each commit that enqueued some,
    and every ``LOTLINE_DELIVERY_POLL_SECONDS`` for retries and deliveries enqueued by another process)."""
    worker = DeliveryWorker(
        app.extensions["lotline"], poll_seconds=float(os.environ.get("LOTLINE_DELIVERY_POLL_SECONDS", "5"))
    )
    worker.start()
    app.extensions["lotline_delivery_worker"] = worker
    return worker


def _stop(_signum: int, _frame: object) -> None:
    # A second signal (Ctrl+C reaches every process of the group, and a parent forwards SIGTERM as well) must
    # not interrupt the shutdown the first one started.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


SHOW_WORKER_ENV = "LOTLINE_SHOW_WORKER"
"""Set to 1, every answer carries ``X-Lotline-Worker: <worker number> <process id>`` (tests and operators
checking how requests spread over the processes; off by default: the process id is nobody else's business)."""


def _show_worker(app: Flask, index: int) -> None:
    if os.environ.get(SHOW_WORKER_ENV, "").strip() != "1":
        return
    value = f"{index} {os.getpid()}"

    @app.after_request
    def _worker_header(response):  # noqa: ANN001, ANN202 - a Flask response hook
        response.headers["X-Lotline-Worker"] = value
        return response


def _public_url_config(host: str, port: int) -> dict[str, str]:
    config: dict[str, str] = {}
    if not os.environ.get("LOTLINE_PUBLIC_URL"):
        # Without a configured public URL, QR codes point at this server rather than at a port nobody serves
        # (set LOTLINE_PUBLIC_URL for labels that phones elsewhere should open).
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        config["LOTLINE_PUBLIC_URL"] = f"http://{shown}:{port}"
    return config


def serve(host: str = "127.0.0.1", port: int = 8000, workers: str | None = None) -> None:
    """Run the app under waitress until interrupted; the runtime (chain, database) is closed after.

    ``workers`` (``--workers``; None: ``LOTLINE_WORKERS``; ``auto``: one per core) processes share one
    listening socket (``Settings.worker_processes``); on the embedded chain the first of them holds the chain
    and the others reach it through that one (``supply_chain.chain.holder``)."""
    from supply_chain.services.runtime import Settings

    settings = Settings.from_env()
    count = settings.worker_processes(workers)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = _public_url_config(host, port)
    if count == 1:
        _serve_one(host, port, config)
    else:
        _serve_many(host, port, config, count)


def make_waitress(app: Flask, gauges: ServerGauges, index: int, threads: int = THREADS, **where: object) -> Any:
    """The waitress server ``lotline serve`` runs for ``app`` (``where``: host and port, or the shared
    sockets): its queue logged by episode and its figures in ``gauges`` slot ``index`` for ``/metrics``
    (app.server_metrics). ``run()`` serves until interrupted."""
    app.extensions["lotline_server_gauges"] = (gauges, index)
    return create_server(app, gauges, index, threads, **({"ident": "lotline"} | where))


def _run_waitress(app: Flask, gauges: ServerGauges, index: int, **where: object) -> None:
    import waitress

    # Through waitress.serve (its banner and loop; tests put a fake in its place), building the server with
    # our pool through its `_server` seam.
    waitress.serve(
        app,
        _server=lambda served, **options: make_waitress(served, gauges, index, **options),
        threads=THREADS,
        ident="lotline",
        **where,
    )


def _serve_one(host: str, port: int, config: dict[str, str]) -> None:
    app = create_app(config)
    _show_worker(app, 0)
    # A stop signal (service manager, container) ends the server like Ctrl+C, so the runtime is closed.
    signal.signal(signal.SIGTERM, _stop)
    # An operator's (and a test's) view into a stuck server: `kill -USR1 <pid>` writes every thread's stack
    # to the server's error output, and the server carries on.
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no real stderr (tests): nowhere to write
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.getLogger("lotline").info(
        "serving on http://%s:%s (public links: %s)", host, port, app.config["PUBLIC_URL"]
    )
    maintenance = start_maintenance(app)  # before the first request: nothing is shown verified unchecked
    worker = start_capture_worker(app)
    sender = start_delivery_worker(app)
    try:
        _run_waitress(app, ServerGauges(1), 0, host=host, port=port)  # returns on Ctrl+C
    finally:
        worker.stop()  # the batch in progress is finished; its job goes back to the queue
        sender.stop()  # the try in progress is finished and logged
        maintenance.stop()
        worker.join(timeout=60)
        sender.join(timeout=60)
        maintenance.join(timeout=30)  # a verification pass in progress ends its batch before the chain closes
        app.extensions["lotline"].close()
        logging.getLogger("lotline").info("stopped")


# ------------------------------------------------------------------ several worker processes (pre-fork)
#
# The parent binds the socket, marks every lot unchecked once, then forks the workers; each builds its own app
# (its own database pool and chain connection: nothing open is shared across the fork) and serves the same
# listening socket with waitress, the kernel handing each new connection to one of them. Worker 0 also runs the
# maintenance pass (indexing, verification, settling old pending writes), once for the whole server; every
# worker runs a capture and a delivery worker, so the job or notice a request queued is picked up at once in
# that process (each job and delivery is claimed by one of them, as with `lotline jobs run` beside a server).
# Writes from several processes are safe on PostgreSQL: the signing key's advisory lock orders nonces
# (services/writes.py); on SQLite the database's write lock, which the processes queue for, does the same.
# On the embedded chain (no LOTLINE_CHAIN_URL), worker 0 opens the chain and answers the others over JSON-RPC
# on a loopback port chosen here, with a secret made here (supply_chain/chain/holder.py); they wait for it to
# serve before they do. Worker 0 started again takes the same port, so the others find it again.
# The parent restarts a worker that dies and stops them all on SIGTERM or Ctrl+C; a
# worker whose parent is gone (killed) stops by itself.


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def _serve_many(host: str, port: int, config: dict[str, str], count: int) -> None:
    from supply_chain.services.runtime import Runtime, Settings

    log = logging.getLogger("lotline")
    listener = _listen(host, port)
    settings = Settings.from_env()
    runtime = Runtime(settings)  # migrates the database once, before any worker opens it
    # Each worker knows it is one of several (on SQLite, writes then hold the write lock from signing on).
    os.environ["LOTLINE_WORKERS"] = str(count)
    holder = None if settings.chain_url else new_holder_address()
    try:
        log.info("%d lots marked unchecked until verified against the chain", mark_unchecked(runtime))
    finally:
        runtime.close()
    stopping = False
    children: dict[int, int] = {}  # pid -> worker number
    parent = os.getpid()
    # One byte per worker in memory the forks share: 1 once it serves. A worker that dies before that ends the
    # server (a fault at start would otherwise be forked again and again); one that dies later is started again.
    ready = mmap.mmap(-1, count)
    gauges = ServerGauges(count)  # shared the same way: any worker's /metrics reports them all

    def spawn(index: int) -> None:
        ready[index] = 0
        # A stop signal waits until the new worker has its own handler: the parent's, which it inherits, would
        # only pass the signal on, and a worker started again just as the server is stopped would then serve
        # on while the parent waits for it.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.signal(signal.SIGTERM, _stop)
                signal.signal(signal.SIGINT, _stop)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # one sent meanwhile arrives here
                _worker(index, listener, config, parent, host, port, ready, gauges, holder)
                code = 0
            except KeyboardInterrupt:  # stopped while it was still starting
                code = 0
            except BaseException:  # noqa: BLE001 - a forked worker never returns into the parent's code
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = index
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "serving on http://%s:%s with %d worker processes (public links: %s)",
        host,
        port,
        count,
        config.get("LOTLINE_PUBLIC_URL") or os.environ.get("LOTLINE_PUBLIC_URL"),
    )
    failed = False
    try:
        for index in range(count):
            spawn(index)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            index = children.pop(pid, -1)
            if stopping or index < 0:
                continue
            code = os.waitstatus_to_exitcode(status)
            if not ready[index]:
                log.error("worker %d (pid %d) exited %d before serving: stopping the server", index, pid, code)
                failed = True
                stop(signal.SIGTERM, None)
                continue
            log.warning("worker %d (pid %d) exited %d: starting it again", index, pid, code)
            spawn(index)
    finally:
        listener.close()
    log.info("stopped")
    if failed:
        raise SystemExit(1)


def _worker(
    index: int,
    listener: socket.socket,
    config: dict[str, str],
    parent: int,
    host: str,
    port: int,
    ready: mmap.mmap,
    gauges: ServerGauges,
    holder: ChainHolderAddress | None = None,
) -> None:
    """One forked worker: its own app on the shared socket until SIGTERM (or its parent is gone); its figures
    go to its slot of ``gauges``, which every worker's ``/metrics`` reads. With ``holder`` (the embedded
    chain), worker 0 opens the chain and answers the others there; they wait until it serves."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    log = logging.getLogger("lotline")
    if holder is not None and index != 0:
        reach_chain_through(holder)
    # Worker 0 settles what a crash left pending as the app starts; the others leave that to it.
    app = create_app(config | {"CATCH_UP_ON_START": index == 0})
    _show_worker(app, index)
    chain_holder = None
    if holder is not None:
        if index == 0:
            chain_holder = hold_chain(app.extensions["lotline"], holder)
            log.info("worker 0 (pid %d) holds the embedded chain for the other workers", os.getpid())
        else:
            while not ready[0]:  # its chain requests would all fail until the holder answers
                time.sleep(0.1)
    threading.Thread(target=_watch_parent, args=(parent,), name="lotline-parent-watch", daemon=True).start()
    background: list[threading.Thread] = []
    maintenance = start_maintenance(app, mark=False) if index == 0 else None
    capture, sender = start_capture_worker(app), start_delivery_worker(app)
    log.info("worker %d (pid %d) serving on http://%s:%s", index, os.getpid(), host, port)
    ready[index] = 1
    try:
        _run_waitress(app, gauges, index, sockets=[listener])  # returns on SIGTERM
    finally:
        for thread in (capture, sender, maintenance):
            if thread is not None:
                thread.stop()
                background.append(thread)
        for thread in background:
            thread.join(timeout=60)
        if chain_holder is not None:
            chain_holder.stop()
        app.extensions["lotline"].close()
        log.info("worker %d (pid %d) stopped", index, os.getpid())


def _watch_parent(parent: int) -> None:
    """Stop this worker once its parent is gone (killed without the chance to stop it)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
