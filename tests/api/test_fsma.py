"""FSMA 204 sortable spreadsheet (and the EPCIS CLI export) on the demo scenario: the recalled farm lot's
whole chain, from harvest to the retailers' receiving of the salad-mix lots, opened with openpyxl and csv
and compared with the store."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from supply_chain.cli import main
from supply_chain.domain.events import event_date
from supply_chain.services import fsma, tokens
from supply_chain.services.demo import seed
from supply_chain.store.models import Lot, Organisation
from tests.api.conftest import make_runtime
from tests.api.test_epcis import assert_valid_epcis

RECALLED = ("00614141000012", "GV-ROM-2611A")
MIXES = ("FC-MIX-001", "FC-MIX-002")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}))?$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("fsma-demo")
    runtime = make_runtime(home)
    seed(runtime)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def cli_env(demo, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LOTLINE_HOME", str(demo.settings.home))
    monkeypatch.setenv("LOTLINE_DATABASE_URL", demo.settings.database_url)
    monkeypatch.setenv("LOTLINE_SECRET_KEY", demo.settings.secret_key)
    return CliRunner()


def _expected(demo) -> Counter:
    """(CTE, lot, date, quantity, unit, location GLN, reference number) of every CTE in the store for the
    recalled lot and the lots made from it."""
    out: Counter = Counter()
    with demo.ctx() as ctx:
        for code in (RECALLED[1], *MIXES):
            lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == code)).one()
            for event in lot.events:
                if int(event.kind) not in fsma.CTE_KINDS or event.status == "failed":
                    continue
                p = event.payload
                where = (
                    p.get("from_gln")
                    if int(event.kind) == 5
                    else (p.get("to_gln") if int(event.kind) == 6 else p.get("location_gln"))
                )
                out[
                    (
                        fsma.CTE_KINDS[event.kind],
                        lot.lot_code,
                        event_date(event.kind, p),
                        p.get("quantity"),
                        p.get("unit"),
                        where,
                        p.get("reference_document_number", ""),
                    )
                ] += 1
    return out


def _key(row: dict[str, str]) -> tuple:
    return (
        row["Critical tracking event"],
        row["Traceability lot code"],
        row["Event date"],
        row["Quantity"],
        row["Unit of measure"],
        row["Location GLN"],
        row["Reference document number"],
    )


def _read_xlsx(path: Path) -> list[dict[str, str]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        rows = list(book.active.iter_rows(values_only=True))
    finally:
        book.close()
    assert list(rows[0]) == list(fsma.HEADERS)
    return [{h: (v if v is not None else "") for h, v in zip(rows[0], r, strict=True)} for r in rows[1:]]


def _read_csv(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == fsma.HEADERS
    return list(reader)


def test_recalled_lot_with_chain_covers_every_cte_to_the_retailers(demo, cli_env: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "recall.xlsx"
    result = cli_env.invoke(main, ["export", "fsma204", "--lot", "/".join(RECALLED), "--chain", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = _read_xlsx(out)
    assert Counter(_key(r) for r in rows) == _expected(demo)
    ctes = {r["Critical tracking event"] for r in rows}
    assert {"Harvesting", "Cooling", "Initial packing", "Shipping", "Receiving", "Transformation"} <= ctes
    with demo.ctx() as ctx:
        shops = {o.name: o for o in ctx.session.scalars(select(Organisation))}
        shop_glns = {loc.gln: org for org in ("Corner Market", "City Grocer") for loc in shops[org].locations}
    retail = {
        (r["Traceability lot code"], shop_glns[r["Location GLN"]])
        for r in rows
        if r["Critical tracking event"] == "Receiving" and r["Location GLN"] in shop_glns
    }
    assert retail == {("FC-MIX-001", "Corner Market"), ("FC-MIX-002", "City Grocer")}
    harvest = next(r for r in rows if r["Critical tracking event"] == "Harvesting")
    assert harvest["Traceability lot code"] == RECALLED[1] and harvest["Product GTIN"] == RECALLED[0]
    assert harvest["Location description"].startswith("Green Valley Farm, Field 7")
    assert harvest["Commodity"] == "romaine lettuce" and harvest["Field or growing area"] == "Field 7"
    transformation = [r for r in rows if r["Critical tracking event"] == "Transformation"]
    assert {r["Traceability lot code"] for r in transformation} == set(MIXES)
    assert all(
        "00614141000012/GV-ROM-2611A (" in r["Input traceability lot codes (transformation)"] for r in transformation
    )
    shipped = [r for r in rows if r["Critical tracking event"] == "Shipping"]
    assert all(r["Reference document type"] == "bill of lading" and r["Ship-to GLN"] for r in shipped)
    assert all(ISO_DATE.match(r["Event date"]) for r in rows)
    assert [r["Event date"] for r in rows] == sorted(r["Event date"] for r in rows)  # chronological
    assert all(r["Record status"] == "anchored on chain" and r["Chain transaction"].startswith("0x") for r in rows)
    assert "SF-SPN-2611B" not in {r["Traceability lot code"] for r in rows}  # a sibling input, not in the trace


def test_csv_holds_the_same_rows_as_xlsx(demo, cli_env: CliRunner, tmp_path: Path) -> None:
    for name in ("recall.csv", "recall.xlsx"):
        result = cli_env.invoke(
            main, ["export", "fsma204", "--lot", "/".join(RECALLED), "--chain", "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
    assert _read_csv((tmp_path / "recall.csv").read_bytes()) == _read_xlsx(tmp_path / "recall.xlsx")


def test_product_and_date_range(demo, cli_env: CliRunner, tmp_path: Path) -> None:
    with demo.ctx() as ctx:
        harvest = ctx.session.scalars(select(Lot).where(Lot.lot_code == RECALLED[1])).one().harvest_date
    out = tmp_path / "romaine.csv"
    day = harvest.isoformat()
    result = cli_env.invoke(
        main, ["export", "fsma204", "--product", RECALLED[0], "--from", day, "--to", day, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = _read_csv(out.read_bytes())
    assert {r["Traceability lot code"] for r in rows} == {"GV-ROM-2611A", "GV-ROM-2611C"}
    assert {r["Event date"][:10] for r in rows} == {day}
    assert {r["Critical tracking event"] for r in rows} == {"Harvesting", "Shipping"}


@pytest.mark.parametrize(
    "args",
    [
        ["--lot", "00614141000012/GV-ROM-2611A", "--product", "00614141000012", "--out", "x.csv"],
        ["--out", "x.csv"],
        ["--lot", "00614141000012/GV-ROM-2611A", "--out", "x.pdf"],
        ["--lot", "00614141000012/NO-SUCH-LOT", "--out", "x.csv"],
        ["--lot", "00614141000013/GV-ROM-2611A", "--out", "x.csv"],
        ["--product", "00614141000012", "--from", "2025-13-01", "--to", "2025-12-31", "--out", "x.csv"],
        ["--product", "00614141000012", "--from", "2025-02-01", "--to", "2025-01-01", "--out", "x.csv"],
        ["--lot", "00614141000012/GV-ROM-2611A"],
    ],
)
def test_bad_input_exits_2(cli_env: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli_env.invoke(main, ["export", "fsma204", *args])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "x.csv").exists()


def test_api_export_matches_the_cli_and_respects_who_may_see(demo, cli_env: CliRunner, tmp_path: Path) -> None:
    from app import create_app

    with demo.ctx() as ctx:
        by_name = {o.name: o for o in ctx.session.scalars(select(Organisation))}
        _, regulator = tokens.create(ctx, by_name["Food Safety Authority"], "fsma", "read")
        _, shop = tokens.create(ctx, by_name["Corner Market"], "fsma", "read")
    client = create_app({"RUNTIME": demo, "TESTING": True}).test_client()
    query = f"/api/v1/fsma204?lot={'/'.join(RECALLED)}&chain=true"
    as_json = client.get(query + "&format=json", headers={"Authorization": f"Bearer {regulator}"})
    assert as_json.status_code == 200
    rows = as_json.get_json()["rows"]
    cli_env.invoke(
        main, ["export", "fsma204", "--lot", "/".join(RECALLED), "--chain", "--out", str(tmp_path / "cli.csv")]
    )
    headers = dict(fsma.COLUMNS)
    assert [{headers[k]: v for k, v in r.items()} for r in rows] == _read_csv((tmp_path / "cli.csv").read_bytes())
    as_xlsx = client.get(query + "&format=xlsx", headers={"Authorization": f"Bearer {regulator}"})
    assert as_xlsx.mimetype == fsma.XLSX_CONTENT_TYPE
    assert "attachment" in as_xlsx.headers["Content-Disposition"]
    (tmp_path / "api.xlsx").write_bytes(as_xlsx.data)
    assert len(_read_xlsx(tmp_path / "api.xlsx")) == len(rows)
    # the farm's recalled lot is not Corner Market's to see
    assert client.get(query, headers={"Authorization": f"Bearer {shop}"}).status_code == 404
    own = client.get(
        "/api/v1/fsma204?lot=00614144000033/FC-MIX-001&chain=true&format=json",
        headers={"Authorization": f"Bearer {shop}"},
    ).get_json()["rows"]
    assert {r["traceability_lot_code"] for r in own} == {"FC-MIX-001"}  # its own lot, not the farms' lots
    bad = client.get(
        "/api/v1/fsma204?product=00614141000012&from=2025-01-01", headers={"Authorization": f"Bearer {regulator}"}
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "to"


def test_cli_epcis_export_of_the_salad_mix_with_its_ancestors(demo, cli_env: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "mix.jsonld"
    result = cli_env.invoke(main, ["export", "epcis", "00614144000033", "FC-MIX-001", "--ancestors", "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert_valid_epcis(document)
    events = document["epcisBody"]["eventList"]
    lots = {
        q["epcClass"].rsplit("/", 1)[1] for e in events for q in e.get("quantityList", e.get("outputQuantityList", []))
    }
    assert lots == {"FC-MIX-001", "GV-ROM-2611A", "SF-SPN-2611B"}
    transformation = next(e for e in events if e["type"] == "TransformationEvent")
    assert {q["epcClass"] for q in transformation["inputQuantityList"]} == {
        "https://id.gs1.org/01/00614141000012/10/GV-ROM-2611A",
        "https://id.gs1.org/01/00614142000028/10/SF-SPN-2611B",
    }
    assert any(e.get("disposition") == "recalled" for e in events)
    assert any(e.get("sensorElementList") for e in events)
    stdout = cli_env.invoke(main, ["export", "epcis", "00614144000033", "FC-MIX-001"])
    assert stdout.exit_code == 0 and json.loads(stdout.output)["type"] == "EPCISDocument"
    assert cli_env.invoke(main, ["export", "epcis", "00614144000033", "NOPE"]).exit_code == 2


def test_cli_epcis_export_as_xml_validates_against_the_2_0_xsd(demo, cli_env: CliRunner, tmp_path: Path) -> None:
    from lxml import etree

    from supply_chain.services.epcis import xml as epcis_xml

    out = tmp_path / "mix.xml"
    args = ["export", "epcis", "00614144000033", "FC-MIX-001", "--ancestors"]
    result = cli_env.invoke(main, [*args, "--format", "xml", "--out", str(out)])
    assert result.exit_code == 0, result.output
    schema = epcis_xml.xml_schema(epcis_xml.NS_20)
    assert schema.validate(etree.fromstring(out.read_bytes())), schema.error_log
    cli_env.invoke(main, [*args, "--out", str(tmp_path / "mix.jsonld")])
    as_json = json.loads((tmp_path / "mix.jsonld").read_text())
    from_xml = epcis_xml.document_from_xml(out.read_bytes())
    pairs = list(zip(from_xml["epcisBody"]["eventList"], as_json["epcisBody"]["eventList"], strict=True))
    for xml_event, json_event in pairs:
        for key in ("type", "eventID", "eventTime", "bizStep", "disposition", "lotline:payloadHash", "lotline:cte"):
            assert xml_event.get(key) == json_event.get(key), key
    stdout = cli_env.invoke(main, [*args[:-1], "--format", "xml"])
    assert stdout.exit_code == 0 and stdout.output.startswith("<?xml")
