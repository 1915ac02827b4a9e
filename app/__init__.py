"""The Lotline web app: an application factory, one blueprint per area, one error-handler family.

The app talks to the services only (``supply_chain.services``) and reads store models; it never imports
web3 or the chain adapter (an import-linter contract in pyproject.toml enforces it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.routing import PathConverter

from supply_chain.services import sessions, throttle
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up

ENV_KEYS = (
    "LOTLINE_HOME",
    "LOTLINE_DATABASE_URL",
    "LOTLINE_CHAIN_URL",
    "LOTLINE_SECRET_KEY",
    "LOTLINE_KEK",
    "LOTLINE_PUBLIC_URL",
    "LOTLINE_TRUSTED_PROXIES",
    "LOTLINE_SMTP_HOST",
    "LOTLINE_SMTP_PORT",
    "LOTLINE_SMTP_TLS",
    "LOTLINE_SMTP_USER",
    "LOTLINE_SMTP_PASSWORD",
    "LOTLINE_MAIL_FROM",
    "LOTLINE_WEBHOOK_ALLOW_PRIVATE",
    "LOTLINE_SCAN_PAGE_CACHE",
)
MAX_UPLOAD_BYTES = 6 * 1024 * 1024
"""A little above the services' 5 MiB certificate limit, so their clearer message wins for most files."""


def _settings(test_config: Mapping[str, Any]) -> Settings:
    env = dict(os.environ)
    env.update({k: str(v) for k, v in test_config.items() if k in ENV_KEYS and v is not None})
    return Settings.from_env(env)


class AnyTextPath(PathConverter):
    """Werkzeug's ``path`` with ``.`` matching a line break too: an EPC, a location or an unknown API path with an
    encoded newline (``%0A``) reaches its route (a JSON answer naming the rule) instead of the site's HTML 404."""

    regex = "[^/](?s:.)*?"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` may hold Flask settings, ``LOTLINE_*`` settings, or a ready ``RUNTIME``
    (tests share one runtime between several apps; the app then does not own it)."""
    test_config = dict(test_config or {})
    app = Flask(__name__)
    app.url_map.converters["path"] = AnyTextPath
    runtime: Runtime | None = test_config.pop("RUNTIME", None)
    settings = runtime.settings if runtime is not None else _settings(test_config)
    secure = settings.public_url.startswith("https://")
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        PUBLIC_URL=settings.public_url,
        PREFERRED_URL_SCHEME="https" if secure else "http",
        SESSION_COOKIE_NAME="lotline_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=sessions.COOKIE_LIFETIME,
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        # (attempts, seconds): failed sign-ins per account, and attempts per client address (services.throttle)
        LOGIN_RATE_LIMIT=(throttle.ACCOUNT_LIMIT.attempts, throttle.ACCOUNT_LIMIT.window),
        LOGIN_IP_RATE_LIMIT=(throttle.ADDRESS_LIMIT.attempts, throttle.ADDRESS_LIMIT.window),
        TRUSTED_PROXIES=settings.trusted_proxies,  # reverse proxies whose X-Forwarded-For/-Proto are believed
        JSON_SORT_KEYS=False,
        # GET /metrics answers only with this as its bearer token; unset, it is not served (app.health)
        METRICS_TOKEN=os.environ.get("LOTLINE_METRICS_TOKEN", "").strip() or None,
    )
    app.config.update({k: v for k, v in test_config.items() if k not in ENV_KEYS})
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if runtime is None:
        runtime = Runtime(settings)
        app.extensions["lotline_owns_runtime"] = True
        if app.config.get("CATCH_UP_ON_START", True):
            # Settle writes a crash left pending and index what the chain has that the store lacks; an
            # unreachable chain does not stop the app (reads work; writes answer 503).
            catch_up(runtime, tolerate_outage=True)
    app.extensions["lotline"] = runtime

    from app import body_limits, errors, i18n, security, web

    web.init_app(app)
    i18n.init_app(app)
    body_limits.init_app(app)  # before the CSRF check, which reads form bodies
    security.init_app(app)
    errors.init_app(app)

    from app.admin import bp as admin_bp
    from app.api import bp as api_bp
    from app.auth import bp as auth_bp
    from app.credit import bp as credit_bp
    from app.custody import bp as custody_bp
    from app.dashboard import bp as dashboard_bp
    from app.health import bp as health_bp
    from app.imports import bp as imports_bp
    from app.inspections import bp as inspections_bp
    from app.labels import bp as labels_bp
    from app.lots import bp as lots_bp
    from app.notifications import bp as notifications_bp
    from app.opendata import bp as opendata_bp
    from app.public import bp as public_bp
    from app.settings import bp as settings_bp
    from app.tokens import bp as tokens_bp

    for blueprint in (
        auth_bp,
        dashboard_bp,
        lots_bp,
        custody_bp,
        notifications_bp,
        inspections_bp,
        admin_bp,
        credit_bp,
        imports_bp,
        labels_bp,
        public_bp,
        opendata_bp,
        health_bp,
        tokens_bp,
        settings_bp,
        api_bp,
    ):
        app.register_blueprint(blueprint)
    return app
