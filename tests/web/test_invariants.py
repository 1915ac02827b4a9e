"""Invariants through the dashboard forms: shipping more than the lot holds and harvesting at another
organisation's site are refused with the field named, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from supply_chain.store.models import Lot


def _post(client: Any, csrf: Any, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(path, data=data | {"csrf_token": csrf(client)}, **kwargs)


def _harvest_form(world: Any, code: str, **changes: str) -> dict[str, str]:
    return {
        "kind": "harvesting",
        "gtin": world.gtins["lettuce"],
        "lot_code": code,
        "kde.location_gln": world.sites["producer"],
        "kde.harvest_date": "2026-11-10",
        "kde.commodity": "lettuce",
        "kde.quantity": "50",
        "kde.unit": "kg",
    } | changes


def _ship_form(world: Any, quantity: str) -> dict[str, str]:
    return {
        "to": str(world.org_ids["processor"]),
        "kde.from_gln": world.sites["producer"],
        "kde.to_gln": world.sites["processor"],
        "kde.ship_date": "2026-11-11",
        "kde.quantity": quantity,
        "kde.unit": "kg",
        "kde.reference_document_type": "bill of lading",
        "kde.reference_document_number": "B-50",
    }


def _next_to(field: str) -> str:
    """The error text beside the KDE input the service's ``field`` names (issue 13: by the input, not the key)."""
    return f'id="kde-{field.removeprefix("payload.")}-error"'


def test_shipping_5000_kg_from_a_50_kg_lot_is_refused(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    farm = signed_in("producer")
    assert _post(farm, csrf, "/lots/new", _harvest_form(world, "INV-50")).status_code == 302
    with world.runtime.ctx() as ctx:
        pk = ctx.session.scalars(select(Lot.id).where(Lot.lot_code == "INV-50")).one()
    before = counts()
    page = _post(farm, csrf, f"/lots/{pk}/ship", _ship_form(world, "5000"))
    text = page.get_data(as_text=True)
    assert page.status_code == 400, text[:500]
    assert _next_to("quantity") in text and "only 50 kg on hand" in text
    as_json = _post(farm, csrf, f"/lots/{pk}/ship", _ship_form(world, "5000"), headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert as_json.json["error"] == "quantity_exceeds_on_hand" and as_json.json["field"] == "payload.quantity"
    assert counts() == before


def test_harvest_at_another_organisations_site_is_refused(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    farm = signed_in("producer")
    before = counts()
    form = _harvest_form(world, "INV-AWAY", **{"kde.location_gln": world.sites["other"]})
    page = _post(farm, csrf, "/lots/new", form)
    text = page.get_data(as_text=True)
    assert page.status_code == 400, text[:500]
    assert _next_to("location_gln") in text and "Other Farm" in text
    as_json = _post(farm, csrf, "/lots/new", form, headers={"Accept": "application/json"})
    assert as_json.json["error"] == "not_own_site" and as_json.json["field"] == "payload.location_gln"
    assert counts() == before


def test_empty_commodity_comes_from_the_product(world: Any, signed_in: Any, csrf: Any) -> None:
    farm = signed_in("producer")
    response = _post(farm, csrf, "/lots/new", _harvest_form(world, "INV-COMM", **{"kde.commodity": ""}))
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with world.runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == "INV-COMM")).one()
        assert lot.events[0].payload["commodity"] == "Test lettuce"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"kde.harvest_date": "2031-06-01"}, "date_in_future", "payload.harvest_date"),
        ({"kde.quantity": "1000000000"}, "implausible_quantity", "quantity"),
    ],
    ids=["harvest dated 2031", "1e9 kg"],
)
def test_harvest_in_the_future_or_of_an_implausible_quantity_is_refused(
    world: Any, signed_in: Any, csrf: Any, counts: Any, changes: dict[str, str], code: str, field: str
) -> None:
    farm = signed_in("producer")
    before = counts()
    form = _harvest_form(world, "INV-ODD", **changes)
    page = _post(farm, csrf, "/lots/new", form)
    assert page.status_code == 400 and _next_to(field) in page.get_data(as_text=True)
    as_json = _post(farm, csrf, "/lots/new", form, headers={"Accept": "application/json"})
    assert as_json.status_code == 400
    assert (as_json.json["error"], as_json.json["field"]) == (code, field)
    assert counts() == before


def test_shipping_to_a_site_of_another_company_than_the_receiver_is_refused(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    farm = signed_in("producer")
    assert _post(farm, csrf, "/lots/new", _harvest_form(world, "INV-TO")).status_code == 302
    with world.runtime.ctx() as ctx:
        pk = ctx.session.scalars(select(Lot.id).where(Lot.lot_code == "INV-TO")).one()
    before = counts()
    form = _ship_form(world, "10") | {"kde.to_gln": world.sites["retailer"]}  # the processor receives it
    page = _post(farm, csrf, f"/lots/{pk}/ship", form)
    assert page.status_code == 400 and _next_to("to_gln") in page.get_data(as_text=True)
    as_json = _post(farm, csrf, f"/lots/{pk}/ship", form, headers={"Accept": "application/json"})
    assert (as_json.json["error"], as_json.json["field"]) == ("site_not_of_recipient", "payload.to_gln")
    assert counts() == before


def _register_kale(farm: Any, csrf: Any, gtin13: str) -> str:
    """Register a product that defines its commodity and variety through the products form."""
    from supply_chain.domain.identifiers import parse_gtin

    page = _post(
        farm,
        csrf,
        "/products",
        {"gtin": gtin13, "name": "Curly kale, bunched", "commodity": "kale", "variety": "Winterbor", "unit": "kg"},
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 302, text[text.find("<main") :][:1500]
    return parse_gtin(gtin13)


def test_a_kale_lot_recorded_as_romaine_is_refused_and_the_form_follows_the_product(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    farm = signed_in("producer")
    kale = _register_kale(farm, csrf, "0700001000022")
    # The form for the kale product (picked by ?gtin= without a script) shows the product's commodity and
    # variety, and each option carries them for the script that refreshes the fields on a change.
    form_page = farm.get(f"/lots/new?gtin={kale}").get_data(as_text=True)
    assert 'id="kde-commodity"' in form_page and 'value="kale"' in form_page and 'value="Winterbor"' in form_page
    assert f'value="{kale}" selected data-unit="kg" data-commodity="kale" data-commodity-bound' in form_page
    assert 'data-commodity="Test lettuce" data-variety=""' in form_page  # the lettuce product binds nothing
    before = counts()
    stale = _harvest_form(world, "INV-KALE", gtin=kale, **{"kde.commodity": "Romaine"})
    page = _post(farm, csrf, "/lots/new", stale)
    text = page.get_data(as_text=True)
    assert page.status_code == 400, text[:500]
    assert _next_to("commodity") in text and "set by the product Curly kale" in text
    as_json = _post(farm, csrf, "/lots/new", stale, headers={"Accept": "application/json"})
    assert as_json.json["error"] == "product_bound" and as_json.json["field"] == "payload.commodity"
    other_variety = _harvest_form(world, "INV-KALE", gtin=kale, **{"kde.commodity": "", "kde.variety": "Redbor"})
    assert _post(farm, csrf, "/lots/new", other_variety).status_code == 400
    assert counts() == before
    # Same words, other case and spacing: accepted; the empty commodity is filled from the product.
    ok = _harvest_form(world, "INV-KALE", gtin=kale, **{"kde.commodity": "", "kde.variety": "  winterbor "})
    assert _post(farm, csrf, "/lots/new", ok).status_code == 302
    with world.runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == "INV-KALE")).one()
        assert lot.events[0].payload["commodity"] == "kale"
