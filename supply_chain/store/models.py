"""The off-chain store: SQLAlchemy 2.0 models, portable across SQLite and PostgreSQL.

The chain is authoritative for custody, status and the head hash of every lot; these tables hold what the
chain does not (full event payloads, users, sites, products, documents) and an index of the chain for fast
reads. Conventions:

- Every timestamp is timezone-aware UTC (``UTCDateTime``): naive datetimes are refused when written, and
  values read back from SQLite (which stores no offset) come back with ``tzinfo=UTC``.
- Quantities are ``Numeric(18, 6)`` and read back as ``Decimal``.
- Hashes and on-chain ids are ``0x`` + 64 lower-case hex digits; addresses are EIP-55 checksummed. The
  validators below normalise bytes / any-case input on assignment, so string comparisons are exact.
- Enumerations are stored as plain strings (``lot.status == "held"``) and checked by the database; the
  validators also accept the domain enums (``lot.status = LotStatus.HELD`` stores ``"held"``). Event kinds
  are stored as integers and read back as ``EventKind``.

Every constraint has a name (``NAMING_CONVENTION``) so later Alembic migrations can address it, also on
SQLite (batch mode). ``migrations/versions/0001_initial.py`` creates exactly this schema; a test compares
the two.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    literal,
    text,
)
from sqlalchemy import event as sa_event
from sqlalchemy import false as sa_false
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.mutable import MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, validates
from sqlalchemy.types import DateTime, TypeDecorator

from supply_chain.domain import policy
from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.hashing import HASH_SCHEMES, SCHEME_PLAIN, ZERO_HASH, bytes32, hex32, keccak256
from supply_chain.domain.kinds import EventKind, InspectionOutcome, LotStatus

# --- vocabularies (the CHECK constraints below list the same values) -----------------------------------

ROLES = policy.ROLES
"""Organisation roles (the rulebook's); the chain holds the authoritative grant, this copy drives the dashboard."""

LOCATION_KINDS = ("farm", "packhouse", "plant", "warehouse", "store", "vessel", "port", "lab", "other")
"""Suggested kinds of location (not enforced by the database: sites come in more kinds than we can list)."""

LOT_STATUSES = tuple(s.value for s in policy.Status)
"""The rulebook's status vocabulary (``policy.Status``): the contract's statuses in lower case, plus ``pending``
(the lot's creation is stored but not mined yet)."""

EVENT_STATUSES = ("pending", "confirmed", "failed")
"""pending: stored, its transaction sent or about to be; confirmed: mined and indexed; failed: reverted."""

CONFIRMED = text("status = 'confirmed'")
UNCONFIRMED = text("status <> 'confirmed'")
LOT_HELD = text("status = 'held'")
"""The conditions of the partial indexes (a query uses one only when its own filter implies it)."""

VERIFICATION_STATES = ("verified", "tampered", "pending", "unverifiable")
INSPECTION_OUTCOMES = ("pass", "fail", "conditional")
RECALL_CLASSES = ("I", "II", "III")
RECALL_DEPTHS = tuple(d.value for d in policy.RecallDepth)
RECALL_DRAFT_STAGES = tuple(
    s.value for s in policy.RecallStage if s is not policy.RecallStage.TERMINATED
)
"""A draft is drafted, in review, issued (it became a recall) or discarded."""
RECALL_STEP_KINDS = ("drafted", "edited", "reviewed", "issued", "update", "reminder", "terminated", "discarded")
TOKEN_SCOPES = ("read", "write")
CAPTURE_JOB_STATUSES = ("queued", "running", "done", "failed")
"""queued: accepted, waiting for a worker (also after an interruption); running: a worker holds its lease;
done: every event written; failed: refused when its writes were planned or by the chain (see ``error_*``)."""
DELIVERY_CHANNELS = ("email", "webhook")
DELIVERY_STATUSES = ("pending", "sending", "delivered", "failed", "not_configured", "cancelled")
"""pending: waiting for its (next) attempt; sending: a worker holds its lease; delivered: accepted by the SMTP
server or answered 2xx by the endpoint; failed: refused for good or out of attempts; not_configured: no SMTP
server or no address to send to (nothing was tried); cancelled: its webhook endpoint was removed or deactivated."""

ZERO_HEAD = hex32(ZERO_HASH)
"""The head hash of a lot with no confirmed event."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default of every ``*_at`` column)."""
    return datetime.now(UTC)


# --- column types ------------------------------------------------------------------------------------


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamp with time zone``; SQLite stores the UTC wall time without offset. Naive
    datetimes are refused: their meaning depends on the machine that made them.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: use a timezone-aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EventKindType(TypeDecorator[EventKind]):
    """An ``EventKind`` stored as its contract number (an integer column)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        return None if value is None else int(EventKind(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> EventKind | None:
        return None if value is None else EventKind(value)


def json_document() -> JSON:
    """JSON on SQLite, JSONB on PostgreSQL (indexable, compact).

    PostgreSQL does not keep key order: the payload hash is computed over the RFC 8785 canonical form, which
    sorts keys, so verification is unaffected.
    """
    return JSON().with_variant(JSONB(), "postgresql")


JSONDocument = json_document()

LargeId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit key for the big tables; SQLite only auto-increments a column declared INTEGER PRIMARY KEY."""

Quantity = Numeric(18, 6)
Hash32 = String(66)
"""``0x`` + 64 hex digits."""
Address = String(42)
"""``0x`` + 40 hex digits, EIP-55 checksummed."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Lotline table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        date: Date(),
        Decimal: Quantity,
        dict[str, Any]: JSONDocument,
        dict[str, str]: JSONDocument,
    }


# --- value normalisation shared by the validators ----------------------------------------------------

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


def checksum_address(value: object, field: str = "address") -> str:
    """Return ``value`` as an EIP-55 checksummed address; refuse a mixed-case address with a bad checksum."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _ADDRESS_RE.fullmatch(text):
        raise InvalidInput(
            f"{field}: expected an address of 0x and 40 hex digits, got {value!r}",
            field=field,
            code="invalid_address",
        )
    digits = text[2:]
    lower = digits.lower()
    nibbles = keccak256(lower.encode("ascii")).hex()
    checksummed = "".join(c.upper() if int(n, 16) >= 8 else c for c, n in zip(lower, nibbles, strict=False))
    if digits not in (lower, digits.upper()) and digits != checksummed:
        raise InvalidInput(
            f"{field}: {text} fails its EIP-55 checksum (a typo?)", field=field, code="invalid_address"
        )
    return "0x" + checksummed


def _hash(value: object, field: str) -> str:
    """Normalise a 32-byte hash (bytes, or hex in any case, ``0x`` optional) to ``0x`` + lower-case hex."""
    if not isinstance(value, str | bytes | bytearray):
        raise InvalidInput(
            f"{field}: expected 32 bytes or 64 hex digits, got {value!r}", field=field, code="invalid_hash"
        )
    return hex32(bytes32(value, field))


def _choice(value: object, allowed: tuple[str, ...], field: str) -> str:
    """Normalise ``value`` (a string or a domain enum member) to one of ``allowed``."""
    if isinstance(value, Enum):
        value = value.value if isinstance(value.value, str) else value.name.lower()
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(
            f"{field}: must be one of {', '.join(allowed)}, got {value!r}", field=field, code="invalid_choice"
        )
    return value


def _in(column: str, allowed: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in allowed)})"


# --- organisations, users, sites, products -----------------------------------------------------------


class Organisation(Base):
    """A company or agency taking part: a farm, a packer, a carrier, a shop, an inspector, a regulator.

    Each organisation has its own chain account; ``encrypted_key`` is its eth-account keystore JSON,
    encrypted under the installation's key-encryption key (``LOTLINE_KEK``, see ``supply_chain.chain.keys``);
    ``key_encryption_id`` names that KEK (its fingerprint), None for a key still under the session secret of
    releases before the KEK (re-encrypted at the next start, see ``services.keyring``).

    A suspended organisation (``suspended_at`` set, see ``services.orgs.suspend``) holds no role, on chain or
    here; ``suspended_roles`` keeps what it held so reinstatement restores exactly that. Suspension also deletes
    its users' browser sessions (``UserSession``).
    """

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    roles: Mapped[list[str]] = mapped_column(MutableList.as_mutable(json_document()), default=list)
    chain_address: Mapped[str] = mapped_column(Address, unique=True)
    encrypted_key: Mapped[str] = mapped_column(Text)
    key_encryption_id: Mapped[str | None] = mapped_column(String(32))
    gs1_company_prefix: Mapped[str | None] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    suspended_at: Mapped[datetime | None]
    suspended_reason: Mapped[str | None] = mapped_column(Text)
    suspended_roles: Mapped[list[str] | None] = mapped_column(
        JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    )
    suspended_by_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    known_from_chain: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    """An organisation this instance knows only from the chain: the signer, creator or custodian of a lot
    whose history came in as a Lotline export from another instance (``services/epcis/adopt.py``). Its
    ``encrypted_key`` is empty: it holds no key here, has no user or token, and acts in nothing."""
    notification_email: Mapped[str | None] = mapped_column(String(1000))
    """Where notices go by e-mail: one or more addresses, comma-separated (``services.delivery``); when
    empty, to every active user of the organisation."""

    users: Mapped[list[User]] = relationship(back_populates="organisation", order_by="User.id")
    locations: Mapped[list[Location]] = relationship(back_populates="organisation", order_by="Location.id")
    products: Mapped[list[Product]] = relationship(back_populates="organisation", order_by="Product.id")

    suspended_by: Mapped[Organisation | None] = relationship(remote_side=[id], foreign_keys=[suspended_by_id])
    # Loaded with the organisation (one extra query per load, usually no rows): `company_prefixes` is read
    # wherever a GTIN or GLN is checked, also on organisations kept from an earlier session.
    extra_prefixes: Mapped[list[CompanyPrefix]] = relationship(
        back_populates="organisation", order_by="CompanyPrefix.id", lazy="selectin"
    )

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def company_prefixes(self) -> list[str]:
        """Every GS1 company prefix the organisation holds: ``gs1_company_prefix`` (the first) and those added
        since (``CompanyPrefix``)."""
        first = [self.gs1_company_prefix] if self.gs1_company_prefix else []
        return first + [p.prefix for p in self.extra_prefixes]

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None

    @validates("roles")
    def _check_roles(self, _key: str, roles: list[str]) -> list[str]:
        unknown = [role for role in roles if role not in ROLES]
        if unknown:
            raise InvalidInput(
                f"roles: unknown role(s) {', '.join(map(repr, unknown))}; known: {', '.join(ROLES)}",
                field="roles",
                code="invalid_role",
            )
        return list(dict.fromkeys(roles))

    @validates("chain_address")
    def _check_address(self, _key: str, value: str) -> str:
        return checksum_address(value, "chain_address")

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r}>"


class User(Base):
    """A person who signs in to the dashboard on behalf of one organisation."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    language: Mapped[str | None] = mapped_column(String(16))
    """The language the user chose for pages and e-mails (``en``, ``zh_Hans``); None follows the browser."""

    organisation: Mapped[Organisation] = relationship(back_populates="users")

    @validates("email")
    def _lowercase_email(self, _key: str, value: str) -> str:
        return value.strip().lower()

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email!r}>"


class FormDraft(Base):
    """What a user typed into a form when their session had ended (``services.drafts``): shown again, filled,
    once they sign in, and deleted then. Never a password, token or typed confirmation; bounded in size."""

    __tablename__ = "form_drafts"
    __table_args__ = (UniqueConstraint("user_id", "path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    path: Mapped[str] = mapped_column(String(300))
    fields: Mapped[list[Any]] = mapped_column(json_document(), default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserSession(Base):
    """A signed-in browser: the signed session cookie carries a random token, the store keeps its SHA-256.

    Deleting the row ends the session wherever the cookie has been copied to (sign-out, password change,
    suspension); ``expires_at`` ends it at the latest (``services.sessions.SESSION_LIFETIME`` after sign-in).
    """

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    user: Mapped[User] = relationship()


class SignInThrottle(Base):
    """Sign-in attempts counted per key (an account's e-mail or a client address) in a fixed window.

    An attempt is reserved here (one atomic upsert, committed) before the password is checked, so parallel
    requests and several server processes share one count (``services.throttle``).
    """

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_started: Mapped[int] = mapped_column(BigInteger, index=True)
    """Unix time (seconds) the window began."""
    attempts: Mapped[int]


class CompanyPrefix(Base):
    """A further GS1 company prefix of an organisation (the first is ``Organisation.gs1_company_prefix``);
    registered on chain to the organisation's key like the first (``services.orgs.add_company_prefix``)."""

    __tablename__ = "company_prefixes"
    __table_args__ = (CheckConstraint("length(prefix) >= 4 AND length(prefix) <= 12", name="prefix_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(12), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship(back_populates="extra_prefixes")


class Location(Base):
    """A site identified by its GLN: a field, a packhouse, a plant, a warehouse, a shop, a vessel."""

    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint("length(gln) = 13", name="gln_length"),
        CheckConstraint("latitude IS NULL OR (latitude >= -90 AND latitude <= 90)", name="latitude_range"),
        CheckConstraint(
            "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)", name="longitude_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gln: Mapped[str] = mapped_column(String(13), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(Text)
    """The postal address, free text."""
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32), default="other")
    """One of ``LOCATION_KINDS`` in practice."""

    organisation: Mapped[Organisation] = relationship(back_populates="locations")

    def __repr__(self) -> str:
        return f"<Location {self.gln} {self.name!r}>"


class Product(Base):
    """A trade item identified by its GTIN-14."""

    __tablename__ = "products"
    __table_args__ = (CheckConstraint("length(gtin) = 14", name="gtin_length"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    gtin: Mapped[str] = mapped_column(String(14), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    on_food_traceability_list: Mapped[bool] = mapped_column(Boolean, default=False)
    """FSMA 204 Food Traceability List: such foods need the full set of KDEs."""
    unit: Mapped[str] = mapped_column(String(16), default="kg")
    """The unit of measure new lots of this product start with."""
    commodity: Mapped[str | None] = mapped_column(String(100))
    """The commodity every lot of this product is (e.g. 'romaine lettuce'); events may not name another."""
    variety: Mapped[str | None] = mapped_column(String(100))
    """The variety, where the product is one variety (e.g. 'Parris Island'); events may not name another."""

    organisation: Mapped[Organisation] = relationship(back_populates="products")
    lots: Mapped[list[Lot]] = relationship(back_populates="product", order_by="Lot.id")

    def __repr__(self) -> str:
        return f"<Product {self.gtin} {self.name!r}>"


# --- lots and their lineage --------------------------------------------------------------------------


class Lot(Base):
    """A traceability lot: GTIN + lot code, and its on-chain id ``keccak256(gtin14 ‖ lotCode)``.

    ``custodian_org_id``, ``status``, ``event_count`` and ``head_hash`` mirror the chain as last confirmed;
    ``quantity`` is what is left after transformations consumed part of it.
    """

    __tablename__ = "lots"
    __table_args__ = (
        UniqueConstraint("gtin", "lot_code"),
        CheckConstraint("length(gtin) = 14", name="gtin_length"),
        CheckConstraint("length(lot_code) BETWEEN 1 AND 20", name="lot_code_length"),
        CheckConstraint(_in("status", LOT_STATUSES), name="status"),
        CheckConstraint(
            f"verification_state IS NULL OR {_in('verification_state', VERIFICATION_STATES)}",
            name="verification_state",
        ),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("initial_quantity > 0", name="initial_quantity_positive"),
        CheckConstraint("event_count >= 0", name="event_count_not_negative"),
        Index("ix_lots_creator_org_id_status", "creator_org_id", "status"),  # counts lots made, by status
        # The held lots, newest first (oversight); partial: an index over every status would be chosen to
        # group all lots by status rather than read an organisation's lots.
        Index("ix_lots_held", "id", sqlite_where=LOT_HELD, postgresql_where=LOT_HELD),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    gtin: Mapped[str] = mapped_column(String(14))
    lot_code: Mapped[str] = mapped_column(String(20))
    lot_id: Mapped[str] = mapped_column(Hash32, unique=True)
    """The on-chain id (``0x`` + 64 hex digits); ``Event.lot_id`` by contrast is a key to ``lots.id``."""
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    creator_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    custodian_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    pending_custodian_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    quantity: Mapped[Decimal]
    unit: Mapped[str] = mapped_column(String(16))
    initial_quantity: Mapped[Decimal]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    pack_date: Mapped[date | None]
    harvest_date: Mapped[date | None]
    origin_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    recall_source_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    """For a recalled lot, the lot its recall started from (itself for a direct recall), as the chain's
    ``LotRecalled`` log names it."""
    event_count: Mapped[int] = mapped_column(default=0)
    """Confirmed events, as the chain counts them."""
    head_hash: Mapped[str] = mapped_column(Hash32, default=ZERO_HEAD)
    """The head hash after the last confirmed event (``ZERO_HEAD`` before the first)."""
    verification_state: Mapped[str | None] = mapped_column(String(16))
    verification_detail: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[datetime | None]
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    """Moves (by one) in every flush that updates the lot's row (``_bump_revisions``). The scan page's cache
    key sums it over the lot and its ancestors (``queries.lineage_version``), so a change to any of them reaches
    every descendant's page without writing to the descendants."""

    product: Mapped[Product] = relationship(back_populates="lots")
    creator: Mapped[Organisation] = relationship(foreign_keys=[creator_org_id])
    custodian: Mapped[Organisation] = relationship(foreign_keys=[custodian_org_id])
    pending_custodian: Mapped[Organisation | None] = relationship(foreign_keys=[pending_custodian_org_id])
    origin_location: Mapped[Location | None] = relationship()
    recall_source: Mapped[Lot | None] = relationship(
        remote_side=[id], foreign_keys=[recall_source_id], post_update=True  # a direct recall names the lot itself
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="lot",
        # confirmed events in chain order, then the pending ones in the order they were recorded
        order_by=lambda: (Event.seq.asc().nulls_last(), Event.id),
    )
    inputs: Mapped[list[LotInput]] = relationship(
        foreign_keys="LotInput.output_lot_id", back_populates="output_lot", order_by="LotInput.input_lot_id"
    )
    """Edges to the lots this lot was made from (backward lineage, one step)."""
    outputs: Mapped[list[LotInput]] = relationship(
        foreign_keys="LotInput.input_lot_id", back_populates="input_lot", order_by="LotInput.output_lot_id"
    )
    """Edges to the lots made from this lot (forward lineage, one step)."""
    inspections: Mapped[list[Inspection]] = relationship(back_populates="lot", order_by="Inspection.id")
    recalls: Mapped[list[Recall]] = relationship(back_populates="lot", order_by="Recall.id")
    documents: Mapped[list[Document]] = relationship(back_populates="lot", order_by="Document.id")
    sensor_batches: Mapped[list[SensorBatch]] = relationship(back_populates="lot", order_by="SensorBatch.id")

    @property
    def lot_status(self) -> LotStatus:
        """``status`` as the domain/contract enum."""
        return LotStatus[self.status.upper()]

    @validates("status")
    def _check_status(self, _key: str, value: object) -> str:
        return _choice(value, LOT_STATUSES, "status")

    @validates("verification_state")
    def _check_verification_state(self, _key: str, value: object) -> str | None:
        return None if value is None else _choice(value, VERIFICATION_STATES, "verification_state")

    @validates("lot_id", "head_hash")
    def _check_hash(self, key: str, value: object) -> str:
        return _hash(value, key)

    def __repr__(self) -> str:
        return f"<Lot {self.id} {self.gtin}/{self.lot_code} {self.status}>"


class LotInput(Base):
    """A lineage edge: ``quantity`` of ``input_lot`` went into ``output_lot`` (transformation).

    The primary key (output, input) serves the backward walk; ``ix_lot_inputs_input_lot_id`` the forward one.
    """

    __tablename__ = "lot_inputs"
    __table_args__ = (
        CheckConstraint("output_lot_id <> input_lot_id", name="not_own_input"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    output_lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), primary_key=True)
    input_lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), primary_key=True, index=True)
    quantity: Mapped[Decimal]
    """How much of the input lot was consumed, in ``unit``."""
    unit: Mapped[str] = mapped_column(String(16))

    output_lot: Mapped[Lot] = relationship(foreign_keys=[output_lot_id], back_populates="inputs")
    input_lot: Mapped[Lot] = relationship(foreign_keys=[input_lot_id], back_populates="outputs")

    def __repr__(self) -> str:
        return f"<LotInput {self.input_lot_id} -> {self.output_lot_id} {self.quantity} {self.unit}>"


# --- events and what hangs off them ------------------------------------------------------------------


class Event(Base):
    """One event of a lot's history: the full KDE payload and where it stands on chain.

    A row is written ``pending`` before its transaction is sent and becomes ``confirmed`` (with ``seq``,
    ``tx_hash``, ``block_number``, ``log_index`` and ``head_after``) once the chain has it, or ``failed``
    with a ``failure_reason``. ``payload_hash`` is ``keccak256(RFC 8785 canonical payload)``, the
    ``dataHash`` on chain under hash scheme 1; scheme 2 hashes the public fields in clear and a commitment to
    each other field, salted from ``salt`` (``domain/disclosure.py``). Events sent in one transaction share a
    ``batch_id``.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("lot_id", "seq"),
        CheckConstraint("seq IS NULL OR seq >= 1", name="seq_positive"),
        CheckConstraint(_in("status", EVENT_STATUSES), name="status"),
        # Partial: nearly every event is confirmed, so an index over all statuses is one the planner should
        # never use for ``status = 'confirmed'`` (it did on SQLite, scanning most of the table through it);
        # kept for the rare pending and failed rows (the maintenance pass, the capture jobs).
        Index("ix_events_status", "status", sqlite_where=UNCONFIRMED, postgresql_where=UNCONFIRMED),
        # The rare kinds (holds, recalls, inspections) of confirmed events, for the organisations' records
        # (``services/credit.py``) without reading every event of an organisation's lots.
        Index("ix_events_confirmed_kind", "kind", "lot_id", sqlite_where=CONFIRMED, postgresql_where=CONFIRMED),
        # A lineage's pending and failed events (``queries.lineage_version``, asked on every scan), found per lot
        # without reading its confirmed history or every unconfirmed event of the store.
        Index("ix_events_unconfirmed_lot_id", "lot_id", "id", sqlite_where=UNCONFIRMED, postgresql_where=UNCONFIRMED),
    )

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"))
    """Key to ``lots.id`` (the on-chain id is ``Lot.lot_id``)."""
    seq: Mapped[int | None]
    """1-based position in the lot's on-chain history; None until confirmed."""
    kind: Mapped[EventKind] = mapped_column(EventKindType())
    actor_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    actor_address: Mapped[str] = mapped_column(Address)
    payload: Mapped[dict[str, Any]]
    payload_hash: Mapped[str] = mapped_column(Hash32)
    hash_scheme: Mapped[int] = mapped_column(SmallInteger, default=SCHEME_PLAIN, server_default="1")
    """How ``payload_hash`` was computed (docs/hashing.md): 1 = ``keccak256(JCS(payload))``, events written
    before salted commitments; 2 = the public fields in clear and a salted commitment to each other field."""
    salt: Mapped[str | None] = mapped_column(Hash32)
    """Scheme 2: the event's 32 random bytes from which each sealed field's salt is derived. Kept off chain
    and never shown: an audience gets the salts of the fields it may see (``domain/disclosure.py``)."""
    disclosure: Mapped[dict[str, Any] | None] = mapped_column(json_document(), nullable=True)
    """An event whose payload this store holds only in part (the fields a Lotline export showed, taken in by
    ``services/epcis/adopt.py``): the proof that came with them (``lotline:proof``), with which those fields
    re-hash to the chain's ``dataHash`` without the event salt (``disclosure.disclosed_hash``). None for
    events written here."""
    visibility: Mapped[dict[str, str]] = mapped_column(default=dict)
    """Payload field -> ``public`` | ``consortium`` | ``private``; consumers see the public fields only."""
    status: Mapped[str] = mapped_column(String(16), default="pending")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(Hash32, index=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    log_index: Mapped[int | None]
    head_after: Mapped[str | None] = mapped_column(Hash32)
    """The lot's head hash on chain after this event."""
    occurred_at: Mapped[datetime]
    """Business time, from the payload (when the harvest, shipment, ... happened)."""
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)

    lot: Mapped[Lot] = relationship(back_populates="events")
    actor: Mapped[Organisation] = relationship()
    inspection: Mapped[Inspection | None] = relationship(back_populates="event")
    recall: Mapped[Recall | None] = relationship(back_populates="event")
    sensor_batch: Mapped[SensorBatch | None] = relationship(back_populates="event")

    @validates("status")
    def _check_status(self, _key: str, value: object) -> str:
        return _choice(value, EVENT_STATUSES, "status")

    @validates("payload_hash", "tx_hash", "head_after", "salt")
    def _check_hash(self, key: str, value: object) -> str | None:
        return None if value is None else _hash(value, key)

    @validates("actor_address")
    def _check_address(self, _key: str, value: str) -> str:
        return checksum_address(value, "actor_address")

    @validates("hash_scheme")
    def _check_scheme(self, _key: str, value: object) -> int:
        if value not in HASH_SCHEMES:
            raise InvalidInput(f"hash_scheme: unknown scheme {value!r}", field="hash_scheme", code="invalid_hash")
        return int(value)  # type: ignore[call-overload]

    def __repr__(self) -> str:
        kind = self.kind.name if isinstance(self.kind, EventKind) else self.kind
        return f"<Event {self.id} lot={self.lot_id} seq={self.seq} {kind} {self.status}>"


def held_lots() -> Any:
    """``lots.status = 'held'``, written into the SQL so SQLite may use the partial ``ix_lots_held``."""
    return Lot.status == literal("held", literal_execute=True)


def confirmed_events() -> Any:
    """``events.status = 'confirmed'`` with the value written into the SQL rather than bound: SQLite uses the
    partial ``ix_events_confirmed_kind`` only for a filter it can see implies the index's condition."""
    return Event.status == literal("confirmed", literal_execute=True)


class Inspection(Base):
    """An inspection or lab result recorded by an inspector; a fail puts the lot on hold on chain."""

    __tablename__ = "inspections"
    __table_args__ = (CheckConstraint(_in("outcome", INSPECTION_OUTCOMES), name="outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), unique=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    inspector_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)

    event: Mapped[Event] = relationship(back_populates="inspection")
    lot: Mapped[Lot] = relationship(back_populates="inspections")
    inspector: Mapped[Organisation] = relationship()
    documents: Mapped[list[Document]] = relationship(back_populates="inspection", order_by="Document.id")

    @property
    def inspection_outcome(self) -> InspectionOutcome:
        return InspectionOutcome[self.outcome.upper()]

    @validates("outcome")
    def _check_outcome(self, _key: str, value: object) -> str:
        return _choice(value, INSPECTION_OUTCOMES, "outcome")


class Document(Base):
    """An uploaded file (certificate, lab report, bill of lading) kept under the instance folder.

    ``storage_path`` is relative to ``LOTLINE_HOME``; ``sha256`` (64 hex digits) is what an event payload
    cites, so a swapped file is detected.
    """

    __tablename__ = "documents"
    __table_args__ = (CheckConstraint("size >= 0", name="size_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inspection_id: Mapped[int | None] = mapped_column(ForeignKey("inspections.id"), index=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    uploader_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # Files are named by content, so one stored file may back several documents (a certificate covering
    # several lots).
    storage_path: Mapped[str] = mapped_column(String(500))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)

    inspection: Mapped[Inspection | None] = relationship(back_populates="documents")
    lot: Mapped[Lot] = relationship(back_populates="documents")
    uploader: Mapped[Organisation | None] = relationship()


class Recall(Base):
    """A recall of a lot by a regulator (FDA class I, II or III); it reaches every lot made from it."""

    __tablename__ = "recalls"
    __table_args__ = (CheckConstraint(_in("recall_class", RECALL_CLASSES), name="recall_class"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    recall_class: Mapped[str] = mapped_column(String(3))
    instructions: Mapped[str | None] = mapped_column(Text)
    issuer_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    depth: Mapped[str | None] = mapped_column(String(16))
    """wholesale, retail or consumer (``policy.RecallDepth``); None for a recall issued before the lifecycle."""
    public_notice: Mapped[bool | None] = mapped_column(Boolean, default=True)
    """Whether consumers are told (a public notice); None for a recall issued before the lifecycle (public)."""
    contact: Mapped[str | None] = mapped_column(Text)
    terminated_at: Mapped[datetime | None]
    terminated_by_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    termination_reason: Mapped[str | None] = mapped_column(Text)
    termination_hash: Mapped[str | None] = mapped_column(Hash32)
    """The data hash of the termination's RECALL_ENDED event, as anchored on chain by ``endRecall``. Recalls
    terminated before that call existed hold the keccak256 of an off-chain termination record instead
    (docs/recalls.md)."""

    lot: Mapped[Lot] = relationship(back_populates="recalls")
    event: Mapped[Event] = relationship(back_populates="recall")
    issuer: Mapped[Organisation] = relationship(foreign_keys=[issuer_org_id])
    terminated_by: Mapped[Organisation | None] = relationship(foreign_keys=[terminated_by_org_id])
    draft: Mapped[RecallDraft | None] = relationship(back_populates="recall")

    @property
    def termination_event(self) -> Event | None:
        """The RECALL_ENDED event that ends this recall on chain (a lot's recall is ended once); None while the
        recall is open, and for a recall terminated before the contract's ``endRecall`` existed."""
        return next(
            (e for e in self.lot.events if int(e.kind) == EventKind.RECALL_ENDED and e.status != "failed"), None
        )

    @property
    def stage(self) -> str:
        """``issued`` or ``terminated`` (``policy.RecallStage``)."""
        return policy.RecallStage.TERMINATED if self.terminated_at else policy.RecallStage.ISSUED

    @validates("recall_class")
    def _check_class(self, _key: str, value: object) -> str:
        return _choice(value, RECALL_CLASSES, "recall_class")

    @validates("depth")
    def _check_depth(self, _key: str, value: object) -> str | None:
        return None if value is None else _choice(value, RECALL_DEPTHS, "depth")


class RecallDraft(Base):
    """A recall before it is issued: drafted, edited, reviewed (with its affected lots and holders shown), then
    issued by typing the lot code (``recall_id`` is then the issued recall) or discarded."""

    __tablename__ = "recall_drafts"
    __table_args__ = (
        CheckConstraint(_in("recall_class", RECALL_CLASSES), name="recall_class"),
        CheckConstraint(_in("depth", RECALL_DEPTHS), name="depth"),
        CheckConstraint(_in("stage", RECALL_DRAFT_STAGES), name="stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16), default="draft")
    recall_class: Mapped[str] = mapped_column(String(3))
    depth: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text)
    public_notice: Mapped[bool] = mapped_column(Boolean, default=True)
    contact: Mapped[str | None] = mapped_column(Text)
    created_by_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    recall_id: Mapped[int | None] = mapped_column(ForeignKey("recalls.id"), unique=True)

    lot: Mapped[Lot] = relationship()
    created_by: Mapped[Organisation] = relationship()
    recall: Mapped[Recall | None] = relationship(back_populates="draft")

    @validates("recall_class")
    def _check_class(self, _key: str, value: object) -> str:
        return _choice(value, RECALL_CLASSES, "recall_class")

    @validates("depth")
    def _check_depth(self, _key: str, value: object) -> str:
        return _choice(value, RECALL_DEPTHS, "depth")

    @validates("stage")
    def _check_stage(self, _key: str, value: object) -> str:
        return _choice(value, RECALL_DRAFT_STAGES, "stage")


class RecallStep(Base):
    """One step of a recall's history (drafted, edited, sent to review, issued, an update, a reminder,
    terminated, discarded): who, when, and its text. A draft's steps stay with the recall it becomes."""

    __tablename__ = "recall_steps"
    __table_args__ = (CheckConstraint(_in("kind", RECALL_STEP_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    draft_id: Mapped[int | None] = mapped_column(ForeignKey("recall_drafts.id"), index=True)
    recall_id: Mapped[int | None] = mapped_column(ForeignKey("recalls.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    actor_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[Organisation] = relationship()
    user: Mapped[User | None] = relationship()

    @validates("kind")
    def _check_kind(self, _key: str, value: object) -> str:
        return _choice(value, RECALL_STEP_KINDS, "kind")


class Notification(Base):
    """A message in an organisation's in-app inbox (``/notifications``); created only by
    ``services.notifications.notify``."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    topic: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    recall_id: Mapped[int | None] = mapped_column(ForeignKey("recalls.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    read_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    organisation: Mapped[Organisation] = relationship()
    recall: Mapped[Recall | None] = relationship()


class RecallAcknowledgement(Base):
    """A notified holder's answer to a recall: what it did with the product that reached it."""

    __tablename__ = "recall_acknowledgements"
    __table_args__ = (
        UniqueConstraint("recall_id", "organisation_id"),
        CheckConstraint(
            "quantity_removed >= 0 AND quantity_destroyed >= 0 AND quantity_returned >= 0 "
            "AND quantity_in_stock >= 0 AND quantity_forwarded >= 0",
            name="quantities_not_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recall_id: Mapped[int] = mapped_column(ForeignKey("recalls.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    unit: Mapped[str] = mapped_column(String(16))
    quantity_removed: Mapped[Decimal]
    quantity_destroyed: Mapped[Decimal]
    quantity_returned: Mapped[Decimal]
    quantity_in_stock: Mapped[Decimal]
    quantity_forwarded: Mapped[Decimal]
    forwarded_to: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()
    user: Mapped[User | None] = relationship()

    @property
    def accounted(self) -> Decimal:
        """Every quantity the holder reports (removed, destroyed, returned, in stock, forwarded)."""
        return (
            self.quantity_removed
            + self.quantity_destroyed
            + self.quantity_returned
            + self.quantity_in_stock
            + self.quantity_forwarded
        )


class SensorBatch(Base):
    """Cold-chain readings of one period, anchored on chain by their Merkle root (one SENSOR_ANCHOR event)."""

    __tablename__ = "sensor_batches"
    __table_args__ = (
        CheckConstraint("reading_count > 0", name="reading_count_positive"),
        CheckConstraint("period_end >= period_start", name="period_order"),
        CheckConstraint("min_temp <= max_temp", name="temp_order"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), unique=True)
    merkle_root: Mapped[str] = mapped_column(Hash32)
    reading_count: Mapped[int]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    min_temp: Mapped[float] = mapped_column(Float)
    max_temp: Mapped[float] = mapped_column(Float)

    lot: Mapped[Lot] = relationship(back_populates="sensor_batches")
    event: Mapped[Event] = relationship(back_populates="sensor_batch")
    readings: Mapped[list[SensorReading]] = relationship(
        back_populates="batch", order_by="SensorReading.leaf_index"
    )

    @validates("merkle_root")
    def _check_root(self, key: str, value: object) -> str:
        return _hash(value, key)


class SensorReading(Base):
    """One reading; ``leaf_index`` is its position among the Merkle leaves of its batch."""

    __tablename__ = "sensor_readings"
    __table_args__ = (
        UniqueConstraint("batch_id", "leaf_index"),
        CheckConstraint("leaf_index >= 0", name="leaf_index_not_negative"),
    )

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("sensor_batches.id"))
    taken_at: Mapped[datetime]
    temperature_c: Mapped[float] = mapped_column(Float)
    humidity: Mapped[float | None] = mapped_column(Float)
    sensor_id: Mapped[str] = mapped_column(String(100))
    leaf_index: Mapped[int]

    batch: Mapped[SensorBatch] = relationship(back_populates="readings")


# --- chain bookkeeping -------------------------------------------------------------------------------


class IndexerCursor(Base):
    """How far a chain indexer has read (``name`` tells indexers apart, e.g. ``"lotledger:31337"``)."""

    __tablename__ = "indexer_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_block: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PendingTransaction(Base):
    """A signed transaction stored before it is sent, so a crash between sending and confirming is settled
    at the next start: resent while its nonce is free, confirmed if mined, or its events marked failed."""

    __tablename__ = "pending_transactions"

    tx_hash: Mapped[str] = mapped_column(Hash32, primary_key=True)
    raw_tx: Mapped[str] = mapped_column(Text)
    sender: Mapped[str] = mapped_column(Address)
    nonce: Mapped[int] = mapped_column(BigInteger)
    function: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChainDeployment(Base):
    """Where a contract lives on a chain, so the app finds its ledger again after a restart."""

    __tablename__ = "chain_deployments"
    __table_args__ = (UniqueConstraint("chain_id", "contract_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract_name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(Address)
    block_number: Mapped[int] = mapped_column(BigInteger)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)

    @validates("address")
    def _check_address(self, _key: str, value: str) -> str:
        return checksum_address(value, "address")


# --- API access --------------------------------------------------------------------------------------


class ApiToken(Base):
    """A bearer token for ``/api/v1``; only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(_in("scope", TOKEN_SCOPES), name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    scope: Mapped[str] = mapped_column(String(8), default="read")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()

    @validates("scope")
    def _check_scope(self, _key: str, value: object) -> str:
        return _choice(value, TOKEN_SCOPES, "scope")


class IdempotencyRecord(Base):
    """The stored answer to a write request sent with an ``Idempotency-Key``; a retry gets the same answer.

    Keys are the client's, so they are unique per organisation. ``request_hash`` detects a key reused for a
    different request (answered 409/422 rather than replayed).
    """

    __tablename__ = "idempotency_records"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(128))
    response_status: Mapped[int]
    response_body: Mapped[str] = mapped_column(Text)
    response_location: Mapped[str | None] = mapped_column(String(300))
    """The answer's ``Location`` header (a capture job's address), replayed with it."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- background work ---------------------------------------------------------------------------------


class CaptureJob(Base):
    """An EPCIS capture accepted for writing in the background (``services.epcis.jobs``).

    The document is validated and its writes planned and rehearsed before the row is stored, so a stored job
    is a document that was accepted. ``plan`` is the frozen list of planned writes (steps); every Lotline
    event a step writes carries the idempotency key ``epcis-job:{id}:{event index}:{step}:{n}``, so after a
    crash the worker recognises what was written and continues with the first step that was not. The
    counters are progress as of the last finished batch; the events table is the truth.
    """

    __tablename__ = "capture_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", CAPTURE_JOB_STATUSES), name="status"),
        UniqueConstraint("organisation_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    source: Mapped[str] = mapped_column(String(16), default="epcis", server_default="epcis")
    """What the document is: ``epcis`` (an EPCIS 2.0 capture) or ``import`` (the rows of a bulk import file,
    ``services.imports``); both are planned to the same steps and written the same way."""
    document: Mapped[dict[str, Any]]
    document_sha256: Mapped[str] = mapped_column(String(64), index=True)
    """SHA-256 of the document's canonical JSON: the same document sent again while its job is queued or
    running is answered with that job instead of a second one."""
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    """The ``Idempotency-Key`` the capture was sent with, if any."""
    events_total: Mapped[int]
    events_written: Mapped[int] = mapped_column(default=0)
    writes_total: Mapped[int]
    """Lotline events (contract calls) the plan writes."""
    writes_done: Mapped[int] = mapped_column(default=0)
    batches_done: Mapped[int] = mapped_column(default=0)
    results: Mapped[list[dict[str, Any]]] = mapped_column(json_document(), default=list)
    """Per EPCIS event: index, type, eventID, bizStep, status (accepted, rejected, unsupported), and for a
    refused event its code, reason and field. What each event wrote is read from the events table."""
    plan: Mapped[dict[str, Any] | None] = mapped_column(json_document())
    transactions: Mapped[list[str]] = mapped_column(json_document(), default=list)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_field: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(default=0)
    """Runs interrupted by an unexpected error; the job fails after ``jobs.MAX_ATTEMPTS``."""
    lease_until: Mapped[datetime | None]
    """While running: until when the worker holding it is presumed alive (renewed after every batch). A
    running job whose lease has passed was left by a crash and is taken over."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()

    @validates("status")
    def _check_status(self, _key: str, value: object) -> str:
        return _choice(value, CAPTURE_JOB_STATUSES, "status")


EPCIS_EVENT_STATES = ("pending", "captured", "failed")
"""pending: its capture job has not finished; captured: the job is done (the event is served by queries);
failed: the job failed, so the document was not captured (kept for the job's report, never served)."""


class EpcisEvent(Base):
    """One EPCIS event exactly as a captured document held it (``services.epcis.repository``).

    ``body`` is the event object as sent (every standard field, ILMD, sensor elements, certification info,
    error declaration, user extensions) and ``context`` the document's ``@context``, so the event is served
    again as it came. The columns beside it are what the standard query parameters ask for. ``leaf`` is the
    keccak256 of the body's canonical JSON: the leaf of the capture job's Merkle tree (``EpcisAnchor``).
    """

    __tablename__ = "epcis_events"
    __table_args__ = (
        CheckConstraint(_in("state", EPCIS_EVENT_STATES), name="state"),
        UniqueConstraint("capture_job_id", "position"),
        Index("ix_epcis_events_org_time", "organisation_id", "event_time"),
    )

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    """The capturing organisation."""
    capture_job_id: Mapped[int] = mapped_column(ForeignKey("capture_jobs.id"), index=True)
    position: Mapped[int]
    """The event's index in the captured document's eventList."""
    state: Mapped[str] = mapped_column(String(16), default="pending")
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether it drives the lot model (lots, CTEs, custody, transformations, sensor anchors)."""
    note: Mapped[str | None] = mapped_column(String(64))
    """Why it is stored only (not applied): ``not_mapped``, ``unknown_lot``, ``error_declaration``."""
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str | None] = mapped_column(String(500), index=True)
    hash_id: Mapped[str] = mapped_column(String(120), index=True)
    """The CBV 2.0 event hash ID (``ni:///sha-256;...?ver=CBV2.0``)."""
    event_time: Mapped[datetime] = mapped_column(index=True)
    record_time: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str | None] = mapped_column(String(8))
    biz_step: Mapped[str | None] = mapped_column(String(300), index=True)
    """The bare CBV word (``shipping``) or the URI of a non-CBV step."""
    disposition: Mapped[str | None] = mapped_column(String(300), index=True)
    read_point: Mapped[str | None] = mapped_column(String(300), index=True)
    biz_location: Mapped[str | None] = mapped_column(String(300), index=True)
    has_error_declaration: Mapped[bool] = mapped_column(Boolean, default=False)
    error_declaration_time: Mapped[datetime | None] = mapped_column(index=True)
    """The ``declarationTime`` of its ``errorDeclaration`` (``GE_/LT_errorDeclarationTime``)."""
    declared_erroneous_by_id: Mapped[int | None] = mapped_column(LargeId, ForeignKey("epcis_events.id"))
    """Set on an event another captured event declared erroneous (its ``errorDeclaration``)."""
    body: Mapped[dict[str, Any]]
    context: Mapped[Any] = mapped_column(json_document(), nullable=True)
    leaf: Mapped[str] = mapped_column(Hash32)
    attribution: Mapped[dict[str, Any] | None] = mapped_column(json_document(), nullable=True)
    """Whose event it is when not the capturer's: the party owning its place (``source`` ``location``,
    reported by the capturer) or the chain's signer of the event it matched (``source`` ``chain``)."""


class EpcisEventEpc(Base):
    """An identifier an EPCIS event names, in its GS1 Digital Link form where it has one (``MATCH_*``)."""

    __tablename__ = "epcis_event_epcs"
    __table_args__ = (
        Index("ix_epcis_event_epcs_pattern", "scheme", "pattern_key"),
        Index("ix_epcis_event_epcs_amount", "role", "amount"),
    )

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    event_pk: Mapped[int] = mapped_column(LargeId, ForeignKey("epcis_events.id"), index=True)
    role: Mapped[str] = mapped_column(String(8))
    """epc (epcList, childEPCs), in_epc/out_epc (inputEPCList/outputEPCList), parent (parentID), class
    (quantityList, childQuantityList), inclass/outclass (inputQuantityList/outputQuantityList), biztx
    (bizTransactionList), source (sourceList), dest (destinationList), xform (transformationID), pd_set/pd_unset
    (persistentDisposition), err_why (errorDeclaration reason), fix_id (its correctiveEventIDs)."""
    epc: Mapped[str] = mapped_column(String(500), index=True)
    qualifier: Mapped[str | None] = mapped_column(String(300))
    """The type of a biztx, source or dest entry, as its bare CBV word (``po``, ``owning_party``) or URI; the
    ``uom`` of a quantity element."""
    amount: Mapped[float | None] = mapped_column(Float)
    """The ``quantity`` of a quantity element (``EQ_/GT_/GE_/LT_/LE_quantity``)."""
    scheme: Mapped[str | None] = mapped_column(String(8))
    """The GS1 scheme of an EPC or class (sgtin, lgtin, gtin, sgln, gln, sscc, grai, pgln) for EPC patterns."""
    pattern_key: Mapped[str | None] = mapped_column(String(20))
    """``identifiers.pattern_key``: its GS1 key's digits, company prefix first (EPC patterns are ranges of it)."""


class EpcisSensorReport(Base):
    """One sensorReport of an EPCIS event's sensorElementList, with its sensorMetadata folded in (a report's own
    deviceID, time, dataProcessingMethod or bizRules win over the metadata's); an element without reports has
    one row of its metadata. The sensor query parameters (``EQ_type``, ``GE_value_{uom}``, ...) all hold for one
    row: one report."""

    __tablename__ = "epcis_sensor_reports"
    __table_args__ = (Index("ix_epcis_sensor_reports_type_value", "type", "value"),)

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    event_pk: Mapped[int] = mapped_column(LargeId, ForeignKey("epcis_events.id"), index=True)
    type: Mapped[str | None] = mapped_column(String(300))
    """The measurement type as its bare GS1 word (``Temperature``) or URI."""
    device_id: Mapped[str | None] = mapped_column(String(500), index=True)
    data_processing_method: Mapped[str | None] = mapped_column(String(500))
    biz_rules: Mapped[str | None] = mapped_column(String(500))
    microorganism: Mapped[str | None] = mapped_column(String(500))
    chemical_substance: Mapped[str | None] = mapped_column(String(500))
    string_value: Mapped[str | None] = mapped_column(String(500))
    boolean_value: Mapped[bool | None] = mapped_column(Boolean)
    hex_binary_value: Mapped[str | None] = mapped_column(String(500))
    """Upper case: hexBinary compares without regard to case."""
    uri_value: Mapped[str | None] = mapped_column(String(500))
    time: Mapped[datetime | None] = mapped_column(index=True)
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    value: Mapped[float | None] = mapped_column(Float)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    mean_value: Mapped[float | None] = mapped_column(Float)
    s_dev: Mapped[float | None] = mapped_column(Float)
    perc_rank: Mapped[float | None] = mapped_column(Float)
    perc_value: Mapped[float | None] = mapped_column(Float)
    uom: Mapped[str | None] = mapped_column(String(16))


class EpcisAnchor(Base):
    """The on-chain anchor of one capture job's EPCIS events: the Merkle root over their leaves (in document
    order), sent by the capturing organisation's key as the data of a transaction to its own address."""

    __tablename__ = "epcis_anchors"

    capture_job_id: Mapped[int] = mapped_column(ForeignKey("capture_jobs.id"), primary_key=True)
    merkle_root: Mapped[str] = mapped_column(Hash32)
    leaf_count: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (not sent or not mined yet) | confirmed."""
    tx_hash: Mapped[str | None] = mapped_column(Hash32)
    block_number: Mapped[int | None]
    sender: Mapped[str | None] = mapped_column(Address)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EpcisNamedQuery(Base):
    """A named EPCIS query (the REST binding's ``/queries/{name}``): the standard query parameters an
    organisation stored under a name, run with the caller's visibility (``services.epcis.named``). Names are
    the organisation's own: another organisation neither sees nor deletes them."""

    __tablename__ = "epcis_named_queries"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(100))
    query: Mapped[dict[str, Any]]
    """The parameters as the client sent them (``{"EQ_bizStep": ["shipping"], ...}``), checked by the parser
    of ``GET /events`` when stored."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EpcisSubscription(Base):
    """A webhook subscription to a named EPCIS query (``/queries/{name}/subscriptions``): each capture job's
    newly captured events that the query selects (with the subscriber's visibility) are POSTed to ``dest`` as
    an EPCIS query document through the delivery outbox (``services.delivery``), signed with the client's
    ``signatureToken`` (sealed under the KEK) when it gave one."""

    __tablename__ = "epcis_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    """The subscriptionID the client sees."""
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    query_id: Mapped[int] = mapped_column(ForeignKey("epcis_named_queries.id"), index=True)
    dest: Mapped[str] = mapped_column(String(2000))
    stream: Mapped[bool] = mapped_column(Boolean, default=True)
    sealed_token: Mapped[str | None] = mapped_column(Text)
    key_encryption_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_notified_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    query: Mapped[EpcisNamedQuery] = relationship()


class WebhookEndpoint(Base):
    """An organisation's HTTPS endpoint that receives its notifications as signed JSON (``services.delivery``).

    The signing secret is shown once when the endpoint is made and kept sealed under the key-encryption key
    (``sealed_secret``, ``key_encryption_id`` names the KEK, as for organisation keys: ``services.keyring``).
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    sealed_secret: Mapped[str] = mapped_column(Text)
    key_encryption_id: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class Delivery(Base):
    """One notice to send by one channel (an outbox row): written in the transaction of the change it tells
    about, sent afterwards by a worker that claims it with a lease (``services.delivery``). Every try is a
    ``DeliveryAttempt``."""

    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(_in("channel", DELIVERY_CHANNELS), name="channel"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    """The delivery's public id (``Lotline-Delivery`` header): the same on every retry, for deduplication."""
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(2000))
    """The e-mail addresses (comma-separated) or the endpoint's URL, as they were when it was enqueued."""
    topic: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    data: Mapped[dict[str, Any]] = mapped_column(json_document(), default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    endpoint: Mapped[WebhookEndpoint | None] = relationship()
    attempt_log: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="delivery", order_by="DeliveryAttempt.id", cascade="all, delete-orphan"
    )

    @validates("channel")
    def _check_channel(self, _key: str, value: object) -> str:
        return _choice(value, DELIVERY_CHANNELS, "channel")

    @validates("status")
    def _check_status(self, _key: str, value: object) -> str:
        return _choice(value, DELIVERY_STATUSES, "status")


class DeliveryAttempt(Base):
    """One try of a delivery: when, what came back (an HTTP status or the SMTP server's error), and when the
    next try is due (None: no further try)."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(LargeId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(LargeId, ForeignKey("deliveries.id"), index=True)
    number: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    ok: Mapped[bool]
    status_code: Mapped[int | None]
    """The endpoint's HTTP status, or the SMTP server's reply code when it gave one."""
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]

    delivery: Mapped[Delivery] = relationship(back_populates="attempt_log")


# --- lot revisions (the scan page's cache key) ---------------------------------------------------------


@sa_event.listens_for(Session, "before_flush")
def _bump_revisions(session: Session, _context: Any, _instances: Any) -> None:
    """Add one to ``Lot.revision`` of every stored lot whose row this flush updates anyway (status, custody,
    counter and head, verification, ...), as ``revision + 1`` in that same UPDATE, so concurrent writers never
    lose a bump. Only rows already being written are touched: a bump never takes a row lock the write would
    not have taken (a lock taken early deadlocks with writers waiting on a signing key's advisory lock on
    another connection, where PostgreSQL cannot see the cycle). Events inserted or failed without a change to
    their lot are seen by ``queries.lineage_version`` from the events themselves."""
    for obj in session.dirty:
        if isinstance(obj, Lot) and obj.id is not None and session.is_modified(obj, include_collections=False):
            obj.revision = Lot.revision + 1  # type: ignore[assignment]
