"""Forms in a real browser: the fields a product defines follow the product picked on "Create a lot"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .test_journey import People, choose, expect, kde, people  # noqa: F401  (people is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KALE_GTIN = "0614141000098"  # under Green Valley Farm's company prefix 0614141


def test_product_bound_fields_follow_the_product(people: People) -> None:  # noqa: F811
    page = people.signed_in("farmer@demo.lotline")
    page.goto("/products")
    page.get_by_label("GTIN").fill(KALE_GTIN)
    page.get_by_label("Name").fill("Curly kale, bunched")
    page.get_by_label("Commodity").fill("kale")
    page.get_by_label("Variety").fill("Winterbor")
    page.get_by_role("button", name="Register product").click()
    expect(page.get_by_role("status").filter(has_text="registered")).to_be_visible()

    page.goto("/lots/new")
    product, commodity, variety, unit = (
        page.get_by_label("Product"),
        kde(page, "Commodity"),
        kde(page, "Variety"),
        kde(page, "Unit"),
    )
    choose(product, "Romaine")
    expect(commodity).to_have_value("romaine lettuce")
    expect(commodity).not_to_be_editable()
    expect(variety).to_be_editable()
    variety.fill("Parris Island")
    choose(product, "Curly kale")
    expect(commodity).to_have_value("kale")
    expect(variety).to_have_value("Winterbor")
    expect(variety).not_to_be_editable()
    expect(unit).to_have_value("kg")
    choose(product, "Romaine")  # back: the kale's variety does not stay behind
    expect(commodity).to_have_value("romaine lettuce")
    expect(variety).to_have_value("")
    expect(variety).to_be_editable()


def test_lot_code_stops_at_20_and_every_error_is_read_with_its_field(
    people: People,  # noqa: F811
    screenshots: Path,
) -> None:
    """Issue 13: the browser stops typing at the lot code's limit; one submit shows every error, each beside
    its field, in the field's words, and a screen reader reads it as the field's description."""
    page = people.signed_in("farmer@demo.lotline")
    page.goto("/lots/new")
    lot_code = page.get_by_label("Lot code")
    lot_code.press_sequentially("A" * 25)
    expect(lot_code).to_have_value("A" * 20)
    kde(page, "Quantity").fill("-5")
    kde(page, "Harvest date").fill("")
    page.get_by_role("button", name="Create lot").click()
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("Quantity: must be greater than 0")
    expect(summary).to_contain_text("Harvest date: is required")
    expect(kde(page, "Quantity")).to_have_attribute("aria-invalid", "true")
    expect(kde(page, "Quantity")).to_have_accessible_description(re.compile(r"^Quantity: must be greater than 0"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshots / "form-errors-phone.png"), full_page=True)
    summary.get_by_role("link", name=re.compile("^Harvest date")).click()  # the link leads to the field
    expect(page).to_have_url(re.compile("#kde-harvest_date$"))
    expect(lot_code).to_have_value("A" * 20)  # what was typed stays
