"""Open data under ``/open/``: the recall feeds (JSON, Atom), aggregate statistics (JSON, CSV) and their
schemas, for anyone, without signing in (docs/open-data.md)."""

from flask import Blueprint

bp = Blueprint("opendata", __name__, url_prefix="/open")

from app.opendata import routes  # noqa: E402,F401
