"""The participants' lot page and the actions on a lot: record events, ship, cancel, close, sensor readings,
certificate downloads, and lot search."""

from flask import Blueprint

bp = Blueprint("lots", __name__)

from app.lots import routes  # noqa: E402,F401
