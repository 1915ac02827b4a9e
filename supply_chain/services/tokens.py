"""API tokens: created for an organisation, shown once, stored as a SHA-256 hash, scoped read or write.

A token is ``llt_`` followed by 32 random bytes in URL-safe base64 (43 characters), so a leaked token is
recognisable in logs and by secret scanners. Only ``sha256(token)`` is stored: a database dump does not
let anyone call the API. A revoked token stays listed (with ``revoked_at``) so the dashboard can show it.
The tokens of a suspended organisation are refused (403 ``organisation_suspended``) until it is reinstated.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from supply_chain.domain.errors import Conflict, InvalidInput, LotlineError, NotFound
from supply_chain.domain.text import check_text
from supply_chain.services.orgs import refuse_if_suspended
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import TOKEN_SCOPES, ApiToken, Organisation

TOKEN_PREFIX = "llt_"
TOKEN_BYTES = 32
NAME_MAX_LENGTH = 100
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is kept to this precision."""


class InvalidToken(LotlineError):
    """Raised when an API request carries no bearer token, or one that is unknown or revoked."""

    status = 401
    code = "invalid_token"


def hash_token(plain: str) -> str:
    """The stored form of a token: SHA-256 of its UTF-8 text, 64 lower-case hex digits."""
    return hashlib.sha256(plain.encode("utf-8")).hexdigest()


def _name(name: object) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(text) <= NAME_MAX_LENGTH:
        raise InvalidInput(f"token name must be 1-{NAME_MAX_LENGTH} characters", field="name")
    return check_text(text, "name")


def _scope(scope: object) -> str:
    if scope not in TOKEN_SCOPES:
        raise InvalidInput(
            f"scope must be one of {', '.join(TOKEN_SCOPES)}, got {scope!r}", field="scope", code="invalid_scope"
        )
    return str(scope)


def create(ctx: Ctx, org: Organisation, name: str, scope: str = "read") -> tuple[ApiToken, str]:
    """Create a token for ``org``; returns the row and the plain token, which is never shown again."""
    row = ApiToken(organisation_id=org.id, name=_name(name), scope=_scope(scope))
    plain = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    row.token_hash = hash_token(plain)
    ctx.session.add(row)
    ctx.session.flush()
    return row, plain


def list_tokens(ctx: Ctx, org: Organisation, *, include_revoked: bool = True) -> list[ApiToken]:
    """The organisation's tokens, newest first."""
    query = select(ApiToken).where(ApiToken.organisation_id == org.id).order_by(ApiToken.id.desc())
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(ctx.session.scalars(query))


def get(ctx: Ctx, org: Organisation, token_id: int) -> ApiToken:
    """One of the organisation's tokens; NotFound for another organisation's (ids cannot be probed)."""
    row = ctx.session.get(ApiToken, token_id)
    if row is None or row.organisation_id != org.id:
        raise NotFound(f"no API token {token_id} of {org.name}", code="unknown_token")
    return row


def revoke(ctx: Ctx, org: Organisation, token_id: int) -> ApiToken:
    """Revoke one of the organisation's tokens; it stops working at once. Revoking twice is a Conflict."""
    row = get(ctx, org, token_id)
    if row.revoked_at is not None:
        raise Conflict(f"API token {token_id} is already revoked", code="token_revoked")
    row.revoked_at = datetime.now(UTC)
    ctx.session.flush()
    return row


def authenticate(ctx: Ctx, plain: str | None) -> tuple[Organisation, str]:
    """The organisation and scope of a valid token; InvalidToken otherwise. Records ``last_used_at``."""
    row = token_for(ctx, plain)
    return row.organisation, row.scope


def token_for(ctx: Ctx, plain: str | None) -> ApiToken:
    """The live token row for ``plain`` (``last_used_at`` updated); InvalidToken when missing or bad."""
    if not plain:
        raise InvalidToken(
            "an API token is required: send 'Authorization: Bearer llt_...'",
            field="Authorization",
            code="missing_token",
        )
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        raise InvalidToken("the API token is not a Lotline token (they start with 'llt_')", field="Authorization")
    digest = hash_token(plain)
    row = ctx.session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    # compare_digest keeps the final comparison constant-time; the lookup is by hash, not by secret
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        raise InvalidToken("the API token is unknown", field="Authorization")
    if row.revoked_at is not None:
        raise InvalidToken("the API token has been revoked", field="Authorization", code="token_revoked")
    refuse_if_suspended(row.organisation)  # 403 while suspended; the token works again on reinstatement
    now = datetime.now(UTC)
    last = row.last_used_at
    if last is None or now - (last if last.tzinfo else last.replace(tzinfo=UTC)) > LAST_USED_RESOLUTION:
        row.last_used_at = now  # not on every request: a busy client would turn every read into a write
    return row
