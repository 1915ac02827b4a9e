"""The faithful EPCIS event repository: every event of a captured document, kept as it was sent.

Beside the lot model (which captures what maps onto lots, CTEs, custody, transformations and sensor
anchors), every event of an accepted EPCIS document is stored here exactly - all standard fields, ILMD,
sensor elements, certification info, persistent disposition, error declarations, user extensions, with the
document's ``@context`` - and served again by the standard query interface (``query``), equal to what was
captured plus ``recordTime``.

Identity (``identify``): each event gets its CBV 2.0 event hash ID (``identity.hash_ids``). An event already
captured (same eventID, or same hash ID) - earlier in the same document or in an earlier document - is a
duplicate: reported per event and neither stored again nor applied. An event carrying ``errorDeclaration``
is stored, never applied as new business, and marks the original event (same eventID, else same hash ID,
captured by the same organisation) as declared erroneous once its job is done.

Anchoring (``anchor``): when a capture job is done, the Merkle root over its stored events' leaves
(``keccak256`` of each event's RFC 8785 canonical JSON, in document order) is sent on chain by the capturing
organisation's key, as the data of a transaction to its own address. ``proof`` gives any event's inclusion
proof: leaf, sibling hashes, root and transaction, so anyone holding the event can check it against the
chain (docs/epcis.md, "The event repository").
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, func, literal, or_, select, union, update

from supply_chain.domain.errors import InvalidInput, LotlineError, NotFound
from supply_chain.domain.hashing import (
    bytes32,
    canonical_json,
    hex32,
    keccak256,
    merkle_proof,
    merkle_root,
    verify_merkle_proof,
)
from supply_chain.domain.identifiers import EpcPattern, parse_epc_pattern, parse_gs1_uri, pattern_key
from supply_chain.services import access
from supply_chain.services.epcis import indexing
from supply_chain.services.epcis.identity import GS1_CONTEXTS, hash_ids, normal_epc
from supply_chain.services.epcis.vocabulary import bare_word
from supply_chain.services.orgs import signer
from supply_chain.services.runtime import Ctx
from supply_chain.services.writes import sender_lock
from supply_chain.store.models import (
    CaptureJob,
    EpcisAnchor,
    EpcisEvent,
    EpcisEventEpc,
    EpcisSensorReport,
    Event,
    Organisation,
)

FUTURE_SKEW = timedelta(minutes=5)
"""How far past the server's clock an eventTime may lie (clocks drift); later is refused."""

ANCHOR_TAG = b"EPCISv2\x00"
"""The 8 bytes before the 32-byte Merkle root in an anchor transaction's data."""

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "AssociationEvent", "TransactionEvent", "TransformationEvent")

EPC_ROLES = indexing.EPC_ROLES
"""The roles of instance-level identifiers: what ``/epcs`` lists and ``MATCH_anyEPC`` matches."""


# ------------------------------------------------------------------ identity at capture


@dataclass
class Identity:
    """What capture knows of one event before planning it."""

    hash_id: str
    duplicate_of: str | None = None  # why it is a duplicate: "event 2 of this document", "capture job 7"
    declaration: bool = False  # it carries errorDeclaration


def event_moment(event: Mapping[str, Any]) -> datetime | None:
    text = event.get("eventTime")
    if not isinstance(text, str):
        return None
    # RFC 3339 allows any number of fractional digits; Python reads up to 6 (more cannot matter here)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip().upper().replace("Z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def future_error(event: Mapping[str, Any], index: int, now: datetime | None = None) -> InvalidInput | None:
    """The refusal of an event whose eventTime cannot be read or lies more than ``FUTURE_SKEW`` ahead of the
    clock, naming the field; None for an event in the past (or now)."""
    moment = event_moment(event)
    now = now or datetime.now(UTC)
    field = f"epcisBody.eventList[{index}].eventTime"
    if moment is None:
        return InvalidInput(
            f"{field}: {str(event.get('eventTime'))[:60]!r} is not an ISO 8601 date-time with a UTC offset",
            field=field,
            code="invalid_date",
        )
    if moment <= now + FUTURE_SKEW:
        return None
    return InvalidInput(
        f"{field}: {event.get('eventTime')} is in the future (more than {int(FUTURE_SKEW.total_seconds() // 60)} "
        "minutes after the server's clock); an event is captured once it has happened",
        field=field,
        code="date_in_future",
    )


def _live() -> Any:
    return EpcisEvent.state != "failed"


def identify(
    ctx: Ctx, document: Mapping[str, Any], *, exclude_job: int | None = None, org_id: int | None = None
) -> list[Identity]:
    """The hash ID of every event and whether it is a duplicate: of an earlier event of the document (same
    eventID and same hash ID, or same hash ID), or of an event already captured (same eventID or hash ID;
    ``exclude_job``: a job's own stored events do not count, when it is planned again)."""
    events = document["epcisBody"]["eventList"]
    ids = hash_ids(document)
    out = [
        Identity(h, declaration=isinstance(e.get("errorDeclaration"), Mapping))
        for e, h in zip(events, ids, strict=True)
    ]
    event_ids = {e["eventID"] for e in events if isinstance(e.get("eventID"), str)}
    stored = select(
        EpcisEvent.event_id,
        EpcisEvent.hash_id,
        EpcisEvent.has_error_declaration,
        EpcisEvent.capture_job_id,
        EpcisEvent.organisation_id,
    )
    stored = stored.where(_live(), or_(EpcisEvent.hash_id.in_(set(ids)), EpcisEvent.event_id.in_(event_ids)))
    if exclude_job is not None:
        stored = stored.where(EpcisEvent.capture_job_id != exclude_job)
    known: dict[tuple[str, bool], str] = {}
    for event_id, hash_id, declared, job, owner in ctx.session.execute(stored):
        # another organisation's job is not named: its jobs are its own (the capture answer says no more)
        where = f"capture job {job}" if org_id is None or owner == org_id else "another organisation"
        known.setdefault((hash_id, declared), where)
        if event_id:
            known.setdefault((event_id, declared), where)
    seen: dict[tuple[str, bool], int] = {}
    for index, (event, identity) in enumerate(zip(events, out, strict=True)):
        keys = [(identity.hash_id, identity.declaration)]
        if isinstance(event.get("eventID"), str):
            keys.append((event["eventID"], identity.declaration))
        earlier = next((seen[k] for k in keys if k in seen), None)
        if earlier is not None and _same(events[earlier], event, out[earlier], identity):
            identity.duplicate_of = f"event {earlier} of this document"
        elif (where := next((known[k] for k in keys if k in known), None)) is not None:
            identity.duplicate_of = f"an event captured by {where}"
        for key in keys:
            seen.setdefault(key, index)
    return out


def _same(first: Mapping[str, Any], second: Mapping[str, Any], a: Identity, b: Identity) -> bool:
    # within one document, one eventID on two different events is a mix-up (refused by capture), not a copy
    return a.hash_id == b.hash_id or first == second


# ------------------------------------------------------------------ storing


def leaf(body: Mapping[str, Any]) -> bytes:
    """The Merkle leaf of an event: keccak256 of its RFC 8785 canonical JSON (as captured, no recordTime)."""
    return keccak256(canonical_json(body))


def _text(value: object) -> str | None:
    return value[:300] if isinstance(value, str) else None


def store(
    ctx: Ctx, job: CaptureJob, document: Mapping[str, Any], results: Sequence[Mapping[str, Any]]
) -> list[EpcisEvent]:
    """Store every event of ``document`` that is not a duplicate, for ``job`` (pending until it is done)."""
    events = document["epcisBody"]["eventList"]
    now = datetime.now(UTC)
    rows = []
    for result in results:
        if result["status"] == "duplicate":
            continue
        event = events[result["index"]]
        moment = event_moment(event)
        assert moment is not None  # the schema requires an eventTime with an offset
        row = EpcisEvent(
            organisation_id=job.organisation_id,
            capture_job_id=job.id,
            position=result["index"],
            state="pending",
            applied=result["status"] in ("accepted", "captured"),
            note=result.get("code") if result["status"] == "stored" else None,
            event_type=str(event.get("type"))[:64],
            event_id=event["eventID"][:500] if isinstance(event.get("eventID"), str) else None,
            hash_id=result["hashID"],
            event_time=moment,
            record_time=now,
            action=_text(event.get("action")),
            biz_step=_text(bare_word(event.get("bizStep"), "bizstep")),
            disposition=_text(bare_word(event.get("disposition"), "disp")),
            read_point=indexing.place(event, "readPoint"),
            biz_location=indexing.place(event, "bizLocation"),
            has_error_declaration=isinstance(event.get("errorDeclaration"), Mapping),
            error_declaration_time=indexing.error_declaration_time(event),
            body=dict(event),
            context=document.get("@context"),
            leaf=hex32(leaf(event)),
            attribution=result.get("attributedTo"),
        )
        ctx.session.add(row)
        rows.append(row)
    ctx.session.flush()
    for row in rows:
        for found in indexing.rows(row.body):
            ctx.session.add(EpcisEventEpc(event_pk=row.id, **vars(found)))
        for report in indexing.sensor_reports(row.body):
            ctx.session.add(EpcisSensorReport(event_pk=row.id, **report))
    ctx.session.flush()
    return rows


def settle(ctx: Ctx, job: CaptureJob) -> None:
    """Make a job's stored events visible (done) or drop them from view (failed); on done, mark the events
    its error declarations name and prepare the job's anchor (its Merkle root)."""
    if job.status == "failed":
        ctx.session.execute(update(EpcisEvent).where(EpcisEvent.capture_job_id == job.id).values(state="failed"))
        return
    if job.status != "done":
        return
    ctx.session.execute(
        update(EpcisEvent)
        .where(EpcisEvent.capture_job_id == job.id, EpcisEvent.state == "pending")
        .values(state="captured")
    )
    rows = list(
        ctx.session.scalars(select(EpcisEvent).where(EpcisEvent.capture_job_id == job.id).order_by(EpcisEvent.position))
    )
    for row in rows:
        if row.has_error_declaration:
            original = _declared(ctx, row)
            if original is not None and original.declared_erroneous_by_id is None:
                original.declared_erroneous_by_id = row.id
    if rows and ctx.session.get(EpcisAnchor, job.id) is None:
        root = merkle_root([bytes32(r.leaf) for r in rows])
        ctx.session.add(EpcisAnchor(capture_job_id=job.id, merkle_root=hex32(root), leaf_count=len(rows)))
    ctx.session.flush()


def _declared(ctx: Ctx, declaration: EpcisEvent) -> EpcisEvent | None:
    """The event a declaration names: same eventID (else same hash ID), captured by the same organisation,
    without errorDeclaration itself."""
    match = (
        EpcisEvent.event_id == declaration.event_id
        if declaration.event_id
        else EpcisEvent.hash_id == declaration.hash_id
    )
    return ctx.session.scalars(
        select(EpcisEvent)
        .where(
            match,
            EpcisEvent.state == "captured",
            EpcisEvent.has_error_declaration.is_(False),
            EpcisEvent.organisation_id == declaration.organisation_id,
        )
        .order_by(EpcisEvent.id)
    ).first()


# ------------------------------------------------------------------ anchoring


def anchor(ctx: Ctx, job_id: int) -> EpcisAnchor | None:
    """Send the anchor of job ``job_id`` if it is not confirmed yet (ChainUnavailable propagates: the anchor
    stays pending and is sent by the next call, e.g. the next job or ``anchor_pending``)."""
    row = ctx.session.get(EpcisAnchor, job_id)
    if row is None or row.status == "confirmed":
        return row
    if row.tx_hash:
        mined = ctx.ledger.receipt(row.tx_hash)
        if mined is not None and mined.success:
            row.status, row.block_number = "confirmed", mined.block_number
            return row
    job = ctx.session.get(CaptureJob, job_id)
    assert job is not None
    account = signer(ctx, job.organisation)
    with sender_lock(ctx, account.address):
        prepared = ctx.ledger.prepare_anchor(account, ANCHOR_TAG + bytes32(row.merkle_root))
        row.tx_hash, row.sender = prepared.tx_hash, prepared.sender
        ctx.session.flush()
        result = ctx.ledger.submit(prepared)
    row.status, row.block_number = "confirmed", result.block_number
    return row


def anchor_pending(ctx: Ctx) -> int:
    """Send every anchor left pending (the chain was away when its job finished); returns how many."""
    count = 0
    for job_id in list(ctx.session.scalars(select(EpcisAnchor.capture_job_id).where(EpcisAnchor.status == "pending"))):
        anchor(ctx, job_id)
        count += 1
    return count


def proof(ctx: Ctx, org: Organisation, event_id: str) -> dict[str, Any]:
    """The inclusion proof of a visible event (by eventID or hash ID): its leaf, the sibling hashes up to its
    job's Merkle root, the anchor transaction, whether the proof and the chain agree, and whether the event
    was declared erroneous (by which event, naming the corrective events)."""
    row = _visible(ctx, org).where(or_(EpcisEvent.event_id == event_id, EpcisEvent.hash_id == event_id))
    event = ctx.session.scalars(row.order_by(EpcisEvent.id)).first()
    if event is None:
        raise NotFound(f"no EPCIS event {event_id} visible to {org.name}", field="eventID", code="unknown_event")
    siblings = list(
        ctx.session.scalars(
            select(EpcisEvent.leaf)
            .where(EpcisEvent.capture_job_id == event.capture_job_id)
            .order_by(EpcisEvent.position)
        )
    )
    position = _position(ctx, event)
    path = merkle_proof([bytes32(x) for x in siblings], position)
    anchored = ctx.session.get(EpcisAnchor, event.capture_job_id)
    body_leaf = leaf(event.body)
    data: dict[str, Any] = {
        "eventID": event.event_id,
        "hashID": event.hash_id,
        "leaf": hex32(body_leaf),
        "leafIndex": position,
        "proof": [hex32(p) for p in path],
        "merkleRoot": anchored.merkle_root if anchored else None,
        "anchor": None,
        "erroneous": event.declared_erroneous_by_id is not None,
        "applied": event.applied,
        "note": event.note,
    }
    if event.attribution:
        data["attributedTo"] = event.attribution
    if anchored is not None:
        data["anchor"] = {
            "status": anchored.status,
            "txHash": anchored.tx_hash,
            "blockNumber": anchored.block_number,
            "sender": anchored.sender,
            "leafCount": anchored.leaf_count,
        }
        data["verified"] = _check_anchor(ctx, anchored, body_leaf, path)
    if event.declared_erroneous_by_id is not None:
        declaration = ctx.session.get(EpcisEvent, event.declared_erroneous_by_id)
        assert declaration is not None
        declared = declaration.body.get("errorDeclaration") or {}
        data["errorDeclaration"] = {
            "declaredBy": declaration.hash_id,
            "reason": declared.get("reason"),
            "declarationTime": declared.get("declarationTime"),
            "correctiveEventIDs": list(declared.get("correctiveEventIDs") or []),
        }
    return data


def _position(ctx: Ctx, event: EpcisEvent) -> int:
    rows = list(
        ctx.session.scalars(
            select(EpcisEvent.id).where(EpcisEvent.capture_job_id == event.capture_job_id).order_by(EpcisEvent.position)
        )
    )
    return rows.index(event.id)


def _check_anchor(ctx: Ctx, anchored: EpcisAnchor, body_leaf: bytes, path: Sequence[bytes]) -> bool:
    """Whether the stored body's leaf proves into the root, and the root is the data of the anchor
    transaction, sent by the organisation's key to itself."""
    root = bytes32(anchored.merkle_root)
    if not verify_merkle_proof(body_leaf, path, root) or anchored.status != "confirmed" or not anchored.tx_hash:
        return False
    try:
        found = ctx.ledger.transaction_input(anchored.tx_hash)
    except LotlineError:
        return False
    if found is None:
        return False
    sender, to, data, _block = found
    return sender.lower() == to.lower() == (anchored.sender or "").lower() and data == ANCHOR_TAG + root


# ------------------------------------------------------------------ querying


def _visible(ctx: Ctx, org: Organisation) -> Select[tuple[EpcisEvent]]:
    """Captured events ``org`` may see: those it captured; oversight (inspectors, regulators) sees all."""
    return select(EpcisEvent).where(*_visibility(org))


REPORTED_MARKER = "lotline:reported"
"""The export's extension member on an event another organisation's capturer reported: ``{"party", "gln",
"reportedBy"}``. Capture keeps it: an event carrying it is stored as reported, whoever captures it."""


def reported_rows(ctx: Ctx, viewer: Organisation | None, lot_uris: Mapping[int, str]) -> dict[int, list[EpcisEvent]]:
    """Captured events stored as reported (another organisation's events, reported by their capturer) naming
    each lot (``lot_uris``: lot row id -> its Digital Link as ``vocabulary.lot_uri`` writes it), those
    ``viewer`` may see (the query interface's rule; no viewer: the operator, every one), oldest first. One
    query for all the lots.

    ``lot_uri`` already writes the form captured EPCs are stored in (``normal_epc`` of it is itself for every
    GTIN and every character a lot code may hold: tests/unit/test_epcis_identity.py), so it is not normalised
    again here: the GS1 normaliser took about 50 µs a lot, two thirds of a 1,000-lot forward trace."""
    by_epc = {uri[:500]: lot for lot, uri in lot_uris.items()}
    out: dict[int, list[EpcisEvent]] = {lot: [] for lot in lot_uris}
    if not by_epc:
        return out
    visible = _visibility(viewer) if viewer is not None else [EpcisEvent.state == "captured"]
    rows = ctx.session.execute(
        select(EpcisEventEpc.epc, EpcisEvent)
        .join(EpcisEvent, EpcisEvent.id == EpcisEventEpc.event_pk)
        .where(
            EpcisEventEpc.epc.in_(list(by_epc)),
            EpcisEventEpc.role.in_((*EPC_ROLES, "class", "inclass", "outclass")),
            EpcisEvent.note == "reported",
            *visible,
        )
        .order_by(EpcisEvent.event_time, EpcisEvent.id)
    ).all()
    seen: set[tuple[int, int]] = set()
    for epc, row in rows:
        lot = by_epc[epc]
        if (lot, row.id) not in seen:  # an event naming the lot in two lists is listed once
            seen.add((lot, row.id))
            out[lot].append(row)
    return out


def reported_item(row: EpcisEvent) -> dict[str, Any]:
    """What pages and the trace show of one reported event: when, what, whose, and who reported it."""
    attribution = row.attribution or {}
    return {
        "event_id": row.event_id or row.hash_id,
        "event_time": row.event_time,
        "type": row.event_type,
        "biz_step": row.biz_step,
        "party": attribution.get("party"),
        "gln": attribution.get("gln"),
        "reported_by": attribution.get("reportedBy"),
    }


def reported_about(ctx: Ctx, org: Organisation, lot_uri: str) -> list[dict[str, Any]]:
    """Captured events naming the lot ``lot_uri`` that were stored as reported, those ``org`` may see, oldest
    first: what the lot page lists beside the events the lot's organisations signed."""
    return [reported_item(row) for row in reported_rows(ctx, org, {0: lot_uri})[0]]


def exported_report(row: EpcisEvent) -> dict[str, Any]:
    """A reported event in an export: as captured (``exported``), with whose event it is and who reported it
    in ``lotline:reported``, so a partner capturing the export keeps the attribution."""
    attribution = row.attribution or {}
    body = exported(row)
    body[REPORTED_MARKER] = {
        key: attribution[key] for key in ("party", "gln", "reportedBy") if attribution.get(key) is not None
    }
    return body


@dataclass
class Query:
    """The standard query parameters Lotline answers (EPCIS 2.0 section 8.2.7.1; REST binding)."""

    event_types: list[str] | None = None
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    ge_record_time: datetime | None = None
    lt_record_time: datetime | None = None
    actions: list[str] | None = None
    biz_steps: list[str] | None = None
    dispositions: list[str] | None = None
    read_points: list[str] | None = None
    wd_read_points: list[str] | None = None
    biz_locations: list[str] | None = None
    wd_biz_locations: list[str] | None = None
    event_ids: list[str] | None = None
    match_epc: list[str] | None = None
    match_any_epc: list[str] | None = None
    match_parent_id: list[str] | None = None
    match_input_epc: list[str] | None = None
    match_output_epc: list[str] | None = None
    match_epc_class: list[str] | None = None
    match_input_epc_class: list[str] | None = None
    match_output_epc_class: list[str] | None = None
    match_any_epc_class: list[str] | None = None
    exists_error_declaration: bool = False
    typed: list[tuple[str, str, list[str]]] = field(default_factory=list)
    """(role, type, values) of EQ_bizTransaction_{type}, EQ_source_{type}, EQ_destination_{type}."""
    roles: list[tuple[str, list[str]]] = field(default_factory=list)
    """(role, values) of EQ_transformationID, EQ_persistentDisposition_set/_unset, EQ_errorReason,
    EQ_correctiveEventID (values as stored: bare CBV words)."""
    ge_error_declaration_time: datetime | None = None
    lt_error_declaration_time: datetime | None = None
    quantities: list[tuple[str, str | None, float]] = field(default_factory=list)
    """(operator, uom or None, number) of EQ_/GT_/GE_/LT_/LE_quantity[_{uom}]: all hold for one quantity element."""
    exists_sensor: bool = False
    sensor: list[tuple[str, str, Any, str | None]] = field(default_factory=list)
    """(column, operator, value, uom or None) of the sensor parameters: all hold for one sensor report.
    Operator ``IN`` takes a list (EQ_type, EQ_deviceID, ...)."""
    order_by: str | None = None  # "eventTime" | "recordTime"; None = capture order
    descending: bool = True
    event_count_limit: int | None = None
    max_event_count: int | None = None
    per_page: int = 30
    after: int | None = None  # the last row id of the previous page (from nextPageToken)
    after_key: str | None = None  # with orderBy: the ordering value of that row (ISO 8601)
    left: int | None = None  # with eventCountLimit: how many events the later pages may still answer
    capture_job: int | None = None  # only the events of this capture job (a stream subscription's new events)


QUERY_PARAMETERS = {
    "eventType": "event_types",
    "GE_eventTime": "ge_event_time",
    "LT_eventTime": "lt_event_time",
    "GE_recordTime": "ge_record_time",
    "LT_recordTime": "lt_record_time",
    "EQ_action": "actions",
    "EQ_bizStep": "biz_steps",
    "EQ_disposition": "dispositions",
    "EQ_readPoint": "read_points",
    "WD_readPoint": "wd_read_points",
    "EQ_bizLocation": "biz_locations",
    "WD_bizLocation": "wd_biz_locations",
    "EQ_eventID": "event_ids",
    "MATCH_epc": "match_epc",
    "MATCH_anyEPC": "match_any_epc",
    "MATCH_parentID": "match_parent_id",
    "MATCH_inputEPC": "match_input_epc",
    "MATCH_outputEPC": "match_output_epc",
    "MATCH_epcClass": "match_epc_class",
    "MATCH_inputEPCClass": "match_input_epc_class",
    "MATCH_outputEPCClass": "match_output_epc_class",
    "MATCH_anyEPCClass": "match_any_epc_class",
    "EXISTS_errorDeclaration": "exists_error_declaration",
}
"""Query parameter (as the standard names it) -> ``Query`` field."""

ROLE_PARAMETERS = {
    "EQ_transformationID": ("xform", None),
    "EQ_persistentDisposition_set": ("pd_set", "disp"),
    "EQ_persistentDisposition_unset": ("pd_unset", "disp"),
    "EQ_errorReason": ("err_why", "er"),
    "EQ_correctiveEventID": ("fix_id", None),
}
"""Parameters answered from the rows of one role (``indexing.rows``) -> (role, the CBV vocabulary of their
values, compared as bare words, or None)."""

TIME_PARAMETERS = {
    "GE_errorDeclarationTime": ("ge_error_declaration_time", None),
    "LT_errorDeclarationTime": ("lt_error_declaration_time", None),
    "GE_time": ("time", "GE"),
    "LT_time": ("time", "LT"),
    "GE_startTime": ("start_time", "GE"),
    "LT_startTime": ("start_time", "LT"),
    "GE_endTime": ("end_time", "GE"),
    "LT_endTime": ("end_time", "LT"),
}
"""Date-time parameters -> (``Query`` field, or the sensor report column with its operator)."""

SENSOR_LIST_PARAMETERS = {"EQ_type": "type"} | {f"EQ_{a}": c for a, c in indexing.SENSOR_TEXTS.items()}
"""Sensor parameters naming values (any one matches) -> sensor report column."""

_COMPARED = re.compile(
    r"^(EQ|GT|GE|LT|LE)_(quantity|" + "|".join(indexing.SENSOR_NUMBERS) + r")(?:_([A-Za-z0-9]{1,8}))?$"
)
"""EQ_/GT_/GE_/LT_/LE_ of a quantity or a sensor number, with an optional unit (UN/ECE Rec. 20 code)."""

TYPED_PARAMETERS = {"EQ_bizTransaction_": "biztx", "EQ_source_": "source", "EQ_destination_": "dest"}
"""Parameters whose name ends with a type (``EQ_bizTransaction_po``) -> the role of their rows."""

RESULT_PARAMETERS = ("orderBy", "orderDirection", "eventCountLimit", "maxEventCount", "perPage", "nextPageToken")
"""Parameters that shape the answer rather than filter it."""

ACTIONS = ("ADD", "OBSERVE", "DELETE")
ORDER_BY = {"eventTime": "event_time", "recordTime": "record_time"}
MAX_PER_PAGE = 500


def _qualifier(role: str, text: str) -> str:
    return bare_word(text, "btt" if role == "biztx" else "sdt") or text


def _supported() -> str:
    typed = ", ".join(f"{p}{{type}}" for p in TYPED_PARAMETERS)
    more = [*ROLE_PARAMETERS, *TIME_PARAMETERS, *SENSOR_LIST_PARAMETERS, "EQ_booleanValue", "EXISTS_sensorElementList"]
    compared = "EQ_/GT_/GE_/LT_/LE_ of quantity and of " + ", ".join(indexing.SENSOR_NUMBERS) + " (optionally _{uom})"
    return f"{', '.join(QUERY_PARAMETERS)}, {typed}, {', '.join(more)}, {compared}, {', '.join(RESULT_PARAMETERS)}"


def _number(text: str, name: str) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidInput(
            f"{name}: must be a number, e.g. 12.5; got {text!r:.40}", field=name, code="epcis_query_parameter_invalid"
        )
    return number


def _more(query: Query, name: str, values: Sequence[str], items: list[str]) -> bool:
    """Read one of the parameters beyond ``QUERY_PARAMETERS`` into ``query``; False if ``name`` is none."""
    if name in ROLE_PARAMETERS:
        role, vocabulary = ROLE_PARAMETERS[name]
        query.roles.append((role, [(bare_word(v, vocabulary) or v) if vocabulary else v for v in items]))
    elif name in TIME_PARAMETERS:
        target, operator = TIME_PARAMETERS[name]
        moment = _time(values[-1], name)
        if operator is None:
            setattr(query, target, moment)
        else:
            query.sensor.append((target, operator, moment.astimezone(UTC), None))
    elif name in SENSOR_LIST_PARAMETERS:
        column = SENSOR_LIST_PARAMETERS[name]
        attribute = name[3:]
        if column == "type":
            wanted = [indexing.measurement_type(v) for v in items]
        else:
            wanted = [indexing.sensor_text(attribute, v) for v in items]
        query.sensor.append((column, "IN", wanted, None))
    elif name == "EQ_booleanValue":
        text = values[-1].strip().lower()
        if text not in ("true", "false"):
            raise InvalidInput(
                f"EQ_booleanValue: must be true or false, got {values[-1]!r:.40}",
                field=name,
                code="epcis_query_parameter_invalid",
            )
        query.sensor.append(("boolean_value", "EQ", text == "true", None))
    elif name == "EXISTS_sensorElementList":
        query.exists_sensor = True
    elif (compared := _COMPARED.match(name)) is not None:
        operator, attribute, uom = compared.groups()
        number = _number(values[-1], name)
        if attribute == "quantity":
            query.quantities.append((operator, uom, number))
        else:
            query.sensor.append((indexing.SENSOR_NUMBERS[attribute], operator, number, uom))
    else:
        return False
    return True


_MATCH_CLASSES = {"MATCH_epcClass", "MATCH_inputEPCClass", "MATCH_outputEPCClass", "MATCH_anyEPCClass"}
_PATTERN_SCHEMES = {
    ("sgtin", False): ("sgtin",),
    ("sgtin", True): ("lgtin", "gtin"),
    ("sgln", False): ("sgln", "gln"),
    ("sgln", True): ("sgln", "gln"),
    ("sscc", False): ("sscc",),
    ("sscc", True): ("sscc",),
    ("grai", False): ("grai",),
    ("grai", True): ("grai",),
}
"""(pattern scheme, class-level parameter) -> the schemes of stored identifiers it matches: an SGTIN pattern
matches serialised items in an EPC parameter, and the product's classes (GTIN, lots) in a class parameter."""


def _pattern(value: str, name: str, classes: bool) -> EpcPattern | str | None:
    """What a ``MATCH_`` value matches beyond itself: an ``EpcPattern`` for a pattern URI, or for a GTIN's Digital
    Link alone in an EPC parameter (every serialised item of that GTIN); the ``urn:epc:id:`` twin of a pattern
    that names every field; None for an identifier compared as it is. InvalidInput naming the parameter for a
    pattern written wrongly."""
    found = parse_epc_pattern(value, name)
    if found is not None:
        return found
    if value.startswith("urn:epc:idpat:"):
        return "urn:epc:id:" + value[len("urn:epc:idpat:") :]
    if classes or value.startswith("urn:"):
        return None
    try:
        key = parse_gs1_uri(value, name)
    except InvalidInput:
        return None
    if key.scheme != "gtin":
        return None
    digits = pattern_key(key)
    return EpcPattern("sgtin", digits, digits)


def _count(args: Mapping[str, Sequence[str]], name: str) -> int | None:
    if name not in args:
        return None
    text = args[name][-1]
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(
            f"{name}: must be a whole number of at least 1, got {text!r:.40}",
            field=name,
            code="epcis_query_parameter_invalid",
        )
    return int(text)


def parse_query(args: Mapping[str, Sequence[str]]) -> Query:
    """A ``Query`` from URL parameters (each a list of values; a list parameter may also be given once with
    values separated by ``|``, as the REST binding writes them). Unknown standard-looking parameters are
    refused naming them, so a client never believes a filter was applied when it was not."""
    query = Query()
    for name, values in args.items():
        if name in RESULT_PARAMETERS:
            continue
        items = [v for value in values for v in value.split("|") if v]
        typed = next((p for p in TYPED_PARAMETERS if name.startswith(p) and len(name) > len(p)), None)
        if typed is not None:
            role = TYPED_PARAMETERS[typed]
            query.typed.append((role, _qualifier(role, name[len(typed) :]), items))
            continue
        if _more(query, name, values, items):
            continue
        attribute = QUERY_PARAMETERS.get(name)
        if attribute is None:
            raise InvalidInput(
                f"{name}: this query parameter is not supported (supported: {_supported()})",
                field=name,
                code="epcis_query_parameter_unsupported",
            )
        if attribute.startswith(("ge_", "lt_")):
            setattr(query, attribute, _time(values[-1], name))
        elif attribute == "exists_error_declaration":
            query.exists_error_declaration = True
        else:
            if name.startswith("MATCH_"):
                for value in items:
                    _pattern(value, name, name in _MATCH_CLASSES)  # a pattern written wrongly: 400 naming it
            setattr(query, attribute, items)
    for action in query.actions or []:
        if action not in ACTIONS:
            raise InvalidInput(
                f"EQ_action: {action!r:.40} is not an action (ADD, OBSERVE or DELETE)",
                field="EQ_action",
                code="epcis_query_parameter_invalid",
            )
    if "orderBy" in args:
        query.order_by = args["orderBy"][-1]
        if query.order_by not in ORDER_BY:
            raise InvalidInput(
                f"orderBy: {query.order_by!r:.60} cannot order the answer (eventTime or recordTime; extension "
                "fields are not supported)",
                field="orderBy",
                code="epcis_query_parameter_invalid",
            )
    if "orderDirection" in args:
        direction = args["orderDirection"][-1]
        if direction not in ("ASC", "DESC"):
            raise InvalidInput(
                f"orderDirection: must be ASC or DESC, got {direction!r:.20}",
                field="orderDirection",
                code="epcis_query_parameter_invalid",
            )
        query.descending = direction == "DESC"
    query.event_count_limit = _count(args, "eventCountLimit")
    query.max_event_count = _count(args, "maxEventCount")
    if query.event_count_limit is not None and query.max_event_count is not None:
        raise InvalidInput(
            "eventCountLimit: cannot be given with maxEventCount (one limits the answer, the other refuses a "
            "larger one)",
            field="eventCountLimit",
            code="epcis_query_parameter_invalid",
        )
    if query.event_count_limit is not None and query.order_by is None:
        raise InvalidInput(
            "eventCountLimit: needs orderBy (which events are the first ones)",
            field="eventCountLimit",
            code="epcis_query_parameter_invalid",
        )
    if "perPage" in args:
        text = args["perPage"][-1]
        if not text.isdigit() or not 1 <= int(text) <= MAX_PER_PAGE:
            raise InvalidInput(f"perPage: must be a whole number 1-{MAX_PER_PAGE}, got {text!r:.40}", field="perPage")
        query.per_page = int(text)
    if "nextPageToken" in args:
        data = _token(args["nextPageToken"][-1])
        if data.get("by") != query.order_by or data.get("desc", True) != query.descending:
            raise InvalidInput(
                "nextPageToken: was given for another orderBy/orderDirection",
                field="nextPageToken",
                code="invalid_cursor",
            )
        query.after, query.after_key, query.left = data["after"], data.get("key"), data.get("left")
    return query


def _time(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(
            f"{name}: must be an ISO 8601 date-time with a UTC offset, e.g. 2024-01-31T12:00:00Z; got {text!r:.60}",
            field=name,
            code="invalid_date",
        )
    return moment


def token(after: int | str, **more: Any) -> str:
    """An opaque page token: the last row's id (events) or value (listings), and how the answer is ordered."""
    data = {"after": after} | {k: v for k, v in more.items() if v is not None}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _token(text: str, kind: type = int) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        after = data["after"]
        good = isinstance(after, str) if kind is str else isinstance(after, int) and not isinstance(after, bool)
        if good and (kind is str or after >= 0) and isinstance(data.get("key", ""), str):
            left = data.get("left")
            if left is None or (isinstance(left, int) and left > 0):
                return data
    except (ValueError, TypeError, KeyError, UnicodeDecodeError, AttributeError):
        pass
    raise InvalidInput("nextPageToken: not a token this server gave", field="nextPageToken", code="invalid_cursor")


def listing_after(text: str) -> str:
    """The value a listing's page token names (the last member of its page); 400 naming ``nextPageToken``
    for text this server did not give."""
    return str(_token(text, str)["after"])


def valid_token(text: str) -> bool:
    """Whether ``text`` is a page token this server gives (of events or of a listing)."""
    for kind in (int, str):
        try:
            _token(text, kind)
            return True
        except InvalidInput:
            continue
    return False


def _bare_steps(values: Iterable[str], kind: str) -> list[str]:
    return [bare_word(v, kind) or v for v in values]


def _epcs(role_filter: Sequence[str], values: Sequence[str], qualifier: str | None = None) -> Any:
    """The event names one of ``values`` in a list of ``role_filter``: the events found through the
    identifier index (an uncorrelated ``IN``, so the database starts from the identifiers, not the events).
    EPC patterns (and a GTIN's Digital Link in an EPC parameter) are ranges of the pattern index."""
    classes = set(role_filter) <= set(indexing.CLASS_ROLES)
    exact, patterns = [], []
    for value in values:
        found = _pattern(value, "MATCH_", classes) if qualifier is None else None
        if isinstance(found, EpcPattern):
            patterns.append(found)
        else:
            exact.append(normal_epc(found or value))
    options = []
    if exact:
        conditions = [EpcisEventEpc.role.in_(role_filter), EpcisEventEpc.epc.in_(exact)]
        if qualifier is not None:
            conditions.append(EpcisEventEpc.qualifier == qualifier)
        options.append(EpcisEvent.id.in_(select(EpcisEventEpc.event_pk).where(*conditions)))
    for pattern in patterns:
        conditions = [
            EpcisEventEpc.scheme.in_(_PATTERN_SCHEMES[pattern.scheme, classes]),
            EpcisEventEpc.role.in_(role_filter),
        ]
        if pattern.low is not None:
            conditions.append(EpcisEventEpc.pattern_key.between(pattern.low, pattern.high))
        options.append(EpcisEvent.id.in_(select(EpcisEventEpc.event_pk).where(*conditions)))
    return or_(*options)


_OPERATORS = {"EQ": "__eq__", "GT": "__gt__", "GE": "__ge__", "LT": "__lt__", "LE": "__le__", "IN": "in_"}


def _compare(column: Any, operator: str, value: Any) -> Any:
    return getattr(column, _OPERATORS[operator])(value)


def _quantities(q: Query) -> Any:
    """Events with one quantity element (of any quantity list) meeting every quantity parameter."""
    conditions = [EpcisEventEpc.role.in_(indexing.CLASS_ROLES), EpcisEventEpc.amount.is_not(None)]
    for operator, uom, number in q.quantities:
        conditions.append(_compare(EpcisEventEpc.amount, operator, number))
        if uom is not None:
            conditions.append(EpcisEventEpc.qualifier == uom)
    return EpcisEvent.id.in_(select(EpcisEventEpc.event_pk).where(*conditions))


def _sensor(q: Query) -> Any:
    """Events with one sensor report meeting every sensor parameter (any report for EXISTS_sensorElementList)."""
    conditions = []
    for column_name, operator, value, uom in q.sensor:
        column = getattr(EpcisSensorReport, column_name)
        conditions.append(_compare(column, operator, value))
        if uom is not None:
            conditions.append(EpcisSensorReport.uom == uom)
    return EpcisEvent.id.in_(select(EpcisSensorReport.event_pk).where(*conditions))


def _with_descendants(column: Any, role: str, values: Sequence[str]) -> Any:
    """The place is one of ``values`` or a sub-location of one: Lotline's location hierarchy is the GLN and
    its extensions (``.../414/{gln}/254/{ext}``, an SGLN URN's extension). Both are equality lookups on an
    index (the column's, and the ``rp_in``/``bl_in`` rows naming a sub-location's GLN)."""
    normal = [normal_epc(v)[:300] for v in values]
    return or_(column.in_(normal), _epcs([role], normal))


def _conditions(q: Query) -> list[Any]:
    conditions = []
    if q.event_types:
        conditions.append(EpcisEvent.event_type.in_(q.event_types))
    if q.ge_event_time:
        conditions.append(EpcisEvent.event_time >= q.ge_event_time.astimezone(UTC))
    if q.lt_event_time:
        conditions.append(EpcisEvent.event_time < q.lt_event_time.astimezone(UTC))
    if q.ge_record_time:
        conditions.append(EpcisEvent.record_time >= q.ge_record_time.astimezone(UTC))
    if q.lt_record_time:
        conditions.append(EpcisEvent.record_time < q.lt_record_time.astimezone(UTC))
    if q.actions:
        conditions.append(EpcisEvent.action.in_(q.actions))
    if q.biz_steps:
        conditions.append(EpcisEvent.biz_step.in_(_bare_steps(q.biz_steps, "bizstep")))
    if q.dispositions:
        conditions.append(EpcisEvent.disposition.in_(_bare_steps(q.dispositions, "disp")))
    # EQ_ and WD_ of one place together: the place matches either (as the standard reads them)
    for exact, wide, column, role in (
        (q.read_points, q.wd_read_points, EpcisEvent.read_point, "rp_in"),
        (q.biz_locations, q.wd_biz_locations, EpcisEvent.biz_location, "bl_in"),
    ):
        options = []
        if exact:
            options.append(column.in_([normal_epc(v) for v in exact]))
        if wide:
            options.append(_with_descendants(column, role, wide))
        if options:
            conditions.append(or_(*options))
    if q.event_ids:
        conditions.append(or_(EpcisEvent.event_id.in_(q.event_ids), EpcisEvent.hash_id.in_(q.event_ids)))
    for values, roles in (
        (q.match_epc, ["epc"]),
        (q.match_any_epc, list(EPC_ROLES)),
        (q.match_parent_id, ["parent"]),
        (q.match_input_epc, ["in_epc"]),
        (q.match_output_epc, ["out_epc"]),
        (q.match_epc_class, ["class"]),
        (q.match_input_epc_class, ["inclass"]),
        (q.match_output_epc_class, ["outclass"]),
        (q.match_any_epc_class, ["class", "inclass", "outclass"]),
    ):
        if values:
            conditions.append(_epcs(roles, values))
    for role, qualifier, values in q.typed:
        conditions.append(_epcs([role], values, qualifier))
    if q.exists_error_declaration:
        conditions.append(EpcisEvent.has_error_declaration.is_(True))
    for role, values in q.roles:
        normal = values if role in ("pd_set", "pd_unset", "err_why", "fix_id") else [normal_epc(v) for v in values]
        found = select(EpcisEventEpc.event_pk).where(EpcisEventEpc.role == role, EpcisEventEpc.epc.in_(normal))
        conditions.append(EpcisEvent.id.in_(found))
    declared = []
    if q.ge_error_declaration_time:
        declared.append(EpcisEvent.error_declaration_time >= q.ge_error_declaration_time.astimezone(UTC))
    if q.lt_error_declaration_time:
        declared.append(EpcisEvent.error_declaration_time < q.lt_error_declaration_time.astimezone(UTC))
    if declared:
        # through its index, as an uncorrelated IN: few events carry a declaration, and a planner that guesses
        # a quarter of them match would rather walk all events in page order
        conditions.append(EpcisEvent.id.in_(select(EpcisEvent.id).where(*declared)))
    if q.quantities:
        conditions.append(_quantities(q))
    if q.sensor or q.exists_sensor:
        conditions.append(_sensor(q))
    if q.capture_job is not None:
        conditions.append(EpcisEvent.capture_job_id == q.capture_job)
    return conditions


class QueryTooLarge(LotlineError):
    """Raised when a query would answer more events than its ``maxEventCount`` allows (the REST binding's
    ``QueryTooLargeException``, 413)."""

    status = 413
    code = "epcis_query_too_large"
    details = {"type": "epcisException:QueryTooLargeException"}


def query(ctx: Ctx, org: Organisation, q: Query) -> tuple[list[EpcisEvent], str | None]:
    """The events ``org`` may see that match ``q``, one page, and the next page's token (None on the last
    page). Ordered by ``q.order_by`` (eventTime or recordTime, then capture order) or, without it, in
    capture order; ``eventCountLimit`` caps the whole answer over its pages, ``maxEventCount`` refuses an
    answer that would be larger (``QueryTooLarge``)."""
    statement = _visible(ctx, org)
    conditions = _conditions(q)
    matching = statement.where(and_(*conditions)) if conditions else statement
    if q.max_event_count is not None:
        found = ctx.session.scalar(
            select(func.count()).select_from(
                matching.with_only_columns(EpcisEvent.id).limit(q.max_event_count + 1).subquery()
            )
        )
        if found is not None and found > q.max_event_count:
            raise QueryTooLarge(
                f"maxEventCount: the query matches more than {q.max_event_count} events; narrow it or raise "
                "maxEventCount",
                field="maxEventCount",
            )
    column = getattr(EpcisEvent, ORDER_BY[q.order_by]) if q.order_by else None
    if q.after is not None:
        if column is None:
            matching = matching.where(EpcisEvent.id > q.after)
        else:
            key = datetime.fromisoformat(q.after_key or "")
            key = key.astimezone(UTC) if key.tzinfo else key
            if q.descending:
                matching = matching.where(or_(column < key, and_(column == key, EpcisEvent.id < q.after)))
            else:
                matching = matching.where(or_(column > key, and_(column == key, EpcisEvent.id > q.after)))
    if column is None:
        ordered = matching.order_by(EpcisEvent.id)
    elif q.descending:
        ordered = matching.order_by(column.desc(), EpcisEvent.id.desc())
    else:
        ordered = matching.order_by(column, EpcisEvent.id)
    left = q.left if q.left is not None else q.event_count_limit
    size = min(q.per_page, left) if left is not None else q.per_page
    rows = list(ctx.session.scalars(ordered.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    if left is not None:
        left -= len(rows)
        more = more and left > 0
    if not (more and rows):
        return rows, None
    last = rows[-1]
    key_text = getattr(last, ORDER_BY[q.order_by]).isoformat() if q.order_by else None
    return rows, token(last.id, key=key_text, by=q.order_by, desc=None if q.descending else False, left=left)


# ------------------------------------------------------------------ listings (/epcs, /bizSteps, ...)

CBV_BIZ_STEPS = (
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning", "creating_class_instance",
    "cycle_counting", "decommissioning", "departing", "destroying", "disassembling", "dispensing", "encoding",
    "entering_exiting", "holding", "inspecting", "installing", "killing", "loading", "other", "packing", "picking",
    "receiving", "removing", "repackaging", "repairing", "replacing", "reserving", "retail_selling", "sampling",
    "sensor_reporting", "shipping", "staging_outbound", "stock_taking", "stocking", "storing", "transporting",
    "unloading", "unpacking", "void_shipping",
)  # fmt: skip
"""The CBV 2.0 business steps (bare words): ``/bizSteps`` lists them all, with any other step seen."""

CBV_DISPOSITIONS = (
    "active", "available", "completeness_inferred", "completeness_verified", "conformant", "container_closed",
    "container_open", "damaged", "destroyed", "dispensed", "disposed", "encoded", "expired", "in_progress",
    "in_transit", "inactive", "mismatch_class", "mismatch_instance", "mismatch_quantity", "needs_replacement",
    "no_pedigree_match", "non_conformant", "non_sellable_other", "partially_dispensed", "recalled", "reserved",
    "retail_sold", "returned", "sellable_accessible", "sellable_not_accessible", "stolen", "unavailable", "unknown",
)  # fmt: skip
"""The CBV 2.0 dispositions (bare words), listed by ``/dispositions``."""

LISTINGS = {
    "epcs": (None, ()),
    "bizSteps": ("biz_step", CBV_BIZ_STEPS),
    "bizLocations": ("biz_location", ()),
    "readPoints": ("read_point", ()),
    "dispositions": ("disposition", CBV_DISPOSITIONS),
}
"""Listing resource -> (the column it lists, the standard words it always lists)."""


def _visibility(org: Organisation) -> list[Any]:
    if access.OVERSIGHT_ROLES & set(org.roles):
        return [EpcisEvent.state == "captured"]
    return [EpcisEvent.state == "captured", EpcisEvent.organisation_id == org.id]


def listing(
    ctx: Ctx, org: Organisation, name: str, per_page: int = 30, page_token: str | None = None
) -> tuple[list[str], str | None]:
    """One page of a listing resource, sorted, and the next page's token: the EPCs (instance-level
    identifiers, as GS1 Digital Links where they have one), read points or business locations named by the
    events ``org`` may see; the business steps or dispositions - the CBV's words and any other value those
    events use. Nothing named only by events ``org`` may not see is listed."""
    column_name, standard = LISTINGS[name]
    after = _token(page_token, str)["after"] if page_token else None
    if column_name is None:
        column: Any = EpcisEventEpc.epc
        statement = (
            select(column)
            .join(EpcisEvent, EpcisEvent.id == EpcisEventEpc.event_pk)
            .where(EpcisEventEpc.role.in_(EPC_ROLES), *_visibility(org))
        )
    else:
        column = getattr(EpcisEvent, column_name)
        statement = select(column).where(column.is_not(None), *_visibility(org))
    if standard:
        # the standard words join in SQL, so the database orders and compares everything one way (its collation)
        words = union(statement, *(select(literal(w, String).label("v")) for w in standard)).subquery()
        column, statement = words.c[0], select(words.c[0])
    if after is not None:
        statement = statement.where(column > after)
    values = list(ctx.session.scalars(statement.distinct().order_by(column).limit(per_page + 1)))
    more = len(values) > per_page
    values = values[:per_page]
    return values, token(values[-1]) if more and values else None


EPC_FORMATS = ("No_Preference", "Always_GS1_Digital_Link", "Always_EPC_URN", "Never_Translates")
"""The values of the REST binding's ``GS1-EPC-Format`` request header."""


def epc_format(requested: str | None) -> bool:
    """Whether a query answer asked for with ``GS1-EPC-Format: requested`` names identifiers as GS1 Digital
    Links (``Always_GS1_Digital_Link``); every other value is answered as captured (a Digital Link does not
    carry the company prefix's length an EPC URN needs, so ``Always_EPC_URN`` cannot be honoured in general).
    A value the binding does not define is refused naming the header."""
    if requested is None or not requested.strip():
        return False
    if requested.strip() not in EPC_FORMATS:
        raise InvalidInput(
            f"GS1-EPC-Format: must be one of {', '.join(EPC_FORMATS)}; got {requested!r:.60}",
            field="GS1-EPC-Format",
            code="invalid_header",
        )
    return requested.strip() == "Always_GS1_Digital_Link"


_LINKED_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_LINKED_QUANTITIES = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_LINKED_PARTIES = (("sourceList", "source"), ("destinationList", "destination"))


def as_digital_links(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` with the GS1 keys it names (EPC lists, parentID, quantity classes, readPoint, bizLocation,
    sources and destinations) as GS1 Digital Links (``normal_epc``: what is not a GS1 key stays as it is)."""
    out = dict(event)
    for key in _LINKED_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [normal_epc(v) if isinstance(v, str) else v for v in out[key]]
    if isinstance(out.get("parentID"), str):
        out["parentID"] = normal_epc(out["parentID"])
    for key in _LINKED_QUANTITIES:
        if isinstance(out.get(key), list):
            out[key] = [
                q | {"epcClass": normal_epc(q["epcClass"])}
                if isinstance(q, dict) and isinstance(q.get("epcClass"), str)
                else q
                for q in out[key]
            ]
    for key in ("readPoint", "bizLocation"):
        place = out.get(key)
        if isinstance(place, dict) and isinstance(place.get("id"), str):
            out[key] = place | {"id": normal_epc(place["id"])}
    for key, field_name in _LINKED_PARTIES:
        if isinstance(out.get(key), list):
            out[key] = [
                p | {field_name: normal_epc(p[field_name])}
                if isinstance(p, dict) and isinstance(p.get(field_name), str)
                else p
                for p in out[key]
            ]
    return out


def exported(row: EpcisEvent, *, digital_links: bool = False) -> dict[str, Any]:
    """The event as captured (its GS1 keys as Digital Links with ``digital_links``), with ``recordTime``
    (when this repository received it)."""
    body = as_digital_links(row.body) if digital_links else dict(row.body)
    body["recordTime"] = row.record_time.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return body


JOB_KEY_PREFIX = "epcis-job:"
"""How the idempotency key of a Lotline event a capture job wrote begins (``jobs.step_key``):
``epcis-job:{job}:{event index}:{step}:{n}``; the job and the index name the stored event it came from."""


def originals(ctx: Ctx, events: Iterable[Event]) -> dict[int, EpcisEvent]:
    """The stored EPCIS event each Lotline event was written from, by Lotline event id: the captured event
    of the same capture job at the same position. Events recorded through Lotline's own forms (and those of
    the synchronous ``capture()`` service, which keeps no originals) have none."""
    wanted: dict[tuple[int, int], list[int]] = {}
    for event in events:
        key = event.idempotency_key or ""
        if not key.startswith(JOB_KEY_PREFIX):
            continue
        parts = key.split(":")
        if len(parts) != 5 or not (parts[1].isdigit() and parts[2].isdigit()):
            continue
        wanted.setdefault((int(parts[1]), int(parts[2])), []).append(event.id)
    if not wanted:
        return {}
    by_job: dict[int, set[int]] = {}
    for job, position in wanted:
        by_job.setdefault(job, set()).add(position)
    rows = ctx.session.scalars(
        select(EpcisEvent).where(
            EpcisEvent.state == "captured",
            or_(
                *(
                    and_(EpcisEvent.capture_job_id == job, EpcisEvent.position.in_(positions))
                    for job, positions in by_job.items()
                )
            ),
        )
    )
    out: dict[int, EpcisEvent] = {}
    for row in rows:
        for event_id in wanted.get((row.capture_job_id, row.position), []):
            out[event_id] = row
    return out


def of_job(ctx: Ctx, job_id: int) -> list[EpcisEvent]:
    """The captured events a capture job stored, in document order (duplicates were not stored)."""
    return list(
        ctx.session.scalars(
            select(EpcisEvent)
            .where(EpcisEvent.capture_job_id == job_id, EpcisEvent.state == "captured")
            .order_by(EpcisEvent.position)
        )
    )


def may_see(org: Organisation, row: EpcisEvent) -> bool:
    """Whether ``org`` may see a stored event whole (the query interface's rule): it captured it, or it has
    oversight."""
    return row.organisation_id == org.id or bool(access.OVERSIGHT_ROLES & set(org.roles))


def merged_context(rows: Sequence[EpcisEvent], base: Sequence[Any]) -> list[Any]:
    """One ``@context`` for events captured from several documents: GS1's context, then each prefix of the
    documents' inline objects (the first document to define a prefix wins)."""
    remote: list[str] = [c for c in base if isinstance(c, str)]
    prefixes: dict[str, Any] = {}
    for item in base:
        if isinstance(item, Mapping):
            prefixes.update(item)
    for row in rows:
        items = row.context if isinstance(row.context, list) else [row.context]
        for item in items:
            if isinstance(item, str) and item not in remote and item.rstrip("/") not in GS1_CONTEXTS:
                remote.append(item)
            elif isinstance(item, Mapping):
                for key, value in item.items():
                    prefixes.setdefault(key, value)
    return remote + ([prefixes] if prefixes else [])


def query_document(
    rows: Sequence[EpcisEvent],
    *,
    context: Sequence[Any],
    query_name: str = "SimpleEventQuery",
    digital_links: bool = False,
) -> dict[str, Any]:
    """An EPCIS 2.0 query document (``EPCISQueryDocument``) holding ``rows`` (their GS1 keys as Digital Links
    with ``digital_links``)."""
    return {
        "@context": merged_context(rows, context),
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "epcisBody": {
            "queryResults": {
                "queryName": query_name,
                "resultsBody": {"eventList": [exported(r, digital_links=digital_links) for r in rows]},
            }
        },
    }


def event_types(ctx: Ctx, org: Organisation) -> list[str]:
    """The event types the repository holds (any org may learn the five standard ones are supported)."""
    return list(EVENT_TYPES)
