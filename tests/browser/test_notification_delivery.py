"""Webhooks from the running server (issue 12): a retailer adds two endpoints on its notification settings page
(the secret shown once), sends each a test; ``lotline serve``'s delivery thread posts a signed request to the
receiver that answers and logs the refused connection of the other, with its next try; the page reads well on
a phone."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from supply_chain.domain import delivery as rules

from .test_journey import PHONE, People, expect, flash, people, shot  # noqa: F401  (people is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class _Received:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[str, _Received]]:
    received = _Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.requests.append((dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/partner/lotline", received
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_server_delivers_signed_webhooks_and_logs_failures(
    people: People,  # noqa: F811
    receiver: tuple[str, _Received],
    screenshots: Path,
) -> None:
    url, received = receiver
    down = f"http://127.0.0.1:{_closed_port()}/down"
    page = people.signed_in("grocer@demo.lotline")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Notification settings").click()
    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()

    page.get_by_label("Endpoint URL").fill(url)
    page.get_by_role("button", name="Add webhook").click()
    notice = page.get_by_role("status").filter(has_text="Webhook added")
    expect(notice).to_be_visible()
    secret = re.search(r"whsec_[A-Za-z0-9_\-]+", notice.inner_text()).group(0)
    page.get_by_label("Endpoint URL").fill(down)
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("status").filter(has_text="Webhook added")).to_be_visible()
    page.goto("/settings/notifications")
    assert secret not in page.content()  # shown once

    for target in (url, down):
        page.locator(".endpoint-list li", has_text=target).get_by_role("button", name="Send a test").click()
        flash(page, "test delivery")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not received.requests or "ConnectionRefusedError" not in page.content()):
        time.sleep(0.5)
        page.reload()
    ((headers, body),) = received.requests
    assert headers["Lotline-Event"] == "ping"
    assert rules.verify(secret, headers["Lotline-Signature"], body, time.time())
    log = page.locator(".delivery-log")
    expect(log.locator("li.card", has_text=url).first).to_contain_text("delivered")
    refused = log.locator("li.card", has_text=down).first
    expect(refused).to_contain_text("ConnectionRefusedError")
    expect(refused).to_contain_text("next try")

    phone = people.signed_in("grocer@demo.lotline", viewport=PHONE)
    phone.goto("/settings/notifications")
    expect(phone.locator(".delivery-log")).to_contain_text("delivered")
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the settings page is {overflow}px wider than a phone"
    shot(phone, screenshots / "notification-settings-phone.png")
    shot(page, screenshots / "notification-settings-desktop.png")
