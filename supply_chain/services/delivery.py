"""Outbound delivery of notifications: e-mail through an SMTP server and signed webhooks, with retries and a log.

``enqueue`` is the one entry point for the rest of Lotline (the in-app ``notify`` calls it): it writes outbox
rows (``Delivery``) in the caller's transaction and sends nothing, so a notice is committed with the change it
tells about, never delays or breaks the request, and is not lost in a crash. After the commit a worker sends
the rows: ``DeliveryWorker`` (a thread of ``lotline serve``, woken by each commit that enqueued something and
every ``LOTLINE_DELIVERY_POLL_SECONDS``) or ``lotline deliveries run``. A worker claims a row with a lease
(one atomic UPDATE, as capture jobs are claimed), so two processes never send the same row; a row whose lease
passed (its worker died mid-send) is taken over. Every try is logged (``DeliveryAttempt``); a failed try is
retried after ``RETRY_DELAYS`` (30 s, 2 min, 10 min, 1 h, 6 h), then the delivery is ``failed``.

- E-mail goes to the organisation's notification addresses (``notification_email``), or, when it has none,
  to its active users. Without ``LOTLINE_SMTP_HOST`` the row is marked ``not_configured`` (shown, not lost).
- Webhooks are POSTed as JSON to each active endpoint with ``Lotline-Event``, ``Lotline-Delivery`` and
  ``Lotline-Signature`` (``domain.delivery``); a 2xx answer is delivered. The host is resolved at each try
  and every address checked (no loopback, private or link-local address unless
  ``LOTLINE_WEBHOOK_ALLOW_PRIVATE``); the connection goes to the checked address, and redirects are not
  followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import secrets
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import selectinload

from supply_chain.domain import delivery as rules
from supply_chain.domain.errors import Conflict, InvalidInput, LotlineError, NotFound
from supply_chain.domain.text import check_text
from supply_chain.services import language
from supply_chain.services.runtime import Ctx, Runtime, Settings
from supply_chain.store.models import Delivery, DeliveryAttempt, EpcisSubscription, Organisation, WebhookEndpoint

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

LEASE = timedelta(minutes=2)
"""How long a worker holds a row it is sending (longer than the SMTP and HTTP timeouts together)."""
SECRET_PREFIX = "whsec_"
MAX_ENDPOINTS = 10
"""Webhook endpoints per organisation."""
ANSWER_KEPT = 300
"""Characters of a refusing endpoint's answer kept in the log."""
TOPIC_MAX = 100
SUBJECT_MAX = 300
USER_AGENT = "Lotline-Webhooks/1"

_workers: dict[int, DeliveryWorker] = {}
"""The running worker of each runtime (by ``id``), woken after a commit that enqueued deliveries."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ where notices go


def email_recipients(org: Organisation) -> list[str]:
    """The organisation's notification addresses, or its active users' e-mail addresses when it set none."""
    listed = rules.parse_emails(org.notification_email or "")
    return listed or [user.email for user in org.users if user.is_active]


def set_notification_email(ctx: Ctx, org: Organisation, value: str) -> list[str]:
    """Set the organisation's notification addresses (comma-separated; empty: its users); InvalidInput naming
    ``notification_email`` for an address that is not one."""
    addresses = rules.parse_emails(value)
    org.notification_email = ", ".join(addresses) or None
    ctx.session.flush()
    return addresses


def check_webhook_url(ctx: Ctx, url: object) -> str:
    return rules.check_webhook_url(url, allow_private=ctx.settings.webhook_allow_private)


def create_endpoint(ctx: Ctx, org: Organisation, url: object, *, active: bool = True) -> tuple[WebhookEndpoint, str]:
    """Register a webhook endpoint; returns it and its signing secret, which is shown this once (the store
    keeps it sealed under the KEK)."""
    checked = check_webhook_url(ctx, url)
    count = len(list_endpoints(ctx, org))
    if count >= MAX_ENDPOINTS:
        raise Conflict(
            f"{org.name} has {count} webhook endpoints, the most allowed; delete one first",
            field="url",
            code="too_many_webhooks",
        )
    plain = SECRET_PREFIX + secrets.token_urlsafe(32)
    sealed, kek_id = ctx.runtime.keyring.seal_secret(plain)
    endpoint = WebhookEndpoint(
        organisation_id=org.id, url=checked, sealed_secret=sealed, key_encryption_id=kek_id, active=bool(active)
    )
    ctx.session.add(endpoint)
    ctx.session.flush()
    return endpoint, plain


def list_endpoints(ctx: Ctx, org: Organisation) -> list[WebhookEndpoint]:
    return list(
        ctx.session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.organisation_id == org.id).order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(ctx: Ctx, org: Organisation, endpoint_id: int) -> WebhookEndpoint:
    """One of the organisation's endpoints; NotFound for another organisation's (ids cannot be probed)."""
    endpoint = ctx.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.organisation_id != org.id:
        raise NotFound(f"no webhook endpoint {endpoint_id} of {org.name}", field="webhook_id", code="unknown_webhook")
    return endpoint


def set_active(ctx: Ctx, org: Organisation, endpoint_id: int, active: bool) -> WebhookEndpoint:
    """Switch an endpoint on or off; switched off, its waiting deliveries are cancelled."""
    endpoint = get_endpoint(ctx, org, endpoint_id)
    endpoint.active = bool(active)
    if not endpoint.active:
        _cancel_waiting(ctx, endpoint, "the endpoint was deactivated")
    ctx.session.flush()
    return endpoint


def delete_endpoint(ctx: Ctx, org: Organisation, endpoint_id: int) -> WebhookEndpoint:
    """Remove an endpoint; its waiting deliveries are cancelled and its log kept (with the URL)."""
    endpoint = get_endpoint(ctx, org, endpoint_id)
    _cancel_waiting(ctx, endpoint, "the endpoint was deleted")
    ctx.session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id)
        .values(endpoint_id=None)
        .execution_options(synchronize_session=False)
    )
    ctx.session.delete(endpoint)
    ctx.session.flush()
    return endpoint


def _cancel_waiting(ctx: Ctx, endpoint: WebhookEndpoint, why: str) -> None:
    ctx.session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint.id, Delivery.status.in_(("pending", "sending")))
        .values(status="cancelled", next_attempt_at=None, lease_until=None, lease_token=None, last_error=why)
        .execution_options(synchronize_session=False)
    )


# ------------------------------------------------------------------ enqueueing


def enqueue(
    ctx: Ctx,
    org: Organisation,
    *,
    topic: str,
    subject: str,
    text: str,
    data: dict[str, Any] | None = None,
    link: str | None = None,
    channels: tuple[str, ...] = ("email", "webhook"),
    endpoint: WebhookEndpoint | None = None,
) -> list[Delivery]:
    """Write the deliveries of one notice to ``org`` in the caller's transaction: an e-mail and one webhook
    call per active endpoint (or only to ``endpoint``). Nothing is sent here; a worker sends them after the
    commit. ``link`` is a path of this installation (``/recalls/7``) or an absolute URL."""
    topic = check_text((topic or "").strip(), "topic")
    subject = check_text((subject or "").strip(), "subject")
    text = check_text(text or "", "text", multiline=True)
    if not topic or len(topic) > TOPIC_MAX:
        raise InvalidInput(f"topic must be 1-{TOPIC_MAX} characters", field="topic")
    if not subject or len(subject) > SUBJECT_MAX:
        raise InvalidInput(f"subject must be 1-{SUBJECT_MAX} characters", field="subject")
    now = utcnow()
    common = {
        "organisation_id": org.id,
        "topic": topic,
        "subject": subject,
        "text": text,
        "link": link or None,
        "data": json.loads(json.dumps(data or {}, default=str)),
        "created_at": now,
    }
    rows: list[Delivery] = []
    if "email" in channels and endpoint is None:
        recipients = email_recipients(org)
        row = Delivery(uid=str(uuid.uuid4()), channel="email", recipient=", ".join(recipients), **common)
        if recipients:
            row.status, row.next_attempt_at = "pending", now
        else:
            row.status = "not_configured"
            row.last_error = f"{org.name} has no notification e-mail address and no active user"
        rows.append(row)
    if "webhook" in channels:
        endpoints = [endpoint] if endpoint is not None else [e for e in list_endpoints(ctx, org) if e.active]
        rows += [
            Delivery(
                uid=str(uuid.uuid4()),
                channel="webhook",
                endpoint_id=e.id,
                recipient=e.url,
                status="pending",
                next_attempt_at=now,
                **common,
            )
            for e in endpoints
        ]
    ctx.session.add_all(rows)
    ctx.session.flush()
    if rows:
        _wake_after_commit(ctx)
    return rows


SUBSCRIPTION_TOPIC = "epcis.query"
"""The topic of an EPCIS query subscription's deliveries: their body is the query document itself."""
SUBSCRIPTION_SIGNATURE_HEADER = "GS1-Signature"


def enqueue_subscription(ctx: Ctx, org: Organisation, *, url: str, subject: str, data: dict[str, Any]) -> Delivery:
    """Write one webhook delivery of an EPCIS query subscription (``data``: ``subscription``, its id, and
    ``document``, the EPCIS query document to POST as it is) in the caller's transaction. It is sent, retried
    and logged like any webhook delivery; the URL is checked again at each try."""
    now = utcnow()
    row = Delivery(
        uid=str(uuid.uuid4()),
        organisation_id=org.id,
        channel="webhook",
        endpoint_id=None,
        recipient=url,
        topic=SUBSCRIPTION_TOPIC,
        subject=check_text(subject, "subject")[:SUBJECT_MAX],
        text="",
        link=None,
        data=json.loads(json.dumps(data, default=str)),
        status="pending",
        next_attempt_at=now,
        created_at=now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    _wake_after_commit(ctx)
    return row


def subscription_request(row: Delivery, token: str | None, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body (the EPCIS query document) and headers of one try of a subscription delivery; signed in
    ``GS1-Signature`` (as ``Lotline-Signature`` is: ``t=...,v1=HMAC-SHA256``) under the client's
    ``signatureToken`` when it gave one."""
    body = json.dumps(row.data["document"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        rules.EVENT_HEADER: row.topic,
        rules.DELIVERY_HEADER: row.uid,
    }
    if token:
        headers[SUBSCRIPTION_SIGNATURE_HEADER] = rules.sign(token, int(now.timestamp()), body)
    return body, headers


def ping(ctx: Ctx, org: Organisation, endpoint_id: int) -> Delivery:
    """A test delivery (topic ``ping``) to one endpoint, to check the receiver and its signature check."""
    endpoint = get_endpoint(ctx, org, endpoint_id)
    (row,) = enqueue(
        ctx,
        org,
        topic="ping",
        subject="Lotline webhook test",
        text=f"A test delivery to {endpoint.url} for {org.name}.",
        data={"endpoint_id": endpoint.id},
        channels=("webhook",),
        endpoint=endpoint,
    )
    return row


def _wake_after_commit(ctx: Ctx) -> None:
    """Wake this runtime's worker once the caller's transaction has committed (never before: the rows are
    not visible to it until then)."""
    session = ctx.session
    if session.info.get("lotline_wake_delivery"):
        return
    session.info["lotline_wake_delivery"] = True
    runtime_id = id(ctx.runtime)

    def _after_commit(committed: Any) -> None:
        committed.info.pop("lotline_wake_delivery", None)
        worker = _workers.get(runtime_id)
        if worker is not None:
            worker.wake()

    event.listen(session, "after_commit", _after_commit, once=True)


# ------------------------------------------------------------------ reading the log


def log_for(ctx: Ctx, org: Organisation, limit: int = 50) -> list[Delivery]:
    """The organisation's latest deliveries with their attempts, newest first."""
    return list(
        ctx.session.scalars(
            select(Delivery)
            .where(Delivery.organisation_id == org.id)
            .options(selectinload(Delivery.attempt_log))
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
    )


def payload(row: Delivery, settings: Settings) -> dict[str, Any]:
    """The JSON a webhook receives (documented in docs/notifications.md)."""
    return {
        "id": row.uid,
        "topic": row.topic,
        "created_at": row.created_at.isoformat(),
        "organisation": {"id": row.organisation_id, "name": row.organisation.name},
        "subject": row.subject,
        "text": row.text,
        "link": absolute_link(row.link, settings),
        "data": row.data,
    }


def absolute_link(link: str | None, settings: Settings) -> str | None:
    if not link:
        return None
    return link if "://" in link else settings.public_url + "/" + link.lstrip("/")


# ------------------------------------------------------------------ sending


@dataclass
class Outcome:
    """What one try gave: delivered or not, the HTTP status or SMTP reply code, the error, and whether
    trying again cannot help (a permanent SMTP refusal)."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False


def email_message(row: Delivery, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{row.uid}@lotline>"
    message["Auto-Submitted"] = "auto-generated"
    message[rules.EVENT_HEADER] = row.topic
    message[rules.DELIVERY_HEADER] = row.uid
    lang = language.org_language(row.organisation)
    _ = language.gettext_for(lang)
    body = row.text.rstrip() + "\n"
    link = absolute_link(row.link, settings)
    if link:
        body += "\n" + _("Open in Lotline: %(link)s", link=link) + "\n"
    settings_page = settings.public_url + "/settings/notifications"
    body += "\n--\n" + _(
        "Sent by Lotline to %(org)s's notification address. Change it at %(url)s",
        org=row.organisation.name,
        url=settings_page,
    )
    message.set_content(body + "\n")
    message["Content-Language"] = language.CONTENT_LANGUAGE[lang]  # after set_content, which drops Content-*
    return message


def send_email(message: EmailMessage, settings: Settings) -> Outcome:
    """Hand ``message`` to the configured SMTP server. A 5xx refusal of every recipient or of the message is
    permanent; anything else (no answer, 4xx, a log-in or sender refused: settings an operator can fix) is
    tried again."""
    context = ssl.create_default_context()
    try:
        if settings.smtp_tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host or "", settings.smtp_port, timeout=settings.smtp_timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=settings.smtp_timeout)
        with smtp:
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=context)
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        refusals = "; ".join(f"{to}: {code} {_text(reply)}" for to, (code, reply) in exc.recipients.items())
        return Outcome(
            False, codes[0] if codes else None, f"recipients refused: {refusals}", all(c >= 500 for c in codes)
        )
    except smtplib.SMTPDataError as exc:  # the message itself refused
        return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}", exc.smtp_code >= 500)
    except smtplib.SMTPResponseException as exc:  # log-in or sender refused: this installation's settings, retried
        return Outcome(False, exc.smtp_code, f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}")
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(
            False, None, f"SMTP server {settings.smtp_host}:{settings.smtp_port}: {type(exc).__name__}: {exc}"
        )
    if refused:
        partial = "; ".join(f"{to}: {code} {_text(reply)}" for to, (code, reply) in refused.items())
        return Outcome(True, 250, f"accepted, but some recipients refused: {partial}")
    return Outcome(True, 250)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand (the name is not resolved again)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to an address checked beforehand; the certificate is checked against the name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_webhook(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> Outcome:
    """POST ``body`` to ``url`` once: resolve, check every address, connect to a checked one, no redirects."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return Outcome(False, None, f"cannot resolve {host}: {exc}")
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        return Outcome(False, None, f"{host} has no address")
    if not settings.webhook_allow_private:
        for address in addresses:
            refusal = rules.address_refusal(address)
            if refusal:
                return Outcome(False, None, f"refused: {host} resolves to {refusal} (LOTLINE_WEBHOOK_ALLOW_PRIVATE)")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection_class = _PinnedHTTPS if https else _PinnedHTTP
    connection = connection_class(host, port, str(addresses[0]), settings.webhook_timeout)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(ANSWER_KEPT + 1).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    if 200 <= response.status < 300:
        return Outcome(True, response.status)
    kept = " ".join(answer.split())[:ANSWER_KEPT]
    return Outcome(False, response.status, f"HTTP {response.status} {response.reason}" + (f": {kept}" if kept else ""))


def webhook_request(row: Delivery, secret: str, settings: Settings, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one try of a webhook delivery, signed at ``now``."""
    body = json.dumps(payload(row, settings), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        rules.EVENT_HEADER: row.topic,
        rules.DELIVERY_HEADER: row.uid,
        rules.SIGNATURE_HEADER: rules.sign(secret, int(now.timestamp()), body),
    }
    return body, headers


# ------------------------------------------------------------------ the worker


def due(ctx: Ctx, now: datetime, limit: int = 100) -> list[int]:
    """Deliveries a worker may take at ``now``: pending ones whose time has come, and those whose worker's
    lease has passed (it died mid-send), oldest first."""
    return list(
        ctx.session.scalars(
            select(Delivery.id)
            .where(
                or_(
                    and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                    and_(Delivery.status == "sending", Delivery.lease_until < now),
                )
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
    )


def claim(ctx: Ctx, delivery_id: int, now: datetime) -> str | None:
    """Take a due delivery with a lease (one atomic UPDATE); its lease token, or None when another worker
    has it."""
    token = secrets.token_hex(16)
    result = ctx.session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            or_(
                and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                and_(Delivery.status == "sending", Delivery.lease_until < now),
            ),
        )
        .values(status="sending", lease_until=now + LEASE, lease_token=token)
        .execution_options(synchronize_session=False)
    )
    return token if getattr(result, "rowcount", 0) == 1 else None


def attempt(runtime: Runtime, delivery_id: int, token: str, clock: Clock = utcnow) -> str:
    """Try a claimed delivery once (the send happens outside any transaction), then log the try and set
    the row's status: delivered, pending again (with the next time), failed or not configured."""
    settings = runtime.settings
    send: Callable[[], Outcome] | None = None
    try:
        with runtime.ctx() as ctx:
            row = ctx.session.get(Delivery, delivery_id)
            if row is None or row.lease_token != token:
                return "taken"
            if row.channel == "email":
                if not settings.smtp_host:
                    return _finish_unsent(
                        row, "not_configured", "e-mail is not configured: LOTLINE_SMTP_HOST is not set"
                    )
                send = _bind_email(email_message(row, settings), settings)
            elif row.endpoint_id is None and row.topic == SUBSCRIPTION_TOPIC:
                uid = (row.data or {}).get("subscription")
                sub = ctx.session.scalars(select(EpcisSubscription).where(EpcisSubscription.uid == uid)).first()
                if sub is None:
                    return _finish_unsent(row, "cancelled", "the subscription was deleted")
                signing = (
                    runtime.keyring.open_secret(sub.sealed_token, sub.key_encryption_id or "")
                    if sub.sealed_token
                    else None
                )
                send = _bind_webhook(row.recipient, *subscription_request(row, signing, clock()), settings)
            else:
                endpoint = row.endpoint
                if endpoint is None or not endpoint.active:
                    return _finish_unsent(row, "cancelled", "the endpoint was deleted or deactivated")
                secret = runtime.keyring.open_secret(endpoint.sealed_secret, endpoint.key_encryption_id)
                send = _bind_webhook(endpoint.url, *webhook_request(row, secret, settings, clock()), settings)
    except LotlineError as exc:  # e.g. the secret is under a KEK this process does not have
        return _record(runtime, delivery_id, token, Outcome(False, None, f"not sent: {exc.message}"), clock())
    assert send is not None
    try:
        outcome = send()
    except Exception as exc:  # noqa: BLE001 - logged on the delivery and tried again
        log.exception("delivery %s: unexpected error", delivery_id)
        outcome = Outcome(False, None, f"{type(exc).__name__}: {exc}")
    return _record(runtime, delivery_id, token, outcome, clock())


def _bind_webhook(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> Callable[[], Outcome]:
    return lambda: post_webhook(url, body, headers, settings)


def _bind_email(message: EmailMessage, settings: Settings) -> Callable[[], Outcome]:
    return lambda: send_email(message, settings)


def _finish_unsent(row: Delivery, status: str, why: str) -> str:
    row.status, row.last_error = status, why
    row.next_attempt_at = row.lease_until = row.lease_token = None
    return status


def _record(runtime: Runtime, delivery_id: int, token: str, outcome: Outcome, now: datetime) -> str:
    with runtime.ctx() as ctx:
        row = ctx.session.get(Delivery, delivery_id)
        if row is None or row.lease_token != token:
            log.warning("delivery %s: lease lost while sending; the try is not recorded", delivery_id)
            return "taken"
        row.attempts += 1
        delay = None if outcome.ok or outcome.permanent else rules.retry_delay(row.attempts)
        next_at = now + delay if delay is not None else None
        ctx.session.add(
            DeliveryAttempt(
                delivery_id=row.id,
                number=row.attempts,
                attempted_at=now,
                ok=outcome.ok,
                status_code=outcome.status_code,
                error=outcome.error,
                next_attempt_at=next_at,
            )
        )
        row.lease_until = row.lease_token = None
        row.next_attempt_at = next_at
        if outcome.ok:
            row.status, row.delivered_at, row.last_error = "delivered", now, outcome.error
        elif next_at is not None:
            row.status, row.last_error = "pending", outcome.error
        else:
            row.status = "failed"
            why = "refused for good" if outcome.permanent else f"gave up after {row.attempts} attempts"
            row.last_error = f"{why}: {outcome.error}"
        return row.status


def run_due(runtime: Runtime, *, clock: Clock = utcnow, stop: Callable[[], bool] = lambda: False) -> dict[int, str]:
    """Send every delivery due now, one after the other; returns each one's status after its try."""
    outcome: dict[int, str] = {}
    while not stop():
        now = clock()
        with runtime.ctx() as ctx:
            ids = [i for i in due(ctx, now) if i not in outcome]
        if not ids:
            break
        for delivery_id in ids:
            if stop():
                break
            with runtime.ctx() as ctx:
                token = claim(ctx, delivery_id, clock())
            outcome[delivery_id] = "taken" if token is None else attempt(runtime, delivery_id, token, clock)
    return outcome


def next_due(runtime: Runtime) -> datetime | None:
    """When the earliest waiting delivery is due (None: nothing waits)."""
    with runtime.ctx() as ctx:
        return ctx.session.scalars(
            select(Delivery.next_attempt_at)
            .where(Delivery.status == "pending")
            .order_by(Delivery.next_attempt_at)
            .limit(1)
        ).first()


class DeliveryWorker(threading.Thread):
    """While the server runs: send due deliveries, woken after each commit that enqueued some, and at least
    every ``poll_seconds`` (retries fall due, other processes enqueue)."""

    def __init__(self, runtime: Runtime, poll_seconds: float = 5.0, *, clock: Clock = utcnow) -> None:
        super().__init__(name="lotline-deliveries", daemon=True)
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._wake = threading.Event()
        self._stop_event = threading.Event()
        self.idle = threading.Event()
        """Set while the worker waits with nothing due (tests wait on it)."""

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        _workers[id(self.runtime)] = self
        try:
            while not self._stop_event.is_set():
                self.idle.clear()
                try:
                    run_due(self.runtime, clock=self.clock, stop=self._stop_event.is_set)
                except Exception:  # noqa: BLE001 - a background loop logs and carries on
                    log.exception("delivery pass failed")
                if not self._wake.is_set():
                    self.idle.set()
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        finally:
            if _workers.get(id(self.runtime)) is self:
                del _workers[id(self.runtime)]

    def stop(self) -> None:
        """Finish the try in progress and end."""
        self._stop_event.set()
        self._wake.set()


def run_forever(runtime: Runtime, poll_seconds: float, stop: Callable[[], bool] = lambda: False) -> None:
    """``lotline deliveries run`` without ``--once``: send due deliveries until interrupted."""
    while not stop():
        run_due(runtime, stop=stop)
        time.sleep(poll_seconds)
