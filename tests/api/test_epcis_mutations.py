"""Mutated EPCIS documents: valid documents (our own and GS1's examples in shared/epcis) are broken in many
ways - a required field dropped, a value of the wrong type, impossible dates, an unknown event type, huge,
negative or tiny quantities, malformed EPC URIs, duplicated eventIDs, deep nesting within the body limits,
characters and bytes flipped inside string values - and POSTed to /api/v1/epcis/capture.

Every answer is either a success (201, or 202 once capture becomes a job) or a 4xx whose error names the path
or field at fault; never a 5xx. A refused document writes nothing: the lot and event counts and the chain's
block number are unchanged. Mutations come from a seeded random generator, so a failure replays exactly.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from supply_chain.domain.errors import InvalidInput
from supply_chain.services import epcis
from supply_chain.services import lots as lot_service
from supply_chain.store.models import Event, Lot
from tests.api.conftest import Member, Network, new_code

SHARED = Path(__file__).resolve().parents[3] / "shared" / "epcis"
if not SHARED.exists():
    SHARED = Path("/work/shared/epcis")
EXAMPLES = sorted((SHARED / "examples").glob("*.jsonld"))
SUCCESS = (201, 202)  # 202 + a job resource once capture runs in the background
VARIANTS = 6  # mutated documents per base document and mutation kind

pytestmark = pytest.mark.slow

Doc = dict[str, Any]


# ------------------------------------------------------------------ valid documents to start from


def _dl(gtin: str, lot: str) -> str:
    return f"https://id.gs1.org/01/{gtin}/10/{lot}"


def _loc(gln: str) -> dict[str, str]:
    return {"id": f"https://id.gs1.org/414/{gln}"}


def _doc(*events: Doc) -> Doc:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def farm_document(producer: Member, processor: Member) -> Doc:
    """Two new lots, a sensor report and a shipment of one of them: valid for the producer, with fresh codes."""
    one, two = new_code("MUT"), new_code("MUT")
    return _doc(
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-9000-{one[-5:]:0>12}",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "eventTime": "2025-06-01T06:30:00.250-07:00",
            "eventTimeZoneOffset": "-07:00",
            "readPoint": _loc(producer.gln),
            "bizLocation": _loc(producer.gln),
            "quantityList": [
                {"epcClass": _dl(producer.gtin, one), "quantity": 500, "uom": "KGM"},
                {"epcClass": _dl(producer.gtin, two), "quantity": 120.5, "uom": "KGM"},
            ],
        },
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-9001-{one[-5:]:0>12}",
            "action": "OBSERVE",
            "bizStep": "sensor_reporting",
            "eventTime": "2025-06-01T16:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, one)}],
            "sensorElementList": [
                {
                    "sensorMetadata": {"time": "2025-06-01T15:00:00Z", "deviceID": "urn:epc:id:giai:4000001.111"},
                    "sensorReport": [
                        {"type": "Temperature", "value": 3.5, "uom": "CEL"},
                        {"type": "RelativeHumidity", "value": 91, "uom": "P1"},
                    ],
                }
            ],
        },
        {
            "type": "ObjectEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-9002-{one[-5:]:0>12}",
            "action": "OBSERVE",
            "bizStep": "shipping",
            "disposition": "in_transit",
            "eventTime": "2025-06-02T14:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "readPoint": _loc(producer.gln),
            "quantityList": [{"epcClass": _dl(producer.gtin, one), "quantity": 500, "uom": "KGM"}],
            "sourceList": [{"type": "location", "source": _loc(producer.gln)["id"]}],
            "destinationList": [{"type": "location", "destination": _loc(processor.gln)["id"]}],
            "bizTransactionList": [{"type": "bol", "bizTransaction": f"urn:epcglobal:cbv:bt:{producer.gln}:BOL-{one}"}],
        },
    )


def plant_document(processor: Member, inputs: list[tuple[str, str]]) -> Doc:
    """A transformation of two lots the processor holds into a new lot (fresh code), 1 kg of each."""
    return _doc(
        {
            "type": "TransformationEvent",
            "eventID": f"urn:uuid:00000000-0000-4000-9003-{new_code('MUT')[-5:]:0>12}",
            "bizStep": "commissioning",
            "disposition": "active",
            "eventTime": "2025-06-03T11:00:00+02:00",
            "eventTimeZoneOffset": "+02:00",
            "readPoint": _loc(processor.gln),
            "bizLocation": _loc(processor.gln),
            "inputQuantityList": [{"epcClass": _dl(g, c), "quantity": 1, "uom": "KGM"} for g, c in inputs],
            "outputQuantityList": [{"epcClass": _dl(processor.gtin, new_code("MUTMIX")), "quantity": 2, "uom": "KGM"}],
        }
    )


@pytest.fixture(scope="module")
def held_inputs(api_runtime, network: Network) -> list[tuple[str, str]]:
    """Two lots of the producer, shipped to and received by the processor (10 t each, for many mixes)."""
    producer, processor = network["producer"], network["processor"]
    out = []
    with api_runtime.ctx() as ctx:
        for _ in range(2):
            code = new_code("MUTIN")
            lot = lot_service.create_lot(
                ctx,
                producer.org,
                producer.gtin,
                code,
                1,
                {"location_gln": producer.gln, "harvest_date": "2025-05-30", "commodity": "romaine lettuce"},
                "10000",
                "kg",
            )
            shipment = {
                "from_gln": producer.gln,
                "to_gln": processor.gln,
                "ship_date": "2025-05-31",
                "reference_document_type": "bill of lading",
                "reference_document_number": f"BOL-{code}",
            }
            lot_service.offer_custody(ctx, producer.org, lot, processor.org, shipment)
            lot_service.accept_custody(ctx, processor.org, lot, {**shipment, "receive_date": "2025-06-01"})
            out.append((producer.gtin, code))
    return out


def base_documents(network: Network, held: list[tuple[str, str]]) -> Iterator[tuple[str, Member, Callable[[], Doc]]]:
    """(name, who sends it, a factory of a fresh valid document)."""
    producer, processor = network["producer"], network["processor"]
    yield "farm", producer, lambda: farm_document(producer, processor)
    yield "plant", processor, lambda: plant_document(processor, held)
    for path in EXAMPLES:  # GS1's examples: refused as they stand (docs/epcis.md), so never written
        yield path.name, processor, lambda path=path: json.loads(path.read_text())


# ------------------------------------------------------------------ mutations


def _nodes(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _nodes(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nodes(item, (*path, i))


def _parent(doc: Doc, path: tuple) -> Any:
    node = doc
    for step in path[:-1]:
        node = node[step]
    return node


def _set(doc: Doc, path: tuple, value: Any) -> None:
    _parent(doc, path)[path[-1]] = value


def _events(doc: Doc) -> list[Doc]:
    body = doc.get("epcisBody")
    events = body.get("eventList") if isinstance(body, dict) else None
    return events if isinstance(events, list) and events else []


def drop_field(doc: Doc, rng: random.Random) -> Doc:
    paths = [p for p, _ in _nodes(doc) if p and isinstance(p[-1], str)]
    path = rng.choice(paths)
    del _parent(doc, path)[path[-1]]
    return doc


def wrong_type(doc: Doc, rng: random.Random) -> Doc:
    path = rng.choice([p for p, _ in _nodes(doc) if p])
    current = _parent(doc, path)[path[-1]]
    choices = [None, True, 0, -1, 1.5, "", "text", [], {}, ["x"], {"a": 1}]
    _set(doc, path, rng.choice([c for c in choices if type(c) is not type(current)]))
    return doc


BAD_TIMES = [
    "2025-13-45T25:61:00Z",
    "yesterday",
    "2025-06-01T08:00:00",  # no offset
    "2025-06-01T08:00:00+99:99",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",  # in the future
    "2025-02-29T00:00:00Z",  # not a leap year
    "2025-06-01",
    "",
    "2025-06-01T08:00:00.1234567890123Z",
]
BAD_OFFSETS = ["+24:00", "Z", "0200", "+02", "-99:99", "+02:00:30", ""]


def bad_date(doc: Doc, rng: random.Random) -> Doc:
    paths = [p for p, _ in _nodes(doc) if p and p[-1] in ("eventTime", "creationDate", "time", "recordTime")]
    offsets = [p for p, _ in _nodes(doc) if p and p[-1] == "eventTimeZoneOffset"]
    if offsets and rng.random() < 0.3:
        _set(doc, rng.choice(offsets), rng.choice(BAD_OFFSETS))
    else:
        _set(doc, rng.choice(paths), rng.choice(BAD_TIMES))
    return doc


def unknown_event_type(doc: Doc, rng: random.Random) -> Doc:
    events = _events(doc)
    if events:
        rng.choice(events)["type"] = rng.choice(["TeleportEvent", "objectevent", "", "AssociationEvent", "Event"])
    else:
        doc["type"] = "EPCISQueryDocument"
    return doc


BAD_QUANTITIES: list[Any] = [
    1e308,
    1e20,
    10**30,
    2**53,
    -5,
    0,
    -0.0,
    1e-9,
    0.0000001,
    999999999999.9999,
    "10",
    1e-300,
]


def bad_quantity(doc: Doc, rng: random.Random) -> Doc:
    paths = [p for p, _ in _nodes(doc) if p and p[-1] in ("quantity", "value", "minValue", "maxValue")]
    if not paths:
        return unknown_event_type(doc, rng)
    _set(doc, rng.choice(paths), rng.choice(BAD_QUANTITIES))
    return doc


BAD_URIS = [
    "urn:epc:class:lgtin:xxx",
    "urn:epc:class:lgtin:4012345.012345.",
    "https://id.gs1.org/01/12345678901234/10/A",  # bad check digit
    "https://id.gs1.org/01/09506000134352/10/",  # no lot
    "https://id.gs1.org/01/09506000134352/10/ABCDEFGHIJKLMNOPQRSTUVWXYZ",  # lot too long
    "https://id.gs1.org/01/09506000134352/10/A%00B",
    "https://id.gs1.org/01/09506000134352/10/A%ZZ",
    "https://id.gs1.org/01/09506000134352/10/A/21/1",
    "https://[::1/01/09506000134352/10/A",
    "https://id.gs1.org/414/1234567890123",
    "urn:epc:id:sscc:0614141.1234567890",
    "urn:epc:id:sgln:0614141.00777",
    "urn:epc:id:sgln:x.y.z",
    "not a uri",
    "https://id.gs1.org/01/\u00b2\u00b3/10/A",
    "https://id.gs1.org/01/" + "9" * 5000 + "/10/A",
    "",
]


def bad_uri(doc: Doc, rng: random.Random) -> Doc:
    keys = ("epcClass", "id", "source", "destination", "bizTransaction", "deviceID", "parentID")
    paths = [p for p, v in _nodes(doc) if p and (p[-1] in keys or isinstance(p[-1], int)) and isinstance(v, str)]
    if not paths:
        return drop_field(doc, rng)
    _set(doc, rng.choice(paths), rng.choice(BAD_URIS))
    return doc


def duplicate_event_id(doc: Doc, rng: random.Random) -> Doc:
    events = _events(doc)
    if not events:
        return drop_field(doc, rng)
    source = rng.choice(events)
    source.setdefault("eventID", "urn:uuid:00000000-0000-4000-8000-000000000001")
    others = [e for e in events if e is not source]
    if others and rng.random() < 0.5:  # another event takes its ID
        rng.choice(others)["eventID"] = source["eventID"]
    else:  # the same event twice
        events.insert(rng.randrange(len(events) + 1), copy.deepcopy(source))
    return doc


def deep_nesting(doc: Doc, rng: random.Random) -> Doc:
    """An extension field nested as deep as the body limit allows (MAX_JSON_DEPTH 100, the document's own
    levels included), as lists or as objects."""
    events = _events(doc)
    target = rng.choice(events) if events else doc
    depth = rng.choice([10, 40, 80, 94])
    value: Any = rng.choice(["leaf", 1, None])
    for i in range(depth):
        value = [value] if rng.random() < 0.5 else {f"example:k{i}": value}
    target["example:nested"] = value
    return doc


FLIPS = ["\x00", "\x1b", "\u202e", "\u2066", "\ud800", "\U0001f600", "%", "/", " ", '"', "\\", "\n", "\x7f", "\ufeff"]


def flip_character(doc: Doc, rng: random.Random) -> Doc:
    paths = [p for p, v in _nodes(doc) if p and isinstance(v, str) and v]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths)
        text = _parent(doc, path)[path[-1]]
        at = rng.randrange(len(text))
        _set(doc, path, text[:at] + rng.choice(FLIPS + [chr(rng.randrange(0x20, 0x3000))]) + text[at + 1 :])
    return doc


MUTATIONS: dict[str, Callable[[Doc, random.Random], Doc]] = {
    "drop_field": drop_field,
    "wrong_type": wrong_type,
    "bad_date": bad_date,
    "unknown_event_type": unknown_event_type,
    "bad_quantity": bad_quantity,
    "bad_uri": bad_uri,
    "duplicate_event_id": duplicate_event_id,
    "deep_nesting": deep_nesting,
    "flip_character": flip_character,
}


def flip_bytes(raw: bytes, rng: random.Random) -> bytes:
    """Flip one bit of 1-3 bytes inside string literals of the serialised document (UTF-8 may break)."""
    inside, positions, escaped = False, [], False
    for i, byte in enumerate(raw):
        if inside and not escaped and byte == 0x22:
            inside = False
        elif inside:
            positions.append(i)
            escaped = byte == 0x5C and not escaped
            continue
        elif byte == 0x22:
            inside = True
        escaped = False
    data = bytearray(raw)
    for at in rng.sample(positions, min(len(positions), rng.randint(1, 3))):
        data[at] ^= 1 << rng.randrange(8)
    return bytes(data)


# ------------------------------------------------------------------ the checks


def _state(runtime) -> tuple[int, int, int]:
    with runtime.ctx() as ctx:
        lots = ctx.session.scalar(select(func.count()).select_from(Lot))
        events = ctx.session.scalar(select(func.count()).select_from(Event))
        return lots, events, ctx.ledger.block_number()


def _post(client, member: Member, body: bytes, content_type: str):  # noqa: ANN202
    return client.post("/api/v1/epcis/capture", data=body, headers=member.headers() | {"Content-Type": content_type})


def _check(client, runtime, member: Member, body: bytes, label: str, content_type: str = "application/json") -> int:
    before = _state(runtime)
    response = _post(client, member, body, content_type)
    status, answer = response.status_code, response.get_json(silent=True)
    where = f"{label}: {status} {json.dumps(answer)[:400] if answer else response.data[:300]!r}"
    assert status < 500, where
    if status in SUCCESS:
        ANSWERS.append(answer if isinstance(answer, dict) else {})
        return status
    assert 400 <= status < 500 and isinstance(answer, dict) and answer.get("error") and answer.get("message"), where
    if answer["error"] == "epcis_rejected":
        refused = [e for e in answer["events"] if e["status"] in ("rejected", "unsupported")]
        assert refused, where
        for event in refused:  # each refused event names its place in the document
            assert event["reason"] and event["field"].startswith(f"epcisBody.eventList[{event['index']}]"), where
    else:
        assert answer.get("field"), where  # the path or field at fault ("body" for JSON that does not parse)
    assert _state(runtime) == before, f"{where}: a refused document wrote something"
    return status


ANSWERS: list[dict[str, Any]] = []
"""The answers of accepted documents (for the duplicate check below)."""


def _seeds(kind: str) -> Iterator[int]:
    base = sum(kind.encode())
    yield from range(base * 100, base * 100 + VARIANTS)


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_a_mutated_document_is_captured_or_refused_naming_the_field_and_a_refusal_writes_nothing(
    client, api_runtime, network, held_inputs, kind: str
) -> None:
    statuses: list[int] = []
    ANSWERS.clear()
    for name, member, fresh in base_documents(network, held_inputs):
        for seed in _seeds(kind):
            rng = random.Random(f"{kind}/{name}/{seed}")
            document = MUTATIONS[kind](fresh(), rng)
            statuses.append(_check(client, api_runtime, member, json.dumps(document).encode(), f"{kind} {name} {seed}"))
    assert any(400 <= s < 500 for s in statuses)  # the mutations did reach the checks
    if kind == "duplicate_event_id":
        # two different events with one eventID are never captured; an exact copy is captured once and the
        # copy reported as a duplicate (never applied twice)
        for answer in ANSWERS:
            assert [e["status"] for e in answer["events"]].count("duplicate") >= 1, answer


def test_two_events_with_one_event_id_are_refused_naming_the_second(client, api_runtime, network) -> None:
    document = farm_document(network["producer"], network["processor"])
    events = _events(document)
    events[2]["eventID"] = events[0]["eventID"]
    _check(client, api_runtime, network["producer"], json.dumps(document).encode(), "duplicate eventID")
    answer = _post(client, network["producer"], json.dumps(document).encode(), "application/json").get_json()
    refused = answer["events"][2]
    assert refused["code"] == "duplicate_event_id" and refused["field"] == "epcisBody.eventList[2].eventID"
    assert "event 0" in refused["reason"]


def test_an_invariant_refusal_names_the_place_in_the_document(client, api_runtime, network) -> None:
    """The services name their own fields (``quantity``, ``payload.ship_date``); capture points into the
    document instead, so the sender knows which value to correct."""
    producer, processor = network["producer"], network["processor"]
    too_much = farm_document(producer, processor)
    _events(too_much)[0]["quantityList"][1]["quantity"] = 999_999_999  # more kg than one lot can hold
    future = farm_document(producer, processor)
    _events(future)[2]["eventTime"] = "2099-01-01T00:00:00Z"  # shipped in the future
    for document, index, field, code in (
        (too_much, 0, "epcisBody.eventList[0].quantityList", "implausible_quantity"),
        (future, 2, "epcisBody.eventList[2].eventTime", "date_in_future"),
    ):
        _check(client, api_runtime, producer, json.dumps(document).encode(), code)
        answer = _post(client, producer, json.dumps(document).encode(), "application/json").get_json()
        refused = answer["events"][index]
        assert (refused["status"], refused["code"], refused["field"]) == ("rejected", code, field), refused


@settings(max_examples=200, deadline=None, database=None)
@given(
    uri=st.text(max_size=60)
    | st.tuples(
        st.sampled_from(["https://id.gs1.org/01/", "urn:epc:class:lgtin:", "urn:epc:id:sgln:", "https://x/414/"]),
        st.text(max_size=40),
    ).map("".join)
)
@example(uri="https://[x/01/09506000134352/10/A")  # urlsplit raised ValueError: a 500 from capture
@example(uri="https://[x/414/0614141000012")
def test_epcis_identifier_parsers_answer_any_text_with_a_value_or_a_refusal_naming_the_field(uri: str) -> None:
    for parse in (epcis.parse_lot_uri, epcis.parse_gln_uri):
        try:
            parse(uri, "epcisBody.eventList[0].x")
        except (InvalidInput, epcis.Unsupported) as exc:
            assert exc.field == "epcisBody.eventList[0].x"
