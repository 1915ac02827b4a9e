"""``GET /healthz``: the chain mode, its latest block and the ledger address, and whether the database answers;
503 when either is away."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

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
