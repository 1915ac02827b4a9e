"""Invariants on every write path (services, EPCIS capture): quantities, units, places, dates, product-bound
fields and plausibility. Each refusal names its code and field, and nothing is written: no lot or event row,
no block mined."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from supply_chain.domain.errors import LotlineError
from supply_chain.domain.kinds import EventKind
from supply_chain.services import epcis, lots, orgs
from supply_chain.services.demo import gln
from supply_chain.services.lots import NewLot
from supply_chain.store.models import Event, Lot

pytestmark = pytest.mark.slow



def _counts(runtime: Any) -> tuple[int, int, int]:
    with runtime.ctx() as ctx:
        s = ctx.session
        return (
            s.scalar(select(func.count()).select_from(Lot)),
            s.scalar(select(func.count()).select_from(Event)),
            ctx.ledger.block_number(),
        )


def _refused(net: Any, code: str, field: str, action: Callable[[Any], Any]) -> LotlineError:
    """Run ``action(ctx)``; assert it is refused with ``code`` naming ``field`` and that nothing was written."""
    before = _counts(net.runtime)
    with pytest.raises(LotlineError) as info, net.runtime.ctx() as ctx:
        action(ctx)
    assert (info.value.code, info.value.field) == (code, field), info.value.message
    assert info.value.status in (400, 409)
    assert _counts(net.runtime) == before
    return info.value


def _lot(ctx: Any, net: Any) -> Lot:
    return ctx.session.get(Lot, net.lot_pk)


def _shipping(net: Any, src: str = "farm", dst: str = "packer", **changes: Any) -> dict[str, Any]:
    return {
        "from_gln": getattr(net, f"{src}_site"),
        "to_gln": getattr(net, f"{dst}_site"),
        "ship_date": "2026-11-21",
        "reference_document_type": "bill of lading",
        "reference_document_number": "BOL-1",
    } | changes


def _ship(ctx: Any, net: Any, dst: str = "packer", **changes: Any) -> Any:
    return lots.offer_custody(ctx, net.org("farm", ctx), _lot(ctx, net), net.org(dst, ctx), _shipping(net, **changes))


def _receive(ctx: Any, net: Any, **changes: Any) -> Any:
    payload = _shipping(net, receive_date="2026-11-22") | changes
    payload.pop("ship_date")
    return lots.accept_custody(ctx, net.org("packer", ctx), _lot(ctx, net), payload)


def _harvest(ctx: Any, net: Any, code: str, quantity: str = "10", unit: str | None = "kg", **changes: Any) -> Lot:
    payload = {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "greens"} | changes
    payload = {k: v for k, v in payload.items() if v is not None}
    return lots.create_lot(ctx, net.farm, net.greens, code, EventKind.HARVESTING, payload, quantity, unit)


def _shipped(net: Any, **changes: Any) -> None:
    with net.runtime.ctx() as ctx:
        _ship(ctx, net, **changes)


# ------------------------------------------------------------------ quantities and units


def test_shipping_more_than_on_hand_is_refused_with_what_is_on_hand(network: Any) -> None:
    error = _refused(
        network, "quantity_exceeds_on_hand", "payload.quantity", lambda c: _ship(c, network, quantity="5000")
    )
    assert "100 kg" in error.message and "5000 kg" in error.message


def test_shipping_in_another_unit_than_the_lots_is_refused(network: Any) -> None:
    _refused(network, "unit_mismatch", "payload.unit", lambda c: _ship(c, network, quantity="10", unit="lb"))


def test_shipping_part_of_the_lot_is_allowed(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        assert _ship(ctx, network, quantity="40").payload["quantity"] == "40"


def test_receiving_more_than_was_shipped_is_refused(network: Any) -> None:
    _shipped(network, quantity="40")
    _refused(network, "quantity_exceeds_shipped", "payload.quantity", lambda c: _receive(c, network, quantity="60"))
    _refused(network, "unit_mismatch", "payload.unit", lambda c: _receive(c, network, quantity="40", unit="case"))
    with network.runtime.ctx() as ctx:
        assert _receive(ctx, network, quantity="40").payload["quantity"] == "40"


def test_transformation_input_is_checked_against_its_lot(network: Any) -> None:
    _shipped(network)
    with network.runtime.ctx() as ctx:
        _receive(ctx, network)

    def transform(ctx: Any, quantity: str = "30", **changes: Any) -> Any:
        packer = network.org("packer", ctx)
        args = {"location_gln": network.packer_site, "transformation_date": "2026-11-23"} | changes
        out = NewLot(network.mix, "MIX-1", "30", None, [(_lot(ctx, network), quantity)])
        return lots.transform(ctx, packer, [out], args["location_gln"], args["transformation_date"])

    _refused(network, "insufficient_quantity", "outputs[0].inputs[0].quantity", lambda c: transform(c, "500"))
    _refused(network, "not_own_site", "payload.location_gln", lambda c: transform(c, location_gln=network.farm_site))
    _refused(
        network,
        "date_before_lot",
        "payload.transformation_date",
        lambda c: transform(c, transformation_date="2026-11-19"),
    )
    with network.runtime.ctx() as ctx:
        (made,) = transform(ctx)
        assert made.unit == "kg" and _lot(ctx, network).quantity == 70


# ------------------------------------------------------------------ places


def test_harvest_at_another_organisations_site_is_refused(network: Any) -> None:
    error = _refused(
        network,
        "not_own_site",
        "payload.location_gln",
        lambda c: _harvest(c, network, "AWAY-1", location_gln=network.farm2_site),
    )
    assert "Farm2" in error.message


def test_shipping_from_another_organisations_site_is_refused(network: Any) -> None:
    _refused(network, "not_own_site", "payload.from_gln", lambda c: _ship(c, network, from_gln=network.dist_site))


def test_shipping_to_a_site_of_another_company_than_the_recipient_is_refused(network: Any) -> None:
    error = _refused(
        network, "site_not_of_recipient", "payload.to_gln", lambda c: _ship(c, network, to_gln=network.dist_site)
    )
    assert "Packer" in error.message and "Dist" in error.message


def test_receiving_at_a_site_that_is_not_the_receivers_is_refused(network: Any) -> None:
    _shipped(network)
    _refused(network, "not_own_site", "payload.to_gln", lambda c: _receive(c, network, to_gln=network.dist_site))


def test_inspector_inspects_at_someone_elses_site(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        event = lots.inspect(
            ctx,
            network.org("inspector", ctx),
            _lot(ctx, network),
            "pass",
            {"inspection_date": "2026-11-21", "inspector_name": "Ida", "location_gln": network.farm_site},
        )
        assert event.payload["location_gln"] == network.farm_site


def test_harvest_at_a_store_is_refused(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        shop = orgs.register_location(ctx, network.org("farm", ctx), gln("0700001", "00099"), "Farm shop", kind="store")
        shop_gln = shop.gln
    _refused(
        network, "site_kind", "payload.location_gln", lambda c: _harvest(c, network, "SHOP-1", location_gln=shop_gln)
    )


# ------------------------------------------------------------------ time


def test_harvest_dated_in_the_future_is_refused_beyond_one_day(network: Any) -> None:
    today = datetime.now(UTC).date()  # at run time: a suite that crosses midnight must not see yesterday
    far = (today + timedelta(days=2)).isoformat()
    _refused(network, "date_in_future", "payload.harvest_date", lambda c: _harvest(c, network, "F-1", harvest_date=far))
    _refused(
        network,
        "date_in_future",
        "payload.harvest_date",
        lambda c: _harvest(c, network, "F-2", harvest_date="2031-06-01"),
    )
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _refused(
        network, "date_in_future", "payload.harvest_date", lambda c: _harvest(c, network, "F-3", harvest_date=soon)
    )
    tomorrow = (today + timedelta(days=1)).isoformat()  # today somewhere east of UTC
    with network.runtime.ctx() as ctx:
        assert _harvest(ctx, network, "F-4", harvest_date=tomorrow).harvest_date.isoformat() == tomorrow


def test_event_before_the_lots_creation_is_refused(network: Any) -> None:
    def cool(ctx: Any) -> Any:
        payload = {"location_gln": network.farm_site, "cooling_date": "2026-11-19"}
        return lots.record_event(ctx, network.org("farm", ctx), _lot(ctx, network), EventKind.COOLING, payload)

    _refused(network, "date_before_lot", "payload.cooling_date", cool)
    _refused(network, "date_before_lot", "payload.ship_date", lambda c: _ship(c, network, ship_date="2026-11-01"))


def test_receiving_before_the_shipping_is_refused(network: Any) -> None:
    _shipped(network, ship_date="2026-11-23")
    _refused(
        network, "date_out_of_order", "payload.receive_date", lambda c: _receive(c, network, receive_date="2026-11-22")
    )


# ------------------------------------------------------------------ product-bound fields and plausibility


def test_new_lot_takes_the_products_unit_and_refuses_another(network: Any) -> None:
    _refused(network, "unit_mismatch", "unit", lambda c: _harvest(c, network, "U-1", unit="lb"))
    with network.runtime.ctx() as ctx:
        assert _harvest(ctx, network, "U-2", unit=None).unit == "kg"


def test_missing_commodity_comes_from_the_product(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        lot = _harvest(ctx, network, "C-1", commodity=None)
        assert lot.events[0].payload["commodity"] == "Greens"
        given = _harvest(ctx, network, "C-2", commodity="baby greens")  # a given commodity is kept
        assert given.events[0].payload["commodity"] == "baby greens"


def test_implausible_quantity_is_refused(network: Any) -> None:
    error = _refused(network, "implausible_quantity", "quantity", lambda c: _harvest(c, network, "Q-1", "1000000000"))
    assert "1000000 kg" in error.message
    with network.runtime.ctx() as ctx:
        assert _harvest(ctx, network, "Q-2", "1000000").quantity == 1_000_000


def test_reading_limits_are_one_pair(network: Any) -> None:
    from supply_chain.domain import invariants
    from supply_chain.domain.errors import InvalidInput
    from supply_chain.domain.events import validate_payload

    too_hot = str(invariants.MAX_TEMPERATURE_C + 1)
    with pytest.raises(InvalidInput) as reading:
        lots.validate_reading({"taken_at": "2026-11-21T08:00:00Z", "temperature_c": too_hot}, 0)
    anchor = {
        "merkle_root": "0x" + "ab" * 32,
        "reading_count": 1,
        "period_start": "2026-11-21T08:00:00Z",
        "period_end": "2026-11-21T08:00:00Z",
        "max_temperature_c": too_hot,
    }
    with pytest.raises(InvalidInput) as payload:
        validate_payload(EventKind.SENSOR_ANCHOR, anchor)
    assert reading.value.code == payload.value.code == "implausible_temperature"
    assert validate_payload(EventKind.SENSOR_ANCHOR, anchor | {"max_temperature_c": "80"})["max_temperature_c"] == "80"


# ------------------------------------------------------------------ EPCIS capture takes the same checks


def _epcis(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-21T12:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def _epcis_shipping(net: Any, quantity: float, to_gln: str) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": "shipping",
        "eventTime": "2026-11-21T14:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "readPoint": {"id": f"https://id.gs1.org/414/{net.farm_site}"},
        "quantityList": [
            {"epcClass": f"https://id.gs1.org/01/{net.greens}/10/LOT-1", "quantity": quantity, "uom": "KGM"}
        ],
        "sourceList": [{"type": "location", "source": f"https://id.gs1.org/414/{net.farm_site}"}],
        "destinationList": [
            {"type": "location", "destination": f"https://id.gs1.org/414/{to_gln}"},
            {"type": "owning_party", "destination": f"https://id.gs1.org/414/{net.packer_site}"},
        ],
        "bizTransactionList": [{"type": "bol", "bizTransaction": "urn:epcglobal:cbv:bt:0700001000019:BOL-9"}],
    }


def _capture_refused(net: Any, document: dict[str, Any], code: str, field: str) -> None:
    before = _counts(net.runtime)
    with pytest.raises(LotlineError) as info, net.runtime.ctx() as ctx:
        epcis.capture(ctx, net.org("farm", ctx), document)
    error = info.value
    codes = [(error.code, error.field)] + [(r.code, r.field) for r in getattr(error, "results", [])]
    assert any(c == code and (f or "").endswith(field) for c, f in codes), (codes, error.message)
    assert _counts(net.runtime) == before


def test_epcis_capture_refuses_shipping_more_than_on_hand(network: Any) -> None:
    _capture_refused(
        network,
        _epcis(_epcis_shipping(network, 5000, network.packer_site)),
        "quantity_exceeds_on_hand",
        "epcisBody.eventList[0].quantityList",  # the document's place, not Lotline's field
    )


def test_epcis_capture_refuses_shipping_to_a_site_not_of_the_recipient(network: Any) -> None:
    _capture_refused(
        network,
        _epcis(_epcis_shipping(network, 10, network.dist_site)),
        "site_not_of_recipient",
        "epcisBody.eventList[0].destinationList",
    )
