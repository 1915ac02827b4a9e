"""Reading bulk import files (issue 13, "bulk import"): CSV in the encodings spreadsheet programs write
(UTF-8 with or without byte-order mark, GB18030, UTF-16), XLSX with typed cells, the FSMA 204 headers, the
limits, and cells a spreadsheet would evaluate as formulas (the rule of test_spreadsheet_formulas.py, read
backwards)."""

from __future__ import annotations

import io

import openpyxl
import pytest

from supply_chain.domain import policy
from supply_chain.domain.errors import InvalidInput
from supply_chain.services import fsma, imports

HEADER = "Critical tracking event,Event date,Traceability lot code,Product GTIN,Commodity,Quantity"
ROW = "Harvesting,2025-06-01,LOT-1,00614141000012,{commodity},10"


def _csv(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def _cells(document: dict, index: int = 0) -> dict:
    return document["rows"][index]["cells"]


@pytest.mark.parametrize(
    "encoded",
    [
        _csv(ROW.format(commodity="生菜")).encode("utf-8"),
        ("\ufeff" + _csv(ROW.format(commodity="生菜"))).encode("utf-8"),
        _csv(ROW.format(commodity="生菜")).encode("gb18030"),
        _csv(ROW.format(commodity="生菜")).encode("utf-16"),
    ],
    ids=["utf-8", "utf-8 with BOM", "gb18030", "utf-16"],
)
def test_chinese_text_reads_the_same_in_every_encoding(encoded: bytes) -> None:
    document = imports.read_file(encoded, "x.csv")
    assert document["headers"]["cte"] == "Critical tracking event"  # no BOM left on the first header
    assert _cells(document) == {
        "cte": "Harvesting",
        "date": "2025-06-01",
        "traceability_lot_code": "LOT-1",
        "gtin": "00614141000012",
        "commodity": "生菜",
        "quantity": "10",
    }


def test_semicolon_separated_csv_and_row_numbers_as_in_the_file() -> None:
    text = _csv(ROW.format(commodity="a"), ";;;;;", ROW.format(commodity="b")).replace(",", ";")
    document = imports.read_file(text.encode(), "x.csv")
    assert [r["row"] for r in document["rows"]] == [2, 4]  # the empty row 3 is skipped, numbers kept


def test_headers_match_the_fsma_sheet_in_any_case_and_export_only_columns_are_ignored() -> None:
    header = "critical tracking event, EVENT DATE ,Traceability lot code,Product GTIN,Recorded by,Record status"
    document = imports.read_file(
        _csv("Harvesting,2025-06-01,L,00614141000012,Someone,anchored", header=header).encode()
    )
    assert set(_cells(document)) == {"cte", "date", "traceability_lot_code", "gtin"}


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("Colour,Shape\r\nred,round\r\n", "unknown_column", "'Colour'"),
        ("Critical tracking event,Event date\r\nHarvesting,2025-06-01\r\n", "missing_column", "Product GTIN"),
        (HEADER + ",Quantity\r\n", "duplicate_column", "Quantity"),
        (HEADER + "\r\n\r\n", "no_rows", "no data rows"),
    ],
)
def test_bad_headers_refuse_the_file(text: str, code: str, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        imports.read_file(text.encode(), "x.csv")
    assert refused.value.code == code and refused.value.field == "file" and words in refused.value.message


def test_limits_on_size_and_rows_are_clear() -> None:
    with pytest.raises(InvalidInput) as big:
        imports.read_file(b"x" * (policy.MAX_IMPORT_BYTES + 1), "x.csv")
    assert big.value.code == "file_too_large" and "at most 5 MiB" in big.value.message
    many = _csv(*[ROW.format(commodity="a")] * (policy.MAX_IMPORT_ROWS + 1)).encode()
    with pytest.raises(InvalidInput) as rows:
        imports.read_file(many, "x.csv")
    assert rows.value.code == "too_many_rows" and f"more than {policy.MAX_IMPORT_ROWS} rows" in rows.value.message


def test_bytes_that_are_not_text_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        imports.read_file(HEADER.encode() + b"\r\n\x00\x01\x02,\xff\xfe\r\n", "x.csv")
    assert refused.value.field == "file"


@pytest.mark.parametrize("formula", ["=1+1", '=HYPERLINK("http://evil.example")', "+1+1", "@SUM(A1:A2)", "-2+3"])
def test_a_formula_in_a_csv_cell_is_refused_for_its_row(formula: str) -> None:
    document = imports.read_file(_csv(ROW.format(commodity=f'"{formula}"' if "," in formula else formula)).encode())
    row = document["rows"][0]
    assert "commodity" not in row["cells"]
    assert "formula" in row["refused"]["commodity"]


def test_text_lotline_quoted_against_formulas_comes_back_exact() -> None:
    """The export writes formula-like text with a leading quote (fsma.csv_cell); importing drops it."""
    exported = fsma.to_csv([{"cte": "Harvesting", "commodity": "=1+1", "traceability_lot_code": "-LOT"}])
    document = imports.read_file(exported, "export.csv")
    assert _cells(document)["commodity"] == "=1+1"
    assert _cells(document)["traceability_lot_code"] == "-LOT"
    assert not document["rows"][0]["refused"]


def test_negative_numbers_are_not_formulas() -> None:
    document = imports.read_file(_csv(ROW.format(commodity="x").replace(",10", ",-5")).encode())
    assert _cells(document)["quantity"] == "-5" and not document["rows"][0]["refused"]


def _xlsx(values: list[object], formula_at: int | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(values)
    if formula_at is not None:
        sheet.cell(row=2, column=formula_at + 1).value = "=1+1"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_typed_cells_become_the_text_a_member_meant() -> None:
    from datetime import date, datetime

    document = imports.read_file(_xlsx(["Harvesting", date(2025, 6, 1), 12345, 614141000012, "生菜", 12.5]), "x.xlsx")
    assert _cells(document) == {
        "cte": "Harvesting",
        "date": "2025-06-01",
        "traceability_lot_code": "12345",
        "gtin": "614141000012",  # a GTIN-12: parse_gtin pads it to 14 digits
        "commodity": "生菜",
        "quantity": "12.5",
    }
    at_noon = imports.read_file(_xlsx(["Harvesting", datetime(2025, 6, 1, 12, 0), "L", "00614141000012", "x", 1]))
    assert _cells(at_noon)["date"] == "2025-06-01T12:00:00"  # refused later: a date-time needs its offset


def test_an_xlsx_formula_cell_is_refused_and_a_text_cell_that_looks_like_one_is_text() -> None:
    document = imports.read_file(_xlsx(["Harvesting", "2025-06-01", "L", "00614141000012", "x", 1], formula_at=4))
    assert "formula" in document["rows"][0]["refused"]["commodity"]
    exported = fsma.to_xlsx([{"cte": "Harvesting", "commodity": "=1+1", "traceability_lot_code": "L"}])
    assert _cells(imports.read_file(exported, "export.xlsx"))["commodity"] == "=1+1"


def test_a_broken_xlsx_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        imports.read_file(b"PK\x03\x04 not really a workbook", "x.xlsx")
    assert refused.value.code == "not_xlsx"


def test_the_templates_hold_the_import_columns() -> None:
    data, media = imports.template("csv")
    assert media.startswith("text/csv")
    headers = data.decode("utf-8-sig").strip().split(",")
    assert headers == [dict(fsma.COLUMNS)[k] for k in imports.TEMPLATE_COLUMNS]
    book = openpyxl.load_workbook(io.BytesIO(imports.template("xlsx")[0]))
    assert [c.value for c in book.active[1]] == headers
