"""``POST /lots/{gtin}/{lot}/readings``: the request model checks the list's shape (an array of 1-10,000
objects), the route each reading's fields and JSON types (``routes.reading_rows``) and the domain each
reading's rules (``lots.validate_readings``); a refusal names the reading and its field, and writes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.api import models
from supply_chain.store.models import Event, Lot, SensorBatch, SensorReading
from tests.api.conftest import harvest_body, new_code

GOOD = {"taken_at": "2025-05-02T10:00:00Z", "temperature_c": "4.0"}
AT = "2025-05-02T10:00:00Z"

REFUSALS: list[tuple[Any, int, str, str, str]] = [
    # (body, status, field, error code, message)
    ({"readings": {"a": 1}}, 400, "readings", "invalid_field", 'readings: {"a": 1} must be of type array'),
    ({"readings": []}, 400, "readings", "invalid_field", "readings: [] must have at least 1 item(s)"),
    ({}, 400, "readings", "missing_field", "readings: is required"),
    ({"readings": [GOOD, 5]}, 400, "readings[1]", "invalid_field", "readings[1]: 5 must be of type object"),
    ({"readings": [GOOD, None]}, 400, "readings[1]", "invalid_field", "readings[1]: null must be of type object"),
    (
        {"readings": [GOOD, GOOD, {"temperature_c": "4"}]},
        400,
        "readings[2].taken_at",
        "missing_field",
        "readings[2].taken_at: is required",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT}]},
        400,
        "readings[1].temperature_c",
        "missing_field",
        "readings[1].temperature_c: is required",
    ),
    (
        {"readings": [GOOD, {"taken_at": 5, "temperature_c": "4"}]},
        400,
        "readings[1].taken_at",
        "invalid_field",
        "readings[1].taken_at: 5 must be of type string",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT + " " * 30, "temperature_c": "4"}]},
        400,
        "readings[1].taken_at",
        "invalid_field",
        'readings[1].taken_at: "2025-05-02T10:00:00Z                              " must be at most 40 characters',
    ),
    (
        {"readings": [GOOD, {"taken_at": "2025-05-02T10:00:00", "temperature_c": "4"}]},
        400,
        "readings[1].taken_at",
        "invalid_date",
        "readings[1].taken_at: a date-time needs a UTC offset (e.g. +02:00 or Z), got '2025-05-02T10:00:00'",
    ),
    (
        {"readings": [GOOD, {"taken_at": "2025-02-30T10:00:00Z", "temperature_c": "4"}]},
        400,
        "readings[1].taken_at",
        "invalid_date",
        "readings[1].taken_at: '2025-02-30T10:00:00Z' is not a valid date-time (day is out of range for month)",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": True}]},
        400,
        "readings[1].temperature_c",
        "invalid_field",
        "readings[1].temperature_c: true must be of type string or number",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": None}]},
        400,
        "readings[1].temperature_c",
        "invalid_field",
        "readings[1].temperature_c: null must be of type string or number",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": "warm"}]},
        400,
        "readings[1].temperature_c",
        "invalid_input",
        "readings[1].temperature_c: 'warm' is not a number",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": 1e9}]},
        400,
        "readings[1].temperature_c",
        "implausible_temperature",
        "readings[1].temperature_c: must be between -80 and 80, got '1000000000.0'",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": "4", "humidity": None}]},
        400,
        "readings[1].humidity",
        "invalid_field",
        "readings[1].humidity: null must be of type string or number",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": "4", "humidity": {}}]},
        400,
        "readings[1].humidity",
        "invalid_field",
        "readings[1].humidity: {} must be of type string or number",
    ),
    (
        {"readings": [GOOD, {"taken_at": AT, "temperature_c": "4", "humidity": 200}]},
        400,
        "readings[1].humidity",
        "invalid_humidity",
        "readings[1].humidity: must be between 0 and 100, got '200'",
    ),
    (
        {"readings": [GOOD], "colour": "red"},
        400,
        "body",
        "unknown_field",
        "body: Additional properties are not allowed ('colour' was unexpected)",
    ),
]


def _stored(api_runtime: Any, lot_code: str) -> tuple[int, int, int]:
    with api_runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == lot_code)).one()
        return (
            ctx.session.scalar(select(func.count()).select_from(Event).where(Event.lot_id == lot.id)),
            ctx.session.scalar(select(func.count()).select_from(SensorBatch).where(SensorBatch.lot_id == lot.id)),
            ctx.session.scalar(
                select(func.count()).select_from(SensorReading).join(SensorBatch).where(SensorBatch.lot_id == lot.id)
            ),
        )


def test_a_refused_upload_names_the_reading_and_its_field_and_writes_nothing(as_role, network, api_runtime) -> None:
    producer = network["producer"]
    code = new_code("RD")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code)).status_code == 201
    before = _stored(api_runtime, code)
    block = api_runtime.ledger.block_number()
    for body, status, field, error, message in REFUSALS:
        refused = as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/readings", json=body)
        assert refused.status_code == status, (body, refused.get_json())
        assert refused.get_json() == {"error": error, "message": message, "field": field}
    assert _stored(api_runtime, code) == before
    assert api_runtime.ledger.block_number() == block


def test_the_first_bad_reading_is_the_one_named(as_role, network) -> None:
    """Readings are checked in the order sent: the first bad one is named, whatever is wrong with a later one
    (the request model named the least nested problem: a missing field of a later reading came first)."""
    producer = network["producer"]
    code = new_code("RD")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code)).status_code == 201
    body = {"readings": [GOOD, {"taken_at": 5, "temperature_c": True}, {"taken_at": AT}]}
    refused = as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/readings", json=body)
    assert refused.status_code == 400
    assert refused.get_json()["field"] == "readings[1].taken_at"


def test_numbers_and_texts_are_anchored_alike(as_role, network) -> None:
    """A reading's numbers may be JSON numbers or texts; both are anchored as the same canonical reading."""
    producer = network["producer"]
    roots = []
    for reading in (
        {"taken_at": "2025-05-02T10:00:00+02:00", "temperature_c": 3.5, "humidity": 80, "note": "kept out"},
        {"taken_at": "2025-05-02T10:00:00+02:00", "temperature_c": "3.50", "humidity": "80.0"},
    ):
        code = new_code("RD")
        assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code)).status_code == 201
        made = as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/readings", json={"readings": [reading]})
        assert made.status_code == 201, made.get_json()
        payload = made.get_json()["event"]["payload"]
        assert payload["min_temperature_c"] == payload["max_temperature_c"] == "3.5"
        roots.append(payload["merkle_root"])
    assert roots[0] == roots[1]


def test_the_request_model_checks_the_lists_shape_and_documents_each_reading() -> None:
    """The model keeps each reading as sent (no model object per reading: the domain checks the rules), and
    the document still describes a reading's fields."""
    checked = models.Readings.model_validate({"readings": [GOOD, {"taken_at": 5}]})
    assert checked.readings == [GOOD, {"taken_at": 5}]
    item = models.Readings.model_json_schema()["properties"]["readings"]["items"]
    assert item["required"] == ["taken_at", "temperature_c"]
    assert set(item["properties"]) == {"taken_at", "temperature_c", "humidity"}
    assert item["properties"]["temperature_c"]["type"] == ["string", "number"]


def test_an_upload_across_a_change_of_clock_is_ordered_by_instant(as_role, network, api_runtime) -> None:
    """A logger's clock goes back an hour on the last Sunday of October: 02:45+02:00 is followed by
    02:15+01:00, half an hour later. The readings are leaves in the order they were taken (not in the order of
    their texts, which put 02:15+01:00 first and made the batch end before it began, refused)."""
    producer = network["producer"]
    code = new_code("RD")
    assert as_role("producer")("POST", "/lots", json=harvest_body(producer, code)).status_code == 201
    taken = ["2026-10-25T02:45:00+02:00", "2026-10-25T02:15:00+01:00", "2026-10-25T01:30:00Z"]
    body = {"readings": [{"taken_at": t, "temperature_c": str(3 + i)} for i, t in enumerate(taken)]}
    made = as_role("producer")("POST", f"/lots/{producer.gtin}/{code}/readings", json=body)
    assert made.status_code == 201, made.get_json()
    payload = made.get_json()["event"]["payload"]
    assert payload["period_start"] == "2026-10-25T02:45:00+02:00"
    assert payload["period_end"] == "2026-10-25T01:30:00+00:00"
    with api_runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == code)).one()
        stored = ctx.session.execute(
            select(SensorReading.leaf_index, SensorReading.temperature_c)
            .join(SensorBatch)
            .where(SensorBatch.lot_id == lot.id)
            .order_by(SensorReading.leaf_index)
        ).all()
    assert [float(t) for _i, t in stored] == [3.0, 4.0, 5.0]
