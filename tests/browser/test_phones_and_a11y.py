"""Every page type on a phone and on a desktop: nothing scrolls sideways at 360 px, tables turn into cards, touch
targets are big enough, a skip link leads to the content, focus is visible, headings are in order, and axe-core
(from npm, ``node_modules/axe-core``) finds no serious or critical violation.

Then the phone helpers: a print button on the label sheet, "Use my location" on the site form, and the glossary
that explains the technical words and the PUBLIC/CONSORTIUM tags in text a phone shows.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEMO_PASSWORD, ROOT, LiveServer, copy_screenshot, demo_server
from .test_journey import DESKTOP, PHONE, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NARROW = {"width": 360, "height": 740}
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
MIN_TARGET = 44  # px, the touch-target size asked for (WCAG 2.5.5)
MIX = ("00614144000033", "FC-MIX-002")

# who signs in for a page (None: nobody), the page's name in failure messages, and its path; ``{lot:CODE}``,
# ``{org:NAME}`` and ``{recall}`` are replaced by the demo's ids.
PAGES: list[tuple[str | None, str, str]] = [
    (None, "start page", "/"),
    (None, "sign-in", "/login"),
    (None, "lookup", "/lookup"),
    (None, "consumer page (recalled)", "/01/{gtin}/10/{code}"),
    (None, "consumer page (active)", "/01/00614142000028/10/SF-SPN-2611B"),
    (None, "consumer page, unknown lot", "/01/00614142000028/10/NO-SUCH-LOT"),
    (None, "product page", "/01/{gtin}"),
    (None, "open data", "/open/"),
    (None, "glossary", "/glossary"),
    (None, "not found", "/no-such-page"),
    ("farmer@demo.lotline", "credit records", "/organisations"),
    ("farmer@demo.lotline", "credit record", "/organisations/{org:Green Valley Farm}/credit"),
    ("farmer@demo.lotline", "farmer dashboard", "/dashboard"),
    ("farmer@demo.lotline", "new lot form", "/lots/new"),
    ("farmer@demo.lotline", "products", "/products"),
    ("farmer@demo.lotline", "sites", "/sites"),
    ("farmer@demo.lotline", "lot page (farmer)", "/lots/{lot:GV-ROM-2611A}"),
    ("farmer@demo.lotline", "password form", "/account/password"),
    ("farmer@demo.lotline", "API tokens", "/tokens"),
    ("farmer@demo.lotline", "notification settings", "/settings/notifications"),
    ("processor@demo.lotline", "processor dashboard", "/dashboard"),
    ("processor@demo.lotline", "transform form", "/transform"),
    ("processor@demo.lotline", "lot page (holder)", "/lots/{lot:SF-SPN-2611B}"),
    ("processor@demo.lotline", "record event form", "/lots/{lot:SF-SPN-2611B}/events/new?kind=receiving"),
    ("processor@demo.lotline", "ship form", "/lots/{lot:SF-SPN-2611B}/ship"),
    ("processor@demo.lotline", "sensor readings form", "/lots/{lot:SF-SPN-2611B}/readings"),
    ("processor@demo.lotline", "label sheet", "/lots/{lot:SF-SPN-2611B}/labels"),
    ("processor@demo.lotline", "custody inbox (processor)", "/custody"),
    ("shop@demo.lotline", "shop dashboard", "/dashboard"),
    ("shop@demo.lotline", "custody inbox (shop)", "/custody"),
    ("shop@demo.lotline", "notifications", "/notifications"),
    ("shop@demo.lotline", "recall notice", "/notifications/recalls/{recall}"),
    ("inspector@demo.lotline", "inspections", "/inspections"),
    ("inspector@demo.lotline", "inspection form", "/inspections/lots/{lot:SF-SPN-2611B}/new"),
    ("inspector@demo.lotline", "find a lot", "/lots/search?q=GV-ROM"),
    ("regulator@demo.lotline", "regulator dashboard", "/admin"),
    ("regulator@demo.lotline", "onboard form", "/admin/organisations/new"),
    ("regulator@demo.lotline", "organisation", "/admin/organisations/{org:Green Valley Farm}"),
    ("regulator@demo.lotline", "trace", "/admin/lots/{lot:GV-ROM-2611A}/trace"),
    ("regulator@demo.lotline", "recall form", "/admin/lots/{lot:SF-SPN-2611B}/recall"),
    ("regulator@demo.lotline", "recall", "/admin/recalls/{recall}"),
    ("regulator@demo.lotline", "recall effectiveness", "/admin/recalls/{recall}/effectiveness"),
    ("regulator@demo.lotline", "supervision map", "/admin/map"),
    ("regulator@demo.lotline", "forbidden", "/dashboard"),
]


@dataclass
class Visit:
    name: str
    who: str | None
    path: str


class Crowd:
    """One browser context per (person, viewport); each person signs in once and the cookies are reused."""

    def __init__(self, browser: Any, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.states: dict[str, Any] = {}
        self.contexts: list[Any] = []
        self.pages: dict[tuple[str | None, str], Any] = {}

    def _state(self, who: str) -> Any:
        if who not in self.states:
            context = self.browser.new_context(base_url=self.server.url)
            try:
                page = context.new_page()
                page.goto("/login")
                page.get_by_label("E-mail").fill(who)
                page.get_by_label("Password").fill(DEMO_PASSWORD)
                page.get_by_role("button", name="Sign in", exact=True).click()
                expect(page.get_by_role("status").filter(has_text="Signed in as")).to_be_visible()
                self.states[who] = context.storage_state()
            finally:
                context.close()
        return self.states[who]

    def page(self, who: str | None, viewport: dict[str, int], **options: Any) -> Any:
        key = (who, f"{viewport['width']}x{viewport['height']}" + repr(sorted(options.items())))
        if key not in self.pages:
            state = self._state(who) if who else None
            context = self.browser.new_context(
                base_url=self.server.url, viewport=viewport, storage_state=state, **options
            )
            context.set_default_timeout(20_000)
            self.contexts.append(context)
            self.pages[key] = context.new_page()
        return self.pages[key]

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture(scope="module")
def live_server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A demo of this module's own: the page types below name demo lots by their seeded state (a fine lot, a
    held lot), which the session's earlier walks change (test_journey recalls the baby spinach)."""
    with demo_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def crowd(browser: Any, live_server: LiveServer) -> Iterator[Crowd]:
    people = Crowd(browser, live_server)
    try:
        yield people
    finally:
        people.close()


@pytest.fixture(scope="module")
def demo_ids(live_server: LiveServer) -> dict[str, str]:
    """The demo's row ids, read from the server's SQLite database (the pages take ids in their paths)."""
    ids: dict[str, str] = {"gtin": MIX[0], "code": MIX[1]}
    with contextlib.closing(sqlite3.connect(live_server.home / "lotline.db")) as db:
        for lot_id, code in db.execute("SELECT id, lot_code FROM lots"):
            ids[f"lot:{code}"] = str(lot_id)
        for org_id, name in db.execute("SELECT id, name FROM organisations"):
            ids[f"org:{name}"] = str(org_id)
        (recall_id,) = db.execute("SELECT min(id) FROM recalls").fetchone()
        ids["recall"] = str(recall_id)
    return ids


def fill(path: str, demo_ids: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda match: demo_ids[match.group(1)], path)


def visits(demo_ids: dict[str, str]) -> list[Visit]:
    return [Visit(name, who, fill(path, demo_ids)) for who, name, path in PAGES]


def open_page(crowd: Crowd, visit: Visit, viewport: dict[str, int], **options: Any) -> Any:
    page = crowd.page(visit.who, viewport, **options)
    response = page.goto(visit.path)
    assert response is not None
    page.wait_for_load_state("load")
    return page


# ------------------------------------------------------------------ measurements, in the page


def axe_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")  # a DevTools evaluation: the CSP does not apply
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v =>
                `${v.id} (${v.impact}): ${v.help} -- ` + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
        }"""
    )
    return list(result)


WIDTHS_JS = """() => {
    const vw = document.documentElement.clientWidth;
    const name = el => {
        const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/).join(".") : "";
        return el.tagName.toLowerCase() + (classes ? "." + classes : "");
    };
    const wide = [];
    for (const el of document.querySelectorAll("main *, header *, footer *")) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || getComputedStyle(el).visibility === "hidden") continue;
        if (el.closest(".leaflet-container")) continue;  // the map's own tiles pan inside it
        if (r.right > vw + 0.5 || r.left < -0.5) {
            wide.push(`${name(el)} ${Math.round(r.left)}..${Math.round(r.right)}`);
        }
    }
    return {scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 6)};
}"""


TARGETS_JS = """(min) => {
    // buttons, navigation links, summaries, selects and text fields; links inside running text are exempt
    const picks = document.querySelectorAll(
        "button, .btn, input[type=submit], select, summary, input[type=text], input[type=email], " +
        "input[type=password], input[type=number], input[type=date], input[type=search], input[type=url], " +
        "header nav a, footer nav a, .skip-link:focus");
    const small = [];
    for (const el of picks) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;  // not shown at this size
        if (el.closest(".leaflet-container")) continue;
        const text = (el.textContent || el.name || "").trim().slice(0, 30);
        if (r.height < min - 0.5) small.push(`${el.tagName.toLowerCase()} "${text}" ${Math.round(r.height)}px`);
    }
    return small;
}"""


HEADINGS_JS = """() => {
    const levels = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")]
        .filter(h => h.getClientRects().length > 0 || h.closest("details"))
        .map(h => [Number(h.tagName[1]), h.textContent.trim().slice(0, 40)]);
    return levels;
}"""


def heading_problems(levels: list[list[Any]]) -> list[str]:
    problems = []
    h1s = [text for level, text in levels if level == 1]
    if len(h1s) != 1:
        problems.append(f"{len(h1s)} h1 headings: {h1s}")
    if levels and levels[0][0] != 1:
        problems.append(f"the first heading is h{levels[0][0]} {levels[0][1]!r}, before the page's h1")
    previous = 0
    for level, text in levels:
        if level > previous + 1:
            problems.append(f"h{level} {text!r} follows h{previous}")
        previous = level
    return problems


# ------------------------------------------------------------------ every page type


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_every_page_type_has_no_serious_axe_violation(
    crowd: Crowd, demo_ids: dict[str, str], viewport: dict[str, int]
) -> None:
    found = {}
    for visit in visits(demo_ids):
        page = open_page(crowd, visit, viewport)
        problems = axe_problems(page)
        if problems:
            found[f"{visit.name} {visit.path}"] = problems
    assert not found, "axe-core found serious or critical violations:\n" + "\n".join(
        f"{name}:\n  " + "\n  ".join(lines) for name, lines in found.items()
    )


def test_no_page_scrolls_sideways_at_360_px(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    """The whole document stays within 360 px, and so does every element in it: a table that scrolls inside its
    own box (the old trace and shop tables, 789 px in a 358 px screen) is as unusable as a page that does."""
    found = {}
    for visit in visits(demo_ids):
        page = open_page(crowd, visit, NARROW)
        measured = page.evaluate(WIDTHS_JS)
        if measured["scroll"] > NARROW["width"] or measured["wide"]:
            found[f"{visit.name} {visit.path}"] = measured
    assert not found, "sideways scrolling at 360 px:\n" + "\n".join(f"{k}: {v}" for k, v in found.items())


def test_tables_become_labelled_cards_on_a_phone(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    ids = demo_ids
    shop = crowd.page("shop@demo.lotline", PHONE)
    shop.goto("/dashboard")
    row = shop.locator("main table tbody tr").first
    expect(row).to_be_visible()
    assert row.evaluate("tr => getComputedStyle(tr).display") == "block", "the shop's lot table is not cards"
    labels = row.locator("td").evaluate_all("tds => tds.map(td => getComputedStyle(td, '::before').content)")
    assert any("Lot" in label for label in labels), f"cells carry no column names: {labels}"

    regulator = crowd.page("regulator@demo.lotline", PHONE)
    regulator.goto(f"/admin/lots/{ids['lot:GV-ROM-2611A']}/trace")
    table = regulator.locator("main table").first
    width = table.evaluate("t => t.getBoundingClientRect().width")
    assert width <= PHONE["width"], f"the trace table is {width} px wide on a {PHONE['width']} px phone"

    desktop = crowd.page("shop@demo.lotline", DESKTOP)
    desktop.goto("/dashboard")
    assert desktop.locator("main table tbody tr").first.evaluate("tr => getComputedStyle(tr).display") == "table-row"


def test_touch_targets_are_at_least_44_px(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    found = {}
    for visit in visits(demo_ids):
        page = open_page(crowd, visit, PHONE)
        small = page.evaluate(TARGETS_JS, MIN_TARGET)
        if small:
            found[f"{visit.name} {visit.path}"] = small[:6]
    assert not found, f"touch targets under {MIN_TARGET} px:\n" + "\n".join(f"{k}: {v}" for k, v in found.items())


def test_sign_out_is_a_44_px_target(crowd: Crowd) -> None:
    page = crowd.page("farmer@demo.lotline", PHONE)
    page.goto("/dashboard")
    menu = page.get_by_role("button", name="Menu")
    if menu.is_visible():
        menu.click()
    box = page.get_by_role("button", name="Sign out").bounding_box()
    assert box is not None and box["height"] >= MIN_TARGET and box["width"] >= MIN_TARGET, box


def test_headings_are_in_order_on_every_page(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    found = {}
    for visit in visits(demo_ids):
        page = open_page(crowd, visit, DESKTOP)
        problems = heading_problems(page.evaluate(HEADINGS_JS))
        if problems:
            found[f"{visit.name} {visit.path}"] = problems
    assert not found, "heading order:\n" + "\n".join(f"{k}: {v}" for k, v in found.items())


def test_skip_link_is_the_first_tab_stop_and_reaches_the_content(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    for visit in visits(demo_ids)[::5]:
        page = open_page(crowd, visit, PHONE)
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => [document.activeElement.textContent.trim(), document.activeElement.getAttribute('href')]"
        )
        assert focused == ["Skip to main content", "#main"], f"{visit.name}: first tab stop is {focused}"
        skip = page.locator(":focus")
        box = skip.bounding_box()
        assert box is not None and box["height"] >= MIN_TARGET, f"{visit.name}: the focused skip link is not shown"
        page.keyboard.press("Enter")
        assert page.evaluate("() => document.activeElement.id") == "main", visit.name


FOCUS_JS = """() => {
    const el = document.activeElement;
    const parse = c => { const m = c.match(/[\\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
    const channel = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    if (el === document.body) return null;  // past the last tab stop
    const s = getComputedStyle(el);
    // an outline drawn inside the element (negative offset) is seen against the element itself
    const start = parseFloat(s.outlineOffset) < 0 ? el : el.parentElement;
    let bg = [255, 255, 255];
    for (let node = start; node; node = node.parentElement) {
        const c = parse(getComputedStyle(node).backgroundColor);
        if (c.length < 4 || c[3] > 0.5) { bg = c.slice(0, 3); break; }
    }
    const width = parseFloat(s.outlineWidth) || 0;
    const color = parse(s.outlineColor).slice(0, 3);
    return {what: `${el.tagName.toLowerCase()} "${(el.textContent || el.name || "").trim().slice(0, 30)}"`,
            style: s.outlineStyle, width, contrast: ratio(color, bg)};
}"""


@pytest.mark.parametrize(
    "who,path",
    [(None, "/01/{gtin}/10/{code}"), ("farmer@demo.lotline", "/sites"), ("regulator@demo.lotline", "/admin")],
)
def test_keyboard_focus_is_visible_with_3_to_1_contrast(
    crowd: Crowd, demo_ids: dict[str, str], who: str | None, path: str
) -> None:
    page = crowd.page(who, DESKTOP)
    page.goto(fill(path, demo_ids))
    bad = []
    for _ in range(25):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_JS)
        if focus is None:
            break
        if focus["style"] == "none" or focus["width"] < 2 or focus["contrast"] < 3:
            bad.append(focus)
    assert not bad, f"focus not visible enough on {path}: {bad[:5]}"


# ------------------------------------------------------------------ the phone helpers


def test_label_sheet_has_a_print_button_hidden_when_printing(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    page = crowd.page("processor@demo.lotline", PHONE)
    page.goto(f"/lots/{demo_ids['lot:SF-SPN-2611B']}/labels")
    page.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    button = page.get_by_role("button", name="Print labels")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["height"] >= MIN_TARGET
    button.click()
    assert page.evaluate("window.__printed") == 1
    page.emulate_media(media="print")
    try:
        expect(button).to_be_hidden()
        expect(page.locator("article.label").first).to_be_visible()
    finally:
        page.emulate_media(media="screen")


def test_use_my_location_fills_the_site_coordinates(crowd: Crowd) -> None:
    page = crowd.page(
        "farmer@demo.lotline",
        PHONE,
        geolocation={"latitude": 36.67771, "longitude": -121.65551},
        permissions=["geolocation"],
    )
    page.goto("/sites")
    page.get_by_role("button", name="Use my location").click()
    expect(page.get_by_label("Latitude")).to_have_value("36.67771")
    expect(page.get_by_label("Longitude")).to_have_value("-121.65551")
    expect(page.locator("#location-status")).to_contain_text("Filled in")


def test_use_my_location_says_so_when_the_phone_refuses(crowd: Crowd) -> None:
    page = crowd.page("farmer@demo.lotline", PHONE, permissions=[])
    page.goto("/sites")
    page.get_by_label("Latitude").fill("")
    page.get_by_role("button", name="Use my location").click()
    status = page.locator("#location-status")
    expect(status).to_contain_text("type the latitude and longitude")
    expect(status).to_have_attribute("role", "status")
    expect(page.get_by_label("Latitude")).to_have_value("")


def test_glossary_explains_the_terms_and_is_linked_where_they_appear(crowd: Crowd, demo_ids: dict[str, str]) -> None:
    page = crowd.page(None, PHONE)
    page.goto("/glossary")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    terms = "kde cte gln gtin lot consortium visibility head-hash block transaction verification recall hold"
    for anchor in terms.split():
        term = page.locator(f"[id='{anchor}']")
        expect(term).to_be_visible()
        assert term.evaluate("dt => dt.nextElementSibling && dt.nextElementSibling.textContent.trim().length > 20")
    # PUBLIC / CONSORTIUM are explained in text a phone shows, not in a tooltip
    expect(page.locator("[id='visibility'] + dd")).to_contain_text("consortium")

    # every page links the glossary; the form's visibility tags and the consumer page's chain words link to it
    expect(page.locator("footer a[href='/glossary']")).to_be_visible()
    farmer = crowd.page("farmer@demo.lotline", PHONE)
    farmer.goto("/lots/new")
    legend = farmer.locator(".vis-legend").first
    expect(legend).to_be_visible()  # the tags explained next to the fields, in text a phone shows
    expect(legend).to_contain_text("consortium")
    expect(legend.locator("a[href='/glossary#visibility']")).to_be_visible()
    expect(legend.locator("a[href='/glossary#kde']")).to_be_visible()
    farmer.goto("/sites")
    expect(farmer.locator("a[href='/glossary#gln']").first).to_be_attached()
    consumer = crowd.page(None, PHONE)
    consumer.goto(fill("/01/{gtin}/10/{code}", demo_ids))
    for anchor in ("block", "transaction", "head-hash"):
        expect(consumer.locator(f"a[href='/glossary#{anchor}']").first).to_be_attached()


# ------------------------------------------------------------------ screenshots to look at


SHOTS = [
    (None, "consumer", "/01/{gtin}/10/{code}"),
    ("shop@demo.lotline", "shop-dashboard", "/dashboard"),
    ("regulator@demo.lotline", "trace", "/admin/lots/{lot:GV-ROM-2611A}/trace"),
    ("farmer@demo.lotline", "sites", "/sites"),
    ("processor@demo.lotline", "labels", "/lots/{lot:SF-SPN-2611B}/labels"),
    (None, "glossary", "/glossary"),
]


def test_phone_screenshots(crowd: Crowd, demo_ids: dict[str, str], screenshots: Path, docs_screenshots: Path) -> None:
    """Screenshots at 390 and 360 px for people to look at (``test-artifacts/screenshots/phone-*.png``)."""
    for who, name, path in SHOTS:
        for viewport in (PHONE, NARROW):
            page = crowd.page(who, viewport)
            page.goto(fill(path, demo_ids))
            target = screenshots / f"phone-{name}-{viewport['width']}.png"
            page.screenshot(path=str(target), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], name
            if viewport is PHONE and name in ("shop-dashboard", "sites"):
                copy_screenshot(target, docs_screenshots / f"phone-{name}.png")
