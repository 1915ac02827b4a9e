"""QR codes and label sheets: the code a phone scans must be exactly the lot's GS1 Digital Link."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import pytest
import zxingcpp
from flask.testing import FlaskClient
from PIL import Image

from supply_chain.domain.identifiers import digital_link


@pytest.fixture(scope="module")
def public(make_app: Any) -> FlaskClient:
    return make_app().test_client()


@pytest.mark.parametrize("key", ["M1", "TR/7%x"])
def test_qr_png_decodes_to_exactly_the_digital_link(public: FlaskClient, world: Any, key: str) -> None:
    gtin, code = world.labels[key]
    response = public.get(f"/01/{gtin}/10/{quote(code, safe='')}/qr.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    (barcode,) = zxingcpp.read_barcodes(image)
    assert barcode.text == digital_link("https://trace.lotline.example", gtin, code)
    assert barcode.text.startswith("https://trace.lotline.example/01/")
    assert barcode.ec_level in ("M", "Q", "H")


def test_qr_png_keeps_a_four_module_quiet_zone(public: FlaskClient, world: Any) -> None:
    gtin, code = world.labels["M1"]
    image = Image.open(io.BytesIO(public.get(f"/01/{gtin}/10/{code}/qr.png").data)).convert("L")
    width, _ = image.size
    module = 10  # pixels per module
    border = image.crop((0, 0, width, 4 * module))
    assert border.getextrema() == (255, 255)  # all white
    assert image.crop((0, 0, width, 5 * module)).getextrema()[0] == 0  # the symbol starts right after


def test_qr_svg_is_served_for_print(public: FlaskClient, world: Any) -> None:
    gtin, code = world.labels["M1"]
    response = public.get(f"/01/{gtin}/10/{code}/qr.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.data.lstrip().startswith((b"<?xml", b"<svg"))


def test_qr_of_an_unknown_lot_is_404(public: FlaskClient, world: Any) -> None:
    gtin, _ = world.labels["M1"]
    assert public.get(f"/01/{gtin}/10/NOPE/qr.png").status_code == 404


def test_label_sheet_has_product_gtin_lot_pack_date_and_qr(world: Any, client: FlaskClient, login: Any) -> None:
    login(client, "distributor")
    response = client.get(f"/lots/{world.lot('M2')}/labels?count=4")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    gtin, code = world.labels["M2"]
    assert page.count('class="label"') == 4
    assert "Test salad mix" in page and gtin in page and f"<dd>{code}</dd>" in page
    assert "<dt>Packed</dt><dd>Nov 5, 2026</dd>" in page  # the date the mix was made
    assert f'src="/01/{gtin}/10/{code}/qr.svg"' in page


def test_label_sheet_count_is_checked(world: Any, client: FlaskClient, login: Any) -> None:
    login(client, "distributor")
    response = client.get(f"/lots/{world.lot('M2')}/labels?count=1000")
    assert response.status_code == 400 and "Count: must be a whole number" in response.get_data(as_text=True)


def test_no_labels_for_a_lot_the_recall_reached(world: Any, client: FlaskClient, login: Any) -> None:
    """M1 was made from the recalled farm lot F1: the recall reached it on chain, so no new shelf labels."""
    login(client, "distributor")
    response = client.get(f"/lots/{world.lot('M1')}/labels?count=4", headers={"Accept": "application/json"})
    assert response.status_code == 409 and response.get_json()["error"] == "lot_recalled"
    page = client.get(f"/lots/{world.lot('M1')}/labels?count=4").get_data(as_text=True)
    assert 'class="label"' not in page and "recalled" in page


def test_print_stylesheet_lays_labels_out_for_paper(public: FlaskClient) -> None:
    with public.get("/static/lotline.css") as response:
        css = response.get_data(as_text=True)
    assert "@media print" in css and "@page" in css
    assert "grid-template-columns: 90mm 90mm" in css  # two columns fit both A4 (210 mm) and Letter (216 mm)
