"""The regulator's desk: onboard organisations with their roles, recall lots, trace forward and backward,
read organisations' compliance records."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from app.admin import recalls, routes  # noqa: E402,F401
