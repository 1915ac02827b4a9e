"""Database fixtures: every test that asks for ``db_url`` (or ``engine``, ``session``) runs on SQLite and on
PostgreSQL, each time against a fresh, empty database.

PostgreSQL comes from ``LOTLINE_TEST_POSTGRES_URL`` (``scripts/ci_postgres.sh`` starts one and prints it).
Each test gets its own schema in that database (``search_path`` set through the URL), dropped afterwards.
Without the variable the PostgreSQL half is skipped, except on CI (``CI=true``), where it fails: a CI run
that silently tested one database would be a green light for nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from supply_chain.store.db import make_engine, make_session_factory, migrate, normalise_url, postgres_schema

POSTGRES_URL_ENV = "LOTLINE_TEST_POSTGRES_URL"
NOT_CONFIGURED = f"PostgreSQL not configured: set {POSTGRES_URL_ENV} (scripts/ci_postgres.sh)"


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url:
        if _on_ci():
            pytest.fail(NOT_CONFIGURED, pytrace=False)
        pytest.skip(NOT_CONFIGURED)
    return normalise_url(url)


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    """A URL whose connections see only a new, empty schema; the schema is dropped afterwards."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_schema(base_url, prefix="lotline_test"))
        except OperationalError as exc:
            shown = make_url(base_url).render_as_string(hide_password=True)
            pytest.fail(
                f"PostgreSQL at {shown} is not reachable ({exc.orig}); run scripts/ci_postgres.sh", pytrace=False
            )
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database (no tables): a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'lotline.db').as_posix()}"
    else:
        yield from _postgres_schema_url(_postgres_base_url())


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` with the schema migrated to head."""
    engine = make_engine(db_url)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session on the migrated database; whatever the test leaves uncommitted is rolled back."""
    session = session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``db_url``, shared by the tests of one module (for scenarios that are costly to build)."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path_factory.mktemp('db') / 'lotline.db').as_posix()}"
    else:
        yield from _postgres_schema_url(_postgres_base_url())


def make_runtime(home: Path, url: str):  # noqa: ANN201 - the services' Runtime
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up

    runtime = Runtime(Settings.from_env(env={}, home=home, database_url=url, secret_key="test-secret"))
    catch_up(runtime)
    return runtime


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[object]:
    """A runtime on a fresh database and a fresh embedded chain, with the ledger deployed."""
    rt = make_runtime(tmp_path / "home", db_url)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture(scope="module")
def demo_runtime(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The demo scenario (`lotline demo`), built once per module and database."""
    from supply_chain.services.demo import seed

    rt = make_runtime(tmp_path_factory.mktemp("demo-home"), module_db_url)
    seed(rt)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def network(runtime):  # noqa: ANN001, ANN201
    """A small network on `runtime`: one organisation per role, sites, products and one harvested lot."""
    from types import SimpleNamespace

    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots, orgs
    from supply_chain.services.demo import gln, gtin

    net = SimpleNamespace(runtime=runtime)
    with runtime.ctx() as ctx:
        net.regulator = orgs.onboard(ctx, None, "Regulator", ["regulator", "admin"])
        specs = {
            "farm": ("producer", "0700001"),
            "farm2": ("producer", "0700002"),
            "packer": ("processor", "0700003"),
            "dist": ("distributor", "0700004"),
            "shop": ("retailer", "0700005"),
            "inspector": ("inspector", "0700006"),
        }
        for key, (role, prefix) in specs.items():
            org = orgs.onboard(ctx, net.regulator, key.title(), [role], prefix)
            setattr(net, key, org)
            setattr(net, f"{key}_site", orgs.register_location(ctx, org, gln(prefix, "00001"), f"{key} site").gln)
        net.greens = orgs.register_product(ctx, net.farm, gtin("0700001", "00001"), "Greens", unit="kg").gtin
        net.greens2 = orgs.register_product(ctx, net.farm2, gtin("0700002", "00001"), "Greens 2", unit="kg").gtin
        net.mix = orgs.register_product(ctx, net.packer, gtin("0700003", "00001"), "Mix", unit="kg").gtin
        ids = {k: getattr(net, k).id for k in ("regulator", *specs)}
        lot = lots.create_lot(
            ctx,
            net.farm,
            net.greens,
            "LOT-1",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "greens"},
            "100",
            "kg",
        )
        net.lot_pk = lot.id
    net.ids = ids

    def org(key: str, ctx):  # noqa: ANN001, ANN202 - re-load an organisation in another session
        from supply_chain.store.models import Organisation

        return ctx.session.get(Organisation, ids[key])

    net.org = org
    return net
