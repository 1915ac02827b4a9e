"""Product-bound fields: what a product defines, an event on its lots fills in or may not contradict."""

from __future__ import annotations

import pytest

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.invariants import bind_product_fields

HARVEST = {"commodity": True, "variety": False}
KALE = {"commodity": "kale", "variety": "Winterbor"}


def test_a_contradicting_commodity_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as refused:
        bind_product_fields({"commodity": "Romaine"}, HARVEST, KALE, "Curly kale")
    assert refused.value.code == "product_bound" and refused.value.field == "payload.commodity"
    assert "'kale'" in str(refused.value) and "'Romaine'" in str(refused.value)


def test_a_contradicting_variety_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        bind_product_fields({"commodity": "kale", "variety": "Redbor"}, HARVEST, KALE, "Curly kale")
    assert refused.value.field == "payload.variety"


def test_case_and_spacing_do_not_matter_and_empty_required_fields_are_filled() -> None:
    assert bind_product_fields({"commodity": " KALE ", "variety": "winterbor"}, HARVEST, KALE, "Curly kale") == {
        "commodity": " KALE ",
        "variety": "winterbor",
    }
    assert bind_product_fields({}, HARVEST, KALE, "Curly kale") == {"commodity": "kale"}


def test_a_product_that_defines_nothing_lends_its_name_to_a_required_commodity_only() -> None:
    nothing = {"commodity": None, "variety": None}
    assert bind_product_fields({}, HARVEST, nothing, "Test lettuce") == {"commodity": "Test lettuce"}
    assert bind_product_fields({"commodity": "iceberg"}, HARVEST, nothing, "Test lettuce") == {"commodity": "iceberg"}
    assert bind_product_fields({}, {"commodity": False}, nothing, "Test lettuce") == {}
