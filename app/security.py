"""Browser security: CSRF tokens, sign-in throttling, trusted proxies, cookie flags and response headers."""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Request, Response, abort, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from app.web import SESSION_TOKEN_KEY
from supply_chain.services import throttle

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_EXEMPT_PREFIXES = ("/api/",)
"""The REST API authenticates with bearer tokens, not cookies, so cross-site forms cannot ride on it."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    # geolocation for this site's own pages only: "Use my location" on the site form (lotline.js)
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self)",
}


# ------------------------------------------------------------------ CSRF


def csrf_token() -> str:
    """This session's CSRF token, created on first use (templates put it in a hidden field)."""
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def new_csrf_token() -> str:
    session.pop("csrf", None)
    return csrf_token()


def _check_csrf(req: Request) -> None:
    if req.method not in UNSAFE_METHODS or req.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    expected = session.get("csrf")
    sent = req.form.get(CSRF_FIELD) or req.headers.get(CSRF_HEADER) or ""
    if not isinstance(expected, str) or not expected:
        abort(
            400,
            description="The form's security token is missing: your session may have expired. "
            "Go back, reload the page and submit the form again.",
        )
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        abort(
            400,
            description="The form's security token (CSRF token) is missing or wrong. "
            "Reload the page and submit the form again.",
        )


# ------------------------------------------------------------------ sign-in throttling


def login_limits(app: Flask) -> tuple[throttle.Limit, throttle.Limit]:
    """The account and address limits of sign-in (``services.throttle``; ``LOGIN_RATE_LIMIT`` and
    ``LOGIN_IP_RATE_LIMIT`` in the config, as ``(attempts, seconds)``)."""
    return throttle.Limit(*app.config["LOGIN_RATE_LIMIT"]), throttle.Limit(*app.config["LOGIN_IP_RATE_LIMIT"])


def client_address() -> str:
    """The client's address: the TCP peer's, or the one the trusted proxies reported when
    ``TRUSTED_PROXIES`` is set (``init_app`` installs werkzeug's ProxyFix; otherwise X-Forwarded-For is ignored)."""
    return request.remote_addr or "unknown"


# ------------------------------------------------------------------ cookies and headers


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure when the app is configured for https or the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (request and request.is_secure))


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops:
        # Only as many X-Forwarded-* entries as there are proxies of ours are believed; by default none.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD

    @app.before_request
    def _csrf() -> None:
        _check_csrf(request)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if SESSION_TOKEN_KEY in session or request.path.startswith(("/login", "/dashboard", "/account")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
