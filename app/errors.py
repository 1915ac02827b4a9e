"""One error-handler family: domain errors and HTTP errors answer an HTML page for browsers and JSON for
clients that ask for it; unexpected errors roll the unit of work back and answer 500."""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, render_template
from flask_babel import gettext, lazy_gettext
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.forms import plain_message
from app.messages import translate_message
from app.web import database_outage, rollback, wants_json
from supply_chain.domain.errors import LotlineError

log = logging.getLogger(__name__)

TITLES = {
    400: lazy_gettext("That input cannot be used"),
    401: lazy_gettext("Please sign in"),
    403: lazy_gettext("Not allowed"),
    404: lazy_gettext("Not found"),
    405: lazy_gettext("Not allowed here"),
    409: lazy_gettext("That clashes with the lot's current state"),
    413: lazy_gettext("The upload is too large"),
    429: lazy_gettext("Too many attempts"),
    500: lazy_gettext("Something went wrong on our side"),
    503: lazy_gettext("The service cannot be reached"),
}
PAGE_MESSAGES = {
    404: lazy_gettext("There is no page at this address. Check the link, or start again from the start page."),
    405: lazy_gettext("This page cannot be used that way."),
}
"""What an HTML page says for HTTP errors whose werkzeug description is generic (JSON keeps the original)."""


def _answer(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    details: dict[str, object] | None = None,
):
    if wants_json():
        body = {"error": code, "message": message} | ({"field": field} if field else {}) | (details or {})
        response = jsonify(body)
    else:
        response = render_template(
            "error.html",
            status=status,
            title=TITLES.get(status, lazy_gettext("Error")),
            code=code,
            message=translate_message(message),
            field=field,
        )
    return response, status, headers or {}


def init_app(app: Flask) -> None:
    @app.errorhandler(LotlineError)
    def _domain(err: LotlineError):
        rollback()
        if err.status >= 500:
            log.warning("%s: %s", err.code, err.message)
        if wants_json():
            return _answer(err.status, err.code, err.message, err.field, details=getattr(err, "details", None))
        # A page says it in the user's words: the field's name, not its key (the JSON answer keeps the key).
        return _answer(err.status, err.code, translate_message(plain_message(err)))

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException):
        rollback()
        status = err.code or 500
        headers = {k: v for k, v in err.get_headers() if k.lower() in ("retry-after", "allow")}
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
            429: "rate_limited",
        }.get(status, "http_error")
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
            shown = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit / 1024:g} KiB"
            message = gettext(
                "The upload is larger than the %(size)s the server accepts; certificates may be at most 5 MiB.",
                size=shown,
            )
        elif not wants_json() and status in PAGE_MESSAGES and err.description == type(err).description:
            message = str(PAGE_MESSAGES[status])
        else:
            message = err.description or str(TITLES.get(status, lazy_gettext("Error")))
        return _answer(status, code, message, headers=headers)

    @app.errorhandler(DBAPIError)
    def _database(err: DBAPIError):
        # A database that went away is an outage (503, say so), not a bug; other database errors stay 500s.
        outage = database_outage(err)
        if outage is None:
            raise err
        rollback()
        log.warning("database unavailable: %s", err.orig)
        return _answer(outage.status, outage.code, outage.message, headers={"Retry-After": "5"})

    @app.errorhandler(InternalServerError)
    def _internal(err: InternalServerError):
        rollback()
        original = getattr(err, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
        return _answer(
            500,
            "internal_error",
            gettext("The request could not be completed. Try again, and tell the operator if it keeps happening."),
        )
