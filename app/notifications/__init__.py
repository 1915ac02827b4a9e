"""The organisation's inbox (``/notifications``): recall notices and their updates, reminders and
terminations; each recall notice is where a holder acknowledges and reports what it did."""

from flask import Blueprint

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

from app.notifications import routes  # noqa: E402,F401
