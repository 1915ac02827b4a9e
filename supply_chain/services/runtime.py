"""Settings and the runtime that owns the database engine, the chain connection and the ledger.

One `Runtime` per process (the web app, a CLI command, a test). Services receive a `Ctx`: one session plus
the runtime's ledger and settings.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from supply_chain.chain.connect import ChainConnection, connect
from supply_chain.chain.ledger import Ledger
from supply_chain.domain.errors import ChainUnavailable, InvalidInput
from supply_chain.services.instance import SECRET_KEY_FILE, read_or_create_secret, secure_instance
from supply_chain.services.keyring import Keyring, load_kek
from supply_chain.store.db import (
    database_url,
    make_engine,
    make_session_factory,
    migrate,
    refresh_statistics,
    session_scope,
)
from supply_chain.store.models import ChainDeployment

EMBEDDED_GAS_LIMIT = 10_000_000


@dataclass(frozen=True)
class Settings:
    """Everything configurable, read from `LOTLINE_*` environment variables in one place.

    ``secret_key`` signs browser sessions only; ``kek`` (the key-encryption key) encrypts organisation chain
    keys only (``services.keyring``). They must differ. ``trusted_proxies`` is how many reverse proxies in front
    of the app append to ``X-Forwarded-For``/``-Proto`` (0: those headers are ignored, the client address is the
    TCP peer's).
    """

    home: Path
    database_url: str
    chain_url: str | None
    secret_key: str
    public_url: str
    kek: str
    kek_in_file: bool = False
    """Whether the KEK is the instance folder's ``kek`` file (rotation then replaces it there)."""
    trusted_proxies: int = 0
    chain_timeout: float = 10.0
    smtp_host: str | None = None
    """Outgoing mail server (``LOTLINE_SMTP_HOST``); unset: e-mail deliveries are marked not configured."""
    smtp_port: int = 587
    smtp_tls: str = "starttls"
    """``none`` (plain SMTP), ``starttls`` (upgrade after connecting, port 587) or ``ssl`` (TLS from the
    start, port 465)."""
    smtp_user: str | None = None
    smtp_password: str | None = None
    mail_from: str = "Lotline <notifications@lotline.invalid>"
    smtp_timeout: float = 15.0
    webhook_timeout: float = 10.0
    webhook_allow_private: bool = False
    """Whether webhooks may go to loopback, private or link-local addresses (tests, closed networks)."""
    scan_page_cache: int = 512
    """How many rendered scan pages each server process keeps (``LOTLINE_SCAN_PAGE_CACHE``; 0: none), each under
    the version of its lot's lineage (``app/public/page_cache.py``)."""
    workers: int | None = 1
    """How many processes ``lotline serve`` starts (``LOTLINE_WORKERS``; ``auto``, stored as None: one per
    core; ``worker_processes``). Other than 1, writes on SQLite also hold its write lock from signing to
    receipt (``services.writes.sender_lock``): another process may be signing for the same organisation."""

    def __post_init__(self) -> None:
        if self.kek == self.secret_key:
            raise InvalidInput(
                "LOTLINE_KEK must differ from LOTLINE_SECRET_KEY: one signs sessions, the other encrypts keys",
                field="LOTLINE_KEK",
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        home = Path(str(overrides.pop("home", None) or env.get("LOTLINE_HOME") or "instance")).resolve()
        secure_instance(home)
        values: dict[str, object] = {
            "home": home,
            "database_url": database_url(home, env.get("LOTLINE_DATABASE_URL") or None),
            "chain_url": env.get("LOTLINE_CHAIN_URL") or None,
            "secret_key": env.get("LOTLINE_SECRET_KEY") or _instance_secret(home),
            "public_url": (env.get("LOTLINE_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
            "trusted_proxies": _trusted_proxies(env.get("LOTLINE_TRUSTED_PROXIES")),
            "scan_page_cache": _count("LOTLINE_SCAN_PAGE_CACHE", env.get("LOTLINE_SCAN_PAGE_CACHE"), 512),
            "workers": parse_workers("LOTLINE_WORKERS", env.get("LOTLINE_WORKERS")),
        } | _mail_settings(env)
        given = overrides.pop("kek", None)
        values["kek"] = given or load_kek(home, env)
        values["kek_in_file"] = not (given or env.get("LOTLINE_KEK"))
        return cls(**(values | overrides))  # type: ignore[arg-type]

    @property
    def chain_mode(self) -> str:
        return "rpc" if self.chain_url else "embedded"

    def worker_processes(self, requested: str | None = None) -> int:
        """How many processes ``lotline serve`` runs: ``requested`` (the ``--workers`` text; None: the
        ``LOTLINE_WORKERS`` setting), ``auto`` meaning one per core. Every configuration allows several: on
        the embedded chain the first process holds it and the others reach it through that one
        (``chain.holder``); on SQLite the processes queue for its one write lock (``db.WriterLock``).
        InvalidInput naming the option or variable for a count that is not one."""
        field = "LOTLINE_WORKERS" if requested is None else "--workers"
        count = self.workers if requested is None else parse_workers(field, requested)
        return (os.cpu_count() or 1) if count is None else count


def _count(name: str, text: str | None, default: int) -> int:
    """A whole number of zero or more from the environment; InvalidInput naming the variable otherwise."""
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidInput(f"{name} must be a whole number of 0 or more, got {text!r}", field=name)
    return value


MAX_WORKERS = 64


def parse_workers(name: str, text: str | None) -> int | None:
    """A number of server processes from 1 to ``MAX_WORKERS``, or ``auto`` (None); unset: 1. InvalidInput naming
    ``name`` otherwise."""
    if text is None or not text.strip():
        return 1
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_WORKERS:
        raise InvalidInput(f"{name} must be a whole number from 1 to {MAX_WORKERS} or auto, got {text!r}", field=name)
    return value


def _instance_secret(home: Path) -> str:
    """A per-installation session secret kept in the instance folder when LOTLINE_SECRET_KEY is not set."""
    return read_or_create_secret(home / SECRET_KEY_FILE, secrets.token_hex(32))


SMTP_TLS_MODES = {"none": 25, "starttls": 587, "ssl": 465}
"""The ``LOTLINE_SMTP_TLS`` modes and the port each uses when ``LOTLINE_SMTP_PORT`` is not set."""


def _mail_settings(env: Mapping[str, str]) -> dict[str, object]:
    """The ``LOTLINE_SMTP_*``, ``LOTLINE_MAIL_FROM`` and ``LOTLINE_WEBHOOK_*`` settings (services.delivery)."""
    tls = (env.get("LOTLINE_SMTP_TLS") or "starttls").strip().lower()
    if tls not in SMTP_TLS_MODES:
        raise InvalidInput(
            f"LOTLINE_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, got {tls!r}", field="LOTLINE_SMTP_TLS"
        )
    port_text = (env.get("LOTLINE_SMTP_PORT") or "").strip()
    try:
        port = int(port_text) if port_text else SMTP_TLS_MODES[tls]
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise InvalidInput(
            f"LOTLINE_SMTP_PORT must be a port number from 1 to 65535, got {port_text!r}", field="LOTLINE_SMTP_PORT"
        )
    values: dict[str, object] = {
        "smtp_host": (env.get("LOTLINE_SMTP_HOST") or "").strip() or None,
        "smtp_port": port,
        "smtp_tls": tls,
        "smtp_user": env.get("LOTLINE_SMTP_USER") or None,
        "smtp_password": env.get("LOTLINE_SMTP_PASSWORD") or None,
        "webhook_allow_private": (env.get("LOTLINE_WEBHOOK_ALLOW_PRIVATE") or "").strip().lower()
        in ("1", "true", "yes"),
    }
    if env.get("LOTLINE_MAIL_FROM"):
        values["mail_from"] = env["LOTLINE_MAIL_FROM"].strip()
    return values


def _trusted_proxies(value: str | None) -> int:
    try:
        hops = int((value or "0").strip())
    except ValueError:
        hops = -1
    if not 0 <= hops <= 10:
        raise InvalidInput(
            f"LOTLINE_TRUSTED_PROXIES must be a whole number of proxies from 0 to 10, got {value!r}",
            field="LOTLINE_TRUSTED_PROXIES",
        )
    return hops


@dataclass
class Ctx:
    """What a service call needs: one database session, the ledger, the settings."""

    session: Session
    runtime: Runtime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger


@dataclass
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session] = field(init=False)
    _chain: ChainConnection | None = field(default=None, init=False)
    _ledger: Ledger | None = field(default=None, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)
    in_flight: set[str] = field(default_factory=set, init=False)
    """Transactions this process is sending right now (between storing them as pending and applying their
    receipt): the maintenance pass leaves them to their writer instead of resending or settling them."""

    def __post_init__(self) -> None:
        self.engine = make_engine(self.settings.database_url)
        migrate(self.engine)
        refresh_statistics(self.engine)
        self.sessions = make_session_factory(self.engine)
        self.keyring = Keyring(self.settings.kek, self.settings.home, file_backed=self.settings.kek_in_file)
        """Opens and seals organisation keys; keys left under the session secret are moved under the KEK now."""
        self.keyring.settle(self.sessions, self.settings.secret_key)
        # Sessions for requests that only read (the consumer page, QR codes): on SQLite they neither take
        # nor wait for the write lock, so pages are served while writes run (WAL readers see the last commit).
        self.read_sessions = make_session_factory(self.engine.execution_options(sqlite_begin="deferred"))

    # ------------------------------------------------------------ sessions

    @contextmanager
    def ctx(self) -> Iterator[Ctx]:
        """A unit of work: commit on success, roll back on error, always close."""
        with session_scope(self.sessions) as session:
            yield Ctx(session, self)

    @contextmanager
    def read_ctx(self) -> Iterator[Ctx]:
        """A unit of work that only reads (``read_sessions``): on SQLite it neither takes nor waits for the
        write lock, so writers go on while it runs."""
        with session_scope(self.read_sessions) as session:
            yield Ctx(session, self)

    # ------------------------------------------------------------ chain

    @property
    def chain(self) -> ChainConnection:
        with self._lock:
            if self._chain is None:
                self._chain = connect(self.settings.home, self.settings.chain_url, timeout=self.settings.chain_timeout)
            return self._chain

    @property
    def ledger(self) -> Ledger:
        """The deployed ledger; ChainUnavailable with the remedy if it has not been deployed on this chain."""
        with self._lock:
            if self._ledger is None:
                chain = self.chain
                chain_id = chain.w3.eth.chain_id
                # A read that may run while this thread's own session holds SQLite's write lock.
                with Session(self.engine.execution_options(sqlite_begin="deferred")) as session:
                    deployment = session.scalars(
                        select(ChainDeployment).where(
                            ChainDeployment.chain_id == chain_id, ChainDeployment.contract_name == "LotLedger"
                        )
                    ).first()
                if deployment is None:
                    raise ChainUnavailable(
                        f"no LotLedger deployed on chain {chain_id} for this database: run `lotline deploy`"
                    )
                self._ledger = self.ledger_at(deployment.address)
            return self._ledger

    def ledger_at(self, address: str) -> Ledger:
        fixed_gas = EMBEDDED_GAS_LIMIT if self.chain.mode == "embedded" else None
        return Ledger(self.chain.w3, address, fixed_gas=fixed_gas)

    def forget_ledger(self) -> None:
        with self._lock:
            self._ledger = None

    def close(self) -> None:
        with self._lock:
            if self._chain is not None:
                self._chain.close()
                self._chain = None
                self._ledger = None
        self.engine.dispose()
