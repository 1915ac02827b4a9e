"""The regulator's recall, walked in Chromium on a fresh demo (issue 12): draft -> review -> typed confirmation
-> issue; the shop, the distributor and the processor each find the notice in their inbox (the header badge
counts it) and in their e-mail (read back from a real SMTP server the test runs, aiosmtpd), and acknowledge;
the regulator's effectiveness view shows the figures; the recall is terminated.

The recall is of Sunrise Fields' baby spinach SF-SPN-2611B, which went into both salad-mix lots, so it reaches
the packer, the processor, the distributor and both shops. This module runs its own server on its own demo
instance: the journey module recalls the same lot on the shared one.

Screenshots (desktop and 390 x 844) of the review page, the inbox and the effectiveness view are left in
``test-artifacts/screenshots/recall-*.png``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    DEMO_PASSWORD,
    ROOT,
    SEED_TIMEOUT,
    LiveServer,
    _free_port,
    _server_env,
    _stop,
    _wait_healthy,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOT = "SF-SPN-2611B"
REASON = "Salmonella Newport in a retail sample of baby spinach"
INSTRUCTIONS = "Remove from sale, quarantine, and report the quantities you hold."
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
HOLDERS = {
    "shop@demo.lotline": ("Corner Market", {"Removed from sale": "900", "Destroyed": "100"}),
    "distributor@demo.lotline": (
        "ColdChain Logistics",
        {"Forwarded (already shipped on)": "1500", "Forwarded to whom": "Corner Market, City Grocer"},
    ),
    "processor@demo.lotline": ("FreshCut Salads", {"Still in stock (quarantined)": "900"}),
}


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


class Mailbox:
    """What the SMTP server received: (recipients, message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address: str, subject_part: str, timeout: float = 90) -> EmailMessage:
        """The first message to ``address`` whose subject holds ``subject_part``, waiting for the server's
        delivery thread to send it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for recipients, message in list(self.messages):
                if address in recipients and subject_part in str(message["Subject"]):
                    return message
            time.sleep(0.5)
        seen = [(r, str(m["Subject"])) for r, m in self.messages]
        raise AssertionError(f"no e-mail to {address} about {subject_part!r}; received: {seen}")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def server(browser: Any, mailbox: Mailbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("recall-walk-home")
    port = _free_port()
    env = _server_env(home, port) | {
        "LOTLINE_SMTP_HOST": "127.0.0.1",
        "LOTLINE_SMTP_PORT": str(mailbox.port),  # type: ignore[attr-defined]
        "LOTLINE_SMTP_TLS": "none",
        "LOTLINE_MAIL_FROM": "recalls@lotline.test",
    }
    seeded = subprocess.run(
        [sys.executable, "-m", "supply_chain.cli", "demo"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=SEED_TIMEOUT, check=False,
    )
    if seeded.returncode != 0:
        pytest.fail(f"lotline demo failed ({seeded.returncode}):\n{seeded.stdout}\n{seeded.stderr}")
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "supply_chain.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    live = LiveServer(f"http://127.0.0.1:{port}", home, log, process)
    try:
        _wait_healthy(live.url, process, log)
        yield live
    finally:
        _stop(process)


class Desk:
    def __init__(self, browser: Any, server: LiveServer) -> None:
        self.browser, self.server, self.contexts = browser, server, []

    def signed_in(self, email: str, viewport: dict[str, int] = DESKTOP, **options: Any) -> Any:
        context = self.browser.new_context(base_url=self.server.url, viewport=viewport, **options)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("status").filter(has_text="Signed in as")).to_be_visible()
        return page

    def phone(self, email: str) -> Any:
        return self.signed_in(email, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)


@pytest.fixture
def desk(browser: Any, server: LiveServer) -> Iterator[Desk]:
    d = Desk(browser, server)
    try:
        yield d
    finally:
        for context in d.contexts:
            context.close()


def shots(desk: Desk, email: str, path: str, name: str, screenshots: Path) -> None:
    """Desktop and phone screenshots of ``path`` as ``email`` sees it; the phone page must not scroll sideways."""
    for size, page in (("desktop", desk.signed_in(email)), ("phone", desk.phone(email))):
        page.goto(path)
        page.screenshot(path=str(screenshots / f"recall-{name}-{size}.png"), full_page=True)
        if size == "phone":
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= PHONE["width"], f"{name} is {wide} px wide on a 390 px phone"


def flash(page: Any, text: str) -> None:
    expect(page.get_by_role("status").filter(has_text=text)).to_be_visible()


def test_a_recall_from_draft_to_termination_reaches_and_hears_from_every_holder(
    desk: Desk, server: LiveServer, mailbox: Mailbox, screenshots: Path
) -> None:
    regulator = desk.signed_in("regulator@demo.lotline")
    # The demo's own recall already shows its effectiveness: City Grocer answered, the others not yet.
    regulator.get_by_role("navigation", name="Main").get_by_role("link", name="Regulator").click()
    regulator.get_by_role("row").filter(has_text="GV-ROM-2611A").get_by_role("link", name="effectiveness").click()
    expect(regulator.locator("main")).to_contain_text("holders acknowledged (1 of 6)")

    # Draft.
    regulator.goto(f"/lots/search?q={LOT}")
    regulator.get_by_role("link", name=LOT, exact=True).click()
    regulator.get_by_role("link", name="Recall…").click()
    expect(regulator.get_by_role("heading", level=1)).to_contain_text(f"Recall Baby spinach · {LOT}")
    regulator.get_by_label("Recall class").select_option("I")
    regulator.get_by_label("Depth").select_option("retail")
    regulator.get_by_label("Reason").fill(REASON)
    regulator.get_by_label("Instructions to holders").fill(INSTRUCTIONS)
    regulator.get_by_label("Contact").fill("recalls@foodsafety.example")
    regulator.get_by_role("button", name="Save draft").click()
    flash(regulator, f"Draft recall of lot {LOT} saved.")
    expect(regulator.get_by_role("heading", level=1)).to_contain_text("Draft: recall of")

    # Review: the notice, every affected lot and holder, before anything is written.
    regulator.get_by_role("button", name="Review before issuing").click()
    expect(regulator.get_by_role("heading", level=1)).to_contain_text("Review: recall of")
    main = regulator.locator("main")
    for text in (REASON, "FC-MIX-001", "FC-MIX-002", "Corner Market", "City Grocer", "ColdChain Logistics",
                 "FreshCut Salads", "Coastal Packing Co", "Effectiveness-check level A"):
        expect(main).to_contain_text(text)
    review_path = regulator.url.replace(server.url, "")
    shots(desk, "regulator@demo.lotline", review_path, "review", screenshots)

    # The typed confirmation: a wrong code is refused and names the field; then issue.
    regulator.get_by_label(re.compile("Type the lot code")).fill(LOT.lower())
    regulator.get_by_role("button", name="Issue recall").click()
    refusal = "Lot code, typed to confirm: type the lot code"
    expect(regulator.get_by_role("alert").filter(has_text=refusal)).to_be_visible()
    expect(regulator.get_by_label(re.compile("Type the lot code"))).to_have_attribute("aria-invalid", "true")
    regulator.get_by_label(re.compile("Type the lot code")).fill(LOT)
    regulator.get_by_role("button", name="Issue recall").click()
    flash(regulator, f"Lot {LOT} recalled on chain. 6 holders notified.")
    expect(regulator.get_by_role("heading", level=1)).to_contain_text(f"Recall of Baby spinach · {LOT}")
    recall_path = regulator.url.replace(server.url, "")
    shots(desk, "regulator@demo.lotline", recall_path, "page", screenshots)

    # Each holder: the notice came by e-mail, the badge counts it, the inbox shows it, the holder acknowledges.
    for email, (name, answers) in HOLDERS.items():
        mail = mailbox.to(email, f"Baby spinach lot {LOT}")
        assert mail["From"] == "recalls@lotline.test"
        body = mail.get_body(preferencelist=("plain",)).get_content()
        assert REASON in body and server.url in body, body
        holder = desk.signed_in(email)
        nav = holder.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name=re.compile(r"Notifications \d+"))).to_be_visible()
        nav.get_by_role("link", name=re.compile("Notifications")).click()
        item = holder.locator(".inbox-item").filter(has_text=f"Class I recall: Baby spinach lot {LOT}")
        expect(item).to_contain_text(REASON)
        if email == "shop@demo.lotline":
            shots(desk, email, "/notifications", "inbox", screenshots)
            holder.goto("/dashboard")
            expect(holder.locator(".recall-notice").filter(has_text=LOT)).to_contain_text("FC-MIX-001")
            holder.goto("/notifications")
        item.get_by_role("link", name="Open the recall notice").click()
        expect(holder.get_by_role("alert")).to_contain_text(INSTRUCTIONS)
        for label, value in answers.items():
            holder.get_by_label(label).fill(value)
        holder.get_by_label("Note").fill(f"Done by {name}.")
        holder.get_by_role("button", name="Acknowledge recall").click()
        flash(holder, f"{name}'s answer to the recall of lot {LOT} is recorded.")

    # The effectiveness view: 3 of 6 holders, the quantities they accounted for, who has not answered.
    regulator.goto(recall_path)
    regulator.get_by_role("link", name="Effectiveness view").click()
    main = regulator.locator("main")
    expect(main).to_contain_text("50%holders acknowledged (3 of 6)")
    expect(main).to_contain_text("check level (100%)")
    expect(main).to_contain_text("do not meet the level yet")
    missing = regulator.locator("h2", has_text="Not answered (3)")
    expect(missing).to_be_visible()
    for name in ("City Grocer", "Coastal Packing Co", "Sunrise Fields"):
        expect(main.locator("ul li", has_text=name)).to_be_visible()
    expect(regulator.get_by_role("row", name=re.compile(r"^Corner Market"))).to_contain_text("1000 kg")
    shots(desk, "regulator@demo.lotline", regulator.url.replace(server.url, ""), "effectiveness", screenshots)
    regulator.get_by_role("button", name="Send reminder").click()
    flash(regulator, "Reminder sent to City Grocer, Coastal Packing Co, Sunrise Fields.")

    # Terminate.
    regulator.goto(recall_path)
    regulator.get_by_label("Reason for termination").fill("All affected product recovered or destroyed.")
    regulator.get_by_role("button", name="Terminate recall").click()
    flash(regulator, f"The recall of lot {LOT} is terminated")
    expect(regulator.locator(".recall-stage .badge")).to_have_text("terminated")
    expect(regulator.get_by_role("button", name="Publish update")).to_have_count(0)
    # The end is on chain: a confirmed recall-ended event on the lot, which stays recalled and verified.
    expect(regulator.locator(".proof")).to_contain_text("recall-ended event")
    expect(regulator.locator(".proof .termination-state")).to_have_text("confirmed")
    regulator.goto(f"/lots/search?q={LOT}")
    regulator.get_by_role("link", name=LOT, exact=True).click()
    public_link = regulator.locator("dt", has_text="Public page").locator("xpath=following-sibling::dd[1]/a")
    regulator.goto(public_link.get_attribute("href") or "")
    banner = regulator.locator(".recall-banner")
    expect(banner).to_contain_text("Do not eat: recalled")
    expect(banner.locator(".recall-ended")).to_contain_text("All affected product recovered or destroyed.")
    expect(regulator.locator(".how-we-know .overall")).to_contain_text("Verified journey")  # folded: no green up top
    expect(regulator.locator("section.journey ol.steps > li").filter(has_text="Recall ended")).to_have_count(1)
    shop = desk.signed_in("shop@demo.lotline")
    shop.goto("/notifications")
    expect(shop.locator(".inbox-item").first).to_contain_text(f"Recall of Baby spinach lot {LOT} terminated")
