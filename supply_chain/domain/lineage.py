"""Pure lineage rules: quantities, consumption of input lots, recall classes and recall reach.

Lots form a graph through transformation: each lot lists its input lots. A recall of one lot reaches every
lot made from it (forward); a lot is affected when it or any of its ancestors is recalled (backward).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeVar

from .errors import InvalidInput, describe
from .kinds import LotStatus

LotKey = TypeVar("LotKey")

MAX_QUANTITY = Decimal(10) ** 12
"""Upper bound for any quantity; a larger number is a typing slip, not a shipment (and the store keeps
18 digits with 6 after the point)."""
MAX_DECIMALS = 6


def parse_quantity(value: object, field: str = "quantity") -> Decimal:
    """Parse a quantity given as a decimal string or a number: finite, > 0, < 10^12, at most 6 decimals."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidInput(
            f"{field}: must be a number or a decimal string, got {type(value).__name__}",
            field=field,
            code="invalid_quantity",
        )
    if isinstance(value, int) and not -MAX_QUANTITY < value < MAX_QUANTITY:
        # checked before str(): Python refuses to write an int of more than 4300 digits as text
        raise InvalidInput(
            f"{field}: must be greater than 0 and less than 10^12, got {describe(value)}",
            field=field,
            code="invalid_quantity",
        )
    text = value.strip() if isinstance(value, str) else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(
            f"{field}: {text!r} is not a decimal number", field=field, code="invalid_quantity"
        ) from None
    if not number.is_finite():
        raise InvalidInput(
            f"{field}: must be a finite number, got {text}", field=field, code="invalid_quantity"
        )
    if number <= 0:
        raise InvalidInput(f"{field}: must be greater than 0", field=field, code="invalid_quantity")
    if number >= MAX_QUANTITY:
        raise InvalidInput(
            f"{field}: must be less than 10^12, got {text}", field=field, code="invalid_quantity"
        )
    # quantize, not normalize(): normalize() rounds 1e-999999999 to 0 under the default context, which would
    # let it through and format_quantity would then write a gigabyte of zeros
    if number.quantize(Decimal(1).scaleb(-MAX_DECIMALS)) != number:
        raise InvalidInput(
            f"{field}: at most {MAX_DECIMALS} digits after the decimal point, got {text}",
            field=field,
            code="invalid_quantity",
        )
    return number


def format_quantity(number: Decimal) -> str:
    """Write a quantity in plain positional notation without trailing fractional zeros: '12.50' -> '12.5'."""
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def check_consumption(
    available: Decimal, requested: Decimal, field: str = "quantity", unit: str = ""
) -> Decimal:
    """Check that ``requested`` can be taken from a lot with ``available`` left; return what remains.

    Raises InvalidInput when ``requested`` is not positive or exceeds what is left.
    """
    requested = Decimal(requested)
    available = Decimal(available)
    suffix = f" {unit}" if unit else ""
    if not requested.is_finite() or requested <= 0:
        raise InvalidInput(f"{field}: must be greater than 0", field=field, code="invalid_quantity")
    if requested > available:
        left = format_quantity(available) if available > 0 else "0"
        raise InvalidInput(
            f"{field}: requested {format_quantity(requested)}{suffix} but only {left}{suffix} left",
            field=field,
            code="insufficient_quantity",
        )
    return available - requested


class RecallClass(StrEnum):
    """FDA recall class: I (serious harm likely), II (temporary or remote harm), III (harm unlikely)."""

    I = "I"  # noqa: E741 - the class names are Roman numerals
    II = "II"
    III = "III"

    @property
    def level(self) -> int:
        return {"I": 1, "II": 2, "III": 3}[self.value]


_RECALL_CLASS_WORDS = {"I": "I", "1": "I", "II": "II", "2": "II", "III": "III", "3": "III"}


def parse_recall_class(value: object, field: str = "recall_class") -> RecallClass:
    """Parse a recall class: 'I'/'II'/'III', 1/2/3, 'Class II', any case -> RecallClass."""
    if isinstance(value, RecallClass):
        return value
    wrong_number = isinstance(value, int) and value not in (1, 2, 3)  # before str(): huge ints have no text
    if isinstance(value, bool) or not isinstance(value, str | int) or wrong_number:
        raise InvalidInput(
            f"{field}: must be I, II or III, got {describe(value)}", field=field, code="invalid_recall_class"
        )
    text = str(value).strip().upper()
    if text.startswith("CLASS"):
        text = text[len("CLASS") :].strip()
    if text not in _RECALL_CLASS_WORDS:
        raise InvalidInput(
            f"{field}: must be I, II or III, got {describe(value)}", field=field, code="invalid_recall_class"
        )
    return RecallClass(_RECALL_CLASS_WORDS[text])


def _walk(start: LotKey, neighbours: Callable[[LotKey], Iterable[LotKey]]) -> list[LotKey]:
    seen: set[LotKey] = {start}
    order: list[LotKey] = []
    stack = [start]
    while stack:
        for nxt in neighbours(stack.pop()):
            if nxt not in seen:  # lineage is acyclic on chain; the guard keeps bad data from looping
                seen.add(nxt)
                order.append(nxt)
                stack.append(nxt)
    return order


def ancestors(lot: LotKey, inputs_of: Mapping[LotKey, Iterable[LotKey]]) -> list[LotKey]:
    """Return every lot that ``lot`` was made from, directly or transitively (backward trace)."""
    return _walk(lot, lambda key: inputs_of.get(key, ()))


def descendants(lot: LotKey, inputs_of: Mapping[LotKey, Iterable[LotKey]]) -> list[LotKey]:
    """Return every lot made from ``lot``, directly or transitively (forward trace)."""
    outputs: dict[LotKey, list[LotKey]] = {}
    for child, parents in inputs_of.items():
        for parent in parents:
            outputs.setdefault(parent, []).append(child)
    return _walk(lot, lambda key: outputs.get(key, ()))


def recalled_sources(
    lot: LotKey, inputs_of: Mapping[LotKey, Iterable[LotKey]], status_of: Mapping[LotKey, LotStatus]
) -> list[LotKey]:
    """Return the lots among ``lot`` and its ancestors whose status is RECALLED (``lot`` itself first)."""
    candidates = [lot, *ancestors(lot, inputs_of)]
    return [key for key in candidates if status_of.get(key) == LotStatus.RECALLED]


def affected_by_recall(
    lot: LotKey, inputs_of: Mapping[LotKey, Iterable[LotKey]], status_of: Mapping[LotKey, LotStatus]
) -> bool:
    """Return True when ``lot`` or any lot it was made from has been recalled."""
    return bool(recalled_sources(lot, inputs_of, status_of))
