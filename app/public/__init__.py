"""The consumer page behind every QR code: no sign-in, no JavaScript, public fields only."""

from flask import Blueprint

bp = Blueprint("public", __name__)

from app.public import routes  # noqa: E402,F401
