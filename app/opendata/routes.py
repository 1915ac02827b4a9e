from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import abort, render_template, request
from werkzeug.wrappers import Response

from app.opendata import bp
from app.web import get_ctx
from supply_chain.services import opendata

MAX_AGE = 300
"""Seconds a client or cache may reuse an answer without asking again (then it revalidates by ETag)."""
JSON_TYPE = "application/json"
ATOM_TYPE = "application/atom+xml"
CSV_TYPE = "text/csv"
SCHEMAS = {"recalls": opendata.RECALLS_SCHEMA, "statistics": opendata.STATISTICS_SCHEMA}


def _send(body: bytes, mimetype: str, updated: str | None = None, charset: bool = True) -> Response:
    """An open-data answer: its content type, cacheable by anyone, with an ETag (and Last-Modified when the
    data has a date), answering 304 to a matching conditional request."""
    response = Response(body, mimetype=mimetype)
    if charset and "charset" not in response.content_type:
        response.content_type = f"{mimetype}; charset=utf-8"
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    if updated:
        response.last_modified = datetime.fromisoformat(updated.replace("Z", "+00:00"))
    response.add_etag()
    return response.make_conditional(request)


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


@bp.get("/")
def index() -> str:
    """What is published, in what format, under which rule and licence; the recalls in a list."""
    ctx = get_ctx()
    feed = opendata.recall_feed(ctx)
    return render_template(
        "opendata/index.html",
        feed=feed,
        tables=opendata.TABLES,
        rule=opendata.SUPPRESSION_RULE,
        licence=opendata.LICENCE,
        licence_url=opendata.LICENCE_URL,
    )


@bp.get("/recalls.json")
def recalls_json() -> Response:
    feed = opendata.recall_feed(get_ctx())
    return _send(_json(feed), JSON_TYPE, feed["updated"], charset=False)


@bp.get("/recalls.atom")
def recalls_atom() -> Response:
    ctx = get_ctx()
    feed = opendata.recall_feed(ctx)
    return _send(opendata.recall_atom(feed, ctx.settings.public_url), ATOM_TYPE, feed["updated"])


@bp.get("/statistics.json")
def statistics_json() -> Response:
    return _send(_json(opendata.statistics(get_ctx())), JSON_TYPE, charset=False)


@bp.get("/statistics/<name>.csv")
def statistics_csv(name: str) -> Response:
    if name not in opendata.TABLES:
        abort(404, description=f"no table {name!r}; the tables are {', '.join(opendata.TABLES)}")
    response = _send(opendata.table_csv(opendata.statistics(get_ctx()), name), CSV_TYPE)
    response.content_type = f"{CSV_TYPE}; charset=utf-8; header=present"
    response.headers["Content-Disposition"] = f'inline; filename="lotline-{name}.csv"'
    return response


@bp.get("/schema/<name>.json")
def schema(name: str) -> Response:
    if name not in SCHEMAS:
        abort(404, description=f"no schema {name!r}; the schemas are {', '.join(SCHEMAS)}")
    return _send(_json(SCHEMAS[name]), "application/schema+json")
