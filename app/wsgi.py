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
import os
import signal
from datetime import timedelta

from flask import Flask

from app import create_app
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


def start_maintenance(app: Flask) -> Maintenance:
    """Mark every lot unchecked, then start the background thread that verifies them all at once and keeps
    indexing and re-verifying on a schedule (``LOTLINE_SYNC_SECONDS``, ``LOTLINE_VERIFY_SECONDS``); a pending write
    older than ``LOTLINE_PENDING_GRACE_SECONDS`` (default 120) that no writer is sending is settled by that pass."""
    runtime = app.extensions["lotline"]
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
    raise KeyboardInterrupt


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app under waitress until interrupted; the runtime (chain, database) is closed after."""
    from waitress import serve as waitress_serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config: dict[str, str] = {}
    if not os.environ.get("LOTLINE_PUBLIC_URL"):
        # Without a configured public URL, QR codes point at this server rather than at a port nobody serves
        # (set LOTLINE_PUBLIC_URL for labels that phones elsewhere should open).
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        config["LOTLINE_PUBLIC_URL"] = f"http://{shown}:{port}"
    app = create_app(config)
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
        waitress_serve(app, host=host, port=port, threads=THREADS, ident="lotline")  # returns on Ctrl+C
    finally:
        worker.stop()  # the batch in progress is finished; its job goes back to the queue
        sender.stop()  # the try in progress is finished and logged
        maintenance.stop()
        worker.join(timeout=60)
        sender.join(timeout=60)
        maintenance.join(timeout=30)  # a verification pass in progress ends its batch before the chain closes
        app.extensions["lotline"].close()
        logging.getLogger("lotline").info("stopped")
