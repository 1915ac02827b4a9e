"""Every dashboard action through the API: happy paths, the errors a client sees, pagination."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from supply_chain.store.models import Event, Lot
from tests.api.conftest import gln, gtin, harvest_body, new_code, ship_body

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def _lot(as_role, network, code: str | None = None, quantity: str = "100") -> str:
    code = code or new_code()
    response = as_role("producer")("POST", "/lots", json=harvest_body(network["producer"], code, quantity))
    assert response.status_code == 201, response.get_json()
    return code


def _at_processor(as_role, network) -> str:
    """A producer's lot shipped to and received by the processor."""
    producer, processor = network["producer"], network["processor"]
    code = _lot(as_role, network)
    as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(producer, processor))
    response = as_role("processor")("POST", f"/lots/{producer.gtin}/{code}/custody/accept", json={})
    assert response.status_code == 201, response.get_json()
    return code


# ------------------------------------------------------------------ catalogue


def test_register_and_list_products(as_role) -> None:
    api = as_role("processor")
    new_gtin = gtin("0700002", "00777")
    response = api(
        "POST",
        "/products",
        json={"gtin": new_gtin, "name": "Kale chips", "unit": "case", "on_food_traceability_list": False},
    )
    assert response.status_code == 201
    assert response.get_json() == {
        "gtin": new_gtin,
        "name": "Kale chips",
        "category": None,
        "unit": "case",
        "on_food_traceability_list": False,
        "commodity": None,
        "variety": None,
        "organisation": {"id": api.member.org.id, "name": "API Processor"},
    }
    listed = api("GET", "/products", scope="read").get_json()["items"]
    assert new_gtin in [p["gtin"] for p in listed]
    again = api("POST", "/products", json={"gtin": new_gtin, "name": "Kale chips"})
    assert again.status_code == 409 and again.get_json()["field"] == "gtin"


@pytest.mark.parametrize(
    ("value", "code"), [("00700002000123", "invalid_gtin"), ("12ab", "invalid_gtin"), ("", "invalid_gtin")]
)
def test_bad_gtin_names_the_field_and_the_rule(as_role, value: str, code: str) -> None:
    response = as_role("processor")("POST", "/products", json={"gtin": value, "name": "x"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == code and body["field"] == "gtin" and body["message"]


def test_gtin_outside_the_company_prefix_is_forbidden(as_role) -> None:
    response = as_role("processor")("POST", "/products", json={"gtin": gtin("0700001", "00555"), "name": "x"})
    assert response.status_code == 403 and response.get_json()["field"] == "gtin"


def test_register_and_list_locations(as_role) -> None:
    api = as_role("distributor")
    new_gln = gln("0700003", "00042")
    response = api(
        "POST",
        "/locations",
        json={"gln": new_gln, "name": "Cross-dock 42", "latitude": 37.9, "longitude": -121.3, "kind": "warehouse"},
    )
    assert response.status_code == 201 and response.get_json()["gln"] == new_gln
    mine = api("GET", "/locations?mine=true", scope="read").get_json()["items"]
    assert {loc["organisation"]["name"] for loc in mine} == {"API Distributor"}
    assert new_gln in [loc["gln"] for loc in mine]
    everyone = api("GET", "/locations?limit=200", scope="read").get_json()["items"]
    assert len({loc["organisation"]["name"] for loc in everyone}) >= 6
    bad = api("POST", "/locations", json={"gln": new_gln, "name": "x", "latitude": 95})
    assert bad.status_code == 400 and bad.get_json()["field"] == "latitude"


# ------------------------------------------------------------------ lots and events


def test_create_get_and_list_lots(as_role, network) -> None:
    producer = network["producer"]
    code = _lot(as_role, network, quantity="2000.5")
    lot = as_role("producer")("GET", f"/lots/{producer.gtin}/{code}", scope="read").get_json()
    assert lot["status"] == "active" and lot["quantity"] == "2000.5" and lot["unit"] == "kg"
    assert lot["custodian"]["name"] == "API Producer" and lot["event_count"] == 1
    assert lot["digital_link"] == f"https://lotline.test/01/{producer.gtin}/10/{code}"
    assert lot["origin_gln"] == producer.gln
    listed = as_role("producer")("GET", "/lots?q=" + code, scope="read").get_json()["items"]
    assert [item["lot_code"] for item in listed] == [code]
    assert as_role("retailer")("GET", f"/lots/{producer.gtin}/{code}").status_code == 404  # not its lot
    assert as_role("inspector")("GET", f"/lots/{producer.gtin}/{code}").status_code == 200  # oversight


def test_create_lot_errors_name_the_field(as_role, network) -> None:
    producer = network["producer"]
    code = _lot(as_role, network)
    api = as_role("producer")
    twice = api("POST", "/lots", json=harvest_body(producer, code))
    assert twice.status_code == 409 and twice.get_json()["error"] == "lot_exists"
    missing = harvest_body(producer, new_code())
    del missing["payload"]["harvest_date"]
    response = api("POST", "/lots", json=missing)
    assert response.status_code == 400 and response.get_json()["field"] == "payload.harvest_date"
    bad_lot = api("POST", "/lots", json=harvest_body(producer, "has space"))
    assert bad_lot.get_json()["error"] == "invalid_lot_code" and bad_lot.get_json()["field"] == "lot_code"
    typo = harvest_body(producer, new_code())
    typo["quantitty"] = "1"
    assert api("POST", "/lots", json=typo).get_json() == {
        "error": "unknown_field",
        "field": "body",
        "message": "body: Additional properties are not allowed ('quantitty' was unexpected)",
    }
    negative = api("POST", "/lots", json=harvest_body(producer, new_code(), quantity="-3"))
    assert negative.status_code == 400 and negative.get_json()["error"] == "invalid_quantity"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"gtin": ', "not valid JSON"),
        (b"", "empty"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "must be of type object"),
        (b'{"quantity": NaN}', "not valid JSON"),
    ],
)
def test_malformed_json_is_a_400_naming_the_problem(as_role, data: bytes, fragment: str) -> None:
    response = as_role("producer")("POST", "/lots", data=data, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert fragment in response.get_json()["message"]


def test_record_and_list_events(as_role, network) -> None:
    producer = network["producer"]
    code = _lot(as_role, network)
    api = as_role("producer")
    response = api(
        "POST",
        f"/lots/{producer.gtin}/{code}/events",
        json={
            "kind": "cooling",
            "payload": {"location_gln": producer.gln, "cooling_date": "2025-05-01T18:00:00+02:00"},
        },
    )
    assert response.status_code == 201
    event = response.get_json()["event"]
    assert event["kind"] == "cooling" and event["status"] == "confirmed" and event["seq"] == 2
    assert event["payload"]["quantity"] == "100"  # defaulted to the lot's quantity
    observation = api(
        "POST",
        f"/lots/{producer.gtin}/{code}/events",
        json={"kind": "observation", "payload": {"note": "leaves slightly wilted", "date": "2025-05-02"}},
    )
    assert observation.status_code == 201
    own = api("GET", f"/lots/{producer.gtin}/{code}/events", scope="read").get_json()["items"]
    assert [e["kind"] for e in own] == ["harvesting", "cooling", "observation"]
    assert own[2]["payload"]["note"] == "leaves slightly wilted"  # the author sees its private note
    seen_by_inspector = as_role("inspector")("GET", f"/lots/{producer.gtin}/{code}/events").get_json()["items"]
    assert "note" not in seen_by_inspector[2]["payload"]  # private to its author
    wrong = api("POST", f"/lots/{producer.gtin}/{code}/events", json={"kind": "shipping", "payload": {}})
    assert wrong.status_code == 400 and wrong.get_json()["field"] == "kind"


def test_ship_accept_and_the_custody_it_moves(as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    code = _lot(as_role, network)
    shipped = as_role("producer")(
        "POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(producer, processor, "BOL-77")
    )
    assert shipped.status_code == 201
    assert shipped.get_json()["lot"]["status"] == "in_transit"
    assert shipped.get_json()["lot"]["pending_custodian"]["name"] == "API Processor"  # owner of to_gln
    received = as_role("processor")(
        "POST", f"/lots/{producer.gtin}/{code}/custody/accept", json={"payload": {"receive_date": "2025-05-03"}}
    )
    assert received.status_code == 201
    body = received.get_json()
    assert body["lot"]["custodian"]["name"] == "API Processor" and body["lot"]["status"] == "active"
    assert body["event"]["payload"]["reference_document_number"] == "BOL-77"  # taken from the shipment
    assert body["event"]["payload"]["from_gln"] == producer.gln
    again = as_role("processor")("POST", f"/lots/{producer.gtin}/{code}/custody/accept", json={})
    assert again.status_code == 409 and again.get_json()["error"] == "already_received"
    assert again.get_json()["message"].startswith(f"lot {code} is already received by you")


def test_reject_and_cancel_a_shipment(as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    code = _lot(as_role, network)
    path = f"/lots/{producer.gtin}/{code}"
    as_role("producer")("POST", path + "/shipments", json=ship_body(producer, processor))
    rejected = as_role("processor")("POST", path + "/custody/reject", json={"reason": "temperature too high"})
    assert rejected.status_code == 201 and rejected.get_json()["lot"]["status"] == "active"
    assert rejected.get_json()["lot"]["custodian"]["name"] == "API Producer"
    as_role("producer")("POST", path + "/shipments", json=ship_body(producer, processor) | {"to": processor.org.id})
    cancelled = as_role("producer")("POST", path + "/custody/cancel", json={"reason": "truck broke down"})
    assert cancelled.status_code == 201 and cancelled.get_json()["event"]["kind"] == "custody_cancelled"
    not_in_transit = as_role("producer")("POST", path + "/custody/cancel", json={"reason": "again"})
    assert not_in_transit.status_code == 409


def test_shipping_to_an_organisation_that_cannot_receive_is_refused(as_role, network) -> None:
    producer = network["producer"]
    code = _lot(as_role, network)
    response = as_role("producer")(
        "POST", f"/lots/{producer.gtin}/{code}/shipments", json=ship_body(producer, network["inspector"])
    )
    assert response.status_code == 400 and response.get_json()["error"] == "recipient_cannot_receive"


def test_inspection_with_certificate_hold_release_and_recall(as_role, network, api_runtime) -> None:
    producer = network["producer"]
    code = _lot(as_role, network)
    path = f"/lots/{producer.gtin}/{code}"
    inspected = as_role("inspector")(
        "POST",
        path + "/inspections",
        json={
            "outcome": "fail",
            "payload": {
                "inspection_date": "2025-05-03",
                "inspector_name": "Ian",
                "findings": "Listeria in 1 of 5 samples",
            },
            "certificate": {
                "filename": "lab.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(PDF).decode(),
            },
        },
    )
    assert inspected.status_code == 201, inspected.get_json()
    assert inspected.get_json()["lot"]["status"] == "held"  # a fail holds the lot
    assert len(inspected.get_json()["event"]["payload"]["certificate_sha256"]) == 64
    blocked = as_role("producer")("POST", path + "/shipments", json=ship_body(producer, network["processor"]))
    assert blocked.status_code == 409
    released = as_role("inspector")("POST", path + "/release", json={"reason": "re-test negative"})
    assert released.status_code == 201 and released.get_json()["lot"]["status"] == "active"
    held = as_role("regulator")("POST", path + "/holds", json={"reason": "investigation"})
    assert held.get_json()["lot"]["status"] == "held"
    recalled = as_role("regulator")(
        "POST",
        path + "/recalls",
        json={"reason": "Listeria monocytogenes", "recall_class": "I", "instructions": "Do not eat."},
    )
    assert recalled.status_code == 201 and recalled.get_json()["lot"]["status"] == "recalled"
    again = as_role("regulator")(
        "POST", path + "/recalls", json={"reason": "x", "recall_class": "I", "instructions": "x"}
    )
    assert again.status_code == 409 and again.get_json()["error"] == "lot_recalled"


def test_bad_certificate_is_refused_before_anything_is_written(as_role, network, api_runtime) -> None:
    producer = network["producer"]
    code = _lot(as_role, network)
    response = as_role("inspector")(
        "POST",
        f"/lots/{producer.gtin}/{code}/inspections",
        json={
            "outcome": "pass",
            "payload": {"inspection_date": "2025-05-03", "inspector_name": "Ian"},
            "certificate": {"filename": "x.pdf", "content_type": "application/pdf", "content_base64": "bm90IGEgcGRm"},
        },
    )
    assert response.status_code == 400 and response.get_json()["field"] == "certificate"
    with api_runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == code)).one()
        assert [int(e.kind) for e in ctx.session.scalars(select(Event).where(Event.lot_id == lot.id))] == [1]


def test_transformation_readings_close_trace_and_verify(as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    first, second = _at_processor(as_role, network), _at_processor(as_role, network)
    mix = new_code("MIX")
    made = as_role("processor")(
        "POST",
        "/transformations",
        json={
            "location_gln": processor.gln,
            "transformation_date": "2025-05-04",
            "product_description": "salad mix",
            "outputs": [
                {
                    "gtin": processor.gtin,
                    "lot_code": mix,
                    "quantity": "150",
                    "unit": "kg",
                    "inputs": [
                        {"gtin": producer.gtin, "lot_code": first, "quantity": "100"},
                        {"gtin": producer.gtin, "lot_code": second, "quantity": "60"},
                    ],
                }
            ],
        },
    )
    assert made.status_code == 201, made.get_json()
    lot = made.get_json()["lots"][0]
    assert lot["lot_code"] == mix and {i["lot_code"] for i in lot["inputs"]} == {first, second}
    left = as_role("processor")("GET", f"/lots/{producer.gtin}/{second}").get_json()
    assert left["quantity"] == "40"
    too_much = as_role("processor")(
        "POST",
        "/transformations",
        json={
            "location_gln": processor.gln,
            "transformation_date": "2025-05-04",
            "outputs": [
                {
                    "gtin": processor.gtin,
                    "lot_code": new_code("MIX"),
                    "quantity": "1",
                    "inputs": [{"gtin": producer.gtin, "lot_code": second, "quantity": "41"}],
                }
            ],
        },
    )
    assert too_much.status_code == 400 and too_much.get_json()["error"] == "insufficient_quantity"

    path = f"/lots/{processor.gtin}/{mix}"
    readings = as_role("processor")(
        "POST",
        path + "/readings",
        json={
            "sensor_id": "LOGGER-1",
            "readings": [
                {"taken_at": "2025-05-04T08:00:00Z", "temperature_c": 3.5},
                {"taken_at": "2025-05-04T08:30:00Z", "temperature_c": "4.1"},
            ],
        },
    )
    assert readings.status_code == 201
    assert readings.get_json()["event"]["payload"]["reading_count"] == 2

    backward = as_role("processor")("GET", path + "/trace?direction=backward", scope="read").get_json()
    assert {item["lot_code"] for item in backward["lots"]} == {mix, first, second}
    forward = as_role("processor")("GET", f"/lots/{producer.gtin}/{first}/trace?direction=forward").get_json()
    assert mix in {item["lot_code"] for item in forward["lots"]}
    # the farm may not see the processor's mix (its lot page is a 404): the trace shows an opaque node
    farm_view = as_role("producer")("GET", f"/lots/{producer.gtin}/{first}/trace?direction=forward").get_json()
    assert [item.get("redacted", False) for item in farm_view["lots"]] == [False, True]
    assert mix not in str(farm_view)
    bad_direction = as_role("processor")("GET", path + "/trace?direction=sideways")
    assert bad_direction.status_code == 400 and bad_direction.get_json()["field"] == "direction"

    verified = as_role("processor")("POST", path + "/verify", scope="read")
    assert verified.status_code == 200
    assert verified.get_json()["state"] == "verified" and verified.get_json()["checked_events"] == 2

    closed = as_role("processor")("POST", path + "/close", json={"reason": "sold out"})
    assert closed.status_code == 201 and closed.get_json()["lot"]["status"] == "closed"


def test_unknown_lot_and_unknown_endpoint_are_json_404(as_role, network) -> None:
    api = as_role("producer")
    missing = api("GET", f"/lots/{network['producer'].gtin}/NO-SUCH-LOT")
    assert missing.status_code == 404 and missing.get_json()["error"] == "unknown_lot"
    assert api("GET", "/no/such/thing").get_json()["error"] == "not_found"
    wrong_method = api("PATCH", "/lots")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]


def test_lot_codes_with_a_slash_are_addressable(as_role, network) -> None:
    producer = network["producer"]
    code = new_code("A/B")
    _lot(as_role, network, code)
    for path in (f"/lots/{producer.gtin}/{code}", f"/lots/{producer.gtin}/{code.replace('/', '%2F')}"):
        assert as_role("producer")("GET", path).get_json()["lot_code"] == code
    events = as_role("producer")("GET", f"/lots/{producer.gtin}/{code}/events").get_json()["items"]
    assert [e["kind"] for e in events] == ["harvesting"]


# ------------------------------------------------------------------ pagination


def test_lists_are_paginated_with_a_cursor(as_role, network) -> None:
    codes = {_lot(as_role, network, new_code("PG")) for _ in range(5)}
    api = as_role("producer")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = api("GET", "/lots?q=PG-&limit=2" + (f"&cursor={cursor}" if cursor else ""), scope="read")
        body = response.get_json()
        assert len(body["items"]) <= 2
        seen += [item["lot_code"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert codes <= set(seen) and len(seen) == len(set(seen)) and pages >= 3
    assert seen == sorted(seen, reverse=True)  # newest first


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=abc", "cursor=not-a-cursor"])
def test_bad_page_parameters_are_400(as_role, query: str) -> None:
    response = as_role("producer")("GET", "/lots?" + query)
    assert response.status_code == 400
    assert response.get_json()["field"] in ("limit", "cursor")
