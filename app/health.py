"""``GET /healthz``: the chain mode, its latest block and the ledger address, and whether the database answers;
503 when either is away. ``GET /metrics``: the server's queue and threads for Prometheus, behind a token."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.wrappers import Response

from app.server_metrics import prometheus_text
from app.web import get_ctx
from supply_chain.domain.errors import LotlineError
from supply_chain.services import views

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    ctx = get_ctx()
    if not views.database_reachable(ctx):
        body = {
            "status": "unavailable",
            "chain": {"mode": ctx.settings.chain_mode},
            "database": "unavailable",
            "error": "database_unavailable",
            "message": "the database did not answer",
        }
        return jsonify(body), 503
    try:
        chain = views.chain_status(ctx)
    except LotlineError as err:
        body = {"status": "unavailable", "chain": {"mode": ctx.settings.chain_mode}} | err.to_dict()
        return jsonify(body), 503
    except Exception as err:  # noqa: BLE001 - a health check reports, it does not crash
        body = {
            "status": "unavailable",
            "chain": {"mode": ctx.settings.chain_mode},
            "error": "chain_unavailable",
            "message": f"the chain did not answer: {type(err).__name__}",
        }
        return jsonify(body), 503
    return jsonify({"status": "ok", "chain": chain, "database": "ok"}), 200


@bp.get("/metrics")
def metrics() -> Response:
    """The server's own figures (request threads, queue, requests served) in the Prometheus text format, for
    every worker process (`app.server_metrics`). Served only when ``LOTLINE_METRICS_TOKEN`` is set, and only to
    a request carrying it as ``Authorization: Bearer <token>``: the figures hold no lot data, but how busy a
    member's server is is the operator's business, not the public's."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        return Response(
            "metrics: give the metrics token as 'Authorization: Bearer <token>'\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="lotline metrics"'},
        )
    gauges, worker = current_app.extensions.get("lotline_server_gauges", (None, None))
    response = Response(prometheus_text(gauges, worker), mimetype="text/plain")
    response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response
