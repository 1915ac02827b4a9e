"""Lot use cases: create, record events, transform, custody, inspections, holds, recalls, close, sensors.

Each use case is shaped route -> plan -> execute: it asks the rulebook (`check`, from `domain/policy.py`) for a
clear 403/409 before any transaction is tried, plans the rows (`plan_lot`, `plan_event`: payload validated,
invariants from `domain/invariants.py` checked against the record) and the typed contract calls
(`chain.ledger.Call`), then hands both to `writes.execute`, which gets the chain's own check, the
pending/confirm bookkeeping and the error decoding. EPCIS capture plans with the same public functions.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy import inspect as orm_state

from supply_chain.chain.ledger import Call
from supply_chain.domain import disclosure, invariants, policy
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from supply_chain.domain.events import (
    event_date,
    field_visibility,
    instant,
    kind_spec,
    parse_outcome,
    parse_when,
    validate_payload,
)
from supply_chain.domain.hashing import SALT_BYTES, SCHEME_SALTED, hex32, merkle_root, reading_leaf
from supply_chain.domain.identifiers import lot_id as compute_lot_id
from supply_chain.domain.identifiers import parse_gtin, parse_lot_code
from supply_chain.domain.kinds import CREATION_KINDS, FREE_KINDS, EventKind, InspectionOutcome
from supply_chain.domain.lineage import check_consumption, format_quantity, parse_quantity, parse_recall_class
from supply_chain.domain.policy import Action, Status
from supply_chain.domain.text import check_text
from supply_chain.services import indexer, notifications
from supply_chain.services.instance import private_folder, write_private
from supply_chain.services.orgs import location_by_gln
from supply_chain.services.runtime import Ctx
from supply_chain.services.writes import execute
from supply_chain.store.models import (
    Document,
    Event,
    Inspection,
    Location,
    Lot,
    LotInput,
    Organisation,
    Product,
    Recall,
    SensorBatch,
    SensorReading,
    confirmed_events,
)
from supply_chain.store.queries import ancestors, descendants

HANDLER_ROLES = policy.ordered(policy.HANDLER_ROLES)
RECEIVING_ROLES = policy.ordered(policy.RECEIVING_ROLES)
CERTIFICATE_TYPES = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
MAX_CERTIFICATE_BYTES = 5 * 1024 * 1024
_UNSAFE_NAME_CHARS = re.compile(r"[^\w.-]+")
NEW_EVENT_SCHEME = SCHEME_SALTED
"""The hash scheme new events are written under (docs/hashing.md section 6); stored events keep theirs."""


def certificate_name(filename: str | None, content_type: str) -> str:
    """The name a certificate is kept and served under: the last part of the uploader's name (never a path:
    ``../../x.html`` gives ``x``) in letters, digits, ``-``, ``_`` and ``.``, with the extension of its checked
    content type (``x.pdf``), so a download can neither climb folders nor pretend to be a page."""
    base = re.split(r"[\\/]", filename or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = _UNSAFE_NAME_CHARS.sub("_", stem).strip("._-")[:100] or "certificate"
    return stem + CERTIFICATE_TYPES.get(content_type, ".bin")


# ------------------------------------------------------------------ lookups


def get_lot(ctx: Ctx, gtin: str, lot_code: str) -> Lot:
    """The lot with this label; InvalidInput for a malformed GTIN or lot code, NotFound if unknown."""
    gtin14, code = parse_gtin(gtin), parse_lot_code(lot_code)
    lot = ctx.session.scalars(select(Lot).where(Lot.gtin == gtin14, Lot.lot_code == code)).first()
    if lot is None or lot.status == "pending" and lot.event_count == 0 and not _has_pending(lot):
        raise NotFound(f"no lot {code} of GTIN {gtin14}", code="unknown_lot")
    return lot


def _has_pending(lot: Lot) -> bool:
    return any(e.status == "pending" for e in lot.events)


# ------------------------------------------------------------------ the rulebook, asked about store rows


def recall_affected(ctx: Ctx, lot: Lot, lineage: Sequence[Lot] | None = None) -> bool:
    """True when an ancestor of the lot is recalled (its own recall may not have reached it on chain yet).

    ``lineage``: every ancestor of the lot, loaded in this session by a caller that walked the lineage already
    (the lot page), so it is not walked a second time."""
    if lineage is not None:
        return any(other.status == Status.RECALLED for other in lineage if other.id != lot.id)
    ids = [pk for pk, _ in ancestors(ctx.session, lot.id)]
    if not ids:
        return False
    return bool(ctx.session.scalar(select(exists().where(Lot.id.in_(ids), Lot.status == Status.RECALLED))))


def recall_ended(ctx: Ctx, lot: Lot) -> bool:
    """True when the recall issued on the lot is ended (its RECALL_ENDED event mined or on its way)."""
    query = exists().where(Event.lot_id == lot.id, Event.kind == EventKind.RECALL_ENDED, Event.status != "failed")
    return bool(ctx.session.scalar(select(query)))


def verdict(
    ctx: Ctx, action: Action, actor: Organisation, lot: Lot | None = None, asked: dict[str, bool] | None = None
) -> policy.Verdict:
    """The rulebook's answer for this actor and lot (``lot`` None: may it take this action at all). ``asked``:
    what the store already answered about this lot for another action (`verdicts`), filled as it is asked."""
    rule = policy.RULES[action]
    asked = {} if asked is None else asked

    def ask(name: str, question: Callable[[Ctx, Lot], bool]) -> bool:
        assert lot is not None
        if name not in asked:
            asked[name] = question(ctx, lot)
        return asked[name]

    subject = policy.Subject(
        actor_roles=frozenset(actor.roles),
        status=Status(lot.status) if lot is not None else None,
        is_custodian=lot is not None and lot.custodian_org_id == actor.id,
        is_pending_custodian=lot is not None and lot.pending_custodian_org_id == actor.id,
        is_creator=lot is not None and lot.creator_org_id == actor.id,
        recall_affected=lot is not None and rule.refuse_recall_affected and ask("recall_affected", recall_affected),
        recall_from_input=lot is not None and lot.recall_source_id not in (None, lot.id),
        recall_ended=lot is not None and action is Action.END_RECALL and ask("recall_ended", recall_ended),
        actor=actor.name,
        lot=lot.lot_code if lot is not None else "the lot",
    )
    if lot is None:
        rule_for_roles = policy.Rule(rule.action, rule.verb, rule.grants, frozenset(), None)
        return policy.decide_rule(rule_for_roles, subject)
    return policy.decide(action, subject)


def verdicts(
    ctx: Ctx, actions: Iterable[Action], actor: Organisation, lot: Lot, lineage: Sequence[Lot] | None = None
) -> dict[Action, policy.Verdict]:
    """`verdict` for each of ``actions`` on one lot, each question to the store (is an ancestor recalled, is
    the recall ended) asked once for all of them: a lot page asks about every action. ``lineage``: the lot's
    ancestors when the caller has them loaded (`recall_affected`)."""
    asked: dict[str, bool] = {}
    if lineage is not None:
        asked["recall_affected"] = recall_affected(ctx, lot, lineage)
    return {action: verdict(ctx, action, actor, lot, asked) for action in actions}


def check(ctx: Ctx, action: Action, actor: Organisation, lot: Lot | None = None, field: str | None = None) -> None:
    """Raise the rulebook's refusal (Forbidden / Conflict / NotFound, with its code) unless allowed."""
    answer = verdict(ctx, action, actor, lot)
    if not answer.allowed:
        assert answer.error is not None
        raise answer.error(answer.message, code=answer.code, field=field or answer.field)


# ------------------------------------------------------------------ event rows


def _check_glns(ctx: Ctx, payload: Mapping[str, Any]) -> None:
    """Every location a payload names must be a registered location (its GLN known to the network)."""
    for key, value in payload.items():
        if key.endswith("_gln") and isinstance(value, str):
            location_by_gln(ctx, value, field=f"payload.{key}")


def plan_event(
    ctx: Ctx,
    lot: Lot,
    actor: Organisation,
    kind: EventKind,
    payload: Mapping[str, Any],
    batch_id: str | None = None,
    idempotency_key: str | None = None,
    recipient: Organisation | None = None,
) -> Event:
    """The row of one event, checked: its payload validated and normalised, then every invariant asked
    against the record (quantities, units, sites, dates) before anything is signed. ``recipient``: whom a
    shipment goes to (its ``to_gln`` must be one of their sites)."""
    payload = dict(payload)
    required = set(kind_spec(kind).required)
    # Quantity and unit default to what the lot holds now (the whole lot moves, is cooled, ...).
    if "quantity" in required and payload.get("quantity") in (None, ""):
        payload["quantity"] = format_quantity(lot.quantity)
    if "unit" in required and not payload.get("unit"):
        payload["unit"] = lot.unit
    if lot.product is not None:
        payload = bind_product(kind, lot.product, payload)
    normalised = validate_payload(kind, payload)
    _check_invariants(ctx, lot, actor, EventKind(int(kind)), normalised, recipient)
    when = event_date(kind, normalised)
    # The salt stays off chain: without it the sealed (non-public) fields cannot be found by trying values.
    salt = secrets.token_bytes(SALT_BYTES) if NEW_EVENT_SCHEME == SCHEME_SALTED else None
    event = Event(
        lot=lot,
        kind=kind,
        actor_org_id=actor.id,
        actor_address=actor.chain_address,
        payload=normalised,
        payload_hash=hex32(disclosure.data_hash(kind, normalised, NEW_EVENT_SCHEME, salt)),
        hash_scheme=NEW_EVENT_SCHEME,
        salt=hex32(salt) if salt is not None else None,
        visibility={k: field_visibility(kind, k).value for k in normalised},
        occurred_at=instant(when) if when else datetime.now(UTC),
        batch_id=batch_id,
        idempotency_key=idempotency_key,
        status="pending",
    )
    ctx.session.add(event)
    _note_planned(ctx, lot, event)
    return event


def bind_product(kind: EventKind | int, product: Product, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` with the fields ``product`` defines (commodity, variety) filled in or refused when they
    contradict it (``invariants.bind_product_fields``)."""
    spec = kind_spec(kind)
    fields = {f.name: f.required for f in spec.fields if f.name in invariants.PRODUCT_BOUND_FIELDS}
    defined = {"commodity": product.commodity, "variety": product.variety}
    return invariants.bind_product_fields(payload, fields, defined, product.name)


_LOOKUPS = "lotline.lookups"
"""Key in ``session.info`` of the locations and products looked up during one batch's planning."""

_FACTS = "lotline.lot_facts"
"""Key in ``session.info`` of what ``_lot_facts`` has read of each lot's events during one batch's planning."""


@contextmanager
def planning_batch(ctx: Ctx, cache: dict[str, Any] | None = None) -> Iterator[None]:
    """While the rows of one batch are planned, each GLN and GTIN is looked up once, not once per event that
    names it (100 events at one site asked for the site 100 times, each query flushing the rows planned so
    far). ``cache``: look-ups to keep across several calls (a capture ``Writer``'s steps). Only what was
    found is kept: an unknown GLN or GTIN is asked again, and refused again, each time.

    Each lot's facts for the invariants (``_lot_facts``) are also kept while the outermost batch is planned,
    and brought up to date from the events the batch plans, so 100 events on one lot read them once. They
    are dropped when it ends (not kept in ``cache``, which outlives a batch's write: a refused write fails
    events, and facts must then be read afresh)."""
    info = ctx.session.info
    outer = info.get(_LOOKUPS)
    outer_facts = info.get(_FACTS)
    info[_LOOKUPS] = cache if cache is not None else (outer if outer is not None else {})
    if outer_facts is None:
        info[_FACTS] = {}
    try:
        yield
    finally:
        if outer is None:
            info.pop(_LOOKUPS, None)
        else:
            info[_LOOKUPS] = outer
        if outer_facts is None:
            info.pop(_FACTS, None)


def _location(ctx: Ctx, gln: str, field: str) -> Location:
    """``orgs.location_by_gln``, answered from the batch's cache while one is planned."""
    cache = ctx.session.info.get(_LOOKUPS)
    if cache is None:
        return location_by_gln(ctx, gln, field=field)
    location = cache.get("gln:" + gln)
    if location is None:
        location = cache["gln:" + gln] = location_by_gln(ctx, gln, field=field)
    return location


def _product(ctx: Ctx, gtin14: str) -> Product | None:
    """The registered product of a GTIN-14 (None if unknown), answered from the batch's cache if any."""
    cache = ctx.session.info.get(_LOOKUPS)
    product = cache.get("gtin:" + gtin14) if cache is not None else None
    if product is None:
        product = ctx.session.scalars(select(Product).where(Product.gtin == gtin14)).first()
        if cache is not None and product is not None:
            cache["gtin:" + gtin14] = product
    return product


def _sites(ctx: Ctx, payload: Mapping[str, Any]) -> dict[str, invariants.Site]:
    """The registered site of every GLN the payload names (unknown_gln for one that is not registered)."""
    sites = {}
    for key, value in payload.items():
        if key.endswith("_gln") and isinstance(value, str):
            location = _location(ctx, value, f"payload.{key}")
            sites[value] = invariants.Site(
                location.gln, location.organisation_id, location.organisation.name, location.kind or "other"
            )
    return sites


def _lot_facts(ctx: Ctx, lot: Lot) -> invariants.LotFacts | None:
    """What the record holds about ``lot`` (None for a lot whose creation event is not written yet).

    Only two events of the lot count: its first creation event and its last shipment (among those not
    failed), each found by index probes (``_edge_event``), so a write costs the same on a lot of 6 events and
    of 1,000 (the lot's whole history is never loaded here). While a batch is planned (``planning_batch``) they are read
    once per lot and kept up to date from the events the batch plans (``_note_planned``)."""
    memo = ctx.session.info.get(_FACTS)
    seen = memo.get(id(lot)) if memo is not None else None
    if seen is None or seen.lot is not lot:
        seen = _FactsRead.of(ctx, lot)
        if memo is not None:
            memo[id(lot)] = seen
    created, shipment = seen.created, seen.shipment
    if created is None:
        return None
    shipped = shipment.payload if shipment is not None else {}
    return invariants.LotFacts(
        lot.lot_code,
        lot.unit,
        Decimal(lot.quantity),
        created=event_date(created.kind, created.payload),
        last_shipped=event_date(EventKind.SHIPPING, shipped) if shipped else None,
        shipped_quantity=Decimal(shipped["quantity"]) if shipped.get("quantity") else None,
    )


def _note_planned(ctx: Ctx, lot: Lot, event: Event) -> None:
    """Keep the batch's facts of ``lot`` (if read) up to date with an event just planned on it."""
    memo = ctx.session.info.get(_FACTS)
    seen = memo.get(id(lot)) if memo is not None else None
    if seen is not None and seen.lot is lot:
        seen.note(event)


def _edge_event(ctx: Ctx, lot: Lot, kinds: Sequence[EventKind], *, last: bool) -> Event | None:
    """The first (or ``last``) event of ``kinds`` on ``lot`` that has not failed, in the order of ``Lot.events``
    (the chain's sequence, then the events not mined yet in the order planned): the best confirmed one by an
    index probe, compared with the lot's few unconfirmed ones."""
    order = (Event.seq.desc(), Event.id.desc()) if last else (Event.seq.asc(), Event.id.asc())
    mine = select(Event).where(Event.lot_id == lot.id, Event.kind.in_(kinds))
    # ``confirmed_events``: the status is written into the statement, so the database sees the partial indexes
    # on confirmed and unconfirmed events apply (index probes, not a read of every event of the lot)
    found = list(ctx.session.scalars(mine.where(confirmed_events()).order_by(*order).limit(1)))
    found += ctx.session.scalars(mine.where(~confirmed_events(), Event.status != "failed"))
    pick = max if last else min
    return pick(found, key=lambda e: (e.seq is None, e.seq or 0, e.id), default=None)


@dataclass
class _FactsRead:
    """What ``_lot_facts`` knows of a lot's events: its first creation event and its last shipment among
    those not failed, in the order of ``Lot.events``."""

    lot: Lot
    created: Event | None = None
    shipment: Event | None = None

    @classmethod
    def of(cls, ctx: Ctx, lot: Lot) -> _FactsRead:
        if lot.id is None or "events" in orm_state(lot).dict:
            # a lot not stored yet, or whose events this session holds already (one it created, as a capture's
            # new lots): its events are in memory, and reading them there asks the store nothing
            seen = cls(lot)
            for event in lot.events:
                seen.note(event)
            return seen
        created = _edge_event(ctx, lot, sorted(CREATION_KINDS), last=False)
        shipment = _edge_event(ctx, lot, [EventKind.SHIPPING], last=True)
        return cls(lot, created, shipment)

    def note(self, event: Event) -> None:
        """One more event, after every one seen so far."""
        if event.status == "failed":
            return
        kind = int(event.kind)
        if self.created is None and kind in CREATION_KINDS:
            self.created = event
        if kind == EventKind.SHIPPING:
            self.shipment = event


def _check_invariants(
    ctx: Ctx,
    lot: Lot,
    actor: Organisation,
    kind: EventKind,
    payload: Mapping[str, Any],
    recipient: Organisation | None,
) -> None:
    """Gather the facts a normalised payload is checked against and ask the invariants."""
    inputs = {}
    for item in payload.get("inputs") or () if kind is EventKind.TRANSFORMATION else ():
        source = ctx.session.scalars(
            select(Lot).where(Lot.gtin == item["gtin"], Lot.lot_code == item["lot_code"])
        ).first()
        if source is not None and (facts := _lot_facts(ctx, source)) is not None:
            inputs[(source.gtin, source.lot_code)] = facts
    invariants.check_event(
        kind,
        payload,
        actor=invariants.Party(actor.id, actor.name),
        sites=_sites(ctx, payload),
        now=datetime.now(UTC),
        lot=_lot_facts(ctx, lot),
        recipient=invariants.Party(recipient.id, recipient.name) if recipient is not None else None,
        inputs=inputs,
        derived=kind is EventKind.RECALL and "source_gtin" in payload,
    )


def _idempotent(ctx: Ctx, actor: Organisation, key: str | None) -> Event | None:
    if not key:
        return None
    event = ctx.session.scalars(select(Event).where(Event.idempotency_key == f"{actor.id}:{key}")).first()
    return event


def _key(actor: Organisation, key: str | None) -> str | None:
    return f"{actor.id}:{key}" if key else None


# ------------------------------------------------------------------ creating lots


@dataclass
class NewLot:
    """One lot to create: its label, how much, and (for a transformation) what it was made from."""

    gtin: str
    lot_code: str
    quantity: Any
    unit: str | None = None
    inputs: Sequence[tuple[Lot, Any]] = ()  # (input lot, quantity consumed, in the input lot's unit)


def plan_lot(
    ctx: Ctx,
    actor: Organisation,
    spec: NewLot,
    field: str = "",
    *,
    absent_on_chain: bool = False,
    absent_in_store: bool = False,
) -> tuple[Lot, Product]:
    """The row of a new lot, checked (product owner, unit, quantity, not existing). ``absent_on_chain``: the
    caller has just checked, with many lots at once (``Ledger.existing_lots``), that the chain has no such lot;
    ``absent_in_store``: likewise for the store, in this unit of work (a capture batch asks once for all of its
    new lots, instead of one query per lot, each flushing the rows planned before it).
    """
    gtin14 = parse_gtin(spec.gtin)
    code = parse_lot_code(spec.lot_code)
    quantity = parse_quantity(spec.quantity, field=f"{field}quantity")
    product = _product(ctx, gtin14)
    if product is None:
        raise InvalidInput(f"GTIN {gtin14} is not a registered product", field=f"{field}gtin", code="unknown_gtin")
    if product.organisation_id != actor.id:
        raise Forbidden(
            f"{actor.name} cannot create lots of GTIN {gtin14}: the product belongs to {product.organisation.name}",
            field=f"{field}gtin",
        )
    # Product-bound: the lot is measured in the product's unit; plausible for that unit.
    unit = invariants.lot_unit(spec.unit, product.unit, product.name, f"{field}unit")
    invariants.check_new_lot(quantity, unit, field)
    lid = hex32(compute_lot_id(gtin14, code))
    if (not absent_in_store and ctx.session.scalars(select(Lot).where(Lot.lot_id == lid)).first()) or (
        not absent_on_chain and ctx.ledger.get_lot(lid).exists
    ):
        raise Conflict(f"lot {code} of GTIN {gtin14} already exists", field=f"{field}lot_code", code="lot_exists")
    lot = Lot(
        gtin=gtin14,
        lot_code=code,
        lot_id=lid,
        product=product,
        creator_org_id=actor.id,
        custodian_org_id=actor.id,
        status="pending",
        quantity=quantity,
        initial_quantity=quantity,
        unit=unit,
        events=[],  # known to be empty: its facts for the invariants are read in memory, not asked of the store
    )
    ctx.session.add(lot)
    return lot, product


def _unit(unit: str, field: str) -> str:
    return invariants.check_unit_text(unit, field)


def create_lot(
    ctx: Ctx,
    actor: Organisation,
    gtin: str,
    lot_code: str,
    kind: EventKind | int,
    payload: Mapping[str, Any],
    quantity: Any,
    unit: str | None = None,
    idempotency_key: str | None = None,
) -> Lot:
    """Create a lot at harvest, initial packing or first land-based receiving."""
    if (previous := _idempotent(ctx, actor, idempotency_key)) is not None:
        return previous.lot
    check(ctx, Action.CREATE, actor)
    kind = EventKind(int(kind))
    if kind not in CREATION_KINDS or kind is EventKind.TRANSFORMATION:
        raise InvalidInput(
            "a lot starts with harvesting, initial_packing or first_land_based_receiving (use a transformation "
            "to make a lot from other lots)",
            field="kind",
        )
    lot, _ = plan_lot(ctx, actor, NewLot(gtin, lot_code, quantity, unit))
    event = plan_event(ctx, lot, actor, kind, payload, idempotency_key=_key(actor, idempotency_key))
    set_origin(ctx, lot, kind, event.payload)
    ctx.session.flush()
    execute(ctx, actor, [Call.create_lot(lot.gtin, lot.lot_code, [], kind, event.payload_hash)], [event])
    return lot


def set_origin(ctx: Ctx, lot: Lot, kind: EventKind, payload: Mapping[str, Any]) -> None:
    gln = (
        payload.get("location_gln")
        if kind is not EventKind.INITIAL_PACKING
        else (payload.get("harvest_location_gln") or payload.get("location_gln"))
    )
    if gln:
        lot.origin_location = _location(ctx, gln, "location_gln")
    harvest = payload.get("harvest_date") or payload.get("landing_date")
    if harvest:
        lot.harvest_date = date.fromisoformat(str(harvest)[:10])
    if payload.get("packing_date"):
        lot.pack_date = date.fromisoformat(str(payload["packing_date"])[:10])


def transform(
    ctx: Ctx,
    actor: Organisation,
    outputs: Sequence[NewLot],
    location_gln: str,
    transformation_date: str,
    extra: Mapping[str, Any] | None = None,
) -> list[Lot]:
    """Make new lots from lots the actor holds, in one transaction: a split is one input to several
    outputs, a merge several inputs to one output. Consumed quantities cannot exceed what is left."""
    check(ctx, Action.CREATE, actor)
    if not outputs:
        raise InvalidInput("a transformation needs at least one output lot", field="outputs")
    indexer.lock_for_planning(ctx, [input_lot for out in outputs for input_lot, _ in out.inputs])
    consumed: dict[int, Decimal] = {}
    for i, out in enumerate(outputs):
        if not out.inputs:
            raise InvalidInput(f"output {i + 1} lists no input lots", field=f"outputs[{i}].inputs")
        for j, (input_lot, qty) in enumerate(out.inputs):
            field = f"outputs[{i}].inputs[{j}]"
            check(ctx, Action.USE_AS_INPUT, actor, input_lot, field=field)
            amount = parse_quantity(qty, field=f"{field}.quantity")
            consumed[input_lot.id] = consumed.get(input_lot.id, Decimal(0)) + amount
            check_consumption(
                input_lot.quantity, consumed[input_lot.id], field=f"{field}.quantity", unit=input_lot.unit
            )
    batch = uuid.uuid4().hex
    lots, events, calls = [], [], []
    for i, out in enumerate(outputs):
        lot, _ = plan_lot(ctx, actor, out, field=f"outputs[{i}].")
        payload = dict(extra or {}) | {
            "location_gln": location_gln,
            "transformation_date": transformation_date,
            "quantity": format_quantity(lot.initial_quantity),
            "unit": lot.unit,
            "inputs": [
                {
                    "gtin": il.gtin,
                    "lot_code": il.lot_code,
                    "quantity": format_quantity(parse_quantity(q)),
                    "unit": il.unit,
                }
                for il, q in out.inputs
            ],
        }
        event = plan_event(ctx, lot, actor, EventKind.TRANSFORMATION, payload, batch_id=batch)
        set_origin(ctx, lot, EventKind.TRANSFORMATION, {})
        for il, q in out.inputs:
            amount = parse_quantity(q)
            ctx.session.add(LotInput(output_lot=lot, input_lot=il, quantity=amount, unit=il.unit))
            il.quantity -= amount
        lots.append(lot)
        events.append(event)
        inputs = [il.lot_id for il, _ in out.inputs]
        calls.append(Call.create_lot(lot.gtin, lot.lot_code, inputs, EventKind.TRANSFORMATION, event.payload_hash))
    ctx.session.flush()
    execute(ctx, actor, calls, events)
    return lots


# ------------------------------------------------------------------ events on a lot


def record_event(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    kind: EventKind | int,
    payload: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> Event:
    """Record a cooling, packing, harvesting, landing or observation event by the lot's custodian."""
    return record_events(ctx, actor, lot, [(kind, payload)], idempotency_key=idempotency_key)[0]


def record_events(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    items: Sequence[tuple[EventKind | int, Mapping[str, Any]]],
    idempotency_key: str | None = None,
) -> list[Event]:
    """Several events on one lot in one transaction, in order."""
    if (previous := _idempotent(ctx, actor, idempotency_key)) is not None:
        return [previous]
    if not items:
        raise InvalidInput("no events to record", field="events")
    check(ctx, Action.RECORD, actor, lot)
    events = []
    with planning_batch(ctx):
        for i, (kind, payload) in enumerate(items):
            kind = EventKind(int(kind))
            if kind not in FREE_KINDS:
                raise InvalidInput(
                    f"{kind.name.lower()} is recorded through its own action (custody, inspection, recall, ...), "
                    "not as a plain event",
                    field="kind" if len(items) == 1 else f"events[{i}].kind",
                )
            key = _key(actor, idempotency_key) if i == 0 else None
            events.append(plan_event(ctx, lot, actor, kind, payload, idempotency_key=key))
    for event in events:
        if event.kind is EventKind.INITIAL_PACKING and lot.pack_date is None:
            lot.pack_date = date.fromisoformat(str(event.payload["packing_date"])[:10])
        if event.kind is EventKind.HARVESTING and lot.harvest_date is None:
            lot.harvest_date = date.fromisoformat(str(event.payload["harvest_date"])[:10])
    ctx.session.flush()
    call = Call.record_events(lot.lot_id, [e.kind for e in events], [e.payload_hash for e in events])
    execute(ctx, actor, [call], events)
    return events


def _simple(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    kind: EventKind,
    payload: Mapping[str, Any],
    function: str,
    idempotency_key: str | None = None,
) -> Event:
    """Plan the event, then send the contract call that takes (lotId, dataHash) alone."""
    event = plan_event(ctx, lot, actor, kind, payload, idempotency_key=_key(actor, idempotency_key))
    ctx.session.flush()
    execute(ctx, actor, [Call.on_lot(function, lot.lot_id, event.payload_hash)], [event])
    return event


# ------------------------------------------------------------------ custody


def offer_custody(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    to: Organisation,
    payload: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> Event:
    """Ship the lot to another organisation (shipping CTE); it is in transit until accepted or rejected."""
    if (previous := _idempotent(ctx, actor, idempotency_key)) is not None:
        return previous
    check(ctx, Action.SHIP, actor, lot)
    if to.id == actor.id or not set(to.roles) & policy.RECEIVING_ROLES:
        raise InvalidInput(
            f"{to.name} cannot receive lots (needs a processor, distributor or retailer role)",
            field="to",
            code="recipient_cannot_receive",
        )
    event = plan_event(
        ctx, lot, actor, EventKind.SHIPPING, payload, idempotency_key=_key(actor, idempotency_key), recipient=to
    )
    ctx.session.flush()
    execute(ctx, actor, [Call.offer_custody(lot.lot_id, to.chain_address, event.payload_hash)], [event])
    return event


def accept_custody(ctx: Ctx, actor: Organisation, lot: Lot, payload: Mapping[str, Any]) -> Event:
    """Receive an offered lot (receiving CTE); the actor becomes its custodian."""
    check(ctx, Action.ACCEPT, actor, lot)
    return _simple(ctx, actor, lot, EventKind.RECEIVING, payload, "acceptCustody")


def reject_custody(ctx: Ctx, actor: Organisation, lot: Lot, reason: str, when: str | None = None) -> Event:
    """Refuse an offered lot: it goes back to the sender, who is told (inbox, e-mail, webhooks) in the same
    transaction, so a refusal that is not written tells no one."""
    check(ctx, Action.REJECT, actor, lot)
    sender = lot.custodian
    event = _simple(
        ctx, actor, lot, EventKind.CUSTODY_REJECTED, {"reason": reason, "date": when or _today()}, "rejectCustody"
    )
    product = lot.product.name if lot.product is not None else lot.gtin
    notifications.notify(
        ctx,
        sender,
        topic=notifications.TOPIC_CUSTODY_REFUSED,
        subject=f"{actor.name} refused the delivery of {product} lot {lot.lot_code}",
        text=(
            f"{actor.name} refused to receive lot {lot.lot_code} ({product}) on {event.payload['date']}. "
            f"Reason: {event.payload['reason']}\nThe lot is yours again: ship it elsewhere, or close it."
        ),
        link=f"/lots/{lot.id}",
    )
    return event


def cancel_custody_offer(ctx: Ctx, actor: Organisation, lot: Lot, reason: str, when: str | None = None) -> Event:
    check(ctx, Action.CANCEL, actor, lot)
    return _simple(
        ctx, actor, lot, EventKind.CUSTODY_CANCELLED, {"reason": reason, "date": when or _today()}, "cancelCustodyOffer"
    )


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


# ------------------------------------------------------------------ inspections and holds


def store_document(ctx: Ctx, filename: str, content_type: str, content: bytes) -> tuple[str, str]:
    """Keep an uploaded certificate under the instance folder, named by its SHA-256; returns (sha256, path
    relative to the instance folder)."""
    if content_type not in CERTIFICATE_TYPES:
        raise InvalidInput(
            f"certificate must be a PDF, PNG or JPEG file, got {content_type or 'unknown type'}", field="certificate"
        )
    if not content:
        raise InvalidInput("certificate file is empty", field="certificate")
    if len(content) > MAX_CERTIFICATE_BYTES:
        raise InvalidInput(
            f"certificate must be at most {MAX_CERTIFICATE_BYTES // (1024 * 1024)} MiB", field="certificate"
        )
    magic = {"application/pdf": b"%PDF", "image/png": b"\x89PNG", "image/jpeg": b"\xff\xd8\xff"}[content_type]
    if not content.startswith(magic):
        raise InvalidInput(f"certificate content is not a {content_type} file", field="certificate")
    sha = hashlib.sha256(content).hexdigest()
    relative = Path("documents") / f"{sha}{CERTIFICATE_TYPES[content_type]}"
    path = Path(ctx.settings.home) / relative
    private_folder(path.parent)
    if not path.exists():
        write_private(path, content)  # 0600, whole or not at all
    return sha, relative.as_posix()


def inspect(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    outcome: str | InspectionOutcome,
    payload: Mapping[str, Any],
    certificate: tuple[str, str, bytes] | None = None,
    notes: str | None = None,
) -> Event:
    """Record an inspection or lab result, with an optional certificate (filename, content type, bytes).
    A fail puts the lot on hold."""
    check(ctx, Action.INSPECT, actor, lot)
    result = parse_outcome(outcome)
    notes = check_text(notes.strip(), "notes", multiline=True) or None if notes else None
    payload = dict(payload) | {"outcome": result.name.lower()}
    stored = None
    if certificate is not None:
        filename, content_type, content = certificate
        sha, path = store_document(ctx, filename, content_type, content)
        filename = certificate_name(filename, content_type)
        payload["certificate_sha256"] = sha
        stored = (filename, content_type, len(content), sha, path)
    event = plan_event(ctx, lot, actor, EventKind.INSPECTION, payload)
    inspection = Inspection(event=event, lot=lot, inspector_org_id=actor.id, outcome=result.name.lower(), notes=notes)
    ctx.session.add(inspection)
    if stored:
        filename, content_type, size, sha, path = stored
        ctx.session.add(
            Document(
                inspection=inspection,
                lot=lot,
                uploader_org_id=actor.id,
                filename=filename[:255],
                content_type=content_type,
                size=size,
                sha256=sha,
                storage_path=path,
            )
        )
    ctx.session.flush()
    execute(ctx, actor, [Call.inspect(lot.lot_id, result, event.payload_hash)], [event])
    return event


def hold(ctx: Ctx, actor: Organisation, lot: Lot, reason: str, when: str | None = None) -> Event:
    check(ctx, Action.HOLD, actor, lot)
    return _simple(ctx, actor, lot, EventKind.HOLD, {"reason": reason, "date": when or _today()}, "hold")


def release(ctx: Ctx, actor: Organisation, lot: Lot, reason: str, when: str | None = None) -> Event:
    check(ctx, Action.RELEASE, actor, lot)
    return _simple(ctx, actor, lot, EventKind.RELEASE, {"reason": reason, "date": when or _today()}, "release")


# ------------------------------------------------------------------ recall, close, sensors


def recall(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    reason: str,
    recall_class: str,
    instructions: str,
    when: str | None = None,
    contact: str | None = None,
) -> Event:
    """Recall a lot and, in the same action, every lot made from it (its forward trace), on chain.

    The lot's own recall and the first ``policy.MAX_RECALL_BATCH`` downstream lots go in one transaction;
    a larger forward trace follows in further bounded transactions (``continue_recall``), parent lots
    first. Each downstream lot gets its own recall event naming the source lot."""
    check(ctx, Action.RECALL, actor, lot)
    klass = parse_recall_class(recall_class)
    payload = {
        "reason": reason,
        "recall_class": klass.value,
        "date": when or _today(),
        "instructions": instructions,
        "contact": contact,
    }
    event = plan_event(ctx, lot, actor, EventKind.RECALL, payload)
    ctx.session.add(
        Recall(
            lot=lot,
            event=event,
            reason=event.payload["reason"],
            recall_class=klass.value,
            instructions=event.payload["instructions"],
            issuer_org_id=actor.id,
            issued_at=datetime.now(UTC),
        )
    )
    ctx.session.flush()
    first = _unrecalled_descendants(ctx, lot)[: policy.MAX_RECALL_BATCH]
    events, call = _plan_derived(ctx, actor, lot, event.payload, first)
    calls = [Call.on_lot("recall", lot.lot_id, event.payload_hash)] + ([call] if call else [])
    ctx.session.flush()
    execute(ctx, actor, calls, [event, *events])
    continue_recall(ctx, lot)
    return event


def _unrecalled_descendants(ctx: Ctx, source: Lot) -> list[Lot]:
    """The lots made from ``source`` that its recall has not reached yet, parent lots first. The walk stops at
    lots recalled already (by another recall): everything made from those is recalled with them."""
    reached = descendants(ctx.session, source.id)
    if not reached:
        return []
    by_id = {x.id: x for x in ctx.session.scalars(select(Lot).where(Lot.id.in_([pk for pk, _ in reached])))}
    out, blocked = [], set()
    for pk, _depth in reached:
        lot = by_id.get(pk)
        if lot is None or lot.status == Status.PENDING:
            continue
        inputs = {edge.input_lot_id for edge in lot.inputs}
        open_paths = [i for i in inputs if i == source.id or (i in by_id and i not in blocked)]
        if lot.status == Status.RECALLED or not open_paths:
            blocked.add(pk)
            continue
        out.append(lot)
    return out


def _plan_derived(
    ctx: Ctx, actor: Organisation, source: Lot, source_payload: Mapping[str, Any], lots: Sequence[Lot]
) -> tuple[list[Event], Call | None]:
    if not lots:
        return [], None
    fields = {
        k: source_payload[k]
        for k in ("reason", "recall_class", "date", "instructions", "contact")
        if source_payload.get(k)
    }
    fields |= {"source_gtin": source.gtin, "source_lot_code": source.lot_code}
    events = [plan_event(ctx, lot, actor, EventKind.RECALL, fields) for lot in lots]
    return events, Call.recall_derived(source.lot_id, [lot.lot_id for lot in lots], [e.payload_hash for e in events])


def recall_progress(ctx: Ctx, source: Lot) -> dict[str, int]:
    """How far a recall has reached: the lots made from ``source`` and how many of them are recalled."""
    reached = [pk for pk, _ in descendants(ctx.session, source.id)]
    recalled = 0
    if reached:
        recalled = len(
            list(ctx.session.scalars(select(Lot.id).where(Lot.id.in_(reached), Lot.status == Status.RECALLED)))
        )
    return {"downstream": len(reached), "recalled": recalled, "remaining": len(reached) - recalled}


def continue_recall(ctx: Ctx, source: Lot) -> int:
    """Carry a recall to the downstream lots it has not reached yet, ``policy.MAX_RECALL_BATCH`` per
    transaction, signed by the recall's issuer. Returns how many lots were recalled. Safe to call again
    (after a crash or an outage, start-up calls it for every recall)."""
    recall_row = ctx.session.scalars(
        select(Recall).where(Recall.lot_id == source.id).order_by(Recall.id.desc())
    ).first()
    if recall_row is None or source.status != Status.RECALLED:
        return 0
    issuer, source_payload = recall_row.issuer, recall_row.event.payload
    done = 0
    while batch := _unrecalled_descendants(ctx, source)[: policy.MAX_RECALL_BATCH]:
        if any(e.status == "pending" for lot in batch for e in lot.events if int(e.kind) == EventKind.RECALL):
            break  # a batch is on its way; the next start settles it
        events, call = _plan_derived(ctx, issuer, source, source_payload, batch)
        assert call is not None
        ctx.session.flush()
        execute(ctx, issuer, [call], events)
        done += len(batch)
    return done


def continue_recalls(ctx: Ctx) -> int:
    """``continue_recall`` for every recall whose lot is recalled on chain (called at start-up)."""
    sources = ctx.session.scalars(
        select(Lot).join(Recall, Recall.lot_id == Lot.id).where(Lot.status == Status.RECALLED).distinct()
    )
    return sum(continue_recall(ctx, source) for source in list(sources))


def plan_end_recall(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    reason: str,
    when: str | None = None,
    *,
    recall_class: str | None = None,
    effectiveness: str | None = None,
) -> tuple[Event, Call]:
    """Plan the end (termination) of the recall issued on ``lot``: its RECALL_ENDED event, checked by the
    rulebook and the invariants, and the ``endRecall`` call that anchors it. The caller records what else the
    end changes in the same unit of work, then sends both with ``writes.execute``. The lot stays recalled."""
    check(ctx, Action.END_RECALL, actor, lot)
    payload = {
        "reason": reason,
        "date": when or _today(),
        "recall_class": recall_class,
        "effectiveness": effectiveness,
    }
    event = plan_event(ctx, lot, actor, EventKind.RECALL_ENDED, payload)
    ctx.session.flush()
    return event, Call.on_lot("endRecall", lot.lot_id, event.payload_hash)


def close(ctx: Ctx, actor: Organisation, lot: Lot, reason: str, when: str | None = None) -> Event:
    check(ctx, Action.CLOSE, actor, lot)
    return _simple(ctx, actor, lot, EventKind.CLOSE, {"reason": reason, "date": when or _today()}, "close")


def anchor_readings(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    readings: Sequence[Mapping[str, Any]],
    sensor_id: str | None = None,
    location_gln: str | None = None,
) -> Event:
    """Anchor a batch of cold-chain readings ({taken_at, temperature_c[, humidity]}) by their Merkle root.

    The custodian may anchor (while in transit the sender; the receiver once it has accepted)."""
    check(ctx, Action.ANCHOR, actor, lot)
    if not readings:
        raise InvalidInput("no readings given", field="readings")
    rows = validate_readings(readings)
    rows.sort(key=reading_order)
    root = merkle_root([reading_leaf(r) for r in rows])
    temps = [Decimal(t) for t in {r["temperature_c"] for r in rows}]
    payload = {
        "merkle_root": hex32(root),
        "reading_count": len(rows),
        "period_start": rows[0]["taken_at"],
        "period_end": rows[-1]["taken_at"],
        "min_temperature_c": format_quantity_signed(min(temps)),
        "max_temperature_c": format_quantity_signed(max(temps)),
        "sensor_id": sensor_id,
        "location_gln": location_gln,
    }
    event, call = plan_sensor_batch(ctx, actor, lot, rows, payload, root=root)
    ctx.session.flush()
    execute(ctx, actor, [call], [event])
    return event


def reading_order(reading: Mapping[str, Any]) -> tuple[datetime, str]:
    """The order of a batch's validated readings among its Merkle leaves: by the instant each was taken (its
    text alone would put ``09:00+00:00`` before ``10:00+02:00``, which is 08:00 UTC, and an upload crossing a
    change of clock, as a logger's does twice a year, would end before it began), then by its text, so two
    readings of the same instant written with different offsets still have one order."""
    taken = reading["taken_at"]
    return datetime.fromisoformat(taken), taken


def plan_sensor_batch(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    rows: Sequence[Mapping[str, Any]],
    payload: Mapping[str, Any],
    *,
    root: bytes | None = None,
) -> tuple[Event, tuple[str, list[Any]]]:
    """The rows of an anchoring (event, batch, readings) and its contract call, not yet sent: `rows` are
    validated readings in time order; their Merkle root is what the call anchors (computed here unless the
    caller, which put it in the payload, passes it: each leaf is hashed once)."""
    if root is None:
        root = merkle_root([reading_leaf(r) for r in rows])
    event = plan_event(ctx, lot, actor, EventKind.SENSOR_ANCHOR, payload)
    # Readings repeat their values (a logger's temperatures move by tenths): one Decimal per distinct text.
    numbers = {t: Decimal(t) for r in rows for t in (r["temperature_c"], r.get("humidity")) if t is not None}
    temps = [numbers[t] for t in {r["temperature_c"] for r in rows}]
    batch = SensorBatch(
        lot=lot,
        event=event,
        merkle_root=hex32(root),
        reading_count=len(rows),
        period_start=instant(rows[0]["taken_at"]),
        period_end=instant(rows[-1]["taken_at"]),
        min_temp=min(temps),
        max_temp=max(temps),
    )
    ctx.session.add(batch)
    ctx.session.flush()  # the batch's id, for its readings
    insert_readings(ctx, batch.id, event.payload.get("sensor_id") or "", rows, numbers)
    return event, Call.anchor_readings(lot.lot_id, root, len(rows), event.payload_hash)


_READING_COLUMNS = ("batch_id", "taken_at", "temperature_c", "humidity", "sensor_id", "leaf_index")
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_SQLITE_DATETIME = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
"""SQLAlchemy's storage format of a date-time on SQLite (``sqlalchemy.dialects.sqlite.DATETIME``)."""


def insert_readings(
    ctx: Ctx, batch_id: int, sensor: str, rows: Sequence[Mapping[str, Any]], numbers: Mapping[str, Decimal]
) -> None:
    """Insert a batch's validated readings (``rows``, leaf order; ``numbers`` maps each number text in them to
    its Decimal) in one executemany of the driver's own statement, whatever the mix of readings with and without
    a humidity (an ORM bulk insert leaves out None values and split such a mix into one statement per reading).
    The values are given in the form SQLAlchemy would bind them: each column's bind processor of this dialect
    (``UTCDateTime``: the time in UTC, on SQLite as its stored text; ``Float``: a float on SQLite), applied here
    once per distinct number and once per time. A Core ``insert()`` stored the same rows but compiled the
    statement and processed every parameter of every row (about half the upload's database time at 10,000)."""
    connection = ctx.session.connection()
    dialect = connection.dialect
    table = SensorReading.__table__
    parse = datetime.fromisoformat  # a reading's taken_at is a normalised date-time (validate_reading)
    mark = _PLACEHOLDERS.get(dialect.paramstyle)
    if mark is None:  # a driver of another parameter style: SQLAlchemy's own statement, binding each value
        values = [
            {
                "batch_id": batch_id,
                "taken_at": parse(r["taken_at"]),
                "temperature_c": numbers[r["temperature_c"]],
                "humidity": numbers[r["humidity"]] if r.get("humidity") is not None else None,
                "sensor_id": sensor,
                "leaf_index": i,
            }
            for i, r in enumerate(rows)
        ]
        ctx.session.execute(insert(table), values)
        return

    def bind(column: str) -> Any:
        process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        return process or (lambda value: value)

    moment, temperature, humidity = bind("taken_at"), bind("temperature_c"), bind("humidity")
    temperatures = {text: temperature(number) for text, number in numbers.items()}
    humidities = {text: humidity(number) for text, number in numbers.items()}
    humidities[None] = None
    impl = table.c.taken_at.type.dialect_impl(dialect).impl_instance
    sqlite_text = getattr(impl, "_storage_format", None) == _SQLITE_DATETIME

    def when(text: str) -> Any:
        # SQLite keeps the UTC wall time as text: a time in UTC, normalised by isoformat() already, is rewritten
        # as that text directly (what parsing it and formatting it twice gives); any other goes the long way
        if sqlite_text and text.endswith("+00:00"):
            if len(text) == 25:  # no fraction: isoformat() leaves it out when it is 0
                return f"{text[:10]} {text[11:19]}.000000"
            if len(text) == 32:  # a fraction: always six digits
                return f"{text[:10]} {text[11:26]}"
        return moment(parse(text))

    values = [
        (batch_id, when(r["taken_at"]), temperatures[r["temperature_c"]], humidities[r.get("humidity")], sensor, i)
        for i, r in enumerate(rows)
    ]
    statement = f"INSERT INTO {table.name} ({', '.join(_READING_COLUMNS)}) VALUES ({', '.join([mark] * 6)})"
    connection.exec_driver_sql(statement, values)


def validate_reading(raw: Mapping[str, Any], index: int) -> dict[str, Any]:
    """A sensor reading in canonical form: {taken_at (ISO date-time with offset), temperature_c[, humidity]}."""
    field = f"readings[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{field}: must be an object", field=field)
    taken = parse_when(raw.get("taken_at"), f"{field}.taken_at", datetime_only=True)
    temp = invariants.check_temperature(raw.get("temperature_c"), f"{field}.temperature_c")
    out = {"taken_at": taken, "temperature_c": format_quantity_signed(temp)}
    if raw.get("humidity") is not None:
        out["humidity"] = format_quantity_signed(invariants.check_humidity(raw["humidity"], f"{field}.humidity"))
    return out


_PLAIN_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)
"""A date-time as loggers send it: ``parse_when`` would only strip, upper-case and read it with ``fromisoformat``
(whole-minute offset by construction), so ``fromisoformat(...).isoformat()`` is its normalised text."""


def validate_readings(readings: Sequence[Any]) -> list[dict[str, Any]]:
    """``validate_reading`` of each reading in turn: the same rows, and the same refusal for the first bad
    one, at a fraction of the cost for a large upload. A date-time in the usual shape (``_PLAIN_DATETIME``)
    is read in one step, and a number text met before in the upload (a logger's values repeat) takes the
    canonical text it had then; every other reading goes through ``validate_reading`` itself."""
    numbers: dict[tuple[str, str], str] = {}  # (key, text as sent) -> its canonical text, for texts that passed
    rows: list[dict[str, Any]] = []
    for index, raw in enumerate(readings):
        row = _quick_reading(raw, numbers)
        if row is None:
            row = validate_reading(raw, index)
            for key in ("temperature_c", "humidity"):
                if type(raw.get(key)) is str:
                    numbers[(key, raw[key])] = row[key]
        rows.append(row)
    return rows


def _quick_reading(raw: Any, numbers: Mapping[tuple[str, str], str]) -> dict[str, Any] | None:
    """The row ``validate_reading`` gives for ``raw`` when each part is quick to tell (see
    ``validate_readings``); None when it is not, and ``validate_reading`` must look."""
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a JSON object is a dict: no ABC check
        return None
    taken, temp, humidity = raw.get("taken_at"), raw.get("temperature_c"), raw.get("humidity")
    if type(taken) is not str or type(temp) is not str or not _PLAIN_DATETIME.fullmatch(taken):
        return None
    temp_text = numbers.get(("temperature_c", temp))
    if temp_text is None:
        return None
    humidity_text = None
    if humidity is not None:
        humidity_text = numbers.get(("humidity", humidity)) if type(humidity) is str else None
        if humidity_text is None:
            return None
    try:
        moment = datetime.fromisoformat(taken)
    except ValueError:  # an impossible day or hour: validate_reading names it
        return None
    row = {"taken_at": moment.isoformat(), "temperature_c": temp_text}
    if humidity_text is not None:
        row["humidity"] = humidity_text
    return row


def format_quantity_signed(number: Decimal) -> str:
    return "-" + format_quantity(-number) if number < 0 else format_quantity(number) if number > 0 else "0"
