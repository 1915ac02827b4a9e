"""Rules of outbound notification delivery (no I/O): the webhook signature, which URLs and e-mail addresses
are accepted, and the retry schedule. ``services.delivery`` sends; ``docs/notifications.md`` specifies the
signature for partners (its snippet is checked by a test against ``sign``).

Signature: ``Lotline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` where ``body`` is
the exact bytes of the request body and ``secret`` the endpoint's secret as UTF-8. Every attempt is signed
again with its own ``t``, so a receiver may refuse old timestamps (replays) without refusing retries.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from datetime import timedelta
from urllib.parse import urlsplit

from .errors import InvalidInput

EVENT_HEADER = "Lotline-Event"
DELIVERY_HEADER = "Lotline-Delivery"
SIGNATURE_HEADER = "Lotline-Signature"
SIGNATURE_VERSION = "v1"
SIGNATURE_TOLERANCE_SECONDS = 300
"""How old a signature's timestamp a receiver should accept (documented; Lotline signs at each attempt)."""

RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
"""The wait after the 1st, 2nd, ... failed attempt; after the last one the delivery is failed."""
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1

MAX_URL_LENGTH = 2000
MAX_ADDRESSES = 5
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


def retry_delay(attempts: int) -> timedelta | None:
    """The wait before the next attempt after ``attempts`` failed ones; None when no attempt is left."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]


# ------------------------------------------------------------------ signature


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Lotline-Signature`` header value of ``body`` sent at ``timestamp``."""
    return f"t={int(timestamp)},{SIGNATURE_VERSION}={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within ``tolerance`` seconds of ``now``."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get(SIGNATURE_VERSION, ""), signature(secret, timestamp, body))


# ------------------------------------------------------------------ where to send


def address_refusal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not be sent to this IP address (a server-side request forgery guard), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for test, what in (
        (address.is_loopback, "a loopback"),
        (address.is_link_local, "a link-local"),
        (address.is_private, "a private"),
        (address.is_multicast, "a multicast"),
        (address.is_reserved, "a reserved"),
        (address.is_unspecified, "an unspecified"),
        (not address.is_global, "a non-public"),
    ):
        if test:
            return f"{address} is {what} address"
    return None


def check_webhook_url(url: object, *, allow_private: bool, field: str = "url") -> str:
    """``url`` stripped, if Lotline may POST to it: http(s), a host, no user name or password, and (unless
    ``allow_private``) not a loopback, link-local, private or reserved address or a local host name. Names
    are resolved again, and their addresses checked the same way, at each delivery."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise InvalidInput("url is required: the https:// address Lotline posts notices to", field=field)
    if len(text) > MAX_URL_LENGTH:
        raise InvalidInput(f"url must be at most {MAX_URL_LENGTH} characters", field=field)
    if re.search(r"\s", text):
        raise InvalidInput("url must not contain spaces", field=field)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"url is not a valid address: {exc}", field=field) from exc
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url must start with https:// (or http://)", field=field, code="invalid_url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidInput("url must name a host, e.g. https://hooks.example.com/lotline", field=field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry a user name or password; the signature authenticates", field=field)
    if port == 0:
        raise InvalidInput("url has port 0", field=field)
    if not allow_private:
        if host in _LOCAL_NAMES or host.endswith(".localhost"):
            raise InvalidInput(
                f"url: {host} is this machine; webhooks go to partners' servers", field=field, code="url_not_allowed"
            )
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        refusal = address_refusal(address) if address is not None else None
        if refusal:
            raise InvalidInput(
                f"url: {refusal}; webhooks go to servers on the internet", field=field, code="url_not_allowed"
            )
    return text


def parse_emails(value: object, field: str = "notification_email") -> list[str]:
    """The e-mail addresses of a comma- (or space-) separated list, lower-cased, without repeats; at most
    ``MAX_ADDRESSES``. An empty list is allowed (it means: the organisation's users)."""
    text = value if isinstance(value, str) else ""
    found = [part.strip().lower() for part in re.split(r"[,;\s]+", text) if part.strip()]
    if len(found) > MAX_ADDRESSES:
        raise InvalidInput(f"{field}: at most {MAX_ADDRESSES} addresses", field=field)
    for address in found:
        if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(address):
            raise InvalidInput(
                f"{field}: {address[:80]!r} is not an e-mail address like name@example.org",
                field=field,
                code="invalid_email",
            )
    return list(dict.fromkeys(found))
