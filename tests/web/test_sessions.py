"""Server-side sessions (issue 9, item 5): the cookie carries a token of a session kept in the store, so
signing out, changing the password or a suspension end it, also for a copy of the cookie."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from supply_chain.services import orgs
from supply_chain.store.models import Organisation

PASSWORD = "session test password"
_made: list[int] = []


def _user(world: Any) -> str:
    """A user of its own (so changing its password disturbs no other test); returns its e-mail."""
    email = f"session{len(_made)}@test.lotline"
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, world.org_ids["retailer"])
        _made.append(orgs.add_user(ctx, org, email, "Sam Session", PASSWORD).id)
    return email


def _sign_in(app: Flask, csrf_from: Any, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    answer = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return client


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("lotline_session")
    assert cookie is not None
    return cookie.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    other = app.test_client()
    other.set_cookie("lotline_session", value, domain="localhost")
    return other


def _signed_in(client: FlaskClient) -> bool:
    answer = client.get("/dashboard")
    assert answer.status_code in (200, 302)
    return answer.status_code == 200


def test_a_copied_cookie_stops_working_after_sign_out(app: Flask, world: Any, csrf_from: Any, csrf: Any) -> None:
    client = _sign_in(app, csrf_from, _user(world))
    stolen = _cookie(client)
    assert _signed_in(_with_cookie(app, stolen)), "the copy works while the session lasts"

    signed_out = client.post("/logout", data={"csrf_token": csrf(client)})
    assert signed_out.status_code == 302

    copy = _with_cookie(app, stolen)
    answer = copy.get("/dashboard")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert not _signed_in(client)


def test_changing_the_password_signs_out_every_other_session(app: Flask, world: Any, csrf_from: Any, csrf: Any) -> None:
    email = _user(world)
    laptop, phone = _sign_in(app, csrf_from, email), _sign_in(app, csrf_from, email)
    stolen = _cookie(laptop)
    page = laptop.get("/account/password").get_data(as_text=True)
    assert 'name="current_password"' in page and 'name="new_password"' in page

    wrong = laptop.post(
        "/account/password",
        data={"csrf_token": csrf(laptop), "current_password": "not it at all", "new_password": "new password 123"},
    )
    assert wrong.status_code == 403 and "current password is wrong" in wrong.get_data(as_text=True)
    short = laptop.post(
        "/account/password", data={"csrf_token": csrf(laptop), "current_password": PASSWORD, "new_password": "short"}
    )
    assert short.status_code == 400 and "new_password" in short.get_data(as_text=True)
    assert _signed_in(phone), "refused changes end nothing"

    done = laptop.post(
        "/account/password",
        data={"csrf_token": csrf(laptop), "current_password": PASSWORD, "new_password": "new password 123"},
    )
    assert done.status_code == 302
    assert _signed_in(laptop), "the browser that changed it stays signed in"
    assert not _signed_in(phone), "every other session ended"
    assert not _signed_in(_with_cookie(app, stolen)), "and so did a copy of this browser's cookie from before"

    fresh = app.test_client()
    token = csrf_from(fresh.get("/login").get_data(as_text=True))
    old = fresh.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert old.status_code == 401
    _sign_in(app, csrf_from, email, "new password 123")


def test_suspension_ends_the_sessions_of_the_organisation_for_good(
    app: Flask, world: Any, csrf_from: Any, csrf: Any, login: Any
) -> None:
    with world.runtime.ctx() as ctx:
        regulator = ctx.session.get(Organisation, world.org_ids["regulator"])
        org = orgs.onboard(ctx, regulator, "Session Farm", ["producer"], "0700291")
        orgs.add_user(ctx, org, "sessionfarm@test.lotline", "Sal", PASSWORD)
        org_id = org.id
    user = _sign_in(app, csrf_from, "sessionfarm@test.lotline")
    stolen = _cookie(user)
    regulator_client = login(app.test_client(), "regulator")
    suspended = regulator_client.post(
        f"/admin/organisations/{org_id}/suspend",
        data={"csrf_token": csrf(regulator_client), "reason": "audit", "confirm_name": "Session Farm"},
    )
    assert suspended.status_code == 302
    reinstated = regulator_client.post(
        f"/admin/organisations/{org_id}/reinstate", data={"csrf_token": csrf(regulator_client)}
    )
    assert reinstated.status_code == 302
    # reinstatement lets its users sign in again, but brings no session from before back
    assert not _signed_in(_with_cookie(app, stolen))
    assert _signed_in(_sign_in(app, csrf_from, "sessionfarm@test.lotline"))
