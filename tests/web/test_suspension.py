"""The regulator suspends an organisation from its page and reinstates it (issue 8): roles revoked on chain, its
signed-in users sent back to sign in, sign-in refused with the reason, its API tokens refused, its writes
refused; after reinstatement all of that works again. Each test suspends an organisation of its own."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from supply_chain.services import orgs, tokens
from supply_chain.services.demo import gln, gtin
from supply_chain.store.models import Organisation, User, UserSession

PASSWORD = "suspension test password"
REASON = "Falsified cooling records found at audit 2026-114"
_numbers = itertools.count(1)


@dataclass
class Member:
    key: str  # the login helper's key: its user is {key}@test.lotline
    name: str
    org_id: int
    address: str
    gtin: str
    gln: str
    token: str

    def harvest(self, code: str) -> dict[str, Any]:
        day = (datetime.now(UTC) - timedelta(days=2)).date().isoformat()
        return {
            "gtin": self.gtin,
            "lot_code": code,
            "kind": "harvesting",
            "quantity": "10",
            "unit": "kg",
            "payload": {"location_gln": self.gln, "harvest_date": day, "commodity": "lettuce"},
        }

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _member(world: Any) -> Member:
    """A producer of its own (roles on chain, a site, a product, a user and a write token)."""
    n = next(_numbers)
    prefix = f"07002{n:02d}"
    with world.runtime.ctx() as ctx:
        regulator = ctx.session.get(Organisation, world.org_ids["regulator"])
        org = orgs.onboard(ctx, regulator, f"Suspendable Farm {n}", ["producer"], prefix)
        site = orgs.register_location(ctx, org, gln(prefix, "00001"), f"Suspendable field {n}")
        product = orgs.register_product(ctx, org, gtin(prefix, "00001"), f"Suspendable lettuce {n}")
        orgs.add_user(ctx, org, f"suspendable{n}@test.lotline", f"Sam Suspendable {n}", PASSWORD)
        _, token = tokens.create(ctx, org, "ERP", "write")
        return Member(f"suspendable{n}", org.name, org.id, org.chain_address, product.gtin, site.gln, token)


def _on_chain(world: Any, member: Member) -> bool:
    with world.runtime.ctx() as ctx:
        return bool(ctx.ledger.has_role("producer", member.address))


def _organisation(world: Any, member: Member) -> tuple[Any, ...]:
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, member.org_id)
        signed_in = ctx.session.scalar(
            select(func.count()).select_from(UserSession).join(User).where(User.organisation_id == org.id)
        )
        return list(org.roles), org.suspended_at, org.suspended_reason, signed_in


def _suspend(client: FlaskClient, csrf: Any, member: Member, **form: str) -> Any:
    data = {"csrf_token": csrf(client), "reason": REASON, "confirm_name": member.name} | form
    return client.post(f"/admin/organisations/{member.org_id}/suspend", data=data)


@pytest.fixture
def member(world: Any) -> Member:
    return _member(world)


@pytest.fixture(scope="module")
def bystander(world: Any) -> Member:
    """An organisation the refused requests aim at; they must leave it as it is."""
    return _member(world)


def test_suspension_signs_out_refuses_sign_in_tokens_and_writes_and_reinstatement_restores_them(
    app: Flask, world: Any, member: Member, signed_in: Any, csrf: Any, counts: Any
) -> None:
    user = signed_in(member.key, PASSWORD)
    api = app.test_client()
    assert user.get("/dashboard").status_code == 200
    assert api.post("/api/v1/lots", json=member.harvest("BEFORE-1"), headers=member.headers()).status_code == 201

    regulator = signed_in("regulator")
    page = regulator.get(f"/admin/organisations/{member.org_id}").get_data(as_text=True)
    assert "Suspend organisation" in page and 'name="confirm_name"' in page and 'name="reason"' in page

    # a reason and the typed name are required; refused forms change nothing
    before = counts()
    no_reason = _suspend(regulator, csrf, member, reason="  ")
    assert no_reason.status_code == 400 and 'id="f-reason-error">Reason: ' in no_reason.get_data(as_text=True)
    wrong_name = _suspend(regulator, csrf, member, confirm_name="Suspendable")
    assert wrong_name.status_code == 400 and 'id="f-confirm-name-error"' in wrong_name.get_data(as_text=True)
    assert counts() == before and _on_chain(world, member)

    done = _suspend(regulator, csrf, member)
    assert done.status_code == 302
    assert counts()[2] == before[2] + 1, "one transaction revokes its roles"
    assert not _on_chain(world, member)
    page = regulator.get(done.headers["Location"]).get_data(as_text=True)
    assert "Reinstate" in page and REASON in page and "Suspend organisation" not in page
    listing = regulator.get("/admin").get_data(as_text=True)
    assert member.name in listing and "suspended since" in listing.split(member.name, 1)[1].split("</tr>", 1)[0]

    # its signed-in user is signed out at the next request
    out = user.get("/dashboard")
    assert out.status_code == 302 and out.headers["Location"].startswith("/login")
    with user.session_transaction() as session:
        assert "sid" not in session

    # its API token is refused, and so its writes
    before = counts()
    refused = api.post("/api/v1/lots", json=member.harvest("DURING-1"), headers=member.headers())
    assert refused.status_code == 403 and refused.get_json()["error"] == "organisation_suspended"
    assert api.get("/api/v1/me", headers=member.headers()).status_code == 403
    assert counts() == before

    # sign-in is refused with the reason and the date, and no session is opened
    fresh = app.test_client()
    form = {"email": f"{member.key}@test.lotline", "password": PASSWORD, "csrf_token": csrf(fresh)}
    answer = fresh.post("/login", data=form)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert answer.status_code == 403
    assert f"{member.name} is suspended by the regulator since {day}: {REASON}" in answer.get_data(as_text=True)
    with fresh.session_transaction() as session:
        assert "sid" not in session
    assert fresh.get("/dashboard").status_code == 302

    # twice: a clear 409 with a code, and nothing changes
    state = _organisation(world, member)
    twice = regulator.post(
        f"/admin/organisations/{member.org_id}/suspend",
        data={"csrf_token": csrf(regulator), "reason": "again", "confirm_name": member.name},
        headers={"Accept": "application/json"},
    )
    assert twice.status_code == 409 and twice.get_json()["error"] == "already_suspended"
    assert _organisation(world, member) == state and counts() == before

    back = regulator.post(f"/admin/organisations/{member.org_id}/reinstate", data={"csrf_token": csrf(regulator)})
    assert back.status_code == 302 and _on_chain(world, member)
    assert "suspended since" not in regulator.get("/admin").get_data(as_text=True).split(member.name, 1)[1][:300]
    assert user.get("/dashboard").status_code == 302, "the session from before the suspension stays ended"
    assert signed_in(member.key, PASSWORD).get("/dashboard").status_code == 200
    created = api.post("/api/v1/lots", json=member.harvest("AFTER-1"), headers=member.headers())
    assert created.status_code == 201, created.get_json()

    active = regulator.post(
        f"/admin/organisations/{member.org_id}/reinstate",
        data={"csrf_token": csrf(regulator)},
        headers={"Accept": "application/json"},
    )
    assert active.status_code == 409 and active.get_json()["error"] == "not_suspended"


def test_signed_in_json_client_of_a_suspended_organisation_gets_403(
    app: Flask, world: Any, member: Member, signed_in: Any, csrf: Any
) -> None:
    user = signed_in(member.key, PASSWORD)
    assert user.get("/dashboard", headers={"Accept": "application/json"}).status_code == 200
    _suspend(signed_in("regulator"), csrf, member)
    answer = user.get("/dashboard", headers={"Accept": "application/json"})
    assert answer.status_code == 403 and answer.get_json()["error"] == "not_signed_in"


@pytest.mark.parametrize("role", ["producer", "processor", "distributor", "retailer", "inspector"])
@pytest.mark.parametrize("action", ["suspend", "reinstate"])
def test_wrong_role_gets_403_from_suspend_and_reinstate_and_nothing_changes(
    app: Flask, world: Any, bystander: Member, signed_in: Any, csrf: Any, counts: Any, role: str, action: str
) -> None:
    client = signed_in(role)
    before, state = counts(), _organisation(world, bystander)
    answer = client.post(
        f"/admin/organisations/{bystander.org_id}/{action}",
        data={"csrf_token": csrf(client), "reason": REASON, "confirm_name": bystander.name},
    )
    assert answer.status_code == 403 and "Not allowed" in answer.get_data(as_text=True)
    assert counts() == before and _organisation(world, bystander) == state and _on_chain(world, bystander)


def test_the_regulator_cannot_suspend_itself_or_the_operator(
    app: Flask, world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    regulator = signed_in("regulator")
    own = world.org_ids["regulator"]
    assert "Suspend organisation" not in regulator.get(f"/admin/organisations/{own}").get_data(as_text=True)
    with world.runtime.ctx() as ctx:
        operator = orgs.operator(ctx).id
    before = counts()
    for org_id, code in ((own, "cannot_suspend_self"), (operator, "cannot_suspend_admin")):
        answer = regulator.post(
            f"/admin/organisations/{org_id}/suspend",
            data={"csrf_token": csrf(regulator), "reason": REASON, "confirm_name": "x"},
            headers={"Accept": "application/json"},
        )
        assert answer.status_code == 403 and answer.get_json()["error"] == code
    assert counts() == before
