"""Property tests (Hypothesis) for the domain's parsers and canonical hashing.

Each property is something a user relies on: a label's GTIN/GLN/lot code parses back to what was printed, a
quantity written by Lotline reads back as the same number, a stored payload validates to itself (so a
verifier never re-normalises), the same facts always hash to the same bytes whatever the key order, the
hash matches an independent implementation of the documented canonical form (docs/hashing.md), and every
parser answers arbitrary text with a value or an ``InvalidInput`` naming the field - never a crash, which
the web layer would turn into a 500.

Examples are bounded (``max_examples`` 200, no deadline, no example database) so the module runs in seconds;
the regression examples below (``@example``) are the bugs these properties found.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from eth_utils import keccak as eth_keccak
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from supply_chain.domain import invariants
from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.events import (
    INPUT_ITEM_FIELDS,
    KIND_SPECS,
    FieldSpec,
    FieldType,
    parse_kind,
    parse_outcome,
    parse_when,
    validate_payload,
)
from supply_chain.domain.hashing import (
    MAX_SAFE_INTEGER,
    address_bytes,
    bytes32,
    canonical_json,
    ensure_canonicalisable,
    hex32,
    payload_hash,
)
from supply_chain.domain.identifiers import (
    LOT_CODE_CHARACTERS,
    LOT_CODE_MAX_LENGTH,
    digital_link,
    digital_link_path,
    gln_has_prefix,
    gs1_check_digit,
    gtin_has_prefix,
    lot_id,
    parse_digital_link,
    parse_gln,
    parse_gtin,
    parse_lot_code,
)
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import MAX_DECIMALS, MAX_QUANTITY, format_quantity, parse_quantity, parse_recall_class
from supply_chain.domain.text import BIDI_CONTROLS, check_json_text, check_text

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------- strategies

DIGITS = st.text(alphabet=string.digits, min_size=1, max_size=20)


def _with_check_digit(body: str) -> str:
    return body + str(gs1_check_digit(body))


def _spaced(digits: str) -> st.SearchStrategy[str]:
    """The digits as printed under a bar code: optionally split in groups by spaces, maybe padded."""
    return st.lists(st.integers(0, len(digits)), max_size=3).map(
        lambda cuts: " ".join(
            digits[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(digits)], strict=True)
        )
    )


def _not_all_zeros(body: str) -> str:
    return body if body.strip("0") else body[:-1] + "1"  # the all-zero GTIN and GLN are refused


gtins = (
    st.sampled_from((8, 12, 13, 14))
    .flatmap(lambda n: st.text(alphabet=string.digits, min_size=n - 1, max_size=n - 1))
    .map(_not_all_zeros)
    .map(_with_check_digit)
)
glns = st.text(alphabet=string.digits, min_size=12, max_size=12).map(_not_all_zeros).map(_with_check_digit)
lot_codes = st.text(alphabet=sorted(LOT_CODE_CHARACTERS), min_size=1, max_size=LOT_CODE_MAX_LENGTH)
quantities = st.decimals(
    min_value=Decimal("0.000001"),
    max_value=MAX_QUANTITY - 1,
    places=MAX_DECIMALS,
    allow_nan=False,
    allow_infinity=False,
)
offsets = st.integers(-14 * 4, 14 * 4).map(lambda quarters: timezone(timedelta(minutes=15 * quarters)))
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets)
dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))
# Single-line text a user might type: letters of any script, punctuation, inner spaces.
line_chars = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters=BIDI_CONTROLS)
# Floats in (2^53, 1e21) are integral and RFC 8785 writes them without an exponent, so Python's json reads
# their canonical text back as an int beyond 2^53-1, which Lotline refuses as input: they are left out of the
# generated payloads (the round-trip property would not hold) and covered by explicit examples instead.
json_numbers = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not MAX_SAFE_INTEGER < abs(f) < 1e21)
)
json_scalars = json_numbers | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def _text(max_size: int, *, multiline: bool = False) -> st.SearchStrategy[str]:
    chars = line_chars | st.sampled_from("\t\n\r") if multiline else line_chars
    body = st.text(chars, min_size=1, max_size=max_size).filter(lambda t: t.strip() and len(t.strip()) <= max_size)
    return st.tuples(st.sampled_from(("", " ", "  \t")), body, st.sampled_from(("", " ", "\n"))).map("".join)


def _as_written(moment: datetime) -> st.SearchStrategy[str]:
    text = moment.isoformat()
    choices = [text, text.replace("T", " ")]
    if moment.utcoffset() == timedelta(0):
        choices.append(text.replace("+00:00", "Z"))
        choices.append(text.replace("+00:00", "z").lower())
    return st.sampled_from(choices)


def _quantity_as_sent(q: Decimal) -> st.SearchStrategy[Any]:
    options: list[Any] = [str(q), f" {q} ", format_quantity(q), q]
    if q == q.to_integral_value():
        options.append(int(q))
    else:
        options.append(str(q) + "000")
    return st.sampled_from(options)


def _value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """A valid value for one key data element, in any of the forms a client may send it."""
    match spec.type:
        case FieldType.GLN:
            return glns.flatmap(_spaced)
        case FieldType.GTIN:
            return gtins.flatmap(_spaced)
        case FieldType.LOT_CODE:
            return st.tuples(lot_codes, st.sampled_from(("", " "))).map(lambda t: t[1] + t[0] + t[1])
        case FieldType.DATE:
            return dates.map(date.isoformat) | moments.flatmap(_as_written) | dates
        case FieldType.DATETIME:
            return moments.flatmap(_as_written) | moments
        case FieldType.QUANTITY:
            return quantities.flatmap(_quantity_as_sent)
        case FieldType.UNIT:
            return _text(invariants.MAX_UNIT_LENGTH)
        case FieldType.TEXT:
            return _text(40)
        case FieldType.LONG_TEXT:
            return _text(80, multiline=True)
        case FieldType.OUTCOME:
            return st.sampled_from(("pass", "FAIL", " Conditional ", 0, 1, 2))
        case FieldType.RECALL_CLASS:
            return st.sampled_from(("I", "ii", "Class III", "class 2", 1, 3))
        case FieldType.COUNT:
            return st.integers(1, MAX_SAFE_INTEGER) | st.integers(1, 10**6).map(lambda n: f" {n} ")
        case FieldType.HASH32:
            return st.binary(min_size=32, max_size=32).flatmap(
                lambda b: st.sampled_from((hex32(b), b.hex(), hex32(b).upper().replace("0X", "0x"), b))
            )
        case FieldType.SHA256:
            return st.binary(min_size=32, max_size=32).flatmap(lambda b: st.sampled_from((b.hex(), b.hex().upper())))
        case FieldType.TEMPERATURE:
            return st.decimals(min_value=-80, max_value=80, places=3).flatmap(
                lambda t: st.sampled_from((t, str(t), float(t), int(t)))
            )
        case FieldType.INPUTS:
            return st.lists(_object(INPUT_ITEM_FIELDS), min_size=1, max_size=3, unique_by=_input_key)
    raise AssertionError(spec.type)  # pragma: no cover


def _input_key(item: dict[str, Any]) -> tuple[str, str]:
    return parse_gtin(item["gtin"]), parse_lot_code(item["lot_code"])


def _object(specs: tuple[FieldSpec, ...], extras: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    known = {s.name for s in specs}
    required = {s.name: _value(s) for s in specs if s.required}
    optional = {s.name: _value(s) | st.sampled_from((None, "", "  ")) for s in specs if not s.required}
    base = st.fixed_dictionaries(required, optional=optional)
    if not extras:
        return base
    extra_keys = st.text(line_chars, min_size=1, max_size=10).filter(lambda k: k.strip() and k not in known)
    extra_values = st.recursive(
        json_numbers | _text(20, multiline=True),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(extra_keys, inner, max_size=3),
        max_leaves=6,
    )
    return st.tuples(base, st.dictionaries(extra_keys, extra_values, max_size=3)).map(lambda t: t[1] | t[0])


payloads = st.sampled_from(sorted(EventKind)).flatmap(
    lambda kind: st.tuples(st.just(kind), _object(KIND_SPECS[kind].fields, extras=True))
)


# --------------------------------------------------------------------------------------- identifiers


@PROPERTY
@given(body=st.text(alphabet=string.digits, min_size=1, max_size=17), wrong=st.integers(1, 9))
def test_check_digit_completes_a_multiple_of_ten_and_one_wrong_digit_is_caught(body: str, wrong: int) -> None:
    check = gs1_check_digit(body)
    digits = body + str(check)
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(reversed(digits)))
    assert 0 <= check <= 9 and weighted % 10 == 0
    if len(digits) in (8, 12, 13, 14) and set(digits) != {"0"}:
        assert parse_gtin(digits) == digits.zfill(14)
        with pytest.raises(InvalidInput) as refused:
            parse_gtin(body + str((check + wrong) % 10))
        assert refused.value.code == "invalid_gtin" and f"check digit should be {check}" in refused.value.message


@PROPERTY
@given(gtin=gtins.flatmap(lambda g: st.tuples(st.just(g), _spaced(g))))
def test_gtin_parses_to_gtin14_whatever_its_length_or_spacing_and_parsing_is_idempotent(gtin: tuple[str, str]) -> None:
    digits, printed = gtin
    gtin14 = parse_gtin(printed)
    assert gtin14 == digits.zfill(14) and len(gtin14) == 14
    assert parse_gtin(gtin14) == gtin14
    assert gs1_check_digit(gtin14[:-1]) == int(gtin14[-1])  # zero-padding keeps the check digit valid


@PROPERTY
@given(gln=glns, prefix_length=st.integers(4, 12))
def test_gln_round_trips_and_belongs_to_its_own_prefix(gln: str, prefix_length: int) -> None:
    assert parse_gln(gln) == gln == parse_gln(" ".join(gln))
    assert gln_has_prefix(gln, gln[:prefix_length])
    assert not gln_has_prefix(gln, str((int(gln[0]) + 1) % 10) + gln[1:prefix_length])


@PROPERTY
@given(gtin=gtins, prefix_length=st.integers(4, 12))
def test_gtin_belongs_to_the_prefix_after_its_indicator_digit(gtin: str, prefix_length: int) -> None:
    gtin14 = parse_gtin(gtin)
    assert gtin_has_prefix(gtin14, gtin14[1 : 1 + prefix_length])


@PROPERTY
@given(lot=lot_codes, pad=st.sampled_from(("", " ", "\t ")))
def test_lot_code_keeps_its_characters_and_case_and_only_loses_surrounding_space(lot: str, pad: str) -> None:
    assert parse_lot_code(pad + lot + pad) == lot


@PROPERTY
@given(lot=st.text(min_size=1, max_size=30))
def test_lot_code_is_accepted_exactly_when_gs1_ai10_allows_it(lot: str) -> None:
    text = lot.strip()
    allowed = 1 <= len(text) <= LOT_CODE_MAX_LENGTH and set(text) <= LOT_CODE_CHARACTERS
    try:
        assert parse_lot_code(lot) == text and allowed
    except InvalidInput as exc:
        assert not allowed and exc.field == "lot_code" and exc.code == "invalid_lot_code"


@PROPERTY
@given(
    gtin=gtins,
    lot=lot_codes,
    base=st.sampled_from(("", "https://lotline.test", "https://id.example.org/resolver/", "http://x:8000")),
    tail=st.sampled_from(("", "?linkType=gs1:pip", "#top", "?a=1&b=/01/2/10/3")),
)
def test_digital_link_round_trips_every_gtin_and_lot_code(gtin: str, lot: str, base: str, tail: str) -> None:
    link = digital_link(base, gtin, lot)
    assert link.startswith(base.rstrip("/") + "/01/" + parse_gtin(gtin) + "/10/")
    assert parse_digital_link(link + tail) == (parse_gtin(gtin), lot)
    assert parse_digital_link(digital_link_path(gtin, lot)) == (parse_gtin(gtin), lot)
    assert lot_id(gtin, lot) == lot_id(parse_gtin(gtin), f" {lot} ")  # the same label, the same on-chain id


@PROPERTY
@given(a=st.tuples(gtins, lot_codes), b=st.tuples(gtins, lot_codes))
def test_distinct_labels_have_distinct_lot_ids(a: tuple[str, str], b: tuple[str, str]) -> None:
    same_label = (parse_gtin(a[0]), a[1]) == (parse_gtin(b[0]), b[1])
    assert (lot_id(*a) == lot_id(*b)) == same_label


# --------------------------------------------------------------------------------------- quantities


@PROPERTY
@given(q=quantities)
def test_quantity_format_and_parse_round_trip_exactly_without_float(q: Decimal) -> None:
    text = format_quantity(q)
    assert "e" not in text.lower() and not text.endswith(".") and not ("." in text and text.endswith("0"))
    assert parse_quantity(text) == q
    assert format_quantity(parse_quantity(text)) == text
    assert isinstance(parse_quantity(text), Decimal)


@PROPERTY
@given(q=quantities.flatmap(_quantity_as_sent))
def test_every_accepted_form_of_a_quantity_normalises_to_one_text(q: Any) -> None:
    number = parse_quantity(q)
    assert 0 < number < MAX_QUANTITY
    assert format_quantity(parse_quantity(format_quantity(number))) == format_quantity(number)


@PROPERTY
@given(q=st.decimals(allow_nan=True, allow_infinity=True) | st.floats() | st.integers())
@example(q=Decimal("1e-999999999"))  # normalize() underflowed to 0: accepted, then written as 1 GB of zeros
@example(q="1e-999999999")
@example(q=10**5000)  # str() of an int over 4300 digits raises ValueError
def test_quantity_outside_the_rules_is_refused_with_the_field_named(q: Any) -> None:
    try:
        number = parse_quantity(q, "payload.quantity")
    except InvalidInput as exc:
        assert exc.field == "payload.quantity" and exc.code == "invalid_quantity"
    else:
        assert number.is_finite() and 0 < number < MAX_QUANTITY
        assert number.quantize(Decimal(1).scaleb(-MAX_DECIMALS)) == number and len(format_quantity(number)) <= 19


# --------------------------------------------------------------------------------------- payloads


@PROPERTY
@given(kind_and_payload=payloads)
def test_validated_payload_validates_to_itself_for_every_kind(kind_and_payload: tuple[EventKind, dict]) -> None:
    kind, payload = kind_and_payload
    try:
        once = validate_payload(kind, payload)
    except InvalidInput as exc:
        # only the cross-field rules (dates in order, to differs from from) can refuse generated values
        assert "must not be before" in exc.message or "must differ" in exc.message or "must not be below" in exc.message
        assume(False)
    assert validate_payload(kind, once) == once
    assert canonical_json(once) == canonical_json(validate_payload(kind, json.loads(canonical_json(once))))
    assert set(KIND_SPECS[kind].required) <= set(once)


@PROPERTY
@given(kind=st.sampled_from(sorted(EventKind)), field=st.data(), value=st.text(max_size=30) | json_values)
def test_any_value_for_any_field_is_accepted_or_refused_naming_that_field(kind: EventKind, field, value: Any) -> None:
    spec = field.draw(st.sampled_from(KIND_SPECS[kind].fields))
    try:
        validate_payload(kind, {spec.name: value})
    except InvalidInput as exc:
        assert exc.field and exc.field.startswith("payload")


# --------------------------------------------------------------------------------------- canonical hashing


def _jcs_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    return '"' + "".join(escapes.get(c, f"\\u{ord(c):04x}" if ord(c) < 0x20 else c) for c in text) + '"'


def _jcs_number(value: float) -> str:
    """ECMAScript Number::toString from the shortest round-trip digits (Python's repr gives the same)."""
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _jcs_number(-value)
    mantissa, _, exp = repr(float(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    n = len(whole) + int(exp or 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    return (digits[0] + ("." + digits[1:] if k > 1 else "")) + f"e{sign}{abs(e)}"


def _jcs(value: Any) -> str:
    """RFC 8785 as docs/hashing.md describes it, written from that description (not from rfc8785)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _jcs_number(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    keys = sorted(value, key=lambda k: k.encode("utf-16-be"))  # by UTF-16 code units
    return "{" + ",".join(_jcs_string(k) + ":" + _jcs(value[k]) for k in keys) + "}"


@PROPERTY
@given(payload=json_objects)
@example(
    payload={
        "\U0001f600": 1,
        "\ufb33": 2,
        "a": [1e21, 1e-7, 0.000001, -0.0, 4.5, 1.5e300, 9007199254740992.0, 295147905179352830000.0],
    }
)
def test_payload_hash_matches_an_independent_implementation_of_the_documented_form(payload: dict) -> None:
    expected = _jcs(payload).encode("utf-8")
    assert canonical_json(payload) == expected
    assert payload_hash(payload) == eth_keccak(expected)


@PROPERTY
@given(payload=json_objects, seed=st.randoms(use_true_random=False))
def test_canonical_json_ignores_key_order_and_survives_a_json_round_trip(payload: dict, seed) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            seed.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    canonical = canonical_json(payload)
    assert canonical_json(shuffled(payload)) == canonical == canonical_json(payload)  # deterministic
    assert canonical_json(json.loads(canonical)) == canonical  # what a verifier re-reads hashes the same


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: 1 == 1.0 (one number), but True != 1 and key sets must match."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@PROPERTY
@given(a=json_objects, b=json_objects)
@example(a={"x": True}, b={"x": 1})
@example(a={"x": "1"}, b={"x": 1})
@example(a={"x": [1, 2]}, b={"x": [2, 1]})
def test_distinct_payloads_have_distinct_canonical_bytes_and_hashes(a: dict, b: dict) -> None:
    if _json_equal(a, b):
        assert canonical_json(a) == canonical_json(b)
    else:
        assert canonical_json(a) != canonical_json(b)
        assert payload_hash(a) != payload_hash(b)


@PROPERTY
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=4) | st.decimals(),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
@example(value=9007199254740992.0)  # RFC 8785 writes it "9007199254740992", as JavaScript would
@example(value=-(10**5000))  # the message must not try to print it
def test_anything_has_one_canonical_form_or_is_refused_naming_the_field(value: Any) -> None:
    try:
        canonical = canonical_json({"v": value})
    except InvalidInput as exc:
        assert exc.code == "not_canonicalisable" and exc.field.startswith("payload")
    else:
        assert canonical == _jcs({"v": ensure_canonicalisable(value)}).encode("utf-8")


# --------------------------------------------------------------------------------------- text rules


FORBIDDEN = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set(BIDI_CONTROLS)


@PROPERTY
@given(text=st.text(max_size=40), multiline=st.booleans())
@example(text="safe \u202e reversed", multiline=True)
@example(text="two\nlines", multiline=False)
def test_text_is_refused_exactly_when_it_holds_a_forbidden_character(text: str, multiline: bool) -> None:
    allowed_controls = set("\t\n\r") if multiline else set()
    bad = [i for i, c in enumerate(text) if c in FORBIDDEN - allowed_controls]
    try:
        assert check_text(text, "notes", multiline=multiline) is text and not bad
    except InvalidInput as exc:
        assert bad and exc.field == "notes" and exc.code == "invalid_characters"
        assert f"at position {bad[0] + 1}" in exc.message and f"U+{ord(text[bad[0]]):04X}" in exc.message


@PROPERTY
@given(value=json_values)
def test_json_text_rule_checks_every_string_and_key_and_names_the_path(value: Any) -> None:
    strings: list[tuple[str, bool]] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            strings.append((v, True))
        elif isinstance(v, dict):
            for k, item in v.items():
                strings.append((k, False))
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    clean = all(not (set(s) & (FORBIDDEN - (set("\t\n\r") if multi else set()))) for s, multi in strings)
    try:
        assert check_json_text(value, "payload.extra") is value and clean
    except InvalidInput as exc:
        assert not clean and exc.field.startswith("payload.extra")


# --------------------------------------------------------------------------------------- arbitrary text


def _validate_field(name: str) -> Callable[[str], Any]:
    def call(text: str) -> Any:
        kinds = [k for k, s in KIND_SPECS.items() if name in s.by_name]
        return validate_payload(kinds[0], {name: text})

    return call


PARSERS: dict[str, Callable[[Any], Any]] = {
    "parse_gtin": parse_gtin,
    "parse_gln": parse_gln,
    "parse_lot_code": parse_lot_code,
    "parse_digital_link": parse_digital_link,
    "digital_link": lambda t: digital_link("https://x", t, t),
    "lot_id": lambda t: lot_id(t, t),
    "gs1_check_digit": gs1_check_digit,
    "gtin_has_prefix": lambda t: gtin_has_prefix("09506000134352", t),
    "parse_quantity": parse_quantity,
    "parse_recall_class": parse_recall_class,
    "parse_kind": parse_kind,
    "parse_outcome": parse_outcome,
    "parse_when": parse_when,
    "parse_when(datetime_only)": lambda t: parse_when(t, datetime_only=True),
    "bytes32": bytes32,
    "address_bytes": address_bytes,
    "check_text": lambda t: check_text(t, "x"),
    "check_unit_text": lambda t: invariants.check_unit_text(t, "unit"),
    **{
        f"validate_payload({t.value})": _validate_field(f.name)
        for t, f in {spec.type: spec for s in KIND_SPECS.values() for spec in s.fields}.items()
    },
}

# Text shaped like what the parsers expect, so mutations reach past the first check.
near_misses = st.sampled_from(
    [
        "09506000134352",
        "https://x/01/09506000134352/10/A%2FB",
        "2024-05-01T08:30:00+02:00",
        "12.5",
        "class II",
        "0x" + "ab" * 32,
        "0x" + "cd" * 20,
        "shipping",
        "pass",
        "5",
    ]
).flatmap(
    lambda seed: st.lists(st.tuples(st.integers(0, len(seed)), st.text(max_size=3)), max_size=3).map(
        lambda edits: _splice(seed, edits)
    )
)


def _splice(seed: str, edits: list[tuple[int, str]]) -> str:
    for at, insert in edits:
        seed = seed[:at] + insert + seed[at + 1 :]
    return seed


@PROPERTY
@given(parser=st.sampled_from(sorted(PARSERS)), text=st.text(max_size=60) | near_misses)
@example(parser="parse_kind", text="²")  # str.isdigit() is True for superscripts, int() is not
@example(parser="validate_payload(count)", text="²")
@example(parser="validate_payload(count)", text="9" * 5000)  # int() refuses more than 4300 digits
@example(parser="parse_digital_link", text="http://[x/01/09506000134352/10/A")  # urlsplit: invalid IPv6
@example(parser="parse_digital_link", text="http://a\uff03b/01/09506000134352/10/A")  # NFKC netloc
@example(parser="validate_payload(temperature)", text="1e-99999999")  # would write 10^8 zeros
def test_every_parser_returns_a_value_or_raises_invalid_input_for_arbitrary_text(parser: str, text: str) -> None:
    try:
        PARSERS[parser](text)
    except InvalidInput as exc:
        assert exc.message and len(exc.message) < 2000  # a message a person can read, not the input echoed
    # any other exception fails the test: the API would answer 500


@PROPERTY
@given(number=st.integers(min_value=10**4400, max_value=10**4500) | st.integers(max_value=-(10**4400)))
def test_huge_integers_are_refused_not_crashed_on(number: int) -> None:
    for parse in (parse_quantity, parse_recall_class, parse_kind, parse_outcome):
        with pytest.raises(InvalidInput):
            parse(number)
    with pytest.raises(InvalidInput):
        validate_payload(EventKind.SENSOR_ANCHOR, {"reading_count": number})


@pytest.mark.parametrize("offset", [timedelta(hours=1, seconds=30), timedelta(microseconds=1)])
def test_a_datetime_whose_offset_has_seconds_is_refused_not_stored_unparseable(offset: timedelta) -> None:
    moment = datetime(2024, 5, 1, 8, 30, tzinfo=timezone(offset))
    with pytest.raises(InvalidInput) as refused:
        parse_when(moment, "payload.date")
    assert refused.value.field == "payload.date" and "whole minutes" in refused.value.message


@PROPERTY
@given(value=st.decimals(min_value=-80, max_value=80, places=MAX_DECIMALS) | st.decimals(allow_nan=True))
@example(value=Decimal("1e-999999999"))
@example(value=Decimal("-0.000"))
def test_temperature_is_stored_as_a_short_decimal_text_or_refused(value: Decimal) -> None:
    try:
        out = validate_payload(
            EventKind.SENSOR_ANCHOR,
            {
                "merkle_root": "0x" + "00" * 32,
                "reading_count": 1,
                "period_start": "2024-05-01T00:00:00Z",
                "period_end": "2024-05-01T00:00:00Z",
                "min_temperature_c": value,
            },
        )
    except InvalidInput as exc:
        assert exc.field == "payload.min_temperature_c"
    else:
        text = out["min_temperature_c"]
        assert Decimal(text) == value and len(text) <= 12 and "e" not in text.lower()
