"""Trace backward and forward through transformations, and recall reach (organisations' records: ``credit``).

Lineage walks are one recursive SQL query each (`store.queries`), never a query per lot. A lot is affected by
a recall when it or any ancestor is recalled; that is derived when read, so a lot made later from a recalled
input is affected too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.lineage import format_quantity
from supply_chain.services import access
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Event, Location, Lot, LotInput, Organisation, Recall
from supply_chain.store.queries import ancestors, descendants, reach

DIRECTIONS = ("backward", "forward")


def _load_lots(ctx: Ctx, ids: list[int]) -> dict[int, Lot]:
    if not ids:
        return {}
    rows = ctx.session.scalars(
        select(Lot)
        .where(Lot.id.in_(ids))
        .options(
            selectinload(Lot.product),
            selectinload(Lot.custodian),
            selectinload(Lot.creator),
            selectinload(Lot.origin_location),
            selectinload(Lot.inputs).selectinload(LotInput.input_lot),
        )
    )
    return {lot.id: lot for lot in rows}


def _recalls_of(ctx: Ctx, lot_ids: list[int] | None) -> dict[int, list[Recall]]:
    """Confirmed recalls by lot, of the given lots (None: of every lot)."""
    out: dict[int, list[Recall]] = {}
    if lot_ids == []:
        return out
    query = select(Recall).join(Event, Recall.event_id == Event.id).where(Event.status == "confirmed")
    if lot_ids is not None:
        query = query.where(Recall.lot_id.in_(lot_ids))
    for recall in ctx.session.scalars(query.order_by(Recall.id)):
        out.setdefault(recall.lot_id, []).append(recall)
    return out


def recall_sources(ctx: Ctx, lot: Lot, ancestry: Sequence[tuple[int, int]] | None = None) -> list[tuple[Lot, Recall]]:
    """The recalls that reach this lot: its own, and those of every ancestor (nearest first). `ancestry`
    ((lot id, depth) from the lot itself up) saves the lineage walk when the caller has already made it."""
    chain = list(ancestry) if ancestry is not None else [(lot.id, 0), *ancestors(ctx.session, lot.id)]
    ids = [lot_id for lot_id, _ in chain]
    recalls = _recalls_of(ctx, ids)
    lots = _load_lots(ctx, [i for i in ids if i in recalls])
    return [(lots[i], r) for i, _ in chain if i in recalls for r in recalls[i]]


def _locations(ctx: Ctx, lot_ids: list[int]) -> dict[int, list[Location]]:
    """Locations named by each lot's confirmed events (any *_gln field)."""
    events = (
        ctx.session.execute(
            select(Event.lot_id, Event.payload).where(Event.lot_id.in_(lot_ids), Event.status == "confirmed")
        ).all()
        if lot_ids
        else []
    )
    glns: dict[int, list[str]] = defaultdict(list)
    for lot_id, payload in events:
        for key, value in (payload or {}).items():
            if key.endswith("_gln") and isinstance(value, str) and value not in glns[lot_id]:
                glns[lot_id].append(value)
    all_glns = {g for values in glns.values() for g in values}
    by_gln = (
        {
            loc.gln: loc
            for loc in ctx.session.scalars(
                select(Location).where(Location.gln.in_(all_glns)).options(selectinload(Location.organisation))
            )
        }
        if all_glns
        else {}
    )
    return {lot_id: [by_gln[g] for g in values if g in by_gln] for lot_id, values in glns.items()}


REDACTED_LABEL = "a lot of another organisation"


def trace(ctx: Ctx, lot: Lot, direction: str, viewer: Organisation | None = None) -> dict[str, Any]:
    """Every ancestor (backward) or descendant (forward) of a lot, with who holds it, where it has been,
    and whether a recall reaches it.

    With a ``viewer``, a lot it may not see (``access.can_see_lot``: the lot page would be a 404) is an opaque
    node: its depth, ``redacted: true``, ``label`` and whether a recall reaches it - no codes, product,
    organisations, quantities or places. Without one (the CLI, oversight pages) every lot is shown."""
    if direction not in DIRECTIONS:
        raise InvalidInput("direction must be backward or forward", field="direction")
    walk = ancestors if direction == "backward" else descendants
    related = walk(ctx.session, lot.id)
    ids = [lot.id] + [i for i, _ in related]
    depth = {lot.id: 0} | dict(related)
    lots = _load_lots(ctx, ids)
    locations = _locations(ctx, ids)
    # Recall reach: a lot is affected when it or any of its ancestors is recalled. Recalls are few, so walk
    # forward from every recalled lot at once (one recursive query) rather than up from every traced lot.
    recalls = _recalls_of(ctx, None)
    sources_of: dict[int, list[int]] = defaultdict(list)
    for start, reached in reach(ctx.session, sorted(recalls)):
        sources_of[reached].append(start)
    for lot_id in recalls:
        sources_of[lot_id].insert(0, lot_id)
    lots |= _load_lots(ctx, sorted({s for i in ids for s in sources_of[i]} - set(lots)))
    visible = set(ids) if viewer is None else access.visible_lot_ids(ctx, viewer, ids) | {lot.id}
    items: list[dict[str, Any]] = []
    for lot_id in ids:
        item = lots[lot_id]
        sources = sources_of[lot_id]
        if lot_id not in visible:
            items.append(
                {
                    "depth": depth[lot_id],
                    "redacted": True,
                    "label": REDACTED_LABEL,
                    "affected_by_recall": bool(sources),
                }
            )
            continue
        items.append(
            {
                "gtin": item.gtin,
                "lot_code": item.lot_code,
                "lot_id": item.lot_id,
                "depth": depth[lot_id],
                "product": item.product.name,
                "status": item.status,
                "quantity": format_quantity(item.quantity),
                "unit": item.unit,
                "creator": item.creator.name,
                "custodian": item.custodian.name,
                "inputs": [
                    {
                        "gtin": e.input_lot.gtin,
                        "lot_code": e.input_lot.lot_code,
                        "quantity": format_quantity(e.quantity),
                        "unit": e.unit,
                    }
                    for e in item.inputs
                ],
                "locations": [
                    {"gln": loc.gln, "name": loc.name, "organisation": loc.organisation.name}
                    for loc in locations.get(lot_id, [])
                ],
                "recalled": item.status == "recalled",
                "affected_by_recall": bool(sources),
                "recall_sources": [
                    {
                        "gtin": lots[s].gtin,
                        "lot_code": lots[s].lot_code,
                        "reason": recalls[s][0].reason,
                        "recall_class": recalls[s][0].recall_class,
                    }
                    for s in sources
                ],
            }
        )
    shown = [i for i in items if not i.get("redacted")]
    organisations = sorted({i["creator"] for i in shown} | {i["custodian"] for i in shown})
    return {
        "lot": {"gtin": lot.gtin, "lot_code": lot.lot_code},
        "direction": direction,
        "lots": items,
        "organisations": organisations,
    }
