"""Issue 9, item 8: the smaller holes, each through the API (and the web routes it shares a runtime with)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from supply_chain.services import orgs
from tests.api.conftest import Member, gln, harvest_body, new_code, ship_body
from tests.api.test_epcis import _capture, _dl, _doc, _loc

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _harvest(as_role, member: Member, code: str | None = None) -> dict[str, Any]:
    code = code or new_code("H")
    response = as_role(member.role)("POST", "/lots", json=harvest_body(member, code))
    assert response.status_code == 201, response.json
    return response.json


# ------------------------------------------------------------------ a. control and bidi characters


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("commodity", "lettuce\x00"),
        ("commodity", "lettuce\x07"),
        ("commodity", "let\u009btuce"),  # C1 (CSI)
        ("commodity", "abc\u202egnp.exe"),  # right-to-left override
        ("commodity", "\u2066isolated\u2069"),
        ("commodity", "two\nlines"),  # single-line text
        ("notes", "private\x1b[31m note"),  # a field the kind does not define
    ],
)
def test_control_and_bidi_characters_in_free_text_are_refused_naming_the_field(
    as_role, network, api_runtime, where: str, text: str
) -> None:
    producer = network["producer"]
    body = harvest_body(producer, new_code("CC"))
    body["payload"][where] = text
    response = as_role("producer")("POST", "/lots", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_characters"
    assert response.json["field"] == f"payload.{where}"
    assert "U+" in response.json["message"]


def test_multi_line_text_keeps_its_line_breaks(as_role, network) -> None:
    lot = _harvest(as_role, network["producer"])
    note = {"kind": "observation", "payload": {"note": "line one\r\n\tline two", "date": "2025-05-03"}}
    response = as_role("producer")("POST", f"/lots/{lot['gtin']}/{lot['lot_code']}/events", json=note)
    assert response.status_code == 201, response.json


def test_control_characters_in_catalogue_names_are_refused(as_role, network) -> None:
    site = gln(network["producer"].prefix, "9" + new_code("G")[-4:])
    response = as_role("producer")("POST", "/locations", json={"gln": site, "name": "Barn\u202e"})
    assert response.status_code == 400 and response.json["error"] == "invalid_characters"
    assert response.json["field"] == "name"


def test_control_characters_in_epcis_capture_are_refused(client, network) -> None:
    producer = network["producer"]
    event = {
        "type": "ObjectEvent",
        "action": "ADD",
        "bizStep": "commissioning",
        "eventTime": "2025-06-01T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "readPoint": _loc(producer.gln),
        "quantityList": [{"epcClass": _dl(producer.gtin, new_code("EC")), "quantity": 10, "uom": "KGM"}],
        "lotline:kde": {"commodity": "kale\u202e"},
    }
    response = _capture(client, producer, _doc(event))
    assert response.status_code == 422
    result = response.get_json()["events"][0]
    assert result["code"] == "invalid_characters" and result["field"].endswith("commodity")


# ------------------------------------------------------------------ b. LIKE wildcards in search


def test_search_treats_like_wildcards_as_plain_characters(as_role, network) -> None:
    producer = network["producer"]
    stem = new_code("W").replace("-", "")
    underscore, look_alike = f"{stem}_A", f"{stem}XA"
    for code in (underscore, look_alike, f"{stem}%B"):
        _harvest(as_role, producer, code)
    codes = lambda q: {i["lot_code"] for i in as_role("producer")("GET", "/lots", query_string={"q": q}).json["items"]}  # noqa: E731
    assert codes(f"{stem}_") == {underscore}
    assert codes(f"{stem}%") == {f"{stem}%B"}
    assert codes("%") <= {c for c in codes("") if "%" in c}


# ------------------------------------------------------------------ c. forged cursors


def test_a_forged_cursor_is_a_400_and_a_handed_out_one_works(as_role, network) -> None:
    for _ in range(3):
        _harvest(as_role, network["producer"])
    first = as_role("producer")("GET", "/lots", query_string={"limit": 1})
    handed_out = first.json["next_cursor"]
    assert as_role("producer")("GET", "/lots", query_string={"limit": 1, "cursor": handed_out}).status_code == 200
    for forged in (
        base64.urlsafe_b64encode(b"v1:5").decode().rstrip("="),
        base64.urlsafe_b64encode(b"v1:999999999").decode().rstrip("="),
        handed_out[:-2] + ("AA" if not handed_out.endswith("AA") else "BB"),
    ):
        response = as_role("producer")("GET", "/lots", query_string={"limit": 1, "cursor": forged})
        assert response.status_code == 400, forged
        assert response.json["error"] == "invalid_cursor" and response.json["field"] == "cursor"
    # a cursor of one list is not one of another
    other = as_role("producer")("GET", "/products", query_string={"limit": 1, "cursor": handed_out})
    assert other.status_code == 400 and other.json["error"] == "invalid_cursor"


# ------------------------------------------------------------------ d. certificate download names


def test_a_certificate_is_served_under_a_safe_name(app, as_role, network, api_runtime) -> None:
    lot = _harvest(as_role, network["producer"])
    body = {
        "outcome": "pass",
        "payload": {"inspection_date": "2025-05-02", "inspector_name": "Ivy"},
        "certificate": {
            "filename": "../../x.html",
            "content_type": "application/pdf",
            "content_base64": base64.b64encode(PDF).decode(),
        },
    }
    response = as_role("inspector")("POST", f"/lots/{lot['gtin']}/{lot['lot_code']}/inspections", json=body)
    assert response.status_code == 201, response.json
    with api_runtime.ctx() as ctx:
        from sqlalchemy import select

        from supply_chain.store.models import Document, Lot

        row = ctx.session.scalars(select(Lot).where(Lot.lot_code == lot["lot_code"])).one()
        doc = ctx.session.scalars(select(Document).where(Document.lot_id == row.id)).one()
        lot_pk, doc_id = row.id, doc.id
        email = f"inspector-{new_code('U').lower()}@test.lotline"
        orgs.add_user(ctx, network["inspector"].org, email, "Ivy", "correct horse battery")
        ctx.session.commit()
    web = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/login").get_data(as_text=True))[1]
    signed_in = web.post("/login", data={"email": email, "password": "correct horse battery", "csrf_token": token})
    assert signed_in.status_code == 302
    download = web.get(f"/lots/{lot_pk}/documents/{doc_id}")
    assert download.status_code == 200 and download.data == PDF
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "/" not in disposition and ".." not in disposition and ".html" not in disposition
    assert 'filename=x.pdf' in disposition or 'filename="x.pdf"' in disposition
    assert download.mimetype == "application/pdf"
    assert download.headers["X-Content-Type-Options"] == "nosniff"


# ------------------------------------------------------------------ e. the pending custodian does not record


def test_the_receiver_of_an_unaccepted_shipment_cannot_record_readings(as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    lot = _harvest(as_role, producer)
    path = f"/lots/{lot['gtin']}/{lot['lot_code']}"
    assert as_role("producer")("POST", f"{path}/shipments", json=ship_body(producer, processor)).status_code == 201
    readings = {"readings": [{"taken_at": "2025-05-02T10:00:00Z", "temperature_c": "4.0"}]}
    refused = as_role("processor")("POST", f"{path}/readings", json=readings)
    assert refused.status_code == 403, refused.json
    assert refused.json["error"] == "not_custodian"
    observed = {"kind": "observation", "payload": {"note": "looks fine", "date": "2025-05-02"}}
    assert as_role("processor")("POST", f"{path}/events", json=observed).status_code == 403
    # the shipper, still the custodian while the lot is in transit, may anchor the carrier's log
    assert as_role("producer")("POST", f"{path}/readings", json=readings).status_code == 201
    assert as_role("processor")("POST", f"{path}/custody/accept", json={}).status_code == 201
    assert as_role("processor")("POST", f"{path}/readings", json=readings).status_code == 201


# ------------------------------------------------------------------ f. forward trace shows only what the caller may see


def test_forward_trace_redacts_lots_the_caller_cannot_see(as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    lot = _harvest(as_role, producer)
    path = f"/lots/{lot['gtin']}/{lot['lot_code']}"
    assert as_role("producer")("POST", f"{path}/shipments", json=ship_body(producer, processor)).status_code == 201
    assert as_role("processor")("POST", f"{path}/custody/accept", json={}).status_code == 201
    mix = new_code("MIX")
    transformation = {
        "location_gln": processor.gln,
        "transformation_date": "2025-05-04",
        "outputs": [
            {
                "gtin": processor.gtin,
                "lot_code": mix,
                "quantity": "50",
                "unit": "kg",
                "inputs": [{"gtin": lot["gtin"], "lot_code": lot["lot_code"], "quantity": "60"}],
            }
        ],
    }
    made = as_role("processor")("POST", "/transformations", json=transformation)
    assert made.status_code == 201, made.json
    assert as_role("producer")("GET", f"/lots/{processor.gtin}/{mix}").status_code == 404

    trace = as_role("producer")("GET", f"{path}/trace", query_string={"direction": "forward"})
    assert trace.status_code == 200
    text = trace.get_data(as_text=True)
    assert mix not in text and "Processor greens" not in text and processor.gtin not in text
    hidden = [i for i in trace.json["lots"] if i["depth"] == 1]
    assert len(hidden) == 1 and hidden[0]["redacted"] is True
    assert not {"gtin", "lot_code", "product", "custodian", "creator", "locations", "inputs"} & set(hidden[0])
    assert hidden[0]["label"] == "a lot of another organisation"
    # the processor, who made the mix, sees it in full
    full = as_role("processor")("GET", f"{path}/trace", query_string={"direction": "forward"})
    assert mix in full.get_data(as_text=True)
    assert all(not i.get("redacted") for i in full.json["lots"])


# ------------------------------------------------------------------ g. EPCIS document-root errors


@pytest.mark.parametrize(
    "document",
    [
        {"type": "EPCISDocument"},
        {"type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2025-06-01T12:00:00Z", "@context": []},
        {"@context": [], "schemaVersion": "2.0", "creationDate": "2025-06-01T12:00:00Z", "epcisBody": {}},
    ],
)
def test_epcis_document_root_errors_use_the_documented_code(client, network, document: dict[str, Any]) -> None:
    response = _capture(client, network["producer"], document)
    assert response.status_code == 400
    assert response.get_json()["error"] == "epcis_schema_invalid", response.get_json()


@pytest.mark.parametrize(
    "path",
    ["/api/v1/epcis/epcs/a%0Ab/events", "/api/v1/epcis/epcs/urn%0A", "/api/v1/no/such%0Athing", "/api/v1/lots/x%0Ay"],
)
def test_a_line_break_in_a_path_is_answered_in_json(client, network, path: str) -> None:
    """Werkzeug's ``path`` converter stops at a line break, so such a path fell through every API route to the
    site's HTML 404; an API client always gets the JSON error body."""
    response = client.get(path, headers={"Authorization": f"Bearer {network['producer'].read}"})
    assert response.status_code in (200, 400, 404), response.status_code
    assert response.is_json, response.data[:200]
    if response.status_code != 200:
        assert set(response.get_json()) >= {"error", "message"}
