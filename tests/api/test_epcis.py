"""EPCIS 2.0: exports validate against GS1's schema; the one lot-level official example drives the lot
model once its lot was shipped to the capturer; the capture -> export round trip keeps identifiers, times,
business steps and quantities; a rejected document writes nothing.

Every official example captured whole into the event repository and served back equal:
``test_epcis_repository.py`` (on a store of its own, since the examples' eventIDs are fixed).
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import func, select

from supply_chain.domain.disclosure import check_disclosure
from supply_chain.services import epcis, orgs, tokens
from supply_chain.services import lots as lot_service
from supply_chain.store.models import Event, Lot
from tests.api.conftest import Member, new_code

SHARED = Path(__file__).resolve().parents[3] / "shared" / "epcis"
if not SHARED.exists():
    SHARED = Path("/work/shared/epcis")
EXAMPLES = SHARED / "examples"
SCHEMA = json.loads((SHARED / "EPCIS-JSON-Schema.json").read_text())


def assert_valid_epcis(document: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(document)]
    assert not errors, errors
    for event in document["epcisBody"]["eventList"]:
        moment = datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00"))
        assert moment.tzinfo is not None


def test_shipped_schema_is_gs1s(tmp_path: Path) -> None:
    assert epcis.schema() == SCHEMA


def _count_events(runtime) -> int:
    with runtime.ctx() as ctx:
        return ctx.session.scalar(select(func.count()).select_from(Event))


# ------------------------------------------------------------------ the official examples


@pytest.fixture(scope="module")
def example_orgs(api_runtime, network) -> dict[str, Member]:
    """A grower and a receiver without GS1 company prefixes (the examples use several prefixes)."""
    out = {}
    with api_runtime.ctx() as ctx:
        admin = network["regulator"].org
        for key, roles in (("grower", ["producer"]), ("receiver", ["processor"])):
            org = orgs.onboard(ctx, admin, f"EPCIS {key.title()}", roles)
            member = Member(key, org, "", "")
            _, member.write = tokens.create(ctx, org, "epcis", "write")
            out[key] = member
        ctx.session.commit()
    return out


def test_example_9_6_2_is_captured_once_its_lot_was_shipped_to_the_capturer(client, api_runtime, example_orgs) -> None:
    grower, receiver = example_orgs["grower"], example_orgs["receiver"]
    gtin = epcis.parse_lot_uri("urn:epc:class:lgtin:4012345.012345.998877", "x")[0]
    with api_runtime.ctx() as ctx:
        farm = orgs.register_location(
            ctx, grower.org, epcis.parse_gln_uri("urn:epc:id:sgln:4012345.00225.0", "x"), "Example farm"
        )
        for urn, name in (
            ("urn:epc:id:sgln:0614141.00777.0", "Dock door 777"),
            ("urn:epc:id:sgln:0614141.00888.0", "Warehouse 888"),
        ):
            orgs.register_location(ctx, receiver.org, epcis.parse_gln_uri(urn, "x"), name)
        orgs.register_product(ctx, grower.org, gtin, "Example produce", unit="kg")
        lot = lot_service.create_lot(
            ctx,
            grower.org,
            gtin,
            "998877",
            1,
            {"location_gln": farm.gln, "harvest_date": "2013-06-01", "commodity": "produce"},
            "200",
            "kg",
        )
        lot_service.offer_custody(
            ctx,
            grower.org,
            lot,
            receiver.org,
            {
                "from_gln": farm.gln,
                "to_gln": epcis.parse_gln_uri("urn:epc:id:sgln:0614141.00777.0", "x"),
                "ship_date": "2013-06-07",
                "reference_document_type": "bill of lading",
                "reference_document_number": "BOL-998877",
            },
        )
    # the official example with one user extension more: the package's other tests may capture the example
    # itself into the shared store, and a second capture of the same event is (rightly) a duplicate ...
    example = json.loads((EXAMPLES / "Example_9.6.2-ObjectEvent.jsonld").read_text())
    # and another eventID (one eventID names one event)
    run = uuid.uuid4()
    example["epcisBody"]["eventList"][0]["example:testRun"] = str(run)
    example["epcisBody"]["eventList"][0]["eventID"] = f"urn:uuid:{run}"
    document = json.dumps(example).encode()
    headers = receiver.headers() | {"Content-Type": "application/ld+json"}
    response = client.post("/api/v1/epcis/capture", data=document, headers=headers)
    assert response.status_code == 202, response.get_json()
    result = response.get_json()
    assert response.headers["Location"] == result["href"] == f"/api/v1/epcis/capture/{result['id']}"
    assert result["status"] == "done"  # one transaction's worth: written before the answer
    assert result["events_total"] == result["events_written"] == 1 and len(result["transactions"]) == 1
    assert result["events"][0]["status"] == "captured"
    written = result["events"][0]["lotline_events"]
    assert [(w["kind"], w["lot_code"], w["status"]) for w in written] == [("receiving", "998877", "confirmed")]
    with api_runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.gtin == gtin, Lot.lot_code == "998877")).one()
        assert lot.custodian_org_id == receiver.org.id and lot.status == "active"
        receiving = lot.events[-1].payload
        assert receiving["receive_date"] == "2013-06-08T16:58:56.591000+02:00"  # eventTime in its own zone
        assert receiving["quantity"] == "200" and receiving["unit"] == "kg"
        assert receiving["reference_document_number"] == "BOL-998877"  # from the shipment
        assert receiving["epcis_event_id"] == f"urn:uuid:{run}"
    before = _count_events(api_runtime)
    again = client.post("/api/v1/epcis/capture", data=document, headers=headers)
    repeated = again.get_json()["events"][0]
    assert again.status_code == 202 and repeated["status"] == "duplicate", repeated  # recognised, not applied
    assert f"capture job {result['id']}" in repeated["reason"] and not repeated["lotline_events"]
    assert _count_events(api_runtime) == before


# ------------------------------------------------------------------ documents of our own


def _dl(gtin: str, lot: str) -> str:
    return f"https://id.gs1.org/01/{gtin}/10/{lot}"


def _loc(gln: str) -> dict[str, str]:
    return {"id": f"https://id.gs1.org/414/{gln}"}


def _doc(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def _capture(client, member: Member, document: dict[str, Any]):  # noqa: ANN202
    return client.post("/api/v1/epcis/capture", json=document, headers=member.headers())


def test_invalid_event_rejects_the_whole_document_and_nothing_is_written(client, api_runtime, network) -> None:
    producer = network["producer"]
    good, taken = new_code("E"), new_code("E")
    lot_service_lot = {
        "gtin": producer.gtin,
        "lot_code": taken,
        "kind": "harvesting",
        "quantity": "5",
        "payload": {"location_gln": producer.gln, "harvest_date": "2025-06-01", "commodity": "x"},
    }
    assert client.post("/api/v1/lots", json=lot_service_lot, headers=producer.headers()).status_code == 201
    before = _count_events(api_runtime)
    document = _doc(
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "eventTime": "2025-06-01T08:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, good), "quantity": 10, "uom": "KGM"}],
        },
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "eventTime": "2025-06-01T08:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, taken), "quantity": 10, "uom": "KGM"}],
        },
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "eventTime": "2025-06-01T08:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(network["processor"].gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, new_code("E")), "quantity": 1, "uom": "KGM"}],
        },
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "eventTime": "2025-06-01T08:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(network["processor"].gtin, new_code("E")), "quantity": 1}],
        },
    )
    response = _capture(client, producer, document)
    assert response.status_code == 422
    events = response.get_json()["events"]
    assert [e["status"] for e in events] == ["accepted", "rejected", "stored", "rejected"]
    assert events[1]["code"] == "lot_exists" and events[1]["field"] == "epcisBody.eventList[1].quantityList[0].epcClass"
    # at the processor's site: the processor's event, which the producer only reports (test_epcis_span.py)
    assert events[2]["code"] == "reported" and "belongs to API Processor" in events[2]["reason"]
    assert events[3]["code"] == "forbidden" and "the product belongs to" in events[3]["reason"]
    assert _count_events(api_runtime) == before
    with api_runtime.ctx() as ctx:
        assert ctx.session.scalars(select(Lot).where(Lot.lot_code == good)).first() is None


def test_an_event_refused_by_the_invariants_past_the_first_batch_leaves_nothing_written(
    client, api_runtime, network
) -> None:
    """45 new lots (two transactions' worth) then one of them shipped in a quantity it does not hold: the
    refusal is found before the first transaction is sent, so the first 40 lots are not written either."""
    producer, processor = network["producer"], network["processor"]
    codes = [new_code("B") for _ in range(45)]
    creations = [
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "eventTime": "2025-06-01T08:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, code), "quantity": 10, "uom": "KGM"}],
        }
        for code in codes
    ]
    too_much = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "eventTime": "2025-06-02T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "readPoint": _loc(producer.gln),
        "quantityList": [{"epcClass": _dl(producer.gtin, codes[-1]), "quantity": 500, "uom": "KGM"}],
        "sourceList": [{"type": "location", "source": f"https://id.gs1.org/414/{producer.gln}"}],
        "destinationList": [{"type": "location", "destination": f"https://id.gs1.org/414/{processor.gln}"}],
        "bizTransactionList": [{"type": "bol", "bizTransaction": "urn:epcglobal:cbv:bt:0700001000019:BOL-B"}],
    }
    before = _count_events(api_runtime)
    with api_runtime.ctx() as ctx:
        block = ctx.ledger.block_number()
    response = _capture(client, producer, _doc(*creations, too_much))
    assert response.status_code == 422, response.get_json()
    refused = response.get_json()["events"][45]
    assert refused["status"] == "rejected" and refused["code"] == "quantity_exceeds_on_hand", refused
    assert _count_events(api_runtime) == before
    with api_runtime.ctx() as ctx:
        assert ctx.ledger.block_number() == block
        assert ctx.session.scalars(select(Lot).where(Lot.lot_code.in_(codes))).first() is None


def test_capture_needs_a_write_token(client, network) -> None:
    response = client.post("/api/v1/epcis/capture", json=_doc(), headers=network["producer"].headers("read"))
    assert response.status_code == 403


def test_schema_failure_names_the_path(client, network) -> None:
    document = _doc(
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "eventTime": "not a time",
            "eventTimeZoneOffset": "+00:00",
            "epcList": [],
        }
    )
    response = _capture(client, network["producer"], document)
    assert response.status_code == 400
    assert response.get_json()["field"] == "epcisBody.eventList[0].eventTime"


def test_round_trip_capture_then_export_keeps_identifiers_times_steps_and_quantities(client, network) -> None:
    producer, processor = network["producer"], network["processor"]
    romaine, spinach, mix = new_code("RT"), new_code("RT"), new_code("RTMIX")
    bol = f"urn:epcglobal:cbv:bt:{producer.gln}:BOL-{romaine}"
    farm_doc = _doc(
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8000-{romaine[-5:]:0>12}",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "eventTime": "2025-06-01T06:30:00.250-07:00",
            "eventTimeZoneOffset": "-07:00",
            "readPoint": _loc(producer.gln),
            "bizLocation": _loc(producer.gln),
            "quantityList": [
                {"epcClass": _dl(producer.gtin, romaine), "quantity": 500, "uom": "KGM"},
                {"epcClass": _dl(producer.gtin, spinach), "quantity": 120.5, "uom": "KGM"},
            ],
        },
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8001-{romaine[-5:]:0>12}",
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "eventTime": "2025-06-02T14:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [
                {"epcClass": _dl(producer.gtin, romaine), "quantity": 500, "uom": "KGM"},
                {"epcClass": _dl(producer.gtin, spinach), "quantity": 120.5, "uom": "KGM"},
            ],
            "sourceList": [{"type": "location", "source": _loc(producer.gln)["id"]}],
            "destinationList": [{"type": "location", "destination": _loc(processor.gln)["id"]}],
            "bizTransactionList": [{"type": "bol", "bizTransaction": bol}],
        },
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8002-{romaine[-5:]:0>12}",
            "action": "OBSERVE",
            "bizStep": "sensor_reporting",
            "eventTime": "2025-06-02T16:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, romaine)}],
            "sensorElementList": [
                {
                    "sensorMetadata": {"time": "2025-06-02T15:00:00Z", "deviceID": "urn:epc:id:giai:4000001.111"},
                    "sensorReport": [
                        {"type": "Temperature", "value": 3.5, "uom": "CEL"},
                        {"type": "RelativeHumidity", "value": 91, "uom": "P1"},
                    ],
                },
                {
                    "sensorMetadata": {"time": "2025-06-02T15:30:00Z", "deviceID": "urn:epc:id:giai:4000001.111"},
                    "sensorReport": [{"type": "Temperature", "value": 38.3, "uom": "FAH"}],
                },
            ],
        },
    )
    farm = _capture(client, producer, farm_doc)
    assert farm.status_code == 202 and farm.get_json()["status"] == "done", farm.get_json()
    assert len(farm.get_json()["transactions"]) == 1  # five writes, one multicall transaction
    plant_doc = _doc(
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8003-{romaine[-5:]:0>12}",
            "action": "OBSERVE",
            "bizStep": "receiving",
            "disposition": "in_progress",
            "eventTime": "2025-06-03T09:15:00+02:00",
            "eventTimeZoneOffset": "+02:00",
            "readPoint": _loc(processor.gln),
            "bizLocation": _loc(processor.gln),
            "quantityList": [
                {"epcClass": _dl(producer.gtin, romaine), "quantity": 500, "uom": "KGM"},
                {"epcClass": _dl(producer.gtin, spinach), "quantity": 120.5, "uom": "KGM"},
            ],
            "sourceList": [{"type": "location", "source": _loc(producer.gln)["id"]}],
            "bizTransactionList": [{"type": "bol", "bizTransaction": bol}],
        },
        {
            "type": "TransformationEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8004-{romaine[-5:]:0>12}",
            "bizStep": "commissioning",
            "disposition": "active",
            "eventTime": "2025-06-03T11:00:00+02:00",
            "eventTimeZoneOffset": "+02:00",
            "readPoint": _loc(processor.gln),
            "bizLocation": _loc(processor.gln),
            "inputQuantityList": [
                {"epcClass": _dl(producer.gtin, romaine), "quantity": 400, "uom": "KGM"},
                {"epcClass": _dl(producer.gtin, spinach), "quantity": 100, "uom": "KGM"},
            ],
            "outputQuantityList": [{"epcClass": _dl(processor.gtin, mix), "quantity": 480, "uom": "KGM"}],
        },
    )
    plant = _capture(client, processor, plant_doc)
    assert plant.status_code == 202 and plant.get_json()["status"] == "done", plant.get_json()
    assert len(plant.get_json()["transactions"]) == 1

    exported = client.get(f"/api/v1/lots/{processor.gtin}/{mix}/epcis?ancestors=true", headers=processor.headers())
    assert exported.status_code == 200 and exported.mimetype == "application/ld+json"
    document = exported.get_json()
    assert_valid_epcis(document)
    by_id = {e["eventID"]: e for e in document["epcisBody"]["eventList"]}
    for sent in farm_doc["epcisBody"]["eventList"] + plant_doc["epcisBody"]["eventList"]:
        got = by_id[sent["eventID"]]
        assert got["type"] == sent["type"]
        assert _instant(got["eventTime"]) == _instant(sent["eventTime"])
        assert got["eventTimeZoneOffset"] == sent["eventTimeZoneOffset"]
        assert got.get("bizStep") == sent["bizStep"]
        assert got.get("action") == sent.get("action")
        for name in ("readPoint", "bizLocation", "sourceList", "destinationList", "bizTransactionList"):
            if name in sent:
                assert got[name] == sent[name], name
        if sent["type"] == "TransformationEvent":
            assert got["inputQuantityList"] == sent["inputQuantityList"]
            assert got["outputQuantityList"] == sent["outputQuantityList"]
        elif "sensorElementList" not in sent:
            # one exported event per lot: together they carry the sent quantityList
            lot_events = [e for e in document["epcisBody"]["eventList"] if e["eventID"] == sent["eventID"]]
            assert sorted((q for e in lot_events for q in e["quantityList"]), key=str) == sorted(
                sent["quantityList"], key=str
            )
    sent_by_id = {e["eventID"]: e for e in plant_doc["epcisBody"]["eventList"]}
    for got in document["epcisBody"]["eventList"]:
        if got["eventID"] in sent_by_id:  # the processor's own captured events: exported as it sent them
            assert {k: v for k, v in got.items() if k != "recordTime"} == sent_by_id[got["eventID"]]
            continue
        # the farm's events, built from the lot model: each re-hashes to the dataHash it anchored
        assert got["lotline:proof"]["scheme"] == 2
        assert check_disclosure(got["lotline:kde"], got["lotline:proof"], got["lotline:payloadHash"]) == []
        if "quantity" in got["lotline:kde"]:  # a consortium field: opened for this reader, sealed for the public
            assert "quantity" in got["lotline:proof"]["salts"] and "quantity" not in got["lotline:proof"]["public"]
    sensors = by_id[farm_doc["epcisBody"]["eventList"][2]["eventID"]]["sensorElementList"]
    assert [(_instant(s["sensorMetadata"]["time"]), s["sensorReport"][0]["value"]) for s in sensors] == [
        (_instant("2025-06-02T15:00:00Z"), 3.5),
        (_instant("2025-06-02T15:30:00Z"), 3.5),
    ]  # 38.3 F = 3.5 C
    assert sensors[0]["sensorReport"][1] == {"type": "RelativeHumidity", "value": 91, "uom": "P1"}


def test_captured_events_are_exported_with_the_lot_exactly_as_they_were_sent(client, api_runtime, network) -> None:
    producer, processor = network["producer"], network["processor"]
    lot = new_code("EX")
    tag = f"{lot[-5:]:0>12}"
    link = _dl(producer.gtin, lot)
    sent = _doc(
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8100-{tag}",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "eventTime": "2025-06-01T06:30:00.250-07:00",
            "eventTimeZoneOffset": "-07:00",
            "readPoint": _loc(producer.gln),
            "bizLocation": _loc(producer.gln),
            "quantityList": [{"epcClass": link, "quantity": 500, "uom": "KGM"}],
            "ilmd": {"acme:harvestCrew": "B-7", "bestBeforeDate": "2025-06-20"},
            "acme:grade": {"acme:class": "I", "acme:score": 92},
        },
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8101-{tag}",
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "eventTime": "2025-06-02T14:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": link, "quantity": 500, "uom": "KGM"}],
            "sourceList": [{"type": "location", "source": _loc(producer.gln)["id"]}],
            "destinationList": [{"type": "location", "destination": _loc(processor.gln)["id"]}],
            "bizTransactionList": [
                {"type": "po", "bizTransaction": f"urn:epcglobal:cbv:bt:{processor.gln}:PO-{lot}"},
                {"type": "desadv", "bizTransaction": f"urn:epcglobal:cbv:bt:{producer.gln}:ASN-{lot}"},
            ],
            "acme:truck": "TR-42",
        },
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-8102-{tag}",
            "action": "OBSERVE",
            "bizStep": "sensor_reporting",
            "eventTime": "2025-06-02T16:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": link}],
            "sensorElementList": [
                {
                    "sensorMetadata": {"time": "2025-06-02T15:00:00Z", "deviceID": "urn:epc:id:giai:4000001.111"},
                    "sensorReport": [
                        {"type": "Temperature", "value": 3.5, "uom": "CEL"},
                        {"type": "Illuminance", "value": 120, "uom": "LUX"},
                    ],
                },
                {
                    "sensorMetadata": {"time": "2025-06-02T15:00:00Z", "deviceID": "urn:epc:id:giai:4000001.112"},
                    "sensorReport": [{"type": "Temperature", "value": 38.3, "uom": "FAH", "acme:probe": "core"}],
                },
            ],
        },
    )
    sent["@context"] = [*sent["@context"], {"acme": "https://example.com/acme/epcis/"}]
    answer = _capture(client, producer, sent)
    assert answer.status_code == 202 and answer.get_json()["status"] == "done", answer.get_json()
    assert all(e["status"] == "captured" for e in answer.get_json()["events"]), answer.get_json()["events"]

    for path in (
        f"/api/v1/lots/{producer.gtin}/{lot}/epcis",
        f"/api/v1/lots/{producer.gtin}/{lot}/epcis?ancestors=true",
    ):
        document = client.get(path, headers=producer.headers()).get_json()
        assert_valid_epcis(document)
        got = document["epcisBody"]["eventList"]
        assert all("recordTime" in e for e in got)
        assert [{k: v for k, v in e.items() if k != "recordTime"} for e in got] == sent["epcisBody"]["eventList"]
        assert {"acme": "https://example.com/acme/epcis/"} in document["@context"] or any(
            isinstance(c, dict) and c.get("acme") == "https://example.com/acme/epcis/" for c in document["@context"]
        )
    # XML too: the extension namespace is declared and the second business transaction is there
    xml = client.get(
        f"/api/v1/lots/{producer.gtin}/{lot}/epcis", headers=producer.headers() | {"Accept": "application/xml"}
    ).get_data(as_text=True)
    assert "https://example.com/acme/epcis/" in xml and f"ASN-{lot}" in xml and "BOL" not in xml

    # the CLI (`lotline export epcis --ancestors`, no viewer: the operator) exports them as captured too
    with api_runtime.ctx() as ctx:
        cli = epcis.export_lot(ctx, lot_service.get_lot(ctx, producer.gtin, lot), ancestors=True)
    assert [{k: v for k, v in e.items() if k != "recordTime"} for e in cli["epcisBody"]["eventList"]] == sent[
        "epcisBody"
    ]["eventList"]
    # the receiver did not capture these: it gets the events built from the lot model at its level
    other = client.get(f"/api/v1/lots/{producer.gtin}/{lot}/epcis", headers=processor.headers()).get_json()
    assert all("lotline:payloadHash" in e for e in other["epcisBody"]["eventList"])


def test_a_serial_the_captured_events_tie_to_a_lot_opens_that_lots_consumer_page(client, network) -> None:
    producer = network["producer"]
    lot, other = new_code("SER"), new_code("SER")
    tag = f"{lot[-5:]:0>12}"
    item = producer.gtin[1 + len(producer.prefix) : 13]

    def pack(serial: str) -> str:
        return f"https://id.gs1.org/01/{producer.gtin}/21/{serial}"

    def event(n: int, **fields: Any) -> dict[str, Any]:
        return {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-82{n:02d}-{tag}",
            "eventTime": f"2025-06-0{n + 1}T06:30:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "bizLocation": _loc(producer.gln),
        } | fields

    document = _doc(
        # the lots (drive the lot model)
        event(
            0,
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            quantityList=[
                {"epcClass": _dl(producer.gtin, lot), "quantity": 10, "uom": "KGM"},
                {"epcClass": _dl(producer.gtin, other), "quantity": 10, "uom": "KGM"},
            ],
        ),
        # packs of the lot: by ILMD lot number (one as an SGTIN URN), by the quantity list beside them, and by a
        # Digital Link naming the lot itself
        event(
            1,
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            epcList=[f"urn:epc:id:sgtin:{producer.prefix}.0{item}.S1", pack("S2")],
            ilmd={"cbvmda:lotNumber": lot},
        ),
        event(
            2,
            action="OBSERVE",
            bizStep="packing",
            epcList=[pack("S3")],
            quantityList=[{"epcClass": _dl(producer.gtin, lot), "quantity": 1, "uom": "KGM"}],
        ),
        event(
            3, action="OBSERVE", bizStep="packing", epcList=[f"https://id.gs1.org/01/{producer.gtin}/10/{lot}/21/S4"]
        ),
        # a serial two events tie to two different lots: no lot
        event(
            4,
            action="OBSERVE",
            bizStep="packing",
            epcList=[pack("S9")],
            quantityList=[{"epcClass": _dl(producer.gtin, lot)}],
        ),
        event(
            5,
            action="OBSERVE",
            bizStep="packing",
            epcList=[pack("S9")],
            quantityList=[{"epcClass": _dl(producer.gtin, other)}],
        ),
    )
    # cbvmda: is GS1's context's own prefix for the CBV master data attributes
    answer = _capture(client, producer, document)
    assert answer.status_code == 202 and answer.get_json()["status"] == "done", answer.get_json()

    for serial in ("S1", "S2", "S3", "S4"):
        found = client.get(f"/01/{producer.gtin}/21/{serial}", headers={"Accept": "application/json"})
        assert found.status_code == 302, (serial, found.status_code)
        assert found.headers["Location"].endswith(f"/01/{producer.gtin}/10/{lot}/21/{serial}")
        page = client.get(found.headers["Location"], headers={"Accept": "application/json"})
        assert page.status_code == 200 and page.json["serial"] == serial
        assert page.json["lot"]["lot_code"] == lot
    for serial in ("S9", "NEVER-SEEN"):  # ambiguous or unknown: the product's page, asking for the lot code
        product = client.get(f"/01/{producer.gtin}/21/{serial}", headers={"Accept": "application/json"})
        assert product.status_code == 200 and product.json["serial"] == serial and "lot" not in product.json


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_export_of_every_event_kind_validates_and_uses_gs1_identifiers(client, as_role, network) -> None:
    producer, processor = network["producer"], network["processor"]
    code = new_code("ALL")
    path = f"/lots/{producer.gtin}/{code}"
    steps = [
        (
            as_role("producer"),
            "POST",
            "/lots",
            {
                "gtin": producer.gtin,
                "lot_code": code,
                "kind": "harvesting",
                "quantity": "50",
                "payload": {"location_gln": producer.gln, "harvest_date": "2025-06-01", "commodity": "kale"},
            },
        ),
        (
            as_role("producer"),
            "POST",
            path + "/events",
            {"kind": "cooling", "payload": {"location_gln": producer.gln, "cooling_date": "2025-06-01T10:00:00-07:00"}},
        ),
        (
            as_role("producer"),
            "POST",
            path + "/events",
            {"kind": "observation", "payload": {"note": "fine", "date": "2025-06-02"}},
        ),
        (
            as_role("inspector"),
            "POST",
            path + "/inspections",
            {
                "outcome": "pass",
                "payload": {
                    "inspection_date": "2025-06-02",
                    "inspector_name": "Ian",
                    "location_gln": producer.gln,
                    "certificate_sha256": "ab" * 32,
                },
            },
        ),
        (as_role("regulator"), "POST", path + "/holds", {"reason": "check", "date": "2025-06-02"}),
        (as_role("inspector"), "POST", path + "/release", {"reason": "ok", "date": "2025-06-02"}),
        (
            as_role("producer"),
            "POST",
            path + "/shipments",
            {
                "payload": {
                    "from_gln": producer.gln,
                    "to_gln": processor.gln,
                    "ship_date": "2025-06-03",
                    "reference_document_type": "invoice",
                    "reference_document_number": "INV 7/1",
                }
            },
        ),
        (as_role("processor"), "POST", path + "/custody/reject", {"reason": "late", "date": "2025-06-04"}),
        (
            as_role("producer"),
            "POST",
            path + "/shipments",
            {
                "payload": {
                    "from_gln": producer.gln,
                    "to_gln": processor.gln,
                    "ship_date": "2025-06-04",
                    "reference_document_type": "bill of lading",
                    "reference_document_number": "B2",
                }
            },
        ),
        (as_role("producer"), "POST", path + "/custody/cancel", {"reason": "wrong truck", "date": "2025-06-04"}),
        (
            as_role("producer"),
            "POST",
            path + "/readings",
            {"readings": [{"taken_at": "2025-06-04T10:00:00Z", "temperature_c": "-1.5"}]},
        ),
        (
            as_role("regulator"),
            "POST",
            path + "/recalls",
            {"reason": "E. coli", "recall_class": "II", "instructions": "return it", "date": "2025-06-05"},
        ),
    ]
    for api, method, url, body in steps:
        response = api(method, url, json=body)
        assert response.status_code == 201, (url, response.get_json())
    document = client.get(f"/api/v1{path}/epcis", headers=network["regulator"].headers()).get_json()
    assert_valid_epcis(document)
    events = document["epcisBody"]["eventList"]
    assert [e["lotline:cte"] for e in events] == [
        "harvesting",
        "cooling",
        "observation",
        "inspection",
        "hold",
        "release",
        "shipping",
        "custody_rejected",
        "shipping",
        "custody_cancelled",
        "sensor_anchor",
        "recall",
    ]
    assert [(e.get("action"), e.get("bizStep"), e.get("disposition")) for e in events] == [
        ("ADD", "commissioning", "active"),
        ("OBSERVE", "storing", "active"),
        ("OBSERVE", "other", None),
        ("OBSERVE", "inspecting", "conformant"),
        ("OBSERVE", "holding", "non_sellable_other"),
        ("OBSERVE", "holding", "sellable_accessible"),
        ("OBSERVE", "shipping", "in_transit"),
        ("OBSERVE", "receiving", "returned"),
        ("OBSERVE", "shipping", "in_transit"),
        ("OBSERVE", "void_shipping", "active"),
        ("OBSERVE", "sensor_reporting", None),
        ("OBSERVE", None, "recalled"),
    ]
    assert events[0]["quantityList"] == [{"epcClass": _dl(producer.gtin, code), "quantity": 50, "uom": "KGM"}]
    assert events[1]["eventTimeZoneOffset"] == "-07:00"
    assert "note" not in events[2]["lotline:kde"]  # private to the producer; the regulator exported
    assert events[3]["bizTransactionList"][0]["type"] == "testres"
    assert events[3]["bizTransactionList"][0]["bizTransaction"].startswith("ni:///sha-256;")
    assert events[6]["bizTransactionList"] == [
        {"type": "inv", "bizTransaction": f"urn:epcglobal:cbv:bt:{producer.gln}:INV%207%2F1"}
    ]
    assert events[6]["destinationList"] == [
        {"type": "location", "destination": f"https://id.gs1.org/414/{processor.gln}"}
    ]
    assert events[10]["sensorElementList"][0]["sensorReport"] == [{"type": "Temperature", "value": -1.5, "uom": "CEL"}]
    assert all(e["lotline:status"] == "confirmed" and e["lotline:txHash"].startswith("0x") for e in events)
    own = client.get(f"/api/v1{path}/epcis", headers=producer.headers()).get_json()["epcisBody"]["eventList"]
    assert own[2]["lotline:kde"]["note"] == "fine"  # the author sees its own private field


def test_export_of_a_lot_nobody_showed_you_is_404(client, as_role, network) -> None:
    code = new_code()
    as_role("producer")(
        "POST",
        "/lots",
        json={
            "gtin": network["producer"].gtin,
            "lot_code": code,
            "kind": "harvesting",
            "quantity": "5",
            "payload": {"location_gln": network["producer"].gln, "harvest_date": "2025-06-01", "commodity": "x"},
        },
    )
    response = client.get(
        f"/api/v1/lots/{network['producer'].gtin}/{code}/epcis", headers=network["retailer"].headers()
    )
    assert response.status_code == 404


def test_identifier_parsing() -> None:
    assert epcis.parse_lot_uri("urn:epc:class:lgtin:4012345.012345.998877", "f") == ("04012345123456", "998877")
    assert epcis.parse_lot_uri("https://example.com/r/01/4012345123456/10/A%2FB", "f") == ("04012345123456", "A/B")
    assert epcis.parse_gln_uri("urn:epc:id:sgln:0614141.07346.1234", "f") == "0614141073467"
    assert epcis.parse_gln_uri("https://id.gs1.org/414/0614141073467/254/1234", "f") == "0614141073467"
    for uri in (
        "urn:epc:id:sgtin:0614141.107346.2017",
        "https://id.gs1.org/01/70614141123451/21/2017",
        "urn:epc:idpat:sgtin:4012345.066666.*",
        "https://id.gs1.org/01/04012345666663",
    ):
        with pytest.raises(epcis.Unsupported):
            epcis.parse_lot_uri(uri, "f")


def test_the_schema_check_rejects_a_copy_of_a_valid_export_that_was_broken(client, as_role, network) -> None:
    code = new_code()
    as_role("producer")(
        "POST",
        "/lots",
        json={
            "gtin": network["producer"].gtin,
            "lot_code": code,
            "kind": "harvesting",
            "quantity": "5",
            "payload": {"location_gln": network["producer"].gln, "harvest_date": "2025-06-01", "commodity": "x"},
        },
    )
    document = client.get(
        f"/api/v1/lots/{network['producer'].gtin}/{code}/epcis", headers=network["producer"].headers()
    ).get_json()
    broken = copy.deepcopy(document)
    broken["epcisBody"]["eventList"][0]["quantityList"][0]["uom"] = "kilograms"
    response = _capture(client, network["producer"], broken)
    assert response.status_code == 400
    assert response.get_json()["field"] == "epcisBody.eventList[0].quantityList[0].uom"
