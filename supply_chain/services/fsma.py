"""The FSMA 204 electronic sortable spreadsheet (21 CFR 1.1455(c)(3)(ii)): one row per critical tracking event.

Rows hold the key data elements of each CTE - traceability lot code, product, quantity and unit, where the
event happened (description and GLN), its date, the traceability lot code source, the reference document, and
the CTE-specific KDEs (ship-from/ship-to, harvest and cooling data, transformation inputs, landing data).
Headers are plain English, dates ISO 8601 text. Columns are listed in ``COLUMNS`` and docs/fsma204.md.

Cells hold text members typed, so none may become a formula in the regulator's spreadsheet program: text
starting with ``= + - @``, a tab or a carriage return (``formula_like``) is an XLSX string cell with a quote
prefix (the exact text kept) and, in CSV, gets a leading ``'`` (OWASP's advice for CSV injection). Numbers,
negative ones included, are left as they are.

Selection: one lot, or a product (GTIN) and a date range; ``chain=True`` adds every lot the selected lots were
made from (backward) and every lot made from them (forward), so one file answers "where did it come from and
where did it go"; ``forward=True`` adds the lots made from them only (the whole forward trace, as a recall
reaches it). Failed writes are left out; events not yet mined are included and marked in
"Record status".
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.events import Visibility, event_date, instant, visible_view
from supply_chain.domain.identifiers import parse_gtin
from supply_chain.domain.kinds import EventKind
from supply_chain.services.access import OVERSIGHT_ROLES, can_see_lot, level_for
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Event, Location, Lot, Organisation
from supply_chain.store.queries import ancestors, descendants

CTE_KINDS: dict[EventKind, str] = {
    EventKind.HARVESTING: "Harvesting",
    EventKind.COOLING: "Cooling",
    EventKind.INITIAL_PACKING: "Initial packing",
    EventKind.FIRST_LAND_BASED_RECEIVING: "First land-based receiving",
    EventKind.SHIPPING: "Shipping",
    EventKind.RECEIVING: "Receiving",
    EventKind.TRANSFORMATION: "Transformation",
}
"""The FSMA 204 critical tracking events (21 CFR 1.1325-1.1350) and their names in the spreadsheet."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("cte", "Critical tracking event"),
    ("date", "Event date"),
    ("traceability_lot_code", "Traceability lot code"),
    ("gtin", "Product GTIN"),
    ("product_description", "Product description"),
    ("commodity", "Commodity"),
    ("variety", "Variety"),
    ("quantity", "Quantity"),
    ("unit", "Unit of measure"),
    ("location_description", "Location description"),
    ("location_gln", "Location GLN"),
    ("tlc_source_description", "Traceability lot code source"),
    ("tlc_source_gln", "Traceability lot code source GLN"),
    ("reference_document_type", "Reference document type"),
    ("reference_document_number", "Reference document number"),
    ("ship_from_description", "Ship-from location"),
    ("ship_from_gln", "Ship-from GLN"),
    ("ship_to_description", "Ship-to location"),
    ("ship_to_gln", "Ship-to GLN"),
    ("harvest_location_gln", "Harvest location GLN"),
    ("harvest_date", "Harvest date"),
    ("field_name", "Field or growing area"),
    ("container_name", "Container name"),
    ("cooling_location_gln", "Cooling location GLN"),
    ("cooling_date", "Cooling date"),
    ("harvester_business_name", "Harvester business name"),
    ("immediate_subsequent_recipient_gln", "Immediate subsequent recipient GLN"),
    ("harvest_area", "Harvest area (first land-based receiving)"),
    ("vessel_name", "Fishing vessel name"),
    ("input_lots", "Input traceability lot codes (transformation)"),
    ("carrier", "Carrier"),
    ("other_kdes", "Other key data elements"),
    ("recorded_by", "Recorded by"),
    ("record_status", "Record status"),
    ("chain_transaction", "Chain transaction"),
)
HEADERS = tuple(header for _, header in COLUMNS)
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_CONTENT_TYPE}

# payload fields that have a column of their own (everything else goes to "Other key data elements")
_COLUMN_FIELDS = frozenset(key for key, _ in COLUMNS) | {
    "location_gln",
    "from_gln",
    "to_gln",
    "inputs",
    "tlc_source_gln",
    "harvest_date_start",
    "harvest_date_end",
    "harvest_date",
    "cooling_date",
    "packing_date",
    "ship_date",
    "receive_date",
    "transformation_date",
    "landing_date",
}


def parse_date(value: object, field: str) -> date:
    """An ISO 8601 calendar date (YYYY-MM-DD); InvalidInput naming ``field`` otherwise."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(
            f"{field}: must be a date as YYYY-MM-DD, got {value!r}", field=field, code="invalid_date"
        ) from None


def _lots(ctx: Ctx, ids: Iterable[int]) -> list[Lot]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    rows = ctx.session.scalars(
        select(Lot)
        .where(Lot.id.in_(ids))
        .options(selectinload(Lot.product), selectinload(Lot.events).selectinload(Event.actor))
    )
    by_id = {lot.id: lot for lot in rows}
    return [by_id[i] for i in ids if i in by_id]


def _with_chain(ctx: Ctx, lots: Sequence[Lot], backward: bool = True) -> list[int]:
    ids = [lot.id for lot in lots]
    for lot in lots:
        if backward:
            ids += [i for i, _ in ancestors(ctx.session, lot.id)]
        ids += [i for i, _ in descendants(ctx.session, lot.id)]
    return list(dict.fromkeys(ids))


def select_events(
    ctx: Ctx,
    *,
    lot: Lot | None = None,
    product: str | None = None,
    date_from: object = None,
    date_to: object = None,
    chain: bool = False,
    forward: bool = False,
    viewer: Organisation | None = None,
) -> list[tuple[Lot, Event]]:
    """The (lot, CTE event) pairs to export, in date order. Either ``lot`` or ``product`` with both dates.
    ``forward=True`` adds every lot made from the selected ones (the whole forward trace, a recall's reach)
    without their ancestors; ``chain=True`` adds both directions.

    A viewer that is not an inspector or regulator only gets lots it can see (it created, held or handled).
    """
    if (lot is None) == (product is None):
        raise InvalidInput("give either a lot, or a product with a date range", field="lot")
    start = end = None
    if lot is not None:
        if date_from is not None or date_to is not None:
            raise InvalidInput("a date range goes with a product, not with a lot", field="from")
        chosen = [lot]
        in_range: set[int] = set()
    else:
        gtin = parse_gtin(product or "")
        if date_from in (None, "") or date_to in (None, ""):
            raise InvalidInput(
                "a product export needs both dates: from and to",
                field="from" if not date_from else "to",
                code="invalid_date",
            )
        start, end = parse_date(date_from, "from"), parse_date(date_to, "to")
        if end < start:
            raise InvalidInput(f"to ({end}) must not be before from ({start})", field="to", code="invalid_date")
        candidates = _lots(ctx, ctx.session.scalars(select(Lot.id).where(Lot.gtin == gtin).order_by(Lot.id)))
        chosen = [item for item in candidates if any(_in_range(e, start, end) for e in _ctes(item))]
        in_range = {item.id for item in chosen}
    ids = _with_chain(ctx, chosen, backward=chain) if chain or forward else [item.id for item in chosen]
    selected = _lots(ctx, ids)
    if viewer is not None and not OVERSIGHT_ROLES & set(viewer.roles):
        selected = [item for item in selected if can_see_lot(ctx, viewer, item)]
    pairs = []
    for item in selected:
        for event in _ctes(item):
            if item.id in in_range and start and end and not _in_range(event, start, end):
                continue  # the product's own lots: only events in the range; chained lots: all their CTEs
            pairs.append((item, event))
    pairs.sort(key=lambda p: (_when(p[1]), p[0].gtin, p[0].lot_code, p[1].seq or 10**12, p[1].id))
    return pairs


def _ctes(lot: Lot) -> list[Event]:
    return [e for e in lot.events if int(e.kind) in CTE_KINDS and e.status != "failed"]


def _when(event: Event) -> Any:
    value = event_date(int(event.kind), event.payload or {})
    return instant(value) if value else event.occurred_at


def _in_range(event: Event, start: date, end: date) -> bool:
    value = event_date(int(event.kind), event.payload or {})
    day = date.fromisoformat(value[:10]) if value else event.occurred_at.date()
    return start <= day <= end


def _describe(location: Location | None) -> str:
    if location is None:
        return ""
    return f"{location.name}, {location.address}" if location.address else location.name


def _creation_location(lot: Lot) -> str | None:
    first = next((e for e in lot.events if e.status != "failed"), None)
    return (first.payload or {}).get("location_gln") if first else None


PLAIN_KDES = (
    "product_description",
    "commodity",
    "variety",
    "tlc_source_gln",
    "reference_document_type",
    "reference_document_number",
    "harvest_location_gln",
    "harvest_date",
    "field_name",
    "container_name",
    "cooling_location_gln",
    "cooling_date",
    "harvester_business_name",
    "immediate_subsequent_recipient_gln",
    "harvest_area",
    "vessel_name",
    "carrier",
)
"""Key data elements whose column has their key and holds them as stored: the export writes them as they are
(``rows``) and the bulk import reads them back into the payload (``services.imports``)."""


def rows(ctx: Ctx, pairs: Sequence[tuple[Lot, Event]], viewer: Organisation | None = None) -> list[dict[str, str]]:
    """One dict per CTE, keyed by ``COLUMNS`` keys; every value is text ('' when not recorded)."""
    fields = [
        (
            lot,
            event,
            visible_view(
                int(event.kind), event.payload or {}, level_for(event, viewer) if viewer else Visibility.CONSORTIUM
            ),
        )
        for lot, event in pairs
    ]
    glns = {v for _, _, f in fields for k, v in f.items() if k.endswith("_gln") and isinstance(v, str)}
    glns |= {g for lot, _, _ in fields if (g := _creation_location(lot))}
    places = (
        {loc.gln: loc for loc in ctx.session.scalars(select(Location).where(Location.gln.in_(glns)))} if glns else {}
    )
    out = []
    for lot, event, kde in fields:
        kind = EventKind(int(event.kind))
        here = (
            kde.get("from_gln")
            if kind is EventKind.SHIPPING
            else (kde.get("to_gln") if kind is EventKind.RECEIVING else kde.get("location_gln"))
        )
        source = kde.get("tlc_source_gln") or _creation_location(lot)
        harvest_gln = kde.get("location_gln") if kind is EventKind.HARVESTING else kde.get("harvest_location_gln")
        row = {key: "" for key, _ in COLUMNS}
        row.update(
            {
                "cte": CTE_KINDS[kind],
                "date": event_date(kind, kde) or event.occurred_at.date().isoformat(),
                "traceability_lot_code": lot.lot_code,
                "gtin": lot.gtin,
                "product_description": kde.get("product_description") or lot.product.name,
                "location_description": _describe(places.get(here)) if here else "",
                "location_gln": here or "",
                "tlc_source_description": _describe(places.get(source)) if source else "",
                "tlc_source_gln": source or "",
                "ship_from_description": _describe(places.get(kde["from_gln"])) if kde.get("from_gln") else "",
                "ship_from_gln": kde.get("from_gln", ""),
                "ship_to_description": _describe(places.get(kde["to_gln"])) if kde.get("to_gln") else "",
                "ship_to_gln": kde.get("to_gln", ""),
                "harvest_location_gln": harvest_gln or "",
                "harvest_date": kde.get("harvest_date") or (kde.get("harvest_date_start") or ""),
                "input_lots": "; ".join(_input(i) for i in kde.get("inputs", []) if isinstance(i, Mapping)),
                "other_kdes": "; ".join(
                    f"{k}={v}"
                    for k, v in sorted(kde.items())
                    if k not in _COLUMN_FIELDS and not isinstance(v, list | dict)
                ),
                "recorded_by": event.actor.name,
                "record_status": "anchored on chain" if event.status == "confirmed" else "not yet mined",
                "chain_transaction": (event.tx_hash or "") if event.status == "confirmed" else "",
            }
        )
        for key in ("quantity", "unit", *PLAIN_KDES):  # a stored value wins over the ones worked out above
            if kde.get(key) is not None:
                row[key] = str(kde[key])
        if kind is EventKind.HARVESTING and not row["commodity"]:
            row["commodity"] = lot.product.name
        if kind is EventKind.HARVESTING:
            row["harvest_date"] = row["date"]
        out.append(row)
    return out


def _input(item: Mapping[str, Any]) -> str:
    """A transformation input as 'GTIN/lot (quantity unit)'."""
    text = f"{item.get('gtin')}/{item.get('lot_code')}"
    if item.get("quantity"):
        text += f" ({' '.join(str(v) for v in (item['quantity'], item.get('unit')) if v)})"
    return text


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet program read a cell as a formula (OWASP: CSV injection)."""
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def formula_like(value: object) -> bool:
    """Whether a spreadsheet program would evaluate ``value`` as a formula: text starting with one of
    ``FORMULA_TRIGGERS`` that is not simply a number (``-5`` and ``+3.5`` stay numbers)."""
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _NUMBER.fullmatch(value)


def csv_cell(value: str) -> str:
    """A cell for CSV: formula-like text gets a leading single quote, so it is shown, not evaluated."""
    return "'" + value if formula_like(value) else value


def to_csv(table: Sequence[Mapping[str, str]]) -> bytes:
    """The rows as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read accents right); formula-like
    cells neutralised (``csv_cell``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in table:
        writer.writerow([csv_cell(row.get(key, "")) for key, _ in COLUMNS])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(table: Sequence[Mapping[str, str]], title: str = "FSMA 204 records") -> bytes:
    """The rows as an Excel workbook: bold frozen header row with filters, so every column sorts; every cell
    is text, formula-like text a quote-prefixed string cell (``formula_like``)."""
    book = Workbook()
    sheet = book.active
    sheet.title = "FSMA 204"
    sheet.append(list(HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table:
        sheet.append([row.get(key, "") for key, _ in COLUMNS])
        for cell in sheet[sheet.max_row]:
            if formula_like(cell.value):
                # openpyxl reads text starting with "=" as a formula: keep it a string cell, and mark it with
                # a quote prefix so the spreadsheet program does not evaluate it when the cell is edited.
                cell.data_type = "s"
                cell.quotePrefix = True
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{max(1, len(table) + 1)}"
    for index, (key, header) in enumerate(COLUMNS, start=1):
        longest = max([len(header)] + [len(row.get(key, "")) for row in table[:500]])
        sheet.column_dimensions[get_column_letter(index)].width = min(60, max(10, longest + 2))
    book.properties.title = title
    book.properties.creator = "Lotline"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export(ctx: Ctx, fmt: str, *, viewer: Organisation | None = None, **selection: Any) -> tuple[bytes, str]:
    """The spreadsheet as bytes and its content type; ``fmt`` is csv or xlsx; ``selection`` as in
    ``select_events``."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}", field="format")
    table = rows(ctx, select_events(ctx, viewer=viewer, **selection), viewer)
    return (to_csv(table) if fmt == "csv" else to_xlsx(table)), FORMATS[fmt]
