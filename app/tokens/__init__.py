"""API tokens: an organisation's members create (shown once) and revoke the tokens its systems use."""

from flask import Blueprint

bp = Blueprint("tokens", __name__)

from app.tokens import routes  # noqa: E402,F401
