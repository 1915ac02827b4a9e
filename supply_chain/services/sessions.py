"""Browser sessions, kept in the store: the signed session cookie carries only a random token.

A copied cookie is worth nothing once its row is gone: signing out deletes the session, a password change
deletes all of the user's sessions (the browser that changed it gets a fresh one), and a suspension deletes
every session of the organisation's users. A session also ends ``SESSION_LIFETIME`` after sign-in. The store
keeps the token's SHA-256 only, so a database dump does not hold live sessions; forging a cookie needs both
the session secret and a live token.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select

from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Organisation, User, UserSession, utcnow

SESSION_LIFETIME = timedelta(hours=8)
"""How long a sign-in lasts at most."""
COOKIE_LIFETIME = timedelta(days=7)
"""How long the browser keeps the cookie after the last request. Longer than a sign-in on purpose: once the
session has ended the cookie signs nobody in, but a form submitted then still carries its CSRF token and
comes back filled after the next sign-in (``services.drafts``)."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(ctx: Ctx, user: User) -> str:
    """Open a session for ``user``; returns the token the cookie carries."""
    now = utcnow()
    ctx.session.execute(delete(UserSession).where(UserSession.expires_at <= now))  # housekeeping
    token = secrets.token_urlsafe(32)
    ctx.session.add(
        UserSession(token_hash=_digest(token), user_id=user.id, created_at=now, expires_at=now + SESSION_LIFETIME)
    )
    ctx.session.flush()
    return token


def user_for(ctx: Ctx, token: object) -> User | None:
    """The user whose live session ``token`` is: the session exists and has not expired, the user is active
    and the organisation not suspended. None otherwise."""
    if not isinstance(token, str) or not token:
        return None
    row = ctx.session.get(UserSession, _digest(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = row.user
    if not user.is_active or user.organisation.suspended:
        return None
    return user


def end(ctx: Ctx, token: object) -> None:
    """End the session ``token`` (signing out)."""
    if isinstance(token, str) and token:
        ctx.session.execute(delete(UserSession).where(UserSession.token_hash == _digest(token)))


def end_user(ctx: Ctx, user: User) -> int:
    """End every session of ``user``; returns how many."""
    result = ctx.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    return int(getattr(result, "rowcount", 0) or 0)


def end_organisation(ctx: Ctx, org: Organisation) -> int:
    """End every session of every user of ``org``; returns how many."""
    users = select(User.id).where(User.organisation_id == org.id)
    result = ctx.session.execute(delete(UserSession).where(UserSession.user_id.in_(users)))
    return int(getattr(result, "rowcount", 0) or 0)


def count(ctx: Ctx, user: User) -> int:
    """How many live sessions ``user`` has."""
    live = select(UserSession.token_hash).where(UserSession.user_id == user.id, UserSession.expires_at > utcnow())
    return len(list(ctx.session.scalars(live)))
