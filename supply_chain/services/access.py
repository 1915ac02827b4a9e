"""Who may see what: a lot (participants see the lots they took part in, oversight sees every lot), the
fields of an event's payload (its author all, other members the consortium fields, the public the public ones),
and what each is given to check those fields against the chain (``event_proof``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import exists, or_, select

from supply_chain.domain import policy
from supply_chain.domain.disclosure import disclosure
from supply_chain.domain.errors import LotlineError
from supply_chain.domain.events import Visibility, visible_view
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Event, Lot, Organisation

OVERSIGHT_ROLES = policy.OVERSIGHT_ROLES


def can_see_lot(ctx: Ctx, org: Organisation, lot: Lot) -> bool:
    """An organisation sees a lot it created, holds, was offered or has recorded an event on (a past holder
    keeps sight of the history it took part in); inspectors and regulators see every lot."""
    if OVERSIGHT_ROLES & set(org.roles):
        return True
    if org.id in (lot.creator_org_id, lot.custodian_org_id, lot.pending_custodian_org_id):
        return True
    return bool(ctx.session.scalar(select(exists().where(Event.lot_id == lot.id, Event.actor_org_id == org.id))))


def visible_lot_ids(ctx: Ctx, org: Organisation, lot_ids: Iterable[int]) -> set[int]:
    """Which of ``lot_ids`` ``org`` may see (``can_see_lot`` for many lots, in two queries)."""
    ids = set(lot_ids)
    if not ids or OVERSIGHT_ROLES & set(org.roles):
        return ids
    party = or_(Lot.creator_org_id == org.id, Lot.custodian_org_id == org.id, Lot.pending_custodian_org_id == org.id)
    seen = set(ctx.session.scalars(select(Lot.id).where(Lot.id.in_(ids), party)))
    acted = select(Event.lot_id).where(Event.lot_id.in_(ids - seen), Event.actor_org_id == org.id)
    seen |= set(ctx.session.scalars(acted))
    return seen


def level_for(event: Event, org: Organisation | None) -> Visibility:
    """Its author sees all of an event, other members its consortium fields, the public its public ones."""
    if org is None:
        return Visibility.PUBLIC
    return Visibility.PRIVATE if event.actor_org_id == org.id else Visibility.CONSORTIUM


def event_proof(event: Event, level: Visibility) -> dict[str, Any]:
    """What an audience at ``level`` is given to check the fields it sees of ``event`` against the chain's
    ``dataHash`` (``domain.disclosure.disclosure``: under scheme 2 the public part, every commitment and the
    salts of the sealed fields it sees whole), with the ``data_hash`` the store holds. Never the event salt."""
    if event.disclosure is not None:
        # held in part (a Lotline export taken in): the proof that came with it, opening only what the
        # audience sees
        seen = visible_view(int(event.kind), event.payload or {}, level)
        proof = dict(event.disclosure)
        if isinstance(proof.get("salts"), dict):
            proof["salts"] = {name: salt for name, salt in proof["salts"].items() if name in seen}
        return proof | {"data_hash": event.payload_hash}
    try:
        proof = disclosure(int(event.kind), event.payload or {}, event.hash_scheme, event.salt, level)
    except LotlineError:
        proof = {"scheme": event.hash_scheme}  # a row edited behind the store's back: verification names it
    return proof | {"data_hash": event.payload_hash}
