"""API tokens and access: 401 without or with a bad token, 403 for a read token that writes or a role the
dashboard would refuse, token management through the API."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from supply_chain.services import tokens
from supply_chain.store.models import ApiToken
from tests.api.conftest import harvest_body, new_code, ship_body


def test_token_is_shown_once_and_stored_only_as_its_sha256(api_runtime, network) -> None:
    with api_runtime.ctx() as ctx:
        row, plain = tokens.create(ctx, network["producer"].org, "ERP integration", "write")
        stored = ctx.session.scalars(select(ApiToken).where(ApiToken.id == row.id)).one()
        assert plain.startswith("llt_") and len(plain) >= 40
        assert stored.token_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert plain not in (stored.token_hash, stored.name)
        org, scope = tokens.authenticate(ctx, plain)
        assert (org.id, scope) == (network["producer"].org.id, "write")
        assert stored.last_used_at is not None


def test_request_without_token_is_401_with_bearer_challenge(client) -> None:
    response = client.get("/api/v1/lots")
    assert response.status_code == 401
    assert response.get_json()["error"] == "missing_token"
    assert response.get_json()["field"] == "Authorization"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer llt_not-a-real-token", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer"])
def test_request_with_bad_token_is_401(client, header: str) -> None:
    response = client.get("/api/v1/lots", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] in ("invalid_token", "missing_token")


def test_revoked_token_stops_working_at_once(client, api_runtime, network) -> None:
    with api_runtime.ctx() as ctx:
        row, plain = tokens.create(ctx, network["retailer"].org, "to revoke", "read")
    headers = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    response = client.delete(f"/api/v1/tokens/{row.id}", headers=network["retailer"].headers("write"))
    assert response.status_code == 200
    assert response.get_json()["revoked_at"] is not None
    after = client.get("/api/v1/me", headers=headers)
    assert after.status_code == 401 and after.get_json()["error"] == "token_revoked"


def test_read_token_cannot_write(as_role, network) -> None:
    api = as_role("producer")
    response = api("POST", "/lots", scope="read", json=harvest_body(network["producer"], new_code()))
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
    assert api("GET", "/lots", scope="read").status_code == 200


@pytest.mark.parametrize("role", ["distributor", "retailer", "inspector", "regulator"])
def test_only_producers_and_processors_create_lots(as_role, network, role: str) -> None:
    body = harvest_body(network["producer"], new_code())
    response = as_role(role)("POST", "/lots", json=body)
    assert response.status_code == 403
    assert response.get_json()["error"] == "wrong_role"


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        ("distributor", "POST", "/products", {"gtin": "00700004000018", "name": "x"}),
        ("inspector", "POST", "/locations", {"gln": "0700005000026", "name": "x"}),
        (
            "producer",
            "POST",
            "/lots/{gtin}/{lot}/inspections",
            {"outcome": "pass", "payload": {"inspection_date": "2025-05-03", "inspector_name": "x"}},
        ),
        ("producer", "POST", "/lots/{gtin}/{lot}/holds", {"reason": "x"}),
        ("regulator", "POST", "/lots/{gtin}/{lot}/release", {"reason": "x"}),
        ("producer", "POST", "/lots/{gtin}/{lot}/custody/accept", {}),
        (
            "distributor",
            "POST",
            "/transformations",
            {
                "location_gln": "0700003000016",
                "transformation_date": "2025-05-03",
                "outputs": [
                    {
                        "gtin": "1",
                        "lot_code": "x",
                        "quantity": "1",
                        "inputs": [{"gtin": "1", "lot_code": "y", "quantity": "1"}],
                    }
                ],
            },
        ),
        ("inspector", "POST", "/lots/{gtin}/{lot}/shipments", {"payload": {}}),
    ],
)
def test_role_rules_match_the_dashboard(as_role, network, role: str, method: str, path: str, body: dict) -> None:
    producer = network["producer"]
    code = new_code()
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code)).status_code == 201
    response = as_role(role)(method, path.format(gtin=producer.gtin, lot=code), json=body)
    assert response.status_code == 403, response.get_json()
    assert response.get_json()["error"] == "wrong_role"


def test_an_organisation_cannot_ship_a_lot_it_does_not_hold(as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    code = new_code()
    as_role("producer")("POST", "/lots", json=harvest_body(producer, code))
    response = as_role("processor")(
        "POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(processor, network["distributor"])
    )
    assert response.status_code == 404  # not visible to the processor: same answer as a lot that does not exist
    as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(producer, processor))
    response = as_role("processor")(
        "POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(processor, network["distributor"])
    )
    assert response.status_code == 403  # offered, so visible, but not held yet


def test_tokens_can_be_created_listed_and_revoked_through_the_api(as_role) -> None:
    api = as_role("processor")
    created = api("POST", "/tokens", json={"name": "warehouse system", "scope": "read"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["token"].startswith("llt_") and body["scope"] == "read"
    listed = api("GET", "/tokens", scope="read").get_json()["items"]
    assert body["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)  # the secret is never listed
    new = {"Authorization": f"Bearer {body['token']}"}
    assert api.client.get("/api/v1/me", headers=new).get_json()["token"]["scope"] == "read"
    assert api("DELETE", f"/tokens/{body['id']}").status_code == 200
    assert api("DELETE", f"/tokens/{body['id']}").get_json()["error"] == "token_revoked"


def test_a_token_cannot_revoke_itself_or_another_organisations(as_role, network, api_runtime) -> None:
    api = as_role("processor")
    me = api("GET", "/me").get_json()["token"]["id"]
    assert api("DELETE", f"/tokens/{me}").get_json()["error"] == "token_in_use"
    with api_runtime.ctx() as ctx:
        other, _ = tokens.create(ctx, network["producer"].org, "producer's", "read")
    assert api("DELETE", f"/tokens/{other.id}").status_code == 404


def test_openapi_document_needs_no_token(client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.1")
