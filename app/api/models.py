"""The pydantic v2 models of ``/api/v1``: request bodies, query and path parameters, and answers.

spectree (``app/api/spec.py``) validates every request against these models and builds the OpenAPI 3.1
document from them, so what is documented is what is checked. Nothing here is a second copy of a rule:

- the key data elements of every event kind are generated from the domain's ``KIND_SPECS`` (``kde_model``);
- lot statuses, roles and recall classes are the domain's enums (``policy.Status``, ``policy.Role``,
  ``RecallClass``); event kinds, inspection outcomes, token scopes, location kinds, certificate types and
  trace directions are read from the tables that define them.

Request models refuse unknown fields (a typo is a ``400 unknown_field``) and are strict about JSON types
(``"5"`` is not a number, ``1`` is not a boolean), as the API always was. KDE payloads keep unknown fields:
they are stored as private fields. Answers are documented, not re-validated at runtime.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    create_model,
)

from supply_chain.domain.delivery import MAX_URL_LENGTH
from supply_chain.domain.events import KIND_SPECS, FieldSpec, FieldType, KindSpec
from supply_chain.domain.identifiers import LOT_CODE_PUNCTUATION
from supply_chain.domain.invariants import MAX_UNIT_LENGTH
from supply_chain.domain.kinds import CREATION_KINDS, FREE_KINDS, EventKind, InspectionOutcome
from supply_chain.domain.lineage import RecallClass
from supply_chain.domain.policy import Role, Status
from supply_chain.services.epcis import named as named_queries
from supply_chain.services.lots import CERTIFICATE_TYPES
from supply_chain.services.trace import DIRECTIONS
from supply_chain.store.models import CAPTURE_JOB_STATUSES, EVENT_STATUSES, LOCATION_KINDS, TOKEN_SCOPES

MAX_PAGE = 200
DEFAULT_PAGE = 50


def _one_of(values: Any) -> Any:
    """``Literal[...]`` of a table's values: documented as a string enum, validated as one."""
    return Literal[tuple(values)]


def kind_name(kind: EventKind) -> str:
    """An event kind as the API spells it: ``first_land_based_receiving``."""
    return kind.name.lower()


EventKindName = _one_of(kind_name(k) for k in EventKind)
CreationKind = _one_of(kind_name(k) for k in sorted(CREATION_KINDS - {EventKind.TRANSFORMATION}))
FreeKind = _one_of(kind_name(k) for k in sorted(FREE_KINDS))
Outcome = _one_of(o.name.lower() for o in InspectionOutcome)
Scope = _one_of(TOKEN_SCOPES)
CaptureJobStatus = _one_of(CAPTURE_JOB_STATUSES)
LocationKind = _one_of(LOCATION_KINDS)
EventStatus = _one_of(EVENT_STATUSES)
Direction = _one_of(DIRECTIONS)
CertificateType = _one_of(CERTIFICATE_TYPES)


# ------------------------------------------------------------------ the base models


def _tidy(schema: dict[str, Any]) -> None:
    """Leave out what pydantic adds but the API does not mean: property titles (the name says it) and
    ``default: null`` of optional fields that may be left out but not sent as null."""
    if "description" in schema:  # a docstring: one paragraph
        schema["description"] = " ".join(schema["description"].split())
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if "default" in prop and prop["default"] is None:
            del prop["default"]


class Schema(BaseModel):
    """An answer: documented; fields the document does not list may be added later."""

    model_config = ConfigDict(json_schema_extra=_tidy)


class Request(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_tidy)


class Query(BaseModel):
    """Query parameters: parameters the operation does not take are ignored."""

    model_config = ConfigDict(json_schema_extra=_tidy)


# ------------------------------------------------------------------ field types


def _quantity(value: Any) -> Any:
    """A quantity or temperature as sent: a string or a JSON number, checked by the domain afterwards."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be of type string or number")
    return value


def _number_schema(description: str, examples: list[str] | None = None) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": ["string", "number"], "description": description}
    if examples:
        schema["examples"] = examples
    return WithJsonSchema(schema)


Quantity = Annotated[
    Any, PlainValidator(_quantity), _number_schema("Decimal > 0 with at most 6 decimals ('12.5')", ["2000"])
]
Gtin = Annotated[
    str,
    Field(
        min_length=1,
        max_length=20,
        description="GTIN-8, -12, -13 or -14 (check digit verified); answered as GTIN-14",
        examples=["00614141000012"],
    ),
]
Gln = Annotated[
    str,
    Field(min_length=1, max_length=20, description="13-digit GLN (check digit verified)", examples=["0614141000111"]),
]
LotCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        description="Lot code, GS1 AI (10): 1-20 characters of GS1 character set 82",
        examples=["GV-ROM-2611A"],
    ),
]
Unit = Annotated[
    str, Field(min_length=1, max_length=MAX_UNIT_LENGTH, description="Unit of measure (kg, lb, case, ...)")
]
Date = Annotated[
    str,
    Field(
        max_length=40,
        description="ISO 8601 date (2024-05-01) or date-time with UTC offset (2024-05-01T08:30:00+02:00)",
    ),
]
Text = Annotated[str, Field(max_length=500)]
ReasonText = Annotated[str, Field(min_length=1, max_length=500)]

_KDE_TYPES: dict[FieldType, Any] = {
    FieldType.GLN: Gln,
    FieldType.GTIN: Gtin,
    FieldType.LOT_CODE: LotCode,
    FieldType.DATE: Date,
    FieldType.DATETIME: Annotated[str, Field(max_length=40, description="ISO 8601 date-time with UTC offset")],
    FieldType.QUANTITY: Quantity,
    FieldType.UNIT: Annotated[str, Field(max_length=32)],  # as published; the domain's invalid_unit is the rule
    FieldType.TEXT: Text,
    FieldType.LONG_TEXT: Annotated[str, Field(max_length=4000)],
    FieldType.OUTCOME: Outcome,
    FieldType.RECALL_CLASS: RecallClass,
    FieldType.COUNT: Annotated[StrictInt, Field(ge=1)],
    FieldType.HASH32: Annotated[str, Field(max_length=66)],
    FieldType.SHA256: Annotated[str, Field(max_length=64)],
    FieldType.TEMPERATURE: Quantity,
}


# ------------------------------------------------------------------ key data elements, from KIND_SPECS

DEFAULTED = frozenset({"quantity", "unit"})
"""KDEs the API fills in when left out: the lot's current quantity and unit."""


class KDEs(BaseModel):
    """The payload of an event: its kind's key data elements; other fields are kept and private."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)


def kde_model_name(kind: EventKind) -> str:
    """``HarvestingKDEs``, ``FirstLandBasedReceivingKDEs``, ..."""
    return "".join(part.title() for part in kind.name.split("_")) + "KDEs"


def _kde_type(owner: str, spec: FieldSpec) -> Any:
    """The annotation of one KDE: its field type's, described with its visibility; a list of input lots is a
    list of a model of their own fields."""
    if spec.type is FieldType.INPUTS:
        item = create_model(  # type: ignore[call-overload]
            f"{owner}{spec.name.title()}Item",
            __base__=KDEs,
            **{f.name: (_kde_type(owner, f), ... if f.required else None) for f in spec.item_fields},
        )
        return Annotated[list[item], Field(min_length=1, description=spec.description)]  # type: ignore[valid-type]
    return Annotated[_KDE_TYPES[spec.type], Field(description=f"{spec.description} ({spec.visibility.value})")]


def kde_model(
    kind: EventKind,
    *,
    specs: Mapping[EventKind, KindSpec] = KIND_SPECS,
    optional: frozenset[str] = DEFAULTED,
    exclude: frozenset[str] = frozenset(),
    all_optional: bool = False,
) -> type[KDEs]:
    """The payload model of an event kind, generated from its ``KindSpec``: every KDE with its type and
    visibility; required unless ``optional`` (filled in by the API) or ``all_optional``."""
    spec = specs[kind]
    name = kde_model_name(kind)
    fields: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in exclude:
            required = f.required and not all_optional and f.name not in optional
            fields[f.name] = (_kde_type(name, f), ... if required else None)
    return create_model(  # type: ignore[call-overload,no-any-return]
        name,
        __base__=KDEs,
        __doc__=f"Key data elements of {kind_name(kind)} ({spec.basis}). Fields are marked public, consortium or "
        "private; extra fields are kept and private.",
        **fields,
    )


KDE_MODELS: dict[EventKind, type[KDEs]] = {
    kind: kde_model(
        kind,
        all_optional=kind is EventKind.RECEIVING,  # taken from the shipment when left out
        exclude=frozenset({"outcome"}) if kind is EventKind.INSPECTION else frozenset(),  # a body field instead
    )
    for kind in EventKind
}
ShippingKDEs = KDE_MODELS[EventKind.SHIPPING]
ReceivingKDEs = KDE_MODELS[EventKind.RECEIVING]
InspectionKDEs = KDE_MODELS[EventKind.INSPECTION]


# ------------------------------------------------------------------ path and query parameters

_LOT_CHARS = "".join("\\" + c if c in "\\]^-[" else c for c in LOT_CODE_PUNCTUATION)  # a character class


class PathParameters(Query):
    """The parameters in paths: checked before anything else is read."""

    gtin: Annotated[str, Field(pattern="^[0-9]{8,14}$", description="GTIN of the lot's product, 8-14 digits")] = None
    lot: Annotated[
        str,
        Field(
            pattern=f"^[0-9A-Za-z{_LOT_CHARS}]{{1,20}}$",
            description="The lot code: 1-20 characters of GS1 character set 82 (AI 10)",
        ),
    ] = None
    token_id: Annotated[str, Field(pattern="^[0-9]{1,9}$", description="The token's id, digits")] = None
    job_id: Annotated[str, Field(pattern="^[0-9]{1,9}$", description="The capture job's id, digits")] = None
    org_id: Annotated[str, Field(pattern="^[0-9]{1,9}$", description="The organisation's id, digits")] = None
    webhook_id: Annotated[str, Field(pattern="^[0-9]{1,9}$", description="The webhook endpoint's id, digits")] = None
    event_type: Annotated[str, Field(pattern=r"^\S{1,200}$", description="An EPCIS event type")] = None
    epc: Annotated[str, Field(pattern=r"^\S{1,500}$", description="An EPC (URN or Digital Link, '/' may be sent)")] = (
        None
    )
    biz_step: Annotated[str, Field(pattern=r"^\S{1,300}$", description="A business step (bare CBV word or URI)")] = None
    biz_location: Annotated[
        str, Field(pattern=r"^\S{1,500}$", description="A bizLocation id (URN or Digital Link)")
    ] = None
    read_point: Annotated[str, Field(pattern=r"^\S{1,500}$", description="A readPoint id (URN or Digital Link)")] = None
    disposition: Annotated[str, Field(pattern=r"^\S{1,300}$", description="A disposition (bare CBV word or URI)")] = (
        None
    )
    event_id: Annotated[str, Field(pattern=r"^\S{1,500}$", description="An eventID or CBV event hash ID")] = None
    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,2000}$", description="A nextPageToken")] = None
    subscription_id: Annotated[str, Field(pattern=r"^\S{1,60}$", description="A subscriptionID")] = None
    query_name: Annotated[
        str,
        Field(
            pattern=f"^{named_queries.NAME.pattern}$", description="A named query's name (1-100 of A-Z a-z 0-9 . _ ~ -)"
        ),
    ] = None


def _whole_number(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d{1,9}", value.strip()):
            raise ValueError("must be a whole number")
        return int(value)
    return value


def _true_or_false(value: Any) -> Any:
    if isinstance(value, str):
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError("must be true or false")
        return value.lower() in ("true", "1")
    return value


QueryBool = Annotated[StrictBool, BeforeValidator(_true_or_false)]


class PageQuery(Query):
    limit: Annotated[
        StrictInt,
        Field(ge=1, le=MAX_PAGE, description=f"Items per page (1-{MAX_PAGE})."),
        BeforeValidator(_whole_number),
    ] = DEFAULT_PAGE
    cursor: Annotated[
        str, Field(max_length=100, description="Opaque cursor from the previous page's `next_cursor`.")
    ] = None


class LocationQuery(PageQuery):
    mine: Annotated[QueryBool, Field(description="Only the organisation's own locations.")] = False


class LotQuery(PageQuery):
    status: Annotated[Status, Field(description="Only lots with this status.")] = None
    q: Annotated[str, Field(max_length=100, description="Part of a lot code, GTIN or product name.")] = None


class TraceQuery(Query):
    direction: Annotated[
        Direction, Field(description="backward: every lot it was made from; forward: every lot made from it.")
    ] = "backward"


def _epcis_param(description: str) -> Any:
    return Field(default=None, description=description, max_length=2000)


class EpcisEventQuery(Query):
    """The EPCIS 2.0 standard query parameters (section 8.2.7.1) Lotline answers. A parameter naming several
    values takes them separated by ``|`` (or repeated); identifiers match in URN or Digital Link form."""

    eventType: Annotated[str, _epcis_param("ObjectEvent, AggregationEvent, AssociationEvent, ...")] = None  # noqa: N815
    GE_eventTime: Annotated[str, _epcis_param("eventTime at or after (ISO 8601 with offset)")] = None  # noqa: N815
    LT_eventTime: Annotated[str, _epcis_param("eventTime before")] = None  # noqa: N815
    GE_recordTime: Annotated[str, _epcis_param("recordTime (capture) at or after")] = None  # noqa: N815
    LT_recordTime: Annotated[str, _epcis_param("recordTime before")] = None  # noqa: N815
    EQ_bizStep: Annotated[str, _epcis_param("bizStep (bare CBV word or URI)")] = None  # noqa: N815
    EQ_disposition: Annotated[str, _epcis_param("disposition (bare CBV word or URI)")] = None  # noqa: N815
    EQ_readPoint: Annotated[str, _epcis_param("readPoint id (SGLN URN or Digital Link)")] = None  # noqa: N815
    EQ_bizLocation: Annotated[str, _epcis_param("bizLocation id")] = None  # noqa: N815
    EQ_eventID: Annotated[str, _epcis_param("eventID, or CBV event hash ID")] = None  # noqa: N815
    EQ_action: Annotated[str, _epcis_param("action: ADD, OBSERVE or DELETE")] = None  # noqa: N815
    WD_readPoint: Annotated[str, _epcis_param("readPoint id or one of its sub-locations (/254/)")] = None  # noqa: N815
    WD_bizLocation: Annotated[str, _epcis_param("bizLocation id or one of its sub-locations")] = None  # noqa: N815
    MATCH_epc: Annotated[str, _epcis_param("an EPC in epcList or childEPCs")] = None  # noqa: N815
    MATCH_anyEPC: Annotated[str, _epcis_param("an EPC of any list, or parentID")] = None  # noqa: N815
    MATCH_parentID: Annotated[str, _epcis_param("parentID")] = None  # noqa: N815
    MATCH_inputEPC: Annotated[str, _epcis_param("an EPC in inputEPCList")] = None  # noqa: N815
    MATCH_outputEPC: Annotated[str, _epcis_param("an EPC in outputEPCList")] = None  # noqa: N815
    MATCH_epcClass: Annotated[str, _epcis_param("epcClass in quantityList or childQuantityList")] = None  # noqa: N815
    MATCH_inputEPCClass: Annotated[str, _epcis_param("epcClass in inputQuantityList")] = None  # noqa: N815
    MATCH_outputEPCClass: Annotated[str, _epcis_param("epcClass in outputQuantityList")] = None  # noqa: N815
    MATCH_anyEPCClass: Annotated[str, _epcis_param("epcClass in any quantity list")] = None  # noqa: N815
    EXISTS_errorDeclaration: Annotated[str, _epcis_param("only events carrying errorDeclaration")] = None  # noqa: N815
    EQ_transformationID: Annotated[str, _epcis_param("transformationID")] = None  # noqa: N815
    EQ_persistentDisposition_set: Annotated[str, _epcis_param("a disposition persistentDisposition sets")] = None  # noqa: N815
    EQ_persistentDisposition_unset: Annotated[str, _epcis_param("a disposition it unsets")] = None  # noqa: N815
    GE_errorDeclarationTime: Annotated[str, _epcis_param("errorDeclaration declarationTime at or after")] = None  # noqa: N815
    LT_errorDeclarationTime: Annotated[str, _epcis_param("errorDeclaration declarationTime before")] = None  # noqa: N815
    EQ_errorReason: Annotated[str, _epcis_param("errorDeclaration reason (bare CBV word or URI)")] = None  # noqa: N815
    EQ_correctiveEventID: Annotated[str, _epcis_param("one of errorDeclaration correctiveEventIDs")] = None  # noqa: N815
    EQ_quantity: Annotated[str, _epcis_param("quantity equals (also GT_/GE_/LT_/LE_, _{uom})")] = None  # noqa: N815
    EXISTS_sensorElementList: Annotated[str, _epcis_param("only events with sensor elements")] = None  # noqa: N815
    EQ_type: Annotated[str, _epcis_param("a sensor report's type (Temperature, ...)")] = None  # noqa: N815
    EQ_deviceID: Annotated[str, _epcis_param("a sensor report's (or its metadata's) deviceID")] = None  # noqa: N815
    GE_time: Annotated[str, _epcis_param("sensor report time at or after (also LT_)")] = None  # noqa: N815
    GE_value: Annotated[str, _epcis_param("sensor value at least (docs/epcis.md: more)")] = None  # noqa: N815
    orderBy: Annotated[str, _epcis_param("eventTime or recordTime (default: capture order)")] = None  # noqa: N815
    orderDirection: Annotated[str, _epcis_param("ASC or DESC (default DESC)")] = None  # noqa: N815
    eventCountLimit: Annotated[str, _epcis_param("answer at most this many events in all (needs orderBy)")] = None  # noqa: N815
    maxEventCount: Annotated[str, _epcis_param("refuse (413) an answer of more events than this")] = None  # noqa: N815
    perPage: Annotated[str, _epcis_param("events per page, 1-500 (default 30)")] = None  # noqa: N815
    nextPageToken: Annotated[str, _epcis_param("the token of the next page (from the Link header)")] = None  # noqa: N815


class EpcisListingQuery(Query):
    """Paging of an EPCIS listing resource (``/epcs``, ``/bizSteps``, ...)."""

    perPage: Annotated[str, _epcis_param("members per page, 1-500 (default 30)")] = None  # noqa: N815
    nextPageToken: Annotated[str, _epcis_param("the token of the next page (from the Link header)")] = None  # noqa: N815


class EPCISQueryDocument(BaseModel):
    """An EPCIS 2.0 query document: ``epcisBody.queryResults.resultsBody.eventList`` holds the events, each
    as captured, with ``recordTime``. The next page, if any, is named by the ``Link`` header
    (``rel="next"``, with ``nextPageToken``)."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)

    context: Annotated[Any, Field(alias="@context")] = None
    type: Any = None
    schemaVersion: Any = None  # noqa: N815
    creationDate: Any = None  # noqa: N815
    epcisBody: Any = None  # noqa: N815


class EpcisEventTypes(Schema):
    type: str
    member: list[str]


class EpcisNamedQuery(Schema):
    name: str
    query: dict[str, Any]


class EpcisNamedQueryPageQuery(Query):
    """Paging of ``GET /epcis/queries``."""

    perPage: Annotated[str, _epcis_param("queries per page, 1-500 (default 30)")] = None  # noqa: N815
    nextPageToken: Annotated[str, _epcis_param("the token of the next page (from the Link header)")] = None  # noqa: N815


class EpcisAnchor(Schema):
    eventID: str | None = None  # noqa: N815
    hashID: str  # noqa: N815
    leaf: Annotated[str, Field(description="keccak256 of the event's RFC 8785 canonical JSON, without recordTime")]
    leafIndex: int  # noqa: N815
    proof: Annotated[list[str], Field(description="Sibling hashes from the leaf up to the root")]
    merkleRoot: str | None = None  # noqa: N815
    anchor: dict[str, Any] | None = None
    verified: Annotated[bool, Field(description="The proof leads to the root sent on chain")] = None
    erroneous: Annotated[bool, Field(description="A captured errorDeclaration names this event")]
    errorDeclaration: dict[str, Any] | None = None  # noqa: N815
    applied: Annotated[bool, Field(description="It drives the lot model")]
    note: str | None = None


class EpcisExportQuery(Query):
    ancestors: Annotated[
        QueryBool, Field(description="Also export the events of every lot this lot was made from.")
    ] = False


class FsmaQuery(Query):
    lot: Annotated[str, Field(max_length=60, description="GTIN/LOT, e.g. 00614141000012/GV-ROM-2611A")] = None
    product: Annotated[str, Field(max_length=20, description="GTIN (with from and to)")] = None
    from_: Annotated[str, Field(alias="from", max_length=10, description="First date, YYYY-MM-DD")] = None
    to: Annotated[str, Field(max_length=10, description="Last date, YYYY-MM-DD")] = None
    chain: Annotated[
        QueryBool,
        Field(description="Add the whole trace: every lot the selection was made from and every lot made from it."),
    ] = False
    format: Annotated[Literal["csv", "xlsx", "json"], Field(description="csv, xlsx or json")] = "csv"


# ------------------------------------------------------------------ request bodies


class NewToken(Request):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scope: Scope = "read"


class NewWebhook(Request):
    url: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_LENGTH,
            description="The https:// address Lotline POSTs notices to (not a private or loopback address)",
        ),
    ]
    active: Annotated[StrictBool, Field(description="Whether notices are sent to it now")] = True


class NewProduct(Request):
    gtin: Gtin
    name: Annotated[str, Field(min_length=1, max_length=200)]
    category: Annotated[str, Field(max_length=100)] = None
    unit: Unit = None
    on_food_traceability_list: StrictBool = False
    commodity: Annotated[str, Field(max_length=100, description="Every lot of it is this commodity")] = None
    variety: Annotated[str, Field(max_length=100, description="Every lot of it is this variety")] = None


class NewLocation(Request):
    gln: Gln
    name: Annotated[str, Field(min_length=1, max_length=200)]
    address: Annotated[str, Field(max_length=1000)] = None
    latitude: Annotated[StrictFloat, Field(ge=-90, le=90)] = None
    longitude: Annotated[StrictFloat, Field(ge=-180, le=180)] = None
    kind: LocationKind = None


_CREATION_KDES = ", ".join(kde_model_name(k) for k in sorted(CREATION_KINDS - {EventKind.TRANSFORMATION}))


class NewLot(Request):
    gtin: Gtin
    lot_code: LotCode
    kind: CreationKind
    quantity: Quantity
    unit: Unit = None
    payload: Annotated[dict[str, Any], Field(description=f"The KDEs of `kind`: see {_CREATION_KDES}")]


class NewEvent(Request):
    kind: FreeKind
    payload: Annotated[dict[str, Any], Field(description="The KDEs of `kind` (CoolingKDEs, ...)")]


class Shipment(Request):
    to: Annotated[
        StrictInt,
        Field(description="Receiving organisation's id; by default the organisation that owns payload.to_gln"),
    ] = None
    payload: ShippingKDEs  # type: ignore[valid-type]


class Receipt(Request):
    """Receiving KDEs; any left out are taken from the shipment (from_gln, to_gln, reference document,
    quantity, unit, TLC source) and receive_date defaults to today."""

    payload: ReceivingKDEs = None  # type: ignore[valid-type]


class Reason(Request):
    reason: ReasonText
    date: Date = None


class Certificate(Request):
    filename: Annotated[str, Field(min_length=1, max_length=255)]
    content_type: CertificateType
    content_base64: Annotated[str, Field(max_length=7_100_000)]


class NewInspection(Request):
    outcome: Outcome
    payload: InspectionKDEs  # type: ignore[valid-type]
    notes: Annotated[str, Field(max_length=4000)] = None
    certificate: Certificate = None


class NewRecall(Request):
    reason: ReasonText
    recall_class: RecallClass
    instructions: Annotated[str, Field(min_length=1, max_length=4000)]
    date: Date = None
    contact: Text = None


class Reading(BaseModel):
    model_config = ConfigDict(json_schema_extra=_tidy)

    taken_at: Date
    temperature_c: Quantity
    humidity: Quantity = None


def _reading_item_schema() -> dict[str, Any]:
    """``Reading``'s JSON schema, inlined where a reading is documented but not validated as a model."""
    return Reading.model_json_schema()


ReadingItem = Annotated[dict[str, Any], WithJsonSchema(_reading_item_schema())]
"""One reading as sent: the model checks only that it is an object; the route (``routes.reading_rows``) checks
each reading's fields as ``Reading`` documents them, and the domain (``validate_readings``) its rules. An
upload holds up to 10,000 readings, and building a model of each cost more than the domain's own check."""


class Readings(Request):
    readings: Annotated[list[ReadingItem], Field(min_length=1, max_length=10_000)]
    sensor_id: Annotated[str, Field(max_length=100)] = None
    location_gln: Gln = None


class TransformationInput(Request):
    gtin: Gtin
    lot_code: LotCode
    quantity: Quantity


class TransformationOutput(Request):
    gtin: Gtin
    lot_code: LotCode
    quantity: Quantity
    unit: Unit = None
    inputs: Annotated[list[TransformationInput], Field(min_length=1, max_length=100)]


class NewTransformation(Request):
    location_gln: Gln
    transformation_date: Date
    product_description: Text = None
    outputs: Annotated[list[TransformationOutput], Field(min_length=1, max_length=50)]


class EPCISBody(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)

    eventList: list[dict[str, Any]]  # noqa: N815 - EPCIS's own name


class EPCISDocument(BaseModel):
    """An EPCIS 2.0 JSON-LD document (``@context``, ``type`` EPCISDocument, ``schemaVersion``, ``creationDate``,
    ``epcisBody.eventList``); capture validates it against GS1's EPCIS 2.0 JSON Schema
    (https://ref.gs1.org/standards/epcis/) and names the failing path (400 ``epcis_schema_invalid``)."""

    # No constraints of its own: capture checks the whole document, its root too, against GS1's schema and
    # answers 400 epcis_schema_invalid with the failing path (docs/epcis.md), never a generic code.
    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)

    context: Annotated[Any, Field(alias="@context")] = None
    type: Any = None
    schemaVersion: Any = None  # noqa: N815
    creationDate: Any = None  # noqa: N815
    epcisBody: Any = None  # noqa: N815


class EPCISEvent(BaseModel):
    """One EPCIS 2.0 event (the REST binding's single-event capture, ``POST /epcis/events``), optionally with
    its ``@context``; captured as a document of that one event, checked by GS1's EPCIS 2.0 JSON Schema."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)

    context: Annotated[Any, Field(alias="@context")] = None
    type: Any = None
    eventTime: Any = None  # noqa: N815


class EpcisNamedQueryBody(BaseModel):
    """A named query (REST binding ``QueryDefinition``): ``name`` (1-100 letters, digits, ``.``, ``_``, ``~``,
    ``-``) and ``query``, the standard query parameters (each a list of strings, a string, a number, or true for
    ``EXISTS_`` parameters), checked as ``GET /epcis/events`` checks them."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)

    name: Any = None
    query: Any = None


class EpcisSubscriptionBody(BaseModel):
    """A webhook subscription to a named query: ``dest`` (the URL query documents are POSTed to; no private
    address), ``stream: true`` (each capture's newly captured matching events) and an optional
    ``signatureToken`` (the secret of the ``GS1-Signature`` HMAC). ``schedule`` is not offered."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_tidy)

    dest: Any = None
    stream: Any = None
    signatureToken: Any = None  # noqa: N815
    schedule: Any = None


class EpcisSubscription(Schema):
    subscriptionID: str  # noqa: N815
    queryName: str  # noqa: N815
    dest: str
    stream: bool
    createdAt: str  # noqa: N815
    lastNotifiedAt: str | None = None  # noqa: N815


# ------------------------------------------------------------------ answers


class OrganisationRef(Schema):
    id: int
    name: str


class LotRef(Schema):
    gtin: str
    lot_code: str


class CaptureEventResult(Schema):
    index: int
    type: str | None = None
    eventID: str | None = None  # noqa: N815
    hashID: Annotated[str | None, Field(description="The CBV 2.0 event hash ID")] = None  # noqa: N815
    bizStep: str | None = None  # noqa: N815
    status: Annotated[
        Literal["captured", "accepted", "stored", "duplicate", "rejected"],
        Field(
            description="captured/accepted: drives the lot model (written / not yet); stored: kept in the event "
            "repository only (code not_mapped, unknown_lot, unknown_gtin, unknown_gln, error_declaration, "
            "reported: another organisation's event, or known_on_chain: already on chain and verified there); "
            "duplicate: already captured, not stored or applied again; rejected: refused (the whole document "
            "is then refused)"
        ),
    ]
    code: str | None = None
    reason: str | None = None
    field: str | None = None
    lotline_events: list[dict[str, Any]] = None
    attributedTo: Annotated[  # noqa: N815
        dict[str, Any] | None,
        Field(
            description="Whose event it is when it is not the capturer's: party, gln and reportedBy (source "
            "location: the owner of its place, reported by the capturer) or party, address, lot, seq and txHash "
            "(source chain: the signer of the on-chain event it matched)"
        ),
    ] = None


class Error(Schema):
    error: Annotated[str, Field(description="Stable error code, e.g. invalid_gtin")]
    message: Annotated[str, Field(description="What is wrong, naming the rule")]
    field: Annotated[str, Field(description="The field (or header, query parameter)")] = None
    events: Annotated[list[CaptureEventResult], Field(description="EPCIS capture: the result of every event")] = None


CompanyPrefixText = Annotated[
    str, Field(pattern=r"^[0-9]{6,12}$", description="A GS1 company prefix: 6-12 digits", examples=["0614141"])
]


class Organisation(Schema):
    id: int
    name: str
    roles: list[Role]
    chain_address: str
    gs1_company_prefix: Annotated[str | None, Field(description="The first of its GS1 company prefixes")] = None
    gs1_company_prefixes: Annotated[
        list[str], Field(description="Every GS1 company prefix it holds (its GTINs and GLNs are under them)")
    ] = []


class NewOrganisation(Request):
    name: Annotated[str, Field(min_length=2, max_length=200)]
    roles: Annotated[list[Role], Field(min_length=1, description="Roles granted on chain")]
    gs1_company_prefixes: Annotated[
        list[CompanyPrefixText],
        Field(max_length=20, description="Its GS1 company prefixes, registered on chain to its key"),
    ] = []


class NewCompanyPrefix(Request):
    gs1_company_prefix: CompanyPrefixText


class CreatedOrganisation(Schema):
    organisation: Organisation
    token: Annotated[
        CreatedToken, Field(description="A write token of the new organisation: shown once, hand it over now")
    ]


class MasterDataResult(Schema):
    id: Annotated[str | None, Field(description="The vocabulary element's id as in the document")]
    vocabulary: Annotated[str, Field(description="BusinessLocation, ReadPoint or Party")]
    field: str
    status: Annotated[
        Literal["registered", "known", "skipped"],
        Field(description="registered now, known (already the capturer's), or skipped (with the reason)"),
    ]
    gln: str | None = None
    reason: str | None = None


class MeToken(Schema):
    id: int
    name: str
    scope: Scope


class Me(Schema):
    organisation: Organisation
    token: MeToken


class Product(Schema):
    gtin: str
    name: str
    category: str | None = None
    unit: str
    on_food_traceability_list: bool = None
    commodity: str | None = None
    variety: str | None = None
    organisation: OrganisationRef


class Location(Schema):
    gln: str
    name: str
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    kind: str
    organisation: OrganisationRef


class ProductRef(Schema):
    gtin: str
    name: str


class LotInput(Schema):
    gtin: str
    lot_code: str
    quantity: str
    unit: str = None


class LotVerification(Schema):
    state: str
    detail: str | None = None
    verified_at: str | None = None


class Lot(Schema):
    gtin: str
    lot_code: str
    lot_id: Annotated[str, Field(description="On-chain id: keccak256(abi.encode(gtin14, lot code))")]
    digital_link: Annotated[str, Field(description="GS1 Digital Link of the label's QR code")]
    product: ProductRef
    status: Status
    recalled_via: Annotated[
        LotRef | None,
        Field(description="For a lot recalled because a lot it was made from was recalled: that lot"),
    ] = None
    quantity: Annotated[str, Field(description="What is left after transformations")]
    initial_quantity: str = None
    unit: str
    creator: OrganisationRef
    custodian: OrganisationRef
    pending_custodian: OrganisationRef | None = None
    event_count: int
    head_hash: str
    harvest_date: str | None = None
    pack_date: str | None = None
    origin_gln: str | None = None
    inputs: list[LotInput]
    verification: LotVerification
    created_at: str = None


class EventProof(Schema):
    """What the caller is given to check the payload fields it sees against the chain (docs/hashing.md 6)."""

    scheme: Annotated[
        int, Field(description="1: dataHash = keccak256(JCS(payload)); 2: public fields and salted commitments")
    ]
    data_hash: Annotated[str, Field(description="The dataHash anchored on chain (as stored; compare with the log)")]
    public: Annotated[dict[str, Any], Field(description="Scheme 2: the public fields, hashed in clear")] = None
    sealed: Annotated[dict[str, str], Field(description="Scheme 2: field name -> salted commitment")] = None
    salts: Annotated[
        dict[str, str], Field(description="Scheme 2: field name -> salt, for each sealed field the caller sees")
    ] = None


class Event(Schema):
    id: int
    seq: int | None
    kind: EventKindName
    label: str
    actor: OrganisationRef
    occurred_at: str
    recorded_at: str = None
    status: EventStatus
    payload: Annotated[dict[str, Any], Field(description="The KDEs this organisation may see")]
    payload_hash: str
    proof: EventProof = None
    tx_hash: str | None
    block_number: int | None = None
    failure_reason: str | None = None
    lot: LotRef


class LotAction(Schema):
    lot: Lot
    event: Event


class Transformation(Schema):
    lots: list[Lot]


class TracedLot(Schema):
    """A lot of the trace; one the caller may not see is ``redacted`` (depth, ``label`` and recall reach only)."""

    redacted: bool = None
    label: str = None
    gtin: str = None
    lot_code: str = None
    depth: int
    status: str = None
    product: str = None
    quantity: str = None
    unit: str = None
    creator: str = None
    custodian: str = None
    recalled: bool = None
    affected_by_recall: bool
    inputs: list[Any] = None
    locations: list[Any] = None
    recall_sources: list[Any] = None
    reported: Annotated[
        list[Any],
        Field(
            description="Events of this lot another organisation's capturer reported in its EPCIS documents "
            "(event_id, event_time, type, biz_step; party: whose event, never signed by it; reported_by), those "
            "the caller may see in the event repository"
        ),
    ] = None


class Trace(Schema):
    lot: LotRef
    direction: Direction
    lots: list[TracedLot]
    organisations: list[str]


class Verification(Schema):
    lot: LotRef
    state: Literal["verified", "tampered", "pending", "unverifiable"]
    detail: str
    checked_events: int
    bad_event_id: int | None = None


class CaptureJobError(Schema):
    error: Annotated[str | None, Field(description="Stable error code, e.g. lot_exists")] = None
    message: str
    field: str | None = None


class CreatedLot(Schema):
    gtin: str
    lot_code: str
    href: Annotated[str, Field(description="The lot in this API")]
    digital_link: Annotated[str, Field(description="GS1 Digital Link of the lot's label")]


class CaptureJobSummary(Schema):
    """An EPCIS capture job: the document was checked and accepted; its events are written in batches."""

    id: int
    href: Annotated[str, Field(description="This job (poll it until status is done or failed)")]
    status: Annotated[
        CaptureJobStatus,
        Field(description="queued, running, done (every event written) or failed (see error and events)"),
    ]
    events_total: Annotated[int, Field(description="EPCIS events in the document")]
    events_written: Annotated[int, Field(description="EPCIS events whose Lotline events are all written")]
    writes_total: Annotated[int, Field(description="Lotline events (contract calls) the document makes")]
    writes_done: int
    batches_done: int
    transactions: list[str]
    error: Annotated[
        CaptureJobError | None,
        Field(description="Why the job failed, or why it was interrupted (it is then resumed)"),
    ] = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None


class CaptureJob(CaptureJobSummary):
    master_data: Annotated[
        list[MasterDataResult],
        Field(description="The document header's locations and parties, registered when the capturer owns them"),
    ] = []
    events: Annotated[
        list[CaptureEventResult],
        Field(
            description="Every EPCIS event: captured (with its Lotline events), accepted (not written yet), "
            "rejected or unsupported"
        ),
    ]
    lots_created: list[CreatedLot]


class ImportQuery(Query):
    dry_run: Annotated[
        QueryBool,
        Field(description="Check every row and answer what the import would write, writing nothing."),
    ] = False


class ImportTemplateQuery(Query):
    format: Annotated[Literal["csv", "xlsx"], Field(description="csv or xlsx")] = "csv"


class ImportRowResult(Schema):
    index: Annotated[int, Field(description="Position among the file's data rows, from 0")]
    row: Annotated[int, Field(description="Row number as in the file (the header row is 1)")]
    cte: str | None = None
    gtin: str | None = None
    lot_code: str | None = None
    status: Literal["captured", "accepted", "rejected"]
    code: str | None = None
    reason: str | None = None
    column: Annotated[str | None, Field(description="The column, as headed in the file, the rule is about")] = None
    field: str | None = None
    lotline_events: list[dict[str, Any]] = []


class ImportDryRun(Schema):
    """What an accepted file would write; nothing was written."""

    dry_run: Literal[True]
    filename: str
    format: Literal["csv", "xlsx"]
    rows_total: int
    writes_total: Annotated[int, Field(description="Lotline events (contract calls) the import makes")]
    lots_created: Annotated[int, Field(description="New lots the file creates")]
    rows_by_cte: dict[str, int]


class ImportJobSummary(Schema):
    """An import: the file was checked and accepted; its rows are written in batches."""

    id: int
    href: Annotated[str, Field(description="This import (poll it until status is done or failed)")]
    status: Annotated[
        CaptureJobStatus,
        Field(description="queued, running, done (every row written) or failed (see error and rows)"),
    ]
    filename: str | None = None
    rows_total: int
    rows_written: Annotated[int, Field(description="Rows whose Lotline event is written")]
    writes_total: int
    writes_done: int
    batches_done: int
    transactions: list[str]
    error: CaptureJobError | None = None
    created_at: str
    updated_at: str
    started_at: str | None = None
    finished_at: str | None = None


class ImportJob(ImportJobSummary):
    rows: Annotated[
        list[ImportRowResult], Field(description="Every row: captured, accepted (not written yet) or rejected")
    ]
    lots_created: list[CreatedLot]


class FsmaRecords(Schema):
    columns: list[dict[str, Any]]
    rows: list[dict[str, str]]


class CreditTerms(Schema):
    """An organisation's figures over a period (``supply_chain.services.credit``). ``acks_on_time`` and
    ``acks_late`` are null while recall acknowledgements are not tracked."""

    lots_created: int
    lots_received: int
    inspections_passed: int
    inspections_failed: int
    inspections_conditional: int
    holds: Annotated[int, Field(description="Holds placed on its lots (a failed inspection holds the lot too)")]
    recalls_caused: Annotated[int, Field(description="Recalls started from its own lots")]
    recalls_caused_class_i: int
    recalls_reached: Annotated[
        int, Field(description="Recalls of another's lot that reached a lot it made (an ingredient) or held")
    ]
    lots_tampered: int
    lots_unverifiable: int
    acks_on_time: int | None
    acks_late: int | None


class CreditMonth(CreditTerms):
    month: Annotated[str, Field(pattern="^[0-9]{4}-[0-9]{2}$")]
    recorded: Annotated[bool, Field(description="Anything recorded this month")]


class CreditReason(Schema):
    grade: Literal["A", "B", "C", "D"]
    term: str
    rule: Annotated[str, Field(description="The threshold reached, in plain words")]


class CreditGrade(Schema):
    letter: Annotated[
        Literal["A", "B", "C", "D"] | None, Field(description="A best, D worst; null: made or received no lot")
    ]
    explanation: str
    reasons: list[CreditReason]


class CreditRuleLine(Schema):
    grade: Literal["B", "C", "D"]
    when: str


class CreditRule(Schema):
    grades: list[CreditRuleLine]
    otherwise: str
    not_counted: str
    not_graded: str
    window_months: int


class CreditWindow(Schema):
    from_: Annotated[str, Field(alias="from")]
    to: str
    months: int


class CreditOrganisation(Schema):
    id: int
    name: str
    roles: list[Role]


class CreditRecord(Schema):
    """An organisation's credit record: its grade over the window with the rule and what moved it, the totals,
    every month, and the recalls it caused or that reached it."""

    organisation: CreditOrganisation
    as_of: str
    window: CreditWindow
    grade: CreditGrade
    rule: CreditRule
    totals: CreditTerms
    acknowledgements_tracked: bool
    months: list[CreditMonth]
    recalls_caused: list[dict[str, Any]]
    recalls_reached: list[dict[str, Any]]


class Token(Schema):
    id: int
    name: str
    scope: Scope
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class CreatedToken(Token):
    token: Annotated[str, Field(description="The token itself: shown once, store it now")]


class Webhook(Schema):
    id: int
    url: str
    active: bool
    created_at: str


class CreatedWebhook(Webhook):
    secret: Annotated[
        str, Field(description="The signing secret of the Lotline-Signature header: shown once, store it now")
    ]


def _page(item: type[BaseModel]) -> type[Schema]:
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"{item.__name__}Page", __base__=Schema, items=(list[item], ...), next_cursor=(str | None, ...)
    )


OrganisationPage = _page(Organisation)
ProductPage = _page(Product)
LocationPage = _page(Location)
LotPage = _page(Lot)
EventPage = _page(Event)
TokenPage = _page(Token)
WebhookPage = _page(Webhook)
CaptureJobPage = _page(CaptureJobSummary)
ImportJobPage = _page(ImportJobSummary)


def published_models() -> list[type[BaseModel]]:
    """Models the document lists although no operation names them: every kind's KDEs (a lot's or an
    event's ``payload``) and the FSMA 204 records."""
    return [*KDE_MODELS.values(), FsmaRecords]
