"""Lineage rules: quantities, consumption of input lots, recall classes and recall reach."""

from __future__ import annotations

from decimal import Decimal

import pytest

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.kinds import LotStatus
from supply_chain.domain.lineage import (
    RecallClass,
    affected_by_recall,
    ancestors,
    check_consumption,
    descendants,
    format_quantity,
    parse_quantity,
    parse_recall_class,
    recalled_sources,
)


def test_consumption_returns_what_is_left() -> None:
    assert check_consumption(Decimal("100"), Decimal("40.5"), "inputs[0].quantity") == Decimal("59.5")
    assert check_consumption(Decimal("100"), Decimal("100"), "q") == Decimal("0")


def test_consuming_more_than_is_left_says_what_is_left() -> None:
    with pytest.raises(InvalidInput) as info:
        check_consumption(Decimal("12.50"), Decimal("20"), "payload.inputs[1].quantity", unit="kg")
    assert info.value.message == "payload.inputs[1].quantity: requested 20 kg but only 12.5 kg left"
    assert info.value.field == "payload.inputs[1].quantity"
    with pytest.raises(InvalidInput, match="only 0 left"):
        check_consumption(Decimal("0"), Decimal("1"), "q")


@pytest.mark.parametrize("requested", [Decimal("0"), Decimal("-1"), Decimal("NaN")])
def test_consuming_nothing_or_less_is_refused(requested: Decimal) -> None:
    with pytest.raises(InvalidInput, match="q: must be greater than 0"):
        check_consumption(Decimal("10"), requested, "q")


@pytest.mark.parametrize(
    ("given", "text"),
    [
        ("0.250", "0.25"),
        ("100", "100"),
        ("1E+2", "100"),
        (2.5, "2.5"),
        ("0.000001", "0.000001"),
        ("10.0", "10"),
    ],
)
def test_quantities_parse_and_format_plainly(given: object, text: str) -> None:
    assert format_quantity(parse_quantity(given)) == text


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("I", RecallClass.I),
        ("class ii", RecallClass.II),
        (3, RecallClass.III),
        (" Class III ", RecallClass.III),
        ("1", RecallClass.I),
    ],
)
def test_recall_classes_parse(given: object, stored: RecallClass) -> None:
    assert parse_recall_class(given) is stored


@pytest.mark.parametrize("given", ["IV", "", "Class", 0, 4, True, None, "A"])
def test_unknown_recall_classes_are_refused(given: object) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_recall_class(given)
    assert info.value.field == "recall_class"
    assert "must be I, II or III" in info.value.message


def test_recall_class_levels_order_severity() -> None:
    assert [c.level for c in RecallClass] == [1, 2, 3]


# lettuce + carrots -> salad mix -> salad bowl; tomatoes -> salad bowl
INPUTS_OF = {
    "salad_mix": ["lettuce", "carrots"],
    "bowl": ["salad_mix", "tomatoes"],
}


def test_ancestors_and_descendants_follow_transformations() -> None:
    assert set(ancestors("bowl", INPUTS_OF)) == {"salad_mix", "tomatoes", "lettuce", "carrots"}
    assert ancestors("lettuce", INPUTS_OF) == []
    assert set(descendants("lettuce", INPUTS_OF)) == {"salad_mix", "bowl"}
    assert descendants("bowl", INPUTS_OF) == []


def test_recall_of_an_ingredient_reaches_every_product_made_from_it() -> None:
    status = {"lettuce": LotStatus.RECALLED, "carrots": LotStatus.ACTIVE}
    assert affected_by_recall("bowl", INPUTS_OF, status)
    assert affected_by_recall("salad_mix", INPUTS_OF, status)
    assert not affected_by_recall("tomatoes", INPUTS_OF, status)
    assert not affected_by_recall("carrots", INPUTS_OF, status)
    assert recalled_sources("bowl", INPUTS_OF, status) == ["lettuce"]


def test_a_recalled_lot_lists_itself_first() -> None:
    status = {"bowl": LotStatus.RECALLED, "lettuce": LotStatus.RECALLED}
    assert recalled_sources("bowl", INPUTS_OF, status)[0] == "bowl"


def test_cyclic_lineage_data_does_not_loop() -> None:
    cyclic = {"a": ["b"], "b": ["a"]}
    assert ancestors("a", cyclic) == ["b"]
    assert descendants("a", cyclic) == ["b"]
