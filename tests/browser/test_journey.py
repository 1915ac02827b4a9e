"""The whole farm-to-shop journey through the web UI, clicked the way people use it, then a recall reaching a
salad-mix lot's consumer page.

Each person works in their own browser context (their own cookies). Assertions are about what a person sees:
headings, flash messages, badges, banners, texts that must or must not be on the page.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEMO_PASSWORD, LiveServer, copy_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOT = "GV-ROM-BT01"
ROMAINE_GTIN = "00614141000012"
FARM_SITE = "Green Valley Farm, Field 7"
DC_SITE = "ColdChain DC West"
SHOP_SITE = "Corner Market, Main St"
INTERNAL_NOTE = "Sample jar 4 cracked in transit; resampled on site."
FINDINGS = "No pathogens detected in 5 samples of lot " + LOT
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# The demo's salad-mix lot made from both farm lots; the demo itself recalls GV-ROM-2611A (romaine).
MIX_PATH = "/01/00614144000033/10/FC-MIX-002"
SPINACH_LOT = "SF-SPN-2611B"
RECALL_REASON = "Salmonella Newport found in a retail sample of baby spinach"
RECALL_INSTRUCTIONS = "Do not eat it. Throw it away, or bring it back to the shop for a full refund."


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


# ------------------------------------------------------------------ people and pages


class People:
    """Opens one browser context per person; closes them all at the end."""

    def __init__(self, browser: Any, server: LiveServer) -> None:
        self.browser = browser
        self.server = server
        self.contexts: list[Any] = []

    def open(self, viewport: dict[str, int] = DESKTOP, **options: Any) -> Any:
        context = self.browser.new_context(base_url=self.server.url, viewport=viewport, **options)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        return context.new_page()

    def signed_in(self, email: str, **options: Any) -> Any:
        """A person opens the home page, follows "Sign in" and signs in with the demo password."""
        page = self.open(**options)
        page.goto("/")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in", exact=True).click()
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="Signed in as")).to_be_visible()
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def people(browser: Any, live_server: LiveServer) -> Iterator[People]:
    crowd = People(browser, live_server)
    try:
        yield crowd
    finally:
        crowd.close()


def kde(page: Any, label: str) -> Any:
    """A key-data-element input by its visible label (labels also carry a public/consortium/private tag)."""
    return page.get_by_label(re.compile(rf"^{re.escape(label)}\b"))


def choose(select: Any, text: str) -> None:
    """Pick the option of a <select> whose visible text contains ``text``."""
    option = select.locator("option", has_text=text).first
    expect(option).to_be_attached()
    select.select_option(value=option.get_attribute("value"))


def flash(page: Any, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def shot(page: Any, path: Path, full_page: bool = True) -> Path:
    page.screenshot(path=str(path), full_page=full_page)
    return path


def certificate_pdf(title: str) -> bytes:
    """A small valid one-page PDF with one line of text, as a lab would send (the demo's own maker)."""
    from supply_chain.services.demo import demo_pdf

    return demo_pdf(title)


def decode_qr(png: bytes) -> str:
    import zxingcpp
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    codes = [code for code in found if code.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(codes) == 1, f"expected one QR code on the label, found {[c.text for c in found]}"
    return codes[0].text


def journey_steps(page: Any) -> list[str]:
    return [text.strip() for text in page.locator("ol.timeline > li h3").all_inner_texts()]


def consumer_steps(page: Any) -> list[str]:
    """The consumer page's compact journey: what happened at each step of the lot itself, one line a step."""
    return [text.strip() for text in page.locator(".journey > ol.steps > li .step-what").all_inner_texts()]


# ------------------------------------------------------------------ the journey


def test_farm_to_shop_journey(people: People, live_server: LiveServer, screenshots: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    base = live_server.url
    expected_link = f"{base}/01/{ROMAINE_GTIN}/10/{LOT}"

    # --- the farmer creates a lot at harvest --------------------------------------------------------------------
    farmer = people.signed_in("farmer@demo.lotline", device_scale_factor=2)
    expect(farmer.get_by_role("heading", level=1)).to_have_text("Green Valley Farm")
    farmer.get_by_role("link", name="Create a lot").click()
    expect(farmer.get_by_role("heading", level=1)).to_have_text("Create a lot")
    choose(farmer.get_by_label("Product"), "Romaine lettuce")
    farmer.get_by_label("Lot code").fill(LOT)
    choose(kde(farmer, "Location"), FARM_SITE)
    expect(kde(farmer, "Commodity")).to_have_value("romaine lettuce")  # the product's, not typed
    expect(kde(farmer, "Commodity")).not_to_be_editable()
    kde(farmer, "Variety").fill("Parris Island")
    kde(farmer, "Quantity").fill("750")
    kde(farmer, "Field name").fill("Field 7")
    farmer.get_by_role("button", name="Create lot").click()
    flash(farmer, f"Lot {LOT} created.")
    expect(farmer.get_by_role("heading", level=1)).to_contain_text(LOT)

    # --- cooling and initial packing -----------------------------------------------------------------------------
    farmer.get_by_role("link", name="Record cooling").click()
    expect(farmer.get_by_role("heading", level=1)).to_have_text("Record cooling")
    choose(kde(farmer, "Location"), FARM_SITE)
    farmer.get_by_role("button", name="Record", exact=True).click()
    flash(farmer, f"Cooled: recorded on lot {LOT}")

    farmer.get_by_role("link", name="Record initial packing").click()
    expect(farmer.get_by_role("heading", level=1)).to_have_text("Record initial packing")
    choose(kde(farmer, "Location"), FARM_SITE)
    kde(farmer, "Product description").fill("Romaine lettuce, whole heads, 12 per case")
    farmer.get_by_role("button", name="Record", exact=True).click()
    flash(farmer, f"Packed: recorded on lot {LOT}")
    assert journey_steps(farmer) == ["Harvested", "Cooled", "Packed"]

    # --- the label sheet; its QR code is read like a phone would, and that link opened --------------------------
    farmer.get_by_role("link", name="Print labels").click()
    expect(farmer.get_by_role("heading", level=1)).to_have_text(f"Labels for lot {LOT}")
    label = farmer.locator("article.label").first
    expect(label).to_contain_text("Romaine lettuce, whole heads")
    expect(label).to_contain_text(ROMAINE_GTIN)
    expect(label).to_contain_text(LOT)
    expect(label).to_contain_text("Green Valley Farm")
    qr = label.get_by_role("img", name=re.compile("^QR code"))
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR image did not load"
    src = qr.get_attribute("src")
    fetched = farmer.request.get(src)
    assert fetched.ok, f"GET {src} answered {fetched.status}"
    assert fetched.headers["content-type"].startswith(("image/svg+xml", "image/png"))
    scanned = decode_qr(qr.screenshot())  # the image as the browser rendered it on the sheet
    assert scanned == expected_link
    expect(label).to_contain_text(f"Scan to trace · {expected_link}")
    farmer.emulate_media(media="print")
    shot(farmer, screenshots / "labels-print.png", full_page=False)
    farmer.emulate_media(media="screen")

    scanner = people.open(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    scanner.goto(scanned)
    expect(scanner.get_by_role("heading", level=1)).to_have_text("Romaine lettuce, whole heads")
    expect(scanner.locator(".hero .producer")).to_contain_text(f"by Green Valley Farm · lot {LOT}")
    expect(scanner.locator(".answer .overall")).to_contain_text("Verified journey")
    assert consumer_steps(scanner) == ["Harvested", "Cooled", "Packed"]

    # --- the farmer ships to the distributor ---------------------------------------------------------------------
    farmer.go_back()
    expect(farmer.get_by_role("heading", level=1)).to_contain_text(LOT)
    farmer.get_by_role("link", name="Ship to…").click()
    choose(farmer.get_by_label("Ship to"), "ColdChain Logistics")
    choose(kde(farmer, "From"), FARM_SITE)
    choose(kde(farmer, "To"), DC_SITE)
    kde(farmer, "Reference document type").fill("bill of lading")
    kde(farmer, "Reference document number").fill("BOL-GV-7001")
    kde(farmer, "Carrier").fill("ColdChain Logistics truck 12")
    farmer.get_by_role("button", name="Ship", exact=True).click()
    flash(farmer, f"Lot {LOT} shipped to ColdChain Logistics")
    expect(farmer.get_by_role("heading", name="Pending custody")).to_be_visible()
    expect(farmer.locator(".badge", has_text="in transit").first).to_be_visible()

    # --- the distributor accepts in the custody inbox ------------------------------------------------------------
    distributor = people.signed_in("distributor@demo.lotline")
    expect(distributor.get_by_text("1 lot offered to you.")).to_be_visible()
    distributor.get_by_role("navigation", name="Main").get_by_role("link", name="Custody inbox").click()
    expect(distributor.get_by_role("heading", level=1)).to_have_text("Custody inbox")
    offer = distributor.locator("section.card", has_text=LOT)
    expect(offer).to_contain_text("From Green Valley Farm")
    expect(offer).to_contain_text("750 kg")
    expect(offer).to_contain_text("BOL-GV-7001")
    shot(distributor, screenshots / "dashboard-distributor-inbox.png")
    offer.get_by_role("link", name="Receive…").click()
    expect(distributor.get_by_role("heading", level=1)).to_contain_text(f"Receive Romaine lettuce, whole heads · {LOT}")
    expect(kde(distributor, "Reference document number")).to_have_value("BOL-GV-7001")
    expect(kde(distributor, "To")).to_have_value(re.compile(r"^\d{13}$"))
    distributor.get_by_role("button", name="Receive lot").click()
    flash(distributor, f"Lot {LOT} received; your organisation now holds it.")
    expect(distributor.locator("dl.kv").first).to_contain_text("Held by")
    expect(distributor.locator("dl.kv").first).to_contain_text("ColdChain Logistics")

    # --- the inspector records a pass with a certificate --------------------------------------------------------
    certificate = tmp_path / f"lab-report-{LOT}.pdf"
    certificate.write_bytes(certificate_pdf(f"AgriCert Labs report {LOT}: PASS"))
    inspector = people.signed_in("inspector@demo.lotline")
    expect(inspector.get_by_role("heading", level=1)).to_have_text("Inspections")
    inspector.get_by_label(re.compile("^Find any lot")).fill(scanned)  # a scanned label opens the lot
    inspector.get_by_role("button", name="Find", exact=True).click()
    expect(inspector.get_by_role("heading", level=1)).to_contain_text(LOT)
    inspector.get_by_role("link", name="Record an inspection").click()
    expect(inspector.get_by_role("heading", level=1)).to_have_text("Record an inspection")
    kde(inspector, "Outcome").select_option("pass")
    kde(inspector, "Standard").fill("FDA BAM Ch. 4 (E. coli O157:H7)")
    kde(inspector, "Findings").fill(FINDINGS)
    choose(kde(inspector, "Location"), DC_SITE)
    inspector.get_by_label("Certificate or lab report").set_input_files(str(certificate))
    inspector.get_by_label("Internal notes").fill(INTERNAL_NOTE)
    inspector.get_by_role("button", name="Record inspection").click()
    flash(inspector, f"Inspection of lot {LOT} recorded.")
    documents = inspector.locator(
        "section.card", has=inspector.get_by_role("heading", name="Inspections and documents")
    )
    expect(documents).to_contain_text("pass")
    expect(documents.get_by_role("link", name=certificate.name)).to_be_visible()
    inspector.get_by_role("navigation", name="Main").get_by_role("link", name="Inspections").click()
    expect(inspector.locator("table", has_text=LOT)).to_contain_text(certificate.name)
    shot(inspector, screenshots / "dashboard-inspector.png")

    # --- the distributor ships to the retailer ------------------------------------------------------------------
    distributor.get_by_role("navigation", name="Main").get_by_role("link", name="My lots").click()
    distributor.get_by_role("link", name=LOT).click()
    distributor.get_by_role("link", name="Ship to…").click()
    choose(distributor.get_by_label("Ship to"), "Corner Market")
    choose(kde(distributor, "From"), DC_SITE)
    choose(kde(distributor, "To"), SHOP_SITE)
    kde(distributor, "Reference document type").fill("bill of lading")
    kde(distributor, "Reference document number").fill("BOL-CC-7002")
    distributor.get_by_role("button", name="Ship", exact=True).click()
    flash(distributor, f"Lot {LOT} shipped to Corner Market")

    # --- the retailer receives -----------------------------------------------------------------------------------
    shop = people.signed_in("shop@demo.lotline")
    expect(shop.get_by_text("1 lot offered to you.")).to_be_visible()
    shop.get_by_role("link", name="Open the custody inbox").click()
    offer = shop.locator("section.card", has_text=LOT)
    expect(offer).to_contain_text("From ColdChain Logistics")
    offer.get_by_role("link", name="Receive…").click()
    shop.get_by_role("button", name="Receive lot").click()
    flash(shop, f"Lot {LOT} received; your organisation now holds it.")
    shop.get_by_role("navigation", name="Main").get_by_role("link", name="My lots").click()
    row = shop.get_by_role("row").filter(has_text=LOT)
    expect(row).to_contain_text("you")
    expect(row).to_contain_text("active")
    shot(shop, screenshots / "dashboard-retailer.png")

    farmer.get_by_role("navigation", name="Main").get_by_role("link", name="My lots").click()
    expect(farmer.get_by_role("row").filter(has_text=LOT)).to_contain_text("Corner Market")
    shot(farmer, screenshots / "dashboard-farmer.png")
    distributor.get_by_role("navigation", name="Main").get_by_role("link", name="Custody inbox").click()
    expect(distributor.get_by_text("Nothing is waiting for you.")).to_be_visible()

    # --- the consumer, signed out, scans the pack: the whole journey, every step verified ------------------------
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        options = {"device_scale_factor": 2, "is_mobile": True, "has_touch": True} if name == "phone" else {}
        consumer = people.open(viewport=viewport, **options)
        consumer.goto(scanned)
        expect(consumer.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in")).to_be_visible()
        expect(consumer.get_by_role("heading", level=1)).to_have_text("Romaine lettuce, whole heads")
        expect(consumer.get_by_role("region", name=re.compile("Do not eat"))).to_have_count(0)  # no recall
        expect(consumer.locator(".verdict")).to_contain_text("Fine: no recall and no hold")
        overall = consumer.locator(".answer .overall")
        expect(overall).to_contain_text("Verified journey")
        expect(overall).to_contain_text("Every step below matches the tamper-evident ledger.")
        assert consumer_steps(consumer) == [
            "Harvested",
            "Cooled",
            "Packed",
            "Shipped",
            "Received",
            "Inspected",
            "Shipped",
            "Received",
        ]
        expect(consumer.locator(".answer")).to_contain_text(FARM_SITE)
        expect(consumer.locator(".journey")).not_to_contain_text("transaction")  # the chain is under "How we know"
        how = consumer.locator("details.how-we-know")
        how.locator("summary").click()
        steps = how.locator("ol.proofs > li")
        expect(steps).to_have_count(8)
        for index in range(steps.count()):
            step = steps.nth(index)
            expect(step.locator(".badge")).to_have_text("Verified on chain")
            expect(step.locator(".proof")).to_contain_text(re.compile(r"Block \d+ · transaction 0x[0-9a-f]+"))
        for who in ("Green Valley Farm", "ColdChain Logistics", "Corner Market", "AgriCert Labs"):
            expect(how.locator("ol.proofs")).to_contain_text(who)
        expect(how).to_contain_text("pass")
        expect(how).to_contain_text("AgriCert Labs")
        expect(how).to_contain_text(hashlib.sha256(certificate.read_bytes()).hexdigest())
        # Consortium and private fields never reach the public page.
        for secret in (INTERNAL_NOTE, FINDINGS, "Ian Inspector", "BOL-GV-7001", "BOL-CC-7002", "truck 12"):
            expect(consumer.get_by_text(secret)).to_have_count(0)
        shot(consumer, screenshots / f"consumer-journey-{name}.png")

    assert time.monotonic() - started < 120, "the journey took longer than two minutes"


# ------------------------------------------------------------------ the recall


def test_recall_reaches_a_salad_mix_lot(
    people: People, live_server: LiveServer, screenshots: Path, docs_screenshots: Path
) -> None:
    """The demo has already recalled its romaine lot GV-ROM-2611A (the README's scenario), so the regulator
    recalls the other farm lot in the salad mix, Sunrise Fields' baby spinach SF-SPN-2611B, from the regulator
    views; the consumer page of salad-mix lot FC-MIX-002 then shows the new recall at the top."""
    consumer = people.open()
    consumer.goto(MIX_PATH)
    banner = consumer.get_by_role("region", name="Do not eat: recalled")
    expect(banner).to_contain_text("Do not eat: recalled")
    expect(banner).to_contain_text("GV-ROM-2611A")  # the demo's recall, reached through the ingredient
    expect(banner).not_to_contain_text(SPINACH_LOT)

    regulator = people.signed_in("regulator@demo.lotline")
    expect(regulator.get_by_role("heading", level=1)).to_have_text("Regulator")
    recalls = regulator.locator("table", has=regulator.get_by_role("columnheader", name="Reason"))
    expect(recalls.get_by_role("row").filter(has_text="GV-ROM-2611A")).to_contain_text(
        "Listeria monocytogenes found in a retail sample"
    )
    regulator.get_by_label("Find a lot to trace or recall").fill(SPINACH_LOT)
    regulator.get_by_role("button", name="Find", exact=True).click()
    expect(regulator.get_by_role("heading", level=1)).to_have_text("Find a lot")
    regulator.get_by_role("link", name=SPINACH_LOT, exact=True).click()
    expect(regulator.get_by_role("heading", level=1)).to_contain_text(f"Baby spinach · {SPINACH_LOT}")
    regulator.get_by_role("link", name="Recall…").click()
    expect(regulator.get_by_role("heading", level=1)).to_contain_text(f"Recall Baby spinach · {SPINACH_LOT}")
    expect(regulator.locator("main")).to_contain_text("2 derived lots")
    kde(regulator, "Reason").fill(RECALL_REASON)
    choose(kde(regulator, "Recall class"), "Class I")
    kde(regulator, "Instructions to holders").fill(RECALL_INSTRUCTIONS)
    kde(regulator, "Contact").fill("recalls@foodsafety.example")
    regulator.get_by_role("button", name="Save draft").click()
    regulator.get_by_role("button", name="Review before issuing").click()
    regulator.get_by_label(re.compile("Type the lot code")).fill(SPINACH_LOT)
    regulator.get_by_role("button", name="Issue recall").click()
    flash(regulator, f"Lot {SPINACH_LOT} recalled on chain.")
    expect(regulator.get_by_role("heading", level=1)).to_contain_text(f"Recall of Baby spinach · {SPINACH_LOT}")
    for mix in ("FC-MIX-001", "FC-MIX-002"):
        expect(regulator.get_by_role("row").filter(has_text=mix)).to_contain_text("recalled")
    regulator.get_by_role("navigation", name="Main").get_by_role("link", name="Regulator").click()
    expect(recalls.get_by_role("row").filter(has_text=SPINACH_LOT)).to_contain_text(RECALL_REASON)
    shot(regulator, screenshots / "dashboard-regulator.png")

    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        options = {"device_scale_factor": 2, "is_mobile": True, "has_touch": True} if name == "phone" else {}
        page = people.open(viewport=viewport, **options)
        page.goto(MIX_PATH)
        banner = page.get_by_role("region", name="Do not eat: recalled")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Do not eat: recalled")
        expect(banner).to_contain_text("Class I recall of")
        expect(banner).to_contain_text(RECALL_REASON)
        expect(banner).to_contain_text(f"Made from Baby spinach lot {SPINACH_LOT}, which has been recalled.")
        expect(banner).to_contain_text(f"What to do: {RECALL_INSTRUCTIONS}")
        expect(banner).to_contain_text("GV-ROM-2611A")
        # The page's title first, then the banner straight under it, red, with nothing green near it.
        box, title = banner.bounding_box(), page.get_by_role("heading", level=1).bounding_box()
        assert box is not None and title is not None and title["y"] < box["y"]
        expect(page.locator(".answer")).not_to_contain_text("Verified")
        assert box["y"] < viewport["height"] / 2, "the recall banner is not near the top of the screen"
        red, green, blue = _rgb(banner.evaluate("el => getComputedStyle(el).backgroundColor"))
        assert red > 120 and red > 2 * green and red > 2 * blue, f"the recall banner is not red: {(red, green, blue)}"
        expect(page.get_by_role("heading", level=1)).to_have_text("Garden salad mix 250 g")
        viewport_shot = shot(page, screenshots / f"consumer-{name}.png", full_page=False)
        shot(page, screenshots / f"consumer-{name}-full.png")
        copy_screenshot(viewport_shot, docs_screenshots / f"consumer-{name}.png")


def _rgb(css: str) -> tuple[int, int, int]:
    numbers = [int(float(n)) for n in re.findall(r"[\d.]+", css)[:3]]
    assert len(numbers) == 3, f"not a colour: {css!r}"
    return numbers[0], numbers[1], numbers[2]
