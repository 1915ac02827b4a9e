"""Open data: what the public may read without signing in, and nothing else (docs/open-data.md).

- Recalls (``recall_feed``; JSON and Atom): every published recall with the public fields of its recall event
  (class, reason, date, consumer instructions, contact, notice link), its lot and the lots it reached, each
  with its consumer page (GS1 Digital Link). Those are the facts the consumer pages already show to anyone
  holding a label. Which recalls are published is decided by one function, ``published_recalls``.
- Aggregate statistics (``statistics``; JSON and CSV): inspections by month, commodity and outcome; recalls by
  month and class; lots created by month and commodity. A cell describing organisations' own business
  (inspections, lots) is published only when at least ``MIN_COUNT`` records of at least ``MIN_ORGANISATIONS``
  organisations make it up (``publishable``); other cells are left out, with their number stated. Recall
  counts are not suppressed: every recall counted is itself published in the recall feed.

Every field comes from a chain-anchored (confirmed) event and passes through the domain's public view of its
kind (``visible_view(..., PUBLIC)``), the same filter as the consumer page: a consortium or private field
never reaches this module's output.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased

from supply_chain.domain.events import Visibility, visible_view
from supply_chain.domain.identifiers import digital_link
from supply_chain.domain.kinds import EventKind
from supply_chain.services.fsma import csv_cell
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import ChainDeployment, Event, Inspection, Lot, Product, Recall

LICENCE = "CC-BY-4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
ATTRIBUTION = "Contains recall and inspection data published through Lotline."
MIN_COUNT = 3
"""A cell of organisations' own business is published only with at least this many records ..."""
MIN_ORGANISATIONS = 3
"""... of at least this many different organisations (so no organisation can subtract the others out)."""
SUPPRESSION_RULE = (
    f"A count of inspections or lots is published only when at least {MIN_COUNT} records from at least "
    f"{MIN_ORGANISATIONS} different organisations (the lots' creators) make it up; other cells are left out "
    "and their number is given as suppressed_cells. No totals are published, so a left-out cell cannot be "
    "worked out from the others. Recall counts are not suppressed: every recall counted is published in the "
    "recall feed."
)
UNSPECIFIED = "unspecified"
ATOM_NS = "http://www.w3.org/2005/Atom"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------ which recalls are published


def published_recalls() -> Select[tuple[Recall]]:
    """THE filter of the open recall feed and the recall statistics: which recalls the public sees.

    Every recall whose recall event is anchored on chain (confirmed) and whose public notice is on (the
    regulator's choice when drafting it; recalls from before the lifecycle have none and are public), newest
    first."""
    return (
        select(Recall)
        .join(Event, Recall.event_id == Event.id)
        .where(Event.status == "confirmed", Recall.public_notice.is_not(False))
        .order_by(Event.occurred_at.desc(), Recall.id.desc())
    )


def recall_status(recall: Recall) -> str:
    """``active``, or ``terminated`` once the regulator has ended it."""
    return "terminated" if recall.terminated_at is not None else "active"


# ------------------------------------------------------------------ recalls


def recall_id(lot: Lot, event: Event) -> str:
    """A recall's permanent id: a name-based UUID of its lot's on-chain id and its event's payload hash, so it
    survives a rebuilt index and a new public address."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"lotline:recall:{lot.lot_id}:{event.payload_hash}"))


def _lot_json(lot: Lot, product: Product, base: str) -> dict[str, Any]:
    return {
        "product": product.name,
        "gtin": lot.gtin,
        "lot_code": lot.lot_code,
        "digital_link": digital_link(base, lot.gtin, lot.lot_code),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def recall_feed(ctx: Ctx) -> dict[str, Any]:
    """Every published recall, newest first, with public fields only (the JSON feed; the Atom feed is made
    from it)."""
    base = ctx.settings.public_url
    s = ctx.session
    recalls = list(s.scalars(published_recalls()))
    source_ids = [r.lot_id for r in recalls]
    reached: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if source_ids:
        reached_lot = aliased(Lot)
        for lot, product in s.execute(
            select(reached_lot, Product)
            .join(Event, Event.lot_id == reached_lot.id)
            .join(Product, reached_lot.product_id == Product.id)
            .where(
                reached_lot.recall_source_id.in_(source_ids),
                reached_lot.id != reached_lot.recall_source_id,
                Event.kind == EventKind.RECALL,
                Event.status == "confirmed",
            )
            .order_by(reached_lot.id)
        ):
            entry = _lot_json(lot, product, base)
            if entry not in reached[lot.recall_source_id]:
                reached[lot.recall_source_id].append(entry)
    items = []
    for recall in recalls:
        event, lot = recall.event, recall.lot
        public = visible_view(EventKind.RECALL, event.payload or {}, Visibility.PUBLIC)
        issued = event.confirmed_at or recall.issued_at
        items.append(
            {
                "id": recall_id(lot, event),
                "status": recall_status(recall),
                "recall_class": public.get("recall_class"),
                "reason": public.get("reason"),
                "date": public.get("date"),
                "instructions": public.get("instructions"),
                "contact": public.get("contact"),
                "notice_url": public.get("notice_url"),
                "issued_by": event.actor.name,
                "published": _iso(issued),
                "updated": _iso(issued),
                "producer": lot.creator.name,
                "lot": _lot_json(lot, lot.product, base),
                "reached_lots": reached.get(lot.id, []),
            }
        )
    updated = max((i["updated"] for i in items), default=None) or _iso(_deployed_at(ctx))
    return {
        "title": "Lotline food recalls",
        "feed_url": base.rstrip("/") + "/open/recalls.json",
        "home_page_url": base.rstrip("/") + "/open/",
        "licence": LICENCE,
        "licence_url": LICENCE_URL,
        "attribution": ATTRIBUTION,
        "updated": updated,
        "recalls": items,
    }


def _deployed_at(ctx: Ctx) -> datetime:
    """When the ledger was deployed: the feed's date before any recall."""
    return ctx.session.scalar(select(func.min(ChainDeployment.deployed_at))) or EPOCH


def _tag(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _entry_text(item: dict[str, Any]) -> str:
    lines = [f"Reason: {item['reason']}"]
    if item["instructions"]:
        lines.append(f"What to do: {item['instructions']}")
    if item["contact"]:
        lines.append(f"Questions: {item['contact']}")
    lot = item["lot"]
    lines.append(f"Recalled lot: {lot['product']}, GTIN {lot['gtin']}, lot {lot['lot_code']} ({lot['digital_link']})")
    for other in item["reached_lots"]:
        lines.append(
            f"Also recalled, made from it: {other['product']}, GTIN {other['gtin']}, lot {other['lot_code']} "
            f"({other['digital_link']})"
        )
    return "\n".join(lines)


def recall_atom(feed: dict[str, Any], base_url: str) -> bytes:
    """The recall feed as an Atom 1.0 document (RFC 4287)."""
    ET.register_namespace("", ATOM_NS)
    base = base_url.rstrip("/")
    root = ET.Element(f"{{{ATOM_NS}}}feed", {"xml:lang": "en"})
    _tag(root, "id", "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, base + "/open/recalls.atom")))
    _tag(root, "title", feed["title"])
    _tag(root, "subtitle", "Active and past recalls of food lots, with what consumers should do.")
    _tag(root, "updated", feed["updated"])
    _tag(root, "link", rel="self", type="application/atom+xml", href=base + "/open/recalls.atom")
    _tag(root, "link", rel="alternate", type="application/json", href=base + "/open/recalls.json")
    _tag(root, "link", rel="license", href=LICENCE_URL)
    author = _tag(root, "author")
    _tag(author, "name", urlsplit(base).hostname or "Lotline")
    _tag(root, "rights", f"{ATTRIBUTION} Licence: {LICENCE} ({LICENCE_URL}).")
    _tag(root, "generator", "Lotline")
    for item in feed["recalls"]:
        lot = item["lot"]
        entry = _tag(root, "entry")
        _tag(entry, "id", item["id"])
        klass = f"Class {item['recall_class']} recall" if item["recall_class"] else "Recall"
        _tag(entry, "title", f"{klass}: {lot['product']}, lot {lot['lot_code']}")
        _tag(entry, "updated", item["updated"])
        _tag(entry, "published", item["published"])
        entry_author = _tag(entry, "author")
        _tag(entry_author, "name", item["issued_by"])
        _tag(entry, "link", rel="alternate", type="text/html", href=lot["digital_link"])
        if item["notice_url"]:
            _tag(entry, "link", rel="related", href=item["notice_url"])
        if item["recall_class"]:
            _tag(entry, "category", term=f"class-{item['recall_class']}", label=klass)
        _tag(entry, "category", term=item["status"])
        _tag(entry, "summary", f"{item['reason']}. {item['instructions'] or ''}".strip(), type="text")
        _tag(entry, "content", _entry_text(item), type="text")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


# ------------------------------------------------------------------ statistics


def publishable(count: int, organisations: int) -> bool:
    """The suppression rule for a cell of organisations' own business (``SUPPRESSION_RULE``)."""
    return count >= MIN_COUNT and organisations >= MIN_ORGANISATIONS


def _month(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def commodity_of(product: Product) -> str:
    """A product's category for statistics: its commodity, else its category, else ``unspecified``
    (lower case, trimmed)."""
    return (product.commodity or product.category or UNSPECIFIED).strip().lower() or UNSPECIFIED


def _table(
    dimensions: Sequence[str], cells: dict[tuple[str, ...], set[tuple[int, int]]], suppress: bool
) -> dict[str, Any]:
    """Rows of (dimensions..., count) from cells of {(record id, organisation id)}, suppressed by the rule."""
    rows, left_out = [], 0
    for key in sorted(cells):
        records = cells[key]
        count = len(records)
        organisations = len({org for _, org in records})
        if suppress and not publishable(count, organisations):
            left_out += 1
            continue
        rows.append(dict(zip(dimensions, key, strict=True)) | {"count": count})
    return {"dimensions": list(dimensions), "rows": rows, "suppressed_cells": left_out}


def statistics(ctx: Ctx) -> dict[str, Any]:
    """The aggregate tables (see ``STATISTICS_SCHEMA`` and docs/open-data.md)."""
    s = ctx.session
    inspections: dict[tuple[str, ...], set[tuple[int, int]]] = defaultdict(set)
    for inspection_id, outcome, moment, product, creator in s.execute(
        select(Inspection.id, Inspection.outcome, Event.occurred_at, Product, Lot.creator_org_id)
        .join(Event, Inspection.event_id == Event.id)
        .join(Lot, Inspection.lot_id == Lot.id)
        .join(Product, Lot.product_id == Product.id)
        .where(Event.status == "confirmed")
    ):
        inspections[(_month(moment), commodity_of(product), outcome)].add((inspection_id, creator))
    lots: dict[tuple[str, ...], set[tuple[int, int]]] = defaultdict(set)
    for lot_id, created, product, creator in s.execute(
        select(Lot.id, Lot.created_at, Product, Lot.creator_org_id)
        .join(Product, Lot.product_id == Product.id)
        .where(Lot.status != "pending")
    ):
        lots[(_month(created), commodity_of(product))].add((lot_id, creator))
    recalls: dict[tuple[str, ...], set[tuple[int, int]]] = defaultdict(set)
    for recall in s.scalars(published_recalls()):
        recalls[(_month(recall.event.occurred_at), recall.recall_class)].add((recall.id, recall.lot.creator_org_id))
    return {
        "title": "Lotline aggregate statistics",
        "as_of": datetime.now(UTC).date().isoformat(),
        "licence": LICENCE,
        "licence_url": LICENCE_URL,
        "attribution": ATTRIBUTION,
        "suppression": {"min_count": MIN_COUNT, "min_organisations": MIN_ORGANISATIONS, "rule": SUPPRESSION_RULE},
        "tables": {
            "inspections": _table(("month", "commodity", "outcome"), inspections, suppress=True),
            "recalls": _table(("month", "recall_class"), recalls, suppress=False),
            "lots": _table(("month", "commodity"), lots, suppress=True),
        },
    }


TABLES = ("inspections", "recalls", "lots")


def table_csv(stats: dict[str, Any], name: str) -> bytes:
    """One table as CSV (UTF-8, header row, CRLF; formula-like text neutralised)."""
    table = stats["tables"][name]
    columns = [*table["dimensions"], "count"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in table["rows"]:
        writer.writerow([csv_cell(str(row[c])) if isinstance(row[c], str) else row[c] for c in columns])
    return buffer.getvalue().encode("utf-8")


# ------------------------------------------------------------------ the documented schemas

_LOT_SCHEMA = {
    "type": "object",
    "required": ["product", "gtin", "lot_code", "digital_link"],
    "additionalProperties": False,
    "properties": {
        "product": {"type": "string", "description": "Product name as registered by the GTIN's owner"},
        "gtin": {"type": "string", "pattern": "^[0-9]{14}$", "description": "GTIN-14"},
        "lot_code": {"type": "string", "minLength": 1, "maxLength": 20, "description": "GS1 AI 10 lot code"},
        "digital_link": {"type": "string", "format": "uri", "description": "The lot's consumer page"},
    },
}
_NULLABLE_TEXT = {"type": ["string", "null"]}

RECALLS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Lotline open recalls feed",
    "type": "object",
    "required": ["title", "feed_url", "home_page_url", "licence", "licence_url", "attribution", "updated", "recalls"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string"},
        "feed_url": {"type": "string", "format": "uri"},
        "home_page_url": {"type": "string", "format": "uri"},
        "licence": {"const": LICENCE},
        "licence_url": {"type": "string", "format": "uri"},
        "attribution": {"type": "string"},
        "updated": {"type": "string", "format": "date-time"},
        "recalls": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "id",
                    "status",
                    "recall_class",
                    "reason",
                    "date",
                    "instructions",
                    "contact",
                    "notice_url",
                    "issued_by",
                    "published",
                    "updated",
                    "producer",
                    "lot",
                    "reached_lots",
                ],
                "properties": {
                    "id": {"type": "string", "pattern": "^urn:uuid:[0-9a-f-]{36}$"},
                    "status": {"enum": ["active", "terminated"]},
                    "recall_class": {"enum": ["I", "II", "III"]},
                    "reason": {"type": "string"},
                    "date": {"type": "string", "format": "date"},
                    "instructions": {"type": "string"},
                    "contact": _NULLABLE_TEXT,
                    "notice_url": _NULLABLE_TEXT,
                    "issued_by": {"type": "string"},
                    "published": {"type": "string", "format": "date-time"},
                    "updated": {"type": "string", "format": "date-time"},
                    "producer": {"type": "string"},
                    "lot": _LOT_SCHEMA,
                    "reached_lots": {"type": "array", "items": _LOT_SCHEMA},
                },
            },
        },
    },
}


def _table_schema(dimensions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["dimensions", "rows", "suppressed_cells"],
        "additionalProperties": False,
        "properties": {
            "dimensions": {"const": list(dimensions)},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [*dimensions, "count"],
                    "properties": dimensions | {"count": {"type": "integer", "minimum": 1}},
                },
            },
            "suppressed_cells": {"type": "integer", "minimum": 0},
        },
    }


_MONTH = {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])$"}
STATISTICS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Lotline open aggregate statistics",
    "type": "object",
    "required": ["title", "as_of", "licence", "licence_url", "attribution", "suppression", "tables"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string"},
        "as_of": {"type": "string", "format": "date", "description": "The day the tables were computed (UTC)"},
        "licence": {"const": LICENCE},
        "licence_url": {"type": "string", "format": "uri"},
        "attribution": {"type": "string"},
        "suppression": {
            "type": "object",
            "required": ["min_count", "min_organisations", "rule"],
            "additionalProperties": False,
            "properties": {
                "min_count": {"const": MIN_COUNT},
                "min_organisations": {"const": MIN_ORGANISATIONS},
                "rule": {"type": "string"},
            },
        },
        "tables": {
            "type": "object",
            "required": list(TABLES),
            "additionalProperties": False,
            "properties": {
                "inspections": _table_schema(
                    {
                        "month": _MONTH,
                        "commodity": {"type": "string"},
                        "outcome": {"enum": ["pass", "fail", "conditional"]},
                    }
                ),
                "recalls": _table_schema({"month": _MONTH, "recall_class": {"enum": ["I", "II", "III"]}}),
                "lots": _table_schema({"month": _MONTH, "commodity": {"type": "string"}}),
            },
        },
    },
}
