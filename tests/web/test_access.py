"""Every protected route refuses the wrong role (403) and anonymous visitors (sent to sign in); every role is
refused objects it has no part in (404/403) and never sees their data; private and consortium payload fields
stay with those entitled to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

ROLES = ("producer", "processor", "distributor", "retailer", "inspector", "regulator")
HANDLERS = {"producer", "processor", "distributor", "retailer"}
CREATORS = {"producer", "processor"}
RECEIVERS = {"processor", "distributor", "retailer"}

# (method, path with {placeholders}, roles allowed). {F1} etc. are lot keys of the shared world.
ROUTES: list[tuple[str, str, set[str]]] = [
    ("GET", "/dashboard", HANDLERS),
    ("GET", "/products", CREATORS),
    ("POST", "/products", CREATORS),
    ("GET", "/sites", HANDLERS),
    ("POST", "/sites", HANDLERS),
    ("GET", "/lots/new", CREATORS),
    ("POST", "/lots/new", CREATORS),
    ("GET", "/transform", CREATORS),
    ("POST", "/transform", CREATORS),
    ("GET", "/lots/{M1}/events/new", HANDLERS),
    ("POST", "/lots/{M1}/events/new", HANDLERS),
    ("GET", "/lots/{M1}/ship", HANDLERS),
    ("POST", "/lots/{M1}/ship", HANDLERS),
    ("POST", "/lots/{M1}/cancel-offer", HANDLERS),
    ("POST", "/lots/{M1}/close", HANDLERS),
    ("GET", "/lots/{M1}/readings", HANDLERS),
    ("POST", "/lots/{M1}/readings", HANDLERS),
    ("GET", "/lots/{M1}/labels", HANDLERS),
    ("GET", "/custody", RECEIVERS),
    ("GET", "/custody/{M1}/accept", RECEIVERS),
    ("POST", "/custody/{M1}/accept", RECEIVERS),
    ("POST", "/custody/{M1}/reject", RECEIVERS),
    ("GET", "/inspections", {"inspector"}),
    ("GET", "/inspections/lots/{M1}/new", {"inspector"}),
    ("POST", "/inspections/lots/{M1}/new", {"inspector"}),
    ("POST", "/inspections/lots/{M1}/hold", {"inspector", "regulator"}),
    ("POST", "/inspections/lots/{M1}/release", {"inspector"}),
    ("GET", "/lots/search", {"inspector", "regulator"}),
    ("GET", "/admin", {"regulator"}),
    ("GET", "/admin/organisations/new", {"regulator"}),
    ("POST", "/admin/organisations/new", {"regulator"}),
    ("GET", "/admin/organisations/1", {"regulator"}),
    ("POST", "/admin/organisations/1/roles", {"regulator"}),
    ("POST", "/admin/organisations/1/suspend", {"regulator"}),
    ("POST", "/admin/organisations/1/reinstate", {"regulator"}),
    ("GET", "/tokens", set(ROLES)),
    ("GET", "/organisations", set(ROLES)),
    ("GET", "/organisations/1/credit", set(ROLES)),
    ("POST", "/tokens", set(ROLES)),
    ("GET", "/settings/notifications", set(ROLES)),
    ("POST", "/settings/notifications/email", set(ROLES)),
    ("POST", "/settings/notifications/webhooks", set(ROLES)),
    ("GET", "/admin/lots/{F1}/trace", {"regulator"}),
    ("GET", "/admin/lots/{F1}/recall", {"regulator"}),
    ("POST", "/admin/lots/{F1}/recall", {"regulator"}),
    ("GET", "/admin/lots/{F1}/trace.csv", {"regulator"}),
    ("GET", "/admin/lots/{F1}/fsma204.csv", {"regulator"}),
    ("GET", "/admin/lots/{F1}/fsma204.xlsx", {"regulator"}),
    ("GET", "/admin/map", {"regulator"}),
    ("GET", "/admin/map/layers.json", {"regulator"}),
    ("GET", "/admin/recalls/drafts/1", {"regulator"}),
    ("POST", "/admin/recalls/drafts/1/edit", {"regulator"}),
    ("POST", "/admin/recalls/drafts/1/review", {"regulator"}),
    ("POST", "/admin/recalls/drafts/1/discard", {"regulator"}),
    ("POST", "/admin/recalls/drafts/1/issue", {"regulator"}),
    ("GET", "/admin/recalls/1", {"regulator"}),
    ("GET", "/admin/recalls/1/effectiveness", {"regulator"}),
    ("POST", "/admin/recalls/1/updates", {"regulator"}),
    ("POST", "/admin/recalls/1/terminate", {"regulator"}),
    ("POST", "/admin/recalls/1/remind", {"regulator"}),
    ("GET", "/notifications", set(ROLES)),
    ("POST", "/notifications/read", set(ROLES)),
    ("GET", "/lots/{M1}", set(ROLES)),
    ("GET", "/lots/{F1}/documents/{doc}", set(ROLES)),
]


def _path(world: Any, template: str) -> str:
    return template.format(doc=world.document_id, **{k: v for k, v in world.lot_ids.items() if k.isalnum()})


@pytest.fixture(scope="module")
def access_app(make_app: Any) -> Flask:
    return make_app()


@pytest.fixture(scope="module")
def clients(access_app: Flask, login: Any) -> Iterator[dict[str, FlaskClient]]:
    """One signed-in client per role (and ``other``, a second farm), shared by the module's tests."""
    out = {}
    for role in (*ROLES, "other"):
        out[role] = login(access_app.test_client(), role)
    out["anonymous"] = access_app.test_client()
    yield out


@pytest.fixture(scope="module")
def call(csrf: Any) -> Any:
    def _call(client: FlaskClient, method: str, path: str) -> Any:
        if method == "GET":
            return client.get(path)
        return client.post(path, data={"csrf_token": csrf(client), "reason": "test", "kde.reason": "x"})

    return _call


WRONG_ROLE_CASES = [
    pytest.param(method, path, role, id=f"{method} {path} as {role}")
    for method, path, allowed in ROUTES
    for role in ROLES
    if role not in allowed
]


@pytest.mark.parametrize(("method", "path", "role"), WRONG_ROLE_CASES)
def test_route_refuses_wrong_role_with_403_and_writes_nothing(
    world: Any, clients: dict[str, FlaskClient], call: Any, counts: Any, method: str, path: str, role: str
) -> None:
    before = counts()
    response = call(clients[role], method, _path(world, path))
    assert response.status_code == 403
    assert "Not allowed" in response.get_data(as_text=True)
    assert counts() == before


ANONYMOUS_CASES = [pytest.param(method, path, id=f"{method} {path}") for method, path, _ in ROUTES]


@pytest.mark.parametrize(("method", "path"), ANONYMOUS_CASES)
def test_route_sends_anonymous_visitors_to_sign_in(
    world: Any, clients: dict[str, FlaskClient], call: Any, counts: Any, method: str, path: str
) -> None:
    before = counts()
    response = call(clients["anonymous"], method, _path(world, path))
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    assert counts() == before


def test_anonymous_json_client_gets_403_json_not_a_redirect(world: Any, clients: dict[str, FlaskClient]) -> None:
    response = clients["anonymous"].get("/dashboard", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.json == {"error": "not_signed_in", "message": "sign in first"}


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/dashboard", "producer"),
        ("/products", "processor"),
        ("/sites", "retailer"),
        ("/lots/new", "producer"),
        ("/transform", "processor"),
        ("/custody", "retailer"),
        ("/inspections", "inspector"),
        ("/lots/search?q=F", "regulator"),
        ("/admin", "regulator"),
        ("/admin/organisations/new", "regulator"),
        ("/admin/lots/{F1}/trace", "regulator"),
        ("/lots/{M1}", "distributor"),
        ("/lots/{M2}/labels", "distributor"),
        ("/custody/{T1}/accept", "retailer"),
        ("/inspections/lots/{F3}/new", "inspector"),
        ("/lots/{F2}/events/new?kind=cooling", "producer"),
        ("/lots/{F2}/ship", "producer"),
    ],
)
def test_route_serves_its_roles(world: Any, clients: dict[str, FlaskClient], path: str, role: str) -> None:
    assert clients[role].get(_path(world, path)).status_code == 200


# ------------------------------------------------------------------ objects one does not own

NOT_MINE = [
    # (role, path, lot key whose code must not appear)
    ("producer", "/lots/{O1}", "O1"),  # another farm's lot
    ("other", "/lots/{F2}", "F2"),
    ("other", "/lots/{M1}", "M1"),
    ("processor", "/lots/{F2}", "F2"),  # a farm lot it never handled
    ("processor", "/lots/{O1}", "O1"),
    ("distributor", "/lots/{F1}", "F1"),  # an ingredient of a lot it carries, not its own
    ("retailer", "/lots/{F1}", "F1"),
    ("retailer", "/lots/{F2}", "F2"),
    ("producer", "/lots/{M1}", "M1"),  # made from its lot, but by someone else
    ("producer", "/lots/{O1}/labels", "O1"),
    ("producer", "/lots/{O1}/ship", "O1"),
    ("producer", "/lots/{O1}/events/new", "O1"),
    ("producer", "/lots/{O1}/readings", "O1"),
    ("distributor", "/lots/{F2}/labels", "F2"),
    ("retailer", "/lots/{F1}/documents/{doc}", "F1"),
    ("distributor", "/lots/{F1}/documents/{doc}", "F1"),
    ("retailer", "/custody/{F2}/accept", "F2"),
    ("producer", "/lots/999999", None),
]


@pytest.mark.parametrize(("role", "path", "key"), NOT_MINE, ids=[f"{r} {p}" for r, p, _ in NOT_MINE])
def test_lots_of_others_are_not_found_and_show_nothing(
    world: Any, clients: dict[str, FlaskClient], role: str, path: str, key: str | None
) -> None:
    response = clients[role].get(_path(world, path))
    assert response.status_code == 404
    if key is not None:
        assert f">{key}<" not in response.get_data(as_text=True)
        assert "BOL-SECRET-1" not in response.get_data(as_text=True)


ACTIONS_ON_OTHERS = [
    # the role may see the lot but not act on it: 403, nothing written
    ("producer", "GET", "/lots/{F1}/events/new?kind=cooling"),  # its creator, but the processor holds it
    ("producer", "GET", "/lots/{F1}/ship"),
    ("producer", "POST", "/lots/{F1}/close"),
    ("retailer", "GET", "/lots/{M1}/ship"),  # offered to it, not yet its own
    ("retailer", "POST", "/lots/{M1}/close"),
    ("distributor", "GET", "/custody/{M1}/accept"),  # it offered the lot; only the receiver accepts
    ("distributor", "POST", "/custody/{M1}/reject"),
    ("processor", "POST", "/lots/{M1}/cancel-offer"),  # a past holder cannot cancel the current offer
    ("retailer", "POST", "/lots/{F3}/close"),  # a lot it cannot even see
]


@pytest.mark.parametrize(
    ("role", "method", "path"), ACTIONS_ON_OTHERS, ids=[f"{r} {m} {p}" for r, m, p in ACTIONS_ON_OTHERS]
)
def test_actions_on_lots_one_does_not_hold_are_refused(
    world: Any, clients: dict[str, FlaskClient], call: Any, counts: Any, role: str, method: str, path: str
) -> None:
    before = counts()
    response = call(clients[role], method, _path(world, path))
    assert response.status_code in (403, 404)
    assert counts() == before


def test_participant_sees_consortium_fields_but_not_others_private_fields(
    world: Any, clients: dict[str, FlaskClient]
) -> None:
    page = clients["processor"].get(_path(world, "/lots/{F1}")).get_data(as_text=True)
    assert "North Block 7" in page and "BOL-SECRET-1" in page and "Trucker Joe" in page
    assert "farm-private-note" not in page  # the farm's private note
    assert "Ivy Privateinspector" not in page  # the inspector's private field


def test_author_sees_its_own_private_fields(world: Any, clients: dict[str, FlaskClient]) -> None:
    assert "farm-private-note" in clients["producer"].get(_path(world, "/lots/{F1}")).get_data(as_text=True)
    assert "Ivy Privateinspector" in clients["inspector"].get(_path(world, "/lots/{F1}")).get_data(as_text=True)


def test_regulator_sees_consortium_but_not_private_fields(world: Any, clients: dict[str, FlaskClient]) -> None:
    page = clients["regulator"].get(_path(world, "/lots/{F1}")).get_data(as_text=True)
    for value in world.consortium_values:
        assert value in page
    for value in world.private_values:
        assert value not in page


def test_participant_downloads_the_certificate(world: Any, clients: dict[str, FlaskClient]) -> None:
    response = clients["processor"].get(_path(world, "/lots/{F1}/documents/{doc}"))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF")
    assert "attachment" in response.headers["Content-Disposition"]


def test_document_of_another_lot_is_not_served_through_a_lot_one_can_see(
    world: Any, clients: dict[str, FlaskClient]
) -> None:
    # F3 is visible to the processor; the certificate belongs to F1: the pair must match
    response = clients["processor"].get(_path(world, "/lots/{F3}/documents/{doc}"))
    assert response.status_code == 404


def test_dashboard_lists_only_the_organisations_lots(world: Any, clients: dict[str, FlaskClient]) -> None:
    page = clients["other"].get("/dashboard").get_data(as_text=True)
    assert ">O1<" in page
    assert ">F1<" not in page and ">F2<" not in page and ">M1<" not in page


def test_custody_inbox_shows_the_offer_to_the_receiver_only(world: Any, clients: dict[str, FlaskClient]) -> None:
    retailer = clients["retailer"].get("/custody").get_data(as_text=True)
    processor = clients["processor"].get("/custody").get_data(as_text=True)
    assert "Offered to you" in retailer and ">T1<" in retailer and "Receive" in retailer
    assert "Nothing is waiting for you" in processor


def test_inspector_and_regulator_search_any_lot(world: Any, clients: dict[str, FlaskClient]) -> None:
    for role in ("inspector", "regulator"):
        gtin, code = world.labels["O1"]
        response = clients[role].get(f"/lots/search?q={gtin}+{code}")
        assert response.status_code == 302
        assert response.headers["Location"] == f"/lots/{world.lot('O1')}"
        assert ">O1<" in clients[role].get(response.headers["Location"]).get_data(as_text=True)


def test_regulator_forward_trace_lists_affected_lots_and_holders(world: Any, clients: dict[str, FlaskClient]) -> None:
    response = clients["regulator"].get(_path(world, "/admin/lots/{F1}/trace"), headers={"Accept": "application/json"})
    assert response.status_code == 200
    lots = {item["lot_code"]: item for item in response.json["lots"]}
    assert set(lots) == {"F1", "M1"}
    assert lots["M1"]["affected_by_recall"] and lots["M1"]["custodian"] == "Test Carrier"
    page = clients["regulator"].get(_path(world, "/admin/lots/{F1}/trace")).get_data(as_text=True)
    assert '<tr class="affected">' in page and "Test Carrier" in page
