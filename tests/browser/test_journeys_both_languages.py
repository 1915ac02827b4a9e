"""The five people's journeys (issue 13), each walked with clicks and typing in English and in Simplified Chinese,
on a 390 x 844 phone and on a desktop:

- the farmer signs in, creates a harvest lot, finds it on the dashboard, prints its labels and ships it to the
  processor;
- the processor (packer) receives it from the custody inbox, makes a salad-mix lot from it and ships that;
- the inspector finds the farm lot, records an inspection (the outcome is not chosen for them) and holds the lot;
- the regulator opens the supervision map, finds and traces the farm lot, and recalls it (draft, review, the lot
  code typed to confirm, issue);
- a shopper opens the Digital Link of the demo's salad mix and of the walk's own salad mix (both recalled through
  an ingredient) and of the recalled farm lot.

The language is chosen as people choose it: the switcher in the top bar (a signed-in user's choice becomes their
own setting), and for the shopper the phone's language (``Accept-Language``). On every page visited: ``<html
lang>`` is the walk's language, nothing scrolls sideways at 360 px, and axe-core finds no serious or critical
violation. Problems are collected page by page and reported together at the end of each walk.

Each language x viewport is one story on one demo server (its own lots, ``GV-ROM-ENP``, ``FC-MIX-ZHD``, ...); a
later person's test first walks the earlier people of its story when they have not walked yet (``-k`` picks).

Texts are compared in the page's language through the catalogue the server uses (``supply_chain/translations``):
where a text has no Chinese yet, the catalogue and the page both give the English. Controls are found by their
ids and addresses, which do not change with the language.

Screenshots of each journey's key page at phone size are left in ``test-artifacts/screenshots/journey-*.png``;
``LOTLINE_UPDATE_DOC_SCREENSHOTS=1`` also refreshes the README's copies in ``docs/screenshots/journeys/``.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEMO_PASSWORD, ROOT, LiveServer, demo_server
from .test_journey import DESKTOP, PHONE, expect
from .test_phones_and_a11y import AXE, NARROW, WIDTHS_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LANGUAGES = ("en", "zh_Hans")
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}
ACCEPT = {"en": "en-US", "zh_Hans": "zh-CN"}  # the shopper's phone language (Playwright sends it as Accept-Language)
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}
STORIES = [(lang, view) for lang in LANGUAGES for view in VIEWPORTS]
STORY_IDS = [f"{'zh' if lang == 'zh_Hans' else lang}-{view}" for lang, view in STORIES]
PEOPLE = ("farmer", "processor", "inspector", "regulator", "consumer")

ROMAINE = "00614141000012"
MIX = "00614144000033"
DEMO_MIX = "FC-MIX-002"  # the demo's salad mix, recalled through its romaine lot
FARM_SITE = "0614141000111"
PLANT_SITE = "0614144000149"
SHOP_SITE = "0614146000161"
DOC_SHOTS = ROOT / "docs" / "screenshots" / "journeys"
README_SHOTS = ("farmer-new-lot", "processor-inbox", "inspector-hold", "regulator-trace", "consumer-salad-mix")
"""The key page of each journey, which the README shows in both languages (the other shots stay in test-artifacts)."""


AXE_SERIOUS_JS = """async () => {
    // only the rules that can find a serious or critical problem run: the others cannot fail the walk
    const rules = axe._audit.rules
        .filter(rule => rule.enabled !== false && [undefined, "serious", "critical"].includes(rule.impact))
        .map(rule => rule.id);
    const r = await axe.run(document, {resultTypes: ["violations"], runOnly: {type: "rule", values: rules}});
    return r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v =>
        `${v.id} (${v.impact}): ${v.help} -- ` + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | "));
}"""

SEPARATORS_JS = """() => {
    // every separator shown between the footer's links has a link before it and after it on its own line
    const nav = document.querySelector("footer .footer-links");
    if (!nav) return [];
    const links = [...nav.querySelectorAll("a")].map(a => a.getBoundingClientRect());
    const sameLine = (a, b) => a.top < b.bottom && b.top < a.bottom;
    const bad = [];
    for (const node of nav.childNodes) {
        if (node.nodeType !== Node.TEXT_NODE) continue;
        [...node.textContent].forEach((ch, i) => {
            if (!ch.trim()) return;
            const range = document.createRange();
            range.setStart(node, i);
            range.setEnd(node, i + 1);
            const dot = range.getBoundingClientRect();
            if (dot.width < 0.5) return;  // not shown
            const before = links.some(l => sameLine(l, dot) && l.right <= dot.left + 0.5);
            const after = links.some(l => sameLine(l, dot) && l.left >= dot.right - 0.5);
            if (!before || !after) bad.push(`"${ch}" at ${Math.round(dot.left)},${Math.round(dot.top)}`);
        });
    }
    return bad;
}"""

SMALL_LINKS_JS = """(selector) => [...document.querySelectorAll(selector)]
    .map(a => [a.textContent.trim(), a.getBoundingClientRect().height])
    .filter(([, height]) => height > 0 && height < 43.5)
    .map(([text, height]) => `${text} ${Math.round(height)} px`)"""


# ------------------------------------------------------------------ the catalogue the server uses


@cache
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@cache
def _catalogue(lang: str) -> Any:
    from babel.support import NullTranslations, Translations

    if lang == "en":
        return NullTranslations()
    return Translations.load(str(ROOT / "supply_chain" / "translations"), [lang])


def T(lang: str, msgid: str, **values: Any) -> str:  # noqa: N802 - gettext's short name
    """``msgid`` in ``lang`` as the page shows it (markup removed), with its values filled in."""
    text = _catalogue(lang).gettext(msgid)
    if values:
        text = text % values
    return re.sub(r"<[^>]+>", "", text)


# ------------------------------------------------------------------ a story: one language on one viewport


@dataclass
class Story:
    lang: str
    view: str
    tag: str  # ENP, END, ZHP, ZHD: the story's lots are GV-ROM-<tag> and FC-MIX-<tag>
    walked: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)  # the names of the pages checked (a page seen again is not)

    @property
    def viewport(self) -> dict[str, int]:
        return VIEWPORTS[self.view]

    @property
    def farm_lot(self) -> str:
        return f"GV-ROM-{self.tag}"

    @property
    def mix_lot(self) -> str:
        return f"FC-MIX-{self.tag}"

    def t(self, msgid: str, **values: Any) -> str:
        return T(self.lang, msgid, **values)


class Walker:
    """Opens browser contexts for a story, checks every page it visits, and keeps what it found."""

    def __init__(self, browser: Any, server: LiveServer, story: Story, screenshots: Path) -> None:
        self.browser = browser
        self.server = server
        self.story = story
        self.screenshots = screenshots
        self.contexts: list[Any] = []
        self.found: list[str] = []
        self.pages_checked = 0

    # --- people and their browsers

    def open(self, **options: Any) -> Any:
        if self.story.view == "phone":
            options = {"is_mobile": True, "has_touch": True} | options
        context = self.browser.new_context(base_url=self.server.url, viewport=self.story.viewport, **options)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        return context.new_page()

    def sign_in(self, email: str) -> Any:
        """From the start page: the switcher (Chinese), "Sign in", e-mail and password, then the switcher again,
        which a signed-in person's choice makes their own setting (an earlier story may have left the other)."""
        story = self.story
        page = self.open(locale=ACCEPT["en"])
        page.goto("/")
        self.check(page, "start page (English, the browser's language)", lang="en")
        if story.lang != "en":
            self.switch(page)
            self.check(page, "start page")
        self.nav(page, "/login")
        expect(page.get_by_role("heading", level=1)).to_have_text(story.t("Sign in"))
        self.check(page, "sign-in")
        page.locator("#f-email").fill(email)
        page.locator("#f-password").fill(DEMO_PASSWORD)
        page.locator("main form button[type=submit]").click()
        expect(page.locator("main .flash-ok[role=status]")).to_be_visible()
        self.switch(page)
        return page

    def switch(self, page: Any) -> None:
        """The language switcher in the top bar."""
        page.locator(f"header form.lang-switch button[value={self.story.lang}]").click()
        expect(page.locator("html")).to_have_attribute("lang", HTML_LANG[self.story.lang])

    def nav(self, page: Any, href: str) -> None:
        """A link of the top bar; on a phone the signed-in menu is folded behind "Menu" first."""
        toggle = page.locator("header .menu-toggle")
        if toggle.count() and toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
            toggle.click()
        page.locator(f"header nav a[href='{href}']").click()
        page.wait_for_load_state("load")

    def close(self) -> None:
        for context in self.contexts:
            context.close()

    # --- what every page must be

    def check(self, page: Any, name: str, lang: str | None = None) -> None:
        """``<html lang>``, no sideways scrolling at 360 px, and no serious or critical axe-core violation; once a
        story (the start and sign-in pages are seen at every sign-in)."""
        if name in self.story.checked:
            return
        self.story.checked.add(name)
        self.pages_checked += 1
        page.wait_for_load_state("load")  # measured before its stylesheet applies, a page is as wide as its text
        expected = HTML_LANG[lang or self.story.lang]
        where = f"{name} ({page.url.removeprefix(self.server.url)})"
        html_lang = page.evaluate("document.documentElement.lang")
        if html_lang != expected:
            self.found.append(f"{where}: <html lang={html_lang!r}>, expected {expected!r}")
        viewport = page.viewport_size
        page.set_viewport_size({"width": NARROW["width"], "height": viewport["height"]})
        try:
            # A phone browser widens its layout to content that does not fit (and zooms out), so the page's
            # client width is held to 360 px as well as its scroll width to the client width.
            scroll, client = page.evaluate(
                "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
            )
            too_wide = scroll > client or client > NARROW["width"]
            wide = page.evaluate(WIDTHS_JS)["wide"] if too_wide else []
            dangling = page.evaluate(SEPARATORS_JS)
        finally:
            page.set_viewport_size(viewport)
        if too_wide:
            self.found.append(f"{where}: scrolls sideways at 360 px ({scroll} px wide in {client} px): {wide}")
        if dangling:
            self.found.append(f"{where}: footer separators without a link on both sides at 360 px: {dangling}")
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(axe_source() + "\n;true")  # a DevTools evaluation: the page's CSP does not apply
        for problem in page.evaluate(AXE_SERIOUS_JS):
            self.found.append(f"{where}: axe: {problem}")

    def shot(self, page: Any, name: str) -> None:
        """The phone story's screenshot of a key page (the phone's first screen and a bit more), as a small
        palette PNG; copied to docs/ when ``LOTLINE_UPDATE_DOC_SCREENSHOTS=1``."""
        if self.story.view != "phone":
            return
        lang = "zh" if self.story.lang == "zh_Hans" else "en"
        height = min(page.evaluate("document.documentElement.scrollHeight"), 1400)
        png = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": PHONE["width"], "height": height})
        target = self.screenshots / f"journey-{name}-{lang}.png"
        target.write_bytes(small_png(png))
        if name in README_SHOTS and os.environ.get("LOTLINE_UPDATE_DOC_SCREENSHOTS") == "1":
            DOC_SHOTS.mkdir(parents=True, exist_ok=True)
            (DOC_SHOTS / target.name).write_bytes(target.read_bytes())

    def flash(self, page: Any, *parts: str) -> None:
        status = page.locator("main .flash-ok[role=status]")
        for part in parts:
            expect(status).to_contain_text(part)

    def h1(self, page: Any, text: str | re.Pattern[str]) -> None:
        expect(page.get_by_role("heading", level=1)).to_contain_text(text)


def small_png(png: bytes) -> bytes:
    """A screenshot in 64 colours: text and badges stay sharp, the file is a fraction of the size."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        reduced = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        out = io.BytesIO()
        reduced.save(out, format="PNG", optimize=True)
    return out.getvalue()


def choose(select: Any, text: str) -> None:
    """Pick the option of a <select> whose visible text contains ``text`` (a name, the same in both languages)."""
    option = select.locator("option", has_text=text).first
    expect(option).to_be_attached()
    select.select_option(value=option.get_attribute("value"))


# ------------------------------------------------------------------ the walks


def walk_farmer(walker: Walker) -> None:
    story, t = walker.story, walker.story.t
    lot = story.farm_lot
    farmer = walker.sign_in("farmer@demo.lotline")
    walker.h1(farmer, "Green Valley Farm")
    walker.check(farmer, "farmer dashboard")

    farmer.locator("main a[href='/lots/new']").first.click()
    walker.h1(farmer, t("Create a lot"))
    walker.check(farmer, "new lot form")
    farmer.locator("#f-gtin").select_option(ROMAINE)
    farmer.locator("#f-lot_code").fill(lot)
    farmer.locator("#kde-location_gln").select_option(FARM_SITE)
    expect(farmer.locator("#kde-commodity")).to_have_value("romaine lettuce")  # the product's, not typed
    farmer.locator("#kde-variety").fill("Parris Island")
    farmer.locator("#kde-quantity").fill("750")
    farmer.locator("#kde-field_name").fill("Field 7")
    walker.shot(farmer, "farmer-new-lot")
    farmer.locator("main form.stack button[type=submit]").click()
    walker.flash(farmer, t("Lot %(lot)s created.", lot=lot))
    walker.h1(farmer, lot)
    walker.check(farmer, "the new lot")

    walker.nav(farmer, "/dashboard")
    walker.h1(farmer, "Green Valley Farm")
    row = farmer.locator("main table tbody tr", has_text=lot)
    expect(row).to_contain_text(T(story.lang, "active"))
    walker.check(farmer, "dashboard with the new lot")
    row.locator("a", has_text=lot).click()
    walker.h1(farmer, lot)

    farmer.locator("main a[href$='/labels']").click()
    walker.h1(farmer, t("Labels for lot <code>%(lot)s</code>", lot=lot))
    label = farmer.locator("article.label").first
    expect(label).to_contain_text(f"{ROMAINE}")
    expect(label).to_contain_text(f"/01/{ROMAINE}/10/{lot}")  # the Digital Link, the same in every language
    walker.check(farmer, "label sheet")
    walker.shot(farmer, "farmer-labels")
    farmer.evaluate("() => { window.__printed = 0; window.print = () => { window.__printed += 1; }; }")
    farmer.locator("main button[data-print]").click()
    assert farmer.evaluate("window.__printed") == 1, "the Print labels button did not print"

    farmer.locator("main a[href^='/lots/']", has_text=lot).first.click()
    farmer.locator("main a[href$='/ship']").click()
    walker.h1(farmer, t("Ship lot %(lot)s", lot=lot))
    walker.check(farmer, "ship form")
    choose(farmer.locator("#f-to"), "FreshCut Salads")
    farmer.locator("#kde-from_gln").select_option(FARM_SITE)
    farmer.locator("#kde-to_gln").select_option(PLANT_SITE)
    farmer.locator("#kde-reference_document_type").fill("BOL")
    farmer.locator("#kde-reference_document_number").fill(f"BOL-{story.tag}-1")
    farmer.locator("main form.stack button[type=submit]").click()
    walker.flash(farmer, lot, "FreshCut Salads")
    expect(farmer.locator("main .badge", has_text=T(story.lang, "in transit")).first).to_be_visible()
    walker.check(farmer, "the lot in transit")


def walk_processor(walker: Walker) -> None:
    story, t = walker.story, walker.story.t
    lot, mix = story.farm_lot, story.mix_lot
    processor = walker.sign_in("processor@demo.lotline")
    walker.h1(processor, "FreshCut Salads")
    walker.check(processor, "processor dashboard")

    walker.nav(processor, "/custody")
    walker.h1(processor, t("Custody inbox"))
    offer = processor.locator("main section.card", has_text=lot)
    expect(offer).to_contain_text("Green Valley Farm")
    expect(offer).to_contain_text(f"BOL-{story.tag}-1")
    walker.check(processor, "custody inbox")
    walker.shot(processor, "processor-inbox")
    offer.locator("a[href$='/accept']").click()
    walker.h1(processor, lot)
    expect(processor.locator("#kde-reference_document_number")).to_have_value(f"BOL-{story.tag}-1")
    walker.check(processor, "receive form")
    processor.locator("main form.stack button[type=submit]").click()
    walker.flash(processor, t("Lot %(lot)s received; your organisation now holds it.", lot=lot))
    walker.check(processor, "the received lot")

    walker.nav(processor, "/transform")
    walker.h1(processor, re.compile(f"^({re.escape(t('Transform lots'))}|Transform lots)$"))  # not yet wrapped
    walker.check(processor, "transform form")
    processor.locator("main tr", has_text=lot).locator("input").fill("300")
    processor.locator("#f-gtin").select_option(MIX)
    processor.locator("#f-lot_code").fill(mix)
    processor.locator("#f-quantity").fill("280")
    processor.locator("#f-loc").select_option(PLANT_SITE)
    processor.locator("#f-product_description").fill("Washed, chopped romaine")
    walker.shot(processor, "processor-transform")
    processor.locator("main form.stack button[type=submit]").click()
    walker.flash(processor, mix)
    walker.h1(processor, mix)
    expect(processor.locator("main")).to_contain_text(lot)  # made from the farm lot
    walker.check(processor, "the new salad-mix lot")

    processor.locator("main a[href$='/ship']").click()
    walker.h1(processor, t("Ship lot %(lot)s", lot=mix))
    choose(processor.locator("#f-to"), "Corner Market")
    processor.locator("#kde-to_gln").select_option(SHOP_SITE)
    processor.locator("#kde-reference_document_type").fill("BOL")
    processor.locator("#kde-reference_document_number").fill(f"BOL-{story.tag}-2")
    walker.check(processor, "ship form (salad mix)")
    processor.locator("main form.stack button[type=submit]").click()
    walker.flash(processor, mix, "Corner Market")
    walker.check(processor, "the salad mix in transit")


def walk_inspector(walker: Walker) -> None:
    story, t = walker.story, walker.story.t
    lot = story.farm_lot
    inspector = walker.sign_in("inspector@demo.lotline")
    walker.h1(inspector, t("Inspections"))
    walker.check(inspector, "inspections")

    inspector.locator("main #f-q").fill(lot)
    inspector.locator("main form[role=search] button[type=submit]").click()
    walker.h1(inspector, t("Find a lot"))
    walker.check(inspector, "search results")
    inspector.locator("main table a", has_text=lot).click()
    walker.h1(inspector, lot)
    walker.check(inspector, "the farm lot (inspector)")

    inspector.locator("main a[href$='/new']").click()
    walker.h1(inspector, t("Record an inspection"))
    outcome = inspector.locator("#kde-outcome")
    expect(outcome).to_have_value("")  # nothing chosen for the inspector
    walker.check(inspector, "inspection form")
    outcome.select_option("conditional")
    inspector.locator("#kde-standard").fill("FDA BAM Ch. 4")
    inspector.locator("#kde-findings").fill("Retest for E. coli O157:H7 pending")
    inspector.locator("main form.stack button[type=submit]").click()
    walker.flash(inspector, t("Inspection of lot %(lot)s recorded.", lot=lot))
    walker.check(inspector, "the inspected lot")

    hold = inspector.locator("main details.action", has=inspector.locator("#f-hold"))
    hold.locator("summary").click()
    inspector.locator("#f-hold").fill("Retest pending")
    hold.locator("button[type=submit]").click()
    walker.flash(inspector, t("Lot %(lot)s is on hold.", lot=lot))
    expect(inspector.locator("main .hold-notice")).to_be_visible()
    walker.check(inspector, "the held lot")
    walker.shot(inspector, "inspector-hold")


def walk_regulator(walker: Walker) -> None:
    story, t = walker.story, walker.story.t
    lot, mix = story.farm_lot, story.mix_lot
    regulator = walker.sign_in("regulator@demo.lotline")
    walker.h1(regulator, t("Regulator"))
    walker.check(regulator, "regulator dashboard")

    regulator.locator("main a[href='/admin/map']").click()
    walker.h1(regulator, t("Supervision map"))
    expect(regulator.locator(".leaflet-container .leaflet-interactive").first).to_be_attached()
    walker.check(regulator, "supervision map")
    walker.shot(regulator, "regulator-map")

    walker.nav(regulator, "/admin")
    regulator.locator("main #f-q").fill(lot)
    regulator.locator("main form[role=search] button[type=submit]").click()
    walker.h1(regulator, t("Find a lot"))
    walker.check(regulator, "search results")
    regulator.locator("main table a", has_text=lot).click()
    walker.h1(regulator, lot)
    expect(regulator.locator("main .hold-notice")).to_be_visible()
    walker.check(regulator, "the farm lot (regulator)")

    regulator.locator("main a[href$='/trace?direction=forward'], main a[href$='/trace']").first.click()
    expect(regulator.locator("main .trace-graph")).to_contain_text(mix)  # forward: the salad mix made from it
    small = regulator.evaluate(SMALL_LINKS_JS, "main .trace-graph a")
    assert not small, f"links in the trace graph under 44 px: {small}"
    walker.check(regulator, "forward trace")
    walker.shot(regulator, "regulator-trace")
    regulator.go_back()

    regulator.locator("main a[href$='/recall']").click()
    walker.h1(regulator, lot)
    walker.check(regulator, "recall form")
    regulator.locator("#f-recall_class").select_option("I")
    regulator.locator("#f-reason").fill("Listeria monocytogenes in a retest of " + lot)
    regulator.locator("#f-instructions").fill("Do not sell or eat. Return for a refund.")
    regulator.locator("#f-contact").fill("recalls@foodsafety.example")
    regulator.locator("main form.stack button[type=submit]").click()
    walker.flash(regulator, lot)
    walker.check(regulator, "recall draft")
    regulator.locator("main form[action$='/review'] button[type=submit]").click()
    confirm = regulator.locator("#f-confirm_lot_code")
    expect(confirm).to_be_visible()
    walker.check(regulator, "recall review")
    walker.shot(regulator, "regulator-recall-review")
    confirm.fill(lot)
    regulator.locator("main form:has(#f-confirm_lot_code) button[type=submit]").click()
    walker.flash(regulator, lot)
    expect(regulator.locator("main").get_by_role("row").filter(has_text=mix)).to_contain_text(T(story.lang, "recalled"))
    walker.check(regulator, "the issued recall")


def walk_consumer(walker: Walker) -> None:
    story, t = walker.story, walker.story.t
    shopper = walker.open(locale=ACCEPT[story.lang])
    banner_name = t("Do not eat: recalled")
    for name, gtin, code, via in (
        ("the demo's salad mix", MIX, DEMO_MIX, "GV-ROM-2611A"),
        ("the walk's salad mix", MIX, story.mix_lot, story.farm_lot),
        ("the recalled farm lot", ROMAINE, story.farm_lot, None),
    ):
        shopper.goto(f"/01/{gtin}/10/{code}")
        banner = shopper.get_by_role("region", name=banner_name)
        expect(banner).to_be_visible()
        if via:
            expect(banner).to_contain_text(via)  # recalled through this ingredient lot
        walker.check(shopper, f"consumer page, {name}")
        if code == DEMO_MIX:
            expect(shopper.get_by_role("heading", level=1)).to_have_text("Garden salad mix 250 g")
            walker.shot(shopper, "consumer-salad-mix")


WALKS: dict[str, Callable[[Walker], None]] = {
    "farmer": walk_farmer,
    "processor": walk_processor,
    "inspector": walk_inspector,
    "regulator": walk_regulator,
    "consumer": walk_consumer,
}


# ------------------------------------------------------------------ fixtures and tests


@pytest.fixture(scope="module")
def live_server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A demo of this module's own: the walks recall and hold lots the other modules expect as seeded."""
    with demo_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def journeys(browser: Any, live_server: LiveServer, screenshots: Path) -> Callable[[str, str, str], Walker]:
    """``journeys(lang, view, person)``: that person's walk in the story of ``lang`` on ``view``, after the earlier
    people's walks when they have not walked yet (a walk is tried once: the next ones fail when it failed)."""
    stories = {
        (lang, view): Story(lang, view, ("ZH" if lang == "zh_Hans" else "EN") + view[0].upper())
        for lang, view in STORIES
    }

    def walk(lang: str, view: str, person: str) -> Walker:
        story = stories[lang, view]
        walker = Walker(browser, live_server, story, screenshots)
        try:
            for earlier in PEOPLE[: PEOPLE.index(person) + 1]:
                if earlier in story.failed:
                    pytest.fail(f"the {earlier}'s walk failed in this story, so the {person}'s cannot follow it")
                if earlier not in story.walked:
                    story.failed.add(earlier)  # until it finishes
                    WALKS[earlier](walker)
                    story.failed.discard(earlier)
                    story.walked.add(earlier)
        finally:
            walker.close()
        return walker

    return walk


def assert_clean(walker: Walker) -> None:
    assert walker.pages_checked > 0
    assert not walker.found, f"{len(walker.found)} problems on {walker.pages_checked} pages:\n" + "\n".join(
        walker.found
    )


@pytest.mark.parametrize("lang,view", STORIES, ids=STORY_IDS)
def test_farmer_creates_a_lot_prints_its_labels_and_ships_it(
    journeys: Callable[[str, str, str], Walker], lang: str, view: str
) -> None:
    assert_clean(journeys(lang, view, "farmer"))


@pytest.mark.parametrize("lang,view", STORIES, ids=STORY_IDS)
def test_processor_receives_transforms_and_ships(
    journeys: Callable[[str, str, str], Walker], lang: str, view: str
) -> None:
    assert_clean(journeys(lang, view, "processor"))


@pytest.mark.parametrize("lang,view", STORIES, ids=STORY_IDS)
def test_inspector_records_an_inspection_and_holds_the_lot(
    journeys: Callable[[str, str, str], Walker], lang: str, view: str
) -> None:
    assert_clean(journeys(lang, view, "inspector"))


@pytest.mark.parametrize("lang,view", STORIES, ids=STORY_IDS)
def test_regulator_maps_traces_and_recalls(journeys: Callable[[str, str, str], Walker], lang: str, view: str) -> None:
    assert_clean(journeys(lang, view, "regulator"))


@pytest.mark.parametrize("lang,view", STORIES, ids=STORY_IDS)
def test_shopper_sees_the_recall_on_the_digital_link(
    journeys: Callable[[str, str, str], Walker], lang: str, view: str
) -> None:
    assert_clean(journeys(lang, view, "consumer"))
