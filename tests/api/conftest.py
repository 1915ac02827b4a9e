"""Fixtures for the API tests: one chain + database for the whole package, a small network of
organisations (one per role) with read and write tokens, and a Flask test client.

Building the runtime deploys the ledger on a fresh embedded chain (~8 s), so it is shared; tests make their
own lots with fresh lot codes (``new_code``) and never depend on each other's state.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.services import orgs, tokens
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up

ROLES = ("producer", "processor", "distributor", "retailer", "inspector", "regulator")
_codes = itertools.count(1)


def gtin(prefix: str, item: str) -> str:
    body = "0" + prefix + item
    return body + str(gs1_check_digit(body))


def gln(prefix: str, ref: str) -> str:
    body = prefix + ref
    return body + str(gs1_check_digit(body))


def new_code(stem: str = "T") -> str:
    """A lot code no other test uses."""
    return f"{stem}-{next(_codes):05d}"


@dataclass
class Member:
    role: str
    org: Any
    prefix: str
    gln: str
    read: str = ""
    write: str = ""
    gtin: str | None = None

    def headers(self, scope: str = "write", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.read if scope == 'read' else self.write}"} | extra


@dataclass
class Network:
    runtime: Runtime
    members: dict[str, Member] = field(default_factory=dict)

    def __getitem__(self, role: str) -> Member:
        return self.members[role]


def make_runtime(home: Path) -> Runtime:
    runtime = Runtime(
        Settings.from_env(
            env={},
            home=home,
            database_url=f"sqlite:///{(home / 'lotline.db').as_posix()}",
            secret_key="test-secret",
            public_url="https://lotline.test",
        )
    )
    catch_up(runtime)
    return runtime


def build_network(runtime: Runtime) -> Network:
    """One organisation per role (prefixes 0700001..), a site each, a product for producer and processor,
    and a read and a write token for every organisation."""
    net = Network(runtime)
    with runtime.ctx() as ctx:
        regulator = orgs.onboard(ctx, None, "API Regulator", ["regulator", "admin"])
        for number, role in enumerate(ROLES, start=1):
            prefix = f"070000{number}"
            org = (
                regulator
                if role == "regulator"
                else orgs.onboard(ctx, regulator, f"API {role.title()}", [role], prefix)
            )
            site = gln(prefix, "00001") if role != "regulator" else gln("0700009", "00001")
            orgs.register_location(ctx, org, site, f"{role.title()} site", f"{number} Test Road", None, None, "other")
            member = Member(role, org, prefix, site)
            if role in ("producer", "processor"):
                product = orgs.register_product(
                    ctx, org, gtin(prefix, "00001"), f"{role.title()} greens", "test", True, "kg"
                )
                member.gtin = product.gtin
            _, member.read = tokens.create(ctx, org, f"{role} read", "read")
            _, member.write = tokens.create(ctx, org, f"{role} write", "write")
            net.members[role] = member
        ctx.session.commit()
    return net


@pytest.fixture(scope="session")
def api_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = make_runtime(tmp_path_factory.mktemp("api-home"))
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def network(api_runtime: Runtime) -> Network:
    return build_network(api_runtime)


@pytest.fixture(scope="session")
def app(api_runtime: Runtime, network: Network) -> Flask:
    from app import create_app

    return create_app({"RUNTIME": api_runtime, "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Api:
    """Calls /api/v1 as one organisation (write token unless told otherwise)."""

    def __init__(self, client: FlaskClient, member: Member) -> None:
        self.client = client
        self.member = member

    def __call__(
        self,
        method: str,
        path: str,
        *,
        scope: str = "write",
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        all_headers = self.member.headers(scope) | (headers or {})
        return self.client.open("/api/v1" + path, method=method, json=json, headers=all_headers, **kwargs)


@pytest.fixture
def as_role(client: FlaskClient, network: Network):  # noqa: ANN201
    """``as_role("producer")("POST", "/lots", json=...)``."""
    return lambda role: Api(client, network[role])


def harvest_body(member: Member, code: str, quantity: str = "100") -> dict[str, Any]:
    return {
        "gtin": member.gtin,
        "lot_code": code,
        "kind": "harvesting",
        "quantity": quantity,
        "unit": "kg",
        "payload": {"location_gln": member.gln, "harvest_date": "2025-05-01", "commodity": "romaine lettuce"},
    }


def ship_body(src: Member, dst: Member, ref: str = "BOL-1") -> dict[str, Any]:
    return {
        "payload": {
            "from_gln": src.gln,
            "to_gln": dst.gln,
            "ship_date": "2025-05-02",
            "reference_document_type": "bill of lading",
            "reference_document_number": ref,
        }
    }
