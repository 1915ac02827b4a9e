"""EPCIS 2.0 vocabulary shared by export and capture: the JSON Schema and document validation, GS1 Digital
Link and URN identifiers, units of measure, CBV business steps, dispositions and transaction types."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import jsonschema_rs

from supply_chain.domain.errors import InvalidInput, LotlineError
from supply_chain.domain.identifiers import GS1Key, NotGS1Key, digital_link, parse_gs1_uri
from supply_chain.domain.kinds import EventKind

GS1_RESOLVER = "https://id.gs1.org"
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
LOTLINE_NAMESPACE = "urn:lotline:epcis:"
CONTEXT: list[Any] = [EPCIS_CONTEXT, {"lotline": LOTLINE_NAMESPACE}]
EVENT_ID_NAMESPACE = uuid.UUID("6f0f2a52-3c1e-4f43-9e55-0c1d0b3c7a11")
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
BT_BY_WORD = {v: k for k, v in BT_TYPES.items()} | {
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
    # CBV has no step for the end of a recall; the lot stays recalled, so the disposition says so.
    EventKind.RECALL_ENDED: (None, "recalled"),
}
OUTCOME_DISPOSITION = {"pass": "conformant", "fail": "non_conformant"}
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


def _date_time_ok(value: str) -> bool:
    try:
        return _is_date_time(value)
    except ValueError:
        return False


@cache
def _fast_validator() -> Any:
    """The same schema compiled by ``jsonschema_rs`` (Rust), with the same format rules: date-time checked by
    ``_is_date_time``, "uri" not checked. It only decides whether a document is valid; a refusal is worded by
    ``jsonschema`` (``_validator``), which also has the last word when the two disagree (Python's ``$`` in a
    pattern also matches before a final newline, Rust's does not)."""
    return jsonschema_rs.validator_for(
        schema(), formats={"date-time": _date_time_ok, "uri": lambda _value: True}, validate_formats=True
    )


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
    try:
        valid = _fast_validator().is_valid(document)
    except ValueError:  # text it cannot take (a lone surrogate): jsonschema decides
        valid = False
    if valid:
        return document
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


def _key(uri: object, field: str) -> GS1Key:
    """The GS1 key ``uri`` names (``identifiers.parse_gs1_uri``: EPC URNs through ``epcpy``, Digital Links
    on any host). A URI that is no GS1 key at all is Unsupported (stored, not mapped); a GS1 key written
    wrongly is InvalidInput; both name ``field``."""
    if not isinstance(uri, str):
        raise InvalidInput(f"{field}: must be a URI", field=field, code="invalid_identifier")
    if uri.startswith("urn:epc:idpat:"):
        raise Unsupported(f"{field}: {uri} is a class pattern and names no single lot or place", field=field)
    try:
        return parse_gs1_uri(uri, field)
    except NotGS1Key as exc:
        raise Unsupported(exc.message, field=field) from None


def parse_lot_uri(uri: str, field: str) -> tuple[str, str]:
    """(gtin14, lot code) of a lot-level identifier: an LGTIN URN or a GS1 Digital Link with /10/.

    Serialised items (SGTIN, Digital Link with /21/), class patterns, GTINs without a lot and logistic units
    (SSCC) raise Unsupported: Lotline traces lots (FSMA 204 traceability lots), not single items or pallets.
    """
    key = _key(uri, field)
    if key.scheme == "lgtin" and key.lot is not None:
        return key.key, key.lot
    if key.scheme == "sgtin":
        raise Unsupported(
            f"{field}: {uri} names one serialised item (SGTIN); Lotline traces lots - send the lot "
            "in quantityList as an LGTIN or a Digital Link with /10/{lot}",
            field=field,
        )
    if key.scheme == "gtin":
        raise Unsupported(f"{field}: {uri} names a product (GTIN) but no lot (/10/)", field=field)
    if key.scheme == "sscc":
        raise Unsupported(
            f"{field}: {uri} is a logistic unit (SSCC); Lotline does not track pallets or cases, only the lots in them",
            field=field,
        )
    raise Unsupported(f"{field}: {uri} is not a GS1 lot identifier (LGTIN URN or Digital Link)", field=field)


def parse_gln_uri(uri: str, field: str) -> str:
    """The GLN of an SGLN/PGLN URN or a Digital Link with /414/ (location) or /417/ (party); an SGLN's
    extension is ignored."""
    key = _key(uri, field)
    if key.scheme in ("sgln", "gln", "pgln"):
        return key.key
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
