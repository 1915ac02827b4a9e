"""Idempotency-Key: a retried POST returns the first answer and records nothing twice."""

from __future__ import annotations

from sqlalchemy import func, select

from supply_chain.store.models import Event, IdempotencyRecord, Lot
from tests.api.conftest import harvest_body, new_code, ship_body


def _events(api_runtime, code: str) -> list[int]:
    with api_runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == code)).one()
        return [int(e.kind) for e in ctx.session.scalars(select(Event).where(Event.lot_id == lot.id))]


def test_retried_create_returns_the_first_answer_without_writing_again(as_role, network, api_runtime) -> None:
    api = as_role("producer")
    code = new_code()
    body = harvest_body(network["producer"], code)
    first = api("POST", "/lots", json=body, headers={"Idempotency-Key": "create-" + code})
    retry = api("POST", "/lots", json=body, headers={"Idempotency-Key": "create-" + code})
    assert first.status_code == retry.status_code == 201
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert _events(api_runtime, code) == [1]


def test_retried_shipment_is_recorded_once(as_role, network, api_runtime) -> None:
    producer = network["producer"]
    code = new_code()
    as_role("producer")("POST", "/lots", json=harvest_body(producer, code))
    api = as_role("producer")
    path = f"/lots/{producer.gtin}/{code}/shipments"
    body = ship_body(producer, network["processor"])
    responses = [api("POST", path, json=body, headers={"Idempotency-Key": f"ship-{code}"}) for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert _events(api_runtime, code) == [1, 5]


def test_same_key_with_a_different_body_is_a_409(as_role, network) -> None:
    api = as_role("producer")
    key = "reused-" + new_code()
    assert (
        api(
            "POST", "/lots", json=harvest_body(network["producer"], new_code()), headers={"Idempotency-Key": key}
        ).status_code
        == 201
    )
    other = api("POST", "/lots", json=harvest_body(network["producer"], new_code()), headers={"Idempotency-Key": key})
    assert other.status_code == 409
    assert other.get_json()["error"] == "idempotency_key_reused"
    assert other.get_json()["field"] == "Idempotency-Key"


def test_keys_belong_to_one_organisation(as_role, network, api_runtime) -> None:
    key = "shared-" + new_code()
    producer_code = new_code()
    assert (
        as_role("producer")(
            "POST", "/lots", json=harvest_body(network["producer"], producer_code), headers={"Idempotency-Key": key}
        ).status_code
        == 201
    )
    body = harvest_body(network["processor"], new_code())
    processor = as_role("processor")("POST", "/lots", json=body, headers={"Idempotency-Key": key})
    assert processor.status_code == 201  # another organisation's key space
    assert processor.get_json()["lot_code"] == body["lot_code"]


def test_a_failed_request_stores_nothing_and_can_be_retried_with_the_same_key(as_role, network, api_runtime) -> None:
    api = as_role("producer")
    key = "fix-and-retry-" + new_code()
    code = new_code()
    bad = harvest_body(network["producer"], code)
    bad["payload"]["harvest_date"] = "yesterday"
    assert api("POST", "/lots", json=bad, headers={"Idempotency-Key": key}).status_code == 400
    with api_runtime.ctx() as ctx:
        assert (
            ctx.session.scalar(select(func.count()).select_from(IdempotencyRecord).where(IdempotencyRecord.key == key))
            == 0
        )
    good = api("POST", "/lots", json=harvest_body(network["producer"], code), headers={"Idempotency-Key": key})
    assert good.status_code == 201


def test_malformed_idempotency_key_is_a_400(as_role, network) -> None:
    response = as_role("producer")(
        "POST",
        "/lots",
        json=harvest_body(network["producer"], new_code()),
        headers={"Idempotency-Key": "has spaces in it"},
    )
    assert response.status_code == 400 and response.get_json()["field"] == "Idempotency-Key"
