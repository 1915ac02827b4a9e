"""Outbound delivery of notifications (issue 12): e-mail through a real SMTP server (aiosmtpd, in process) and
signed webhooks to a real HTTP receiver (http.server, in a thread); nothing is mocked.

Organisations are stored directly (no chain is needed to notify), on SQLite and PostgreSQL. Time is a clock
the tests move forward, so retries fall due without sleeping.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner
from eth_account import Account
from sqlalchemy import func, select

from supply_chain.cli import main
from supply_chain.domain import delivery as rules
from supply_chain.domain.errors import InvalidInput
from supply_chain.services import delivery
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.store.models import Delivery, DeliveryAttempt, Organisation, User, WebhookEndpoint

DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


# ------------------------------------------------------------------ a real SMTP server


@dataclass
class Mailbox:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_login_server() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server that offers a log-in (user ``lotline``, password ``s3cret``) and refuses unknown
    recipients with 550."""

    class Checking(Mailbox):
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
            if address.endswith("@nowhere.example"):
                return "550 5.1.1 No such mailbox"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    mailbox = Checking()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (b"lotline", b"s3cret")
        mailbox.logins.append(ok)
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535 itself

    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,  # the test server has no certificate; production uses starttls or ssl
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


# ------------------------------------------------------------------ a real webhook receiver


@dataclass
class Receiver:
    """Answers ``fail_first`` requests with 500, then 204; records each request and whether its signature
    verified (by the documented procedure, with the endpoint's secret)."""

    secret: str = ""
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def _receiver_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            signed = rules.verify(receiver.secret, self.headers.get(rules.SIGNATURE_HEADER, ""), body, time.time())
            receiver.requests.append({"headers": dict(self.headers), "body": body, "signed": signed})
            failing = len(receiver.requests) <= receiver.fail_first
            self.send_response(500 if failing or not signed else 204)
            self.end_headers()
            if failing:
                self.wfile.write(b"receiver down for maintenance")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _receiver_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/lotline/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ the installation


class Clock:
    """Starts at the real time (make it after enqueueing: rows are due from when they are written)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_runtime(home: Path, db_url: str, **overrides: Any) -> Runtime:
    settings = Settings.from_env(
        env={}, home=home, database_url=db_url, secret_key="delivery-test-secret", public_url="https://lotline.test"
    )
    return Runtime(replace(settings, **overrides))


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path / "home", db_url, webhook_allow_private=True)
    try:
        yield rt
    finally:
        rt.close()


def add_org(runtime: Runtime, name: str, *, notification_email: str | None = None, users: tuple[str, ...] = ()) -> int:
    account = Account.create()
    encrypted_key, kek_id = runtime.keyring.seal(account)
    with runtime.ctx() as ctx:
        org = Organisation(
            name=name,
            roles=["retailer"],
            chain_address=account.address,
            encrypted_key=encrypted_key,
            key_encryption_id=kek_id,
            notification_email=notification_email,
        )
        ctx.session.add(org)
        ctx.session.flush()
        for email in users:
            ctx.session.add(User(organisation_id=org.id, email=email, display_name=email, password_hash="x"))
        return org.id


def notify(runtime: Runtime, org_id: int, **extra: Any) -> list[int]:
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, org_id)
        assert org is not None
        rows = delivery.enqueue(
            ctx,
            org,
            topic=extra.pop("topic", "recall.issued"),
            subject=extra.pop("subject", "Class I recall: Romaine lettuce lot GV-ROM-2611A"),
            text=extra.pop("text", "Remove every unit of lot GV-ROM-2611A from sale and tell us what you did."),
            data=extra.pop("data", {"recall_id": 7, "lots": ["00614141000012/GV-ROM-2611A"]}),
            link=extra.pop("link", "/recalls/7"),
            **extra,
        )
        return [r.id for r in rows]


def rows(runtime: Runtime, channel: str | None = None) -> list[Delivery]:
    with runtime.ctx() as ctx:
        statement = select(Delivery).order_by(Delivery.id)
        if channel:
            statement = statement.where(Delivery.channel == channel)
        found = list(ctx.session.scalars(statement))
        for row in found:
            _ = row.attempt_log  # loaded before the session closes
        ctx.session.expunge_all()
        return found


def add_endpoint(runtime: Runtime, org_id: int, url: str) -> tuple[int, str]:
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, org_id)
        assert org is not None
        endpoint, secret = delivery.create_endpoint(ctx, org, url)
        return endpoint.id, secret


# ------------------------------------------------------------------ e-mail


def test_a_notice_is_delivered_by_email_through_the_smtp_server_after_the_commit(
    runtime: Runtime, smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    runtime.settings = replace(
        runtime.settings, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none", mail_from="Lotline <n@lotline.test>"
    )
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example, QA@corner.example")
    (email_id,) = notify(runtime, shop)
    assert mailbox.messages == []  # enqueueing sends nothing

    assert delivery.run_due(runtime) == {email_id: "delivered"}
    ((recipients, message),) = mailbox.messages
    assert recipients == ["recalls@corner.example", "qa@corner.example"]
    assert message["Subject"] == "Class I recall: Romaine lettuce lot GV-ROM-2611A"
    assert message["From"] == "Lotline <n@lotline.test>"
    assert message["To"] == "recalls@corner.example, qa@corner.example"
    assert message["Lotline-Event"] == "recall.issued"
    body = message.get_payload(decode=True).decode()
    assert "Remove every unit of lot GV-ROM-2611A from sale" in body
    assert "Open in Lotline: https://lotline.test/recalls/7" in body
    (row,) = rows(runtime)
    assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None
    assert [(a.ok, a.status_code) for a in row.attempt_log] == [(True, 250)]
    assert delivery.run_due(runtime) == {}  # sent once


def test_email_is_written_in_the_language_the_organisations_users_chose(
    runtime: Runtime, smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    runtime.settings = replace(runtime.settings, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    shop = add_org(runtime, "Chaoshi", users=("boss@chaoshi.example", "clerk@chaoshi.example"))
    with runtime.ctx() as ctx:
        for user in ctx.session.scalars(select(User).where(User.organisation_id == shop)):
            user.language = "zh_Hans"
    english = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    notify(runtime, shop)
    notify(runtime, english)
    delivery.run_due(runtime)
    by_recipient = {recipients[0]: message for recipients, message in mailbox.messages}
    chinese = by_recipient["boss@chaoshi.example"]
    assert chinese["Content-Language"] == "zh-Hans"
    body = chinese.get_payload(decode=True).decode()
    assert "在 Lotline 中打开：https://lotline.test/recalls/7" in body
    assert "由 Lotline 发送至 Chaoshi 的通知地址" in body
    plain = by_recipient["recalls@corner.example"]
    assert plain["Content-Language"] == "en"
    assert "Open in Lotline: https://lotline.test/recalls/7" in plain.get_payload(decode=True).decode()


def test_without_a_notification_address_the_users_are_written_to(
    runtime: Runtime, smtp_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_server
    runtime.settings = replace(runtime.settings, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    shop = add_org(runtime, "City Grocer", users=("owner@grocer.example", "clerk@grocer.example"))
    notify(runtime, shop)
    delivery.run_due(runtime)
    ((recipients, _),) = mailbox.messages
    assert recipients == ["owner@grocer.example", "clerk@grocer.example"]


def test_a_notice_of_a_rolled_back_change_is_never_sent(runtime: Runtime) -> None:
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    with pytest.raises(RuntimeError), runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, shop)
        assert org is not None
        delivery.enqueue(ctx, org, topic="recall.issued", subject="s", text="t", data={}, link=None)
        raise RuntimeError("the business change failed")
    assert rows(runtime) == []


def test_without_an_smtp_server_email_is_marked_not_configured_not_dropped(runtime: Runtime) -> None:
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    (email_id,) = notify(runtime, shop)
    assert delivery.run_due(runtime) == {email_id: "not_configured"}
    (row,) = rows(runtime)
    assert row.status == "not_configured" and "LOTLINE_SMTP_HOST" in (row.last_error or "")
    nobody = add_org(runtime, "Empty Shop")
    notify(runtime, nobody)
    assert rows(runtime)[-1].status == "not_configured"
    assert "no notification e-mail address" in (rows(runtime)[-1].last_error or "")


def test_the_smtp_log_in_is_used_a_wrong_password_is_retried_and_a_refused_address_fails(
    runtime: Runtime, smtp_login_server: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp_login_server
    mail = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none", "smtp_user": "lotline"}
    runtime.settings = replace(runtime.settings, **mail, smtp_password="wrong")
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    (email_id,) = notify(runtime, shop)
    assert delivery.run_due(runtime) == {email_id: "pending"}  # an operator can fix the password: tried again
    ((attempt,),) = [r.attempt_log for r in rows(runtime)]
    assert attempt.status_code == 535 and "535" in (attempt.error or ""), attempt.error

    runtime.settings = replace(runtime.settings, smtp_password="s3cret")
    clock = Clock()
    clock.advance(timedelta(seconds=31))
    assert delivery.run_due(runtime, clock=clock) == {email_id: "delivered"}
    assert [recipients for recipients, _ in mailbox.messages] == [["recalls@corner.example"]]
    assert mailbox.logins[-1] is True and False in mailbox.logins  # (smtplib tries each mechanism)

    gone = add_org(runtime, "Closed Shop", notification_email="owner@nowhere.example")
    (refused_id,) = notify(runtime, gone)
    assert delivery.run_due(runtime, clock=clock) == {refused_id: "failed"}  # 550: no retry can help
    row = rows(runtime)[-1]
    assert row.attempts == 1 and "refused for good" in (row.last_error or "") and "550" in (row.last_error or "")


def test_an_unreachable_smtp_server_is_retried_with_the_error_logged(runtime: Runtime) -> None:
    runtime.settings = replace(runtime.settings, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_tls="none")
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    (email_id,) = notify(runtime, shop)
    clock = Clock()
    assert delivery.run_due(runtime, clock=clock) == {email_id: "pending"}
    ((attempt,),) = [r.attempt_log for r in rows(runtime)]
    assert not attempt.ok and "ConnectionRefusedError" in (attempt.error or "")
    assert attempt.next_attempt_at == clock.now + timedelta(seconds=30)


# ------------------------------------------------------------------ webhooks


def test_a_webhook_failing_twice_is_delivered_on_the_third_try_with_every_attempt_logged(
    runtime: Runtime, receiver: Receiver
) -> None:
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    _, receiver.secret = add_endpoint(runtime, shop, receiver.url)
    receiver.fail_first = 2
    ids = notify(runtime, shop)
    clock = Clock()
    start = clock.now
    (hook_id,) = [r.id for r in rows(runtime, "webhook")]
    assert hook_id in ids

    assert delivery.run_due(runtime, clock=clock)[hook_id] == "pending"
    assert delivery.run_due(runtime, clock=clock) == {}  # not due again yet
    clock.advance(timedelta(seconds=31))
    assert delivery.run_due(runtime, clock=clock) == {hook_id: "pending"}
    clock.advance(timedelta(seconds=119))
    assert delivery.run_due(runtime, clock=clock) == {}
    clock.advance(timedelta(seconds=2))
    assert delivery.run_due(runtime, clock=clock) == {hook_id: "delivered"}

    assert [r["signed"] for r in receiver.requests] == [True, True, True]
    uid = receiver.requests[0]["headers"]["Lotline-Delivery"]
    assert {r["headers"]["Lotline-Delivery"] for r in receiver.requests} == {uid}
    assert {r["headers"]["Lotline-Event"] for r in receiver.requests} == {"recall.issued"}
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"
    sent = json.loads(receiver.requests[2]["body"])
    assert sent == {
        "id": uid,
        "topic": "recall.issued",
        "created_at": sent["created_at"],
        "organisation": {"id": shop, "name": "Corner Market"},
        "subject": "Class I recall: Romaine lettuce lot GV-ROM-2611A",
        "text": "Remove every unit of lot GV-ROM-2611A from sale and tell us what you did.",
        "link": "https://lotline.test/recalls/7",
        "data": {"recall_id": 7, "lots": ["00614141000012/GV-ROM-2611A"]},
    }
    (row,) = rows(runtime, "webhook")
    assert row.status == "delivered" and row.attempts == 3
    log = [(a.number, a.ok, a.status_code, a.next_attempt_at) for a in row.attempt_log]
    assert log == [
        (1, False, 500, start + timedelta(seconds=30)),
        (2, False, 500, start + timedelta(seconds=31 + 120)),
        (3, True, 204, None),
    ]
    assert "receiver down for maintenance" in (row.attempt_log[0].error or "")


def test_a_webhook_that_never_answers_2xx_fails_after_the_last_attempt(runtime: Runtime, receiver: Receiver) -> None:
    shop = add_org(runtime, "Corner Market")
    _, receiver.secret = add_endpoint(runtime, shop, receiver.url)
    receiver.fail_first = 100
    notify(runtime, shop, channels=("webhook",))
    clock = Clock()
    for delay in (timedelta(0), *rules.RETRY_DELAYS):
        clock.advance(delay)
        delivery.run_due(runtime, clock=clock)
    (row,) = rows(runtime)
    assert len(receiver.requests) == rules.MAX_ATTEMPTS == row.attempts
    assert row.status == "failed" and row.next_attempt_at is None
    assert row.last_error is not None and row.last_error.startswith(f"gave up after {rules.MAX_ATTEMPTS} attempts")
    clock.advance(timedelta(days=2))
    assert delivery.run_due(runtime, clock=clock) == {}


def test_webhooks_to_private_addresses_are_refused_when_registered_and_when_sent(
    runtime: Runtime, receiver: Receiver
) -> None:
    shop = add_org(runtime, "Corner Market")
    endpoint_id, receiver.secret = add_endpoint(runtime, shop, receiver.url.replace("127.0.0.1", "localhost"))
    runtime.settings = replace(runtime.settings, webhook_allow_private=False)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "https://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "ftp://files.example.com/hook",
        "https://user:pw@hooks.example.com/",
    ):
        with pytest.raises(InvalidInput) as refused, runtime.ctx() as ctx:
            org = ctx.session.get(Organisation, shop)
            assert org is not None
            delivery.create_endpoint(ctx, org, url)
        assert refused.value.field == "url", url
    with runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count(WebhookEndpoint.id))) == 1

    # registered while private addresses were allowed; the name resolves to loopback when it is sent
    notify(runtime, shop, channels=("webhook",))
    delivery.run_due(runtime)
    assert receiver.requests == []
    ((attempt,),) = [r.attempt_log for r in rows(runtime)]
    assert not attempt.ok and "is a loopback address" in (attempt.error or "")


def test_webhook_secrets_are_sealed_under_the_kek_and_follow_a_rotation(runtime: Runtime, receiver: Receiver) -> None:
    shop = add_org(runtime, "Corner Market")
    endpoint_id, secret = add_endpoint(runtime, shop, receiver.url)
    receiver.secret = secret
    assert secret.startswith("whsec_")
    with runtime.ctx() as ctx:
        endpoint = ctx.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert secret not in endpoint.sealed_secret and endpoint.key_encryption_id == runtime.keyring.kek_id
    runtime.keyring.rotate(runtime.sessions)
    with runtime.ctx() as ctx:
        endpoint = ctx.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.key_encryption_id == runtime.keyring.kek_id
        assert runtime.keyring.open_secret(endpoint.sealed_secret, endpoint.key_encryption_id) == secret
    notify(runtime, shop, channels=("webhook",))
    delivery.run_due(runtime)
    assert [r["signed"] for r in receiver.requests] == [True]


def test_a_secret_that_does_not_open_is_a_logged_failed_try_not_a_stuck_delivery(
    runtime: Runtime, receiver: Receiver
) -> None:
    shop = add_org(runtime, "Corner Market")
    endpoint_id, receiver.secret = add_endpoint(runtime, shop, receiver.url)
    with runtime.ctx() as ctx:
        endpoint = ctx.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        endpoint.key_encryption_id = "0" * 32  # sealed under a KEK this installation does not have
    notify(runtime, shop, channels=("webhook",))
    (hook_id,) = [r.id for r in rows(runtime)]
    assert delivery.run_due(runtime) == {hook_id: "pending"}
    ((attempt,),) = [r.attempt_log for r in rows(runtime)]
    assert not attempt.ok and (attempt.error or "").startswith("not sent:") and "LOTLINE_KEK" in attempt.error
    assert receiver.requests == []


def test_a_delivery_is_claimed_by_one_worker_and_a_dead_workers_lease_is_taken_over(runtime: Runtime) -> None:
    shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
    (email_id,) = notify(runtime, shop)
    now = datetime.now(UTC)
    with runtime.ctx() as ctx:
        first = delivery.claim(ctx, email_id, now)
    with runtime.ctx() as ctx:
        assert first is not None and delivery.claim(ctx, email_id, now) is None
        assert delivery.due(ctx, now) == []
    later = now + delivery.LEASE + timedelta(seconds=1)  # the first worker died mid-send
    with runtime.ctx() as ctx:
        assert delivery.due(ctx, later) == [email_id]
        second = delivery.claim(ctx, email_id, later)
    assert second is not None
    assert delivery.attempt(runtime, email_id, first) == "taken"  # the dead worker's token no longer counts
    assert delivery.attempt(runtime, email_id, second) == "not_configured"


def test_two_workers_sending_at_once_send_each_delivery_once(runtime: Runtime, receiver: Receiver) -> None:
    shop = add_org(runtime, "Corner Market")
    _, receiver.secret = add_endpoint(runtime, shop, receiver.url)
    for n in range(12):
        notify(runtime, shop, channels=("webhook",), subject=f"notice {n}")
    outcomes: list[dict[int, str]] = []
    workers = [threading.Thread(target=lambda: outcomes.append(delivery.run_due(runtime))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    sent = [r["headers"]["Lotline-Delivery"] for r in receiver.requests]
    assert len(sent) == len(set(sent)) == 12
    assert sorted(i for o in outcomes for i, status in o.items() if status == "delivered") == [
        r.id for r in rows(runtime)
    ]
    assert {r.status for r in rows(runtime)} == {"delivered"}


def test_deactivated_or_deleted_endpoints_get_nothing_more(runtime: Runtime, receiver: Receiver) -> None:
    shop = add_org(runtime, "Corner Market")
    endpoint_id, receiver.secret = add_endpoint(runtime, shop, receiver.url)
    notify(runtime, shop, channels=("webhook",))
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, shop)
        assert org is not None
        delivery.set_active(ctx, org, endpoint_id, False)
    assert notify(runtime, shop, channels=("webhook",)) == []  # no active endpoint
    delivery.run_due(runtime)
    assert receiver.requests == []
    assert [r.status for r in rows(runtime)] == ["cancelled"]
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, shop)
        assert org is not None
        delivery.delete_endpoint(ctx, org, endpoint_id)
    (row,) = rows(runtime)
    assert row.endpoint_id is None and row.recipient == receiver.url  # the log keeps where it was going
    with runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count(DeliveryAttempt.id))) == 0


def test_the_worker_thread_sends_right_after_the_commit(runtime: Runtime, receiver: Receiver) -> None:
    shop = add_org(runtime, "Corner Market")
    _, receiver.secret = add_endpoint(runtime, shop, receiver.url)
    worker = delivery.DeliveryWorker(runtime, poll_seconds=3600)  # only a wake-up can make it send
    worker.start()
    try:
        assert worker.idle.wait(30)
        notify(runtime, shop, channels=("webhook",))
        for _ in range(300):
            if rows(runtime)[0].status == "delivered":
                break
            time.sleep(0.1)
        assert rows(runtime)[0].status == "delivered"
    finally:
        worker.stop()
        worker.join(30)


# ------------------------------------------------------------------ the rules


def test_notification_addresses_are_checked_naming_the_field() -> None:
    assert rules.parse_emails(" A@x.example; b@y.example a@x.example ") == ["a@x.example", "b@y.example"]
    assert rules.parse_emails("") == []
    for bad in ("not-an-address", "a@b", "x@y.example, @z.example", ",".join(f"u{i}@x.example" for i in range(6))):
        with pytest.raises(InvalidInput) as refused:
            rules.parse_emails(bad)
        assert refused.value.field == "notification_email"


def test_the_retry_schedule_backs_off_then_stops() -> None:
    delays = [rules.retry_delay(n) for n in range(1, rules.MAX_ATTEMPTS + 1)]
    assert delays[:4] == [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1)]
    assert delays[-1] is None and all(a < b for a, b in zip(delays[:-2], delays[1:-1], strict=True))


def test_the_documented_verification_snippet_accepts_lotline_signatures_and_refuses_others() -> None:
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None, "docs/notifications.md has a python snippet"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 - our own documentation
    verify = namespace["verify_lotline_signature"]
    body = b'{"id":"d1","topic":"recall.issued"}'
    now = int(time.time())
    header = rules.sign("whsec_abc", now, body)
    assert verify(body, header, "whsec_abc")
    assert not verify(body + b" ", header, "whsec_abc")
    assert not verify(body, header, "whsec_other")
    assert not verify(body, rules.sign("whsec_abc", now - 3600, body), "whsec_abc")  # too old: a replay


# ------------------------------------------------------------------ the command line and the settings


def test_lotline_deliveries_run_once_and_list(
    db_url: str, tmp_path: Path, smtp_server: tuple[Mailbox, int], receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp_server
    home = tmp_path / "home"
    runtime = make_runtime(home, db_url, webhook_allow_private=True)
    try:
        shop = add_org(runtime, "Corner Market", notification_email="recalls@corner.example")
        _, receiver.secret = add_endpoint(runtime, shop, receiver.url)
        receiver.fail_first = 1
        notify(runtime, shop)
    finally:
        runtime.close()
    for name in ("LOTLINE_KEK", "LOTLINE_CHAIN_URL", "LOTLINE_SMTP_USER", "LOTLINE_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "LOTLINE_HOME": str(home),
        "LOTLINE_DATABASE_URL": db_url,
        "LOTLINE_SECRET_KEY": "delivery-test-secret",
        "LOTLINE_PUBLIC_URL": "https://lotline.test",
        "LOTLINE_SMTP_HOST": "127.0.0.1",
        "LOTLINE_SMTP_PORT": str(port),
        "LOTLINE_SMTP_TLS": "none",
        "LOTLINE_MAIL_FROM": "Recall desk <recalls@lotline.test>",
        "LOTLINE_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    assert "--once" in runner.invoke(main, ["deliveries", "run", "--help"]).output

    ran = runner.invoke(main, ["deliveries", "run", "--once"])
    assert ran.exit_code == 0, ran.output
    assert "delivered" in ran.output and "pending" in ran.output  # the e-mail; the webhook failed once
    assert mailbox.messages[0][1]["From"] == "Recall desk <recalls@lotline.test>"
    listed = runner.invoke(main, ["deliveries", "list"])
    assert listed.exit_code == 0
    lines = [line.split("\t") for line in listed.output.strip().splitlines()]
    assert [(line[2], line[5], line[6]) for line in lines] == [("webhook", "pending", "1"), ("email", "delivered", "1")]
    assert "HTTP 500" in lines[0][8]
    assert runner.invoke(main, ["deliveries", "run", "--once"]).output.strip() == "no delivery is due"


def test_mail_settings_come_from_the_environment_and_are_checked(tmp_path: Path) -> None:
    def settings(**env: str) -> Settings:
        return Settings.from_env(env=env, home=tmp_path / "home", secret_key="s")

    plain = settings()
    assert plain.smtp_host is None and plain.smtp_tls == "starttls" and plain.smtp_port == 587
    assert not plain.webhook_allow_private
    ssl_mode = settings(LOTLINE_SMTP_HOST="mail.example", LOTLINE_SMTP_TLS="SSL", LOTLINE_WEBHOOK_ALLOW_PRIVATE="1")
    assert (ssl_mode.smtp_host, ssl_mode.smtp_tls, ssl_mode.smtp_port) == ("mail.example", "ssl", 465)
    assert ssl_mode.webhook_allow_private
    assert settings(LOTLINE_SMTP_PORT="2525", LOTLINE_SMTP_TLS="none").smtp_port == 2525
    for env, name in (
        ({"LOTLINE_SMTP_TLS": "tls"}, "LOTLINE_SMTP_TLS"),
        ({"LOTLINE_SMTP_PORT": "99999"}, "LOTLINE_SMTP_PORT"),
        ({"LOTLINE_SMTP_PORT": "smtp"}, "LOTLINE_SMTP_PORT"),
    ):
        with pytest.raises(InvalidInput) as refused:
            settings(**env)
        assert refused.value.field == name
