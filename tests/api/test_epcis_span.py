"""Documents spanning organisations (issue 10): a processor's system sends one document holding the farm's
events (its harvest, its shipment to the processor) and the processor's own (receiving, transformation).
The processor's events drive the lots; the farm's are the farm's: stored as reported by the processor,
attributed to the farm, never signed on chain in anyone's name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots as lot_service
from supply_chain.services import trace, views
from supply_chain.store.models import EpcisEvent, Event, Organisation
from tests.api.conftest import harvest_body, new_code, ship_body


def _dl(gtin: str, lot: str) -> str:
    return f"https://id.gs1.org/01/{gtin}/10/{lot}"


def _loc(gln: str) -> dict[str, str]:
    return {"id": f"https://id.gs1.org/414/{gln}"}


def test_a_document_with_the_farms_events_and_the_processors_stores_the_farms_as_reported(
    client: Any, as_role: Any, api_runtime: Any, network: Any
) -> None:
    producer, processor = network["producer"], network["processor"]
    lot, unknown, mix = new_code("SPAN"), new_code("SPANX"), new_code("SPANMIX")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, lot)).status_code == 201
    shipped = as_role("producer")("POST", f"/lots/{producer.gtin}/{lot}/shipments", json=ship_body(producer, processor))
    assert shipped.status_code in (200, 201), shipped.get_json()
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisBody": {
            "eventList": [
                {  # the farm's harvest of a lot Lotline never saw
                    "type": "ObjectEvent",
                    "eventID": f"urn:uuid:{new_code('e')}-harvest",
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "eventTime": "2025-05-01T06:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "readPoint": _loc(producer.gln),
                    "bizLocation": _loc(producer.gln),
                    "quantityList": [{"epcClass": _dl(producer.gtin, unknown), "quantity": 50, "uom": "KGM"}],
                },
                {  # the farm's shipment of the lot it shipped through Lotline
                    "type": "ObjectEvent",
                    "eventID": f"urn:uuid:{new_code('e')}-ship",
                    "action": "OBSERVE",
                    "bizStep": "shipping",
                    "eventTime": "2025-05-02T08:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "readPoint": _loc(producer.gln),
                    "quantityList": [{"epcClass": _dl(producer.gtin, lot), "quantity": 100, "uom": "KGM"}],
                    "sourceList": [{"type": "location", "source": _loc(producer.gln)["id"]}],
                    "destinationList": [{"type": "location", "destination": _loc(processor.gln)["id"]}],
                    "bizTransactionList": [
                        {"type": "bol", "bizTransaction": f"urn:epcglobal:cbv:bt:{producer.gln}:BOL-1"}
                    ],
                },
                {  # the processor's own receiving ...
                    "type": "ObjectEvent",
                    "eventID": f"urn:uuid:{new_code('e')}-receive",
                    "action": "OBSERVE",
                    "bizStep": "receiving",
                    "eventTime": "2025-05-03T09:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "readPoint": _loc(processor.gln),
                    "bizLocation": _loc(processor.gln),
                    "quantityList": [{"epcClass": _dl(producer.gtin, lot), "quantity": 100, "uom": "KGM"}],
                },
                {  # ... and transformation
                    "type": "TransformationEvent",
                    "eventID": f"urn:uuid:{new_code('e')}-mix",
                    "eventTime": "2025-05-04T09:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "readPoint": _loc(processor.gln),
                    "bizLocation": _loc(processor.gln),
                    "inputQuantityList": [{"epcClass": _dl(producer.gtin, lot), "quantity": 100, "uom": "KGM"}],
                    "outputQuantityList": [{"epcClass": _dl(processor.gtin, mix), "quantity": 90, "uom": "KGM"}],
                },
            ]
        },
    }
    response = client.post("/api/v1/epcis/capture", json=document, headers=processor.headers())
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["status"] == "done"
    events = job["events"]
    assert [e["status"] for e in events] == ["stored", "stored", "captured", "captured"]
    for result in events[:2]:
        assert result["code"] == "reported"
        assert result["attributedTo"] == {
            "party": "API Producer",
            "gln": producer.gln,
            "source": "location",
            "reportedBy": "API Processor",
        }
        assert "reported by API Processor" in result["reason"] and "not applied" in result["reason"]
    assert events[0]["field"] == "epcisBody.eventList[0].bizLocation.id"
    assert events[1]["field"] == "epcisBody.eventList[1].sourceList[0].source"

    with api_runtime.ctx() as ctx:
        # the farm's events were not signed again: one shipment (the farm's own), no lot for the harvest
        shipped_lot = lot_service.get_lot(ctx, producer.gtin, lot)
        kinds = [(EventKind(int(e.kind)), e.actor_org_id) for e in shipped_lot.events]
        assert kinds == [
            (EventKind.HARVESTING, producer.org.id),
            (EventKind.SHIPPING, producer.org.id),
            (EventKind.RECEIVING, processor.org.id),
        ]
        assert not [e for e in ctx.session.scalars(select(Event)) if e.lot.lot_code == unknown]
        rows = list(
            ctx.session.scalars(
                select(EpcisEvent).where(EpcisEvent.capture_job_id == job["id"]).order_by(EpcisEvent.position)
            )
        )
        assert [r.note for r in rows] == ["reported", "reported", None, None]
        assert [bool(r.attribution) for r in rows] == [True, True, False, False]
        assert rows[1].attribution["party"] == "API Producer"
        # the lot page lists the farm's shipment as the processor's report of it, beside what the farm signed
        page = views.lot_page(ctx, shipped_lot, ctx.session.get(Organisation, processor.org.id))
        assert [(r["event_id"], r["party"], r["reported_by"], r["biz_step"]) for r in page["reported"]] == [
            (document["epcisBody"]["eventList"][1]["eventID"], "API Producer", "API Processor", "shipping")
        ]
        # the farm does not see the processor's capture (it is the processor's to share)
        farm_page = views.lot_page(ctx, shipped_lot, ctx.session.get(Organisation, producer.org.id))
        assert farm_page["reported"] == []

    # the processor's view of what it reported: the anchor resource names whose event it is
    reported_id = document["epcisBody"]["eventList"][1]["eventID"]
    anchor = client.get(f"/api/v1/epcis/events/{reported_id}/anchor", headers=processor.headers("read"))
    assert anchor.status_code == 200, anchor.get_json()
    body = anchor.get_json()
    assert body["note"] == "reported" and body["applied"] is False
    assert body["attributedTo"]["party"] == "API Producer" and body["attributedTo"]["reportedBy"] == "API Processor"

    # the trace of the lot lists the farm's shipment as the processor's report, for whom may see it
    def traced(role: str) -> list[dict[str, Any]]:
        answer = as_role(role)("GET", f"/lots/{producer.gtin}/{lot}/trace?direction=forward")
        assert answer.status_code == 200, answer.get_json()
        item = next(i for i in answer.get_json()["lots"] if i.get("lot_code") == lot)
        return item.get("reported", [])

    assert [(r["event_id"], r["party"], r["reported_by"], r["biz_step"]) for r in traced("processor")] == [
        (reported_id, "API Producer", "API Processor", "shipping")
    ]
    assert traced("regulator")[0]["event_id"] == reported_id  # oversight sees every report
    assert traced("producer") == []  # the processor's capture is not the farm's to see
    with api_runtime.ctx() as ctx:
        regulators = views.trace_view(ctx, lot_service.get_lot(ctx, processor.gtin, mix), "backward")
        farm_item = next(i for i in regulators["lots"] if i.get("lot_code") == lot)
        assert [r["event_id"] for r in farm_item["reported"]] == [reported_id]
        csv_text = trace.to_csv(regulators).decode("utf-8")
        assert "API Producer's event, reported by API Processor" in csv_text

    # the lot's EPCIS export carries it as captured, marked as the processor's report in lotline:reported
    def exported(role: str, path: str = f"{processor.gtin}/{mix}") -> list[dict[str, Any]]:
        answer = as_role(role)("GET", f"/lots/{path}/epcis?ancestors=true")
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["epcisBody"]["eventList"]

    reports = [e for e in exported("processor") if "lotline:reported" in e]
    assert [e["eventID"] for e in reports] == [reported_id]
    assert reports[0]["lotline:reported"] == {
        "party": "API Producer",
        "gln": producer.gln,
        "reportedBy": "API Processor",
    }
    assert reports[0]["bizTransactionList"] == document["epcisBody"]["eventList"][1]["bizTransactionList"]
    assert not [e for e in exported("producer", f"{producer.gtin}/{lot}") if "lotline:reported" in e]

    # captured again by another organisation (a copy under a new eventID and time, not a duplicate): still the
    # farm's event as the processor reported it, never the capturer's own, never applied
    copy = {k: v for k, v in reports[0].items() if k != "recordTime"}
    copy["eventID"], copy["eventTime"] = f"{reported_id}-copy", "2025-05-02T08:30:00Z"
    again = client.post(
        "/api/v1/epcis/capture",
        json={
            **document,
            "@context": [*document["@context"], {"lotline": "urn:lotline:epcis:"}],
            "epcisBody": {"eventList": [copy]},
        },
        headers=network["distributor"].headers(),
    )
    assert again.status_code == 202, again.get_json()
    result = again.get_json()["events"][0]
    assert (result["status"], result["code"]) == ("stored", "reported")
    assert result["attributedTo"] == {
        "party": "API Producer",
        "gln": producer.gln,
        "source": "report",
        "reportedBy": "API Processor",
        "capturedBy": "API Distributor",
    }
    with api_runtime.ctx() as ctx:
        assert len(lot_service.get_lot(ctx, producer.gtin, lot).events) == 3  # nothing applied


def test_a_report_marker_that_names_nobody_is_refused_naming_the_field(client: Any, network: Any) -> None:
    producer, processor = network["producer"], network["processor"]
    event = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "eventTime": "2025-05-02T08:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "readPoint": _loc(processor.gln),
        "quantityList": [{"epcClass": _dl(producer.gtin, new_code("RPT")), "quantity": 1, "uom": "KGM"}],
        "lotline:reported": {"party": ""},
    }
    document = {
        "@context": [
            "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
            {"lotline": "urn:lotline:epcis:"},
        ],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisBody": {"eventList": [event]},
    }
    response = client.post("/api/v1/epcis/capture", json=document, headers=processor.headers())
    assert response.status_code == 422, response.get_json()
    result = response.get_json()["events"][0]
    assert result["code"] == "invalid_report" and result["field"] == "epcisBody.eventList[0].lotline:reported"
