"""Database fixtures: every test that asks for ``db_url`` (or ``engine``, ``session``) runs on SQLite and on
PostgreSQL, each time against a fresh, empty database.

PostgreSQL comes from ``LOTLINE_TEST_POSTGRES_URL`` (``scripts/ci_postgres.sh`` starts one and prints it).
Each test gets its own schema in that database (``search_path`` set through the URL), dropped afterwards.
Without the variable the PostgreSQL half is skipped, except on CI (``CI=true``), where it fails: a CI run
that silently tested one database would be a green light for nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from supply_chain.store.db import make_engine, make_session_factory, migrate, normalise_url

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
    schema = f"lotline_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base_url, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        shown = make_url(base_url).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL at {shown} is not reachable ({exc.orig}); run scripts/ci_postgres.sh", pytrace=False
        )
    base = make_url(base_url)
    options = " ".join(filter(None, [base.query.get("options", ""), f"-csearch_path={schema}"]))
    try:
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            # a session left open in a transaction by the test would block the drop; fail instead of hanging
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
