"""QR codes (GS1 Digital Link) as PNG and SVG, and printable label sheets."""

from flask import Blueprint

bp = Blueprint("labels", __name__)

from app.labels import routes  # noqa: E402,F401
