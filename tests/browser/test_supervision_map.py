"""The regulator's supervision map and trace graph in Chromium, on a desktop and on a 390 x 844 phone: the map
draws every layer of the demo, each checkbox switches its layer off and on, a tap on a point opens a popup
whose link opens the lot, the recall's reach opens as a graph farm to shop, and neither page scrolls sideways.
Screenshots go to test-artifacts/screenshots/ (and, with LOTLINE_UPDATE_DOC_SCREENSHOTS=1, to docs/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from supply_chain.services.supervision import LAYERS

from .conftest import DEMO_PASSWORD, LiveServer, copy_screenshot

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# at least what the demo puts in each layer (tests/web/test_supervision_map.py checks the data itself)
DEMO_COUNTS = {
    "sites-producer": 2,
    "sites-processor": 2,
    "sites-distributor": 1,
    "sites-retailer": 2,
    "sites-other": 1,
    "shipments": 6,
    "holds": 1,
    "recalls": 3,
    "failed-inspections": 1,
    "cold-chain": 1,
    "grades": 7,
}


def _follow(link: Any) -> None:
    """Open a popup's link as a reader does, with the element's own click (not a click at coordinates)."""
    expect(link).to_be_visible()
    link.evaluate("a => a.click()")

def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def _drawn(page: Any, key: str) -> Any:
    return page.locator(f'#supervision-map [data-layer="{key}"]')


def _no_sideways_scroll(page: Any, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page scrolls sideways: {scroll} px wide in a {width} px viewport"


def _click_stroke(page: Any, element: Any) -> None:
    """Tap a ring or a dot on its outline (a ring's centre is its site's dot)."""
    page.locator("#supervision-map").scroll_into_view_if_needed()
    box = element.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 2, box["y"] + box["height"] / 2)


@pytest.mark.parametrize("name", list(VIEWPORTS))
def test_regulator_switches_map_layers_opens_a_point_and_the_trace_graph(
    browser: Any, live_server: LiveServer, screenshots: Path, docs_screenshots: Path, name: str
) -> None:
    viewport = VIEWPORTS[name]
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.set_default_timeout(20_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on(
            "console",
            lambda msg: (
                errors.append(msg.text)
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: (
                errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None
            ),
        )
        page.goto("/login")
        page.get_by_label("E-mail").fill("regulator@demo.lotline")
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        if name == "phone":  # on a phone the signed-in menu folds behind "Menu"
            page.get_by_role("button", name="Menu").click()
        page.get_by_role("link", name="Regulator", exact=True).click()
        page.get_by_role("link", name="Supervision map").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Supervision map")
        expect(page.locator("#supervision-map")).to_have_attribute("data-ready", "true")

        # The map fills the width (less the page margins) and the layer list is on screen by scrolling down.
        box = page.locator("#supervision-map").bounding_box()
        assert box is not None and box["height"] >= 300
        if name == "phone":
            assert box["width"] >= viewport["width"] - 40
        # the base map is the vendored outlines: drawn, with no request leaving the server
        expect(page.locator(".leaflet-outlines-pane path").first).to_be_attached()

        # What the server says each layer holds now (other browser tests write to the shared demo first: the
        # demo's own figures are checked in tests/web/test_supervision_map.py); every layer shows and draws it.
        served = page.request.get("/admin/map/layers.json").json()
        counts = {item["key"]: len(item["data"]["features"]) for item in served["layers"]}
        assert all(counts[key] >= least for key, least in DEMO_COUNTS.items()), counts
        for layer in LAYERS:
            box_ = page.locator(f"#layer-{layer.key}")
            expect(page.locator(f'label[for="layer-{layer.key}"]')).to_contain_text(layer.title)
            expect(page.locator(f'[data-count-for="{layer.key}"]')).to_have_text(str(counts[layer.key]))
            if not box_.is_checked():
                expect(_drawn(page, layer.key)).to_have_count(0)
                box_.check()
            expect(_drawn(page, layer.key)).to_have_count(counts[layer.key])
            box_.uncheck()
            expect(_drawn(page, layer.key)).to_have_count(0)
            box_.check()
            expect(_drawn(page, layer.key)).to_have_count(counts[layer.key])
        page.locator("#layer-grades").uncheck()  # no grades yet: grey rings on every business would hide the rest
        page.locator("#supervision-map").scroll_into_view_if_needed()
        map_shot = screenshots / f"map-{name}.png"
        page.screenshot(path=str(map_shot), full_page=name == "phone")
        copy_screenshot(map_shot, docs_screenshots / f"map-{name}.png")

        # Only the recall layer: tap the ring around the shop that holds recalled salad mix.
        for layer in LAYERS:
            if layer.key != "recalls":
                page.locator(f"#layer-{layer.key}").uncheck()
        ring = _drawn(page, "recalls").and_(page.locator('[aria-label="Recalled product: City Grocer, Market St"]'))
        _click_stroke(page, ring)
        popup = page.locator(".leaflet-popup-content")
        expect(popup).to_contain_text("FC-MIX-002")
        expect(popup).to_contain_text("Class I recall")
        # Followed as the anchor it is: a pointer click can land beside it while Leaflet still pans the popup
        # into view (the map moves under a click taken at the link's earlier place).
        _follow(popup.get_by_role("link", name="Garden salad mix 250 g · FC-MIX-002"))
        expect(page).to_have_url(re.compile(r"/lots/\d+$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("Garden salad mix 250 g")
        page.go_back()
        expect(page.locator("#supervision-map")).to_have_attribute("data-ready", "true")
        for layer in LAYERS:
            if layer.key != "recalls":
                page.locator(f"#layer-{layer.key}").uncheck()
        ring = _drawn(page, "recalls").and_(page.locator('[aria-label="Recalled product: City Grocer, Market St"]'))
        _click_stroke(page, ring)
        _follow(page.locator(".leaflet-popup-content").get_by_role("link", name=re.compile("Recall of GV-ROM-2611A")))

        # The recall's reach as a graph, farm to shop.
        expect(page.get_by_role("heading", level=1)).to_contain_text("Forward trace of GV-ROM-2611A")
        graph = page.get_by_role("list", name="Sites in order, farm to shop")
        expect(graph.locator(".trace-stage-title")).to_have_text(
            [
                re.compile(r"Farm$"),
                re.compile(r"Packer$"),
                re.compile(r"Processor$"),
                re.compile(r"Distributor$"),
                re.compile(r"Shop$"),
            ]
        )
        stages = [graph.locator(".trace-stage").nth(i).bounding_box() for i in range(5)]
        if name == "phone":  # one stage under the other
            assert all(a["y"] + a["height"] <= b["y"] for a, b in zip(stages, stages[1:], strict=False))
        else:  # one column per stage, left to right
            assert all(a["x"] + a["width"] <= b["x"] for a, b in zip(stages, stages[1:], strict=False))
        for site in ("Green Valley Farm, Field 7", "ColdChain DC West", "City Grocer, Market St"):
            expect(graph.get_by_role("link", name=site)).to_be_visible()
        _no_sideways_scroll(page, viewport["width"])
        trace_shot = screenshots / f"trace-graph-{name}.png"
        page.screenshot(path=str(trace_shot), full_page=True)
        copy_screenshot(trace_shot, docs_screenshots / f"trace-graph-{name}.png")

        # One click downloads the trace as CSV.
        with page.expect_download() as download:
            page.get_by_role("link", name="Trace (CSV)", exact=True).click()
        assert download.value.suggested_filename == "trace-forward-00614141000012-GV-ROM-2611A.csv"
        with page.expect_download() as download:
            page.get_by_role("link", name="FSMA 204, whole forward trace (XLSX)").click()
        assert download.value.suggested_filename.endswith(".xlsx")
        assert errors == []
    finally:
        context.close()
