"""Alembic environment for Lotline's schema.

Run programmatically by ``supply_chain.store.db.migrate`` (which hands over an open connection in
``config.attributes["connection"]``), or for development through ``db.alembic_config(url)`` with the Alembic
command API. Without a connection the URL comes from the config (``sqlalchemy.url``), then from
``LOTLINE_DATABASE_URL``.

Models are the target of autogenerate; the revision scripts themselves never import the models (a script
must keep creating the schema of its time, whatever the models say later).
"""

from __future__ import annotations

import os
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from supply_chain.store.db import make_engine, normalise_url
from supply_chain.store.models import Base, EventKindType, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write the project's column types as the plain SQLAlchemy types they store."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if type_ == "type" and isinstance(obj, EventKindType):
        return "sa.Integer()"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
        **kwargs,
    )


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("LOTLINE_DATABASE_URL")
    if not url:
        raise RuntimeError("no database: pass a connection, set sqlalchemy.url or LOTLINE_DATABASE_URL")
    return normalise_url(url)


def _run(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place; batch mode recreates the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade --sql``)."""
    url = _url()
    _configure(url=url, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
