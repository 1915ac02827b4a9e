"""Form drafts kept across an expired session: a user whose session ended while they were typing submits the
form, is asked to sign in again, and finds the form filled with what they typed. Nothing is written until
they submit it again.

A draft belongs to one user and one form (its path). It never holds a secret: passwords, tokens, the CSRF
token and a typed confirmation are left out (the confirmation of a step that cannot be undone is typed
again). Its size is bounded (``MAX_BYTES``); a larger form is not kept, and the user is told. A draft is
deleted when it is shown, and any left unclaimed for ``KEEP_FOR`` is removed when another is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select

from supply_chain.services.runtime import Ctx
from supply_chain.store.models import FormDraft, User, utcnow

MAX_BYTES = 64 * 1024
"""At most this much typed text (UTF-8, all fields) is kept; a cold-chain export larger than that is not."""
MAX_FIELDS = 500
KEEP_FOR = timedelta(days=7)
SECRET_WORDS = ("password", "token", "secret", "confirm")
"""A field whose name holds one of these is never kept (``csrf_token``, ``new_password``, ``confirm_lot_code``)."""


def keepable(name: str) -> bool:
    lowered = name.lower()
    return not any(word in lowered for word in SECRET_WORDS)


def keep(ctx: Ctx, user: User, path: str, fields: Iterable[tuple[str, str]]) -> bool:
    """Keep ``fields`` (name, value pairs, in form order) as ``user``'s draft of the form at ``path``, replacing
    an older one. False (nothing kept) when they are larger than the bound."""
    kept = [[str(name), str(value)] for name, value in fields if keepable(str(name))]
    if len(kept) > MAX_FIELDS or len(json.dumps(kept).encode()) > MAX_BYTES or len(path) > 300:
        return False
    now = utcnow()
    ctx.session.execute(delete(FormDraft).where(FormDraft.created_at < now - KEEP_FOR))
    ctx.session.execute(delete(FormDraft).where(FormDraft.user_id == user.id, FormDraft.path == path))
    ctx.session.add(FormDraft(user_id=user.id, path=path, fields=kept, created_at=now))
    ctx.session.flush()
    return True


def take(ctx: Ctx, user: User, path: str) -> list[tuple[str, str]] | None:
    """``user``'s draft of the form at ``path`` (deleted as it is handed out), or None."""
    row = ctx.session.scalars(select(FormDraft).where(FormDraft.user_id == user.id, FormDraft.path == path)).first()
    if row is None:
        return None
    fields = [(str(name), str(value)) for name, value in row.fields]
    ctx.session.delete(row)
    ctx.session.flush()
    return fields
