"""Engines, sessions and migrations.

One engine per process, one session per request or CLI command (``session_scope``), owned outside the
services. SQLite (the default, a file in the instance folder) and PostgreSQL (psycopg 3) are supported.

SQLite is configured for a multi-threaded web server: foreign keys on, WAL journal (readers do not block
the writer), a busy timeout instead of instant "database is locked" errors, and transactions that SQLAlchemy
begins itself (``BEGIN IMMEDIATE`` by default), because the sqlite3 module's own transaction handling does
not begin a transaction before a SELECT, which breaks isolation and SAVEPOINTs.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for the write lock before failing with "database is locked"."""

# pg_advisory_xact_lock key held while migrating, so two processes starting at once migrate one after the
# other (the second finds the schema at head and does nothing). Any constant works; this one spells "lotline".
_MIGRATION_LOCK_KEY = 0x6C6F746C696E65


def database_url(home: Path, url: str | None = None) -> str:
    """The database URL: ``url`` (normalised) when given, else ``sqlite:///<home>/lotline.db``.

    ``home`` is the instance folder (``LOTLINE_HOME``); it is made absolute so the result does not depend on
    the working directory.
    """
    if url and url.strip():
        return normalise_url(url.strip())
    return f"sqlite:///{(Path(home).expanduser().resolve() / 'lotline.db').as_posix()}"


def normalise_url(url: str) -> str:
    """Point plain ``postgresql://`` and ``postgres://`` URLs at psycopg 3; leave anything else alone."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(
    url: str | URL,
    *,
    sqlite_begin: Literal["immediate", "deferred"] = "immediate",
    **kwargs: Any,
) -> Engine:
    """Create the engine for ``url`` (see the module docstring for what is set up on SQLite).

    ``sqlite_begin="immediate"`` takes SQLite's write lock when a transaction begins, so two writers queue
    (up to ``SQLITE_BUSY_TIMEOUT_MS``) instead of one failing when it upgrades from reading to writing.
    ``"deferred"`` lets read-only transactions run side by side at the price of that failure mode.
    Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    sa_url = make_url(normalise_url(url) if isinstance(url, str) else url)
    if sa_url.get_backend_name() == "sqlite":
        return _sqlite_engine(sa_url, sqlite_begin, **kwargs)
    if sa_url.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        # A write holds up to three connections at once (its unit of work, the signing key's advisory lock,
        # a short read of the deployment), so the pool must outgrow the server's threads several times over
        # or writers wait on each other's connections while holding the lock.
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 30)
    return create_engine(sa_url, **kwargs)


def _sqlite_engine(url: URL, begin: str, **kwargs: Any) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    if not in_memory:
        _private_database_file(Path(database).expanduser())
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    # Connections move between threads with the pool (one thread at a time); the check is only a guard.
    connect_args.setdefault("check_same_thread", False)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Turn off the sqlite3 module's own BEGIN handling; SQLAlchemy emits BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    # One writer at a time, queued here rather than in SQLite's busy handler: that handler polls with
    # back-off, so under a burst of writers some wait past the busy timeout and fail with "database is
    # locked" while others go first. Waiting on a lock is orderly and has no timeout. The lock is a file lock
    # beside the database as well as a thread lock, so the processes of `lotline serve --workers N` queue
    # the same way; the busy timeout still guards against writers that do not take it (another program).
    lock_file = None if in_memory else Path(database).expanduser().with_name(Path(database).name + ".writer")
    writer = WriterLock(lock_file)
    _WRITER_LOCKS[engine] = writer

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # `engine.execution_options(sqlite_begin="deferred")` gives a read-only lookup that must not wait for
        # (or block) the write lock a session of the same thread may already hold.
        mode = connection.get_execution_options().get("sqlite_begin", begin)
        if mode == "immediate":
            writer.acquire()
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                writer.release()
                raise
            connection.info["lotline_writer"] = connection.info.get("lotline_writer", 0) + 1
        else:
            connection.exec_driver_sql("BEGIN")

    def _release(connection: Any) -> None:
        held = connection.info.pop("lotline_writer", 0)
        for _ in range(held):
            writer.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)

    return engine


class WriterLock:
    """SQLite's write lock taken in order: a reentrant thread lock, and while a thread holds it, an exclusive
    ``flock`` on ``path`` (None: this process alone, an in-memory database) so that threads of other
    processes on the same database wait in line too. Reentrant like ``threading.RLock``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._fd_pid = 0

    def acquire(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0 and self.path is not None:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None and self._fd_pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _file(self) -> int:
        # A descriptor of this process's own (a fork must not share its parent's: flock is per open file).
        if self._fd is None or self._fd_pid != os.getpid():
            assert self.path is not None
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
            weakref.finalize(self, os.close, self._fd)
        return self._fd


_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()


def writer_lock(engine: Engine) -> WriterLock | None:
    """The write lock of a SQLite engine made by ``make_engine`` (None for other databases): hold it to keep
    every other writer, in this process and in the others on the same file, waiting across several
    transactions (``services.writes.sender_lock``)."""
    return _WRITER_LOCKS.get(engine)


def _private_database_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only before SQLite opens it (SQLite gives the -wal and
    -shm files the database file's mode), and take group and other access away from an existing one and from
    the files beside it (an earlier release, or a umask of 022, may have left them readable)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal", ".writer"):  # .writer: the writers' lock file (WriterLock)
        sibling = path.with_name(path.name + suffix)
        if sibling.exists() and sibling.stat().st_mode & 0o077:
            sibling.chmod(sibling.stat().st_mode & 0o700)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``.

    ``expire_on_commit=False``: objects stay readable after commit (a template renders what a service
    returned without a new query per attribute); load again when fresh state matters.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back when it raises; always closed."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --- migrations --------------------------------------------------------------------------------------


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for the migrations shipped inside the package (no ``alembic.ini``, no cwd).

    For a new revision during development::

        from alembic import command
        command.revision(alembic_config("sqlite:///instance/lotline.db"), "add x", autogenerate=True)
    """
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR.as_posix())
    if url is not None:
        # configparser interpolation would read a '%' in a password as a reference
        config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (Alembic ``upgrade``), in one transaction where the database allows.

    Safe to call at every start: at head it does nothing. On PostgreSQL concurrent callers are serialised by
    an advisory lock; on SQLite by ``BEGIN IMMEDIATE`` (or the write lock taken by the first DDL statement).
    """
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


SQLITE_ANALYSIS_LIMIT = 1000
"""Rows ``refresh_statistics`` samples per index on SQLite: estimates good enough for the planner, in
milliseconds whatever the size of the table."""


def refresh_statistics(engine: Engine) -> None:
    """Bring the planner's statistics up to date: on SQLite, ``ANALYZE`` (sampled, ``SQLITE_ANALYSIS_LIMIT``)
    fills ``sqlite_stat1``, without which SQLite guesses every index equally selective and may walk a whole
    table through an index on a column almost every row shares. Cheap: run at start-up and by the
    maintenance pass. PostgreSQL's autovacuum keeps its own statistics; nothing is done there."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        connection.exec_driver_sql("ANALYZE")


def insert_rows(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples of values in the order of ``columns``) with the driver's ``executemany``. Each
    value goes through its column type's conversion as SQLAlchemy's ``insert()`` would do it (JSON, UTC
    datetimes, event kinds, decimals), without a dictionary per row or SQLAlchemy's per-row statement handling:
    for bulk loads (``supply_chain/scale.py``) of hundreds of thousands of rows."""
    if not rows:
        return
    dialect = connection.dialect
    # Columns left out take their constant Python-side default, as insert() would give them; a computed default
    # (a timestamp, a factory) must be given.
    defaults = [c for c in table.c if c.name not in columns and c.default is not None]
    computed = [c.name for c in defaults if not c.default.is_scalar]  # type: ignore[attr-defined]
    if computed:
        raise ValueError(f"insert_rows into {table.name}: give the columns {', '.join(computed)}")
    constants = tuple(c.default.arg for c in defaults)  # type: ignore[attr-defined]
    columns = [*columns, *(c.name for c in defaults)]
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    converted = [
        tuple(
            value if value is None or convert is None else convert(value)
            for convert, value in zip(processors, row, strict=True)
        )
        for row in (rows if not constants else (tuple(r) + constants for r in rows))
    ]
    connection.exec_driver_sql(sql, converted)


@contextmanager
def postgres_schema(base_url: str, prefix: str = "lotline") -> Iterator[str]:
    """A URL of the PostgreSQL database ``base_url`` whose connections see only a new, empty schema (named
    ``<prefix>_<random>``, put first on their search path); the schema and all in it are dropped on exit. For
    throw-away stores: the tests', the benchmarks' and the scale data set's re-loads."""
    base = make_url(normalise_url(base_url))
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except BaseException:
        admin.dispose()
        raise
    options = " ".join(filter(None, [base.query.get("options", ""), f"-csearch_path={schema}"]))
    try:
        yield base.update_query_dict({"options": options}).render_as_string(hide_password=False)
    finally:
        try:
            with admin.begin() as connection:
                # a session left open in a transaction would block the drop: fail instead of hanging
                connection.execute(text("SET LOCAL lock_timeout = '10s'"))
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
