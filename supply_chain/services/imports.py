"""Bulk import: many critical tracking events from one CSV or XLSX file, one row per CTE (docs/import.md).

The columns are those of the FSMA 204 sortable spreadsheet Lotline exports (``fsma.COLUMNS``, same headers),
so a member's own records - or a sheet filled from the template - come back in. Reading a file
(``read_file``) gives an import document: its rows as text cells keyed by column, each with its row number
as in the file. Problems with the file as a whole (its size, encoding, headers, row count) are refused at once
(InvalidInput naming ``file``); problems with a cell are reported with its row.

Planning (``plan_import``) asks every row of the same rulebook the single-event paths use: the EPCIS
capture's ``Planner`` keeps the lots as the rows before leave them (so a lot created in row 3 may be shipped in
row 10), ``policy`` decides who may do what in which status, ``validate_payload`` checks the key data
elements, and the rows are then rehearsed through ``lots.plan_lot``/``plan_event`` (the invariants) and rolled
back. A file with any refused row raises ``ImportRejected`` (422) with a result per row - row number and column
as in the file, the rule - and nothing is written. An accepted file becomes a capture job
(``epcis.jobs.submit(source="import")``) written in bounded batches with progress, like an EPCIS capture.

Cells that a spreadsheet program would evaluate as formulas (``fsma.formula_like``) are never taken as
values: in CSV such a cell is refused unless it carries the leading ``'`` Lotline's own export adds (the quote
is then dropped: the exact text); in XLSX a formula cell is refused, a text cell is text.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import re
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from supply_chain.domain import invariants, policy
from supply_chain.domain.errors import InvalidInput, LotlineError, NotFound
from supply_chain.domain.events import kind_spec, validate_payload
from supply_chain.domain.hashing import hex32
from supply_chain.domain.identifiers import lot_id, parse_gtin, parse_lot_code
from supply_chain.domain.kinds import CREATION_KINDS, EventKind
from supply_chain.domain.lineage import check_consumption, format_quantity, parse_quantity
from supply_chain.domain.policy import Action
from supply_chain.services import fsma
from supply_chain.services import lots as lot_service
from supply_chain.services.epcis.capture import CapturePlan, Planner, Step, rehearse
from supply_chain.services.instance import private_folder, write_private
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Organisation

HEADERS: dict[str, str] = dict(fsma.COLUMNS)
"""Column key -> header, as in the FSMA 204 spreadsheet."""
EXPORT_ONLY = frozenset(
    {
        "location_description",
        "tlc_source_description",
        "ship_from_description",
        "ship_to_description",
        "recorded_by",
        "record_status",
        "chain_transaction",
    }
)
"""Columns the export fills from the record (names of registered places, who recorded, chain status): a file
may keep them (an exported sheet imports as it is) but they are not read."""
TEMPLATE_COLUMNS = tuple(key for key, _ in fsma.COLUMNS if key not in EXPORT_ONLY)
REQUIRED_COLUMNS = ("cte", "date", "traceability_lot_code", "gtin")
XLSX_CONTENT_TYPE = fsma.XLSX_CONTENT_TYPE

CTE_BY_NAME: dict[str, EventKind] = {name.lower(): kind for kind, name in fsma.CTE_KINDS.items()} | {
    kind.name.lower(): kind for kind in fsma.CTE_KINDS
}
"""What the "Critical tracking event" cell may say: the spreadsheet's name (any case) or the kind's key."""

# KDEs filled from a column of the same key (when the row's CTE defines them)
_PLAIN_KDES = fsma.PLAIN_KDES
# KDEs "Other key data elements" may not set: they have a column of their own or are the structure of the row
_STRUCTURAL = frozenset(_PLAIN_KDES) | {"location_gln", "from_gln", "to_gln", "quantity", "unit", "inputs"}
_OTHER_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_INPUT = re.compile(r"^\s*(?P<gtin>[0-9 ]+)\s*/\s*(?P<lot>[^()]+?)\s*(?:\((?P<qty>[^)]*)\))?\s*$")


# ================================================================== reading a file


def _header_key(text: str) -> str | None:
    wanted = " ".join(text.split()).lower()
    for key, header in fsma.COLUMNS:
        if wanted in (header.lower(), key):
            return key
    return None


def _decode(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (with or without byte-order mark), UTF-16 with its mark (spreadsheet
    programs' "Unicode text"), or GB18030 (Excel's CSV on a Simplified Chinese system)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        "the file is not UTF-8 or GB18030 text: save it as CSV UTF-8", field="file", code="invalid_encoding"
    )


def _csv_rows(data: bytes) -> list[tuple[int, list[str], dict[int, str]]]:
    """(row number, cells, {cell position: why it is refused}) of a CSV file; the header is row 1."""
    text = _decode(data)
    if "\x00" in text:
        raise InvalidInput("the file holds NUL characters: it is not a CSV text file", field="file", code="not_csv")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    out = []
    try:
        for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
            refused: dict[int, str] = {}
            values = []
            for position, cell in enumerate(cells):
                if cell.startswith("'") and fsma.formula_like(cell[1:]):
                    cell = cell[1:]  # Lotline's export marks text that looks like a formula with a quote
                elif fsma.formula_like(cell):
                    refused[position] = (
                        "starts like a spreadsheet formula (=, +, -, @); write the value itself, or put a ' "
                        "before it to keep it as text"
                    )
                values.append(cell)
            out.append((number, values, refused))
            if len(out) > policy.MAX_IMPORT_ROWS + 1:
                break
    except csv.Error as exc:
        raise InvalidInput(f"the file is not readable as CSV: {exc}", field="file", code="not_csv") from None
    return out


def _xlsx_value(value: object, key: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return (
            value.date().isoformat()
            if value.time() == datetime.min.time() and value.tzinfo is None
            else (value.isoformat())
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        text = format(number.normalize(), "f") if number == number.to_integral_value() else str(number)
        text = text.split(".")[0] if number == number.to_integral_value() else text
        # identifiers typed as numbers lose their leading zeros: GTIN-14 and GLN have fixed lengths
        if key == "gtin" and text.isdigit():
            return text.zfill(14) if len(text) > 12 else text
        if key and key.endswith("_gln") and text.isdigit():
            return text.zfill(13)
        return text
    return str(value)


def _xlsx_rows(data: bytes) -> list[tuple[int, list[str], dict[int, str]]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InvalidInput(f"the file is not a readable XLSX workbook ({exc})", field="file", code="not_xlsx") from None
    try:
        sheet = book.worksheets[0]
        out: list[tuple[int, list[str], dict[int, str]]] = []
        keys: list[str | None] = []
        for number, row in enumerate(sheet.iter_rows(), start=1):
            values, refused = [], {}
            for position, cell in enumerate(row):
                key = keys[position] if position < len(keys) else None
                if getattr(cell, "data_type", None) == "f":
                    refused[position] = "holds a spreadsheet formula; type the value itself"
                    values.append("")
                else:
                    values.append(_xlsx_value(cell.value, key))
            if number == 1:
                keys = [_header_key(v) for v in values]
            out.append((number, values, refused))
            if len(out) > policy.MAX_IMPORT_ROWS + 1:
                break
        return out
    finally:
        book.close()


def read_file(data: bytes, filename: str = "", content_type: str = "") -> dict[str, Any]:
    """The import document of an uploaded CSV or XLSX file: {format, filename, headers (column key -> header
    as in the file), rows [{row, cells {key: text}, refused {key: reason}}]}. Empty rows are left out (their
    numbers kept). Raises InvalidInput (field ``file``) for a file that cannot be imported at all."""
    if not data:
        raise InvalidInput("the file is empty", field="file", code="empty_file")
    if len(data) > policy.MAX_IMPORT_BYTES:
        raise InvalidInput(
            f"the file is {len(data) / 1024 / 1024:.1f} MiB; an import takes at most "
            f"{policy.MAX_IMPORT_BYTES // (1024 * 1024)} MiB (split it into several files)",
            field="file",
            code="file_too_large",
        )
    is_xlsx = data.startswith(b"PK\x03\x04") or filename.lower().endswith(".xlsx") or content_type == XLSX_CONTENT_TYPE
    table = _xlsx_rows(data) if is_xlsx else _csv_rows(data)
    if not table or not any(v.strip() for v in table[0][1]):
        raise InvalidInput("the file has no header row", field="file", code="missing_header")
    _, header_cells, _ = table[0]
    headers: dict[str, str] = {}
    positions: dict[str, int] = {}
    unknown = []
    for position, text in enumerate(header_cells):
        if not text.strip():
            continue
        key = _header_key(text)
        if key is None:
            unknown.append(text.strip())
        elif key in headers:
            raise InvalidInput(f"the column {text.strip()!r} appears twice", field="file", code="duplicate_column")
        else:
            headers[key], positions[key] = text.strip(), position
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {', '.join(repr(u[:60]) for u in unknown[:5])}: the columns are those of the "
            "FSMA 204 spreadsheet (download the template)",
            field="file",
            code="unknown_column",
        )
    missing = [HEADERS[key] for key in REQUIRED_COLUMNS if key not in headers]
    if missing:
        raise InvalidInput(
            f"the file lacks the column(s) {', '.join(missing)} (download the template)",
            field="file",
            code="missing_column",
        )
    rows = []
    for number, cells, refused in table[1:]:
        if not any(c.strip() for c in cells):
            continue
        row_cells = {}
        row_refused = {}
        for key, position in positions.items():
            if key in EXPORT_ONLY:
                continue
            value = cells[position].strip() if position < len(cells) else ""
            if position in refused:
                row_refused[key] = refused[position]
            elif value:
                row_cells[key] = value
        extra = [p for p, c in enumerate(cells) if c.strip() and p not in positions.values()]
        if extra:
            row_refused["_row"] = f"holds a value in column {extra[0] + 1}, which has no header"
        rows.append({"row": number, "cells": row_cells, "refused": row_refused})
    if not rows:
        raise InvalidInput("the file holds a header row but no data rows", field="file", code="no_rows")
    if len(rows) > policy.MAX_IMPORT_ROWS:
        raise InvalidInput(
            f"the file holds more than {policy.MAX_IMPORT_ROWS} rows; split it into several files",
            field="file",
            code="too_many_rows",
        )
    return {
        "format": "xlsx" if is_xlsx else "csv",
        "filename": filename[-200:],
        "headers": headers,
        "rows": rows,
    }


# ================================================================== the template


def template(fmt: str) -> tuple[bytes, str]:
    """An empty import file (the header row) as CSV or XLSX bytes, and its content type."""
    headers = [HEADERS[key] for key in TEMPLATE_COLUMNS]
    if fmt == "csv":
        return ("\ufeff" + ",".join(headers) + "\r\n").encode("utf-8"), fsma.FORMATS["csv"]
    if fmt != "xlsx":
        raise InvalidInput(f"format must be csv or xlsx, got {fmt!r}", field="format")
    book = Workbook()
    sheet = book.active
    sheet.title = "Import"
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, header in enumerate(headers, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = min(40, max(12, len(header) + 2))
        # identifiers and dates are text: a spreadsheet must not turn a GLN into 6.14E+12 or drop its zeros
        for row in range(2, 1002):
            sheet.cell(row=row, column=index).number_format = "@"
    sheet.freeze_panes = "A2"
    book.properties.creator = "Lotline"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), XLSX_CONTENT_TYPE


# ================================================================== planning


@dataclass
class RowResult:
    """What became of one row of an import file."""

    index: int  # position among the file's data rows (the job's event index)
    row: int  # row number as in the file (the header is row 1)
    cte: str | None
    gtin: str | None
    lot_code: str | None
    status: str = "accepted"  # accepted | captured | rejected
    code: str | None = None
    reason: str | None = None
    column: str | None = None  # the header, as in the file, of the cell the rule is about
    field: str | None = None  # the key data element (or column key) the rule named
    writes: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "row": self.row,
            "cte": self.cte,
            "gtin": self.gtin,
            "lot_code": self.lot_code,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "column": self.column,
            "field": self.field,
            "lotline_events": self.writes,
        }


class ImportRejected(InvalidInput):
    """Raised when any row of an import file is refused; nothing was written. Carries every row's result
    (``details['rows']``: the refused ones with row, column and rule)."""

    status = 422
    code = "import_rejected"

    def __init__(self, message: str, results: list[RowResult]) -> None:
        first = next(r for r in results if r.status == "rejected")
        super().__init__(message, field=first.column or "file")
        self.results = results
        self.details = {
            "rows_total": len(results),
            "rows_refused": sum(1 for r in results if r.status == "rejected"),
            "errors": [
                {"row": r.row, "column": r.column, "code": r.code, "reason": r.reason}
                for r in results
                if r.status == "rejected"
            ],
        }


class _RowError(InvalidInput):
    """A refusal about one cell of the row being planned (``field`` is its column key)."""


class _Row:
    """One row being planned: its cells, where each key data element came from, the planner."""

    def __init__(self, planner: Planner, headers: Mapping[str, str], cells: Mapping[str, str]) -> None:
        self.planner = planner
        self.headers = headers
        self.cells = cells
        self.origin: dict[str, str] = {}  # KDE -> the column key its value came from

    def header(self, key: str) -> str:
        return self.headers.get(key) or HEADERS.get(key, key)

    def get(self, key: str) -> str | None:
        return self.cells.get(key) or None

    def need(self, key: str, what: str) -> str:
        value = self.get(key)
        if value is None:
            raise _RowError(f"is required for {what}", field=key, code="missing_field")
        return value

    def kdes(self, kind: EventKind, payload: dict[str, Any], date_value: str) -> dict[str, Any]:
        """``payload`` completed with the row's plain KDE columns and "Other key data elements"; a filled
        column the CTE does not define is refused rather than dropped."""
        spec = kind_spec(kind)
        payload[spec.date_field] = date_value
        self.origin[spec.date_field] = "date"
        for key in _PLAIN_KDES:
            value = self.get(key)
            if value is None or key == spec.date_field:
                continue
            if key not in spec.by_name:
                if kind is EventKind.HARVESTING and key == "harvest_date":
                    if value != date_value:
                        raise _RowError(f"must be empty or the event date ({date_value}) for harvesting", field=key)
                    continue
                raise _RowError(
                    f"is not a key data element of {fsma.CTE_KINDS[kind].lower()}: leave it empty", field=key
                )
            payload[key] = value
            self.origin[key] = key
        for part in (self.get("other_kdes") or "").split(";"):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not _OTHER_NAME.fullmatch(name):
                raise _RowError(
                    f"write each element as name=value (lower-case name), separated by ';'; got {part.strip()!r:.60}",
                    field="other_kdes",
                )
            if name in _STRUCTURAL or name == spec.date_field:
                raise _RowError(f"{name} has a column of its own", field="other_kdes")
            payload[name] = value.strip()
            self.origin[name] = "other_kdes"
        return payload

    def quantity(self, default: Decimal | None) -> str:
        value = self.get("quantity")
        if value is None:
            if default is None:
                raise _RowError("is required for a new lot", field="quantity", code="missing_quantity")
            return format_quantity(default)
        return format_quantity(parse_quantity(value, "quantity"))

    def place(self, gln: str, key: str, *, own: bool) -> str:
        self.planner.location(gln, self.header(key), own=own)
        return gln

    def validated(self, kind: EventKind, payload: Mapping[str, Any]) -> dict[str, Any]:
        normalised = validate_payload(kind, {k: v for k, v in payload.items() if v not in (None, "")})
        for key, value in normalised.items():
            if key.endswith("_gln") and isinstance(value, str):
                self.planner.location(value, self.header(self.origin.get(key, key)))
        return normalised


class _ImportPlanner:
    def __init__(self, ctx: Ctx, org: Organisation, document: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.org = org
        self.planner = Planner(ctx, org)
        self.headers: dict[str, str] = dict(document.get("headers") or {})

    def header(self, key: str | None) -> str | None:
        if key is None:
            return None
        return self.headers.get(key) or HEADERS.get(key)

    def prefetch(self, rows: list[Mapping[str, Any]]) -> None:
        """Ask the chain in bulk (``Planner.check_absent``) about every lot a row may create."""
        ids: dict[str, None] = {}
        for row in rows:
            cells = row.get("cells") or {}
            kind = CTE_BY_NAME.get(" ".join(str(cells.get("cte", "")).split()).lower())
            key = _row_key(cells)
            if kind in CREATION_KINDS and key is not None:
                ids[hex32(lot_id(*key))] = None
        self.planner.check_absent(list(ids))

    def plan_row(self, index: int, cells: Mapping[str, str], row: _Row) -> list[Step]:
        name = row.need("cte", "every row")
        kind = CTE_BY_NAME.get(" ".join(name.split()).lower())
        if kind is None:
            raise _RowError(
                f"{name!r:.40} is not a critical tracking event; write one of {', '.join(fsma.CTE_KINDS.values())}",
                field="cte",
                code="unknown_cte",
            )
        when = row.need("date", "every row")
        try:
            gtin = parse_gtin(row.need("gtin", "every row"))
        except InvalidInput as exc:
            raise _RowError(exc.message, field="gtin", code=exc.code) from None
        try:
            code = parse_lot_code(row.need("traceability_lot_code", "every row"))
        except InvalidInput as exc:
            raise _RowError(exc.message, field="traceability_lot_code", code=exc.code) from None
        key = (gtin, code)
        lot_header = row.header("traceability_lot_code")
        if kind is EventKind.TRANSFORMATION:
            return [self._transform(index, row, key, when)]
        if kind is EventKind.SHIPPING:
            return [self._ship(index, row, key, when)]
        if kind is EventKind.RECEIVING:
            return [self._receive(index, row, key, when)]
        if kind is EventKind.COOLING:
            return [self._record(index, row, kind, self.planner.lot(key, lot_header), when)]
        if kind is not EventKind.INITIAL_PACKING:  # harvesting, first land-based receiving: a new lot
            return [self._create(index, row, kind, key, when)]
        try:  # initial packing: a new lot, or the packing of a lot harvested before (the farm packs its own)
            state = self.planner.lot(key, lot_header)
        except NotFound:
            return [self._create(index, row, kind, key, when)]
        return [self._record(index, row, kind, state, when)]

    def _create(self, index: int, row: _Row, kind: EventKind, key: tuple[str, str], when: str) -> Step:
        self.planner.role(policy.ordered(policy.CREATOR_ROLES), "create lots")
        product = self.planner.new_lot(key, row.header("traceability_lot_code"))
        quantity = row.quantity(None)
        unit = invariants.lot_unit(row.get("unit"), product.unit, product.name, "unit")
        gln = row.place(row.need("location_gln", "a new lot"), "location_gln", own=True)
        row.origin |= {"location_gln": "location_gln", "quantity": "quantity", "unit": "unit"}
        payload = row.kdes(kind, {"location_gln": gln, "quantity": quantity, "unit": unit}, when)
        payload = lot_service.bind_product(kind, product, payload)
        if kind is EventKind.INITIAL_PACKING:
            payload.setdefault("product_description", product.name)
        payload = row.validated(kind, payload)
        self.planner.created(key, product, Decimal(quantity), unit)
        return Step("create", index, kind, key, payload, quantity, unit)

    def _record(self, index: int, row: _Row, kind: EventKind, state: Any, when: str) -> Step:
        self.planner.allow(Action.RECORD, state, row.header("traceability_lot_code"))
        gln = row.place(row.need("location_gln", fsma.CTE_KINDS[kind].lower()), "location_gln", own=True)
        row.origin |= {"location_gln": "location_gln", "quantity": "quantity", "unit": "unit"}
        payload = {"location_gln": gln, "quantity": row.quantity(state.quantity), "unit": row.get("unit") or state.unit}
        payload = row.kdes(kind, payload, when)
        payload = lot_service.bind_product(kind, state.product, payload)
        return Step("record", index, kind, (state.gtin, state.lot_code), row.validated(kind, payload))

    def _ship(self, index: int, row: _Row, key: tuple[str, str], when: str) -> Step:
        self.planner.role(policy.ordered(policy.HANDLER_ROLES), "ship lots")
        state = self.planner.lot(key, row.header("traceability_lot_code"))
        self.planner.allow(Action.SHIP, state, row.header("traceability_lot_code"))
        from_key = "ship_from_gln" if row.get("ship_from_gln") else "location_gln"
        from_gln = row.place(row.need(from_key, "shipping (the ship-from GLN)"), from_key, own=True)
        if row.get("ship_from_gln") and row.get("location_gln") and row.get("location_gln") != from_gln:
            raise _RowError("must be the ship-from GLN (or empty) for shipping", field="location_gln")
        to_gln = row.place(row.need("ship_to_gln", "shipping"), "ship_to_gln", own=False)
        recipient = self.planner.location(to_gln, row.header("ship_to_gln")).organisation
        if recipient.id == self.org.id or not set(recipient.roles) & policy.RECEIVING_ROLES:
            raise _RowError(
                f"{recipient.name} cannot receive lots (needs a processor, distributor or retailer role, and must be "
                "another organisation)",
                field="ship_to_gln",
                code="recipient_cannot_receive",
            )
        row.origin |= {"from_gln": from_key, "to_gln": "ship_to_gln", "quantity": "quantity", "unit": "unit"}
        payload = {
            "from_gln": from_gln,
            "to_gln": to_gln,
            "quantity": row.quantity(state.quantity),
            "unit": row.get("unit") or state.unit,
        }
        payload = row.validated(EventKind.SHIPPING, row.kdes(EventKind.SHIPPING, payload, when))
        state.status, state.pending_id, state.offer = "in_transit", recipient.id, payload
        return Step("offer", index, EventKind.SHIPPING, key, payload, to_id=recipient.id)

    def _receive(self, index: int, row: _Row, key: tuple[str, str], when: str) -> Step:
        self.planner.role(policy.ordered(policy.RECEIVING_ROLES), "receive lots")
        state = self.planner.lot(key, row.header("traceability_lot_code"))
        self.planner.allow(Action.ACCEPT, state, row.header("traceability_lot_code"))
        to_key = "location_gln" if row.get("location_gln") else "ship_to_gln"
        to_gln = row.place(row.need(to_key, "receiving (the receiving location's GLN)"), to_key, own=True)
        offer = state.offer or {}
        row.origin |= {"to_gln": to_key, "from_gln": "ship_from_gln", "quantity": "quantity", "unit": "unit"}
        payload = {k: offer[k] for k in ("tlc_source_gln", "product_description") if k in offer} | {
            k: offer[k] for k in ("reference_document_type", "reference_document_number") if k in offer
        }
        payload |= {
            "from_gln": row.get("ship_from_gln") or offer.get("from_gln"),
            "to_gln": to_gln,
            "quantity": row.quantity(Decimal(offer["quantity"]) if offer.get("quantity") else state.quantity),
            "unit": row.get("unit") or offer.get("unit") or state.unit,
        }
        payload = row.validated(EventKind.RECEIVING, row.kdes(EventKind.RECEIVING, payload, when))
        state.status, state.custodian_id, state.pending_id, state.offer = "active", self.org.id, None, None
        return Step("accept", index, EventKind.RECEIVING, key, payload)

    def _transform(self, index: int, row: _Row, key: tuple[str, str], when: str) -> Step:
        self.planner.role(policy.ordered(policy.CREATOR_ROLES), "transform lots")
        product = self.planner.new_lot(key, row.header("traceability_lot_code"))
        quantity = row.quantity(None)
        unit = invariants.lot_unit(row.get("unit"), product.unit, product.name, "unit")
        gln = row.place(row.need("location_gln", "a transformation"), "location_gln", own=True)
        text = row.need("input_lots", "a transformation (GTIN/LOT (quantity unit); ...)")
        inputs: list[dict[str, str]] = []
        consumed: list[tuple[tuple[str, str], str]] = []
        header = row.header("input_lots")
        for part in text.split(";"):
            if not part.strip():
                continue
            match = _INPUT.match(part)
            if match is None:
                raise _RowError(
                    f"write each input lot as GTIN/LOT (quantity unit), separated by ';'; got {part.strip()!r:.60}",
                    field="input_lots",
                )
            try:
                in_key = (parse_gtin(match["gtin"]), parse_lot_code(match["lot"]))
            except InvalidInput as exc:
                raise _RowError(exc.message, field="input_lots", code=exc.code) from None
            if in_key == key or any(in_key == k for k, _ in consumed):
                raise _RowError(f"lot {in_key[1]} is listed twice", field="input_lots")
            state = self.planner.lot(in_key, header)
            self.planner.allow(Action.USE_AS_INPUT, state, header)
            amount_text, _, in_unit = (match["qty"] or "").strip().partition(" ")
            if in_unit.strip() and in_unit.strip() != state.unit:
                raise _RowError(
                    f"lot {in_key[1]} is measured in {state.unit}, not {in_unit.strip()!r:.20}", field="input_lots"
                )
            amount = parse_quantity(amount_text, "input_lots") if amount_text else state.quantity
            state.quantity = check_consumption(state.quantity, amount, field="input_lots", unit=state.unit)
            inputs.append(
                {"gtin": in_key[0], "lot_code": in_key[1], "quantity": format_quantity(amount), "unit": state.unit}
            )
            consumed.append((in_key, format_quantity(amount)))
        if not inputs:
            raise _RowError("a transformation needs its input lots", field="input_lots", code="missing_field")
        row.origin |= {"location_gln": "location_gln", "quantity": "quantity", "unit": "unit", "inputs": "input_lots"}
        payload = {"location_gln": gln, "quantity": quantity, "unit": unit, "inputs": inputs}
        payload = row.validated(EventKind.TRANSFORMATION, row.kdes(EventKind.TRANSFORMATION, payload, when))
        self.planner.created(key, product, Decimal(quantity), unit)
        output = {"key": key, "quantity": quantity, "unit": unit, "payload": payload, "inputs": consumed}
        return Step("transform", index, EventKind.TRANSFORMATION, outputs=[output])


def _column_key(field: str | None, origin: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The column a refusal is about: a column key as it is, a KDE (``payload.ship_date``,
    ``payload.inputs[0].quantity``) through where the row took it from."""
    if not field:
        return None
    if field in HEADERS or field == "_row":
        return field
    by_header = {header: key for key, header in HEADERS.items()} | {v: k for k, v in headers.items()}
    if field in by_header:
        return by_header[field]
    name = field.removeprefix("payload.").split("[")[0].split(".")[0]
    if name in origin:
        return origin[name]
    if name in HEADERS:
        return name
    return {"lot_code": "traceability_lot_code", "inputs": "input_lots", "from_gln": "ship_from_gln"}.get(name)


def refusal_column(document: Mapping[str, Any], index: int, exc: LotlineError) -> str | None:
    """The column (as headed in the file) of row ``index`` that a refusal while the job writes is about. A
    field the services name maps as at planning; the chain names no field but the lot it refused, which is
    the row's lot unless it is one of its input lots."""
    rows = list(document.get("rows") or [])
    if not 0 <= index < len(rows):
        return None
    cells: Mapping[str, str] = rows[index].get("cells") or {}
    headers: Mapping[str, str] = document.get("headers") or {}
    key = _column_key(exc.field, {}, headers)
    if key is None:
        refused_lot = str((getattr(exc, "chain_args", None) or {}).get("lotId") or "").lower()
        key = "traceability_lot_code"
        for column, (gtin, code) in _lot_keys(cells):
            if refused_lot == "0x" + lot_id(gtin, code).hex():
                key = column
                break
    return None if key == "_row" else headers.get(key) or HEADERS.get(key, key)


def _reason(exc: LotlineError, *prefixes: str | None) -> str:
    """The rule without the internal field name the services put in front (``payload.quantity: ...``)."""
    message = exc.message
    for prefix in (exc.field, *prefixes):
        if prefix and message.startswith(prefix + ": "):
            return message[len(prefix) + 2 :]
    return message


def plan_import(ctx: Ctx, org: Organisation, document: Mapping[str, Any]) -> CapturePlan:
    """Check every row of an import document (``read_file``) for ``org`` on a simulated state, then rehearse
    the writes (rolled back): nothing is written. Raises ImportRejected (422, a result per row)."""
    rows: list[Mapping[str, Any]] = list(document.get("rows") or [])
    if not rows:
        raise InvalidInput("the file holds no data rows", field="file", code="no_rows")
    planner = _ImportPlanner(ctx, org, document)
    planner.prefetch(rows)
    results: list[RowResult] = []
    steps: list[Step] = []
    origins: list[dict[str, str]] = []
    refused_lots: dict[tuple[str, str], int] = {}  # lots whose row was refused -> that row's number

    def reject(result: RowResult, exc: LotlineError, origin: Mapping[str, str], key: str | None = None) -> None:
        column = key or _column_key(exc.field, origin, planner.headers)
        header = planner.header(column) if column and column != "_row" else None
        result.status, result.code, result.field, result.column = "rejected", exc.code, exc.field, header
        result.reason = _reason(exc, header, exc.field)

    for index, item in enumerate(rows):
        cells: Mapping[str, str] = item.get("cells") or {}
        result = RowResult(
            index,
            int(item.get("row", index + 2)),
            cells.get("cte"),
            cells.get("gtin"),
            cells.get("traceability_lot_code"),
        )
        results.append(result)
        row = _Row(planner.planner, planner.headers, cells)
        origins.append(row.origin)
        refused = dict(item.get("refused") or {})
        if refused:
            column, why = next(iter(refused.items()))
            reject(
                result,
                _RowError(why, field=column, code="formula_cell" if column != "_row" else "extra_cell"),
                {},
                column,
            )
            continue
        depends = _depends_on(cells, refused_lots)
        if depends is not None:
            column, number = depends
            reject(
                result,
                _RowError(
                    f"uses a lot from row {number}, which is refused", field=column, code="depends_on_refused_row"
                ),
                {},
                column,
            )
            _note_refused(cells, result.row, refused_lots, "depends_on_refused_row")
            continue
        try:
            steps += planner.plan_row(index, cells, row)
        except LotlineError as exc:
            reject(result, exc, row.origin)
            _note_refused(cells, result.row, refused_lots, exc.code)

    if not any(r.status == "rejected" for r in results):

        def refused_step(step: Step, exc: LotlineError) -> None:
            reject(results[step.index], exc, origins[step.index])

        rehearse(ctx, org, steps, refused_step, planner.planner.checked - planner.planner.on_chain)
    bad = [r for r in results if r.status == "rejected"]
    if bad:
        first = bad[0]
        where = f"row {first.row}" + (f", {first.column}" if first.column else "")
        raise ImportRejected(
            f"{len(bad)} of {len(results)} row(s) cannot be imported, so nothing was recorded; first: {where}: "
            f"{first.reason}",
            results,
        )
    for number, step in enumerate(steps):
        step.number = number
    return CapturePlan(results, steps, planner.planner.checked - planner.planner.on_chain)  # type: ignore[arg-type]


def _row_key(cells: Mapping[str, str]) -> tuple[str, str] | None:
    """The row's lot (GTIN-14, lot code), or None when either does not parse."""
    try:
        return parse_gtin(cells.get("gtin", "")), parse_lot_code(cells.get("traceability_lot_code", ""))
    except (LotlineError, TypeError):
        return None


def _lot_keys(cells: Mapping[str, str]) -> list[tuple[str, tuple[str, str]]]:
    """(column, lot) of every lot a row names, leniently parsed (for "depends on a refused row")."""
    out = []
    if (key := _row_key(cells)) is not None:
        out.append(("traceability_lot_code", key))
    for part in (cells.get("input_lots") or "").split(";"):
        match = _INPUT.match(part) if part.strip() else None
        if match:
            try:
                out.append(("input_lots", (parse_gtin(match["gtin"]), parse_lot_code(match["lot"]))))
            except LotlineError:
                continue
    return out


def _depends_on(cells: Mapping[str, str], refused: Mapping[tuple[str, str], int]) -> tuple[str, int] | None:
    for column, key in _lot_keys(cells):
        if key in refused:
            return column, refused[key]
    return None


def _note_refused(cells: Mapping[str, str], number: int, refused: dict[tuple[str, str], int], code: str | None) -> None:
    """Remember the lot a refused row would have created, so later rows using it are told why they fail."""
    kind = CTE_BY_NAME.get(" ".join(str(cells.get("cte", "")).split()).lower())
    key = _row_key(cells)
    if kind in CREATION_KINDS and key is not None and code != "lot_exists":
        refused.setdefault(key, number)


def summary(document: Mapping[str, Any], plan: CapturePlan) -> dict[str, Any]:
    """What a dry run found acceptable: rows, Lotline writes, lots it would create, rows per CTE."""
    per_cte: dict[str, int] = {}
    for item in document.get("rows") or []:
        kind = CTE_BY_NAME[" ".join(str(item["cells"]["cte"]).split()).lower()]
        per_cte[fsma.CTE_KINDS[kind]] = per_cte.get(fsma.CTE_KINDS[kind], 0) + 1
    creates = sum(1 for s in plan.steps if s.action in ("create", "transform"))
    return {
        "rows_total": len(plan.results),
        "writes_total": plan.calls,
        "lots_created": creates,
        "rows_by_cte": per_cte,
    }


def as_import(job: Mapping[str, Any], stored: Any) -> dict[str, Any]:
    """A capture job's description (``jobs.describe``) in an import's words: rows instead of events, and the
    file's name."""
    renamed = {"events_total": "rows_total", "events_written": "rows_written", "events": "rows"}
    out = {renamed.get(k, k): v for k, v in job.items()}
    document = getattr(stored, "document", None) or {}
    out["filename"] = document.get("filename")
    return out


# ================================================================== a checked file waiting for "import"

_STAGED = re.compile(r"[0-9a-f]{64}")
KEEP_STAGED = timedelta(days=1)
"""How long a checked file waits for its import (the browser's Import button, or the API's import of the same
file after a dry run)."""


def _staged_path(ctx: Ctx, org: Organisation, token: str) -> Path:
    if not _STAGED.fullmatch(token or ""):
        raise InvalidInput("the checked file is unknown: upload it again", field="file", code="unknown_staged_file")
    return Path(ctx.settings.home) / "imports" / f"{org.id}-{token}.json"


def stage(ctx: Ctx, org: Organisation, document: Mapping[str, Any], prepared: Mapping[str, Any] | None = None) -> str:
    """Keep a checked file's import document (and its frozen plan, ``jobs.prepared_plan``) after a dry run,
    so the import that follows need not send the file again nor plan it again while nothing changed; returns
    its token (the SHA-256 of the document). Private to the organisation (0600); files older than
    ``KEEP_STAGED`` are removed whenever one is staged (and by ``clean_staged``)."""
    token = token_of(document)
    path = _staged_path(ctx, org, token)
    private_folder(path.parent)
    clean_staged(ctx)
    data = json.dumps({"document": document, "prepared": prepared}, separators=(",", ":")).encode()
    write_private(path, data, replace=True)
    return token


def token_of(document: Mapping[str, Any]) -> str:
    """The token ``stage`` keeps ``document`` under."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def staged(ctx: Ctx, org: Organisation, token: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The import document staged under ``token`` by ``org`` and its frozen plan (None when none was kept);
    InvalidInput when nothing is staged under it."""
    path = _staged_path(ctx, org, token)
    if not path.is_file():
        raise InvalidInput("the checked file is unknown: upload it again", field="file", code="unknown_staged_file")
    data = json.loads(path.read_text("utf-8"))
    return dict(data["document"]), data.get("prepared")


def unstage(ctx: Ctx, org: Organisation, token: str) -> None:
    """Drop the checked file ``token`` now that its import job started, and any abandoned ones (older than
    ``KEEP_STAGED``: checked, never imported)."""
    _staged_path(ctx, org, token).unlink(missing_ok=True)
    clean_staged(ctx)


def clean_staged(ctx: Ctx, older_than: timedelta = KEEP_STAGED) -> int:
    """Remove checked files nobody imported within ``older_than``; returns how many. Run when a file is
    staged, when an import starts, and by the maintenance pass (``startup``), so files abandoned after a dry
    run do not stay on disk when nobody checks another file."""
    folder = Path(ctx.settings.home) / "imports"
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for old in folder.glob("*.json") if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()
                removed += 1
    return removed
