"""EPCIS 2.0 (GS1) JSON-LD: export a lot's history as an EPCIS document, and capture EPCIS documents.

Export (`export_lot`): every event of a lot (optionally also of its ancestors) becomes one EPCIS event -
ObjectEvents for creation, CTEs, custody, inspections, holds, recalls and sensor readings, a
TransformationEvent for a lot made from other lots. Lots are named by GS1 Digital Link URIs
(``https://id.gs1.org/01/{gtin}/10/{lot}``), locations by GLN Digital Link URIs (``https://id.gs1.org/414/{gln}``),
business steps and dispositions by their CBV 2.0 bare words. Each event carries Lotline extensions
(``lotline:cte``, ``lotline:kde``, ``lotline:payloadHash``, ...) so a reader can check it against the chain.
The mapping table is in docs/epcis.md.

Capture (`capture`): a document is validated against the EPCIS 2.0 JSON Schema (a failure names the path),
then every event is mapped to Lotline writes and checked against the store and the caller's rights -
registered GTINs and GLNs, product ownership, custody, status, quantities - on a simulated state, in document
order. If any event is unsupported or invalid the whole document is rejected (``CaptureRejected``, 422) with a
result per event and nothing is written. Otherwise the writes are sent as multicall transactions of up to
``MAX_CALLS_PER_TRANSACTION`` calls (one transaction for an ordinary document).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import jsonschema
from sqlalchemy import select

from supply_chain.chain.ledger import Call
from supply_chain.domain import policy
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, LotlineError, NotFound
from supply_chain.domain.events import Visibility, event_date, kind_spec, validate_payload, visible_view
from supply_chain.domain.hashing import hex32, merkle_root, payload_hash
from supply_chain.domain.identifiers import (
    digital_link,
    gs1_check_digit,
    lot_id,
    parse_digital_link,
    parse_gln,
    parse_lot_code,
)
from supply_chain.domain.kinds import CREATION_KINDS, FREE_KINDS, EventKind
from supply_chain.domain.lineage import check_consumption, format_quantity, parse_quantity
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services.runtime import Ctx
from supply_chain.services.views import level_for
from supply_chain.services.writes import execute
from supply_chain.store.models import (
    Event,
    Location,
    Lot,
    LotInput,
    Organisation,
    Product,
)
from supply_chain.store.queries import ancestors as ancestor_ids

GS1_RESOLVER = "https://id.gs1.org"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
LOTLINE_NAMESPACE = "urn:lotline:epcis:"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"lotline": LOTLINE_NAMESPACE}]
MAX_CALLS_PER_TRANSACTION = 40
"""A createLot costs about 103k gas inside a multicall; 40 calls stay well under a 10M gas limit."""
_EVENT_ID_NAMESPACE = uuid.UUID("6f0f2a52-3c1e-4f43-9e55-0c1d0b3c7a11")

# Lotline unit (lower case) <-> UN/ECE Recommendation 20 code, as EPCIS `uom` wants it.
UNIT_TO_UOM = {
    "kg": "KGM",
    "g": "GRM",
    "t": "TNE",
    "lb": "LBR",
    "oz": "ONZ",
    "l": "LTR",
    "ml": "MLT",
    "case": "CS",
    "cases": "CS",
    "box": "BX",
    "bag": "BG",
    "crate": "CR",
    "pallet": "PX",
    "each": "H87",
    "ea": "H87",
    "piece": "H87",
    "pieces": "H87",
    "unit": "H87",
    "units": "H87",
}
UOM_TO_UNIT = {
    "KGM": "kg",
    "GRM": "g",
    "TNE": "t",
    "LBR": "lb",
    "ONZ": "oz",
    "LTR": "l",
    "MLT": "ml",
    "CS": "case",
    "BX": "box",
    "BG": "bag",
    "CR": "crate",
    "PX": "pallet",
    "H87": "each",
    "EA": "each",
}

# Reference document types (free text in Lotline) <-> CBV business transaction types.
BT_TYPES = {
    "bol": "bill of lading",
    "desadv": "advance ship notice",
    "inv": "invoice",
    "po": "purchase order",
    "recadv": "receiving advice",
    "prodorder": "production order",
    "cert": "certificate",
    "testres": "test result",
    "poc": "purchase order confirmation",
    "rma": "return authorisation",
}
_BT_BY_WORD = {v: k for k, v in BT_TYPES.items()} | {
    "asn": "desadv",
    "bill of lading": "bol",
    "invoice": "inv",
    "purchase order": "po",
    "ship notice": "desadv",
}

# Lotline kind -> (bizStep, disposition); None leaves the field out.
STEPS: dict[EventKind, tuple[str | None, str | None]] = {
    EventKind.HARVESTING: ("commissioning", "active"),
    EventKind.COOLING: ("storing", "active"),
    EventKind.INITIAL_PACKING: ("packing", "active"),
    EventKind.FIRST_LAND_BASED_RECEIVING: ("receiving", "active"),
    EventKind.SHIPPING: ("shipping", "in_transit"),
    EventKind.RECEIVING: ("receiving", "in_progress"),
    EventKind.TRANSFORMATION: ("commissioning", "active"),
    EventKind.INSPECTION: ("inspecting", None),
    EventKind.HOLD: ("holding", "non_sellable_other"),
    EventKind.RELEASE: ("holding", "sellable_accessible"),
    EventKind.RECALL: (None, "recalled"),
    EventKind.SENSOR_ANCHOR: ("sensor_reporting", None),
    EventKind.CLOSE: ("decommissioning", "inactive"),
    EventKind.CUSTODY_REJECTED: ("receiving", "returned"),
    EventKind.CUSTODY_CANCELLED: ("void_shipping", "active"),
    EventKind.OBSERVATION: ("other", None),
}
_OUTCOME_DISPOSITION = {"pass": "conformant", "fail": "non_conformant"}
_CREATION_BY_STEP = {
    "commissioning": EventKind.HARVESTING,
    "packing": EventKind.INITIAL_PACKING,
    "receiving": EventKind.FIRST_LAND_BASED_RECEIVING,
    "arriving": EventKind.FIRST_LAND_BASED_RECEIVING,
}
_CREATOR_ROLES = policy.ordered(policy.CREATOR_ROLES)
_RECEIVING_ROLES = policy.ordered(policy.RECEIVING_ROLES)


# ================================================================== the schema


@cache
def schema() -> dict[str, Any]:
    """The EPCIS 2.0 JSON Schema (GS1's bundled draft-07 schema, shipped with the package)."""
    text = resources.files("supply_chain.services").joinpath("schemas/EPCIS-JSON-Schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str) or "T" not in value.upper():
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@cache
def _validator() -> jsonschema.protocols.Validator:
    # Only date-time is format-checked: "uri" checking would refuse the official examples' blank-node ids
    # ("_:document1"), which the EPCIS standard itself uses.
    cls = jsonschema.validators.validator_for(schema())
    return cls(schema(), format_checker=_formats)  # type: ignore[no-any-return]


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(path, message) of the most telling leaf of a schema error.

    For ``anyOf``/``oneOf`` the alternative with the fewest failures is followed; among equals, a failure
    about presence or type (``not``, ``required``, ``type``) beats a ``pattern``/``enum`` mismatch, which
    usually only tells which alternative was not meant.
    """
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)

        def rank(errs: list[jsonschema.ValidationError]) -> tuple[int, int, int]:
            weak = sum(e.validator in ("pattern", "enum", "const") for e in errs)
            return (len(errs), weak, -max(len(e.absolute_path) for e in errs))

        best = min(branches.values(), key=rank)
        error = min(best, key=lambda e: (e.validator in ("pattern", "enum", "const"), -len(e.absolute_path)))
    where = _path(error.absolute_path)
    if error.validator == "not":
        message = f"{where}: is not allowed here"
        if error.absolute_path and error.absolute_path[-1] == "ilmd":
            message += " (ilmd, instance/lot master data, is only allowed with action ADD)"
    elif error.validator in ("required", "additionalProperties", "propertyNames"):
        message = f"{where}: {error.message}"
    else:
        shown = json.dumps(error.instance)[:80]
        message = f"{where}: {shown} {error.message.split(' ', 1)[1] if ' ' in error.message else error.message}"
    return where, message


def validate_document(document: object) -> dict[str, Any]:
    """Check ``document`` against the EPCIS 2.0 JSON Schema; InvalidInput naming the failing path otherwise."""
    if not isinstance(document, dict):
        raise InvalidInput("an EPCIS document must be a JSON object", field="(document)", code="epcis_schema_invalid")
    if document.get("type") != "EPCISDocument":
        raise InvalidInput(
            f'type: must be "EPCISDocument", got {document.get("type")!r}', field="type", code="epcis_schema_invalid"
        )
    errors = list(_validator().iter_errors(document))
    if errors:
        # a direct error (deepest path first) says more than an anyOf/oneOf that merely failed as a whole
        first = min(
            errors,
            key=lambda e: (e.validator in ("anyOf", "oneOf"), -len(e.absolute_path), [str(p) for p in e.absolute_path]),
        )
        where, message = _describe(first)
        more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise InvalidInput(f"EPCIS schema: {message}{more}", field=where, code="epcis_schema_invalid")
    return document


# ================================================================== identifiers


class Unsupported(LotlineError):
    """Raised when an EPCIS event or identifier has no Lotline counterpart (rejected with the reason)."""

    status = 422
    code = "unsupported"


def lot_uri(gtin: str, lot_code: str) -> str:
    """The lot's GS1 Digital Link on GS1's resolver: ``https://id.gs1.org/01/{gtin14}/10/{lot}``."""
    return digital_link(GS1_RESOLVER, gtin, lot_code)


def gln_uri(gln: str) -> str:
    """A location's GLN as a GS1 Digital Link URI: ``https://id.gs1.org/414/{gln}``."""
    return f"{GS1_RESOLVER}/414/{gln}"


def _from_urn_parts(prefix: str, reference: str, label: str, field: str) -> str:
    body = prefix + reference
    if not (body.isascii() and body.isdigit()):
        raise InvalidInput(f"{field}: {label} parts must be digits", field=field, code="invalid_identifier")
    return body


def parse_lot_uri(uri: str, field: str) -> tuple[str, str]:
    """(gtin14, lot code) of a lot-level identifier: an LGTIN URN or a GS1 Digital Link with /10/.

    Serialised items (SGTIN, Digital Link with /21/), class patterns, GTINs without a lot and logistic units
    (SSCC) raise Unsupported: Lotline traces lots (FSMA 204 traceability lots), not single items or pallets.
    """
    if not isinstance(uri, str):
        raise InvalidInput(f"{field}: must be a URI", field=field, code="invalid_identifier")
    if uri.startswith("urn:epc:class:lgtin:"):
        parts = uri[len("urn:epc:class:lgtin:") :].split(".", 2)
        if len(parts) != 3 or not parts[1]:
            raise InvalidInput(
                f"{field}: {uri!r} is not an LGTIN (urn:epc:class:lgtin:Prefix.ItemRef.Lot)",
                field=field,
                code="invalid_identifier",
            )
        prefix, item, lot = parts
        body = _from_urn_parts(item[0] + prefix, item[1:], "LGTIN", field)
        if len(body) != 13:
            raise InvalidInput(
                f"{field}: {uri!r}: company prefix and item reference must have 12 digits together",
                field=field,
                code="invalid_identifier",
            )
        gtin = body + str(gs1_check_digit(body))
        return gtin, _lot(unquote(lot), field)
    if uri.startswith("urn:epc:id:sgtin:"):
        raise Unsupported(
            f"{field}: {uri} names one serialised item (SGTIN); Lotline traces lots - send the lot "
            "in quantityList as an LGTIN or a Digital Link with /10/{{lot}}",
            field=field,
        )
    if uri.startswith("urn:epc:idpat:"):
        raise Unsupported(f"{field}: {uri} is a class pattern and names no lot", field=field)
    if uri.startswith("urn:epc:id:sscc:"):
        raise Unsupported(
            f"{field}: {uri} is a logistic unit (SSCC); Lotline does not track pallets or cases, only the lots in them",
            field=field,
        )
    path = urlsplit(uri).path if uri.startswith(("http://", "https://")) else ""
    segments = path.split("/")
    if "01" in segments:
        if "21" in segments[segments.index("01") :]:
            raise Unsupported(
                f"{field}: {uri} names one serialised item (/21/ serial); Lotline traces lots", field=field
            )
        if "10" not in segments[segments.index("01") :]:
            raise Unsupported(f"{field}: {uri} names a product (GTIN) but no lot (/10/)", field=field)
        try:
            return parse_digital_link(uri)
        except InvalidInput as exc:
            raise InvalidInput(f"{field}: {exc.message}", field=field, code=exc.code) from None
    raise Unsupported(f"{field}: {uri} is not a GS1 lot identifier (LGTIN URN or Digital Link)", field=field)


def _lot(text: str, field: str) -> str:
    try:
        return parse_lot_code(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}", field=field, code=exc.code) from None


def parse_gln_uri(uri: str, field: str) -> str:
    """The GLN of an SGLN/PGLN URN or a Digital Link with /414/ (location) or /417/ (party)."""
    if not isinstance(uri, str):
        raise InvalidInput(f"{field}: must be a URI", field=field, code="invalid_identifier")
    for scheme in ("urn:epc:id:sgln:", "urn:epc:id:pgln:"):
        if uri.startswith(scheme):
            parts = uri[len(scheme) :].split(".")
            if len(parts) < 2:
                raise InvalidInput(f"{field}: {uri!r} is not a GLN URN", field=field, code="invalid_identifier")
            body = _from_urn_parts(parts[0], parts[1], "GLN", field)
            if len(body) != 12:
                raise InvalidInput(
                    f"{field}: {uri!r}: company prefix and location reference must have 12 digits together",
                    field=field,
                    code="invalid_identifier",
                )
            return body + str(gs1_check_digit(body))
    if uri.startswith(("http://", "https://")):
        segments = urlsplit(uri).path.split("/")
        for ai in ("414", "417"):
            if ai in segments and segments.index(ai) + 1 < len(segments):
                try:
                    return parse_gln(segments[segments.index(ai) + 1])
                except InvalidInput as exc:
                    raise InvalidInput(f"{field}: {exc.message}", field=field, code=exc.code) from None
    raise Unsupported(f"{field}: {uri} is not a GLN-based location (SGLN URN or Digital Link /414/)", field=field)


def bare_word(value: object, kind: str) -> str | None:
    """A CBV value as its bare word: 'shipping' from 'shipping', 'urn:epcglobal:cbv:bizstep:shipping' or
    'https://ref.gs1.org/cbv/BizStep-shipping'; other URIs are returned unchanged."""
    if not isinstance(value, str):
        return None
    lowered = value.lower()
    for prefix in (
        f"urn:epcglobal:cbv:{kind}:",
        f"https://ref.gs1.org/cbv/{kind}-",
        f"https://gs1.org/voc/{kind}-",
        f"http://ns.gs1.org/cbv/{kind}-",
    ):
        if lowered.startswith(prefix.lower()):
            return value[len(prefix) :]
    return value


# ================================================================== export


def _number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _quantity_element(gtin: str, lot_code: str, quantity: str | None, unit: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": lot_uri(gtin, lot_code)}
    if quantity is not None:
        element["quantity"] = _number(quantity)
        uom = UNIT_TO_UOM.get((unit or "").strip().lower())
        if uom:
            element["uom"] = uom
    return element


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z") or "+0000"
    return f"{text[:3]}:{text[3:5]}"


def event_time(value: str | None, fallback: datetime) -> tuple[str, str]:
    """(eventTime, eventTimeZoneOffset) for a normalised payload date or date-time (a date is 00:00 UTC)."""
    if value and "T" in value:
        moment = datetime.fromisoformat(value)
        return value, _offset(moment)
    if value:
        return f"{value}T00:00:00+00:00", "+00:00"
    moment = fallback.astimezone(UTC)
    return moment.isoformat(), "+00:00"


def _bt(gln: str | None, ref_type: str | None, number: str | None) -> dict[str, Any] | None:
    if not number:
        return None
    word = (ref_type or "").strip().lower()
    bt_type = _BT_BY_WORD.get(word) or (word if word in BT_TYPES else None)
    owner = gln or "0000000000000"
    entry: dict[str, Any] = {"bizTransaction": f"urn:epcglobal:cbv:bt:{owner}:{quote(number, safe='')}"}
    if bt_type:
        entry["type"] = bt_type
    return entry


def _event_id(event: Event, lot: Lot) -> str:
    captured = (event.payload or {}).get("epcis_event_id")
    if isinstance(captured, str) and captured:
        return captured
    return "urn:uuid:" + str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{lot.lot_id}:{event.payload_hash}:{event.id}"))


def _ni(sha256_hex: str) -> str:
    """RFC 6920 named information URI of a SHA-256 digest (how EPCIS names a document by its hash)."""
    digest = base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).decode().rstrip("=")
    return f"ni:///sha-256;{digest}"


def _is_creation(lot: Lot, event: Event) -> bool:
    first = next((e for e in lot.events if e.status != "failed"), None)
    return first is not None and first.id == event.id and int(event.kind) in CREATION_KINDS


def export_event(event: Event, lot: Lot, level: Visibility) -> dict[str, Any]:
    """One Lotline event as an EPCIS 2.0 event (JSON-LD), showing the payload fields ``level`` may see."""
    kind = EventKind(int(event.kind))
    kde = visible_view(kind, event.payload or {}, level)
    captured_time = (event.payload or {}).get("epcis_event_time")
    when, offset = event_time(
        captured_time if isinstance(captured_time, str) else event_date(kind, event.payload or {}), event.occurred_at
    )
    step, disposition = STEPS[kind]
    out: dict[str, Any] = {
        "type": "TransformationEvent" if kind is EventKind.TRANSFORMATION else "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": offset,
        "eventID": _event_id(event, lot),
    }
    quantity = kde.get("quantity")
    this_lot = _quantity_element(lot.gtin, lot.lot_code, quantity, kde.get("unit") or lot.unit)
    if kind is EventKind.TRANSFORMATION:
        out["inputQuantityList"] = [
            _quantity_element(i["gtin"], i["lot_code"], i.get("quantity"), i.get("unit"))
            for i in kde.get("inputs", [])
            if isinstance(i, Mapping) and "gtin" in i and "lot_code" in i
        ] or [{"epcClass": lot_uri(e.input_lot.gtin, e.input_lot.lot_code)} for e in lot.inputs]
        out["outputQuantityList"] = [this_lot]
        if event.batch_id:
            out["transformationID"] = "urn:uuid:" + str(uuid.UUID(hex=event.batch_id))
    else:
        out["action"] = "DELETE" if kind is EventKind.CLOSE else ("ADD" if _is_creation(lot, event) else "OBSERVE")
        out["quantityList"] = [this_lot]
    if kind is EventKind.INSPECTION:
        disposition = _OUTCOME_DISPOSITION.get(str(kde.get("outcome")))
    if step:
        out["bizStep"] = step
    if disposition:
        out["disposition"] = disposition
    here = kde.get("location_gln")
    if kind is EventKind.SHIPPING:
        here = kde.get("from_gln")
    elif kind is EventKind.RECEIVING:
        here = kde.get("to_gln")
    if here:
        out["readPoint"] = {"id": gln_uri(here)}
        if kind is not EventKind.SHIPPING:  # in transit after shipping: no business location
            out["bizLocation"] = {"id": gln_uri(here)}
    if kind in (EventKind.SHIPPING, EventKind.RECEIVING):
        if kde.get("from_gln"):
            out["sourceList"] = [{"type": "location", "source": gln_uri(kde["from_gln"])}]
        if kde.get("to_gln"):
            out["destinationList"] = [{"type": "location", "destination": gln_uri(kde["to_gln"])}]
    transactions = []
    bt = _bt(
        kde.get("from_gln") or kde.get("location_gln"),
        kde.get("reference_document_type"),
        kde.get("reference_document_number"),
    )
    if bt:
        transactions.append(bt)
    if kde.get("certificate_sha256"):
        transactions.append({"type": "testres", "bizTransaction": _ni(kde["certificate_sha256"])})
    if transactions:
        out["bizTransactionList"] = transactions
    if kind is EventKind.SENSOR_ANCHOR:
        out["sensorElementList"] = _sensor_elements(event, kde)
    out["lotline:cte"] = kind.name.lower()
    out["lotline:kde"] = kde
    out["lotline:payloadHash"] = event.payload_hash
    out["lotline:status"] = event.status
    if event.seq is not None:
        out["lotline:seq"] = event.seq
    if event.tx_hash and event.status == "confirmed":
        out["lotline:txHash"] = event.tx_hash
    return out


def _temp(value: float | Decimal) -> int | float:
    return _number(lot_service.format_quantity_signed(Decimal(str(value))))


def _sensor_elements(event: Event, kde: Mapping[str, Any]) -> list[dict[str, Any]]:
    batch = event.sensor_batch
    device = {"lotline:sensorId": kde["sensor_id"]} if kde.get("sensor_id") else {}
    if batch is not None and batch.readings:
        elements = []
        for reading in batch.readings:
            report: list[dict[str, Any]] = [
                {"type": "Temperature", "value": _temp(reading.temperature_c), "uom": "CEL"}
            ]
            if reading.humidity is not None:
                report.append({"type": "RelativeHumidity", "value": _temp(reading.humidity), "uom": "P1"})
            elements.append({"sensorMetadata": {"time": reading.taken_at.isoformat()} | device, "sensorReport": report})
        return elements
    summary: dict[str, Any] = {"type": "Temperature", "uom": "CEL"}
    if kde.get("min_temperature_c") is not None:
        summary["minValue"] = _number(kde["min_temperature_c"])
    if kde.get("max_temperature_c") is not None:
        summary["maxValue"] = _number(kde["max_temperature_c"])
    metadata = {k: v for k, v in (("startTime", kde.get("period_start")), ("endTime", kde.get("period_end"))) if v}
    return [{"sensorMetadata": metadata | device, "sensorReport": [summary]}]


def export_lot(
    ctx: Ctx, lot: Lot, *, ancestors: bool = False, viewer: Organisation | None = None, include_failed: bool = False
) -> dict[str, Any]:
    """The lot's events (and, with ``ancestors``, those of every lot it was made from) as an EPCIS 2.0
    document, oldest first. Fields are shown at the viewer's level (all of its own events, the consortium
    fields of others'); without a viewer (the CLI), at consortium level."""
    chain = [lot]
    if ancestors:
        ids = [i for i, _ in ancestor_ids(ctx.session, lot.id)]
        if ids:
            chain += list(ctx.session.scalars(select(Lot).where(Lot.id.in_(ids)).order_by(Lot.id)))
    rows = [(item, e) for item in chain for e in item.events if include_failed or e.status != "failed"]
    rows.sort(key=lambda pair: (pair[1].occurred_at, pair[1].seq or 10**12, pair[1].id))
    events = [export_event(e, item, level_for(e, viewer) if viewer else Visibility.CONSORTIUM) for item, e in rows]
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
        "epcisBody": {"eventList": events},
    }


# ================================================================== capture: results


@dataclass
class EventResult:
    """What became of one event of a captured document."""

    index: int
    type: str | None
    event_id: str | None
    biz_step: str | None
    status: str = "accepted"  # accepted (valid) | captured | rejected | unsupported
    code: str | None = None
    reason: str | None = None
    field: str | None = None
    writes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "eventID": self.event_id,
            "bizStep": self.biz_step,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "field": self.field,
            "lotline_events": self.writes,
        }


class CaptureRejected(InvalidInput):
    """Raised when any event of an EPCIS document cannot be captured; nothing was written. Carries the
    result of every event (``details['events']``)."""

    status = 422
    code = "epcis_rejected"

    def __init__(self, message: str, results: list[EventResult], field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.results = results
        self.details = {"events": [r.to_dict() for r in results]}


@dataclass
class CaptureResult:
    events: list[EventResult]
    transactions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "captured": len(self.events),
            "transactions": self.transactions,
            "events": [r.to_dict() for r in self.events],
        }


# ================================================================== capture: planning on a simulated state


@dataclass
class _LotState:
    gtin: str
    lot_code: str
    product: Product
    status: str
    custodian_id: int
    pending_id: int | None
    quantity: Decimal
    unit: str
    row: Lot | None = None  # the stored lot; None for a lot this document creates
    offer: dict[str, Any] | None = None  # the payload of the current custody offer


@dataclass
class _Write:
    """One planned Lotline write."""

    action: str  # create | record | offer | accept | transform | anchor
    index: int
    kind: EventKind
    key: tuple[str, str] | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    quantity: str | None = None
    unit: str | None = None
    to: Organisation | None = None
    outputs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    readings: list[dict[str, Any]] = dataclasses.field(default_factory=list)


_EPCIS_FIELD = {
    "location_gln": "readPoint",
    "from_gln": "sourceList",
    "to_gln": "destinationList",
    "quantity": "quantityList",
    "unit": "quantityList",
    "reference_document_type": "bizTransactionList",
    "reference_document_number": "bizTransactionList",
}


class _Planner:
    def __init__(self, ctx: Ctx, org: Organisation) -> None:
        self.ctx = ctx
        self.org = org
        self.lots: dict[tuple[str, str], _LotState] = {}
        self.locations: dict[str, Location | None] = {}
        self.products: dict[str, Product | None] = {}
        self.orgs = {o.id: o for o in ctx.session.scalars(select(Organisation))}

    # ---------------------------------------------------------------- store look-ups

    def location(self, gln: str, field: str, *, own: bool = False) -> Location:
        if gln not in self.locations:
            self.locations[gln] = self.ctx.session.scalars(select(Location).where(Location.gln == gln)).first()
        location = self.locations[gln]
        if location is None:
            raise InvalidInput(f"{field}: GLN {gln} is not a registered location", field=field, code="unknown_gln")
        if own and location.organisation_id != self.org.id:
            raise Forbidden(
                f"{field}: GLN {gln} ({location.name}) belongs to {location.organisation.name}; "
                f"{self.org.name} can only record what happens at its own locations",
                field=field,
            )
        return location

    def product(self, gtin: str, field: str) -> Product:
        if gtin not in self.products:
            self.products[gtin] = self.ctx.session.scalars(select(Product).where(Product.gtin == gtin)).first()
        product = self.products[gtin]
        if product is None:
            raise InvalidInput(f"{field}: GTIN {gtin} is not a registered product", field=field, code="unknown_gtin")
        return product

    def lot(self, key: tuple[str, str], field: str) -> _LotState:
        if key in self.lots:
            return self.lots[key]
        row = self.ctx.session.scalars(select(Lot).where(Lot.gtin == key[0], Lot.lot_code == key[1])).first()
        if row is None:
            self.product(key[0], field)
            raise NotFound(f"{field}: no lot {key[1]} of GTIN {key[0]}", field=field, code="unknown_lot")
        offer = next(
            (e.payload for e in reversed(row.events) if int(e.kind) == EventKind.SHIPPING and e.status != "failed"),
            None,
        )
        state = _LotState(
            row.gtin,
            row.lot_code,
            row.product,
            row.status,
            row.custodian_org_id,
            row.pending_custodian_org_id,
            Decimal(row.quantity),
            row.unit,
            row,
            dict(offer or {}),
        )
        self.lots[key] = state
        return state

    def new_lot(self, key: tuple[str, str], field: str) -> Product:
        product = self.product(key[0], field)
        if product.organisation_id != self.org.id:
            raise Forbidden(
                f"{field}: {self.org.name} cannot create lots of GTIN {key[0]}: the product belongs to "
                f"{product.organisation.name}",
                field=field,
            )
        exists = (
            key in self.lots
            or self.ctx.session.scalars(select(Lot.id).where(Lot.gtin == key[0], Lot.lot_code == key[1])).first()
            is not None
            or self.ctx.ledger.get_lot(hex32(lot_id(key[0], key[1]))).exists
        )
        if exists:
            raise Conflict(f"{field}: lot {key[1]} of GTIN {key[0]} already exists", field=field, code="lot_exists")
        return product

    def role(self, roles: Sequence[str], action: str) -> None:
        if not set(self.org.roles) & set(roles):
            raise Forbidden(f"{self.org.name} cannot {action}: needs one of the roles {', '.join(roles)}")

    def payload(self, kind: EventKind, payload: Mapping[str, Any], path: str) -> dict[str, Any]:
        """The validated payload; errors name the EPCIS field that carried the value."""
        try:
            normalised = validate_payload(kind, payload)
            for key, value in normalised.items():
                if key.endswith("_gln") and isinstance(value, str):
                    self.location(value, f"payload.{key}")
        except LotlineError as exc:
            name = (exc.field or "").removeprefix("payload.").split("[")[0].split(".")[0]
            where = _EPCIS_FIELD.get(name, "lotline:kde." + name if name else "")
            if name.endswith("_date") or name in ("period_start", "period_end"):
                where = "eventTime"
            exc.field = f"{path}.{where}" if where else path
            raise
        return normalised

    # ---------------------------------------------------------------- the mapping

    def plan(self, index: int, event: Mapping[str, Any]) -> list[_Write]:
        path = f"epcisBody.eventList[{index}]"
        etype = event.get("type")
        if etype == "TransformationEvent":
            return [self._transformation(index, event, path)]
        if etype != "ObjectEvent":
            raise Unsupported(
                f"{etype} is not mapped to Lotline: lots, their critical tracking events and custody "
                "are expressed with ObjectEvent and TransformationEvent",
                field=f"{path}.type",
            )
        action = event.get("action")
        step = bare_word(event.get("bizStep"), "bizstep")
        disposition = bare_word(event.get("disposition"), "disp")
        cte = event.get("lotline:cte")
        when = local_time(event, path)
        extra = dict(event["lotline:kde"]) if isinstance(event.get("lotline:kde"), Mapping) else {}
        items = self._lot_items(event, path)
        has_sensors = bool(event.get("sensorElementList"))
        writes: list[_Write] = []
        if action == "ADD":
            kind = _creation_kind(cte, step)
            if kind is None:
                raise Unsupported(
                    f"an ADD event with bizStep {step!r} is not mapped: a lot is created by "
                    "commissioning (harvest), packing (initial packing) or receiving (first "
                    "land-based receiving)",
                    field=f"{path}.bizStep",
                )
            writes += self._create(index, event, path, kind, items, when, extra)
        elif (
            action == "OBSERVE"
            and isinstance(cte, str)
            and cte.upper() in EventKind.__members__
            and EventKind[cte.upper()] in FREE_KINDS
        ):
            writes += self._record(index, event, path, EventKind[cte.upper()], items, when, extra)
        elif action == "OBSERVE" and step == "shipping":
            writes += self._ship(index, event, path, items, when, extra)
        elif action == "OBSERVE" and step == "receiving" and disposition != "returned":
            writes += self._receive(index, event, path, items, when, extra)
        elif not has_sensors:
            what = f"bizStep {step!r}" if step else "an event without bizStep"
            if action == "DELETE":
                what = "action DELETE"
            elif step == "receiving":
                what = "a refused delivery (receiving with disposition returned)"
            raise Unsupported(
                f"{what} is not mapped to Lotline (captured are: commissioning/packing ADD, "
                "shipping, receiving, transformations and sensor readings)",
                field=f"{path}.bizStep",
            )
        if has_sensors:
            writes += self._sensors(index, event, path, items, extra)
        return writes

    def _lot_items(self, event: Mapping[str, Any], path: str) -> list[tuple[tuple[str, str], dict[str, Any], str]]:
        items = []
        for j, uri in enumerate(event.get("epcList") or []):
            where = f"{path}.epcList[{j}]"
            items.append((parse_lot_uri(uri, where), {}, where))
        for j, element in enumerate(event.get("quantityList") or []):
            where = f"{path}.quantityList[{j}]"
            items.append((parse_lot_uri(element.get("epcClass"), f"{where}.epcClass"), element, where))
        if not items:
            raise Unsupported(
                "the event names no lot: give the lots in quantityList (LGTIN or Digital Link with /10/{lot})",
                field=f"{path}.quantityList",
            )
        seen: set[tuple[str, str]] = set()
        for key, _, where in items:
            if key in seen:
                raise InvalidInput(f"{where}: lot {key[0]}/{key[1]} is listed twice in the event", field=where)
            seen.add(key)
        return items

    def _quantity(self, element: Mapping[str, Any], where: str, default_unit: str) -> tuple[str | None, str]:
        unit = default_unit
        if element.get("uom"):
            unit = UOM_TO_UNIT.get(element["uom"], element["uom"])
        if element.get("quantity") is None:
            return None, unit
        return format_quantity(parse_quantity(str(element["quantity"]), f"{where}.quantity")), unit

    def _place(self, event: Mapping[str, Any], path: str, *, own: bool) -> str:
        for key in ("bizLocation", "readPoint"):
            if isinstance(event.get(key), Mapping):
                gln = parse_gln_uri(event[key]["id"], f"{path}.{key}.id")
                self.location(gln, f"{path}.{key}.id", own=own)
                return gln
        raise InvalidInput(
            f"{path}.readPoint: the event needs a readPoint or bizLocation (the GLN where it happened)",
            field=f"{path}.readPoint",
            code="missing_location",
        )

    def _party_list(self, event: Mapping[str, Any], name: str, path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        key = "source" if name == "sourceList" else "destination"
        for j, entry in enumerate(event.get(name) or []):
            kind = bare_word(entry.get("type"), "sdt")
            if kind in ("location", "owning_party", "possessing_party") and kind not in out:
                out[kind] = parse_gln_uri(entry[key], f"{path}.{name}[{j}].{key}")
        return out

    def _reference(
        self, event: Mapping[str, Any], extra: Mapping[str, Any], fallback: Mapping[str, Any] | None
    ) -> dict[str, str]:
        for entry in event.get("bizTransactionList") or []:
            value = str(entry.get("bizTransaction", ""))
            bt_type = bare_word(entry.get("type"), "btt") or "reference"
            number = value
            if value.startswith("urn:epcglobal:cbv:bt:") and value.count(":") >= 5:
                number = unquote(value.split(":", 5)[5])
            return {"reference_document_type": BT_TYPES.get(bt_type, bt_type), "reference_document_number": number}
        for source in (extra, fallback or {}):
            if source.get("reference_document_number"):
                return {k: source[k] for k in ("reference_document_type", "reference_document_number") if k in source}
        return {}

    def _create(
        self,
        index: int,
        event: Mapping[str, Any],
        path: str,
        kind: EventKind,
        items: list[Any],
        when: str,
        extra: dict[str, Any],
    ) -> list[_Write]:
        self.role(_CREATOR_ROLES, "create lots")
        gln = self._place(event, path, own=True)
        writes = []
        for key, element, where in items:
            product = self.new_lot(key, f"{where}.epcClass" if element else where)
            quantity, unit = self._quantity(element, where, product.unit)
            if quantity is None:
                raise InvalidInput(
                    f"{where}: a new lot needs its quantity (quantityList with quantity and uom)",
                    field=f"{where}.quantity",
                    code="missing_quantity",
                )
            payload = extra | {
                "location_gln": gln,
                kind_spec(kind).date_field: when,
                "quantity": quantity,
                "unit": unit,
                "epcis_event_id": event.get("eventID"),
            }
            if kind is EventKind.HARVESTING:
                payload.setdefault("commodity", product.name)
            if kind is EventKind.INITIAL_PACKING:
                payload.setdefault("product_description", product.name)
            payload = self.payload(kind, _clean(payload), path)
            self.lots[key] = _LotState(key[0], key[1], product, "active", self.org.id, None, Decimal(quantity), unit)
            writes.append(_Write("create", index, kind, key, payload, quantity, unit))
        return writes

    def _record(
        self,
        index: int,
        event: Mapping[str, Any],
        path: str,
        kind: EventKind,
        items: list[Any],
        when: str,
        extra: dict[str, Any],
    ) -> list[_Write]:
        gln = self._place(event, path, own=True)
        writes = []
        for key, element, where in items:
            state = self.lot(key, where)
            self.allow(Action.RECORD, state, where)
            quantity, unit = self._quantity(element, where, state.unit)
            payload = extra | {
                "location_gln": gln,
                kind_spec(kind).date_field: when,
                "quantity": quantity or format_quantity(state.quantity),
                "unit": unit,
                "epcis_event_id": event.get("eventID"),
            }
            payload = {
                k: v for k, v in payload.items() if k in kind_spec(kind).by_name or k in extra or k == "epcis_event_id"
            }
            writes.append(_Write("record", index, kind, key, self.payload(kind, _clean(payload), path)))
        return writes

    def allow(self, action: Action, state: _LotState, where: str) -> None:
        """The rulebook's verdict on ``action`` for the lot as this document has left it so far; a refusal
        names the EPCIS field."""
        subject = policy.Subject(
            actor_roles=frozenset(self.org.roles),
            status=policy.Status(state.status),
            is_custodian=state.custodian_id == self.org.id,
            is_pending_custodian=state.pending_id == self.org.id,
            recall_affected=policy.RULES[action].refuse_recall_affected
            and state.row is not None
            and lot_service.recall_affected(self.ctx, state.row),
            actor=self.org.name,
            lot=state.lot_code,
        )
        verdict = policy.decide(action, subject)
        if not verdict.allowed:
            assert verdict.error is not None
            raise verdict.error(f"{where}: {verdict.message}", field=where, code=verdict.code)

    def _ship(
        self, index: int, event: Mapping[str, Any], path: str, items: list[Any], when: str, extra: dict[str, Any]
    ) -> list[_Write]:
        self.role(lot_service.HANDLER_ROLES, "ship lots")
        sources = self._party_list(event, "sourceList", path)
        destinations = self._party_list(event, "destinationList", path)
        from_gln = sources.get("location") or self._place(event, path, own=True)
        self.location(from_gln, f"{path}.sourceList", own=True)
        to_gln = destinations.get("location")
        if not to_gln:
            raise InvalidInput(
                f"{path}.destinationList: shipping needs a destination of type location (the ship-to GLN)",
                field=f"{path}.destinationList",
                code="missing_destination",
            )
        to_location = self.location(to_gln, f"{path}.destinationList")
        recipient = to_location.organisation
        party = destinations.get("owning_party") or destinations.get("possessing_party")
        if party:
            recipient = self.location(party, f"{path}.destinationList").organisation
        if recipient.id == self.org.id or not set(recipient.roles) & set(_RECEIVING_ROLES):
            raise InvalidInput(
                f"{path}.destinationList: {recipient.name} cannot receive lots (needs a processor, "
                "distributor or retailer role, and must be another organisation)",
                field=f"{path}.destinationList",
                code="recipient_cannot_receive",
            )
        reference = self._reference(event, extra, None)
        writes = []
        for key, element, where in items:
            state = self.lot(key, where)
            self.allow(Action.SHIP, state, where)
            quantity, unit = self._quantity(element, where, state.unit)
            payload = (
                extra
                | reference
                | {
                    "from_gln": from_gln,
                    "to_gln": to_gln,
                    "ship_date": when,
                    "quantity": quantity or format_quantity(state.quantity),
                    "unit": unit,
                    "epcis_event_id": event.get("eventID"),
                }
            )
            payload = self.payload(EventKind.SHIPPING, _clean(payload), path)
            state.status, state.pending_id, state.offer = "in_transit", recipient.id, payload
            writes.append(_Write("offer", index, EventKind.SHIPPING, key, payload, to=recipient))
        return writes

    def _receive(
        self, index: int, event: Mapping[str, Any], path: str, items: list[Any], when: str, extra: dict[str, Any]
    ) -> list[_Write]:
        self.role(_RECEIVING_ROLES, "receive lots")
        to_gln = self._place(event, path, own=True)
        sources = self._party_list(event, "sourceList", path)
        writes = []
        for key, element, where in items:
            state = self.lot(key, where)
            self.allow(Action.ACCEPT, state, where)
            offer = state.offer or {}
            quantity, unit = self._quantity(element, where, offer.get("unit") or state.unit)
            payload = (
                {k: offer[k] for k in ("tlc_source_gln", "product_description") if k in offer}
                | extra
                | self._reference(event, extra, offer)
                | {
                    "from_gln": sources.get("location") or offer.get("from_gln"),
                    "to_gln": to_gln,
                    "receive_date": when,
                    "quantity": quantity or offer.get("quantity") or format_quantity(state.quantity),
                    "unit": unit,
                    "epcis_event_id": event.get("eventID"),
                }
            )
            payload = self.payload(EventKind.RECEIVING, _clean(payload), path)
            state.status, state.custodian_id, state.pending_id, state.offer = "active", self.org.id, None, None
            writes.append(_Write("accept", index, EventKind.RECEIVING, key, payload))
        return writes

    def _sensors(
        self, index: int, event: Mapping[str, Any], path: str, items: list[Any], extra: dict[str, Any]
    ) -> list[_Write]:
        readings: list[dict[str, Any]] = []
        device = None
        for j, element in enumerate(event.get("sensorElementList") or []):
            metadata = element.get("sensorMetadata") or {}
            device = device or metadata.get("deviceID") or metadata.get("lotline:sensorId")
            by_time: dict[str, dict[str, Any]] = {}
            for k, report in enumerate(element.get("sensorReport") or []):
                where = f"{path}.sensorElementList[{j}].sensorReport[{k}]"
                measure = bare_word(report.get("type"), "measurementtype") or ""
                measure = measure.removeprefix("gs1:")
                taken = report.get("time") or metadata.get("time")
                if report.get("value") is None or not taken:
                    continue
                if measure == "Temperature":
                    by_time.setdefault(taken, {})["temperature_c"] = _celsius(report, where)
                elif measure == "RelativeHumidity":
                    by_time.setdefault(taken, {})["humidity"] = str(report["value"])
            for taken, values in by_time.items():
                if "temperature_c" in values:
                    readings.append({"taken_at": taken, **values})
        if not readings:
            raise Unsupported(
                "sensorElementList holds no individual temperature readings (Temperature with value "
                "and time); aggregated reports (minValue/maxValue) cannot be anchored reading by "
                "reading",
                field=f"{path}.sensorElementList",
            )
        try:
            checked = [lot_service.validate_reading(r, i) for i, r in enumerate(readings)]
        except InvalidInput as exc:
            raise InvalidInput(
                f"{path}.sensorElementList: {exc.message}", field=f"{path}.sensorElementList", code=exc.code
            ) from None
        gln = None
        if isinstance(event.get("readPoint"), Mapping):
            gln = parse_gln_uri(event["readPoint"]["id"], f"{path}.readPoint.id")
            self.location(gln, f"{path}.readPoint.id")
        sensor_id = str(extra.get("sensor_id") or device or "")[:100] or None  # the store keeps 100 characters
        writes = []
        for key, _element, where in items:
            state = self.lot(key, where)
            self.allow(Action.ANCHOR, state, where)
            # the readings date the anchor (period_end); the report's own time is kept for the export
            payload = _anchor_payload(checked, sensor_id, gln) | _clean(
                {"epcis_event_id": event.get("eventID"), "epcis_event_time": local_time(event, path)}
            )
            self.payload(EventKind.SENSOR_ANCHOR, payload, path)
            writes.append(_Write("anchor", index, EventKind.SENSOR_ANCHOR, key, payload, readings=checked))
        return writes

    def _transformation(self, index: int, event: Mapping[str, Any], path: str) -> _Write:
        self.role(_CREATOR_ROLES, "transform lots")
        for name in ("inputEPCList", "outputEPCList"):
            for j, uri in enumerate(event.get(name) or []):
                parse_lot_uri(uri, f"{path}.{name}[{j}]")
                raise InvalidInput(
                    f"{path}.{name}[{j}]: list lots in {name.replace('EPC', 'Quantity')} with their quantity",
                    field=f"{path}.{name}[{j}]",
                    code="missing_quantity",
                )
        gln = self._place(event, path, own=True)
        when = local_time(event, path)
        extra = dict(event["lotline:kde"]) if isinstance(event.get("lotline:kde"), Mapping) else {}
        inputs: list[tuple[tuple[str, str], Decimal, str, str]] = []
        for j, element in enumerate(event.get("inputQuantityList") or []):
            where = f"{path}.inputQuantityList[{j}]"
            key = parse_lot_uri(element.get("epcClass"), f"{where}.epcClass")
            state = self.lot(key, f"{where}.epcClass")
            self.allow(Action.USE_AS_INPUT, state, where)
            quantity, _unit = self._quantity(element, where, state.unit)
            amount = Decimal(quantity) if quantity else state.quantity
            state.quantity = check_consumption(state.quantity, amount, field=f"{where}.quantity", unit=state.unit)
            inputs.append((key, amount, state.unit, where))
        if not inputs:
            raise InvalidInput(
                f"{path}.inputQuantityList: a transformation needs its input lots", field=f"{path}.inputQuantityList"
            )
        outputs = []
        for j, element in enumerate(event.get("outputQuantityList") or []):
            where = f"{path}.outputQuantityList[{j}]"
            key = parse_lot_uri(element.get("epcClass"), f"{where}.epcClass")
            product = self.new_lot(key, f"{where}.epcClass")
            quantity, unit = self._quantity(element, where, product.unit)
            if quantity is None:
                raise InvalidInput(
                    f"{where}: a new lot needs its quantity", field=f"{where}.quantity", code="missing_quantity"
                )
            if any(key == k for k, *_ in inputs) or any(key == o["key"] for o in outputs):
                raise InvalidInput(f"{where}: lot {key[1]} is listed twice", field=where)
            outputs.append({"key": key, "quantity": quantity, "unit": unit, "product": product})
        if not outputs:
            raise InvalidInput(
                f"{path}.outputQuantityList: a transformation needs its output lots", field=f"{path}.outputQuantityList"
            )
        shares = _split(inputs, [Decimal(o["quantity"]) for o in outputs], path)
        for output, share in zip(outputs, shares, strict=True):
            payload = {k: v for k, v in extra.items() if k not in ("inputs", "quantity", "unit")} | {
                "location_gln": gln,
                "transformation_date": when,
                "quantity": output["quantity"],
                "unit": output["unit"],
                "epcis_event_id": event.get("eventID"),
                "inputs": [
                    {"gtin": k[0], "lot_code": k[1], "quantity": format_quantity(q), "unit": u} for k, q, u in share
                ],
            }
            output["payload"] = self.payload(EventKind.TRANSFORMATION, _clean(payload), path)
            output["inputs"] = [(k, format_quantity(q)) for k, q, _u in share]
            key = output["key"]
            self.lots[key] = _LotState(
                key[0],
                key[1],
                output["product"],
                "active",
                self.org.id,
                None,
                Decimal(output["quantity"]),
                output["unit"],
            )
        return _Write("transform", index, EventKind.TRANSFORMATION, outputs=outputs)


def _split(
    inputs: list[tuple[tuple[str, str], Decimal, str, str]], sizes: list[Decimal], path: str
) -> list[list[tuple[tuple[str, str], Decimal, str]]]:
    """Each output's share of each input, in proportion to the outputs' quantities (EPCIS states what a
    transformation consumed in total; Lotline records what each output lot was made from)."""
    total = sum(sizes)
    shares: list[list[tuple[tuple[str, str], Decimal, str]]] = [[] for _ in sizes]
    for key, amount, unit, where in inputs:
        left = amount
        for j, size in enumerate(sizes):
            part = (
                left
                if j == len(sizes) - 1
                else (amount * size / total).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
            )
            left -= part
            if part <= 0:
                raise InvalidInput(
                    f"{where}: too little of lot {key[1]} to share between {len(sizes)} output lots",
                    field=where,
                    code="invalid_quantity",
                )
            shares[j].append((key, part, unit))
    return shares


def _celsius(report: Mapping[str, Any], where: str) -> str:
    value = Decimal(str(report["value"]))
    uom = report.get("uom") or "CEL"
    if uom == "FAH":
        value = (value - 32) * 5 / 9
    elif uom == "KEL":
        value = value - Decimal("273.15")
    elif uom != "CEL":
        raise InvalidInput(f"{where}.uom: temperature must be in CEL, FAH or KEL, got {uom!r}", field=f"{where}.uom")
    return lot_service.format_quantity_signed(value.quantize(Decimal("0.001")).normalize())


def _anchor_payload(readings: list[dict[str, Any]], sensor_id: str | None, gln: str | None) -> dict[str, Any]:
    rows = sorted(readings, key=lambda r: r["taken_at"])
    temps = [Decimal(r["temperature_c"]) for r in rows]
    return _clean(
        {
            "merkle_root": hex32(merkle_root([payload_hash(r) for r in rows])),
            "reading_count": len(rows),
            "period_start": rows[0]["taken_at"],
            "period_end": rows[-1]["taken_at"],
            "min_temperature_c": lot_service.format_quantity_signed(min(temps)),
            "max_temperature_c": lot_service.format_quantity_signed(max(temps)),
            "sensor_id": sensor_id,
            "location_gln": gln,
        }
    )


def _clean(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None and v != ""}


def _creation_kind(cte: object, step: str | None) -> EventKind | None:
    if isinstance(cte, str) and cte.upper() in EventKind.__members__:
        kind = EventKind[cte.upper()]
        return kind if kind in CREATION_KINDS and kind is not EventKind.TRANSFORMATION else None
    return _CREATION_BY_STEP.get(step or "")


def local_time(event: Mapping[str, Any], path: str) -> str:
    """The event's time as an ISO date-time in its own time zone (``eventTimeZoneOffset``)."""
    text = str(event.get("eventTime", ""))
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{path}.eventTime: {text!r} is not an ISO 8601 date-time", field=f"{path}.eventTime", code="invalid_date"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{path}.eventTime: needs a UTC offset", field=f"{path}.eventTime", code="invalid_date")
    offset = str(event.get("eventTimeZoneOffset") or "+00:00")
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.astimezone(zone).isoformat()


# ================================================================== capture: writing


class _Writer:
    """Builds the store rows and contract calls of planned writes; sends them in as few transactions as
    the gas limit allows (one multicall per ``MAX_CALLS_PER_TRANSACTION`` calls)."""

    def __init__(self, ctx: Ctx, org: Organisation, *, send: bool = True) -> None:
        self.ctx = ctx
        self.org = org
        self.send = send  # False: build the rows and calls only (a rehearsal, rolled back by the caller)
        self.calls: list[tuple[str, list[Any]]] = []
        self.events: list[Event] = []
        self.transactions: list[str] = []
        self.written: list[tuple[int, Event]] = []

    def lot(self, key: tuple[str, str]) -> Lot:
        return self.ctx.session.scalars(select(Lot).where(Lot.gtin == key[0], Lot.lot_code == key[1])).one()

    def _add(self, index: int, event: Event, call: tuple[str, list[Any]]) -> None:
        self.ctx.session.flush()  # event ids follow call order: the indexer matches logs to rows by it
        self.calls.append(call)
        self.events.append(event)
        self.written.append((index, event))
        if len(self.calls) >= MAX_CALLS_PER_TRANSACTION:
            self.flush()

    def flush(self) -> None:
        if not self.send:
            self.calls, self.events = [], []
        elif self.calls:
            result = execute(self.ctx, self.org, self.calls, self.events)
            self.transactions.append(result.tx_hash)
            self.calls, self.events = [], []

    def write(self, w: _Write) -> None:
        getattr(self, "_" + w.action)(w)

    def _create(self, w: _Write) -> None:
        assert w.key is not None
        lot, _ = lot_service.plan_lot(self.ctx, self.org, lot_service.NewLot(w.key[0], w.key[1], w.quantity, w.unit))
        event = lot_service.plan_event(self.ctx, lot, self.org, w.kind, w.payload)
        lot_service.set_origin(self.ctx, lot, w.kind, event.payload)
        self._add(w.index, event, Call.create_lot(lot.gtin, lot.lot_code, [], w.kind, event.payload_hash))

    def _record(self, w: _Write) -> None:
        assert w.key is not None
        lot = self.lot(w.key)
        event = lot_service.plan_event(self.ctx, lot, self.org, w.kind, w.payload)
        self._add(w.index, event, Call.record_events(lot.lot_id, [w.kind], [event.payload_hash]))

    def _offer(self, w: _Write) -> None:
        assert w.key is not None and w.to is not None
        lot = self.lot(w.key)
        event = lot_service.plan_event(self.ctx, lot, self.org, EventKind.SHIPPING, w.payload, recipient=w.to)
        self._add(w.index, event, Call.offer_custody(lot.lot_id, w.to.chain_address, event.payload_hash))

    def _accept(self, w: _Write) -> None:
        assert w.key is not None
        lot = self.lot(w.key)
        event = lot_service.plan_event(self.ctx, lot, self.org, EventKind.RECEIVING, w.payload)
        self._add(w.index, event, Call.on_lot("acceptCustody", lot.lot_id, event.payload_hash))

    def _transform(self, w: _Write) -> None:
        batch = uuid.uuid4().hex
        if len(self.calls) + len(w.outputs) > MAX_CALLS_PER_TRANSACTION:
            self.flush()  # the outputs of one transformation go in one transaction
        for output in w.outputs:
            key = output["key"]
            lot, _ = lot_service.plan_lot(
                self.ctx, self.org, lot_service.NewLot(key[0], key[1], output["quantity"], output["unit"])
            )
            event = lot_service.plan_event(
                self.ctx, lot, self.org, EventKind.TRANSFORMATION, output["payload"], batch_id=batch
            )
            inputs = []
            for input_key, amount in output["inputs"]:
                source = self.lot(input_key)
                quantity = Decimal(amount)
                self.ctx.session.add(LotInput(output_lot=lot, input_lot=source, quantity=quantity, unit=source.unit))
                source.quantity -= quantity
                inputs.append(source.lot_id)
            self._add(
                w.index,
                event,
                Call.create_lot(lot.gtin, lot.lot_code, inputs, EventKind.TRANSFORMATION, event.payload_hash),
            )

    def _anchor(self, w: _Write) -> None:
        assert w.key is not None
        lot = self.lot(w.key)
        rows = sorted(w.readings, key=lambda r: r["taken_at"])
        event, call = lot_service.plan_sensor_batch(self.ctx, self.org, lot, rows, w.payload)
        self._add(w.index, event, call)


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _rehearse(ctx: Ctx, org: Organisation, plans: list[_Write], results: list[EventResult]) -> None:
    """Build every row of the planned writes inside a savepoint, then roll it back: the invariants that need
    the rows (quantities on hand, sites, dates; ``lots._event``) are asked of every event before the first
    transaction is sent, so a refusal in a later batch can never leave earlier batches written. The first
    refused event is marked rejected in ``results``."""
    writer = _Writer(ctx, org, send=False)
    savepoint = ctx.session.begin_nested()
    try:
        for plan in plans:
            try:
                writer.write(plan)
            except LotlineError as exc:
                result = results[plan.index]
                result.status, result.code, result.reason = "rejected", exc.code, exc.message
                result.field = exc.field or f"epcisBody.eventList[{plan.index}]"
                break  # later writes may build on this one's rows
    finally:
        savepoint.rollback()


def capture(ctx: Ctx, org: Organisation, document: object) -> CaptureResult:
    """Capture an EPCIS 2.0 document for ``org``: validate, map and check every event, then record them.

    Raises InvalidInput (schema), CaptureRejected (422, a result per event) before anything is written.
    """
    doc = validate_document(document)
    events = doc["epcisBody"]["eventList"]
    if not events:
        raise InvalidInput(
            "epcisBody.eventList: the document holds no events", field="epcisBody.eventList", code="epcis_empty"
        )
    planner = _Planner(ctx, org)
    results: list[EventResult] = []
    plans: list[_Write] = []
    for index, event in enumerate(events):
        result = EventResult(index, event.get("type"), event.get("eventID"), event.get("bizStep"))
        results.append(result)
        try:
            plans += planner.plan(index, event)
        except Unsupported as exc:
            result.status, result.code, result.reason, result.field = "unsupported", exc.code, exc.message, exc.field
        except LotlineError as exc:
            result.status, result.code, result.reason = "rejected", exc.code, exc.message
            result.field = exc.field or f"epcisBody.eventList[{index}]"
    if not [r for r in results if r.status in ("rejected", "unsupported")]:
        _rehearse(ctx, org, plans, results)
    bad = [r for r in results if r.status in ("rejected", "unsupported")]
    if bad:
        first = bad[0]
        raise CaptureRejected(
            f"{len(bad)} of {len(results)} event(s) cannot be captured, so nothing was recorded; first: "
            f"event {first.index}: {first.reason}",
            results,
            field=first.field,
        )
    writer = _Writer(ctx, org)
    for plan in plans:
        writer.write(plan)
    writer.flush()
    for index, event in writer.written:
        item = event.lot
        results[index].writes.append(
            {
                "kind": EventKind(int(event.kind)).name.lower(),
                "gtin": item.gtin,
                "lot_code": item.lot_code,
                "event_id": event.id,
                "status": event.status,
                "tx_hash": event.tx_hash,
            }
        )
    for result in results:
        result.status = "captured"
    return CaptureResult(results, writer.transactions)
