"""Sharing the embedded chain between the processes of one server (``lotline serve --workers N``).

The embedded chain's state on disk is opened by one process at a time. With several server processes, the
first (the *holder*) opens it and answers the others over JSON-RPC on a loopback port, each request carrying
a secret the parent made at start (``Authorization: Bearer ...``): nothing outside the server's own processes
can use it. The other processes connect to it with the same JSON-RPC client as to any node
(``connect.GuardedHTTPProvider``), so the ledger adapter, the write path (sign locally, send raw, store the
pending row first) and the signing keys are the same in every process; only the transport differs.

The holder relays each request to the in-process provider, through the same request and result formatting web3
applies to it in the holder itself, so a remote caller gets exactly what a local one would. Durability is the
embedded chain's own: a transaction's block is on disk before its hash is answered, whoever asked. When the
holder is gone, the others' requests fail at once with connection refused (``ChainUnavailable``, a 503 to the
user) until the parent has started it again.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from web3 import Web3
from web3._utils.encoding import Web3JsonEncoder
from web3.middleware import combine_middleware

from supply_chain.domain.errors import ChainUnavailable

__all__ = ["ChainHolder", "HOLDER_HOST"]

HOLDER_HOST = "127.0.0.1"
#: The largest request body relayed (a bulk transaction of a big EPCIS batch is well under this).
MAX_REQUEST_BYTES = 64 * 1024 * 1024

log = logging.getLogger(__name__)


class ChainHolder:
    """Serves the open embedded chain ``w3`` on ``HOLDER_HOST:port`` to callers that know ``secret``."""

    def __init__(self, w3: Web3, port: int, secret: str) -> None:
        provider = w3.provider
        formatting = tuple(getattr(provider, "_middleware", ()))
        relay: Callable[..., Any] = combine_middleware(
            middleware=formatting, w3=w3, provider_request_fn=provider.make_request
        )
        expected = f"Bearer {secret}".encode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the callers' HTTP sessions reuse their connections

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                given = self.headers.get("Authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    self._answer(401, {"error": "the chain holder answers the server's own processes only"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if not 0 < length <= MAX_REQUEST_BYTES:
                    self._answer(413, {"error": "request body missing or too large"})
                    return
                try:
                    body = json.loads(self.rfile.read(length))
                except ValueError:
                    self._answer(
                        400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
                    )
                    return
                try:
                    if isinstance(body, list):
                        answer: Any = [_relay_one(relay, item) for item in body]
                    else:
                        answer = _relay_one(relay, body)
                except ChainUnavailable as exc:
                    # The chain is closed or could not write to disk: the caller raises ChainUnavailable too.
                    self._answer(503, {"error": exc.message})
                    return
                self._answer(200, answer)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body, cls=Web3JsonEncoder).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                pass  # every chain request would be a log line; failures are logged by the callers

        self.port = port
        self._server = ThreadingHTTPServer((HOLDER_HOST, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def start(self) -> ChainHolder:
        self._thread = threading.Thread(target=self._server.serve_forever, name="lotline-chain-holder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering (callers then get connection refused) and close the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=30)
            self._thread = None
        self._server.server_close()


def _relay_one(relay: Callable[..., Any], request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
    request_id = request.get("id")
    try:
        response = dict(relay(request["method"], request.get("params") or []))
    except ChainUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - answered to the caller as a node would, not dropped
        log.warning("chain holder: %s failed: %s", request["method"], exc)
        response = {"error": {"code": -32603, "message": f"{type(exc).__name__}: {exc}"}}
    response["id"] = request_id
    response["jsonrpc"] = "2.0"
    return response
