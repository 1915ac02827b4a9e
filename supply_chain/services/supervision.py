"""The regulator's supervision map ("one graph"): every registered site, with layers switched on and off.

``LAYERS`` is the one table of layers: its key, title, colour, whether it is on when the map opens, and the
function that builds its GeoJSON features. The map page lists the layers from it, ``/admin/map/layers.json``
answers ``layers(ctx)`` (one FeatureCollection per layer) and the map script draws them; nothing else names
a layer.

Points are sites (``Location`` with latitude and longitude): a layer that is about lots (holds, recalls,
failed inspections, excursions) puts one point on each site where such a lot is, listing the lots. Where a lot
is comes from its chain-anchored (confirmed) events: the last site an event took it to (``trace.event_places``).
Features carry ``links`` as ``{"label", "kind", "id"}`` (``kind``: lot, trace, organisation); the web layer
turns them into URLs. GeoJSON coordinates are ``[longitude, latitude]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from supply_chain.domain import policy
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import format_quantity
from supply_chain.services import credit, trace
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Event, Inspection, Location, Lot, Organisation, SensorBatch

Feature = dict[str, Any]


# ------------------------------------------------------------------ compliance grade (hook)


def compliance_grade(ctx: Ctx, org: Organisation) -> str | None:
    """The organisation's compliance grade ("A" to "D") from its credit record, or None: not graded."""
    return credit.grade_letter(ctx, org)


GRADE_COLOURS = {"A": "#1a7f37", "B": "#7a9a01", "C": "#d49b1f", "D": "#a4231b", None: "#8a949c"}


# ------------------------------------------------------------------ shared reads


@dataclass
class _Sites:
    """Every located site by GLN, and each organisation's sites."""

    by_gln: dict[str, Location]
    of_org: dict[int, list[Location]]

    @classmethod
    def load(cls, ctx: Ctx) -> _Sites:
        rows = ctx.session.scalars(
            select(Location)
            .where(Location.latitude.is_not(None), Location.longitude.is_not(None))
            .options(selectinload(Location.organisation))
            .order_by(Location.id)
        )
        by_gln: dict[str, Location] = {}
        of_org: dict[int, list[Location]] = defaultdict(list)
        for loc in rows:
            by_gln[loc.gln] = loc
            of_org[loc.organisation_id].append(loc)
        return cls(by_gln, of_org)


def _point(loc: Location, title: str, lines: Sequence[str], links: Sequence[dict[str, Any]], **extra: Any) -> Feature:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [loc.longitude, loc.latitude]},
        "properties": {
            "title": title,
            "site": loc.name,
            "gln": loc.gln,
            "organisation": loc.organisation.name,
            "lines": list(lines),
            "links": [*links, _link(f"{loc.organisation.name} (organisation)", "organisation", loc.organisation_id)],
        }
        | extra,
    }


def _link(label: str, kind: str, ref: int) -> dict[str, Any]:
    return {"label": label, "kind": kind, "id": ref}


def _lot_label(lot: Lot) -> str:
    return f"{lot.product.name} · {lot.lot_code}"


def _place_before(lot: Lot, until: Event | None = None) -> str | None:
    """The last site the lot's confirmed events took it to (before ``until``, when given)."""
    here = None
    for event in lot.events:
        if until is not None and event.id == until.id:
            break
        if event.status != "confirmed":
            continue
        places = trace.event_places(event.kind, event.payload or {})
        if places:
            here = places[-1]
    return here


def _site_of(sites: _Sites, lot: Lot, until: Event | None = None) -> Location | None:
    """Where the lot is (or was, before ``until``): its last site, else its custodian's first located site."""
    gln = _place_before(lot, until)
    if gln in sites.by_gln:
        return sites.by_gln[gln]
    owned = sites.of_org.get(lot.custodian_org_id)
    return owned[0] if owned else None


def _load_lots(ctx: Ctx, ids: Iterable[int]) -> list[Lot]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    return list(
        ctx.session.scalars(
            select(Lot)
            .where(Lot.id.in_(wanted))
            .options(selectinload(Lot.product), selectinload(Lot.custodian), selectinload(Lot.events))
            .order_by(Lot.id)
        )
    )


def _grouped(
    sites: _Sites, entries: Iterable[tuple[Location | None, str, list[dict[str, Any]]]], title: str, **extra: Any
) -> list[Feature]:
    """One point per site, listing every entry (a line and its links) found there, in order."""
    at: dict[str, tuple[Location, list[str], list[dict[str, Any]]]] = {}
    for loc, line, links in entries:
        if loc is None:
            continue
        _, lines, all_links = at.setdefault(loc.gln, (loc, [], []))
        lines.append(line)
        all_links.extend(link for link in links if link not in all_links)
    return [
        _point(loc, f"{title}: {loc.name}", lines, links, count=len(lines), **extra)
        for loc, lines, links in at.values()
    ]


# ------------------------------------------------------------------ layers


def _sites_of_stage(stage: str) -> Callable[[Ctx, _Sites], list[Feature]]:
    def build(ctx: Ctx, sites: _Sites) -> list[Feature]:
        return [
            _point(loc, loc.name, [loc.organisation.name, loc.address or "", f"GLN {loc.gln}"], [], stage=stage)
            for loc in sites.by_gln.values()
            if policy.stage_of(loc.organisation.roles or loc.organisation.suspended_roles or []) == stage
        ]

    return build


def _shipments(ctx: Ctx, sites: _Sites) -> list[Feature]:
    """One line per (ship-from, ship-to) pair of confirmed shipments, listing the lots shipped."""
    rows = ctx.session.execute(
        select(Event.lot_id, Event.payload)
        .where(Event.kind == EventKind.SHIPPING, Event.status == "confirmed")
        .order_by(Event.id)
    ).all()
    lots = {lot.id: lot for lot in _load_lots(ctx, (lot_id for lot_id, _ in rows))}
    flows: dict[tuple[str, str], dict[str, Any]] = {}
    for lot_id, payload in rows:
        a, b = (payload or {}).get("from_gln"), (payload or {}).get("to_gln")
        if a not in sites.by_gln or b not in sites.by_gln or a == b:
            continue
        lot = lots[lot_id]
        flow = flows.setdefault((a, b), {"lines": [], "links": [], "in_transit": False})
        when = payload.get("ship_date") or ""
        flow["lines"].append(f"{_lot_label(lot)} shipped {when}".strip())
        flow["links"].append(_link(_lot_label(lot), "lot", lot.id))
        moving = lot.status == policy.Status.IN_TRANSIT and _place_before(lot) == b
        flow["in_transit"] = flow["in_transit"] or moving
    out = []
    for (a, b), flow in flows.items():
        start, end = sites.by_gln[a], sites.by_gln[b]
        out.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[start.longitude, start.latitude], [end.longitude, end.latitude]],
                },
                "properties": {
                    "title": f"{start.name} → {end.name}",
                    "from": start.name,
                    "to": end.name,
                    "lines": flow["lines"],
                    "links": flow["links"],
                    "count": len(flow["lines"]),
                    "in_transit": flow["in_transit"],
                },
            }
        )
    return out


def _holds(ctx: Ctx, sites: _Sites) -> list[Feature]:
    held = _load_lots(ctx, ctx.session.scalars(select(Lot.id).where(Lot.status == policy.Status.HELD)))
    return _grouped(
        sites,
        (
            (
                _site_of(sites, lot),
                f"{_lot_label(lot)}: on hold, {format_quantity(lot.quantity)} {lot.unit} with {lot.custodian.name}",
                [_link(_lot_label(lot), "lot", lot.id)],
            )
            for lot in held
        ),
        "Lots on hold",
    )


def _recalls(ctx: Ctx, sites: _Sites) -> list[Feature]:
    """Every site holding product a recall reaches: the recalled lots and every lot made from them."""
    recalls, sources_of = trace.recall_reach(ctx)
    affected = _load_lots(ctx, sources_of)
    known = {lot.id: lot for lot in _load_lots(ctx, {s for lot in affected for s in sources_of[lot.id]})}
    entries = []
    for lot in affected:
        source_id = sources_of[lot.id][0]
        source, recall = known[source_id], recalls[source_id][0]
        via = "" if source_id == lot.id else f" (made from recalled lot {source.lot_code})"
        entries.append(
            (
                _site_of(sites, lot),
                f"{_lot_label(lot)}{via}: Class {recall.recall_class} recall, {recall.reason}; "
                f"{format_quantity(lot.quantity)} {lot.unit} with {lot.custodian.name}",
                [
                    _link(_lot_label(lot), "lot", lot.id),
                    # the recall's page: its reach from the recalled lot (the forward trace)
                    _link(f"Recall of {source.lot_code}: every lot reached", "trace", source_id),
                ],
            )
        )
    return _grouped(sites, entries, "Recalled product")


def _failed_inspections(ctx: Ctx, sites: _Sites) -> list[Feature]:
    rows = list(
        ctx.session.scalars(
            select(Inspection)
            .join(Event, Inspection.event_id == Event.id)
            .where(Inspection.outcome == "fail", Event.status == "confirmed")
            .options(selectinload(Inspection.event), selectinload(Inspection.inspector))
            .order_by(Inspection.id)
        )
    )
    lots = {lot.id: lot for lot in _load_lots(ctx, (i.lot_id for i in rows))}
    entries = []
    for inspection in rows:
        lot = lots[inspection.lot_id]
        payload = inspection.event.payload or {}
        gln = payload.get("location_gln")
        loc = sites.by_gln.get(gln) if gln else _site_of(sites, lot, until=inspection.event)
        findings = payload.get("findings") or inspection.notes or ""
        when = payload.get("inspection_date") or inspection.event.occurred_at.date().isoformat()
        entries.append(
            (
                loc,
                f"{_lot_label(lot)}: failed {when} ({inspection.inspector.name}){': ' + findings if findings else ''}",
                [_link(_lot_label(lot), "lot", lot.id)],
            )
        )
    return _grouped(sites, entries, "Failed inspection")


def excursion(batch: SensorBatch) -> bool:
    """Whether a batch of cold-chain readings left ``policy.COLD_CHAIN_RANGE_C``."""
    low, high = policy.COLD_CHAIN_RANGE_C
    return Decimal(str(batch.min_temp)) < low or Decimal(str(batch.max_temp)) > high


def _cold_chain(ctx: Ctx, sites: _Sites) -> list[Feature]:
    low, high = policy.COLD_CHAIN_RANGE_C
    rows = [
        b
        for b in ctx.session.scalars(
            select(SensorBatch)
            .join(Event, SensorBatch.event_id == Event.id)
            .where(Event.status == "confirmed")
            .where((SensorBatch.min_temp < float(low)) | (SensorBatch.max_temp > float(high)))
            .options(selectinload(SensorBatch.event))
            .order_by(SensorBatch.id)
        )
        if excursion(b)
    ]
    lots = {lot.id: lot for lot in _load_lots(ctx, (b.lot_id for b in rows))}
    entries = []
    for batch in rows:
        lot = lots[batch.lot_id]
        gln = (batch.event.payload or {}).get("location_gln")
        loc = sites.by_gln.get(gln) if gln else _site_of(sites, lot, until=batch.event)
        entries.append(
            (
                loc,
                f"{_lot_label(lot)}: {_temp(batch.min_temp)} °C to {_temp(batch.max_temp)} °C "
                f"(allowed {_temp(low)} °C to {_temp(high)} °C), {batch.period_start:%Y-%m-%d %H:%M} UTC",
                [_link(_lot_label(lot), "lot", lot.id)],
            )
        )
    return _grouped(sites, entries, "Cold-chain excursion")


def _temp(value: float | Decimal) -> str:
    return format_quantity(Decimal(str(value)))


def _grades(ctx: Ctx, sites: _Sites) -> list[Feature]:
    out = []
    orgs = ctx.session.scalars(select(Organisation).where(Organisation.id.in_(list(sites.of_org))))
    for org in orgs:
        if not set(org.roles or org.suspended_roles or []) & policy.HANDLER_ROLES:
            continue  # graded: the businesses of the chain, not labs or the authority
        grade = compliance_grade(ctx, org)
        label = f"Grade {grade}" if grade else "No grade"
        for loc in sites.of_org[org.id]:
            out.append(_point(loc, f"{org.name}: {label}", [label], [], grade=grade, colour=GRADE_COLOURS.get(grade)))
    return out


@dataclass(frozen=True)
class Layer:
    key: str
    title: str
    colour: str
    shown: bool
    build: Callable[[Ctx, _Sites], list[Feature]]
    description: str = ""
    shape: str = "point"
    """point (a dot per site), ring (a ring around the site, drawn over the sites) or flow (lines)."""


_STAGE_TITLES = {
    "producer": ("Producers (farms)", "#2e7d32"),
    "processor": ("Packers and processors", "#1565c0"),
    "distributor": ("Distributors", "#6a1b9a"),
    "retailer": ("Retailers (shops)", "#00838f"),
    policy.OTHER_STAGE: ("Labs and authorities", "#5d6770"),
}

LAYERS: tuple[Layer, ...] = (
    *(
        Layer(
            f"sites-{stage}",
            _STAGE_TITLES[stage][0],
            _STAGE_TITLES[stage][1],
            True,
            _sites_of_stage(stage),
        )
        for stage in (*policy.SUPPLY_STAGES, policy.OTHER_STAGE)
    ),
    Layer("shipments", "Shipments", "#455a64", True, _shipments, "Confirmed shipments, ship-from to ship-to.", "flow"),
    Layer("holds", "Lots on hold", "#d49b1f", True, _holds, "Where each lot on hold is.", "ring"),
    Layer(
        "recalls",
        "Recalls: sites holding affected product",
        "#c62828",
        True,
        _recalls,
        "Every recalled lot and every lot made from one, where it is now.",
        "ring",
    ),
    Layer(
        "failed-inspections",
        "Failed inspections",
        "#e65100",
        False,
        _failed_inspections,
        "Where the lot was when the inspection failed.",
        "ring",
    ),
    Layer(
        "cold-chain",
        "Cold-chain excursions",
        "#0277bd",
        False,
        _cold_chain,
        "Readings outside {} °C to {} °C.".format(*policy.COLD_CHAIN_RANGE_C),
        "ring",
    ),
    Layer(
        "grades",
        "Organisations by compliance grade",
        GRADE_COLOURS[None],
        False,
        _grades,
        "Each business's sites, coloured by its compliance grade.",
        "ring",
    ),
)
"""The supervision map's layers, in the order the layer list shows them."""


def layers(ctx: Ctx) -> dict[str, Any]:
    """Every layer as a GeoJSON FeatureCollection with its title, colour, shape and whether it starts shown,
    and ``bounds`` (``[[south, west], [north, east]]``) of every located site (None when there is none)."""
    sites = _Sites.load(ctx)
    out = []
    for layer in LAYERS:
        features = layer.build(ctx, sites)
        out.append(
            {
                "key": layer.key,
                "title": layer.title,
                "description": layer.description,
                "colour": layer.colour,
                "shape": layer.shape,
                "shown": layer.shown,
                "count": len(features),
                "data": {"type": "FeatureCollection", "features": features},
            }
        )
    located = list(sites.by_gln.values())
    bounds = (
        [
            [min(loc.latitude for loc in located), min(loc.longitude for loc in located)],
            [max(loc.latitude for loc in located), max(loc.longitude for loc in located)],
        ]
        if located
        else None
    )
    return {"layers": out, "bounds": bounds}
