"""Organisations' credit records for signed-in organisations: a buyer checks a supplier's record and grade."""

from flask import Blueprint

bp = Blueprint("credit", __name__)

from app.credit import routes  # noqa: E402,F401
