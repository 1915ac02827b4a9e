"""Invariants: facts every record must satisfy before it is signed, whoever writes it (form, API, EPCIS, demo).

The rulebook (``policy``) says who may act on a lot in which status; this module says whether what they
say is plausible given what the record already holds: quantities on hand, units, the sites involved, and
dates. It is pure: the services gather plain facts from the store (``LotFacts``, ``Site``) and ask
``check_event`` / ``check_new_lot`` before anything is written. Each refusal is an ``InvalidInput`` with a
stable ``code`` and the ``field`` it names.

| code                       | rule                                                                         |
|----------------------------|------------------------------------------------------------------------------|
| quantity_exceeds_on_hand   | shipping (or consuming) more than the lot holds                              |
| quantity_exceeds_shipped   | receiving more than was shipped                                              |
| unit_mismatch              | a shipped/received/input unit differs from the lot's; a new lot's from its product's |
| product_bound              | a commodity or variety that contradicts the one its product defines           |
| implausible_quantity       | a quantity above ``QUANTITY_LIMITS`` for its unit                            |
| invalid_unit               | a unit of measure that is not 1-``MAX_UNIT_LENGTH`` characters               |
| not_own_site               | the actor records at a site that is not its own (``OWN_SITE_FIELDS``)        |
| site_not_of_recipient      | a shipment's ``to_gln`` is not a site of the organisation it is shipped to   |
| site_kind                  | an event at a kind of site where it cannot happen (harvest at a store)        |
| date_in_future             | an event dated in the future beyond ``DATE_SKEW`` / ``DATETIME_SKEW``        |
| date_before_lot            | an event dated before the lot's (or an input lot's) creation                 |
| date_out_of_order          | receiving dated before the lot's last shipping                               |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from . import events as _events  # the module, not names: events takes its limits from here
from .errors import InvalidInput, describe
from .kinds import EventKind
from .lineage import format_quantity

# ------------------------------------------------------------------ limits (configurable, one place)

MAX_UNIT_LENGTH = 16
"""A unit of measure is 1-16 characters (the store keeps 16)."""

MIN_TEMPERATURE_C = Decimal(-80)
MAX_TEMPERATURE_C = Decimal(80)
"""One set of reading limits, degrees Celsius: sensor readings and the min/max of an anchored batch."""
MAX_READING_DECIMALS = 6
"""A temperature or humidity has at most 6 digits after the point: stored as plain decimal text, a value like
``1e-999999999`` would otherwise become a gigabyte of zeros."""

QUANTITY_LIMITS: dict[str, Decimal] = {
    "kg": Decimal(1_000_000),
    "lb": Decimal(2_200_000),
    "t": Decimal(1_000),
    "case": Decimal(1_000_000),
    "each": Decimal(1_000_000),
}
"""The most one lot (or one event on it) can plausibly hold, per unit (compared case-insensitively)."""
DEFAULT_QUANTITY_LIMIT = Decimal(10) ** 9
"""The limit for units not listed in ``QUANTITY_LIMITS``."""

DATE_SKEW = timedelta(days=1)
"""A date-only value may be 'today' in any time zone, so it may be up to one day ahead of today in UTC."""
DATETIME_SKEW = timedelta(minutes=10)
"""Clock skew allowed for a date-time."""

OWN_SITE_FIELDS: dict[EventKind, tuple[str, ...]] = {
    EventKind.HARVESTING: ("location_gln",),
    EventKind.COOLING: ("location_gln",),
    EventKind.INITIAL_PACKING: ("location_gln",),
    EventKind.FIRST_LAND_BASED_RECEIVING: ("location_gln",),
    EventKind.SHIPPING: ("from_gln",),
    EventKind.RECEIVING: ("to_gln",),
    EventKind.TRANSFORMATION: ("location_gln",),
}
"""Payload fields naming where the actor itself did the work: they must be the actor's registered sites.
Oversight (inspection), sensor anchoring (readings come from trucks and other parties' sites) and fields
naming other parties (harvest_location_gln, tlc_source_gln, ...) are not listed."""

RECIPIENT_SITE_FIELDS: dict[EventKind, str] = {EventKind.SHIPPING: "to_gln"}
"""The payload field that must be a site of the organisation a lot is shipped to."""

REFUSED_SITE_KINDS: dict[EventKind, frozenset[str]] = {EventKind.HARVESTING: frozenset({"store"})}
"""Kinds of site where an event cannot happen (food is not harvested in a shop)."""

UNIT_BOUND_KINDS = frozenset({EventKind.SHIPPING, EventKind.RECEIVING})
"""Events on a lot whose unit must be the lot's unit (packing may change the unit; these move the lot)."""


# ------------------------------------------------------------------ facts the services gather


@dataclass(frozen=True)
class Site:
    """A registered location as the invariants see it."""

    gln: str
    organisation_id: int
    organisation: str
    kind: str = "other"


@dataclass(frozen=True)
class LotFacts:
    """What the record holds about a lot: its unit, quantity on hand, and the dates that bound new events."""

    lot_code: str
    unit: str
    on_hand: Decimal
    created: str | None = None  # date (or date-time) of its creation event
    last_shipped: str | None = None  # date of its latest shipping
    shipped_quantity: Decimal | None = None  # quantity of its latest shipping


@dataclass(frozen=True)
class Party:
    """An organisation: its id and name (for messages)."""

    id: int
    name: str


# ------------------------------------------------------------------ single rules


def check_unit_text(unit: object, field: str) -> str:
    """A unit of measure, trimmed: 1-``MAX_UNIT_LENGTH`` characters."""
    text = unit.strip() if isinstance(unit, str) else ""
    if not 1 <= len(text) <= MAX_UNIT_LENGTH:
        raise InvalidInput(
            f"{field}: a unit of measure is 1-{MAX_UNIT_LENGTH} characters (kg, lb, case, ...)",
            field=field,
            code="invalid_unit",
        )
    return text


def check_reading(
    value: object, field: str, low: Decimal, high: Decimal, code: str = "implausible_temperature"
) -> Decimal:
    """A sensor value (a number or decimal text) between ``low`` and ``high`` with at most
    ``MAX_READING_DECIMALS`` digits after the point, as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidInput(f"{field}: must be a number, got {type(value).__name__}", field=field)
    if isinstance(value, int) and not low <= value <= high:  # before str(): ints over 4300 digits have none
        raise InvalidInput(
            f"{field}: must be between {low} and {high}, got {describe(value)}", field=field, code=code
        )
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise InvalidInput(f"{field}: {describe(value)} is not a number", field=field) from None
    if not number.is_finite() or not low <= number <= high:
        raise InvalidInput(
            f"{field}: must be between {low} and {high}, got {describe(value)}", field=field, code=code
        )
    if number.quantize(Decimal(1).scaleb(-MAX_READING_DECIMALS)) != number:  # not normalize(): see lineage
        raise InvalidInput(
            f"{field}: at most {MAX_READING_DECIMALS} digits after the decimal point, got {describe(value)}",
            field=field,
            code=code,
        )
    return number


def check_temperature(value: object, field: str) -> Decimal:
    """A temperature in degrees Celsius within ``MIN_TEMPERATURE_C``..``MAX_TEMPERATURE_C`` (``check_reading``)."""
    return check_reading(value, field, MIN_TEMPERATURE_C, MAX_TEMPERATURE_C)


def check_humidity(value: object, field: str) -> Decimal:
    """A relative humidity in percent, 0..100 (``check_reading``)."""
    return check_reading(value, field, Decimal(0), Decimal(100), code="invalid_humidity")


def quantity_limit(unit: str) -> Decimal:
    return QUANTITY_LIMITS.get(unit.strip().lower(), DEFAULT_QUANTITY_LIMIT)


def check_plausible(quantity: Decimal, unit: str, field: str) -> None:
    """Refuse a quantity above the plausibility limit of its unit."""
    limit = quantity_limit(unit)
    if Decimal(quantity) > limit:
        raise InvalidInput(
            f"{field}: {format_quantity(Decimal(quantity))} {unit} is not a plausible quantity for one lot "
            f"(at most {format_quantity(limit)} {unit})",
            field=field,
            code="implausible_quantity",
        )


def check_same_unit(unit: str, expected: str, field: str, what: str) -> None:
    """Refuse a unit that differs from ``expected`` (the lot's or the product's unit)."""
    if unit.strip() != expected.strip():
        raise InvalidInput(f"{field}: {what} is measured in {expected}, not {unit}", field=field, code="unit_mismatch")


def lot_unit(given: str | None, product_unit: str, product: str, field: str) -> str:
    """The unit of a new lot: the product's unit; a given unit must be that unit."""
    unit = check_unit_text(product_unit if given is None or not str(given).strip() else given, field)
    check_same_unit(unit, product_unit, field, f"product {product}")
    return unit


PRODUCT_BOUND_FIELDS = ("commodity", "variety")
"""Payload fields a product may define; when it does, an event on a lot of it names that value or nothing."""


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def bind_product_fields(
    payload: Mapping[str, Any],
    fields: Mapping[str, bool],
    product: Mapping[str, str | None],
    product_name: str,
) -> dict[str, Any]:
    """``payload`` with the product-bound fields filled from ``product``; ``fields`` maps each field the
    event kind takes to whether it is required.

    A given field that contradicts what the product defines is refused (``product_bound``), so a kale lot
    cannot be recorded as romaine; a required one left empty is filled with the product's value (its name
    for a commodity the product does not define). Optional fields left empty stay empty.
    """
    bound = dict(payload)
    for name, required in fields.items():
        given = str(bound.get(name) or "").strip()
        defined = (product.get(name) or "").strip()
        if given and defined and not _same_text(given, defined):
            raise InvalidInput(
                f"{name} is set by the product {product_name}: {defined!r}, not {given!r}; leave it empty or "
                "pick the right product",
                field=f"payload.{name}",
                code="product_bound",
            )
        if required and not given:
            bound[name] = defined or (product_name if name == "commodity" else "")
    return bound


def check_on_hand(quantity: Decimal, on_hand: Decimal, unit: str, field: str, lot: str) -> None:
    """Refuse taking more than a lot holds."""
    if Decimal(quantity) > Decimal(on_hand):
        left = format_quantity(on_hand) if on_hand > 0 else "0"
        raise InvalidInput(
            f"{field}: {format_quantity(Decimal(quantity))} {unit} requested but lot {lot} has only {left} {unit} "
            "on hand",
            field=field,
            code="quantity_exceeds_on_hand",
        )


def check_not_future(when: str, field: str, now: datetime) -> None:
    """Refuse an event dated in the future (dates: beyond tomorrow in UTC; date-times: beyond the skew)."""
    if _is_date(when):
        late = date.fromisoformat(when) > (now.astimezone(UTC) + DATE_SKEW).date()
    else:
        late = datetime.fromisoformat(when) > now + DATETIME_SKEW
    if late:
        raise InvalidInput(f"{field}: {when} is in the future", field=field, code="date_in_future")


def is_before(when: str, earliest: str) -> bool:
    """True when ``when`` is before ``earliest``: instants if both are date-times, else calendar dates."""
    if _is_date(when) or _is_date(earliest):
        return when[:10] < earliest[:10]
    return datetime.fromisoformat(when) < datetime.fromisoformat(earliest)


def check_not_before(when: str, earliest: str, field: str, code: str, what: str) -> None:
    if is_before(when, earliest):
        raise InvalidInput(f"{field}: {when} is before {what} ({earliest})", field=field, code=code)


def check_own_site(site: Site, actor: Party, field: str) -> None:
    if site.organisation_id != actor.id:
        raise InvalidInput(
            f"{field}: GLN {site.gln} is a site of {site.organisation}, not of {actor.name}; record only at "
            "your own registered sites",
            field=field,
            code="not_own_site",
        )


def check_recipient_site(site: Site, recipient: Party, field: str) -> None:
    if site.organisation_id != recipient.id:
        raise InvalidInput(
            f"{field}: GLN {site.gln} is a site of {site.organisation}, not of {recipient.name}, the organisation "
            "the lot is shipped to",
            field=field,
            code="site_not_of_recipient",
        )


def check_site_kind(kind: EventKind, site: Site, field: str) -> None:
    if site.kind in REFUSED_SITE_KINDS.get(kind, frozenset()):
        raise InvalidInput(
            f"{field}: {kind.name.lower().replace('_', ' ')} cannot take place at GLN {site.gln}, a {site.kind}",
            field=field,
            code="site_kind",
        )


def _is_date(iso: str) -> bool:
    return len(iso) == 10


# ------------------------------------------------------------------ one event, every rule


def check_event(
    kind: EventKind,
    payload: Mapping[str, Any],
    *,
    actor: Party,
    sites: Mapping[str, Site],
    now: datetime,
    lot: LotFacts | None = None,
    recipient: Party | None = None,
    inputs: Mapping[tuple[str, str], LotFacts] | None = None,
    derived: bool = False,
) -> None:
    """Check a validated (normalised) payload of ``kind`` against the record.

    ``lot`` is None for the event that creates the lot; ``sites`` maps each GLN the payload names to its
    site; ``recipient`` is whom a shipment goes to; ``inputs`` the facts of a transformation's input lots by
    (gtin, lot_code). ``derived``: a recall carried from another lot (it takes that recall's date)."""
    kind = EventKind(int(kind))
    # quantities and units
    if "quantity" in payload and "unit" in payload:
        quantity = Decimal(payload["quantity"])
        check_plausible(quantity, payload["unit"], "payload.quantity")
        if lot is not None and kind in UNIT_BOUND_KINDS:
            check_same_unit(payload["unit"], lot.unit, "payload.unit", f"lot {lot.lot_code}")
            if kind is EventKind.SHIPPING:
                check_on_hand(quantity, lot.on_hand, lot.unit, "payload.quantity", lot.lot_code)
            if kind is EventKind.RECEIVING and lot.shipped_quantity is not None and quantity > lot.shipped_quantity:
                raise InvalidInput(
                    f"payload.quantity: {format_quantity(quantity)} {lot.unit} received but only "
                    f"{format_quantity(lot.shipped_quantity)} {lot.unit} were shipped",
                    field="payload.quantity",
                    code="quantity_exceeds_shipped",
                )
    for i, item in enumerate(payload.get("inputs") or ()) if kind is EventKind.TRANSFORMATION else ():
        facts = (inputs or {}).get((item["gtin"], item["lot_code"]))
        if facts is None:
            continue
        field = f"payload.inputs[{i}]"
        check_same_unit(item["unit"], facts.unit, f"{field}.unit", f"lot {facts.lot_code}")
        check_on_hand(Decimal(item["quantity"]), facts.on_hand, facts.unit, f"{field}.quantity", facts.lot_code)
    # places
    for name in OWN_SITE_FIELDS.get(kind, ()):
        if name in payload and payload[name] in sites:
            check_own_site(sites[payload[name]], actor, f"payload.{name}")
    recipient_field = RECIPIENT_SITE_FIELDS.get(kind)
    if recipient is not None and recipient_field and payload.get(recipient_field) in sites:
        check_recipient_site(sites[payload[recipient_field]], recipient, f"payload.{recipient_field}")
    if kind in REFUSED_SITE_KINDS and payload.get("location_gln") in sites:
        check_site_kind(kind, sites[payload["location_gln"]], "payload.location_gln")
    # time
    when = _events.event_date(kind, payload)
    if when is None or derived:
        return
    field = f"payload.{_events.kind_spec(kind).date_field}"
    check_not_future(when, field, now)
    if lot is not None and lot.created:
        check_not_before(when, lot.created, field, "date_before_lot", f"the creation of lot {lot.lot_code}")
    if lot is not None and kind is EventKind.RECEIVING and lot.last_shipped:
        check_not_before(when, lot.last_shipped, field, "date_out_of_order", "its shipping")
    for facts in (inputs or {}).values() if kind is EventKind.TRANSFORMATION else ():
        if facts.created:
            what = f"the creation of input lot {facts.lot_code}"
            check_not_before(when, facts.created, field, "date_before_lot", what)


def check_new_lot(quantity: Decimal, unit: str, field: str = "") -> None:
    """A new lot's quantity must be plausible for its unit."""
    check_plausible(quantity, unit, f"{field}quantity")
