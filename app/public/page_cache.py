"""The scan page's cache: rendered pages kept per server process under a key that names everything the page
depends on, and an ``ETag`` made from that key.

The key is read from the database on every request (``views.consumer_version``: the sum of the revisions of
the lot and its ancestors, which every event, hold, recall, recall end and verification moves, plus the
"checked ... ago" words and the maker's compliance line), so several server processes, each with its own
cache, all serve a recall on the very next request after it is indexed. Added to it: the format (HTML or
JSON), the page language and a fingerprint of the code, templates and translations this process runs (so
two processes running the same release agree on ETags, and a new release changes every one).

Pages for a signed-in viewer (whose header names them and carries a form token) or with a message waiting to
be shown are never cached: they are built each time and marked private.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Response, current_app

_ROOT = Path(__file__).resolve().parent.parent.parent
_SOURCES = ("app", "supply_chain")
_SUFFIXES = {".py", ".html", ".mo", ".po", ".json"}


def _fingerprint() -> str:
    """A digest of the code, templates and translations this process renders pages with, so that a new
    release changes every ETag (and two processes of one release agree on them)."""
    digest = hashlib.sha256()
    for source in _SOURCES:
        for path in sorted((_ROOT / source).rglob("*")):
            if path.suffix in _SUFFIXES and path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


RELEASE = _fingerprint()


@dataclass(frozen=True)
class Page:
    """A rendered answer: its body, content type and the headers that go with it."""

    body: bytes
    mimetype: str
    headers: tuple[tuple[str, str], ...] = ()

    def response(self) -> Response:
        response = Response(self.body, mimetype=self.mimetype)
        for name, value in self.headers:
            response.headers[name] = value
        return response


COMPLIANCE_SECONDS = 10.0
"""How long a process reuses a maker's compliance line (six counts over the maker's lots) before counting again.
The line summarises the maker's whole record, not this lot; what this lot and its ancestors show (recalls,
holds, events, verification) is never older than the request."""


class PageCache:
    """A bounded least-recently-used map from key to ``Page``, safe to share between a process's threads.
    ``size`` 0 keeps nothing. Also keeps each maker's compliance line for ``COMPLIANCE_SECONDS``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._lock = threading.Lock()
        self._lines: dict[int, tuple[float, dict[str, str]]] = {}
        self.hits = 0
        self.misses = 0

    def compliance(self, org_id: int, count: Callable[[], dict[str, str]]) -> dict[str, str]:
        """The compliance line of organisation ``org_id``: the one counted in the last ``COMPLIANCE_SECONDS``, else
        ``count()``."""
        now = time.monotonic()
        known = self._lines.get(org_id)
        if known is not None and now - known[0] < COMPLIANCE_SECONDS:
            return known[1]
        line = count()
        with self._lock:
            if len(self._lines) >= max(self.size, 1):
                self._lines.clear()
            self._lines[org_id] = (now, line)
        return line

    def get(self, key: str) -> Page | None:
        with self._lock:
            page = self._pages.get(key)
            if page is None:
                self.misses += 1
                return None
            self._pages.move_to_end(key)
            self.hits += 1
            return page

    def put(self, key: str, page: Page) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pages)


def cache() -> PageCache:
    """This app's scan page cache (created on first use, sized by ``LOTLINE_SCAN_PAGE_CACHE``)."""
    found = current_app.extensions.get("scan_page_cache")
    if found is None:
        size = current_app.extensions["lotline"].settings.scan_page_cache
        found = current_app.extensions.setdefault("scan_page_cache", PageCache(size))
    return found


def page_locale() -> str:
    """The language the page is rendered in: Flask-Babel's choice when it is set up, else English."""
    if "babel" not in current_app.extensions:
        return "en"
    from flask_babel import get_locale

    return str(get_locale() or "en")


def key_of(lot_pk: int, fmt: str, version: dict[str, Any]) -> str:
    """The cache key (and, hashed, the ETag) of one lot's page in one format and language."""
    compliance = version["compliance"]
    parts = (
        RELEASE,
        fmt,
        page_locale(),
        str(lot_pk),
        version["lineage"],
        version["verified_ago"] or "-",
        compliance["organisation"],
        compliance["summary"],
    )
    return "\x1f".join(parts)


def etag_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]
