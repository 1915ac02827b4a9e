"""Key data elements per event kind: validation, normalisation and field visibility."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.events import (
    KIND_SPECS,
    Visibility,
    event_date,
    field_visibility,
    kind_spec,
    parse_kind,
    parse_outcome,
    parse_when,
    public_view,
    validate_payload,
    visible_view,
)
from supply_chain.domain.hashing import payload_hash
from supply_chain.domain.kinds import EventKind, InspectionOutcome

FARM = "0614141000005"
PACKER = "0614141000012"
DC = "4012345000009"
SHOP = "4012345000016"

EXAMPLES: dict[EventKind, dict[str, Any]] = {
    EventKind.HARVESTING: {
        "location_gln": FARM,
        "harvest_date": "2024-05-01",
        "commodity": "Romaine lettuce",
        "variety": "Parris Island",
        "quantity": "1200",
        "unit": "kg",
        "field_name": "North 3",
    },
    EventKind.COOLING: {
        "location_gln": FARM,
        "cooling_date": "2024-05-01T14:00:00+02:00",
        "quantity": 1200,
        "unit": "kg",
    },
    EventKind.INITIAL_PACKING: {
        "location_gln": PACKER,
        "packing_date": "2024-05-02",
        "quantity": "480",
        "unit": "case",
        "harvest_location_gln": FARM,
        "harvest_date": "2024-05-01",
    },
    EventKind.FIRST_LAND_BASED_RECEIVING: {
        "location_gln": DC,
        "landing_date": "2024-05-03",
        "quantity": "2.5",
        "unit": "t",
        "harvest_area": "FAO 27.4.b North Sea",
        "vessel_name": "FV Nordlys",
        "harvest_date_start": "2024-04-28",
        "harvest_date_end": "2024-05-02",
    },
    EventKind.SHIPPING: {
        "from_gln": PACKER,
        "to_gln": DC,
        "ship_date": "2024-05-02T18:30:00Z",
        "quantity": "480",
        "unit": "case",
        "reference_document_type": "BOL",
        "reference_document_number": "BOL-2024-0042",
        "tlc_source_gln": PACKER,
    },
    EventKind.RECEIVING: {
        "from_gln": PACKER,
        "to_gln": DC,
        "receive_date": "2024-05-03",
        "quantity": "480",
        "unit": "case",
        "reference_document_type": "BOL",
        "reference_document_number": "BOL-2024-0042",
    },
    EventKind.TRANSFORMATION: {
        "location_gln": DC,
        "transformation_date": "2024-05-04",
        "inputs": [
            {"gtin": "09506000134352", "lot_code": "L2405-01", "quantity": "200", "unit": "kg"},
            {"gtin": "4006381333931", "lot_code": "C/7", "quantity": 50.5, "unit": "kg"},
        ],
        "quantity": "1000",
        "unit": "bag",
        "product_description": "Salad mix 250 g",
    },
    EventKind.INSPECTION: {
        "outcome": "PASS",
        "inspection_date": "2024-05-03",
        "inspector_name": "Dana Ortiz",
        "findings": "No pathogens detected",
        "certificate_sha256": "A" * 64,
    },
    EventKind.HOLD: {"reason": "Awaiting lab result", "date": "2024-05-03"},
    EventKind.RELEASE: {"reason": "Lab result negative", "date": "2024-05-04"},
    EventKind.RECALL: {
        "reason": "Listeria monocytogenes",
        "recall_class": "Class I",
        "date": "2024-05-10",
        "instructions": "Do not eat. Return to the store for a refund.",
    },
    EventKind.SENSOR_ANCHOR: {
        "merkle_root": "0x" + "AB" * 32,
        "reading_count": 96,
        "period_start": "2024-05-02T18:30:00+00:00",
        "period_end": "2024-05-03T18:15:00+00:00",
        "min_temperature_c": 1.5,
        "max_temperature_c": "4.20",
    },
    EventKind.CLOSE: {"reason": "sold out", "date": "2024-05-12"},
    EventKind.CUSTODY_REJECTED: {"reason": "Temperature above 5 C on arrival", "date": "2024-05-03"},
    EventKind.CUSTODY_CANCELLED: {"reason": "Truck broke down", "date": "2024-05-03"},
    EventKind.OBSERVATION: {"note": "Pallet wrap torn, contents fine", "date": "2024-05-03"},
    EventKind.RECALL_ENDED: {
        "reason": "Every affected case removed from sale and destroyed",
        "date": "2024-06-01",
        "recall_class": "I",
        "effectiveness": "4 of 4 notified holders answered (100%, level A asks 100%)",
    },
}


def test_every_event_kind_has_a_spec_and_an_example() -> None:
    assert set(KIND_SPECS) == set(EventKind)
    assert set(EXAMPLES) == set(EventKind)


@pytest.mark.parametrize("kind", list(EventKind))
def test_example_payload_validates_and_normalising_twice_changes_nothing(kind: EventKind) -> None:
    once = validate_payload(kind, EXAMPLES[kind])
    assert validate_payload(kind, once) == once
    assert payload_hash(validate_payload(kind, once)) == payload_hash(once)
    assert event_date(kind, once) is not None


@pytest.mark.parametrize("kind", list(EventKind))
def test_each_required_field_missing_is_named(kind: EventKind) -> None:
    for name in kind_spec(kind).required:
        for missing in (None, "  "):
            payload = {**EXAMPLES[kind], name: missing}
            with pytest.raises(InvalidInput) as info:
                validate_payload(kind, payload)
            assert info.value.field == f"payload.{name}"
            assert info.value.message.startswith(f"payload.{name}: is required")


def test_normalisation_of_identifiers_dates_and_quantities() -> None:
    out = validate_payload(EventKind.TRANSFORMATION, EXAMPLES[EventKind.TRANSFORMATION])
    assert out["inputs"][1] == {"gtin": "04006381333931", "lot_code": "C/7", "quantity": "50.5", "unit": "kg"}
    shipped = validate_payload(EventKind.SHIPPING, EXAMPLES[EventKind.SHIPPING])
    assert shipped["ship_date"] == "2024-05-02T18:30:00+00:00"
    cooled = validate_payload(EventKind.COOLING, EXAMPLES[EventKind.COOLING])
    assert cooled["quantity"] == "1200"
    anchor = validate_payload(EventKind.SENSOR_ANCHOR, EXAMPLES[EventKind.SENSOR_ANCHOR])
    assert anchor["merkle_root"] == "0x" + "ab" * 32
    assert (anchor["min_temperature_c"], anchor["max_temperature_c"]) == ("1.5", "4.2")
    inspection = validate_payload(EventKind.INSPECTION, EXAMPLES[EventKind.INSPECTION])
    assert inspection["outcome"] == "pass"
    assert inspection["certificate_sha256"] == "a" * 64
    recall = validate_payload(EventKind.RECALL, EXAMPLES[EventKind.RECALL])
    assert recall["recall_class"] == "I"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("12.50", "12.5"), (12, "12"), ("1e3", "1000"), (0.1, "0.1"), (" 7 ", "7"), (Decimal("3.000"), "3")],
)
def test_quantities_are_stored_as_plain_decimal_strings(given: object, stored: str) -> None:
    out = validate_payload(EventKind.COOLING, {**EXAMPLES[EventKind.COOLING], "quantity": given})
    assert out["quantity"] == stored


@pytest.mark.parametrize(
    ("quantity", "fragment"),
    [
        (0, "payload.quantity: must be greater than 0"),
        ("-3", "payload.quantity: must be greater than 0"),
        ("abc", "is not a decimal number"),
        ("NaN", "finite"),
        (float("inf"), "finite"),
        (True, "must be a number"),
        ("1e20", "less than 10^12"),
        ("1.0000001", "at most 6 digits"),
    ],
)
def test_bad_quantities_are_refused(quantity: object, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.HARVESTING, {**EXAMPLES[EventKind.HARVESTING], "quantity": quantity})
    assert fragment in info.value.message
    assert info.value.field == "payload.quantity"


def test_bad_gln_names_the_payload_field_and_the_rule() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.SHIPPING, {**EXAMPLES[EventKind.SHIPPING], "to_gln": "4012345000008"})
    assert info.value.field == "payload.to_gln"
    assert info.value.code == "invalid_gln"
    assert info.value.message == "payload.to_gln: GLN 4012345000008: check digit should be 9, got 8"


def test_shipping_to_the_same_location_is_refused() -> None:
    with pytest.raises(InvalidInput, match="payload.to_gln: must differ from from_gln"):
        validate_payload(EventKind.SHIPPING, {**EXAMPLES[EventKind.SHIPPING], "to_gln": PACKER})


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("2024-05-01", "2024-05-01"),
        ("2024-05-01T08:30:00+02:00", "2024-05-01T08:30:00+02:00"),
        ("2024-05-01T08:30Z", "2024-05-01T08:30:00+00:00"),
        ("2024-05-01 08:30:15.250-05:00", "2024-05-01T08:30:15.250000-05:00"),
        (date(2024, 5, 1), "2024-05-01"),
        (datetime(2024, 5, 1, 8, 30, tzinfo=UTC), "2024-05-01T08:30:00+00:00"),
    ],
)
def test_dates_accept_iso_dates_and_offset_datetimes(value: object, stored: str) -> None:
    assert parse_when(value, "payload.date") == stored


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("2024-05-01T08:30:00", "needs a UTC offset"),
        (datetime(2024, 5, 1, 8, 30), "needs a UTC offset"),
        ("2024-02-30", "not a valid date"),
        ("01/05/2024", "ISO 8601"),
        ("2024-05-01T25:00:00Z", "not a valid date-time"),
        ("yesterday", "ISO 8601"),
        (20240501, "got int"),
    ],
)
def test_bad_dates_are_refused(value: object, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.HOLD, {"reason": "lab", "date": value})
    assert fragment in info.value.message
    assert info.value.field == "payload.date"


def test_sensor_period_needs_datetimes_in_order() -> None:
    base = EXAMPLES[EventKind.SENSOR_ANCHOR]
    with pytest.raises(InvalidInput, match="payload.period_start: must be a date-time"):
        validate_payload(EventKind.SENSOR_ANCHOR, {**base, "period_start": "2024-05-02"})
    with pytest.raises(InvalidInput, match="payload.period_end: must not be before period_start"):
        validate_payload(EventKind.SENSOR_ANCHOR, {**base, "period_end": "2024-05-02T18:00:00+00:00"})
    # the same instant written with another offset is not "before"
    same = {**base, "period_end": "2024-05-02T20:30:00+02:00"}
    assert validate_payload(EventKind.SENSOR_ANCHOR, same)["period_end"] == "2024-05-02T20:30:00+02:00"
    with pytest.raises(InvalidInput, match="max_temperature_c: must not be below"):
        validate_payload(EventKind.SENSOR_ANCHOR, {**base, "min_temperature_c": 5, "max_temperature_c": 4})
    with pytest.raises(InvalidInput, match="payload.reading_count"):
        validate_payload(EventKind.SENSOR_ANCHOR, {**base, "reading_count": 0})
    with pytest.raises(InvalidInput, match="payload.merkle_root"):
        validate_payload(EventKind.SENSOR_ANCHOR, {**base, "merkle_root": "0x1234"})
    with pytest.raises(InvalidInput, match="between -80 and 80"):
        validate_payload(EventKind.SENSOR_ANCHOR, {**base, "max_temperature_c": 400})


def test_packing_before_harvest_is_refused() -> None:
    with pytest.raises(InvalidInput, match="payload.packing_date: must not be before harvest_date"):
        validate_payload(
            EventKind.INITIAL_PACKING, {**EXAMPLES[EventKind.INITIAL_PACKING], "harvest_date": "2024-05-05"}
        )


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ([], "payload.inputs"),
        ("09506000134352/L1", "payload.inputs"),
        ([{"gtin": "09506000134352", "lot_code": "L1", "quantity": "1"}], "payload.inputs[0].unit"),
        (
            [{"gtin": "09506000134353", "lot_code": "L1", "quantity": "1", "unit": "kg"}],
            "payload.inputs[0].gtin",
        ),
        (
            [
                {"gtin": "09506000134352", "lot_code": "L1", "quantity": "1", "unit": "kg"},
                {"gtin": "09506000134352", "lot_code": "L#", "quantity": "1", "unit": "kg"},
            ],
            "payload.inputs[1].lot_code",
        ),
        (
            [
                {"gtin": "09506000134352", "lot_code": "L1", "quantity": "1", "unit": "kg"},
                {"gtin": "9506000134352", "lot_code": "L1", "quantity": "2", "unit": "kg"},
            ],
            "payload.inputs[1]",
        ),
        (
            [{"gtin": "09506000134352", "lot_code": "L1", "quantity": "0", "unit": "kg"}],
            "payload.inputs[0].quantity",
        ),
        (["nope"], "payload.inputs[0]"),
    ],
)
def test_transformation_inputs_are_checked_item_by_item(inputs: object, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.TRANSFORMATION, {**EXAMPLES[EventKind.TRANSFORMATION], "inputs": inputs})
    assert info.value.field == field


def test_unknown_fields_are_kept_but_must_be_canonicalisable() -> None:
    out = validate_payload(EventKind.HOLD, {"reason": "lab", "date": "2024-05-01", "notes": {"lab": "A-7"}})
    assert out["notes"] == {"lab": "A-7"}
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.HOLD, {"reason": "lab", "date": "2024-05-01", "extra": [float("nan")]})
    assert info.value.field == "payload.extra[0]"


def test_empty_optional_fields_are_dropped() -> None:
    out = validate_payload(
        EventKind.HARVESTING, {**EXAMPLES[EventKind.HARVESTING], "variety": "", "field_name": None}
    )
    assert "variety" not in out and "field_name" not in out


def test_payload_must_be_an_object_and_kind_must_exist() -> None:
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        validate_payload(EventKind.HOLD, ["reason"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as info:
        validate_payload(99, {})
    assert info.value.field == "kind"


def test_kinds_parse_from_numbers_and_names() -> None:
    assert parse_kind(5) is EventKind.SHIPPING
    assert parse_kind("first land-based receiving") is EventKind.FIRST_LAND_BASED_RECEIVING
    assert parse_kind(EventKind.RECALL) is EventKind.RECALL
    for bad in (0, True, "teleport", None):
        with pytest.raises(InvalidInput):
            parse_kind(bad)


def test_outcomes_parse_to_the_contract_enum() -> None:
    assert parse_outcome("fail") is InspectionOutcome.FAIL
    assert parse_outcome(2) is InspectionOutcome.CONDITIONAL
    with pytest.raises(InvalidInput, match="pass, fail or conditional"):
        parse_outcome("maybe")
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.INSPECTION, {**EXAMPLES[EventKind.INSPECTION], "outcome": "ok"})
    assert info.value.field == "payload.outcome"


def test_recall_class_must_be_one_of_three() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_payload(EventKind.RECALL, {**EXAMPLES[EventKind.RECALL], "recall_class": "IV"})
    assert info.value.field == "payload.recall_class"


# --- visibility -----------------------------------------------------------------------------------


def test_visibility_defaults() -> None:
    assert field_visibility(EventKind.SHIPPING, "to_gln") is Visibility.PUBLIC
    assert field_visibility(EventKind.SHIPPING, "ship_date") is Visibility.PUBLIC
    assert field_visibility(EventKind.SHIPPING, "quantity") is Visibility.CONSORTIUM
    assert field_visibility(EventKind.SHIPPING, "reference_document_number") is Visibility.CONSORTIUM
    assert field_visibility(EventKind.SHIPPING, "unit_price") is Visibility.CONSORTIUM
    assert field_visibility(EventKind.INSPECTION, "outcome") is Visibility.PUBLIC
    assert field_visibility(EventKind.INSPECTION, "inspector_name") is Visibility.PRIVATE
    assert field_visibility(EventKind.RECALL, "instructions") is Visibility.PUBLIC
    assert field_visibility(EventKind.RECALL, "recall_class") is Visibility.PUBLIC
    assert field_visibility(EventKind.OBSERVATION, "note") is Visibility.PRIVATE
    assert field_visibility(EventKind.HARVESTING, "commodity") is Visibility.PUBLIC
    assert field_visibility(EventKind.HARVESTING, "anything_else") is Visibility.PRIVATE


def test_public_view_hides_quantities_documents_names_and_notes() -> None:
    payload = validate_payload(
        EventKind.SHIPPING,
        {**EXAMPLES[EventKind.SHIPPING], "notes": "call before delivery", "unit_price": "2.10"},
    )
    assert public_view(EventKind.SHIPPING, payload) == {
        "from_gln": PACKER,
        "to_gln": DC,
        "ship_date": "2024-05-02T18:30:00+00:00",
        "tlc_source_gln": PACKER,
    }
    consortium = visible_view(EventKind.SHIPPING, payload, Visibility.CONSORTIUM)
    assert consortium["unit_price"] == "2.10" and "notes" not in consortium
    assert visible_view(EventKind.SHIPPING, payload, Visibility.PRIVATE) == payload

    inspection = validate_payload(EventKind.INSPECTION, EXAMPLES[EventKind.INSPECTION])
    assert "inspector_name" not in public_view(EventKind.INSPECTION, inspection)
    assert public_view(EventKind.INSPECTION, inspection)["outcome"] == "pass"


def test_public_view_of_transformation_keeps_input_lots_without_quantities() -> None:
    payload = validate_payload(EventKind.TRANSFORMATION, EXAMPLES[EventKind.TRANSFORMATION])
    view = public_view(EventKind.TRANSFORMATION, payload)
    assert view["inputs"] == [
        {"gtin": "09506000134352", "lot_code": "L2405-01"},
        {"gtin": "04006381333931", "lot_code": "C/7"},
    ]
    assert "quantity" not in view
    assert payload["inputs"][0]["quantity"] == "200"  # the stored payload is untouched


def test_event_date_uses_the_kind_date_field() -> None:
    out = validate_payload(EventKind.RECEIVING, EXAMPLES[EventKind.RECEIVING])
    assert event_date(EventKind.RECEIVING, out) == "2024-05-03"
    offset = timezone(timedelta(hours=-7))
    moment = datetime(2024, 5, 3, 6, 0, tzinfo=offset)
    out = validate_payload(EventKind.HOLD, {"reason": "lab", "date": moment})
    assert event_date(EventKind.HOLD, out) == "2024-05-03T06:00:00-07:00"
