"""Read-side queries that assemble what the web pages show: lot lists, inboxes, timelines, lineage trees,
the consumer page and the health check.

Everything here reads the store (the chain index) and never writes; the one exception is `chain_status`,
which asks the node for its block number for `/healthz`. Privacy is applied here, not in templates: every
payload passes through `visible_view` at the level the viewer is entitled to, so a template cannot show a
field it was never given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from supply_chain.domain import policy
from supply_chain.domain.errors import InvalidInput, NotFound
from supply_chain.domain.events import Visibility, kind_spec, visible_view
from supply_chain.domain.identifiers import digital_link, parse_digital_link, parse_gtin, parse_lot_code
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import format_quantity
from supply_chain.services import credit, trace
from supply_chain.services.access import event_proof, level_for
from supply_chain.services.epcis import repository
from supply_chain.services.epcis.vocabulary import lot_uri
from supply_chain.services.runtime import Ctx
from supply_chain.services.verification_state import (
    STATE_LABELS,
    EventStates,
    checked_ago,
    combined_state,
    lot_facts,
    lot_state,
    oldest_check,
)
from supply_chain.store.models import (
    ChainDeployment,
    Document,
    Event,
    Inspection,
    Location,
    Lot,
    LotInput,
    Organisation,
    Product,
    Recall,
)
from supply_chain.store.models import held_lots as held
from supply_chain.store.queries import ancestors, lineage_version, named_organisation

KIND_LABELS: dict[EventKind, str] = {
    EventKind.HARVESTING: "Harvested",
    EventKind.COOLING: "Cooled",
    EventKind.INITIAL_PACKING: "Packed",
    EventKind.FIRST_LAND_BASED_RECEIVING: "Landed",
    EventKind.SHIPPING: "Shipped",
    EventKind.RECEIVING: "Received",
    EventKind.TRANSFORMATION: "Made from other lots",
    EventKind.INSPECTION: "Inspected",
    EventKind.HOLD: "Put on hold",
    EventKind.RELEASE: "Hold lifted",
    EventKind.RECALL: "Recalled",
    EventKind.SENSOR_ANCHOR: "Cold-chain readings",
    EventKind.CLOSE: "Closed",
    EventKind.CUSTODY_REJECTED: "Delivery refused",
    EventKind.CUSTODY_CANCELLED: "Shipment cancelled",
    EventKind.OBSERVATION: "Observation",
    EventKind.RECALL_ENDED: "Recall ended",
}


MAX_TREE_NODES = 200

JOURNEY_DETAIL_LIMIT = 8
"""Above this many ingredient lots (ancestors), the scan page summarises each ingredient in one line and leaves
its steps to the ingredient's own page, so the page stays small however long the lineage is."""


def kind_label(kind: EventKind | int) -> str:
    return KIND_LABELS.get(EventKind(int(kind)), EventKind(int(kind)).name.replace("_", " ").title())


# ------------------------------------------------------------------ health


def chain_status(ctx: Ctx) -> dict[str, Any]:
    """The chain mode, the node's latest block and the ledger's address; ChainUnavailable when the node does
    not answer or no ledger is deployed."""
    ledger = ctx.ledger
    return {
        "mode": ctx.settings.chain_mode,
        "chain_id": ledger.chain_id(),
        "block_number": ledger.block_number(),
        "ledger_address": ledger.address,
    }


def database_reachable(ctx: Ctx) -> bool:
    """True when the database answers a trivial query (the health check's second question)."""
    try:
        ctx.session.execute(text("SELECT 1"))
        return True
    except DBAPIError:
        ctx.session.rollback()
        return False


# ------------------------------------------------------------------ lists


def text_filter(q: str) -> Any:
    """Lots whose code, GTIN or product name holds ``q`` (any case). ``%``, ``_`` and the escape character are
    matched as themselves, not as LIKE wildcards. Needs Product joined."""
    text = q.strip()
    return or_(
        Lot.lot_code.icontains(text, autoescape=True),
        Lot.gtin.contains(text, autoescape=True),
        Product.name.icontains(text, autoescape=True),
    )


def lots_for_org(
    ctx: Ctx, org: Organisation, status: str | None = None, q: str | None = None, limit: int = 200
) -> list[Lot]:
    """Lots the organisation created, holds or was offered, newest first, optionally filtered."""
    query = (
        select(Lot)
        .join(Product, Lot.product_id == Product.id)
        .where(
            or_(
                Lot.creator_org_id == org.id,
                Lot.custodian_org_id == org.id,
                Lot.pending_custodian_org_id == org.id,
            )
        )
        .options(selectinload(Lot.product), selectinload(Lot.custodian), selectinload(Lot.recall_source))
        .order_by(Lot.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(Lot.status == status)
    if q and q.strip():
        query = query.where(text_filter(q))
    return list(ctx.session.scalars(query))


def search_lots(ctx: Ctx, q: str, limit: int = 50) -> list[Lot]:
    """Any lot whose code, GTIN or product name contains ``q`` (inspectors and regulators)."""
    if not q or not q.strip():
        return []
    query = (
        select(Lot)
        .join(Product, Lot.product_id == Product.id)
        .where(text_filter(q))
        .options(selectinload(Lot.product), selectinload(Lot.custodian), selectinload(Lot.recall_source))
        .order_by(Lot.id.desc())
        .limit(limit)
    )
    return list(ctx.session.scalars(query))


def find_lot(ctx: Ctx, text: str) -> Lot | None:
    """The lot named by a scanned Digital Link (URL or path) or by "GTIN lot-code"; None if ``text`` names no
    lot in either form. InvalidInput when it is clearly a label but malformed."""
    text = (text or "").strip()
    if not text:
        return None
    if "/01/" in text:
        gtin14, code = parse_digital_link(text)
    else:
        parts = text.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            return None
        gtin14, code = parse_gtin(parts[0]), parse_lot_code(parts[1])
    return ctx.session.scalars(select(Lot).where(Lot.gtin == gtin14, Lot.lot_code == code)).first()


def inbox(ctx: Ctx, org: Organisation) -> tuple[list[Lot], list[Lot]]:
    """(lots offered to the organisation, lots it has offered to others), both still in transit."""
    incoming = ctx.session.scalars(
        select(Lot).where(Lot.pending_custodian_org_id == org.id, Lot.status == "in_transit").order_by(Lot.id)
    )
    outgoing = ctx.session.scalars(
        select(Lot).where(Lot.custodian_org_id == org.id, Lot.status == "in_transit").order_by(Lot.id)
    )
    return list(incoming), list(outgoing)


def last_offer(lot: Lot) -> Event | None:
    """The shipping event of the lot's current custody offer (the latest shipping event)."""
    shipping = [e for e in lot.events if int(e.kind) == EventKind.SHIPPING and e.status != "failed"]
    return shipping[-1] if shipping else None


def receivers(ctx: Ctx, org: Organisation) -> list[Organisation]:
    """Organisations that can take custody of a lot, other than ``org``."""
    orgs = ctx.session.scalars(select(Organisation).where(Organisation.id != org.id).order_by(Organisation.name))
    return [o for o in orgs if policy.RECEIVING_ROLES & set(o.roles)]


def locations(ctx: Ctx) -> list[Location]:
    """Every registered location, with its organisation loaded, by organisation then name."""
    return list(
        ctx.session.scalars(
            select(Location)
            .join(Organisation, Location.organisation_id == Organisation.id)
            .options(selectinload(Location.organisation))
            .order_by(Organisation.name, Location.name)
        )
    )


def organisations(ctx: Ctx) -> list[Organisation]:
    return list(ctx.session.scalars(select(Organisation).order_by(Organisation.name)))


def recent_inspections(ctx: Ctx, org: Organisation, limit: int = 20) -> list[Inspection]:
    return list(
        ctx.session.scalars(
            select(Inspection).where(Inspection.inspector_org_id == org.id).order_by(Inspection.id.desc()).limit(limit)
        )
    )


def held_lots(ctx: Ctx, limit: int = 100) -> list[Lot]:
    return list(ctx.session.scalars(select(Lot).where(held()).order_by(Lot.id.desc()).limit(limit)))


def recalls(ctx: Ctx, limit: int = 50) -> list[Recall]:
    return list(ctx.session.scalars(select(Recall).order_by(Recall.id.desc()).limit(limit)))


def document_of(ctx: Ctx, lot: Lot, document_id: int) -> Document:
    document = ctx.session.get(Document, document_id)
    if document is None or document.lot_id != lot.id:
        raise NotFound(f"no document {document_id} on lot {lot.lot_code}", code="unknown_document")
    return document


def organisation(ctx: Ctx, org_id: int) -> Organisation:
    org = ctx.session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"no organisation {org_id}", code="unknown_organisation")
    return org


def lot_counts(ctx: Ctx, org: Organisation) -> dict[str, int]:
    rows = ctx.session.execute(
        select(Lot.status, func.count())
        .where(
            or_(
                Lot.creator_org_id == org.id,
                Lot.custodian_org_id == org.id,
                Lot.pending_custodian_org_id == org.id,
            )
        )
        .group_by(Lot.status)
    ).all()
    return {status: count for status, count in rows}


# ------------------------------------------------------------------ building blocks


def _places(ctx: Ctx, events: Iterable[Event]) -> dict[str, dict[str, Any]]:
    glns = {v for e in events for k, v in (e.payload or {}).items() if k.endswith("_gln") and isinstance(v, str)}
    if not glns:
        return {}
    owners = named_organisation(Location.organisation, joined=True)
    rows = ctx.session.scalars(select(Location).where(Location.gln.in_(glns)).options(owners))
    return {loc.gln: place(loc) for loc in rows}


def place(location: Location) -> dict[str, Any]:
    return {
        "gln": location.gln,
        "name": location.name,
        "address": location.address,
        "kind": location.kind,
        "latitude": location.latitude,
        "longitude": location.longitude,
        "organisation": location.organisation.name,
    }


def lot_ref(lot: Lot, base_url: str = "") -> dict[str, Any]:
    return {
        "gtin": lot.gtin,
        "lot_code": lot.lot_code,
        "product": lot.product.name,
        "digital_link": digital_link(base_url, lot.gtin, lot.lot_code),
    }


def _where(kind: EventKind, fields: dict[str, Any]) -> tuple[str | None, str | None]:
    """(the GLN the event happened at, the GLN it went to) from the fields the viewer may see."""
    if kind == EventKind.SHIPPING:
        return fields.get("from_gln"), fields.get("to_gln")
    if kind == EventKind.RECEIVING:
        return fields.get("to_gln"), None
    return fields.get("location_gln"), None


def _event_row(
    lot: Lot,
    event: Event,
    level: Visibility,
    places: dict[str, dict[str, Any]],
    own: bool,
    base_url: str,
    state_of: EventStates,
    proofs: bool = True,
    ref: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One step of a timeline; ``ref``: `lot_ref` of ``lot`` when the caller has it (the same for every step
    of a lot)."""
    kind = EventKind(int(event.kind))
    fields = visible_view(kind, event.payload or {}, level)
    at, to = _where(kind, fields)
    date_field = kind_spec(kind).date_field
    # What the step's headline (who, where, when) does not already say.
    extra = {k: v for k, v in fields.items() if not k.endswith("_gln") and k != date_field}
    return {
        "id": event.id,
        "seq": event.seq,
        "kind": kind.name.lower(),
        "label": kind_label(kind),
        "lot": ref if ref is not None else lot_ref(lot, base_url),
        "this_lot": own,
        "who": event.actor.name,
        "where": places.get(at, {}).get("name") if at else None,
        "where_gln": at,
        "to": places.get(to, {}).get("name") if to else None,
        "when": event.occurred_at.date().isoformat(),
        "occurred_at": event.occurred_at.isoformat(),
        "status": event.status,
        "state": state_of(lot, event),
        "block_number": event.block_number,
        "tx_hash": event.tx_hash if event.status == "confirmed" else None,
        "fields": fields,
        "extra": extra,
        # Only the consumer page (its JSON) hands proofs out; the participants' timeline does not show them.
        "proof": event_proof(event, level) if proofs else None,
    }


def _journey(
    ctx: Ctx,
    lot: Lot,
    chain: Sequence[tuple[Lot, int]],
    level_of: Any,
    base_url: str,
    include_failed: bool,
    window: slice | None = None,
    proofs: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The steps of ``chain`` in order as rows, and the places they name; with ``window`` only that slice of
    the ordered steps is built (a page of a long history)."""
    all_events = [
        (lot_, depth, e) for lot_, depth in chain for e in lot_.events if include_failed or e.status != "failed"
    ]
    far = 10**12
    all_events.sort(key=lambda t: (t[2].occurred_at, -t[1], t[2].seq or far, t[2].id))
    if window is not None:
        all_events = all_events[window]
    return _steps(ctx, lot, [(lot_, e) for lot_, _, e in all_events], level_of, base_url, EventStates(), proofs)


def _steps(
    ctx: Ctx,
    lot: Lot,
    steps: Sequence[tuple[Lot, Event]],
    level_of: Any,
    base_url: str,
    state_of: EventStates,
    proofs: bool,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``steps`` (each event with its lot), in the order given, as timeline rows; and the places they name."""
    places = _places(ctx, (e for _, e in steps))
    refs = {lot_.id: lot_ref(lot_, base_url) for lot_ in {lot_.id: lot_ for lot_, _ in steps}.values()}
    rows = [
        _event_row(lot_, e, level_of(e), places, lot_.id == lot.id, base_url, state_of, proofs, refs[lot_.id])
        for lot_, e in steps
    ]
    return rows, places


def _ancestor_chain(ctx: Ctx, lot: Lot, events: bool = True) -> list[tuple[Lot, int]]:
    """The lot and every ancestor with its depth, each loaded with what the pages show (one query per
    relationship for all of them, not one per lot); without their events when ``events`` is false (the
    participants' page asks SQL for the few it shows). A lot's product, creator and origin come in the lots'
    own statement (each lot has one of each)."""
    related = [(lot.id, 0), *ancestors(ctx.session, lot.id)]
    query = select(Lot).where(Lot.id.in_([i for i, _ in related])).options(*_chain_options(events))
    loaded = {lot_.id: lot_ for lot_ in ctx.session.scalars(query)}
    return [(loaded[i], depth) for i, depth in related if i in loaded]


@cache
def _chain_options(events: bool) -> tuple[Any, ...]:
    """`_ancestor_chain`'s loader options, built once (they are the same for every lot)."""
    options = (
        joinedload(Lot.product),
        named_organisation(Lot.creator, joined=True),
        joinedload(Lot.origin_location),
        selectinload(Lot.inspections).options(
            joinedload(Inspection.event), named_organisation(Inspection.inspector, joined=True)
        ),
        selectinload(Lot.sensor_batches),
    )
    if events:
        options += (selectinload(Lot.events).options(named_organisation(Event.actor)),)
    return options


def _origin_ref(key: tuple[str, str], known: dict[tuple[str, str], Lot], base_url: str) -> dict[str, Any]:
    lot = known.get(key)
    if lot is not None:
        return lot_ref(lot, base_url)
    gtin, code = key
    return {"gtin": gtin, "lot_code": code, "product": None, "digital_link": digital_link(base_url, gtin, code)}


def _recall_rows(
    ctx: Ctx,
    lot: Lot,
    base_url: str,
    chain: Sequence[tuple[Lot, int]],
    events_of: Mapping[int, Sequence[Event]] | None = None,
    state_of: EventStates | None = None,
) -> list[dict[str, Any]]:
    """The recalls that reach this lot, nearest first, from chain-anchored data only.

    They come from the confirmed RECALL events of the lot and its ancestors (`chain`), whose payloads
    verification hashes against the chain, and from any of those lots whose status (compared with the chain's
    by verification) is recalled while no recall event of it is held here. The recalls table, which SQL can
    edit, is not read: deleting its rows hides nothing. A recall reaches the lots made from its lot as their
    own recall events naming the source lot (``source_gtin``/``source_lot_code``); those are one recall,
    shown once, "via" the source lot.

    ``events_of``: each lot's recall and end-of-recall events in history order (`_hold_and_recall_events`),
    when its whole history is not loaded; ``state_of``: the states to judge them with."""
    own = (lot.gtin, lot.lot_code)
    known = {(lot_.gtin, lot_.lot_code): lot_ for lot_, _ in chain}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    ended: dict[tuple[str, str], dict[str, Any]] = {}
    state_of = state_of or EventStates()
    for lot_, _depth in chain:
        here = (lot_.gtin, lot_.lot_code)
        anchored = False
        for event in lot_.events if events_of is None else events_of.get(lot_.id, ()):
            if event.status == "confirmed" and int(event.kind) == EventKind.RECALL_ENDED:
                # The end of the recall issued on this lot, anchored on chain; the lot stays recalled.
                public = visible_view(EventKind.RECALL_ENDED, event.payload or {}, Visibility.PUBLIC)
                ended[here] = {"date": public.get("date"), "reason": public.get("reason")}
                continue
            if event.status != "confirmed" or int(event.kind) != EventKind.RECALL:
                continue
            anchored = True
            payload = event.payload or {}
            source = (payload.get("source_gtin"), payload.get("source_lot_code"))
            origin = (str(source[0]), str(source[1])) if all(source) else here
            row = rows.get(origin)
            if row is None or (origin == here and not row["issued_event"]):
                # The event issued on the source lot itself is the recall notice; a derived one stands in
                # until (or unless) it is found.
                row = rows[origin] = (row or {}) | {
                    "lot": _origin_ref(origin, known, base_url),
                    "this_lot": origin == own,
                    "via": None if origin == own else _origin_ref(origin, known, base_url),
                    "this_lot_recalled": (row or {}).get("this_lot_recalled", False),
                    "reason": payload.get("reason"),
                    "recall_class": payload.get("recall_class"),
                    "instructions": payload.get("instructions"),
                    "date": payload.get("date"),
                    "contact": payload.get("contact"),
                    "notice_url": payload.get("notice_url"),
                    "issued_by": event.actor.name,
                    "state": state_of(lot_, event),
                    "issued_event": origin == here,
                }
            if lot_.id == lot.id:
                row["this_lot_recalled"] = True
        if lot_.status == "recalled" and not anchored and here not in rows:
            # Recalled on chain (as verification last found), its recall event not held by this node.
            rows[here] = {
                "lot": lot_ref(lot_, base_url),
                "this_lot": here == own,
                "via": None if here == own else lot_ref(lot_, base_url),
                "this_lot_recalled": here == own,
                "reason": None,
                "recall_class": None,
                "instructions": None,
                "date": None,
                "contact": None,
                "notice_url": None,
                "issued_by": None,
                "state": state_of.lot_state(lot_),
                "issued_event": False,
            }
    if lot.status == "recalled" and rows:
        next(iter(rows.values()))["this_lot_recalled"] = True
    for origin, row in rows.items():
        row["ended"] = ended.get(origin)
    return [{k: v for k, v in row.items() if k != "issued_event"} for row in rows.values()]


HOLD_KINDS = frozenset({EventKind.HOLD, EventKind.INSPECTION, EventKind.RELEASE, EventKind.RECALL, EventKind.CLOSE})
"""The kinds of event `hold_notice` reads: those that place a hold and those that end one."""


def hold_notice(lot: Lot, events: Iterable[Event] | None = None) -> dict[str, Any] | None:
    """The hold on the lot, if any, from its confirmed (chain-anchored, hash-verified) events: a hold event or
    a failed inspection holds it, a release, recall or close ends the hold. A lot whose stored status says
    held is shown held even without such an event held here (never fewer warnings than the store has).
    ``events``: the lot's events of `HOLD_KINDS` in history order, when its whole history is not loaded."""
    last: Event | None = None
    for event in lot.events if events is None else events:
        if event.status != "confirmed":
            continue
        kind = int(event.kind)
        if kind == EventKind.HOLD or (kind == EventKind.INSPECTION and (event.payload or {}).get("outcome") == "fail"):
            last = event
        elif kind in (EventKind.RELEASE, EventKind.RECALL, EventKind.CLOSE):
            last = None
    if last is None and lot.status != "held":
        return None
    payload = last.payload if last is not None else {}
    return {
        "since": payload.get("date") or payload.get("inspection_date"),
        "reason": "failed inspection" if payload.get("outcome") == "fail" else None,
    }


def _inspection_rows(
    chain: Sequence[tuple[Lot, int]],
    org: Organisation | None,
    base_url: str,
    level_of: Any,
    state_of: EventStates | None = None,
) -> list[dict[str, Any]]:
    out = []
    state_of = state_of or EventStates()
    for lot_, _ in chain:
        for inspection in lot_.inspections:
            event = inspection.event
            if event.status == "failed":
                continue
            fields = visible_view(EventKind.INSPECTION, event.payload or {}, level_of(event))
            out.append(
                {
                    "lot": lot_ref(lot_, base_url),
                    "this_lot": lot_ is chain[0][0],
                    "outcome": inspection.outcome,
                    "date": fields.get("inspection_date"),
                    "inspector": inspection.inspector.name,
                    "body": fields.get("inspection_body"),
                    "standard": fields.get("standard"),
                    "certificate_sha256": fields.get("certificate_sha256"),
                    "state": state_of(lot_, event),
                    "fields": fields,
                    "documents": [
                        {
                            "id": d.id,
                            "filename": d.filename,
                            "sha256": d.sha256,
                            "size": d.size,
                            "content_type": d.content_type,
                        }
                        for d in inspection.documents
                    ]
                    if org is not None
                    else [],
                }
            )
    return out


def _cold_chain(
    chain: Sequence[tuple[Lot, int]], base_url: str, state_of: EventStates | None = None
) -> dict[str, Any] | None:
    batches = [(lot_, b) for lot_, _ in chain for b in lot_.sensor_batches if b.event.status != "failed"]
    if not batches:
        return None
    low = min(Decimal(str(b.min_temp)) for _, b in batches)
    high = max(Decimal(str(b.max_temp)) for _, b in batches)
    state_of = state_of or EventStates()
    return {
        "readings": sum(b.reading_count for _, b in batches),
        "period_start": min(b.period_start for _, b in batches).isoformat(),
        "period_end": max(b.period_end for _, b in batches).isoformat(),
        "min_temperature_c": _temp(low),
        "max_temperature_c": _temp(high),
        "batches": [
            {
                "lot": lot_ref(lot_, base_url),
                "readings": b.reading_count,
                "period_start": b.period_start.isoformat(),
                "period_end": b.period_end.isoformat(),
                "min_temperature_c": _temp(Decimal(str(b.min_temp))),
                "max_temperature_c": _temp(Decimal(str(b.max_temp))),
                "merkle_root": b.merkle_root,
                "state": state_of(lot_, b.event),
            }
            for lot_, b in batches
        ],
    }


def label_date(lot: Lot) -> tuple[str, str]:
    """What a shelf label prints as the lot's date: its packing date (for a lot made by transformation, the
    date it was made), else its harvest date, else the day it was recorded."""
    if lot.pack_date:
        return "Packed", lot.pack_date.isoformat()
    made = next((e for e in lot.events if int(e.kind) == EventKind.TRANSFORMATION and e.status != "failed"), None)
    if made is not None and made.payload.get("transformation_date"):
        return "Packed", str(made.payload["transformation_date"])[:10]
    if lot.harvest_date:
        return "Harvested", lot.harvest_date.isoformat()
    return "Recorded", lot.created_at.date().isoformat()


def _temp(value: Decimal) -> str:
    return "-" + format_quantity(-value) if value < 0 else format_quantity(value) if value > 0 else "0"


def _origins(chain: Sequence[tuple[Lot, int]]) -> list[dict[str, Any]]:
    out = []
    for lot_, _ in chain:
        if lot_.origin_location is None and lot_.harvest_date is None:
            continue
        out.append(
            {
                "lot": {"gtin": lot_.gtin, "lot_code": lot_.lot_code, "product": lot_.product.name},
                "producer": lot_.creator.name,
                "location": place(lot_.origin_location) if lot_.origin_location else None,
                "harvest_date": lot_.harvest_date.isoformat() if lot_.harvest_date else None,
                "pack_date": lot_.pack_date.isoformat() if lot_.pack_date else None,
            }
        )
    return out


# ------------------------------------------------------------------ the consumer page


def _product_facts(product: Product) -> dict[str, Any]:
    return {
        "name": product.name,
        "gtin": product.gtin,
        "category": product.category,
        "commodity": product.commodity,
        "variety": product.variety,
        "maker": product.organisation.name,
    }


def _made_where(journey: Sequence[dict[str, Any]]) -> str | None:
    """Where the lot was packed or made (its own packing or transformation step), else where it began."""
    own = [row for row in journey if row["this_lot"] and row["where"]]
    made = ("initial_packing", "transformation")
    return next((row["where"] for row in own if row["kind"] in made), own[0]["where"] if own else None)


def _ledger_facts(ctx: Ctx, lot: Lot) -> dict[str, Any]:
    """What someone needs to look the lot up on the chain themselves: the ledger contract (as deployed, from
    the store: this page never asks the node), the lot's on-chain id, its event count and head hash."""
    deployment = ctx.session.scalars(
        select(ChainDeployment).where(ChainDeployment.contract_name == "LotLedger").order_by(ChainDeployment.id.desc())
    ).first()
    return {
        "chain_id": deployment.chain_id if deployment else None,
        "address": deployment.address if deployment else None,
        "lot_id": lot.lot_id,
        "event_count": lot.event_count,
        "head_hash": lot.head_hash,
    }


def product_page(ctx: Ctx, gtin: str) -> dict[str, Any]:
    """The public page of a product when no lot is named (``/01/{gtin}`` alone, or with a serial number or an
    unknown lot): what it is and who makes it. InvalidInput for a malformed GTIN, NotFound if unknown."""
    gtin14 = parse_gtin(gtin)
    product = ctx.session.scalars(
        select(Product).where(Product.gtin == gtin14).options(selectinload(Product.organisation))
    ).first()
    if product is None:
        raise NotFound(f"no product with GTIN {gtin14}", code="unknown_product")
    return {"product": _product_facts(product)}


def compliance_line(ctx: Ctx, org: Organisation) -> dict[str, str]:
    """The maker's compliance line the scan page prints (``credit.line``): its name and record in words."""
    record = credit.line(ctx, org)
    return {"organisation": record["organisation"], "summary": record["summary"]}


def consumer_version(ctx: Ctx, lot: Lot, compliance: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything that decides what ``consumer_view`` returns for ``lot``, read cheaply (one statement, no event
    loaded): the version of its lineage (any event, status or verification change of the lot or an ancestor
    moves it), how long ago its weakest part was checked, in the words the page prints, and the maker's
    compliance line (``compliance_line`` unless given), which counts the maker's other lots. Pass the same
    ``compliance`` on to ``consumer_view``."""
    version = lineage_version(ctx.session, lot.id)
    return {
        "lineage": version.key,
        "verified_ago": checked_ago(version.oldest_check),
        "compliance": compliance or compliance_line(ctx, lot.creator),
    }


def _ingredient(lot: Lot, depth: int, base_url: str) -> dict[str, Any]:
    """One ingredient lot (an ancestor) as the scan page summarises it: what, which lot, where it was grown,
    whether it is recalled or held, and how many steps its own page lists."""
    return lot_ref(lot, base_url) | {
        "producer": lot.creator.name,
        "state": lot_state(lot),
        "status": lot.status,
        "depth": depth,
        "origin": lot.origin_location.name if lot.origin_location else None,
        "harvest_date": lot.harvest_date.isoformat() if lot.harvest_date else None,
        "steps": sum(1 for e in lot.events if e.status != "failed"),
    }


def _origin_groups(origins: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The origins of a long lineage grouped by product and place: one line per farm, not one per lot."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for o in origins:
        where = o["location"]["name"] if o["location"] else o["producer"]
        group = groups.setdefault(
            (o["lot"]["product"], where), {"product": o["lot"]["product"], "where": where, "lots": 0, "dates": []}
        )
        group["lots"] += 1
        if o["harvest_date"]:
            group["dates"].append(o["harvest_date"])
    return [
        {
            "product": g["product"],
            "where": g["where"],
            "lots": g["lots"],
            "first_harvest": min(g["dates"]) if g["dates"] else None,
            "last_harvest": max(g["dates"]) if g["dates"] else None,
        }
        for g in groups.values()
    ]


def consumer_view(
    ctx: Ctx, lot: Lot, compliance: dict[str, str] | None = None, *, every_step: bool = True
) -> dict[str, Any]:
    """Everything the public page of a lot shows, public fields only, as JSON-ready data.

    A lot with more than ``JOURNEY_DETAIL_LIMIT`` ingredient lots is ``collapsed``: the page summarises each
    ingredient (``ingredients``) and leaves its steps to the ingredient's own page. With ``every_step`` false
    (the HTML page) such a lot's ``journey`` then holds its own steps only, and ``inspections`` its own and
    those of ingredients that did not pass (``inspections_folded`` counts the others); the JSON keeps every step,
    each with its proof, for anyone checking the record."""
    base = ctx.settings.public_url
    chain = _ancestor_chain(ctx, lot)
    collapsed = len(chain) - 1 > JOURNEY_DETAIL_LIMIT
    shown = chain if every_step or not collapsed else chain[:1]
    journey, places = _journey(ctx, lot, shown, lambda _e: Visibility.PUBLIC, base, include_failed=False)
    inspections = _inspection_rows(chain, None, base, lambda _e: Visibility.PUBLIC)
    folded = 0
    if shown is not chain:
        kept = [i for i in inspections if i["this_lot"] or i["outcome"] != "pass"]
        inspections, folded = kept, len(inspections) - len(kept)
    origins = _origins(chain)
    hold = hold_notice(lot)
    record = compliance or compliance_line(ctx, lot.creator)
    state = combined_state(lot_ for lot_, _ in chain)
    checked = oldest_check(lot_ for lot_, _ in chain)
    recalls = _recall_rows(ctx, lot, base, chain)
    made_label, made_date = label_date(lot)
    return {
        "lot": {
            "gtin": lot.gtin,
            "lot_code": lot.lot_code,
            "status": lot.status,
            "digital_link": digital_link(base, lot.gtin, lot.lot_code),
            "harvest_date": lot.harvest_date.isoformat() if lot.harvest_date else None,
            "pack_date": lot.pack_date.isoformat() if lot.pack_date else None,
        },
        "product": _product_facts(lot.product),
        "producer": {"name": lot.creator.name},
        "state": state,
        "state_label": STATE_LABELS[state],
        "verified_at": checked.isoformat() if checked else None,
        "verified_ago": checked_ago(checked),
        "recalls": recalls,
        "hold": hold,
        "verdict": "do_not_eat" if recalls else "not_for_sale" if hold else "ok",
        "made": {
            "label": made_label,
            "date": made_date,
            "by": lot.creator.name,
            "where": _made_where(journey),
        },
        "ledger": _ledger_facts(ctx, lot),
        "origin": origins,
        "origin_groups": _origin_groups(origins) if collapsed else None,
        "ingredients": [_ingredient(lot_, depth, base) for lot_, depth in chain if depth > 0],
        "collapsed": collapsed,
        "journey": journey,
        "places": places,
        "inspections": inspections,
        "inspections_folded": folded,
        "cold_chain": _cold_chain(chain, base),
        "compliance": {"organisation": record["organisation"], "summary": record["summary"]},
    }


# ------------------------------------------------------------------ the participants' lot page


def lineage_tree(lot: Lot, direction: str, max_depth: int = 10) -> list[dict[str, Any]]:
    """The lots this lot was made from (``up``) or that were made from it (``down``), as a nested list with
    the quantity of each edge. Each lot appears once; a lot reached again is marked ``repeat``."""
    seen = {lot.id}
    budget = [MAX_TREE_NODES]

    def children(node: Lot, depth: int) -> list[dict[str, Any]]:
        edges = node.inputs if direction == "up" else node.outputs
        out = []
        for edge in edges:
            other = edge.input_lot if direction == "up" else edge.output_lot
            if budget[0] <= 0:
                out.append({"truncated": True})
                break
            budget[0] -= 1
            repeat = other.id in seen
            seen.add(other.id)
            out.append(
                {
                    "id": other.id,
                    "gtin": other.gtin,
                    "lot_code": other.lot_code,
                    "product": other.product.name,
                    "status": other.status,
                    "quantity": format_quantity(edge.quantity),
                    "unit": edge.unit,
                    "holder": other.custodian.name,
                    "repeat": repeat,
                    "children": [] if repeat or depth >= max_depth else children(other, depth + 1),
                }
            )
        return out

    return children(lot, 1)


TIMELINE_PAGE = 50
"""Steps per page of a participant's lot timeline: nobody reads a thousand rows, and building them all made the
page of a long-lived lot slow."""


def _lineage_edges(ctx: Ctx, lot: Lot, chain: Sequence[tuple[Lot, int]]) -> None:
    """Load in one statement what `lineage_tree` reads first: the input edges of the lot and of each of its
    ancestors (``chain``: all of them, so the backward tree reads no more), and the lot's own output edges with
    the lots made from it, their products and holders. The lots the forward tree reaches further down load
    theirs when it asks."""
    ids = [lot_.id for lot_, _ in chain]
    query = (
        select(LotInput)
        .where(or_(LotInput.output_lot_id.in_(ids), LotInput.input_lot_id == lot.id))
        .order_by(LotInput.output_lot_id, LotInput.input_lot_id)
        .options(
            joinedload(LotInput.output_lot).options(
                joinedload(Lot.product), named_organisation(Lot.custodian, joined=True)
            )
        )
    )
    inputs: dict[int, list[LotInput]] = {i: [] for i in ids}
    outputs: list[LotInput] = []
    for edge in ctx.session.scalars(query):
        if edge.output_lot_id in inputs:
            inputs[edge.output_lot_id].append(edge)  # ordered by input lot, as the relationship is
        if edge.input_lot_id == lot.id:
            outputs.append(edge)
    for lot_, _ in chain:
        set_committed_value(lot_, "inputs", inputs[lot_.id])
    set_committed_value(lot, "outputs", sorted(outputs, key=lambda edge: edge.output_lot_id))


def timeline_pages(lot: Lot, page: str | None, total: int | None = None) -> dict[str, int]:
    """Which page of the lot's timeline to show (``page`` as the reader gave it, None: the last page, the latest
    `TIMELINE_PAGE` steps): ``{"page", "pages", "first", "last", "total"}`` (first/last count steps from 1).
    ``total``: the lot's number of events when known (else its history is counted).

    Raises InvalidInput naming the timeline page when ``page`` is not a page the timeline has."""
    total = len(lot.events) if total is None else total
    pages = max(1, -(-total // TIMELINE_PAGE))
    if page is None:
        number = pages
    else:
        text = page.strip()
        if not text.isdigit() or not 1 <= int(text) <= pages:
            raise InvalidInput(
                f"timeline page: give a page number from 1 to {pages}", field="page", code="invalid_page"
            )
        number = int(text)
    # Counted from the latest step back, so the page shown by default is a full one; the first page (the
    # oldest steps) takes the remainder.
    last = total - (pages - number) * TIMELINE_PAGE
    first = max(1, last - TIMELINE_PAGE + 1)
    return {"page": number, "pages": pages, "first": first if total else 0, "last": last, "total": total}


def _history(lot_ids: Sequence[int], *where: Any) -> Any:
    """A statement for the events of ``lot_ids`` (with ``where``) in history order, each with its actor."""
    return (
        select(Event)
        .where(Event.lot_id.in_(lot_ids), *where)
        .order_by(Event.lot_id, Event.seq.asc().nulls_last(), Event.id)
        .options(named_organisation(Event.actor, joined=True))
    )


def _hold_and_recall_events(
    ctx: Ctx, lot: Lot, chain: Sequence[tuple[Lot, int]]
) -> tuple[list[Event], dict[int, list[Event]]]:
    """What `hold_notice` reads of the lot's history (its confirmed events of `HOLD_KINDS`) and what
    `_recall_rows` reads of the lot's and its ancestors' (each one's confirmed recall and end-of-recall events),
    in one statement, each in history order."""
    recall_kinds = (EventKind.RECALL, EventKind.RECALL_ENDED)
    own_holds = and_(Event.lot_id == lot.id, Event.kind.in_(sorted(HOLD_KINDS)))
    query = _history(
        [lot_.id for lot_, _ in chain], or_(Event.kind.in_(recall_kinds), own_holds), Event.status == "confirmed"
    )
    holds: list[Event] = []
    recalls: dict[int, list[Event]] = {}
    for event in ctx.session.scalars(query):
        if event.lot_id == lot.id and event.kind in HOLD_KINDS:
            holds.append(event)
        if event.kind in recall_kinds:
            recalls.setdefault(event.lot_id, []).append(event)
    return holds, recalls


def _timeline_window(ctx: Ctx, lot: Lot, paging: dict[str, int]) -> list[Event]:
    """The events of one page of the lot's timeline, in the timeline's order (when, then the chain's
    sequence, then the row): only those rows are read, whatever the length of the history."""
    if not paging["total"]:
        return []
    query = (
        select(Event)
        .where(Event.lot_id == lot.id)
        .order_by(Event.occurred_at, Event.seq.asc().nulls_last(), Event.id)
        .offset(paging["first"] - 1)
        .limit(paging["last"] - paging["first"] + 1)
        .options(named_organisation(Event.actor))
    )
    return list(ctx.session.scalars(query))


def _latest_steps(ctx: Ctx, lot: Lot) -> tuple[list[Event], int]:
    """The events of the timeline's default page (the latest `TIMELINE_PAGE`, in the timeline's order) and the
    lot's number of events, in one statement: the count (from the index) is a column of each row and sets
    the offset of the page."""
    total = select(func.count()).select_from(Event).where(Event.lot_id == lot.id).scalar_subquery()
    query = (
        select(Event, total)
        .where(Event.lot_id == lot.id)
        .order_by(Event.occurred_at, Event.seq.asc().nulls_last(), Event.id)
        .offset(case((total > TIMELINE_PAGE, total - TIMELINE_PAGE), else_=0))
        .limit(TIMELINE_PAGE)
        .options(named_organisation(Event.actor))  # a join would be sorted with every event of the lot
    )
    rows = ctx.session.execute(query).all()
    return [event for event, _ in rows], rows[0][1] if rows else 0


def _current_offer(ctx: Ctx, lot: Lot) -> Event | None:
    """`last_offer` with one indexed query instead of the lot's whole history."""
    query = (
        select(Event)
        .where(Event.lot_id == lot.id, Event.kind == EventKind.SHIPPING, Event.status != "failed")
        .order_by(Event.seq.desc().nulls_first(), Event.id.desc())
        .limit(1)
    )
    return ctx.session.scalars(query).first()


def lot_page(ctx: Ctx, lot: Lot, org: Organisation, timeline_page: str | None = None) -> dict[str, Any]:
    """What a participant sees of a lot: its timeline at its level (a page of `TIMELINE_PAGE` steps, the
    latest by default: ``timeline_page`` picks another), lineage both ways, custody, inspections with
    documents, cold chain, recalls.

    A lot's history is never loaded whole here: the page's steps, the events that say whether it is held or
    recalled and its last shipment are each one query, and the verification states come from `lot_facts`,
    so the work is that of one page of steps whatever the length of the history."""
    base = ctx.settings.public_url
    own = [(lot, 0)]
    chain = _ancestor_chain(ctx, lot, events=False)
    states = EventStates(lot_facts(ctx.session, [lot_ for lot_, _ in chain]))
    if timeline_page is None:
        window, total = _latest_steps(ctx, lot)
        paging = timeline_pages(lot, None, total)
    else:
        total = ctx.session.scalar(select(func.count()).select_from(Event).where(Event.lot_id == lot.id)) or 0
        paging = timeline_pages(lot, timeline_page, total)
        window = _timeline_window(ctx, lot, paging)
    level_of = lambda e: level_for(e, org)  # noqa: E731
    steps = [(lot, e) for e in window]
    timeline, places = _steps(ctx, lot, steps, level_of, base, states, proofs=False)
    offer = _current_offer(ctx, lot) if lot.status == "in_transit" else None
    offer_fields = visible_view(EventKind.SHIPPING, offer.payload, level_for(offer, org)) if offer else None
    if offer is not None and not all(g in places for g in _where(EventKind.SHIPPING, offer_fields or {}) if g):
        places = places | _places(ctx, [offer])  # the offer's step is on another page of the timeline
    holds, recall_events = _hold_and_recall_events(ctx, lot, chain)
    _lineage_edges(ctx, lot, chain)
    return {
        "lot": lot,
        "state": states.lot_state(lot),
        "journey_state": combined_state((lot_ for lot_, _ in chain), states.facts),
        "timeline": timeline,
        "timeline_paging": paging,
        "places": places,
        "up": lineage_tree(lot, "up"),
        "down": lineage_tree(lot, "down"),
        "offer": {
            "to": lot.pending_custodian.name if lot.pending_custodian else None,
            "fields": offer_fields,
            "event": offer,
        }
        if lot.status == "in_transit"
        else None,
        "inspections": _inspection_rows(own, org, base, level_of, states),
        "cold_chain": _cold_chain(own, base, states),
        "recalls": _recall_rows(ctx, lot, base, chain, recall_events, states),
        "hold": hold_notice(lot, holds),
        "verified_ago": checked_ago(lot.verified_at),
        "digital_link": digital_link(base, lot.gtin, lot.lot_code),
        "reported": repository.reported_about(ctx, org, lot_uri(lot.gtin, lot.lot_code)),
        "ancestors": [lot_ for lot_, depth in chain if depth],
    }


def trace_view(ctx: Ctx, lot: Lot, direction: str) -> dict[str, Any]:
    """The regulator's trace with each lot's key for linking, a count of affected lots and the trace as a
    graph of sites (``trace.graph``)."""
    result = trace.trace(ctx, lot, direction)
    keys = {
        (lot_.gtin, lot_.lot_code): lot_.id
        for lot_ in ctx.session.scalars(
            select(Lot).where(Lot.gtin.in_({i["gtin"] for i in result["lots"] if "gtin" in i}))
        )
    }
    for item in result["lots"]:
        item["id"] = keys.get((item.get("gtin"), item.get("lot_code")))
    result["affected"] = sum(1 for i in result["lots"] if i["affected_by_recall"])
    result["graph"] = trace.graph(ctx, result["lots"])
    return result


def compliance_records(ctx: Ctx) -> list[dict[str, Any]]:
    """Every organisation with its roles and compliance record (for the regulator)."""
    return [
        credit.summary(ctx, org) | {"id": org.id, "roles": list(org.roles)}
        for org in organisations(ctx)
        if set(org.roles) - {"admin"}  # the operator only deploys and onboards: it has no record to show
    ]


def parse_readings(text: str) -> list[dict[str, str]]:
    """Readings typed or pasted one per line as ``taken_at, temperature_c[, humidity]`` (a CSV header line
    is skipped); InvalidInput naming the line for anything else."""
    rows, problems = read_reading_lines(text)
    if problems:
        raise problems[0]
    return rows


def read_reading_lines(text: str) -> tuple[list[dict[str, str]], list[InvalidInput]]:
    """``parse_readings`` that keeps going: the readings, and one InvalidInput per line that is not one (a
    form shows them all at once)."""
    rows: list[dict[str, str]] = []
    problems: list[InvalidInput] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#") or line.lower().startswith("taken_at"):
            continue
        parts = [p.strip() for p in line.replace(";", ",").split(",")]
        if len(parts) not in (2, 3):
            problems.append(
                InvalidInput(
                    f"readings: line {number} is not 'taken_at, temperature_c[, humidity]': {line!r}",
                    field="readings",
                )
            )
            continue
        row = {"taken_at": parts[0], "temperature_c": parts[1]}
        if len(parts) == 3 and parts[2]:
            row["humidity"] = parts[2]
        rows.append(row)
    if not rows and not problems:
        problems.append(InvalidInput("readings: give at least one line 'taken_at, temperature_c'", field="readings"))
    return rows, problems
