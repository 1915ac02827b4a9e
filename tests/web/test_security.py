"""Browser security: CSRF, sign-in, session cookies, rate limiting, response headers, no inline code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates"
STATIC_SCRIPT = re.compile(r"""<script src="\{\{ url_for\('static', filename='[\w./-]+\.js'\) \}\}" defer></script>""")


def _lot_form(world: Any, code: str, **overrides: str) -> dict[str, str]:
    return {
        "kind": "harvesting",
        "gtin": world.gtins["lettuce"],
        "lot_code": code,
        "kde.location_gln": world.sites["producer"],
        "kde.harvest_date": "2026-11-10",
        "kde.commodity": "lettuce",
        "kde.quantity": "10",
        "kde.unit": "kg",
    } | overrides


# ------------------------------------------------------------------ CSRF


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_post_without_the_right_csrf_token_is_refused_and_writes_nothing(
    world: Any, client: FlaskClient, login: Any, counts: Any, token: str | None
) -> None:
    login(client, "producer")
    before = counts()
    data = _lot_form(world, "CSRF-1")
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/lots/new", data=data)
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True)
    assert counts() == before


def test_csrf_header_is_accepted_for_json_clients(world: Any, client: FlaskClient, login: Any, csrf: Any) -> None:
    login(client, "producer")
    response = client.post(
        "/products",
        data={"gtin": "123", "name": "x"},
        headers={"X-CSRF-Token": csrf(client), "Accept": "application/json"},
    )
    assert response.status_code == 400 and response.json["field"] == "gtin"  # past CSRF, refused on the GTIN


def test_login_form_itself_needs_the_csrf_token(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "producer@test.lotline", "password": "correct horse battery"})
    assert response.status_code == 400
    with client.session_transaction() as session:
        assert "sid" not in session


def test_logout_is_post_only(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    assert client.get("/logout").status_code == 405
    assert client.get("/dashboard").status_code == 200  # still signed in


# ------------------------------------------------------------------ sign-in and sessions


def test_sign_in_starts_a_fresh_session(client: FlaskClient, login: Any) -> None:
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
        before = session["csrf"]
    login(client, "producer")
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["csrf"] != before
        assert isinstance(session["sid"], str) and len(session["sid"]) >= 40  # a token, not the user id


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client: FlaskClient, csrf_from: Any) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    wrong = client.post(
        "/login", data={"email": "producer@test.lotline", "password": "nope-nope-nope", "csrf_token": token}
    )
    unknown = client.post(
        "/login", data={"email": "nobody@test.lotline", "password": "nope-nope-nope", "csrf_token": token}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "E-mail or password is wrong." in wrong.get_data(as_text=True)
    assert "E-mail or password is wrong." in unknown.get_data(as_text=True)


def test_sign_out_ends_the_session(client: FlaskClient, login: Any, csrf: Any) -> None:
    login(client, "producer")
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 302
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client: FlaskClient, csrf_from: Any, target: str) -> None:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "email": "producer@test.lotline",
            "password": "correct horse battery",
            "csrf_token": token,
            "next": target,
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"


def test_sign_in_follows_a_local_next(client: FlaskClient, csrf_from: Any) -> None:
    redirect = client.get("/products")
    assert redirect.headers["Location"] == "/login?next=/products"
    token = csrf_from(client.get(redirect.headers["Location"]).get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "email": "producer@test.lotline",
            "password": "correct horse battery",
            "csrf_token": token,
            "next": "/products",
        },
    )
    assert response.headers["Location"] == "/products"


def _set_cookie(response: Any) -> str:
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("lotline_session=")]
    assert cookies, "no session cookie set"
    return cookies[-1]


def test_session_cookie_is_httponly_and_samesite_lax(make_app: Any) -> None:
    client = make_app(SESSION_COOKIE_SECURE=False, PREFERRED_URL_SCHEME="http").test_client()
    cookie = _set_cookie(client.get("/login"))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http in development


def test_session_cookie_is_secure_over_https(make_app: Any) -> None:
    client = make_app(SESSION_COOKIE_SECURE=False, PREFERRED_URL_SCHEME="http").test_client()
    cookie = _set_cookie(client.get("/login", base_url="https://localhost"))
    assert "Secure" in cookie


def test_session_cookie_is_secure_when_the_public_url_is_https(app: Flask) -> None:
    assert app.config["PUBLIC_URL"].startswith("https://")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert "Secure" in _set_cookie(app.test_client().get("/login"))


# ------------------------------------------------------------------ rate limiting


def _attempt(client: FlaskClient, csrf_from: Any, email: str, password: str) -> Any:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_login_attempts_are_rate_limited_per_ip_and_email(client: FlaskClient, csrf_from: Any) -> None:
    assert client.application.config["LOGIN_RATE_LIMIT"] == (5, 900)  # the production setting
    for _ in range(5):
        assert _attempt(client, csrf_from, "retailer@test.lotline", "wrong-password").status_code == 401
    blocked = _attempt(client, csrf_from, "retailer@test.lotline", "correct horse battery")
    assert blocked.status_code == 429  # even the right password waits
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in blocked.get_data(as_text=True)
    # another account from the same address is not locked out by someone guessing this one
    assert _attempt(client, csrf_from, "processor@test.lotline", "correct horse battery").status_code == 302


def test_a_successful_sign_in_clears_the_failures(make_app: Any, csrf_from: Any) -> None:
    client = make_app(LOGIN_RATE_LIMIT=(3, 300)).test_client()
    for _ in range(2):
        _attempt(client, csrf_from, "retailer@test.lotline", "wrong-password")
    assert _attempt(client, csrf_from, "retailer@test.lotline", "correct horse battery").status_code == 302
    again = client.application.test_client()  # signed out; the same app, so the same limiter
    for _ in range(2):
        assert _attempt(again, csrf_from, "retailer@test.lotline", "wrong-password").status_code == 401


def test_one_address_guessing_many_accounts_is_limited_too(make_app: Any, csrf_from: Any) -> None:
    client = make_app(LOGIN_IP_RATE_LIMIT=(2, 300)).test_client()
    for i in range(2):
        assert _attempt(client, csrf_from, f"guess{i}@test.lotline", "wrong-password").status_code == 401
    assert _attempt(client, csrf_from, "guess9@test.lotline", "wrong-password").status_code == 429


# ------------------------------------------------------------------ headers and markup


@pytest.mark.parametrize(
    "path", ["/", "/login", "/healthz", "/01/00700001000015/10/NOPE", "/no-such-page", "/dashboard"]
)
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_headers_on_images_and_consumer_pages(client: FlaskClient, world: Any) -> None:
    gtin, code = world.labels["M1"]
    for path in (f"/01/{gtin}/10/{code}", f"/01/{gtin}/10/{code}/qr.png"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_templates_have_no_inline_scripts_or_styles() -> None:
    """Scripts only as files from /static (CSP script-src 'self'), never inline."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for needle in ("<style", " style=", "onclick=", "onload=", "javascript:"):
            if needle in text:
                offenders.append(f"{template.name}: {needle}")
        scripts = re.findall(r"<script\b[^>]*>.*?</script>", text, flags=re.S)
        offenders += [f"{template.name}: {tag[:60]}" for tag in scripts if not STATIC_SCRIPT.fullmatch(tag)]
        if text.count("<script") != len(scripts):
            offenders.append(f"{template.name}: unclosed <script")
    assert offenders == []


def test_signed_in_pages_are_not_cached(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    assert client.get("/dashboard").headers["Cache-Control"] == "no-store"
