"""Key data elements (KDEs) per event kind, after FSMA 204 (21 CFR 1.1325-1.1350), and field visibility.

Each event's payload is a JSON object. ``validate_payload`` checks the required and optional fields of its
kind and returns a normalised copy - the copy that is stored and hashed - so the same facts always hash the
same way: GLNs and GTINs parsed (GTIN-14), lot codes checked, dates in ISO 8601 extended form, quantities
as decimal strings ('12.5', never a float), text trimmed and free of control and bidirectional override
characters (``domain/text.py``). Optional fields given as null or "" are dropped.
Fields the kind does not define are kept as they are (notes, prices, ...) and are private unless listed in
``EXTRA_FIELD_VISIBILITY``.

Dates: ``YYYY-MM-DD`` or a date-time with a UTC offset (``2024-05-01T08:30:00+02:00``, ``...Z``); a
date-time without offset is refused because the moment it names is unknown. Date-times are normalised by
Python's ``isoformat()`` (``Z`` becomes ``+00:00``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from . import invariants as _invariants  # the limits (unit length, temperature range) live in the rulebook
from .errors import InvalidInput, describe
from .hashing import bytes32, ensure_canonicalisable, hex32
from .identifiers import parse_gln, parse_gtin, parse_lot_code
from .kinds import EventKind, InspectionOutcome
from .lineage import format_quantity, parse_quantity, parse_recall_class
from .text import check_json_text, check_text


class Visibility(StrEnum):
    """Who may see a payload field: anyone (consumer page), the network's organisations, or its author."""

    PUBLIC = "public"
    CONSORTIUM = "consortium"
    PRIVATE = "private"

    @property
    def rank(self) -> int:
        return {"public": 0, "consortium": 1, "private": 2}[self.value]


class FieldType(StrEnum):
    """How a payload field is validated and normalised."""

    GLN = "gln"
    GTIN = "gtin"
    LOT_CODE = "lot_code"
    DATE = "date"  # a date, or a date-time with UTC offset
    DATETIME = "datetime"  # a date-time with UTC offset
    QUANTITY = "quantity"  # decimal > 0, stored as a string
    UNIT = "unit"  # unit of measure, 1-invariants.MAX_UNIT_LENGTH characters
    TEXT = "text"  # 1-500 characters, one line (domain/text.py: no control or bidi override characters)
    LONG_TEXT = "long_text"  # 1-4000 characters, may hold line breaks and tabs
    OUTCOME = "outcome"  # pass / fail / conditional
    RECALL_CLASS = "recall_class"  # I / II / III
    COUNT = "count"  # integer >= 1
    HASH32 = "hash32"  # 0x + 64 hex digits (keccak256)
    SHA256 = "sha256"  # 64 hex digits, no 0x (a document's SHA-256)
    TEMPERATURE = "temperature"  # degrees Celsius within the invariants' range, stored as a decimal string
    INPUTS = "inputs"  # list of {gtin, lot_code, quantity, unit}


@dataclass(frozen=True)
class FieldSpec:
    """One key data element of an event kind."""

    name: str
    type: FieldType
    required: bool
    visibility: Visibility
    description: str
    item_fields: tuple[FieldSpec, ...] = ()


@dataclass(frozen=True)
class KindSpec:
    """The payload of one event kind: its fields, which of them dates the event, and its legal basis."""

    kind: EventKind
    date_field: str
    fields: tuple[FieldSpec, ...]
    basis: str = ""
    by_name: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def optional(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if not f.required)


P, C, X = Visibility.PUBLIC, Visibility.CONSORTIUM, Visibility.PRIVATE
T = FieldType


def _req(
    name: str, type_: FieldType, vis: Visibility, desc: str, items: tuple[FieldSpec, ...] = ()
) -> FieldSpec:
    return FieldSpec(name, type_, True, vis, desc, items)


def _opt(name: str, type_: FieldType, vis: Visibility, desc: str) -> FieldSpec:
    return FieldSpec(name, type_, False, vis, desc)


_QUANTITY = _req("quantity", T.QUANTITY, C, "quantity of food, in its unit of measure")
_UNIT = _req("unit", T.UNIT, C, "unit of measure (kg, lb, case, ...)")
_REF_TYPE = "reference_document_type"
_REF_NUMBER = "reference_document_number"
_REF_TYPE_DESC = "reference document type (bill of lading, invoice, ASN, ...)"
_REF_NUMBER_DESC = "reference document number"
_OPTIONAL_REFS = (_opt(_REF_TYPE, T.TEXT, C, _REF_TYPE_DESC), _opt(_REF_NUMBER, T.TEXT, C, _REF_NUMBER_DESC))
_REQUIRED_REFS = (_req(_REF_TYPE, T.TEXT, C, _REF_TYPE_DESC), _req(_REF_NUMBER, T.TEXT, C, _REF_NUMBER_DESC))
_COMMODITY = "commodity (product description, e.g. 'romaine lettuce')"

INPUT_ITEM_FIELDS = (
    _req("gtin", T.GTIN, P, "GTIN of the input lot"),
    _req("lot_code", T.LOT_CODE, P, "lot code of the input lot"),
    _req("quantity", T.QUANTITY, C, "quantity of the input lot used"),
    _req("unit", T.UNIT, C, "unit of measure of that quantity"),
)

KIND_SPECS: dict[EventKind, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            EventKind.HARVESTING,
            "harvest_date",
            (
                _req("location_gln", T.GLN, P, "the farm where the food was harvested"),
                _req("harvest_date", T.DATE, P, "date of harvesting"),
                _req("commodity", T.TEXT, P, _COMMODITY),
                _opt("variety", T.TEXT, P, "variety"),
                _QUANTITY,
                _UNIT,
                _opt("field_name", T.TEXT, C, "field or other growing area name"),
                _opt("container_name", T.TEXT, C, "container name (sprouts, aquaculture)"),
                _opt("immediate_subsequent_recipient_gln", T.GLN, C, "where the food goes next"),
                *_OPTIONAL_REFS,
            ),
            "21 CFR 1.1325(a)",
        ),
        KindSpec(
            EventKind.COOLING,
            "cooling_date",
            (
                _req("location_gln", T.GLN, P, "where the food was cooled"),
                _req("cooling_date", T.DATE, P, "date of cooling"),
                _QUANTITY,
                _UNIT,
                _opt("commodity", T.TEXT, P, _COMMODITY),
                _opt("variety", T.TEXT, P, "variety"),
                _opt("harvest_location_gln", T.GLN, P, "the farm where the food was harvested"),
                _opt("immediate_subsequent_recipient_gln", T.GLN, C, "where the food goes next"),
                *_OPTIONAL_REFS,
            ),
            "21 CFR 1.1325(b)",
        ),
        KindSpec(
            EventKind.INITIAL_PACKING,
            "packing_date",
            (
                _req("location_gln", T.GLN, P, "the packer's location"),
                _req("packing_date", T.DATE, P, "date of initial packing"),
                _QUANTITY,
                _UNIT,
                _opt("commodity", T.TEXT, P, _COMMODITY),
                _opt("variety", T.TEXT, P, "variety"),
                _opt("product_description", T.TEXT, P, "description of the packed food"),
                _opt("harvest_location_gln", T.GLN, P, "the farm where the food was harvested"),
                _opt("harvest_date", T.DATE, P, "date of harvesting"),
                _opt("field_name", T.TEXT, C, "field or other growing area name"),
                _opt("harvester_business_name", T.TEXT, C, "business name of the harvester"),
                _opt("cooling_location_gln", T.GLN, P, "where the food was cooled"),
                _opt("cooling_date", T.DATE, P, "date of cooling"),
                *_OPTIONAL_REFS,
            ),
            "21 CFR 1.1330",
        ),
        KindSpec(
            EventKind.FIRST_LAND_BASED_RECEIVING,
            "landing_date",
            (
                _req("location_gln", T.GLN, P, "where the food was received on land"),
                _req("landing_date", T.DATE, P, "date the food was received"),
                _QUANTITY,
                _UNIT,
                _req(
                    "harvest_area", T.TEXT, P, "harvest location(s) of the trip, e.g. 'FAO 27.4.b North Sea'"
                ),
                _opt("vessel_name", T.TEXT, P, "name of the fishing vessel"),
                _opt("harvest_date_start", T.DATE, P, "first day of the trip's harvest"),
                _opt("harvest_date_end", T.DATE, P, "last day of the trip's harvest"),
                _opt("commodity", T.TEXT, P, "species or product description"),
                *_OPTIONAL_REFS,
            ),
            "21 CFR 1.1335",
        ),
        KindSpec(
            EventKind.SHIPPING,
            "ship_date",
            (
                _req("from_gln", T.GLN, P, "ship-from location"),
                _req("to_gln", T.GLN, P, "ship-to location"),
                _req("ship_date", T.DATE, P, "date shipped"),
                _QUANTITY,
                _UNIT,
                *_REQUIRED_REFS,
                _opt(
                    "tlc_source_gln",
                    T.GLN,
                    P,
                    "traceability lot code source (where the lot code was assigned)",
                ),
                _opt("product_description", T.TEXT, P, "description of the food"),
                _opt("carrier", T.TEXT, C, "carrier or transporter"),
            ),
            "21 CFR 1.1340",
        ),
        KindSpec(
            EventKind.RECEIVING,
            "receive_date",
            (
                _req("from_gln", T.GLN, P, "immediate previous source (ship-from location)"),
                _req("to_gln", T.GLN, P, "receiving location"),
                _req("receive_date", T.DATE, P, "date received"),
                _QUANTITY,
                _UNIT,
                *_REQUIRED_REFS,
                _opt(
                    "tlc_source_gln",
                    T.GLN,
                    P,
                    "traceability lot code source (where the lot code was assigned)",
                ),
                _opt("product_description", T.TEXT, P, "description of the food"),
            ),
            "21 CFR 1.1345",
        ),
        KindSpec(
            EventKind.TRANSFORMATION,
            "transformation_date",
            (
                _req("location_gln", T.GLN, P, "where the food was transformed"),
                _req("transformation_date", T.DATE, P, "date transformation was completed"),
                _req(
                    "inputs",
                    T.INPUTS,
                    P,
                    "the lots used, each {gtin, lot_code, quantity, unit}",
                    INPUT_ITEM_FIELDS,
                ),
                _QUANTITY,
                _UNIT,
                _opt("product_description", T.TEXT, P, "description of the new food"),
                *_OPTIONAL_REFS,
            ),
            "21 CFR 1.1350",
        ),
        KindSpec(
            EventKind.INSPECTION,
            "inspection_date",
            (
                _req("outcome", T.OUTCOME, P, "pass, fail or conditional"),
                _req("inspection_date", T.DATE, P, "date of the inspection or sampling"),
                _req("inspector_name", T.TEXT, X, "name of the person who inspected"),
                _opt("inspection_body", T.TEXT, P, "certification body or laboratory"),
                _opt("standard", T.TEXT, P, "scheme or method (GLOBALG.A.P., ISO 6579-1, ...)"),
                _opt("findings", T.LONG_TEXT, C, "what was found"),
                _opt("certificate_sha256", T.SHA256, P, "SHA-256 of the certificate or lab report file"),
                _opt("location_gln", T.GLN, P, "where the inspection took place"),
            ),
            "Lotline",
        ),
        KindSpec(
            EventKind.HOLD,
            "date",
            (_req("reason", T.TEXT, C, "why the lot is held"), _req("date", T.DATE, P, "date of the hold")),
            "Lotline",
        ),
        KindSpec(
            EventKind.RELEASE,
            "date",
            (_req("reason", T.TEXT, C, "why the hold is lifted"), _req("date", T.DATE, P, "date of release")),
            "Lotline",
        ),
        KindSpec(
            EventKind.RECALL,
            "date",
            (
                _req("reason", T.TEXT, P, "the hazard, e.g. 'Listeria monocytogenes'"),
                _req("recall_class", T.RECALL_CLASS, P, "FDA class I, II or III"),
                _req("date", T.DATE, P, "date of the recall"),
                _req("instructions", T.LONG_TEXT, P, "what consumers should do"),
                _opt("contact", T.TEXT, P, "phone or e-mail for questions"),
                _opt("notice_url", T.TEXT, P, "link to the public recall notice"),
                _opt("source_gtin", T.GTIN, P, "GTIN of the lot the recall started from (a lot made from it)"),
                _opt("source_lot_code", T.LOT_CODE, P, "lot code of the lot the recall started from"),
            ),
            "Lotline",
        ),
        KindSpec(
            EventKind.SENSOR_ANCHOR,
            "period_end",
            (
                _req("merkle_root", T.HASH32, P, "Merkle root of the readings (docs/hashing.md)"),
                _req("reading_count", T.COUNT, P, "number of readings under the root"),
                _req("period_start", T.DATETIME, P, "time of the first reading"),
                _req("period_end", T.DATETIME, P, "time of the last reading"),
                _opt("min_temperature_c", T.TEMPERATURE, P, "lowest temperature read, degrees Celsius"),
                _opt("max_temperature_c", T.TEMPERATURE, P, "highest temperature read, degrees Celsius"),
                _opt("sensor_id", T.TEXT, C, "sensor or logger identifier"),
                _opt("location_gln", T.GLN, P, "where the readings were taken"),
            ),
            "Lotline",
        ),
        KindSpec(
            EventKind.CLOSE,
            "date",
            (
                _req("reason", T.TEXT, P, "sold out, consumed, destroyed, ..."),
                _req("date", T.DATE, P, "date the lot was closed"),
            ),
            "Lotline",
        ),
        KindSpec(
            EventKind.CUSTODY_REJECTED,
            "date",
            (_req("reason", T.TEXT, C, "why custody was refused"), _req("date", T.DATE, P, "date")),
            "Lotline",
        ),
        KindSpec(
            EventKind.CUSTODY_CANCELLED,
            "date",
            (_req("reason", T.TEXT, C, "why the transfer was cancelled"), _req("date", T.DATE, P, "date")),
            "Lotline",
        ),
        KindSpec(
            EventKind.OBSERVATION,
            "date",
            (_req("note", T.LONG_TEXT, X, "what was observed"), _req("date", T.DATE, P, "date")),
            "Lotline",
        ),
        KindSpec(
            EventKind.RECALL_ENDED,
            "date",
            (
                _req("reason", T.LONG_TEXT, P, "why the recall is ended (product removed or corrected, ...)"),
                _req("date", T.DATE, P, "date the recall was ended"),
                _opt("recall_class", T.RECALL_CLASS, P, "FDA class of the recall that is ended"),
                _opt("effectiveness", T.TEXT, C, "how many notified holders answered, and what they accounted for"),
            ),
            "Lotline",
        ),
    )
}

assert set(KIND_SPECS) == set(EventKind), "every event kind needs a payload spec"

EXTRA_FIELD_VISIBILITY: dict[str, Visibility] = {
    "price": C,
    "unit_price": C,
    "total_price": C,
    "currency": C,
    "note": X,
    "notes": X,
    "comment": X,
}
"""Visibility of fields no kind defines; anything not listed here is private."""

del P, C, X, T


# --- parsing helpers ------------------------------------------------------------------------------


def parse_kind(value: object) -> EventKind:
    """Return the EventKind for a member, its number or its name (any case: 'shipping', 'SHIPPING')."""
    if isinstance(value, EventKind):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return EventKind(value)
        except ValueError:
            pass
    elif isinstance(value, str) and _is_small_number(value):
        return parse_kind(int(value.strip()))
    elif isinstance(value, str):
        name = value.strip().upper().replace("-", "_").replace(" ", "_")
        if name in EventKind.__members__:
            return EventKind[name]
    raise InvalidInput(f"kind: unknown event kind {describe(value)}", field="kind", code="invalid_kind")


def _is_small_number(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²', which ``int`` refuses) and short enough for ``int``."""
    text = text.strip()
    return text.isascii() and text.isdigit() and len(text) <= 30


def kind_spec(kind: EventKind | int | str) -> KindSpec:
    """Return the payload spec of an event kind."""
    return KIND_SPECS[parse_kind(kind)]


def parse_outcome(value: object, field: str = "outcome") -> InspectionOutcome:
    """Parse an inspection outcome: 'pass'/'fail'/'conditional' (any case), the enum, or its number."""
    if isinstance(value, InspectionOutcome):
        return value
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value in {o.value for o in InspectionOutcome}
    ):
        return InspectionOutcome(value)
    if isinstance(value, str) and value.strip().upper() in InspectionOutcome.__members__:
        return InspectionOutcome[value.strip().upper()]
    raise InvalidInput(
        f"{field}: must be pass, fail or conditional, got {describe(value)}", field=field, code="invalid_outcome"
    )


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?", re.I)


def parse_when(value: object, field: str = "date", *, datetime_only: bool = False) -> str:
    """Normalise an ISO 8601 date ('2024-05-01') or date-time with UTC offset; return its ISO text."""
    expected = (
        "a date-time with UTC offset"
        if datetime_only
        else "a date (YYYY-MM-DD) or a date-time with UTC offset"
    )
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        if datetime_only:
            raise InvalidInput(f"{field}: must be {expected}, got a date", field=field, code="invalid_date")
        return value.isoformat()
    elif isinstance(value, str):
        text = value.strip()
        if _DATE_RE.fullmatch(text) and not datetime_only:
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError as exc:
                raise InvalidInput(
                    f"{field}: {text!r} is not a valid date ({exc})", field=field, code="invalid_date"
                ) from None
        if not _DATETIME_RE.fullmatch(text):
            raise InvalidInput(
                f"{field}: must be {expected} in ISO 8601 (e.g. 2024-05-01T08:30:00+02:00), got {text!r}",
                field=field,
                code="invalid_date",
            )
        try:
            moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(
                f"{field}: {text!r} is not a valid date-time ({exc})", field=field, code="invalid_date"
            ) from None
    else:
        raise InvalidInput(
            f"{field}: must be {expected}, got {type(value).__name__}", field=field, code="invalid_date"
        )
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidInput(
            f"{field}: a date-time needs a UTC offset (e.g. +02:00 or Z), got {moment.isoformat()!r}",
            field=field,
            code="invalid_date",
        )
    if offset % timedelta(minutes=1):
        # isoformat() would write +01:00:30, which this function (and ISO 8601 offsets) refuses on re-reading
        raise InvalidInput(
            f"{field}: a UTC offset is whole minutes (+HH:MM), got {moment.isoformat()!r}",
            field=field,
            code="invalid_date",
        )
    return moment.isoformat()


def instant(iso: str) -> datetime:
    """Return an aware datetime for a normalised date or date-time (a date means 00:00 UTC that day)."""
    if _DATE_RE.fullmatch(iso):
        return datetime.combine(date.fromisoformat(iso), datetime.min.time(), tzinfo=UTC)
    return datetime.fromisoformat(iso)


def _text(value: object, field: str, max_len: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: must be text, got {type(value).__name__}", field=field)
    text = value.strip()
    if not text:
        raise InvalidInput(f"{field}: is required", field=field)
    if len(text) > max_len:
        raise InvalidInput(f"{field}: must be at most {max_len} characters, got {len(text)}", field=field)
    ensure_canonicalisable(text, field)
    return check_text(text, field, multiline=multiline)


def _reraise(parse: Callable[[Any], Any], value: object, field: str) -> Any:
    try:
        return parse(value)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}", field=field, code=exc.code) from None


def _count(value: object, field: str) -> int:
    if isinstance(value, str) and _is_small_number(value):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{field}: must be a whole number of at least 1, got {describe(value)}", field=field)
    return int(ensure_canonicalisable(value, field))


def _sha256(value: object, field: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InvalidInput(
            f"{field}: must be 64 hex digits (a SHA-256), got {value!r}", field=field, code="invalid_hash"
        )
    return text


def _temperature(value: object, field: str) -> str:
    number = _invariants.check_temperature(value, field)
    return "0" if number == 0 else format_quantity(number)


def _inputs(value: object, field: str, items: tuple[FieldSpec, ...]) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput(f"{field}: must be a non-empty list of input lots", field=field)
    out: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, item in enumerate(value):
        path = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{path}: must be an object with gtin, lot_code, quantity, unit", field=path)
        normalised = _fields(item, items, path)
        key = (normalised["gtin"], normalised["lot_code"])
        if key in seen:
            raise InvalidInput(
                f"{path}: lot {key[0]}/{key[1]} is already listed as {field}[{seen[key]}]", field=path
            )
        seen[key] = i
        out.append(normalised)
    return out


def _normalise(spec: FieldSpec, value: object, path: str) -> Any:
    match spec.type:
        case FieldType.GLN:
            return _reraise(parse_gln, value, path)
        case FieldType.GTIN:
            return _reraise(parse_gtin, value, path)
        case FieldType.LOT_CODE:
            return _reraise(parse_lot_code, value, path)
        case FieldType.DATE:
            return parse_when(value, path)
        case FieldType.DATETIME:
            return parse_when(value, path, datetime_only=True)
        case FieldType.QUANTITY:
            return format_quantity(parse_quantity(value, path))
        case FieldType.UNIT:
            return _text(value, path, _invariants.MAX_UNIT_LENGTH)
        case FieldType.TEXT:
            return _text(value, path, 500)
        case FieldType.LONG_TEXT:
            return _text(value, path, 4000, multiline=True)
        case FieldType.OUTCOME:
            return parse_outcome(value, path).name.lower()
        case FieldType.RECALL_CLASS:
            return parse_recall_class(value, path).value
        case FieldType.COUNT:
            return _count(value, path)
        case FieldType.HASH32:
            return hex32(bytes32(value, path))
        case FieldType.SHA256:
            return _sha256(value, path)
        case FieldType.TEMPERATURE:
            return _temperature(value, path)
        case FieldType.INPUTS:
            return _inputs(value, path, spec.item_fields)
    raise AssertionError(f"unhandled field type {spec.type}")  # pragma: no cover


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fields(payload: Mapping[Any, Any], specs: tuple[FieldSpec, ...], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = {s.name for s in specs}
    for spec in specs:
        value = payload.get(spec.name)
        if _absent(value):
            if spec.required:
                raise InvalidInput(
                    f"{path}.{spec.name}: is required ({spec.description})", field=f"{path}.{spec.name}"
                )
            continue
        out[spec.name] = _normalise(spec, value, f"{path}.{spec.name}")
    for key, value in payload.items():
        if key in known:
            continue
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput(f"{path}: field names must be non-empty text, got {key!r}", field=path)
        check_text(key, f"{path}.{key}")
        out[key] = check_json_text(ensure_canonicalisable(value, f"{path}.{key}"), f"{path}.{key}")
    return out


def _cross_checks(kind: EventKind, out: dict[str, Any]) -> None:
    def order(first: str, last: str) -> None:
        if first in out and last in out and instant(out[last]) < instant(out[first]):
            raise InvalidInput(
                f"payload.{last}: must not be before {first} ({out[first]})", field=f"payload.{last}"
            )

    if kind in (EventKind.SHIPPING, EventKind.RECEIVING) and out["from_gln"] == out["to_gln"]:
        raise InvalidInput("payload.to_gln: must differ from from_gln", field="payload.to_gln")
    if kind == EventKind.SENSOR_ANCHOR:
        order("period_start", "period_end")
        low, high = out.get("min_temperature_c"), out.get("max_temperature_c")
        if low is not None and high is not None and Decimal(high) < Decimal(low):
            raise InvalidInput(
                f"payload.max_temperature_c: must not be below min_temperature_c ({low})",
                field="payload.max_temperature_c",
            )
    if kind == EventKind.FIRST_LAND_BASED_RECEIVING:
        order("harvest_date_start", "harvest_date_end")
        order("harvest_date_end", "landing_date")
    if kind == EventKind.INITIAL_PACKING:
        order("harvest_date", "packing_date")
        order("cooling_date", "packing_date")


def validate_payload(kind: EventKind | int | str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Check an event payload against its kind's KDEs and return the normalised copy to store and hash.

    Raises InvalidInput naming the field as ``payload.<name>`` (``payload.inputs[1].lot_code`` for items).
    The result validates to itself: ``validate_payload(k, validate_payload(k, p)) == validate_payload(k, p)``.
    """
    spec = kind_spec(kind)
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"payload: must be a JSON object, got {type(payload).__name__}", field="payload")
    out = _fields(payload, spec.fields, "payload")
    _cross_checks(spec.kind, out)
    return out


def payload_problems(
    kind: EventKind | int | str, payload: Mapping[str, Any], may_be_missing: Iterable[str] = ()
) -> list[InvalidInput]:
    """Every field of ``payload`` that ``validate_payload`` would refuse, not only the first: a form shows
    them all at once. ``may_be_missing`` names required fields the caller fills in later (a lot's quantity
    and unit). The cross-field checks (dates in order, ...) run only when every field is right on its own."""
    spec = kind_spec(kind)
    optional = set(may_be_missing)
    problems: list[InvalidInput] = []
    out: dict[str, Any] = {}
    for field_spec in spec.fields:
        value = payload.get(field_spec.name)
        path = f"payload.{field_spec.name}"
        if _absent(value):
            if field_spec.required and field_spec.name not in optional:
                problems.append(InvalidInput(f"{path}: is required ({field_spec.description})", field=path))
            continue
        try:
            out[field_spec.name] = _normalise(field_spec, value, path)
        except InvalidInput as exc:
            problems.append(exc)
    if not problems and all(name in out for name in spec.required):
        try:
            _cross_checks(spec.kind, out)
        except InvalidInput as exc:
            problems.append(exc)
    return problems


def event_date(kind: EventKind | int | str, payload: Mapping[str, Any]) -> str | None:
    """Return the date (or date-time) that dates the event, from a normalised payload."""
    value = payload.get(kind_spec(kind).date_field)
    return value if isinstance(value, str) else None


# --- visibility -----------------------------------------------------------------------------------


def field_visibility(kind: EventKind | int | str, field_name: str) -> Visibility:
    """Return who may see ``field_name`` of an event of ``kind``; fields the kind does not define are
    looked up in EXTRA_FIELD_VISIBILITY and are otherwise private."""
    spec = kind_spec(kind).by_name.get(field_name)
    if spec is not None:
        return spec.visibility
    return EXTRA_FIELD_VISIBILITY.get(field_name, Visibility.PRIVATE)


def _project(
    payload: Mapping[str, Any], specs: tuple[FieldSpec, ...], level: Visibility, extras: bool
) -> dict[str, Any]:
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {}
    for key, value in payload.items():
        spec = by_name.get(key)
        if spec is None:
            vis = EXTRA_FIELD_VISIBILITY.get(key, Visibility.PRIVATE) if extras else Visibility.PRIVATE
        else:
            vis = spec.visibility
        if vis.rank > level.rank:
            continue
        if spec is not None and spec.item_fields and isinstance(value, list):
            value = [
                _project(item, spec.item_fields, level, extras=False) if isinstance(item, Mapping) else item
                for item in value
            ]
        out[key] = value
    return out


def visible_view(
    kind: EventKind | int | str, payload: Mapping[str, Any], level: Visibility
) -> dict[str, Any]:
    """Return the fields of ``payload`` an audience with ``level`` may see (public < consortium < private).

    List items are filtered too: a transformation's public view keeps each input's gtin and lot_code but
    not its quantity.
    """
    return _project(payload, kind_spec(kind).fields, Visibility(level), extras=True)


def public_view(kind: EventKind | int | str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return only the public fields of ``payload`` (what the consumer page shows)."""
    return visible_view(kind, payload, Visibility.PUBLIC)
