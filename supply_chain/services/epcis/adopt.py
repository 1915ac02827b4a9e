"""The lot model of a Lotline export another instance captured: lots, events, lineage and custody built from
the events matched to the chain (``known_on_chain``, see ``chainmatch``).

When a capture job is done, every lot its ``known_on_chain`` events name that this store does not hold yet
becomes a lot here, and the chain is indexed for it by the one projection from chain to store
(``indexer.apply_logs``): sequence numbers, blocks, heads, status, custody and recall sources are what the
chain's logs say, never what the document says. What the document adds are the payloads, as far as the export
showed them (``lotline:kde``), each with its proof (``lotline:proof``) kept in ``Event.disclosure``: the
shown fields re-hash to the chain's ``dataHash`` with it, so verification here checks them against the chain
like any other event (``disclosure.disclosed_hash``); an event the document does not carry is indexed as a
gap (``payload not held by this node``), as the indexer does for any log whose payload it lacks.

The organisations that signed, created or hold such lots are organisations this instance holds no key of:
each becomes a row known only by its chain address (``Organisation.known_from_chain``, named
"{address} (known from the chain)"), with no role, user, token or key, so it never acts here.

Lineage (``LotInput``) comes from the transformation payloads shown, for input lots the store holds; the rows
pages show that copy anchored payloads (recalls, inspections, cold-chain summaries) are copied from the
payloads shown, as their services do when the event is written.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select

from supply_chain.domain.errors import LotlineError
from supply_chain.domain.events import event_date, field_visibility, instant
from supply_chain.domain.hashing import hex32
from supply_chain.domain.identifiers import lot_id
from supply_chain.domain.kinds import EventKind
from supply_chain.services import indexer
from supply_chain.services.epcis.chainmatch import KNOWN, ChainIndex
from supply_chain.services.epcis.vocabulary import parse_gln_uri
from supply_chain.services.orgs import register_location
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import (
    CaptureJob,
    EpcisEvent,
    Event,
    Inspection,
    Lot,
    LotInput,
    Organisation,
    Product,
    Recall,
    SensorBatch,
)

NOT_HELD = "payload not held by this node"
"""The failure reason the indexer gives an event whose payload this store lacks (the same words)."""

KNOWN_FROM_CHAIN = "(known from the chain)"
CHAIN_ONLY_NAME = re.compile(r"(0x[0-9a-fA-F]{40}) \(known from the chain\)")
"""The stored (English) name of an organisation known only from the chain, ``chain_only_name``: the label
pages translate where they show it (``app.i18n``); the API and the CLI give it as it is."""


def chain_only_name(address: str) -> str:
    """The name of an organisation this store knows only by its chain address."""
    return f"{address} {KNOWN_FROM_CHAIN}"


def chain_org(ctx: Ctx, orgs: dict[str, Organisation], address: str) -> Organisation:
    """The organisation of ``address``: the one this store knows, else a new row known only from the chain."""
    org = orgs.get(address.lower())
    if org is None:
        org = Organisation(
            name=chain_only_name(address),
            roles=[],
            chain_address=address,
            encrypted_key="",
            known_from_chain=True,
        )
        ctx.session.add(org)
        ctx.session.flush()
        orgs[address.lower()] = org
    return org


def adopt(ctx: Ctx, job_id: int) -> list[Lot]:
    """Build the lot model of the ``known_on_chain`` events of capture job ``job_id`` (done): the lots this
    store did not hold, indexed from the chain with the payloads the document showed, and verified. A lot the
    store already holds is left as it is. Returns the new lots."""
    rows = list(
        ctx.session.scalars(
            select(EpcisEvent)
            .where(EpcisEvent.capture_job_id == job_id, EpcisEvent.note == KNOWN, EpcisEvent.state == "captured")
            .order_by(EpcisEvent.position)
        )
    )
    shown: dict[tuple[str, str], dict[int, EpcisEvent]] = {}
    for row in rows:
        who = row.attribution or {}
        gtin, _, code = str(who.get("lot", "")).partition("/")
        if gtin and code and isinstance(who.get("seq"), int):
            shown.setdefault((gtin, code), {})[who["seq"]] = row
    if not shown:
        return []
    index = ChainIndex(ctx)
    orgs = index.orgs
    ids = {hex32(lot_id(*key)): key for key in shown}
    held = {lot.lot_id.lower(): lot for lot in ctx.session.scalars(select(Lot).where(Lot.lot_id.in_(list(ids))))}
    new: list[Lot] = []
    logs = []
    for lid, key in ids.items():
        if lid in held:
            continue  # held already: its events came from its writers (or the indexer, as gaps)
        lot_logs = ctx.ledger.logs(index.from_block, lot_id=lid)
        recorded = sorted((e for e in lot_logs if e.name == "LotEventRecorded"), key=lambda e: int(e.args["seq"]))
        if not recorded:
            continue
        lot = _new_lot(ctx, orgs, key, lid, shown[key], str(recorded[0].args["actor"]))
        # One pending row per event the chain holds, in its order, so the indexer matches each log to its
        # own row (by transaction, then order): the payload shown, or a gap.
        for log in recorded:
            row = shown[key].get(int(log.args["seq"]))
            ctx.session.add(_event(ctx, orgs, lot, log, row))
        new.append(lot)
        logs += lot_logs
    ctx.session.flush()
    _lineage(ctx, new, shown)
    logs.sort(key=lambda e: (e.block_number, e.log_index))
    report = indexer.apply_logs(ctx, logs)
    for lot in new:
        _copies(ctx, lot)
    ctx.session.flush()
    report.lots |= {lot.id for lot in new}
    indexer.reverify(ctx, report)
    signers = {str((row.attribution or {}).get("address", "")).lower() for row in rows}
    job = ctx.session.get(CaptureJob, job_id)
    if job is not None:
        name_from_header(ctx, [o for a, o in orgs.items() if a in signers], job.document)
    return new


def _header_attributes(element: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in element.get("attributes") or []:
        if isinstance(attribute, Mapping) and isinstance(attribute.get("id"), str):
            key = attribute["id"].rpartition("#")[2].rpartition(":")[2]
            out.setdefault(key, attribute.get("attribute"))
    return out


def name_from_header(ctx: Ctx, signers: list[Organisation], document: Mapping[str, Any]) -> None:
    """Name the organisations known only from the chain among ``signers`` and place their sites, from the
    document's header master data (a Lotline export's ``lotline:chainAddress`` attributes tie a Party element
    and each BusinessLocation element to a chain address). An organisation keeps its address for a name when
    the header does not name it or the name is another organisation's; a location whose GLN is registered
    already, or whose values break a rule, is left out. Writes nothing else, in the caller's unit of work."""
    chain_only = {
        o.chain_address.lower(): o
        for o in signers
        if o.known_from_chain and o.chain_address and o.name == chain_only_name(o.chain_address)
    }
    header = document.get("epcisHeader") if isinstance(document, Mapping) else None
    vocabularies = ((header or {}).get("epcisMasterData") or {}).get("vocabularyList") or []
    if not chain_only or not isinstance(vocabularies, list):
        return
    names: dict[str, str] = {}
    sites: list[tuple[Organisation, str, dict[str, Any]]] = []
    for vocabulary in vocabularies:
        if not isinstance(vocabulary, Mapping):
            continue
        kind = str(vocabulary.get("type") or "").rpartition(":")[2].rpartition("/")[2]
        for element in vocabulary.get("vocabularyElementList") or []:
            if not isinstance(element, Mapping):
                continue
            values = _header_attributes(element)
            owner = chain_only.get(str(values.get("chainAddress") or "").lower())
            if owner is None:
                continue
            if kind == "Party" and isinstance(values.get("name"), str):
                names.setdefault(owner.chain_address.lower(), values["name"].strip())
            elif kind in ("BusinessLocation", "ReadPoint"):
                with contextlib.suppress(LotlineError):
                    sites.append((owner, parse_gln_uri(element.get("id"), "id"), values))
                if isinstance(values.get("organisation"), str):
                    names.setdefault(owner.chain_address.lower(), values["organisation"].strip())
    used: set[str] = set()
    for address, name in names.items():
        taken = ctx.session.scalars(select(Organisation.id).where(Organisation.name == name)).first()
        if name and len(name) <= 200 and taken is None and name not in used:
            used.add(name)
            chain_only[address].name = name
    ctx.session.flush()
    for owner, gln, values in sites:
        try:
            with ctx.session.begin_nested():
                register_location(
                    ctx,
                    owner,
                    gln,
                    str(values.get("name") or f"GLN {gln}"),
                    str(values["streetAddressOne"]) if values.get("streetAddressOne") else None,
                    _float(values.get("latitude")),
                    _float(values.get("longitude")),
                    str(values.get("siteKind") or "other")[:32],
                )
        except LotlineError:
            continue  # registered already, or a value breaking a rule: the site stays unplaced


def _float(value: object) -> float | None:
    number = _decimal(value)
    return float(number) if number is not None else None


def _payload(row: EpcisEvent | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    if row is None:
        return None
    kde, proof = row.body.get("lotline:kde"), row.body.get("lotline:proof")
    if not isinstance(kde, Mapping) or not isinstance(proof, Mapping):
        return None
    return dict(kde), dict(proof)


def _event(ctx: Ctx, orgs: dict[str, Organisation], lot: Lot, log: Any, row: EpcisEvent | None) -> Event:
    kind = EventKind(int(log.args["kind"]))
    actor = chain_org(ctx, orgs, str(log.args["actor"]))
    event = Event(
        lot=lot,
        kind=kind,
        actor_org_id=actor.id,
        actor_address=str(log.args["actor"]),
        payload={},
        payload_hash=str(log.args["dataHash"]),
        visibility={},
        tx_hash=log.tx_hash,
        occurred_at=datetime.now(UTC),
        failure_reason=NOT_HELD,
    )
    _set_payload(event, kind, row)
    return event


def _set_payload(event: Event, kind: EventKind, row: EpcisEvent | None) -> None:
    found = _payload(row)
    if found is None or row is None:
        return
    kde, proof = found
    event.payload = kde
    event.disclosure = proof
    event.hash_scheme = int(proof.get("scheme", 1))
    event.visibility = {name: field_visibility(kind, name).value for name in kde}
    event.failure_reason = None
    event.occurred_at = _moment(event_date(kind, kde)) or row.event_time
    transformation = row.body.get("transformationID")
    if isinstance(transformation, str) and transformation.startswith("urn:uuid:"):
        with contextlib.suppress(ValueError):
            event.batch_id = uuid.UUID(transformation[len("urn:uuid:") :]).hex


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return instant(value) if "T" in value else datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    except ValueError:
        return None


def _decimal(value: object) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _new_lot(
    ctx: Ctx,
    orgs: dict[str, Organisation],
    key: tuple[str, str],
    lid: str,
    shown: Mapping[int, EpcisEvent],
    creator_address: str,
) -> Lot:
    gtin, code = key
    creator = chain_org(ctx, orgs, creator_address)
    first = _payload(shown.get(1))
    kde = first[0] if first else {}
    quantity = _decimal(kde.get("quantity"))
    if quantity is None or quantity <= 0:
        quantity = Decimal(1)  # the creating event not shown: the lot's size is unknown here
    unit = str(kde.get("unit") or "kg")
    product = ctx.session.scalars(select(Product).where(Product.gtin == gtin)).first()
    if product is None:
        name = kde.get("product_description") or kde.get("commodity") or f"GTIN {gtin}"
        product = Product(organisation=creator, gtin=gtin, name=str(name)[:200], unit=unit)
        ctx.session.add(product)
    lot = Lot(
        gtin=gtin,
        lot_code=code,
        lot_id=lid,
        product=product,
        creator_org_id=creator.id,
        custodian_org_id=creator.id,
        status="pending",
        quantity=quantity,
        unit=unit,
        initial_quantity=quantity,
        event_count=0,
    )
    harvest = kde.get("harvest_date") or kde.get("landing_date")
    for column, value in (("harvest_date", harvest), ("pack_date", kde.get("packing_date"))):
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                setattr(lot, column, date.fromisoformat(value[:10]))
    ctx.session.add(lot)
    ctx.session.flush()
    return lot


def _lineage(ctx: Ctx, new: list[Lot], shown: Mapping[tuple[str, str], Mapping[int, EpcisEvent]]) -> None:
    """Input lots of each new lot, from its transformation payload as shown (lots the store holds); the
    quantities taken leave the input lots' remaining quantity as their owners' stores keep it."""
    for lot in new:
        for row in shown[(lot.gtin, lot.lot_code)].values():
            found = _payload(row)
            if found is None or row.body.get("lotline:cte") != "transformation":
                continue
            for item in found[0].get("inputs") or []:
                if not isinstance(item, Mapping):
                    continue
                source = ctx.session.scalars(
                    select(Lot).where(Lot.gtin == str(item.get("gtin")), Lot.lot_code == str(item.get("lot_code")))
                ).first()
                taken = _decimal(item.get("quantity"))
                if source is None or taken is None or taken <= 0 or any(e.input_lot is source for e in lot.inputs):
                    continue  # not held here, or the quantity taken not shown: verification names the gap
                unit = str(item.get("unit") or source.unit)
                ctx.session.add(LotInput(output_lot=lot, input_lot=source, quantity=taken, unit=unit))
                if source in new and taken <= source.quantity:
                    source.quantity -= taken
    ctx.session.flush()


def _copies(ctx: Ctx, lot: Lot) -> None:
    """The rows pages read that copy anchored payloads: recalls issued on the lot (and their end),
    inspections, cold-chain summaries."""
    events = list(
        ctx.session.scalars(
            select(Event)
            .where(Event.lot_id == lot.id, Event.status == "confirmed", Event.failure_reason.is_(None))
            .order_by(Event.seq)
        )
    )
    recall: Recall | None = None
    for event in events:
        kind, payload = EventKind(int(event.kind)), event.payload
        if kind is EventKind.RECALL and not payload.get("source_lot_code") and payload.get("reason"):
            recall = Recall(
                lot=lot,
                event=event,
                reason=str(payload["reason"]),
                recall_class=str(payload.get("recall_class") or ""),
                instructions=payload.get("instructions"),
                contact=payload.get("contact"),
                issuer_org_id=event.actor_org_id,
                issued_at=event.occurred_at,
            )
            ctx.session.add(recall)
        elif kind is EventKind.RECALL_ENDED and recall is not None:
            recall.terminated_at = event.occurred_at
            recall.terminated_by_org_id = event.actor_org_id
            recall.termination_reason = payload.get("reason")
            recall.termination_hash = event.payload_hash
        elif kind is EventKind.INSPECTION and payload.get("outcome"):
            ctx.session.add(
                Inspection(
                    event=event,
                    lot=lot,
                    inspector_org_id=event.actor_org_id,
                    outcome=str(payload["outcome"]),
                    notes=payload.get("findings"),
                )
            )
        elif kind is EventKind.SENSOR_ANCHOR:
            batch = _batch(lot, event, payload)
            if batch is not None:
                ctx.session.add(batch)


def _batch(lot: Lot, event: Event, payload: Mapping[str, Any]) -> SensorBatch | None:
    low, high = _decimal(payload.get("min_temperature_c")), _decimal(payload.get("max_temperature_c"))
    start, end = _moment(payload.get("period_start")), _moment(payload.get("period_end"))
    count = payload.get("reading_count")
    root = payload.get("merkle_root")
    if None in (low, high, start, end) or not isinstance(count, int) or not isinstance(root, str):
        return None
    return SensorBatch(
        lot=lot,
        event=event,
        merkle_root=root,
        reading_count=count,
        period_start=start,
        period_end=end,
        min_temp=float(low),  # type: ignore[arg-type]
        max_temp=float(high),  # type: ignore[arg-type]
    )
