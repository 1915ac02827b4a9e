"""The custody inbox: lots offered to my organisation (accept with the receiving KDEs, or refuse) and the
offers my organisation has made."""

from flask import Blueprint

bp = Blueprint("custody", __name__)

from app.custody import routes  # noqa: E402,F401
