"""Sign-in throttling shared by every worker and process: attempts are counted in the database.

An attempt is **reserved before the password is checked**: one atomic upsert per key, committed at once, so
sixty parallel requests cannot all pass a check that none of them has counted yet, and two server processes
count together. Two keys are counted, in this order:

1. the account (the e-mail as typed, normalised; unknown e-mails are counted the same way, so the answer does
   not reveal which accounts exist): ``ACCOUNT_LIMIT``, against guessing one password from many addresses;
2. the client address: ``ADDRESS_LIMIT``, against one address trying a few passwords on many accounts.

An attempt refused on the account does not count against the address, and one refused on the address gives
its account reservation back: someone hammering one account from a shared address (an office, a proxy) uses
at most ``ACCOUNT_LIMIT`` of that address's budget, so the other people behind it still sign in. A successful
sign-in clears its account's count and gives its address reservation back.

Counts live in fixed windows (``Limit.window`` seconds from the first attempt), so at a window boundary up to
twice a limit can be tried in a short time; that is the price of one row per key and one statement per
attempt. The client address is the TCP peer's unless trusted proxies are configured (``LOTLINE_TRUSTED_PROXIES``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite

from supply_chain.services.runtime import Ctx
from supply_chain.store.models import SignInThrottle


@dataclass(frozen=True)
class Limit:
    attempts: int
    window: int
    """Seconds."""


ACCOUNT_LIMIT = Limit(attempts=5, window=15 * 60)
"""Failed sign-ins per account, from any address, per 15 minutes."""
ADDRESS_LIMIT = Limit(attempts=30, window=15 * 60)
"""Sign-in attempts per client address, whatever the account, per 15 minutes."""


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in attempt is refused before its password is checked, and for how long."""

    scope: Literal["account", "address"]
    retry_after: int
    """Seconds until the window ends."""

    @property
    def message(self) -> str:
        minutes = self.retry_after // 60 + 1
        whose = "for this account" if self.scope == "account" else "from your network address"
        return f"Too many failed sign-in attempts {whose}. Wait {minutes} minutes and try again."


def account_key(email: str) -> str:
    return "account:" + (email or "").strip().lower()[:254]


def address_key(address: str | None) -> str:
    return "address:" + (address or "unknown")[:64]


def reserve_sign_in(
    ctx: Ctx,
    email: str,
    address: str | None,
    account_limit: Limit = ACCOUNT_LIMIT,
    address_limit: Limit = ADDRESS_LIMIT,
) -> Refusal | None:
    """Count one sign-in attempt for the account and the address (module docstring), or say why not.

    Commits ``ctx.session``: the attempt must count for every other worker before the password is checked.
    """
    wait = reserve(ctx, account_key(email), account_limit)
    if wait:
        return Refusal("account", wait)
    wait = reserve(ctx, address_key(address), address_limit)
    if wait:
        give_back(ctx, account_key(email))
        return Refusal("address", wait)
    return None


def signed_in(ctx: Ctx, email: str, address: str | None) -> None:
    """The password was right: clear the account's count and give the address its attempt back."""
    ctx.session.execute(delete(SignInThrottle).where(SignInThrottle.key == account_key(email)))
    give_back(ctx, address_key(address))
    oldest = _now() - 2 * max(ACCOUNT_LIMIT.window, ADDRESS_LIMIT.window)
    ctx.session.execute(delete(SignInThrottle).where(SignInThrottle.window_started < oldest))  # housekeeping


def reserve(ctx: Ctx, key: str, limit: Limit) -> int:
    """Count one attempt for ``key`` (one atomic upsert, committed). Returns 0 when it is within ``limit``,
    else the seconds until the window ends."""
    now = _now()
    table = SignInThrottle.__table__
    dialect = ctx.session.get_bind().dialect.name
    if dialect == "sqlite":
        insert = sqlite.insert(table)
    elif dialect == "postgresql":
        insert = postgresql.insert(table)
    else:  # pragma: no cover - the store supports these two
        raise NotImplementedError(f"sign-in throttling needs SQLite or PostgreSQL, not {dialect}")
    expired = table.c.window_started <= now - limit.window
    statement = (
        insert.values(key=key, window_started=now, attempts=1)
        .on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                # both read the row as it was before this update (SQL semantics on both databases)
                "attempts": case((expired, 1), else_=table.c.attempts + 1),
                "window_started": case((expired, now), else_=table.c.window_started),
            },
        )
        .returning(table.c.attempts, table.c.window_started)
    )
    attempts, started = ctx.session.execute(statement).one()
    ctx.session.commit()
    if attempts <= limit.attempts:
        return 0
    return max(1, int(started + limit.window - now))


def give_back(ctx: Ctx, key: str) -> None:
    """Undo one reservation of ``key`` (its attempt was not an evaluated wrong password)."""
    ctx.session.execute(
        update(SignInThrottle)
        .where(SignInThrottle.key == key, SignInThrottle.attempts > 0)
        .values(attempts=SignInThrottle.attempts - 1)
    )


def clear(ctx: Ctx) -> None:
    """Forget every count (tests; an operator after an incident)."""
    ctx.session.execute(delete(SignInThrottle))


def _now() -> int:
    return int(time.time())
