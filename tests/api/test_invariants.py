"""Invariants through the REST API: shipping more than the lot holds and harvesting at another
organisation's site answer 400 with the field and the rule's code, and nothing is written."""

from __future__ import annotations

from sqlalchemy import func, select

from supply_chain.store.models import Event, Lot
from tests.api.conftest import harvest_body, new_code, ship_body


def _counts(runtime) -> tuple[int, int, int]:  # noqa: ANN001
    with runtime.ctx() as ctx:
        s = ctx.session
        return (
            s.scalar(select(func.count()).select_from(Lot)),
            s.scalar(select(func.count()).select_from(Event)),
            ctx.ledger.block_number(),
        )


def test_shipping_5000_kg_from_a_50_kg_lot_is_refused(as_role, network, api_runtime) -> None:
    producer, processor = network["producer"], network["processor"]
    code = new_code("INV")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code, "50")).status_code == 201
    before = _counts(api_runtime)
    body = ship_body(producer, processor)
    body["payload"] |= {"quantity": "5000", "unit": "kg"}
    response = as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/shipments", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "quantity_exceeds_on_hand" and error["field"] == "payload.quantity"
    assert "50 kg" in error["message"]
    assert _counts(api_runtime) == before


def test_harvest_at_another_organisations_site_is_refused(as_role, network, api_runtime) -> None:
    producer = network["producer"]
    before = _counts(api_runtime)
    body = harvest_body(producer, new_code("INV"))
    body["payload"]["location_gln"] = network["processor"].gln
    response = as_role("producer")("POST", "/lots", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert error["error"] == "not_own_site" and error["field"] == "payload.location_gln"
    assert "API Processor" in error["message"]
    assert _counts(api_runtime) == before


def test_harvest_dated_2031_or_of_1e9_kg_is_refused(as_role, network, api_runtime) -> None:
    producer = network["producer"]
    before = _counts(api_runtime)
    future = harvest_body(producer, new_code("INV"))
    future["payload"]["harvest_date"] = "2031-06-01"
    response = as_role("producer")("POST", "/lots", json=future)
    assert response.status_code == 400
    assert (response.get_json()["error"], response.get_json()["field"]) == ("date_in_future", "payload.harvest_date")
    huge = harvest_body(producer, new_code("INV"), "1000000000")
    response = as_role("producer")("POST", "/lots", json=huge)
    assert response.status_code == 400
    assert (response.get_json()["error"], response.get_json()["field"]) == ("implausible_quantity", "quantity")
    assert _counts(api_runtime) == before


def test_shipping_to_a_site_of_another_company_than_the_receiver_is_refused(as_role, network, api_runtime) -> None:
    producer, processor = network["producer"], network["processor"]
    code = new_code("INV")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code)).status_code == 201
    before = _counts(api_runtime)
    body = ship_body(producer, processor)
    body["payload"]["to_gln"] = network["retailer"].gln
    body["to"] = processor.org.id  # the processor receives it, at the retailer's site
    response = as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/shipments", json=body)
    assert response.status_code == 400
    assert (response.get_json()["error"], response.get_json()["field"]) == ("site_not_of_recipient", "payload.to_gln")
    assert _counts(api_runtime) == before


def test_a_kale_lot_recorded_as_romaine_is_refused(as_role, network, api_runtime) -> None:
    """A product registered with its commodity binds every lot of it: an API harvest naming another
    commodity is refused with the field named, and nothing is written; an empty one is filled in."""
    from tests.api.conftest import gtin

    producer = network["producer"]
    api = as_role("producer")
    kale = gtin(producer.prefix, "00077")
    registered = api(
        "POST", "/products", json={"gtin": kale, "name": "Curly kale", "commodity": "kale", "variety": "Winterbor"}
    )
    assert registered.status_code == 201, registered.get_json()
    assert (registered.get_json()["commodity"], registered.get_json()["variety"]) == ("kale", "Winterbor")
    before = _counts(api_runtime)
    body = harvest_body(producer, new_code("KALE")) | {"gtin": kale}
    body["payload"]["commodity"] = "Romaine"
    response = api("POST", "/lots", json=body)
    assert response.status_code == 400
    error = response.get_json()
    assert (error["error"], error["field"]) == ("product_bound", "payload.commodity")
    assert "'kale'" in error["message"]
    assert _counts(api_runtime) == before
    del body["payload"]["commodity"]
    created = api("POST", "/lots", json=body)
    assert created.status_code == 201, created.get_json()
    events = api("GET", f"/lots/{kale}/{body['lot_code']}/events", scope="read").get_json()["items"]
    assert events[0]["payload"]["commodity"] == "kale"
