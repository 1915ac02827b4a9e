"""An organisation's settings: where its notices go (e-mail addresses, webhook endpoints) and their delivery log."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from app.settings import routes  # noqa: E402,F401
