"""Browser security: CSRF tokens, login rate limiting, cookie flags and response headers."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque

from flask import Flask, Request, Response, abort, request, session
from flask.sessions import SecureCookieSessionInterface

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
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
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


# ------------------------------------------------------------------ login rate limit


class LoginLimiter:
    """Failed sign-ins per key in a sliding window, in memory (one process; waitress threads share it)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again, 0 if it may try now."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.limit:
                return 0
            return max(1, int(failures[0] + self.window - now) + 1)

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # forget quiet keys so memory stays bounded
                for stale in [k for k, v in self._failures.items() if not v or v[-1] <= now - self.window]:
                    del self._failures[stale]

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class Limiters:
    def __init__(self, app: Flask) -> None:
        self.by_email = LoginLimiter(*app.config["LOGIN_RATE_LIMIT"])
        self.by_ip = LoginLimiter(*app.config["LOGIN_IP_RATE_LIMIT"])

    @staticmethod
    def keys(email: str) -> tuple[str, str]:
        ip = request.remote_addr or "unknown"
        return f"{ip}|{email.strip().lower()}", ip

    def retry_after(self, email: str) -> int:
        by_email, ip = self.keys(email)
        return max(self.by_email.retry_after(by_email), self.by_ip.retry_after(ip))

    def failed(self, email: str) -> None:
        by_email, ip = self.keys(email)
        self.by_email.failed(by_email)
        self.by_ip.failed(ip)

    def succeeded(self, email: str) -> None:
        self.by_email.reset(self.keys(email)[0])


def limiters(app: Flask) -> Limiters:
    return app.extensions["lotline_login_limiters"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ cookies and headers


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure when the app is configured for https or the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"] or (request and request.is_secure))


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.extensions["lotline_login_limiters"] = Limiters(app)
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
        if "user_id" in session or request.path.startswith(("/login", "/dashboard")):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
