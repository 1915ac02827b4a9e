"""``Idempotency-Key`` on POST requests: a retried request gets the first answer and writes nothing again.

The key is the client's, unique per organisation. Before the view runs, a placeholder record (status 0) is
committed, so a concurrent retry is told to wait (409) instead of writing twice. A successful (2xx) answer,
with its ``Location`` header (a capture job's address), is stored with a hash of the request (method, path,
query, and the parsed body when the operation takes one; a body the operation does not take is never
parsed); the same key with another request is a 409. A failed
request stores nothing, so the client may fix it and retry with the same key. A placeholder left by a crash
is taken over after ``STALE_AFTER``; the lot services' own idempotency keys, passed along, then return the
events the crashed request had already written. A placeholder this very process left behind and is no longer
working on (its request failed while the database was away, so it could not be removed) is taken over at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Response, request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from app.api.spec import Call
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.store.models import IdempotencyRecord

HEADER = "Idempotency-Key"
STALE_AFTER = timedelta(minutes=5)
_KEY = re.compile(r"[\x21-\x7e]{1,200}")
OWNER = f"placeholder:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
"""Written into a placeholder's body: which process took the key."""
_working: set[tuple[int, str]] = set()
_working_lock = threading.Lock()


def request_hash(call: Call) -> str:
    """SHA-256 of what makes a request the same request: method, path, query and the body the operation
    takes, as already parsed and validated (``call.body``; None for operations without a body, whose body
    is ignored: it is never parsed here)."""
    body = "" if call.body is None else json.dumps(call.body, sort_keys=True, separators=(",", ":"))
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
    return hashlib.sha256(f"{request.method} {request.path}?{query}\n{body}".encode()).hexdigest()


def run(call: Call, view: Callable[[], Response]) -> Response:
    key = request.headers.get(HEADER)
    if key is None:
        return view()
    if not _KEY.fullmatch(key):
        raise InvalidInput(
            f"{HEADER}: 1-200 visible ASCII characters, no spaces", field=HEADER, code="invalid_idempotency_key"
        )
    session = call.ctx.session
    digest = request_hash(call)
    # Read once: after a rollback the organisation's row is expired, and reading it again needs the database
    # (which may be the thing that just went away).
    mine = (call.org.id, key)
    record = session.get(IdempotencyRecord, mine)
    if record is not None:
        if record.request_hash != digest:
            raise Conflict(
                f"{HEADER} {key!r} was already used for a different request; use a new key",
                field=HEADER,
                code="idempotency_key_reused",
            )
        if record.response_status:
            replay = Response(record.response_body, status=record.response_status, mimetype="application/json")
            replay.headers["Idempotent-Replayed"] = "true"
            if record.response_location:
                replay.headers["Location"] = record.response_location
            return replay
        started = record.created_at if record.created_at.tzinfo else record.created_at.replace(tzinfo=UTC)
        with _working_lock:
            working_here = mine in _working
        orphan = not working_here and _owner_gone(record.response_body)
        if not orphan and datetime.now(UTC) - started < STALE_AFTER:
            where = "by this server" if working_here else "by another server process"
            raise Conflict(
                f"a request with {HEADER} {key!r} is still being processed {where}; retry in a moment",
                field=HEADER,
                code="idempotency_in_progress",
            )
        record.created_at = datetime.now(UTC)  # take over a placeholder left by a crash or an outage
        record.response_body = OWNER
    else:
        session.add(
            IdempotencyRecord(
                organisation_id=mine[0], key=key, request_hash=digest, response_status=0, response_body=OWNER
            )
        )
    with _working_lock:  # before the placeholder is visible, so no one takes it for an orphan
        _working.add(mine)
    try:
        session.commit()
    except BaseException as exc:
        session.rollback()
        with _working_lock:
            _working.discard(mine)
        if not isinstance(exc, IntegrityError):
            raise
        raise Conflict(
            f"a request with {HEADER} {key!r} is still being processed; retry in a moment",
            field=HEADER,
            code="idempotency_in_progress",
        ) from None
    call.idempotency_key = key
    try:
        return _answer(call, mine, view)
    finally:
        with _working_lock:
            _working.discard(mine)


def _answer(call: Call, mine: tuple[int, str], view: Callable[[], Response]) -> Response:
    session = call.ctx.session
    try:
        response = view()
    except BaseException:
        session.rollback()
        _forget(call, mine)
        raise
    if 200 <= response.status_code < 300 and response.mimetype == "application/json":
        record = session.get(IdempotencyRecord, mine)
        if record is not None:
            record.response_status = response.status_code
            record.response_body = response.get_data(as_text=True)
            record.response_location = response.headers.get("Location")
            session.commit()
    else:
        _forget(call, mine)
    return response


def _owner_gone(owner: str) -> bool:
    """True when the process that wrote a placeholder is this one (and not working on it) or has died on this
    host; a placeholder of a live process elsewhere waits for ``STALE_AFTER``."""
    if owner == OWNER:
        return True
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != "placeholder" or parts[1] != socket.gethostname():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True  # that server died (killed, crashed) without finishing the request
    except (OSError, ValueError):
        return False
    return False


def _forget(call: Call, mine: tuple[int, str]) -> None:
    session = call.ctx.session
    org_id, key = mine
    session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.organisation_id == org_id, IdempotencyRecord.key == key)
    )
    session.commit()
