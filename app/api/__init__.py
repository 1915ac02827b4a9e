"""The REST API, ``/api/v1``: bearer-token authentication, JSON errors, pagination, idempotency keys and an
OpenAPI 3.1 document built from the same route table that validates the requests (``spec``)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from app.api import errors, routes  # noqa: E402,F401  - registers the error handlers and the routes
