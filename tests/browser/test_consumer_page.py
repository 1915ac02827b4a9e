"""The consumer page as a shopper in a supermarket sees it: on a 390×844 phone and a 360 px one, in Chromium, on the
demo (issue 13). The answer (do not eat / not for sale / fine, what, where, when, who) and the journey fit in one
screen above "How we know"; nothing scrolls sideways, however long the lot code; the details open.

This module runs on the shared demo server before ``test_journey.py`` recalls the spinach lot, so salad mix
FC-MIX-001 carries the demo's one recall (romaine GV-ROM-2611A) and baby spinach SF-SPN-2611B is a fine lot.
Screenshots go to ``test-artifacts/screenshots/consumer-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LiveServer, copy_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MIX_PATH = "/01/00614144000033/10/FC-MIX-001"  # recalled in the demo through its romaine ingredient
FINE_PATH = "/01/00614142000028/10/SF-SPN-2611B"  # baby spinach: no recall, no hold (until test_journey)
HELD_PATH = "/01/00614141000012/10/GV-ROM-2611C"  # on hold after a failed inspection
PHONE = {"width": 390, "height": 844}
NARROW = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
LONG_CODE = "FC-MIX-001-" + "X7" * 15  # 41 characters without a break: longer than any lot code may be


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


@pytest.fixture
def open_page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    contexts: list[Any] = []

    def opener(viewport: dict[str, int]) -> Any:
        phone = viewport["width"] < 500
        options = {"device_scale_factor": 2, "is_mobile": True, "has_touch": True} if phone else {}
        context = browser.new_context(base_url=live_server.url, viewport=viewport, **options)
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    try:
        yield opener
    finally:
        for context in contexts:
            context.close()


def sideways_overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the screen (0: nothing scrolls sideways)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def height_above_details(page: Any) -> float:
    """The height of the page's content (from the top of <main>) above the "How we know" section."""
    return float(
        page.evaluate(
            """() => document.querySelector('details.how-we-know').getBoundingClientRect().top
                   - document.querySelector('main').getBoundingClientRect().top"""
        )
    )


def test_recalled_salad_mix_answers_first_and_fits_one_phone_screen(
    open_page: Any, live_server: LiveServer, screenshots: Path
) -> None:
    page = open_page(PHONE)
    page.goto(MIX_PATH)
    recalls = page.request.get(MIX_PATH, headers={"Accept": "application/json"}).json()["recalls"]
    assert [r["lot"]["lot_code"] for r in recalls] == ["GV-ROM-2611A"], "expected the demo's one recall"

    title = page.get_by_role("heading", level=1)
    expect(title).to_have_text("Garden salad mix 250 g")
    banner = page.get_by_role("region", name="Do not eat: recalled")
    expect(banner).to_be_visible()
    expect(banner.get_by_role("heading", level=2)).to_contain_text("Do not eat: recalled")
    expect(banner).to_contain_text("Listeria monocytogenes")
    expect(banner).to_contain_text("What to do:")
    expect(banner).to_contain_text("Questions:")
    headings = page.locator("main h1, main h2").all_inner_texts()
    assert headings[0] == "Garden salad mix 250 g" and "Do not eat: recalled" in headings[1], headings
    box, heading = banner.bounding_box(), title.bounding_box()
    assert box is not None and heading is not None and heading["y"] < box["y"] < PHONE["height"] / 3

    answer = page.locator(".answer")
    for fact in ("What it is", "Grown", "Green Valley Farm, Field 7", "Sunrise Fields", "Packed"):
        expect(answer).to_contain_text(fact)
    top = page.locator(".answer, .journey")
    for part in top.all_inner_texts():  # ("North Block" is a field's name, not a chain block)
        assert not re.search(r"Verified|✔|Block \d|transaction|0x[0-9a-f]", part), f"chain words above: {part}"
    steps = page.locator(".journey > ol.steps > li")
    assert steps.count() >= 5
    for index in range(steps.count()):  # one line per step: what, where, when
        line = steps.nth(index)
        expect(line.locator("time")).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}$"))
        assert line.bounding_box()["height"] < 50, line.inner_text()

    above = height_above_details(page)
    assert above < PHONE["height"], f"{above:.0f} px above 'How we know' on a 390×844 phone"
    assert sideways_overflow(page) == 0
    page.screenshot(path=str(screenshots / "consumer-recalled-phone.png"), full_page=True)

    details = page.locator("details.how-we-know")
    expect(details.locator("ol.proofs")).not_to_be_visible()
    details.locator("summary").click()
    expect(details).to_have_attribute("open", "")
    expect(details.locator("ol.proofs > li").first).to_contain_text(
        re.compile(r"Block \d+ · transaction 0x[0-9a-f]{64}")
    )
    expect(details).to_contain_text("Verified journey")
    expect(details).to_contain_text("Head hash")
    expect(details).to_contain_text("Accept: application/json")
    assert sideways_overflow(page) == 0, "the open details scroll sideways"
    page.locator(".ingredient-journey summary").click()
    expect(page.locator(".ingredient-journey ol.steps").first).to_be_visible()
    assert sideways_overflow(page) == 0
    page.screenshot(path=str(screenshots / "consumer-recalled-phone-open.png"), full_page=True)

    desktop = open_page(DESKTOP)
    desktop.goto(MIX_PATH)
    expect(desktop.get_by_role("region", name="Do not eat: recalled")).to_be_visible()
    desktop.screenshot(path=str(screenshots / "consumer-recalled-desktop.png"), full_page=True)


@pytest.mark.parametrize("viewport", [PHONE, NARROW], ids=["390", "360"])
def test_a_shopper_whose_phone_asks_for_chinese_gets_the_page_in_chinese(
    browser: Any, live_server: LiveServer, screenshots: Path, docs_screenshots: Path, viewport: dict[str, int]
) -> None:
    context = browser.new_context(
        base_url=live_server.url,
        viewport=viewport,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",  # Chromium then sends Accept-Language: zh-CN
    )
    try:
        page = context.new_page()
        page.goto(MIX_PATH)
        assert page.evaluate("document.documentElement.lang") == "zh-Hans"
        banner = page.get_by_role("region", name="请勿食用：已召回")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("您应当：")
        expect(page.locator(".answer")).to_contain_text("品类")
        expect(page.locator(".journey h2")).to_have_text("流转过程")
        expect(page.locator(".journey > ol.steps > li time").first).to_have_text(re.compile(r"^\d{1,2}月\d{1,2}日$"))
        if viewport == PHONE:  # one screen on the 390×844 phone, as in English (360 px: no sideways scroll)
            assert height_above_details(page) < PHONE["height"]
        assert sideways_overflow(page) == 0
        name = f"consumer-recalled-phone-zh-{viewport['width']}.png"
        page.screenshot(path=str(screenshots / name))
        if viewport == PHONE:
            copy_screenshot(screenshots / name, docs_screenshots / "consumer-phone-zh.png")
        page.get_by_role("button", name="English").click()  # the switcher: the choice is kept in a cookie
        expect(page.get_by_role("region", name="Do not eat: recalled")).to_be_visible()
        page.goto(MIX_PATH)
        assert page.evaluate("document.documentElement.lang") == "en"
    finally:
        context.close()


def test_fine_and_held_lots_on_a_phone(open_page: Any, screenshots: Path) -> None:
    page = open_page(PHONE)
    page.goto(FINE_PATH)
    expect(page.get_by_role("heading", level=1)).to_have_text("Baby spinach")
    expect(page.locator(".verdict")).to_have_text("Fine: no recall and no hold is recorded for this lot.")
    expect(page.locator(".answer .overall")).to_contain_text("Verified journey")  # fine lots may show it
    expect(page.get_by_role("region", name=re.compile("Do not eat"))).to_have_count(0)
    assert height_above_details(page) < PHONE["height"] and sideways_overflow(page) == 0
    page.screenshot(path=str(screenshots / "consumer-fine-phone.png"), full_page=True)
    desktop = open_page(DESKTOP)
    desktop.goto(FINE_PATH)
    desktop.screenshot(path=str(screenshots / "consumer-fine-desktop.png"), full_page=True)

    page.goto(HELD_PATH)
    notice = page.get_by_role("region", name="Not for sale: on hold")
    expect(notice).to_contain_text("On hold since")
    expect(page.locator(".answer")).not_to_contain_text("Verified")
    assert sideways_overflow(page) == 0


@pytest.mark.parametrize("viewport", [PHONE, NARROW], ids=["390", "360"])
def test_nothing_scrolls_sideways_with_a_long_lot_code(
    open_page: Any, viewport: dict[str, int], screenshots: Path
) -> None:
    """The real page with its lot code swapped for 41 characters without a break (the stylesheet is the real one):
    the code wraps, the page does not scroll sideways, with the details open too."""
    page = open_page(viewport)
    html = page.request.get(MIX_PATH).text().replace("FC-MIX-001", LONG_CODE)
    page.route("**/long-lot", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto("/long-lot")
    expect(page.locator(".hero .producer code")).to_have_text(LONG_CODE)
    assert sideways_overflow(page) == 0
    page.locator("details.how-we-know summary").click()
    page.locator(".ingredient-journey summary").click()
    assert sideways_overflow(page) == 0
    page.screenshot(path=str(screenshots / f"consumer-long-code-{viewport['width']}.png"), full_page=True)
    for path in (MIX_PATH, FINE_PATH, HELD_PATH, "/01/00614141000012", "/01/00614141000012/21/SN-0001"):
        page.goto(path)
        assert sideways_overflow(page) == 0, path


def test_gtin_alone_and_serialised_links_ask_for_the_lot_code(open_page: Any, screenshots: Path) -> None:
    page = open_page(PHONE)
    page.goto("/01/00614141000012/21/SN-0001")
    expect(page.get_by_role("heading", level=1)).to_have_text("Romaine lettuce, whole heads")
    expect(page.locator("main")).to_contain_text("A serial number alone does not tell us which lot")
    page.screenshot(path=str(screenshots / "consumer-serial-phone.png"), full_page=True)
    page.goto("/01/00614141000012")
    expect(page.locator("main")).to_contain_text("by Green Valley Farm")
    page.get_by_label("Enter the lot code printed next to the date").fill("GV-ROM-2611A")
    page.get_by_role("button", name="Show this lot").click()
    expect(page).to_have_url(re.compile(r"/01/00614141000012/10/GV-ROM-2611A$"))
    expect(page.get_by_role("region", name="Do not eat: recalled")).to_be_visible()
