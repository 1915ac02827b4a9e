"""Every API answer that is not a success is JSON ``{"error", "message", "field"}`` with its status."""

from __future__ import annotations

import logging

from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from app.api import bp
from app.web import database_outage, rollback
from supply_chain.domain.errors import LotlineError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer realm="lotline", error="{body.get("error", "invalid_token")}"'
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@bp.errorhandler(LotlineError)
def _domain(err: LotlineError) -> Response:
    rollback()
    if err.status >= 500:
        log.warning("%s: %s", err.code, err.message)
    body: dict[str, object] = dict(err.to_dict())
    body.update(getattr(err, "details", None) or {})
    return error_response(err.status, body)


@bp.errorhandler(HTTPException)
def _http(err: HTTPException) -> Response:
    rollback()
    status = err.code or 500
    headers = {k: v for k, v in err.get_headers() if k.lower() in ("allow", "retry-after")}
    message = err.description or "error"
    if status == 413:
        message = "The request body is larger than the server accepts (6 MiB)."
    return error_response(status, {"error": HTTP_CODES.get(status, "http_error"), "message": message}, headers)


@bp.errorhandler(Exception)
def _unexpected(err: Exception) -> Response:
    rollback()
    if (outage := database_outage(err)) is not None:
        log.warning("database unavailable: %s", err)
        return error_response(outage.status, outage.to_dict(), {"Retry-After": "5"})
    log.error("unhandled API error", exc_info=err)
    return error_response(
        500,
        {
            "error": "internal_error",
            "message": "The request could not be completed. Try again, and tell the operator if it keeps happening.",
        },
    )


@bp.route("", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], endpoint="fallback_root")
@bp.route("/", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], endpoint="fallback_slash")
@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], endpoint="fallback")
def fallback(rest: str = "") -> Response:
    """Unknown paths and methods under /api/v1 answer JSON too (routing errors never reach blueprint
    handlers, so this route catches them)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if not endpoint.startswith("api.fallback"):
            allowed.append(method)
    if allowed:
        raise MethodNotAllowed(
            valid_methods=allowed, description=f"{request.method} is not allowed here; use {', '.join(allowed)}"
        )
    raise NotFound(f"no API endpoint {request.method} {request.path}; see /api/v1/openapi.json")
