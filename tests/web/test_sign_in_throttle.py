"""Sign-in throttling (issue 9, item 6): an attempt is counted in the database before its password is
checked, per account and per client address, so parallel requests cannot slip past the limit; hammering one
account does not lock other people out of a shared address; X-Forwarded-For is believed only from a
configured number of trusted proxies.

The password hash check is counted by wrapping the services' hasher: "evaluated" means it ran."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from supply_chain.services import orgs
from supply_chain.store.models import Organisation

PASSWORD = "throttle test password"
_numbers = itertools.count(1)


class CountingHasher:
    """The argon2 hasher, counting how many times a password is checked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.checks = 0
        self._lock = threading.Lock()

    def verify(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.checks += 1
        return self.inner.verify(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    counting = CountingHasher(orgs._hasher)
    monkeypatch.setattr(orgs, "_hasher", counting)
    yield counting


def _user(world: Any) -> str:
    """A user of its own, so its count starts at zero; returns its e-mail."""
    email = f"throttled{next(_numbers)}@test.lotline"
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, world.org_ids["distributor"])
        orgs.add_user(ctx, org, email, "Tia Throttled", PASSWORD)
    return email


def _attempt(app: Flask, email: str, password: str, address: str = "192.0.2.10", **headers: str) -> TestResponse:
    client = app.test_client()
    with client.session_transaction() as session:
        session["csrf"] = "throttle-test-token-" + "x" * 32
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": "throttle-test-token-" + "x" * 32},
        headers=headers,
        environ_base={"REMOTE_ADDR": address},
    )


def _parallel(count: int, attempt: Any) -> list[int]:
    barrier = threading.Barrier(count)

    def one(i: int) -> int:
        barrier.wait()
        return attempt(i).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_sixty_parallel_wrong_passwords_are_evaluated_no_more_than_the_limit(
    app: Flask, world: Any, hasher: CountingHasher
) -> None:
    email = _user(world)
    limit = app.config["LOGIN_RATE_LIMIT"][0]
    statuses = _parallel(60, lambda i: _attempt(app, email, f"wrong password {i}", f"198.51.100.{i + 1}"))
    assert hasher.checks <= limit, f"{hasher.checks} passwords checked against a limit of {limit}"
    assert statuses.count(401) == hasher.checks and statuses.count(429) == 60 - hasher.checks

    right = _attempt(app, email, PASSWORD, "203.0.113.99")
    assert right.status_code == 429, "the account waits, from any address, even with the right password"
    assert "Too many failed sign-in attempts for this account" in right.get_data(as_text=True)
    assert int(right.headers["Retry-After"]) > 0
    assert hasher.checks <= limit


def test_the_account_limit_holds_whichever_address_the_guesses_come_from(app: Flask, world: Any) -> None:
    email = _user(world)
    limit = app.config["LOGIN_RATE_LIMIT"][0]
    for i in range(limit):
        assert _attempt(app, email, "wrong password", f"198.51.100.{i + 1}").status_code == 401
    assert _attempt(app, email, "wrong password", "198.51.100.200").status_code == 429


def test_a_hundred_parallel_guesses_from_one_address_are_evaluated_no_more_than_its_limit(
    make_app: Any, world: Any, hasher: CountingHasher
) -> None:
    app = make_app(LOGIN_IP_RATE_LIMIT=(30, 900))
    statuses = _parallel(100, lambda i: _attempt(app, f"nobody{i}@test.lotline", "wrong password", "192.0.2.77"))
    assert hasher.checks <= 30, f"{hasher.checks} passwords checked against a limit of 30"
    assert statuses.count(401) == hasher.checks and statuses.count(429) == 100 - hasher.checks
    refused = _attempt(app, _user(world), PASSWORD, "192.0.2.77")
    assert refused.status_code == 429
    assert "from your network address" in refused.get_data(as_text=True)
    assert _attempt(app, _user(world), PASSWORD, "192.0.2.78").status_code == 302, "other addresses sign in"


def test_hammering_one_account_does_not_lock_out_others_behind_the_same_address(make_app: Any, world: Any) -> None:
    app = make_app(LOGIN_IP_RATE_LIMIT=(10, 900))
    victim, colleague = _user(world), _user(world)
    statuses = [_attempt(app, victim, f"wrong {i}", "192.0.2.50").status_code for i in range(40)]
    assert statuses.count(401) == app.config["LOGIN_RATE_LIMIT"][0] and statuses.count(429) == 35
    assert _attempt(app, colleague, PASSWORD, "192.0.2.50").status_code == 302


def test_x_forwarded_for_is_ignored_unless_a_trusted_proxy_is_configured(make_app: Any, world: Any) -> None:
    app = make_app(LOGIN_IP_RATE_LIMIT=(2, 900))
    assert app.config["TRUSTED_PROXIES"] == 0  # the default
    for i in range(2):
        spoofed = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
        assert _attempt(app, f"nobody{i}@test.lotline", "wrong", "192.0.2.60", **spoofed).status_code == 401
    # a new X-Forwarded-For each time does not make a new client: the address is the TCP peer's
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    assert _attempt(app, "nobody9@test.lotline", "wrong", "192.0.2.60", **spoofed).status_code == 429


def test_x_forwarded_for_is_honoured_from_a_configured_trusted_proxy(make_app: Any, world: Any) -> None:
    app = make_app(LOGIN_IP_RATE_LIMIT=(2, 900), TRUSTED_PROXIES=1)
    proxy = "10.0.0.1"
    for i in range(2):
        forwarded = {"X-Forwarded-For": "198.51.100.7"}
        assert _attempt(app, f"nobody{i}@test.lotline", "wrong", proxy, **forwarded).status_code == 401
    assert (
        _attempt(app, "nobody3@test.lotline", "wrong", proxy, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    )
    # another client behind the same proxy is another address
    assert _attempt(app, _user(world), PASSWORD, proxy, **{"X-Forwarded-For": "198.51.100.8"}).status_code == 302
    # only the entry the proxy appended is believed: one the client put in front of it changes nothing
    forged = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}
    assert _attempt(app, "nobody4@test.lotline", "wrong", proxy, **forged).status_code == 429
