"""JSON Schemas (2020-12, as OpenAPI 3.1 uses them) of the API's request and response bodies.

Request bodies are validated against these very schemas (``spec.check``) before a view runs, and the OpenAPI
document publishes them; the key data elements of each event kind are generated from the domain's
``KIND_SPECS``, so the documented KDEs are the validated ones.
"""

from __future__ import annotations

from typing import Any

from supply_chain.domain.events import KIND_SPECS, FieldSpec, FieldType
from supply_chain.domain.identifiers import LOT_CODE_PUNCTUATION
from supply_chain.domain.kinds import FREE_KINDS, EventKind
from supply_chain.store.models import LOCATION_KINDS, LOT_STATUSES, ROLES, TOKEN_SCOPES

API_DESCRIPTION = """\
Every dashboard action is also an API call. Authenticate with `Authorization: Bearer llt_...` (tokens are
created per organisation, read or write scope); the organisation's role rules apply exactly as in the
dashboard. Errors are JSON: `{"error": code, "message": text, "field": name}`. Lists are paginated with
`limit` and `cursor` (pass the `next_cursor` of the previous page). POST requests accept an `Idempotency-Key`
header: a retried request with the same key and body returns the first answer without writing again.
Lots are addressed as `/lots/{gtin}/{lot}` (GTIN-8/12/13/14, lot code as on the label; a `/` in a lot code
may be sent as is or as `%2F`). See docs/api.md, docs/epcis.md and docs/fsma204.md."""

_LOT_CHARS = "".join("\\" + c if c in "\\]^-[" else c for c in LOT_CODE_PUNCTUATION)  # a character class
LOT_PATTERN = f"^[0-9A-Za-z{_LOT_CHARS}]{{1,20}}$"

GTIN = {
    "type": "string",
    "minLength": 1,
    "maxLength": 20,
    "description": "GTIN-8, -12, -13 or -14 (check digit verified); answered as GTIN-14",
    "examples": ["00614141000012"],
}
GLN = {
    "type": "string",
    "minLength": 1,
    "maxLength": 20,
    "description": "13-digit GLN (check digit verified)",
    "examples": ["0614141000111"],
}
LOT_CODE = {
    "type": "string",
    "minLength": 1,
    "maxLength": 40,
    "description": "Lot code, GS1 AI (10): 1-20 characters of GS1 character set 82",
    "examples": ["GV-ROM-2611A"],
}
QUANTITY = {
    "type": ["string", "number"],
    "description": "Decimal > 0 with at most 6 decimals ('12.5')",
    "examples": ["2000"],
}
UNIT = {"type": "string", "minLength": 1, "maxLength": 16, "description": "Unit of measure (kg, lb, case, ...)"}
DATE = {
    "type": "string",
    "maxLength": 40,
    "description": "ISO 8601 date (2024-05-01) or date-time with UTC offset (2024-05-01T08:30:00+02:00)",
}
TEXT = {"type": "string", "maxLength": 500}
NULLABLE_STRING = {"type": ["string", "null"]}
REASON = {"type": "string", "minLength": 1, "maxLength": 500}

PATH_PARAMS: dict[str, dict[str, Any]] = {
    "gtin": {"type": "string", "pattern": "^[0-9]{8,14}$", "description": "GTIN of the lot's product, 8-14 digits"},
    "lot": {
        "type": "string",
        "pattern": LOT_PATTERN,
        "description": "The lot code: 1-20 characters of GS1 character set 82 (AI 10)",
    },
    "token_id": {"type": "string", "pattern": "^[0-9]{1,9}$", "description": "The token's id, digits"},
}

_FIELD_TYPES: dict[FieldType, dict[str, Any]] = {
    FieldType.GLN: GLN,
    FieldType.GTIN: GTIN,
    FieldType.LOT_CODE: LOT_CODE,
    FieldType.DATE: DATE,
    FieldType.DATETIME: {"type": "string", "maxLength": 40, "description": "ISO 8601 date-time with UTC offset"},
    FieldType.QUANTITY: QUANTITY,
    FieldType.UNIT: {"type": "string", "maxLength": 32},
    FieldType.TEXT: TEXT,
    FieldType.LONG_TEXT: {"type": "string", "maxLength": 4000},
    FieldType.OUTCOME: {"type": "string", "enum": ["pass", "fail", "conditional"]},
    FieldType.RECALL_CLASS: {"type": "string", "enum": ["I", "II", "III"]},
    FieldType.COUNT: {"type": "integer", "minimum": 1},
    FieldType.HASH32: {"type": "string", "maxLength": 66},
    FieldType.SHA256: {"type": "string", "maxLength": 64},
    FieldType.TEMPERATURE: QUANTITY,
}

DEFAULTED = frozenset({"quantity", "unit"})
"""KDEs the API fills in when left out: the lot's current quantity and unit."""


def _field(spec: FieldSpec) -> dict[str, Any]:
    if spec.type is FieldType.INPUTS:
        return {
            "type": "array",
            "minItems": 1,
            "description": spec.description,
            "items": {
                "type": "object",
                "properties": {f.name: _field(f) for f in spec.item_fields},
                "required": [f.name for f in spec.item_fields if f.required],
            },
        }
    base = dict(_FIELD_TYPES[spec.type])
    base["description"] = f"{spec.description} ({spec.visibility.value})"
    return base


def kde_schema(
    kind: EventKind,
    *,
    optional: frozenset[str] = DEFAULTED,
    exclude: frozenset[str] = frozenset(),
    all_optional: bool = False,
) -> dict[str, Any]:
    """The payload schema of an event kind: its KDEs with their visibility; other fields are allowed and
    private."""
    spec = KIND_SPECS[kind]
    fields = [f for f in spec.fields if f.name not in exclude]
    required = [] if all_optional else [f.name for f in fields if f.required and f.name not in optional]
    schema: dict[str, Any] = {
        "type": "object",
        "description": f"Key data elements of {kind.name.lower()} ({spec.basis}). Fields are marked public, "
        "consortium or private; extra fields are kept and private.",
        "properties": {f.name: _field(f) for f in fields},
    }
    if required:
        schema["required"] = required
    return schema


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref(item)}, "next_cursor": NULLABLE_STRING},
    }


ORG_REF = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
}
LOT_REF = {
    "type": "object",
    "required": ["gtin", "lot_code"],
    "properties": {"gtin": {"type": "string"}, "lot_code": {"type": "string"}},
}
_REASON_BODY = {"type": "object", "required": ["reason"], "properties": {"reason": REASON, "date": DATE}}
_CREATE_KINDS = ["harvesting", "initial_packing", "first_land_based_receiving"]

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Stable error code, e.g. invalid_gtin"},
            "message": {"type": "string", "description": "What is wrong, naming the rule"},
            "field": {"type": "string", "description": "The field (or header, query parameter)"},
            "events": {
                "type": "array",
                "items": _ref("CaptureEventResult"),
                "description": "EPCIS capture: the result of every event",
            },
        },
    },
    "OrganisationRef": ORG_REF,
    "LotRef": LOT_REF,
    "Organisation": {
        "type": "object",
        "required": ["id", "name", "roles", "chain_address"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string", "enum": list(ROLES)}},
            "chain_address": {"type": "string"},
            "gs1_company_prefix": NULLABLE_STRING,
        },
    },
    "Me": {
        "type": "object",
        "required": ["organisation", "token"],
        "properties": {
            "organisation": _ref("Organisation"),
            "token": {
                "type": "object",
                "required": ["id", "name", "scope"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "scope": {"type": "string", "enum": list(TOKEN_SCOPES)},
                },
            },
        },
    },
    "Product": {
        "type": "object",
        "required": ["gtin", "name", "unit", "organisation"],
        "properties": {
            "gtin": {"type": "string"},
            "name": {"type": "string"},
            "category": NULLABLE_STRING,
            "unit": {"type": "string"},
            "on_food_traceability_list": {"type": "boolean"},
            "organisation": ORG_REF,
        },
    },
    "NewProduct": {
        "type": "object",
        "required": ["gtin", "name"],
        "additionalProperties": False,
        "properties": {
            "gtin": GTIN,
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "category": {"type": "string", "maxLength": 100},
            "unit": UNIT,
            "on_food_traceability_list": {"type": "boolean", "default": False},
        },
    },
    "Location": {
        "type": "object",
        "required": ["gln", "name", "kind", "organisation"],
        "properties": {
            "gln": {"type": "string"},
            "name": {"type": "string"},
            "address": NULLABLE_STRING,
            "latitude": {"type": ["number", "null"]},
            "longitude": {"type": ["number", "null"]},
            "kind": {"type": "string"},
            "organisation": ORG_REF,
        },
    },
    "NewLocation": {
        "type": "object",
        "required": ["gln", "name"],
        "additionalProperties": False,
        "properties": {
            "gln": GLN,
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "address": {"type": "string", "maxLength": 1000},
            "latitude": {"type": "number", "minimum": -90, "maximum": 90},
            "longitude": {"type": "number", "minimum": -180, "maximum": 180},
            "kind": {"type": "string", "enum": list(LOCATION_KINDS)},
        },
    },
    "Lot": {
        "type": "object",
        "required": [
            "gtin",
            "lot_code",
            "lot_id",
            "digital_link",
            "product",
            "status",
            "quantity",
            "unit",
            "creator",
            "custodian",
            "event_count",
            "head_hash",
            "inputs",
            "verification",
        ],
        "properties": {
            "gtin": {"type": "string"},
            "lot_code": {"type": "string"},
            "lot_id": {"type": "string", "description": "On-chain id: keccak256(abi.encode(gtin14, lot code))"},
            "digital_link": {"type": "string", "description": "GS1 Digital Link of the label's QR code"},
            "product": {
                "type": "object",
                "required": ["gtin", "name"],
                "properties": {"gtin": {"type": "string"}, "name": {"type": "string"}},
            },
            "status": {"type": "string", "enum": list(LOT_STATUSES)},
            "recalled_via": {
                "type": ["object", "null"],
                "description": "For a lot recalled because a lot it was made from was recalled: that lot",
                "required": ["gtin", "lot_code"],
                "properties": {"gtin": {"type": "string"}, "lot_code": {"type": "string"}},
            },
            "quantity": {"type": "string", "description": "What is left after transformations"},
            "initial_quantity": {"type": "string"},
            "unit": {"type": "string"},
            "creator": ORG_REF,
            "custodian": ORG_REF,
            "pending_custodian": {"anyOf": [ORG_REF, {"type": "null"}]},
            "event_count": {"type": "integer"},
            "head_hash": {"type": "string"},
            "harvest_date": NULLABLE_STRING,
            "pack_date": NULLABLE_STRING,
            "origin_gln": NULLABLE_STRING,
            "inputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["gtin", "lot_code", "quantity"],
                    "properties": {
                        "gtin": {"type": "string"},
                        "lot_code": {"type": "string"},
                        "quantity": {"type": "string"},
                        "unit": {"type": "string"},
                    },
                },
            },
            "verification": {
                "type": "object",
                "required": ["state"],
                "properties": {"state": {"type": "string"}, "detail": NULLABLE_STRING, "verified_at": NULLABLE_STRING},
            },
            "created_at": {"type": "string"},
        },
    },
    "NewLot": {
        "type": "object",
        "required": ["gtin", "lot_code", "kind", "quantity", "payload"],
        "additionalProperties": False,
        "properties": {
            "gtin": GTIN,
            "lot_code": LOT_CODE,
            "kind": {"type": "string", "enum": _CREATE_KINDS},
            "quantity": QUANTITY,
            "unit": UNIT,
            "payload": {
                "type": "object",
                "description": "The KDEs of `kind`: see HarvestingKDEs, "
                "InitialPackingKDEs, FirstLandBasedReceivingKDEs",
            },
        },
    },
    "Event": {
        "type": "object",
        "required": [
            "id",
            "seq",
            "kind",
            "label",
            "actor",
            "occurred_at",
            "status",
            "payload",
            "payload_hash",
            "tx_hash",
            "lot",
        ],
        "properties": {
            "id": {"type": "integer"},
            "seq": {"type": ["integer", "null"]},
            "kind": {"type": "string", "enum": [k.name.lower() for k in EventKind]},
            "label": {"type": "string"},
            "actor": ORG_REF,
            "occurred_at": {"type": "string"},
            "recorded_at": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "confirmed", "failed"]},
            "payload": {"type": "object", "description": "The KDEs this organisation may see"},
            "payload_hash": {"type": "string"},
            "tx_hash": NULLABLE_STRING,
            "block_number": {"type": ["integer", "null"]},
            "failure_reason": NULLABLE_STRING,
            "lot": LOT_REF,
        },
    },
    "NewEvent": {
        "type": "object",
        "required": ["kind", "payload"],
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": [k.name.lower() for k in sorted(FREE_KINDS)]},
            "payload": {"type": "object", "description": "The KDEs of `kind` (CoolingKDEs, ...)"},
        },
    },
    "LotAction": {
        "type": "object",
        "required": ["lot", "event"],
        "properties": {"lot": _ref("Lot"), "event": _ref("Event")},
    },
    "Shipment": {
        "type": "object",
        "required": ["payload"],
        "additionalProperties": False,
        "properties": {
            "to": {
                "type": "integer",
                "description": "Receiving organisation's id; by default the organisation that owns payload.to_gln",
            },
            "payload": _ref("ShippingKDEs"),
        },
    },
    "Receipt": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"payload": _ref("ReceivingKDEs")},
        "description": "Receiving KDEs; any left out are taken from the shipment (from_gln, to_gln, "
        "reference document, quantity, unit, TLC source) and receive_date defaults to today.",
    },
    "Reason": {**_REASON_BODY, "additionalProperties": False},
    "NewInspection": {
        "type": "object",
        "required": ["outcome", "payload"],
        "additionalProperties": False,
        "properties": {
            "outcome": {"type": "string", "enum": ["pass", "fail", "conditional"]},
            "payload": _ref("InspectionKDEs"),
            "notes": {"type": "string", "maxLength": 4000},
            "certificate": {
                "type": "object",
                "required": ["filename", "content_type", "content_base64"],
                "additionalProperties": False,
                "properties": {
                    "filename": {"type": "string", "minLength": 1, "maxLength": 255},
                    "content_type": {"type": "string", "enum": ["application/pdf", "image/png", "image/jpeg"]},
                    "content_base64": {"type": "string", "maxLength": 7_100_000},
                },
            },
        },
    },
    "NewRecall": {
        "type": "object",
        "required": ["reason", "recall_class", "instructions"],
        "additionalProperties": False,
        "properties": {
            "reason": REASON,
            "recall_class": {"type": "string", "enum": ["I", "II", "III"]},
            "instructions": {"type": "string", "minLength": 1, "maxLength": 4000},
            "date": DATE,
            "contact": TEXT,
        },
    },
    "Readings": {
        "type": "object",
        "required": ["readings"],
        "additionalProperties": False,
        "properties": {
            "readings": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10_000,
                "items": {
                    "type": "object",
                    "required": ["taken_at", "temperature_c"],
                    "properties": {"taken_at": DATE, "temperature_c": QUANTITY, "humidity": QUANTITY},
                },
            },
            "sensor_id": {"type": "string", "maxLength": 100},
            "location_gln": GLN,
        },
    },
    "NewTransformation": {
        "type": "object",
        "required": ["location_gln", "transformation_date", "outputs"],
        "additionalProperties": False,
        "properties": {
            "location_gln": GLN,
            "transformation_date": DATE,
            "product_description": TEXT,
            "outputs": {
                "type": "array",
                "minItems": 1,
                "maxItems": 50,
                "items": {
                    "type": "object",
                    "required": ["gtin", "lot_code", "quantity", "inputs"],
                    "additionalProperties": False,
                    "properties": {
                        "gtin": GTIN,
                        "lot_code": LOT_CODE,
                        "quantity": QUANTITY,
                        "unit": UNIT,
                        "inputs": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 100,
                            "items": {
                                "type": "object",
                                "required": ["gtin", "lot_code", "quantity"],
                                "additionalProperties": False,
                                "properties": {"gtin": GTIN, "lot_code": LOT_CODE, "quantity": QUANTITY},
                            },
                        },
                    },
                },
            },
        },
    },
    "Transformation": {
        "type": "object",
        "required": ["lots"],
        "properties": {"lots": {"type": "array", "items": _ref("Lot")}},
    },
    "Trace": {
        "type": "object",
        "required": ["lot", "direction", "lots", "organisations"],
        "properties": {
            "lot": LOT_REF,
            "direction": {"type": "string", "enum": ["backward", "forward"]},
            "lots": {
                "type": "array",
                "items": {
                    "type": "object",
                    "description": "A lot of the trace; one the caller may not see is `redacted` (depth, "
                    "`label` and recall reach only).",
                    "required": ["depth", "affected_by_recall"],
                    "properties": {
                        "redacted": {"type": "boolean"},
                        "label": {"type": "string"},
                        "gtin": {"type": "string"},
                        "lot_code": {"type": "string"},
                        "depth": {"type": "integer"},
                        "status": {"type": "string"},
                        "product": {"type": "string"},
                        "quantity": {"type": "string"},
                        "unit": {"type": "string"},
                        "creator": {"type": "string"},
                        "custodian": {"type": "string"},
                        "recalled": {"type": "boolean"},
                        "affected_by_recall": {"type": "boolean"},
                        "inputs": {"type": "array"},
                        "locations": {"type": "array"},
                        "recall_sources": {"type": "array"},
                    },
                },
            },
            "organisations": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Verification": {
        "type": "object",
        "required": ["lot", "state", "detail", "checked_events"],
        "properties": {
            "lot": LOT_REF,
            "state": {"type": "string", "enum": ["verified", "tampered", "pending", "unverifiable"]},
            "detail": {"type": "string"},
            "checked_events": {"type": "integer"},
            "bad_event_id": {"type": ["integer", "null"]},
        },
    },
    "EPCISDocument": {
        # No constraints of its own: capture checks the whole document, its root too, against GS1's schema and
        # answers 400 epcis_schema_invalid with the failing path (docs/epcis.md), never a generic code.
        "description": "An EPCIS 2.0 JSON-LD document (`@context`, `type` EPCISDocument, `schemaVersion`, "
        "`creationDate`, `epcisBody.eventList`); capture validates it against GS1's EPCIS 2.0 JSON Schema "
        "(https://ref.gs1.org/standards/epcis/) and names the failing path (400 `epcis_schema_invalid`).",
    },
    "CaptureEventResult": {
        "type": "object",
        "required": ["index", "status"],
        "properties": {
            "index": {"type": "integer"},
            "type": NULLABLE_STRING,
            "eventID": NULLABLE_STRING,
            "bizStep": NULLABLE_STRING,
            "status": {"type": "string", "enum": ["captured", "accepted", "rejected", "unsupported"]},
            "code": NULLABLE_STRING,
            "reason": NULLABLE_STRING,
            "field": NULLABLE_STRING,
            "lotline_events": {"type": "array", "items": {"type": "object"}},
        },
    },
    "CaptureResult": {
        "type": "object",
        "required": ["captured", "transactions", "events"],
        "properties": {
            "captured": {"type": "integer"},
            "transactions": {"type": "array", "items": {"type": "string"}},
            "events": {"type": "array", "items": _ref("CaptureEventResult")},
        },
    },
    "FsmaRecords": {
        "type": "object",
        "required": ["columns", "rows"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "object"}},
            "rows": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    },
    "Token": {
        "type": "object",
        "required": ["id", "name", "scope", "created_at", "last_used_at", "revoked_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "scope": {"type": "string", "enum": list(TOKEN_SCOPES)},
            "created_at": {"type": "string"},
            "last_used_at": NULLABLE_STRING,
            "revoked_at": NULLABLE_STRING,
        },
    },
    "NewToken": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "scope": {"type": "string", "enum": list(TOKEN_SCOPES), "default": "read"},
        },
    },
    "CreatedToken": {
        "allOf": [_ref("Token")],
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string", "description": "The token itself: shown once, store it now"}},
    },
    "OrganisationPage": _page("Organisation"),
    "ProductPage": _page("Product"),
    "LocationPage": _page("Location"),
    "LotPage": _page("Lot"),
    "EventPage": _page("Event"),
    "TokenPage": _page("Token"),
}

for _kind in EventKind:
    _name = "".join(part.title() for part in _kind.name.split("_")) + "KDEs"
    COMPONENTS[_name] = kde_schema(
        _kind,
        all_optional=_kind is EventKind.RECEIVING,
        exclude=frozenset({"outcome"}) if _kind is EventKind.INSPECTION else frozenset(),
    )
