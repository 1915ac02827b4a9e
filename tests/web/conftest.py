"""Web fixtures: one small network on the embedded chain, built once per test session, and apps, clients and a
``login`` helper on top of it.

The network (``world``) is expensive (about 30 transactions), so it is shared. Tests that only read use its
lots; tests that write make their own lots (fresh lot codes) and never change the shared ones, so the order
tests run in does not matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots, orgs, throttle
from supply_chain.services.demo import gln, gtin
from supply_chain.services.lots import NewLot
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot, Organisation

PASSWORD = "correct horse battery"
PUBLIC_URL = "https://trace.lotline.example"
ROLES = ("producer", "processor", "distributor", "retailer", "inspector", "regulator")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

# Values the scenario writes into fields that must never reach the public page (consortium) or anyone but
# their author (private). Tests search for them in responses.
CONSORTIUM_VALUES = ("North Block 7", "BOL-SECRET-1", "Trucker Joe", "findings-consortium-only")
PRIVATE_VALUES = ("farm-private-note", "Ivy Privateinspector")


@dataclass
class World:
    runtime: Runtime
    home: Path
    org_ids: dict[str, int] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)
    gtins: dict[str, str] = field(default_factory=dict)
    lot_ids: dict[str, int] = field(default_factory=dict)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    document_id: int = 0
    consortium_values: tuple[str, ...] = CONSORTIUM_VALUES
    private_values: tuple[str, ...] = PRIVATE_VALUES

    def lot(self, key: str) -> int:
        return self.lot_ids[key]


def _build(home: Path) -> World:
    settings = Settings.from_env(env={"LOTLINE_PUBLIC_URL": PUBLIC_URL}, home=home, secret_key="web-test-secret")
    runtime = Runtime(settings)
    catch_up(runtime)
    w = World(runtime=runtime, home=home)
    with runtime.ctx() as ctx:
        regulator = orgs.onboard(ctx, None, "Test Regulator", ["regulator", "admin"])
        o: dict[str, Organisation] = {"regulator": regulator}
        specs = {
            "producer": ("Test Farm", "producer", "0700001"),
            "other": ("Other Farm", "producer", "0700002"),
            "processor": ("Test Processor", "processor", "0700003"),
            "distributor": ("Test Carrier", "distributor", "0700004"),
            "retailer": ("Test Shop", "retailer", "0700005"),
            "inspector": ("Test Lab", "inspector", "0700006"),
        }
        for key, (name, role, prefix) in specs.items():
            o[key] = orgs.onboard(ctx, regulator, name, [role], prefix)
            w.sites[key] = orgs.register_location(
                ctx, o[key], gln(prefix, "00001"), f"{name} site", f"{key} street 1", 36.5, -121.5, "farm"
            ).gln
        for key, org in o.items():
            email = f"{key}@test.lotline"
            orgs.add_user(ctx, org, email, f"{key.title()} User", PASSWORD)
            w.emails[key] = email
            w.org_ids[key] = org.id
        w.gtins["lettuce"] = orgs.register_product(ctx, o["producer"], gtin("0700001", "00001"), "Test lettuce").gtin
        w.gtins["kale"] = orgs.register_product(ctx, o["other"], gtin("0700002", "00001"), "Other kale").gtin
        w.gtins["mix"] = orgs.register_product(ctx, o["processor"], gtin("0700003", "00001"), "Test salad mix").gtin
        ctx.session.commit()

        def harvest(org: str, product: str, code: str, qty: str = "100", **extra: Any) -> Lot:
            payload = {
                "location_gln": w.sites[org],
                "harvest_date": "2026-11-01",
                "commodity": "lettuce",
            } | extra
            lot = lots.create_lot(ctx, o[org], w.gtins[product], code, EventKind.HARVESTING, payload, qty, "kg")
            w.lot_ids[code] = lot.id
            w.labels[code] = (lot.gtin, lot.lot_code)
            return lot

        def ship(lot: Lot, src: str, dst: str, **extra: Any) -> None:
            lots.offer_custody(
                ctx,
                o[src],
                lot,
                o[dst],
                {
                    "from_gln": w.sites[src],
                    "to_gln": w.sites[dst],
                    "ship_date": "2026-11-03",
                    "reference_document_type": "bill of lading",
                    "reference_document_number": "BOL-SECRET-1",
                }
                | extra,
            )

        def receive(lot: Lot, src: str, dst: str, when: str = "2026-11-04") -> None:
            lots.accept_custody(
                ctx,
                o[dst],
                lot,
                {
                    "from_gln": w.sites[src],
                    "to_gln": w.sites[dst],
                    "receive_date": when,
                    "reference_document_type": "bill of lading",
                    "reference_document_number": "BOL-SECRET-1",
                },
            )

        f1 = harvest("producer", "lettuce", "F1", field_name="North Block 7", notes="farm-private-note")
        lots.record_event(
            ctx,
            o["producer"],
            f1,
            EventKind.COOLING,
            {"location_gln": w.sites["producer"], "cooling_date": "2026-11-02"},
        )
        ship(f1, "producer", "processor", carrier="Trucker Joe")
        receive(f1, "producer", "processor")
        lots.inspect(
            ctx,
            o["inspector"],
            f1,
            "pass",
            {
                "inspection_date": "2026-11-04",
                "inspector_name": "Ivy Privateinspector",
                "inspection_body": "Test Lab",
                "standard": "ISO 6579-1",
                "findings": "findings-consortium-only",
            },
            certificate=("certificate.pdf", "application/pdf", PDF),
        )
        f3 = harvest("producer", "lettuce", "F3", "50")
        ship(f3, "producer", "processor")
        receive(f3, "producer", "processor")
        (m1,) = lots.transform(
            ctx,
            o["processor"],
            [NewLot(w.gtins["mix"], "M1", "110", "kg", [(f1, "60"), (f3, "50")])],
            w.sites["processor"],
            "2026-11-05",
        )
        w.lot_ids["M1"] = m1.id
        w.labels["M1"] = (m1.gtin, m1.lot_code)
        ship(m1, "processor", "distributor", ship_date="2026-11-05")  # M1 is made on 2026-11-05
        receive(m1, "processor", "distributor", "2026-11-06")
        lots.anchor_readings(  # the carrier's log of the trip, anchored once it has accepted the lot
            ctx,
            o["distributor"],
            m1,
            [{"taken_at": f"2026-11-05T{h:02d}:00:00+00:00", "temperature_c": str(2 + h % 3)} for h in range(6, 12)],
            sensor_id="LOGGER-SECRET",
            location_gln=w.sites["distributor"],
        )
        ship(m1, "distributor", "retailer", ship_date="2026-11-06")  # waits in the retailer's custody inbox
        harvest("producer", "lettuce", "F2")  # never leaves the farm
        harvest("other", "kale", "O1")  # another farm's lot
        held = harvest("producer", "lettuce", "H1")
        lots.hold(ctx, o["inspector"], held, "suspected contamination", "2026-11-06")
        harvest("producer", "lettuce", "TR/7%x")  # a lot code that needs percent-encoding
        lots.recall(
            ctx,
            regulator,
            f1,
            "Listeria monocytogenes",
            "I",
            "Do not eat; return it to the store.",
            "2026-11-07",
            "recalls@test.example",
        )
        # The recall reached M1 (made from F1) on chain; T1 waits in the retailer's custody inbox instead.
        t1 = harvest("producer", "lettuce", "T1")
        ship(t1, "producer", "retailer")
        # M2: a mix made from a lot the recall does not reach, held by the carrier (labels can be printed).
        f4 = harvest("producer", "lettuce", "F4", "30")
        ship(f4, "producer", "processor")
        receive(f4, "producer", "processor")
        (m2,) = lots.transform(
            ctx,
            o["processor"],
            [NewLot(w.gtins["mix"], "M2", "30", "kg", [(f4, "30")])],
            w.sites["processor"],
            "2026-11-05",
        )
        w.lot_ids["M2"] = m2.id
        w.labels["M2"] = (m2.gtin, m2.lot_code)
        ship(m2, "processor", "distributor", ship_date="2026-11-05")
        receive(m2, "processor", "distributor", "2026-11-06")
        for lot in ctx.session.scalars(select(Lot)):
            verify_lot(ctx, lot)
        unchecked = harvest("producer", "lettuce", "P1")
        # As indexing leaves a lot before verification has run (after `lotline reindex`, or when the chain
        # answered the write but verification has not caught up): no state yet.
        unchecked.verification_state = None
        unchecked.verified_at = None
        w.document_id = f1.documents[0].id
    return w


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = _build(tmp_path_factory.mktemp("web-home"))
    try:
        yield w
    finally:
        w.runtime.close()


def _make_app(world: World, **config: Any) -> Flask:
    with world.runtime.ctx() as ctx:
        throttle.clear(ctx)  # sign-in counts are in the shared database: each app starts from none
    return create_app({"RUNTIME": world.runtime, "TESTING": True} | config)


@pytest.fixture
def app(world: World) -> Flask:
    """A fresh app (no sign-in attempts counted) on the shared runtime."""
    return _make_app(world)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def _login(client: FlaskClient, role: str, password: str = PASSWORD) -> FlaskClient:
    """Sign ``client`` in as the user of ``role`` (``producer``, ``regulator``, ..., or ``other`` farm)."""
    email = f"{role}@test.lotline"
    token = _csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def _csrf(client: FlaskClient) -> str:
    """The signed-in client's CSRF token (creating one for an anonymous session)."""
    with client.session_transaction() as session:
        if "csrf" not in session:
            session["csrf"] = "anonymous-test-token-" + "x" * 32
        return str(session["csrf"])


def _counts(world: World) -> tuple[int, int, int]:
    """Lots, events and the chain's block number: what "nothing written" compares."""
    with world.runtime.ctx() as ctx:
        return (
            ctx.session.scalar(select(func.count()).select_from(Lot)) or 0,
            ctx.session.scalar(select(func.count()).select_from(Event)) or 0,
            ctx.ledger.block_number(),
        )


# The helpers as fixtures, so test modules need not import this file.


@pytest.fixture(scope="session")
def login() -> Any:
    """``login(client, role)``: sign a test client in as that role's user."""
    return _login


@pytest.fixture
def signed_in(app: Flask) -> Any:
    """``signed_in(role)``: a new client of the test's app, signed in as ``role`` (``password`` for a user
    whose password a test changed)."""
    return lambda role, password=PASSWORD: _login(app.test_client(), role, password)


@pytest.fixture(scope="session")
def csrf() -> Any:
    """``csrf(client)``: the client's session CSRF token."""
    return _csrf


@pytest.fixture(scope="session")
def csrf_from() -> Any:
    """``csrf_from(html)``: the token in a page's form."""
    return _csrf_from


@pytest.fixture(scope="session")
def counts(world: World) -> Any:
    """``counts()``: (lots, events, block number), to prove a refused request wrote nothing anywhere."""
    return lambda: _counts(world)


@pytest.fixture(scope="session")
def make_app(world: World) -> Any:
    """``make_app(**config)``: another app on the shared runtime."""
    return lambda **config: _make_app(world, **config)
