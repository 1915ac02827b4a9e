"""Pagination cursors: opaque, signed, and valid only for the list that handed them out.

A cursor carries the key of the last item of a page and an HMAC-SHA256 (the app's secret key) over that key
and the list's path, so a value the API did not hand out - a guessed key, a cursor of another list, an
altered one - is ``400 invalid_cursor``, as docs/api.md promises, instead of silently starting elsewhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from flask import current_app, request

from supply_chain.domain.errors import InvalidInput

_SHAPE = re.compile(r"(\d{1,18})\.([0-9a-f]{32})")


def _signature(value: int) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"lotline-cursor-v2\n{request.path}\n{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def encode_cursor(value: int) -> str:
    """The cursor for "after ``value``" on this request's list."""
    return base64.urlsafe_b64encode(f"{value}.{_signature(value)}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The key a cursor of this list carries, None for no cursor; InvalidInput ``invalid_cursor`` for a cursor
    this list did not hand out."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    match = _SHAPE.fullmatch(text)
    if match is None or not hmac.compare_digest(match[2], _signature(int(match[1]))):
        raise InvalidInput(
            "cursor: not a cursor this list handed out (pass next_cursor as given, to the same list)",
            field="cursor",
            code="invalid_cursor",
        )
    return int(match[1])
