"""The regulator's supervision map, the trace as a graph and its downloads, on the demo scenario: what each
layer of /admin/map/layers.json holds (the recalled salad-mix lots' holders, the lot on hold, the failed
inspection, the cold-chain excursion), the trace graph farm to shop, the trace CSV and the FSMA 204
spreadsheet of the whole forward trace (CSV and XLSX, opened with csv and openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from supply_chain.services import fsma, supervision
from supply_chain.services.demo import DEMO_PASSWORD, seed
from supply_chain.store.models import Lot
from tests.api.conftest import make_runtime

RECALLED = "GV-ROM-2611A"
MIXES = ("FC-MIX-001", "FC-MIX-002")


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    runtime = make_runtime(tmp_path_factory.mktemp("map-demo"))
    seed(runtime)
    try:
        app = create_app({"RUNTIME": runtime, "TESTING": True})
        app.config["DEMO_RUNTIME"] = runtime
        yield app
    finally:
        runtime.close()


def _sign_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return client


@pytest.fixture(scope="module")
def regulator(demo_app: Flask) -> FlaskClient:
    return _sign_in(demo_app, "regulator@demo.lotline")


def _lot_id(app: Flask, code: str) -> int:
    with app.config["DEMO_RUNTIME"].ctx() as ctx:
        return ctx.session.scalars(select(Lot.id).where(Lot.lot_code == code)).one()


@pytest.fixture(scope="module")
def layers(regulator: FlaskClient) -> dict[str, Any]:
    response = regulator.get("/admin/map/layers.json")
    assert response.status_code == 200
    return {layer["key"]: layer for layer in response.json["layers"]}


def _sites(layer: dict[str, Any]) -> set[str]:
    return {f["properties"]["site"] for f in layer["data"]["features"]}


def _text(layer: dict[str, Any]) -> str:
    return "\n".join(line for f in layer["data"]["features"] for line in f["properties"]["lines"])


def test_every_layer_of_the_table_is_answered_as_geojson_in_order(layers: dict[str, Any]) -> None:
    assert list(layers) == [layer.key for layer in supervision.LAYERS]
    for layer in layers.values():
        assert layer["data"]["type"] == "FeatureCollection"
        assert layer["count"] == len(layer["data"]["features"])
        for feature in layer["data"]["features"]:
            lon, lat = feature["geometry"]["coordinates"][
                0 if feature["geometry"]["type"] == "LineString" else slice(None)
            ]
            assert -125 < lon < -114 and 32 < lat < 39  # the demo's sites are in California and Arizona


def test_sites_are_layered_by_the_kind_of_their_organisation(layers: dict[str, Any]) -> None:
    assert _sites(layers["sites-producer"]) == {"Green Valley Farm, Field 7", "Sunrise Fields, North Block"}
    assert _sites(layers["sites-processor"]) == {"Coastal Packing house", "FreshCut Salads plant"}
    assert _sites(layers["sites-distributor"]) == {"ColdChain DC West"}
    assert _sites(layers["sites-retailer"]) == {"Corner Market, Main St", "City Grocer, Market St"}
    assert _sites(layers["sites-other"]) == {"AgriCert Labs"}


def test_shipments_are_flows_from_shipping_site_to_receiving_site(layers: dict[str, Any]) -> None:
    flows = {(f["properties"]["from"], f["properties"]["to"]): f for f in layers["shipments"]["data"]["features"]}
    assert set(flows) == {
        ("Green Valley Farm, Field 7", "Coastal Packing house"),
        ("Sunrise Fields, North Block", "Coastal Packing house"),
        ("Coastal Packing house", "FreshCut Salads plant"),
        ("FreshCut Salads plant", "ColdChain DC West"),
        ("ColdChain DC West", "Corner Market, Main St"),
        ("ColdChain DC West", "City Grocer, Market St"),
    }
    to_dc = flows[("FreshCut Salads plant", "ColdChain DC West")]
    assert to_dc["geometry"]["type"] == "LineString" and to_dc["properties"]["count"] == 2
    assert {link["label"].rsplit(" · ", 1)[1] for link in to_dc["properties"]["links"]} == set(MIXES)


def test_recall_layer_shows_every_site_holding_recalled_product(demo_app: Flask, layers: dict[str, Any]) -> None:
    recalls = layers["recalls"]
    # the recalled romaine lot at the plant that made the salad mix, and the two mix lots at the shops
    assert _sites(recalls) == {"FreshCut Salads plant", "Corner Market, Main St", "City Grocer, Market St"}
    text = _text(recalls)
    assert all(code in text for code in (RECALLED, *MIXES))
    assert "made from recalled lot GV-ROM-2611A" in text and "Class I recall" in text
    shop = next(f for f in recalls["data"]["features"] if f["properties"]["site"] == "Corner Market, Main St")
    hrefs = {link["href"] for link in shop["properties"]["links"]}
    assert f"/lots/{_lot_id(demo_app, 'FC-MIX-001')}" in hrefs
    assert f"/admin/lots/{_lot_id(demo_app, RECALLED)}/trace?direction=forward" in hrefs  # the recall's reach


def test_hold_inspection_and_cold_chain_layers(layers: dict[str, Any]) -> None:
    assert _sites(layers["holds"]) == {"Coastal Packing house"}
    assert "GV-ROM-2611C: on hold" in _text(layers["holds"])
    assert _sites(layers["failed-inspections"]) == {"Coastal Packing house"}
    assert "Listeria monocytogenes in 1 of 5 samples" in _text(layers["failed-inspections"])
    # the demo's one excursion: FC-MIX-002's trailer reached 7.4 °C on the way to the distributor
    assert _sites(layers["cold-chain"]) == {"ColdChain DC West"}
    assert "FC-MIX-002: 2.5 °C to 7.4 °C (allowed 0 °C to 5 °C)" in _text(layers["cold-chain"])


def test_grade_layer_shows_each_business_grade_from_its_credit_record(layers: dict[str, Any]) -> None:
    grades = {f["properties"]["site"]: f["properties"] for f in layers["grades"]["data"]["features"]}
    assert len(grades) == 7
    # the demo's farm whose romaine was recalled (class I) is graded C; the shop that only sold it is not marked down
    assert grades["Green Valley Farm, Field 7"]["grade"] == "C"
    assert grades["Green Valley Farm, Field 7"]["title"].endswith("Grade C")
    assert grades["City Grocer, Market St"]["grade"] != "C"


def test_grade_layer_colours_by_the_hooks_grade(demo_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        supervision, "compliance_grade", lambda ctx, org: "D" if org.name == "Green Valley Farm" else "A"
    )
    with demo_app.config["DEMO_RUNTIME"].ctx() as ctx:
        grades = next(layer for layer in supervision.layers(ctx)["layers"] if layer["key"] == "grades")
    by_site = {f["properties"]["site"]: f["properties"] for f in grades["data"]["features"]}
    assert by_site["Green Valley Farm, Field 7"]["grade"] == "D"
    assert by_site["Green Valley Farm, Field 7"]["colour"] == supervision.GRADE_COLOURS["D"]
    assert by_site["City Grocer, Market St"]["grade"] == "A"


@pytest.mark.parametrize("email", ["shop@demo.lotline", "inspector@demo.lotline", "processor@demo.lotline"])
def test_only_the_regulator_sees_the_map_and_the_whole_trace_exports(demo_app: Flask, email: str) -> None:
    client = _sign_in(demo_app, email)
    lot = _lot_id(demo_app, RECALLED)
    for path in (
        "/admin/map",
        "/admin/map/layers.json",
        f"/admin/lots/{lot}/trace.csv",
        f"/admin/lots/{lot}/fsma204.csv",
        f"/admin/lots/{lot}/fsma204.xlsx",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "GV-ROM" not in response.get_data(as_text=True)


def test_map_page_lists_every_layer_and_loads_its_script(regulator: FlaskClient) -> None:
    page = regulator.get("/admin/map").get_data(as_text=True)
    for layer in supervision.LAYERS:
        assert f'id="layer-{layer.key}"' in page and layer.title in page
    assert "/static/supervision-map.js" in page and "/static/vendor/leaflet/leaflet.js" in page
    assert "<script>" not in page  # script-src 'self': no inline script
    assert 'href="/admin/map"' in regulator.get("/admin").get_data(as_text=True)
    # what the page needs is served by the app itself (vendored), not from node_modules or the network
    for path in (
        "/static/vendor/leaflet/leaflet.js",
        "/static/vendor/leaflet/leaflet.css",
        "/static/vendor/leaflet/images/layers.png",
        "/static/vendor/world-atlas/countries-50m.geojson",
        "/static/supervision-map.js",
    ):
        response = regulator.get(path)
        assert response.status_code == 200, path
        response.close()


def test_trace_page_draws_the_graph_farm_to_shop(demo_app: Flask, regulator: FlaskClient) -> None:
    lot = _lot_id(demo_app, RECALLED)
    page = regulator.get(f"/admin/lots/{lot}/trace?direction=forward").get_data(as_text=True)
    graph = page.split('class="trace-graph"', 1)[1].split("</ol>", 1)[0]
    stages = [
        part.split("</h3>", 1)[0].rsplit("</span>", 1)[1].strip()
        for part in graph.split('class="trace-stage-title"')[1:]
    ]
    assert stages == ["Farm", "Packer", "Processor", "Distributor", "Shop"]
    order = [
        graph.index(name)
        for name in (
            "Green Valley Farm, Field 7",
            "Coastal Packing house",
            "FreshCut Salads plant",
            "ColdChain DC West",
            "Corner Market, Main St",
        )
    ]
    assert order == sorted(order)
    for href in (
        f"/admin/lots/{lot}/trace.csv?direction=forward",
        f"/admin/lots/{lot}/fsma204.csv",
        f"/admin/lots/{lot}/fsma204.xlsx",
    ):
        assert f'href="{href}"' in page


def test_trace_csv_has_a_row_per_lot_with_holder_and_recall(demo_app: Flask, regulator: FlaskClient) -> None:
    response = regulator.get(f"/admin/lots/{_lot_id(demo_app, RECALLED)}/trace.csv?direction=forward")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    by_code = {row["Lot code"]: row for row in rows}
    assert set(by_code) == {RECALLED, *MIXES}
    assert by_code["FC-MIX-001"]["Current holder"] == "Corner Market"
    assert by_code["FC-MIX-002"]["Current holder"] == "City Grocer"
    assert by_code["FC-MIX-001"]["Depth"] == "1" and by_code["FC-MIX-001"]["Affected by a recall"] == "yes"
    assert "Listeria" in by_code["FC-MIX-002"]["Recalls reaching it"]
    assert "00614141000012/GV-ROM-2611A (600 kg)" in by_code["FC-MIX-001"]["Made from"]


def _fsma_expected(app: Flask) -> set[tuple[str, str]]:
    with app.config["DEMO_RUNTIME"].ctx() as ctx:
        lots = ctx.session.scalars(select(Lot).where(Lot.lot_code.in_((RECALLED, *MIXES)))).all()
        return {
            (fsma.CTE_KINDS[e.kind], lot.lot_code)
            for lot in lots
            for e in lot.events
            if int(e.kind) in fsma.CTE_KINDS and e.status != "failed"
        }


def test_fsma_csv_covers_the_whole_forward_trace_and_nothing_upstream(demo_app: Flask, regulator: FlaskClient) -> None:
    response = regulator.get(f"/admin/lots/{_lot_id(demo_app, RECALLED)}/fsma204.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="fsma204-forward-00614141000012-GV-ROM-2611A.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert list(rows[0]) == list(fsma.HEADERS)
    got = {(r["Critical tracking event"], r["Traceability lot code"]) for r in rows}
    assert got == _fsma_expected(demo_app)
    assert {r["Traceability lot code"] for r in rows} == {RECALLED, *MIXES}  # not the spinach it was mixed with
    receipts = {r["Location description"] for r in rows if r["Critical tracking event"] == "Receiving"}
    assert {
        "Corner Market, Main St, 12 Main St, Palo Alto, CA",
        "City Grocer, Market St, 900 Market St, San Francisco, CA",
    } <= receipts
    assert [r["Event date"] for r in rows] == sorted(r["Event date"] for r in rows)


def test_fsma_xlsx_is_the_same_sheet_sortable_and_formula_neutral(
    demo_app: Flask, regulator: FlaskClient, tmp_path: Path
) -> None:
    lot = _lot_id(demo_app, RECALLED)
    response = regulator.get(f"/admin/lots/{lot}/fsma204.xlsx")
    assert response.status_code == 200 and response.mimetype == fsma.XLSX_CONTENT_TYPE
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    sheet = book["FSMA 204"]
    header = [c.value for c in sheet[1]]
    assert header == list(fsma.HEADERS)
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert {(r["Critical tracking event"], r["Traceability lot code"]) for r in rows} == _fsma_expected(demo_app)
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    csv_rows = list(
        csv.DictReader(io.StringIO(regulator.get(f"/admin/lots/{lot}/fsma204.csv").get_data().decode("utf-8-sig")))
    )
    assert len(csv_rows) == len(rows)


def test_recall_page_links_the_whole_trace_spreadsheet(demo_app: Flask, regulator: FlaskClient) -> None:
    lot = _lot_id(demo_app, "SF-SPN-2611B")
    page = regulator.get(f"/admin/lots/{lot}/recall").get_data(as_text=True)
    assert f'href="/admin/lots/{lot}/fsma204.csv"' in page and f'href="/admin/lots/{lot}/fsma204.xlsx"' in page


def test_unknown_export_format_is_refused(demo_app: Flask, regulator: FlaskClient) -> None:
    response = regulator.get(f"/admin/lots/{_lot_id(demo_app, RECALLED)}/fsma204.pdf")
    assert response.status_code == 400
    assert "Format: must be one of csv, xlsx" in response.get_data(as_text=True)


def test_layers_answer_in_the_pages_language_keeping_every_machine_field(
    demo_app: Flask, layers: dict[str, Any]
) -> None:
    """The map's pop-ups in Chinese: layer titles, each feature's title, lines and link labels follow the locale;
    keys, codes, names, coordinates and links stay as in English."""
    client = _sign_in(demo_app, "regulator@demo.lotline")
    client.set_cookie("lotline_lang", "zh_Hans")
    response = client.get("/admin/map/layers.json")
    assert response.status_code == 200
    zh = {layer["key"]: layer for layer in response.json["layers"]}
    assert list(zh) == list(layers)
    for key, layer in zh.items():
        english = layers[key]
        assert (layer["colour"], layer["shape"], layer["shown"]) == (
            english["colour"], english["shape"], english["shown"]
        )
        for mine, theirs in zip(layer["data"]["features"], english["data"]["features"], strict=True):
            assert mine["geometry"] == theirs["geometry"]
            same = {k: v for k, v in theirs["properties"].items() if k not in ("title", "lines", "links")}
            assert {k: v for k, v in mine["properties"].items() if k in same} == same
            assert [(a["kind"], a["id"], a["href"]) for a in mine["properties"]["links"]] == [
                (a["kind"], a["id"], a["href"]) for a in theirs["properties"]["links"]
            ]
    assert zh["holds"]["title"] != layers["holds"]["title"]
    text = "\n".join(
        [_text(layer) for layer in zh.values()]
        + [f["properties"]["title"] for layer in zh.values() for f in layer["data"]["features"]]
        + [a["label"] for layer in zh.values() for f in layer["data"]["features"] for a in f["properties"]["links"]]
    )
    assert "GV-ROM-2611C：暂扣中" in text and "由被召回批次 GV-ROM-2611A 制成" in text and "I 级召回" in text
    assert "FC-MIX-002：2.5 °C 至 7.4 °C（允许 0 °C 至 5 °C）" in text and "C 级" in text and "（组织）" in text
    assert "Listeria monocytogenes in 1 of 5 samples" in text  # what the inspector wrote stays as written
    for english_words in ("on hold", "Class I recall", "made from recalled", " shipped ", "allowed", "Grade ",
                          "(organisation)", "every lot reached", "failed 20"):
        assert english_words not in text, english_words
