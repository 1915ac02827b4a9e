"""``GET /api/v1/organisations/{org_id}/credit``: any organisation's token reads another's credit record."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Network, harvest_body, new_code


def test_a_buyer_reads_a_suppliers_credit_record(as_role: Any, network: Network) -> None:
    created = as_role("producer")("POST", "/lots", json=harvest_body(network["producer"], new_code("CR")))
    assert created.status_code == 201, created.json
    response = as_role("retailer")("GET", f"/organisations/{network['producer'].org.id}/credit", scope="read")
    assert response.status_code == 200, response.json
    data = response.json
    assert data["organisation"] == {"id": network["producer"].org.id, "name": "API Producer", "roles": ["producer"]}
    assert data["totals"]["lots_created"] >= 1
    assert data["grade"]["letter"] in ("A", "B", "C", "D") and data["grade"]["explanation"]
    assert [line["grade"] for line in data["rule"]["grades"]] == ["D", "C", "B"]
    assert data["acknowledgements_tracked"] is True and data["totals"]["acks_late"] == 0
    assert len(data["months"]) == 12


def test_an_inspector_is_not_graded(as_role: Any, network: Network) -> None:
    data = as_role("producer")("GET", f"/organisations/{network['inspector'].org.id}/credit", scope="read").json
    assert data["grade"]["letter"] is None and data["grade"]["reasons"] == []


def test_unknown_or_malformed_organisations_and_missing_tokens_are_refused(as_role: Any, client: Any) -> None:
    unknown = as_role("producer")("GET", "/organisations/999999/credit", scope="read")
    assert unknown.status_code == 404 and unknown.json["error"] == "unknown_organisation"
    bad = as_role("producer")("GET", "/organisations/x1/credit", scope="read")
    assert bad.status_code == 400 and bad.json["field"] == "org_id"
    assert client.get("/api/v1/organisations/1/credit").status_code == 401


def test_the_operation_is_documented(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/organisations/{org_id}/credit"]["get"]
    assert operation["operationId"] == "getOrganisationCredit"
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/CreditRecord")
    assert "grade" in document["components"]["schemas"]["CreditRecord"]["properties"]
