"""Bulk import in the browser: upload a CSV or XLSX of critical tracking events, check it (dry run), import it
as one job and watch its progress (``supply_chain.services.imports``)."""

from flask import Blueprint

bp = Blueprint("imports", __name__)

from app.imports import routes  # noqa: E402,F401
