"""The invariants as pure rules: fixed clock, plain values, no store or chain."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from supply_chain.domain import invariants
from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.kinds import EventKind

NOW = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
FARM, SHOP = invariants.Party(1, "Farm"), invariants.Party(2, "Shop")
SITES = {
    "0700001000019": invariants.Site("0700001000019", 1, "Farm", "farm"),
    "0700002000018": invariants.Site("0700002000018", 2, "Shop", "store"),
}
LOT = invariants.LotFacts("L1", "kg", Decimal(50), created="2026-11-20")


def _code(call) -> tuple[str, str | None]:  # noqa: ANN001
    with pytest.raises(InvalidInput) as info:
        call()
    return info.value.code, info.value.field


@pytest.mark.parametrize(
    ("when", "late"),
    [
        ("2026-12-01", False),  # tomorrow in UTC is today east of it
        ("2026-12-02", True),
        ("2026-11-30T22:09:00+00:00", False),
        ("2026-11-30T22:11:00+00:00", True),
        ("2026-12-01T08:05:00+10:00", False),  # 22:05 UTC
    ],
)
def test_future_dates_allow_only_the_clock_skew(when: str, late: bool) -> None:
    check = lambda: invariants.check_not_future(when, "payload.date", NOW)  # noqa: E731
    if late:
        assert _code(check) == ("date_in_future", "payload.date")
    else:
        check()


def test_dates_compare_by_calendar_day_unless_both_are_instants() -> None:
    assert not invariants.is_before("2026-11-20T01:00:00+05:00", "2026-11-20")
    assert invariants.is_before("2026-11-19", "2026-11-20T23:00:00+00:00")
    assert invariants.is_before("2026-11-20T07:00:00+00:00", "2026-11-20T09:00:00+01:00")


def test_quantity_limits_per_unit_and_default() -> None:
    invariants.check_plausible(Decimal(1_000_000), "kg", "quantity")
    assert _code(lambda: invariants.check_plausible(Decimal(1_000_001), "KG", "quantity")) == (
        "implausible_quantity",
        "quantity",
    )
    invariants.check_plausible(Decimal(2_000_000), "lb", "quantity")
    invariants.check_plausible(Decimal(10) ** 9, "crate", "quantity")
    assert _code(lambda: invariants.check_plausible(Decimal(10) ** 9 + 1, "crate", "q"))[0] == "implausible_quantity"


def test_unit_text_and_product_unit() -> None:
    assert invariants.check_unit_text(" kg ", "unit") == "kg"
    assert _code(lambda: invariants.check_unit_text("x" * 17, "unit")) == ("invalid_unit", "unit")
    assert invariants.lot_unit(None, "case", "Kale", "unit") == "case"
    assert _code(lambda: invariants.lot_unit("kg", "case", "Kale", "unit")) == ("unit_mismatch", "unit")


def test_check_event_shipping() -> None:
    base = {"from_gln": "0700001000019", "to_gln": "0700002000018", "ship_date": "2026-11-21"}

    def ship(**changes: str) -> None:
        payload = base | {"quantity": "10", "unit": "kg"} | changes
        invariants.check_event(EventKind.SHIPPING, payload, actor=FARM, sites=SITES, now=NOW, lot=LOT, recipient=SHOP)

    ship()
    assert _code(lambda: ship(quantity="5000")) == ("quantity_exceeds_on_hand", "payload.quantity")
    assert _code(lambda: ship(unit="lb")) == ("unit_mismatch", "payload.unit")
    assert _code(lambda: ship(from_gln="0700002000018", to_gln="0700001000019"))[0] == "not_own_site"
    assert _code(lambda: ship(ship_date="2026-11-19")) == ("date_before_lot", "payload.ship_date")


def test_harvest_at_a_store_and_inspection_anywhere() -> None:
    harvest = {"location_gln": "0700002000018", "harvest_date": "2026-11-21", "quantity": "1", "unit": "kg"}
    shop_harvest = lambda: invariants.check_event(  # noqa: E731
        EventKind.HARVESTING, harvest, actor=SHOP, sites=SITES, now=NOW
    )
    assert _code(shop_harvest) == ("site_kind", "payload.location_gln")
    inspection = {"location_gln": "0700001000019", "inspection_date": "2026-11-21"}
    invariants.check_event(EventKind.INSPECTION, inspection, actor=SHOP, sites=SITES, now=NOW, lot=LOT)
