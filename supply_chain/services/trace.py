"""Trace backward and forward through transformations, and recall reach (organisations' records: ``credit``).

Lineage walks are one recursive SQL query each (`store.queries`), never a query per lot. A lot is affected by
a recall when it or any ancestor is recalled; that is derived when read, so a lot made later from a recalled
input is affected too.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.orm import aliased, selectinload

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import format_quantity
from supply_chain.services import access
from supply_chain.services.epcis import repository
from supply_chain.services.epcis.vocabulary import lot_uri
from supply_chain.services.fsma import csv_cell
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import EpcisEvent, Event, Location, Lot, LotInput, Organisation, Product, Recall
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


@dataclass(frozen=True)
class _Named:
    name: str


@dataclass(frozen=True)
class _Key:
    gtin: str
    lot_code: str


@dataclass(frozen=True)
class _TracedInput:
    input_lot: _Key
    quantity: Decimal
    unit: str


@dataclass
class _TracedLot:
    """What a trace shows of a lot, read as plain columns: the same attribute paths as a ``Lot`` (``product.name``,
    ``inputs[i].input_lot.gtin``) without building ORM objects, which cost most of a trace reaching a thousand
    lots."""

    id: int
    gtin: str
    lot_code: str
    lot_id: str
    status: str
    quantity: Decimal
    unit: str
    product: _Named
    creator: _Named
    custodian: _Named
    inputs: list[_TracedInput] = field(default_factory=list)


_CREATOR, _CUSTODIAN, _SOURCE = aliased(Organisation), aliased(Organisation), aliased(Lot)
"""Made once: SQLAlchemy memoises each alias's columns on the alias, so a new one per call costs more than the
query it is used in."""


def _traced_lots(ctx: Ctx, ids: Sequence[int]) -> dict[int, _TracedLot]:
    """The lots ``ids`` with their product, maker, holder and inputs: two queries of columns."""
    if not ids:
        return {}
    rows = ctx.session.execute(
        select(
            Lot.id, Lot.gtin, Lot.lot_code, Lot.lot_id, Lot.status, Lot.quantity, Lot.unit,
            Product.name, _CREATOR.name, _CUSTODIAN.name,
        )
        .join(Product, Product.id == Lot.product_id)
        .join(_CREATOR, _CREATOR.id == Lot.creator_org_id)
        .join(_CUSTODIAN, _CUSTODIAN.id == Lot.custodian_org_id)
        .where(Lot.id.in_(list(ids)))
    )  # fmt: skip
    lots = {
        row[0]: _TracedLot(*row[:7], product=_Named(row[7]), creator=_Named(row[8]), custodian=_Named(row[9]))
        for row in rows
    }
    inputs = ctx.session.execute(
        select(LotInput.output_lot_id, _SOURCE.gtin, _SOURCE.lot_code, LotInput.quantity, LotInput.unit)
        .join(_SOURCE, _SOURCE.id == LotInput.input_lot_id)
        .where(LotInput.output_lot_id.in_(list(lots)))
        .order_by(LotInput.output_lot_id, LotInput.input_lot_id)  # as ``Lot.inputs`` orders them
    )
    for output_id, gtin, lot_code, quantity, unit in inputs:
        lots[output_id].inputs.append(_TracedInput(_Key(gtin, lot_code), quantity, unit))
    return lots


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
    glns: dict[int, list[str]] = defaultdict(list)
    for lot_id, value in _payload_glns(ctx, lot_ids):
        if isinstance(value, str) and value not in glns[lot_id]:
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


def _payload_glns(ctx: Ctx, lot_ids: list[int]) -> list[tuple[int, Any]]:
    """(lot, value) of every ``*_gln`` field of the lots' confirmed events, in event order. The database picks
    the fields out of the stored JSON (``json_each`` on SQLite, ``jsonb_each_text`` on PostgreSQL), so no
    payload is decoded in Python: for a trace reaching a thousand lots that decoding was most of its time."""
    if not lot_ids:
        return []
    each = func.jsonb_each_text if ctx.session.get_bind().dialect.name == "postgresql" else func.json_each
    # The lots' events first (by their lot index), then their fields: as one flat join SQLite's planner may
    # walk the whole events table and look into every payload.
    events = (
        select(Event.id, Event.lot_id, Event.payload)
        .where(Event.lot_id.in_(lot_ids), Event.status == "confirmed")
        .cte("traced_events")
        .prefix_with("MATERIALIZED")
    )
    fields = each(events.c.payload).table_valued("key", "value")
    query = (
        select(events.c.lot_id, fields.c.value)
        .select_from(events)
        .join(fields, true())
        .where(fields.c.key.like("%\\_gln", escape="\\"))
        .order_by(events.c.id)
    )
    return [(lot_id, value) for lot_id, value in ctx.session.execute(query)]


def recall_reach(ctx: Ctx) -> tuple[dict[int, list[Recall]], defaultdict[int, list[int]]]:
    """(confirmed recalls by recalled lot, the recalled lots that reach each lot: itself first when it is
    recalled, then its recalled ancestors). A lot is affected when it or any of its ancestors is recalled.
    Recalls are few, so this walks forward from every recalled lot at once (one recursive query) rather than
    up from every lot asked about."""
    recalls = _recalls_of(ctx, None)
    sources_of: defaultdict[int, list[int]] = defaultdict(list)
    for start, reached in reach(ctx.session, sorted(recalls)):
        sources_of[reached].append(start)
    for lot_id in recalls:
        sources_of[lot_id].insert(0, lot_id)
    return recalls, sources_of


REDACTED_LABEL = "a lot of another organisation"


def trace(ctx: Ctx, lot: Lot, direction: str, viewer: Organisation | None = None) -> dict[str, Any]:
    """Every ancestor (backward) or descendant (forward) of a lot, with who holds it, where it has been,
    and whether a recall reaches it.

    With a ``viewer``, a lot it may not see (``access.can_see_lot``: the lot page would be a 404) is an opaque
    node: its depth, ``redacted: true``, ``label`` and whether a recall reaches it - no codes, product,
    organisations, quantities or places. Without one (the CLI, oversight pages) every lot is shown.

    Each lot shown lists in ``reported`` the events another organisation's capturer reported about it (stored
    as ``reported``: that organisation's events, never signed by it), those the viewer may see in the event
    repository (its own captures; oversight and no viewer: all)."""
    if direction not in DIRECTIONS:
        raise InvalidInput("direction must be backward or forward", field="direction")
    walk = ancestors if direction == "backward" else descendants
    related = walk(ctx.session, lot.id)
    ids = [lot.id] + [i for i, _ in related]
    depth = {lot.id: 0} | dict(related)
    lots = _traced_lots(ctx, ids)
    locations = _locations(ctx, ids)
    recalls, sources_of = recall_reach(ctx)
    lots |= _traced_lots(ctx, sorted({s for i in ids for s in sources_of[i]} - set(lots)))
    visible = set(ids) if viewer is None else access.visible_lot_ids(ctx, viewer, ids) | {lot.id}
    reported = repository.reported_rows(
        ctx, viewer, {i: lot_uri(lots[i].gtin, lots[i].lot_code) for i in ids if i in visible}
    )
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
                "reported": [_reported(row) for row in reported[lot_id]],
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


def _reported(row: EpcisEvent) -> dict[str, Any]:
    """A reported event of a traced lot: another organisation's event, as its capturer reported it (never
    signed by that organisation)."""
    item = repository.reported_item(row)
    return item | {"event_time": item["event_time"].isoformat()}


# ------------------------------------------------------------------ the trace as a graph of sites

SITE_KIND_LABELS = {
    "farm": "Farm",
    "packhouse": "Packer",
    "plant": "Processor",
    "warehouse": "Distributor",
    "store": "Shop",
    "vessel": "Vessel",
    "port": "Port",
    "lab": "Lab",
}
"""A column's name in the trace graph, from the kinds of the sites in it."""


def event_places(kind: EventKind | int, payload: dict[str, Any]) -> list[str]:
    """The GLNs an event takes its lot through, in order: a shipment from its ship-from to its ship-to site, a
    receipt at its ship-to site, any other event where it happened (none when it names no site)."""
    kind = EventKind(int(kind))
    if kind == EventKind.SHIPPING:
        keys: tuple[str, ...] = ("from_gln", "to_gln")
    elif kind == EventKind.RECEIVING:
        keys = ("to_gln",)
    else:
        keys = ("location_gln",)
    return [v for k in keys if isinstance(v := payload.get(k), str) and v]


def site_paths(ctx: Ctx, lot_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each lot's route: the sites its confirmed events took it through, in chain order (a site repeated by
    consecutive events once)."""
    paths: dict[int, list[str]] = {i: [] for i in lot_ids}
    if not lot_ids:
        return paths
    rows = ctx.session.execute(
        select(Event.lot_id, Event.kind, Event.payload)
        .where(Event.lot_id.in_(list(lot_ids)), Event.status == "confirmed")
        .order_by(Event.lot_id, Event.seq)
    ).all()
    for lot_id, kind, payload in rows:
        path = paths[lot_id]
        for gln in event_places(kind, payload or {}):
            if not path or path[-1] != gln:
                path.append(gln)
    return paths


def graph(ctx: Ctx, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The trace as a flow of sites, farm to shop: ``columns`` of site nodes, a site placed one column after
    the furthest site a lot came to it from. Each node lists the traced lots that passed through it (``here``:
    the last site the lot reached) and where they went next. ``items`` are the trace's lots, each with its lot
    key as ``id`` (``views.trace_view``); redacted lots are left out."""
    shown = [i for i in items if i.get("id") and not i.get("redacted")]
    by_id = {i["id"]: i for i in shown}
    paths = site_paths(ctx, list(by_id))
    edges: dict[tuple[str, str], dict[str, Any]] = {}

    def link(a: str, b: str, item: dict[str, Any], moving: bool) -> None:
        edge = edges.setdefault((a, b), {"lots": [], "in_transit": False})
        if item["lot_code"] not in edge["lots"]:
            edge["lots"].append(item["lot_code"])
        edge["in_transit"] = edge["in_transit"] or moving

    for lot_id, path in paths.items():
        item = by_id[lot_id]
        for n, (a, b) in enumerate(zip(path, path[1:], strict=False)):
            last = n == len(path) - 2
            link(a, b, item, last and item["status"] == "in_transit")
    # A lot made at another site than the one where its inputs ended: the inputs went on to it.
    code_to_id = {(i["gtin"], i["lot_code"]): i["id"] for i in shown}
    for lot_id, path in paths.items():
        for source in by_id[lot_id]["inputs"]:
            input_id = code_to_id.get((source["gtin"], source["lot_code"]))
            before = paths.get(input_id, []) if input_id else []
            if path and before and before[-1] != path[0]:
                link(before[-1], path[0], by_id[input_id], False)
    glns = list(dict.fromkeys(g for path in paths.values() for g in path))
    sites = (
        {
            loc.gln: loc
            for loc in ctx.session.scalars(
                select(Location).where(Location.gln.in_(glns)).options(selectinload(Location.organisation))
            )
        }
        if glns
        else {}
    )
    column = dict.fromkeys(glns, 0)
    for _ in range(len(glns)):  # longest path; a route that loops back stops growing after len(glns) rounds
        moved = False
        for a, b in edges:
            if a != b and column[b] < column[a] + 1 <= len(glns):
                column[b] = column[a] + 1
                moved = True
        if not moved:
            break
    nodes: dict[str, dict[str, Any]] = {}
    for gln in glns:
        loc = sites.get(gln)
        lots_here = [
            {
                "id": lot_id,
                "lot_code": by_id[lot_id]["lot_code"],
                "product": by_id[lot_id]["product"],
                "status": by_id[lot_id]["status"],
                "affected_by_recall": by_id[lot_id]["affected_by_recall"],
                "here": path[-1] == gln,
            }
            for lot_id, path in paths.items()
            if gln in path
        ]
        nodes[gln] = {
            "gln": gln,
            "name": loc.name if loc else gln,
            "organisation": loc.organisation.name if loc else "",
            "organisation_id": loc.organisation_id if loc else None,
            "kind": loc.kind if loc else "other",
            "column": column[gln],
            "lots": lots_here,
            "affected": any(i["affected_by_recall"] for i in lots_here),
            "next": [
                {"gln": b, "lots": edge["lots"], "in_transit": edge["in_transit"]}
                for (a, b), edge in edges.items()
                if a == gln and a != b
            ],
        }
    for node in nodes.values():
        for step in node["next"]:
            step["name"] = nodes[step["gln"]]["name"]
    columns: list[dict[str, Any]] = []
    for index in sorted(set(column.values())):
        members = [nodes[g] for g in glns if column[g] == index]
        kinds = list(dict.fromkeys(SITE_KIND_LABELS.get(n["kind"], "Site") for n in members))
        columns.append({"stage": index + 1, "label": " / ".join(kinds), "sites": members})
    return {
        "columns": columns,
        "edges": [{"from": a, "to": b, **edge} for (a, b), edge in edges.items() if a != b],
    }


TRACE_CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("depth", "Depth"),
    ("gtin", "GTIN"),
    ("lot_code", "Lot code"),
    ("product", "Product"),
    ("status", "Status"),
    ("quantity", "Quantity"),
    ("unit", "Unit"),
    ("creator", "Made by"),
    ("custodian", "Current holder"),
    ("sites", "Sites"),
    ("inputs", "Made from"),
    ("affected_by_recall", "Affected by a recall"),
    ("recalls", "Recalls reaching it"),
    ("reported", "Reported by other organisations"),
)
"""The trace CSV's columns (one row per lot of the trace)."""


def trace_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """The trace's lots as text rows keyed by ``TRACE_CSV_COLUMNS``; a redacted lot keeps its depth, label and
    whether a recall reaches it."""
    out = []
    for item in result["lots"]:
        row = dict.fromkeys((key for key, _ in TRACE_CSV_COLUMNS), "")
        row["depth"] = str(item["depth"])
        row["affected_by_recall"] = "yes" if item["affected_by_recall"] else "no"
        if item.get("redacted"):
            row["product"] = item["label"]
            out.append(row)
            continue
        row |= {
            key: str(item[key] if item[key] is not None else "")
            for key in ("gtin", "lot_code", "product", "status", "quantity", "unit", "creator", "custodian")
        }
        row["sites"] = "; ".join(f"{loc['name']} ({loc['gln']})" for loc in item["locations"])
        row["inputs"] = "; ".join(f"{i['gtin']}/{i['lot_code']} ({i['quantity']} {i['unit']})" for i in item["inputs"])
        row["recalls"] = "; ".join(
            f"Class {s['recall_class']}: {s['reason']} (lot {s['gtin']}/{s['lot_code']})"
            for s in item["recall_sources"]
        )
        row["reported"] = "; ".join(
            f"{r['event_time']} {r['biz_step'] or r['type']}: {r['party'] or '?'}'s event, reported by "
            f"{r['reported_by'] or '?'}"
            for r in item["reported"]
        )
        out.append(row)
    return out


def to_csv(result: dict[str, Any]) -> bytes:
    """The trace as CSV (UTF-8 with a byte-order mark), one row per lot; formula-like cells neutralised as in
    the FSMA 204 export (``fsma.csv_cell``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([header for _, header in TRACE_CSV_COLUMNS])
    for row in trace_rows(result):
        writer.writerow([csv_cell(row[key]) for key, _ in TRACE_CSV_COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
