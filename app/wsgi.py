"""Serving the app with waitress (``lotline serve``), and a factory for other WSGI servers.

Nothing happens at import time: ``application()`` builds the app when a server asks for it, e.g.
``waitress-serve --call app.wsgi:application``.
"""

from __future__ import annotations

import logging

from flask import Flask

from app import create_app

THREADS = 8


def application() -> Flask:
    """A new app from the ``LOTLINE_*`` environment."""
    return create_app()


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app under waitress until interrupted; the runtime (chain, database) is closed after."""
    from waitress import serve as waitress_serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app()
    logging.getLogger("lotline").info(
        "serving on http://%s:%s (public links: %s)", host, port, app.config["PUBLIC_URL"]
    )
    try:
        waitress_serve(app, host=host, port=port, threads=THREADS, ident="lotline")
    finally:
        app.extensions["lotline"].close()
