"""Open data and credit records in Chromium, on the demo, at desktop and 390 px phone width: the pages read
right, nothing is cut off sideways, and screenshots are left in test-artifacts/screenshots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEMO_PASSWORD, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def _page(browser: Any, server: LiveServer, viewport: dict[str, int]) -> Any:
    context = browser.new_context(base_url=server.url, viewport=viewport)
    context.set_default_timeout(20_000)
    return context.new_page()


def _sign_in(page: Any, email: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Signed in as")).to_be_visible()


def _fits(page: Any) -> None:
    """Nothing makes the page scroll sideways (wide tables scroll inside their own box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"{page.url} is {overflow} px wider than the screen"


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_open_data_page_from_the_footer(browser: Any, live_server: LiveServer, screenshots: Path, size: str) -> None:
    page = _page(browser, live_server, VIEWPORTS[size])
    page.goto("/lookup")
    page.get_by_role("navigation", name="Open data").get_by_role("link", name="Open data").click()
    expect(page.get_by_role("heading", name="Open data", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Romaine lettuce, whole heads, lot GV-ROM-2611A")).to_be_visible()
    expect(page.get_by_text("Do not eat. Throw the product away")).to_be_visible()
    expect(page.locator("code", has_text="FC-MIX-001")).to_be_visible()
    expect(page.get_by_text("at least 3 records from at least 3 different organisations")).to_be_visible()
    _fits(page)
    page.screenshot(path=str(screenshots / f"open-data-{size}.png"), full_page=True)
    feed = page.request.get("/open/recalls.atom")
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
    page.context.close()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_a_buyer_checks_the_salad_makers_credit_record(
    browser: Any, live_server: LiveServer, screenshots: Path, size: str
) -> None:
    page = _page(browser, live_server, VIEWPORTS[size])
    _sign_in(page, "shop@demo.lotline")
    page.goto("/organisations")
    page.get_by_role("link", name="FreshCut Salads").click()
    expect(page.get_by_role("heading", name="FreshCut Salads", level=1)).to_be_visible()
    expect(page.get_by_role("img", name="Grade A")).to_be_visible()
    expect(page.get_by_role("heading", name="Recalls that reached it through an ingredient or stock")).to_be_visible()
    expect(page.get_by_text("FC-MIX-001 (made from it)")).to_be_visible()
    # (the journey test may recall the spinach too, so "at least one")
    expect(page.locator('[data-term="recalls_reached"] .n')).to_have_text(re.compile(r"^[1-9][0-9]*$"))
    expect(page.locator('[data-term="recalls_caused"] .n')).to_have_text("0")
    expect(page.locator('[data-term="acks_late"] .n')).to_have_text("0")
    _fits(page)
    page.screenshot(path=str(screenshots / f"credit-salad-maker-{size}.png"), full_page=True)
    page.goto("/organisations")
    page.get_by_role("link", name="Green Valley Farm").click()
    expect(page.get_by_role("img", name="Grade C")).to_be_visible()
    expect(page.get_by_text("C because 1 or more class I recalls")).to_be_visible()
    page.get_by_text("How the grade is worked out").click()
    expect(page.get_by_text("2 or more recalls started from its own lots")).to_be_visible()
    _fits(page)
    page.screenshot(path=str(screenshots / f"credit-farm-{size}.png"), full_page=True)
    page.context.close()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_the_regulator_sees_grades_and_the_record(
    browser: Any, live_server: LiveServer, screenshots: Path, size: str
) -> None:
    page = _page(browser, live_server, VIEWPORTS[size])
    _sign_in(page, "regulator@demo.lotline")
    page.goto("/admin")
    expect(page.get_by_role("columnheader", name="Grade")).to_be_visible()
    page.screenshot(path=str(screenshots / f"regulator-grades-{size}.png"), full_page=True)
    page.get_by_role("link", name="Green Valley Farm").click()
    expect(page.get_by_role("heading", name="Credit record")).to_be_visible()
    expect(page.get_by_role("heading", name="Recalls of its own lots")).to_be_visible()
    _fits(page)
    page.screenshot(path=str(screenshots / f"regulator-organisation-{size}.png"), full_page=True)
    page.context.close()
