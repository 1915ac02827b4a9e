"""The handlers' dashboard (producer, processor, distributor, retailer): lots, products, sites, new lots,
transformations."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from app.dashboard import routes  # noqa: E402,F401
