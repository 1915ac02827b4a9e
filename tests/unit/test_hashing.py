"""Canonical JSON (RFC 8785), payload hashes, the head-hash chain and sensor Merkle trees."""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import UTC, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.hashing import (
    MAX_SAFE_INTEGER,
    ZERO_HASH,
    bytes32,
    canonical_json,
    ensure_canonicalisable,
    head_chain,
    hex32,
    keccak256,
    merkle_proof,
    merkle_root,
    next_head,
    payload_hash,
    reading_leaf,
    verify_merkle_proof,
)

# --- keccak256 ------------------------------------------------------------------------------------


def test_keccak256_is_ethereum_keccak_not_sha3() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    assert keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()


def test_keccak256_agrees_with_eth_hash() -> None:
    auto = pytest.importorskip("eth_hash.auto")
    for data in (b"", b"lotline", bytes(range(256)) * 3):
        assert keccak256(data) == auto.keccak(data)


def test_hex32_and_bytes32_round_trip() -> None:
    value = keccak256(b"x")
    text = hex32(value)
    assert text.startswith("0x") and len(text) == 66 and text == text.lower()
    assert bytes32(text) == value
    assert bytes32(text[2:].upper()) == value
    with pytest.raises(InvalidInput):
        hex32(b"\x00" * 31)
    with pytest.raises(InvalidInput):
        bytes32("0x1234")


# --- RFC 8785 -------------------------------------------------------------------------------------

# RFC 8785 appendix B: IEEE-754 bit patterns and their canonical JSON numbers.
RFC8785_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), RFC8785_NUMBERS)
def test_numbers_are_serialised_as_rfc8785_appendix_b(bits: str, expected: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_json({"n": number}) == b'{"n":' + expected.encode() + b"}"


def test_rfc8785_section_3_2_2_sample() -> None:
    source = r"""{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"""
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    out = canonical_json(json.loads(source))
    assert out == expected.encode("utf-8")
    # the RFC gives the UTF-8 bytes of the euro sign: e2 82 ac
    assert b"\xe2\x82\xac" in out


def test_keys_are_sorted_by_utf16_code_units_as_rfc8785_section_3_2_3() -> None:
    source = r"""{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"""
    out = json.loads(canonical_json(json.loads(source)))
    assert [value for value in out.values()] == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",  # U+1F600 sorts before U+FB33: its first UTF-16 unit is 0xD83D
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_canonical_json_has_no_whitespace_and_keeps_unicode_unescaped() -> None:
    assert (
        canonical_json({"b": [1, 2], "a": {"z": "é", "y": None}})
        == '{"a":{"y":null,"z":"é"},"b":[1,2]}'.encode()
    )


def test_payload_hash_ignores_key_order_and_survives_json_round_trip() -> None:
    payload = {"quantity": "12.5", "unit": "kg", "readings": [{"t": 3.2, "at": "2024-05-01T08:00:00+00:00"}]}
    reordered = {
        "readings": [{"at": "2024-05-01T08:00:00+00:00", "t": 3.2}],
        "unit": "kg",
        "quantity": "12.5",
    }
    assert payload_hash(payload) == payload_hash(reordered)
    assert payload_hash(json.loads(json.dumps(payload))) == payload_hash(payload)
    assert payload_hash(payload) != payload_hash({**payload, "quantity": "12.50"})
    assert len(payload_hash(payload)) == 32


def test_payload_hash_is_keccak_of_the_canonical_bytes() -> None:
    payload = {"harvest_date": "2024-05-01", "quantity": "1200", "unit": "kg"}
    assert canonical_json(payload) == b'{"harvest_date":"2024-05-01","quantity":"1200","unit":"kg"}'
    assert (
        hex32(payload_hash(payload)) == "0x5894e57f2f00baa64f63b930da80b31d6d306abae4f147fd0423f3c93d3c832c"
    )


def test_safe_integer_edges() -> None:
    assert canonical_json({"n": MAX_SAFE_INTEGER}) == b'{"n":9007199254740991}'
    assert canonical_json({"n": -MAX_SAFE_INTEGER}) == b'{"n":-9007199254740991}'
    for n in (MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 10**30):
        with pytest.raises(InvalidInput) as info:
            canonical_json({"n": n})
        assert info.value.field == "payload.n"
        assert "2^53-1" in info.value.message


@pytest.mark.parametrize(
    ("payload", "field", "fragment"),
    [
        ({"t": float("nan")}, "payload.t", "NaN"),
        ({"a": {"t": float("inf")}}, "payload.a.t", "Infinity"),
        ({"r": [1, {"t": -float("inf")}]}, "payload.r[1].t", "not a JSON number"),
        ({"a": {1: "x"}}, "payload.a", "not a string"),
        ({"q": Decimal("1.5")}, "payload.q", "Decimal has no JSON form"),
        ({"s": {"a", "b"}}, "payload.s", "set has no JSON form"),
        ({"b": b"\x00"}, "payload.b", "bytes has no JSON form"),
        ({"x": "\ud800"}, "payload.x", "lone surrogate"),
        ({"r": [[2**60]]}, "payload.r[0][0]", "outside the range"),
    ],
)
def test_payloads_without_canonical_form_are_rejected_naming_the_field(
    payload: dict, field: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        payload_hash(payload)
    assert info.value.field == field
    assert fragment in info.value.message
    assert info.value.message.startswith(field + ":")


def test_canonical_json_wants_an_object() -> None:
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        canonical_json([1, 2])  # type: ignore[arg-type]


def test_tuples_and_int_enums_canonicalise_as_lists_and_numbers() -> None:
    from supply_chain.domain.kinds import EventKind

    assert canonical_json({"k": EventKind.SHIPPING, "t": (1, 2)}) == b'{"k":5,"t":[1,2]}'


# --- head-hash chain ------------------------------------------------------------------------------

ACTOR = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
DATA_HASH = bytes.fromhex("5894e57f2f00baa64f63b930da80b31d6d306abae4f147fd0423f3c93d3c832c")
FIRST_HEAD = "0x2185375947d1d493dfb16faace0d79e6483f74b5890f446d949a4697811ad2b5"


def test_head_hash_vector_from_manual_abi_encoding() -> None:
    encoded = (
        bytes(32)  # prev head: 32 zero bytes
        + bytes.fromhex("00" * 31 + "01")  # uint8 kind = 1 (HARVESTING), left-padded to 32 bytes
        + bytes.fromhex("00" * 12 + "5b38da6a701c568545dcfcb03fcb875f56beddc4")  # address, left-padded
        + DATA_HASH
    )
    assert len(encoded) == 128
    assert hex32(keccak256(encoded)) == FIRST_HEAD
    assert hex32(next_head(ZERO_HASH, 1, ACTOR, DATA_HASH)) == FIRST_HEAD


def test_head_hash_matches_eth_abi_encode() -> None:
    eth_abi = pytest.importorskip("eth_abi")
    prev = keccak256(b"previous")
    encoded = eth_abi.encode(["bytes32", "uint8", "address", "bytes32"], [prev, 11, ACTOR, DATA_HASH])
    assert next_head(prev, 11, ACTOR, DATA_HASH) == keccak256(encoded)


def test_head_hash_address_is_case_insensitive() -> None:
    assert next_head(ZERO_HASH, 1, ACTOR.lower(), DATA_HASH) == next_head(
        ZERO_HASH, 1, ACTOR.upper().replace("0X", "0x"), DATA_HASH
    )


def test_head_chain_commits_to_order() -> None:
    a = (1, ACTOR, keccak256(b"a"))
    b = (5, ACTOR, keccak256(b"b"))
    heads = head_chain([a, b])
    assert heads[0] == next_head(ZERO_HASH, *a)
    assert heads[1] == next_head(heads[0], *b)
    assert head_chain([b, a])[-1] != heads[-1]


@pytest.mark.parametrize(
    ("prev", "kind", "actor", "data", "field"),
    [
        (b"\x00" * 31, 1, ACTOR, DATA_HASH, "prev_head"),
        (ZERO_HASH, 256, ACTOR, DATA_HASH, "kind"),
        (ZERO_HASH, -1, ACTOR, DATA_HASH, "kind"),
        (ZERO_HASH, 1, ACTOR[:-1], DATA_HASH, "actor"),
        (ZERO_HASH, 1, ACTOR[2:], DATA_HASH, "actor"),
        (ZERO_HASH, 1, ACTOR, DATA_HASH[:20], "data_hash"),
    ],
)
def test_next_head_rejects_malformed_parts(
    prev: bytes, kind: int, actor: str, data: bytes, field: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        next_head(prev, kind, actor, data)
    assert info.value.field == field


# --- Merkle tree ----------------------------------------------------------------------------------


def _readings(n: int) -> list[bytes]:
    return [payload_hash({"sensor": "T-1", "seq": i, "temperature_c": "3.5"}) for i in range(n)]


def _leaf(x: bytes) -> bytes:
    return keccak256(b"\x00" + x)


def _node(a: bytes, b: bytes) -> bytes:
    return keccak256(b"\x01" + min(a, b) + max(a, b))


def test_merkle_root_of_one_two_and_three_leaves_follows_the_definition() -> None:
    l0, l1, l2 = _readings(3)
    assert merkle_root([l0]) == _leaf(l0)
    assert merkle_root([l0, l1]) == _node(_leaf(l0), _leaf(l1))
    # three leaves: the third is promoted unchanged, then paired with the first pair's node
    assert merkle_root([l0, l1, l2]) == _node(_node(_leaf(l0), _leaf(l1)), _leaf(l2))


def test_merkle_root_depends_on_leaf_grouping_and_content_not_on_order_within_a_pair() -> None:
    leaves = _readings(4)
    l0, l1, l2, l3 = leaves
    assert merkle_root(leaves) != merkle_root([l0, l2, l1, l3])
    # pairs are sorted, so swapping two siblings keeps the root (each reading carries its own time)
    assert merkle_root(leaves) == merkle_root([l1, l0, l2, l3])
    assert merkle_root(leaves) != merkle_root([*leaves[:3], keccak256(b"other")])


@pytest.mark.parametrize("n", range(1, 10))
def test_every_merkle_proof_verifies_for_1_to_9_leaves(n: int) -> None:
    leaves = _readings(n)
    root = merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        proof = merkle_proof(leaves, index)
        assert verify_merkle_proof(leaf, proof, root), (n, index)
        assert not verify_merkle_proof(keccak256(b"forged"), proof, root)
        if n > 1:
            other = (index + 1) % n
            assert not verify_merkle_proof(leaf, merkle_proof(leaves, other), root)
            assert not verify_merkle_proof(leaf, proof, merkle_root(leaves[:-1] + [keccak256(b"x")]))


def test_merkle_proof_lengths_skip_promoted_levels() -> None:
    leaves = _readings(5)
    assert [len(merkle_proof(leaves, i)) for i in range(5)] == [3, 3, 3, 3, 1]


def test_a_leaf_cannot_pose_as_an_internal_node() -> None:
    leaves = _readings(2)
    inner = _node(_leaf(leaves[0]), _leaf(leaves[1]))
    assert not verify_merkle_proof(inner, [], merkle_root(leaves))


def test_merkle_root_known_value_for_docs() -> None:
    readings = [
        {"at": "2024-05-02T06:00:00+00:00", "sensor": "T-17", "temperature_c": "3.5"},
        {"at": "2024-05-02T06:15:00+00:00", "sensor": "T-17", "temperature_c": "3.7"},
        {"at": "2024-05-02T06:30:00+00:00", "sensor": "T-17", "temperature_c": "4.1"},
    ]
    assert hex32(merkle_root([payload_hash(r) for r in readings])) == MERKLE_DOC_ROOT


MERKLE_DOC_ROOT = "0x0128e56f9ba5e0edd192e14c023ee17edc5f9b6b82d572ceaf73c5985f807a36"


def test_merkle_inputs_are_checked() -> None:
    with pytest.raises(InvalidInput, match="at least one leaf"):
        merkle_root([])
    with pytest.raises(InvalidInput):
        merkle_root([b"short"])
    with pytest.raises(InvalidInput):
        merkle_proof(_readings(3), 3)
    assert not verify_merkle_proof(b"short", [], ZERO_HASH)


# --- the worked examples of docs/hashing.md (keep both in step) -----------------------------------
# (section 6, salted commitments: tests/unit/test_disclosure.py::test_docs_salted_worked_example)


def test_docs_worked_examples() -> None:
    from supply_chain.domain.events import validate_payload
    from supply_chain.domain.identifiers import digital_link, lot_id
    from supply_chain.domain.kinds import EventKind

    shipping = validate_payload(
        EventKind.SHIPPING,
        {
            "from_gln": "0614141000012",
            "to_gln": "4012345 000009",
            "ship_date": "2024-05-02T18:30:00Z",
            "quantity": "480.0",
            "unit": "case",
            "reference_document_type": "BOL",
            "reference_document_number": "BOL-2024-0042",
            "notes": "Rückruf-Hotline: ☎ 0800",
        },
    )
    assert canonical_json(shipping).decode() == (
        '{"from_gln":"0614141000012","notes":"Rückruf-Hotline: ☎ 0800","quantity":"480",'
        '"reference_document_number":"BOL-2024-0042","reference_document_type":"BOL",'
        '"ship_date":"2024-05-02T18:30:00+00:00","to_gln":"4012345000009","unit":"case"}'
    )
    data1 = payload_hash(shipping)
    assert hex32(data1) == "0x0c33e43114c936ef2b4b930e5f41343d6918b4fdb25c8bac8b41c5959dd91526"
    head1 = next_head(ZERO_HASH, 5, ACTOR, data1)
    assert hex32(head1) == "0x857dda309c5e139b652666e366af462e09ffeaf1ecff43579de58203e02a1fc8"

    receiving = {
        "from_gln": "0614141000012",
        "quantity": "480",
        "receive_date": "2024-05-03",
        "reference_document_number": "BOL-2024-0042",
        "reference_document_type": "BOL",
        "to_gln": "4012345000009",
        "unit": "case",
    }
    data2 = payload_hash(receiving)
    assert hex32(data2) == "0xb1c81d57bdae0ac054102a07f9d77532d9a552b9d74ac685f232a09a77f4d49b"
    head2 = next_head(head1, 6, "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2", data2)
    assert hex32(head2) == "0x5da31c85250a47e174e0365bceffd12fd222c4c1e8948b4b8fa22a510c8ae8cd"

    assert hex32(lot_id("9506000134352", "L2405/01")) == (
        "0xc506ba9ca9ebcb4f655d6b0300fadea9e7e93e035be2094fc0665c91b23e2560"
    )
    assert digital_link("https://id.lotline.example", "9506000134352", "L2405/01") == (
        "https://id.lotline.example/01/09506000134352/10/L2405%2F01"
    )
    readings = [
        {"at": "2024-05-02T06:00:00+00:00", "sensor": "T-17", "temperature_c": "3.5"},
        {"at": "2024-05-02T06:15:00+00:00", "sensor": "T-17", "temperature_c": "3.7"},
        {"at": "2024-05-02T06:30:00+00:00", "sensor": "T-17", "temperature_c": "4.1"},
    ]
    leaves = [payload_hash(r) for r in readings]
    assert [hex32(p) for p in merkle_proof(leaves, 2)] == [
        "0x4d8c10e268b6af7f05769b1c93b61376cb9d8fe5e4383052da02dab12aac43ec"
    ]
    assert hex32(merkle_root(leaves)) == MERKLE_DOC_ROOT


# --- the leaf of a sensor reading, written without the generic canonicaliser ----------------------

# Texts JCS writes verbatim and texts it must escape or refuse: quotes, backslashes, control characters,
# DEL, non-ASCII (sorted by UTF-16 elsewhere, raw UTF-8 here), a lone surrogate.
_AWKWARD = st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "\n", "é", "☎", "😀", "\ud800", " ", "+", "e"])
_ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
_TEXTS = st.one_of(
    st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,6})?", fullmatch=True),
    st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), st.datetimes(), st.sampled_from(_ZONES)),
    st.text(max_size=12),
    st.lists(st.one_of(st.text(max_size=3), _AWKWARD), max_size=5).map("".join),
)
_OTHER_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.decimals())
_VALUES = st.one_of(*[_TEXTS] * 8, _OTHER_VALUES)  # mostly texts: the shape the leaf writes directly


@settings(max_examples=200, deadline=None, database=None)
@given(
    taken=_VALUES,
    temperature=_VALUES,
    humidity=st.one_of(st.just(...), _VALUES),
    extra=st.dictionaries(st.sampled_from(["sensor", "taken_at ", "Humidity", "😀"]), _TEXTS, max_size=1),
)
@example(taken="2026-11-26T08:00:00+00:00", temperature="3.5", humidity=..., extra={})
@example(taken="2026-11-26T08:00:00.000001+05:30", temperature="-0.25", humidity="80", extra={})
@example(taken='2026"', temperature="3.5", humidity=..., extra={})
@example(taken="2026", temperature="3\\5", humidity="80", extra={})
@example(taken="2026-11-26T08:00:00Z", temperature="3.5", humidity="\x1f", extra={})
@example(taken="2026-11-26T08:00:00+00:00", temperature="3.5", humidity="\ud800", extra={})
def test_reading_leaf_is_byte_for_byte_the_payload_hash_of_the_reading(
    taken: Any, temperature: Any, humidity: Any, extra: dict[str, Any]
) -> None:
    reading = {"taken_at": taken, "temperature_c": temperature} | extra
    if humidity is not ...:
        reading["humidity"] = humidity
    try:
        expected: bytes | str = payload_hash(reading)
    except InvalidInput as exc:
        expected = exc.message
    try:
        leaf: bytes | str = reading_leaf(reading)
    except InvalidInput as exc:
        leaf = exc.message
    assert leaf == expected


def test_reading_leaf_of_a_validated_reading_is_its_canonical_json_hashed() -> None:
    reading = {"temperature_c": "-3.5", "taken_at": "2026-11-26T08:00:00+01:00", "humidity": "81.25"}
    canonical = b'{"humidity":"81.25","taken_at":"2026-11-26T08:00:00+01:00","temperature_c":"-3.5"}'
    assert canonical_json(reading) == canonical
    assert reading_leaf(reading) == keccak256(canonical)
    del reading["humidity"]
    assert reading_leaf(reading) == keccak256(b'{"taken_at":"2026-11-26T08:00:00+01:00","temperature_c":"-3.5"}')


# --- the quick path of canonical_json (the C JSON encoder, for payloads without floats) ------------

_JSON_KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["a", "B", "_", "é", "😀", "דּ", "\x00", '"', "\\"]))
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_SAFE_INTEGER - 2, MAX_SAFE_INTEGER + 2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.lists(_AWKWARD, max_size=3).map("".join),
)
_JSON_INNER = st.one_of(
    _JSON_SCALARS, st.lists(_JSON_SCALARS, max_size=3), st.dictionaries(_JSON_KEYS, _JSON_SCALARS, max_size=3)
)
_JSON = st.one_of(_JSON_INNER, st.lists(_JSON_INNER, max_size=3), st.dictionaries(_JSON_KEYS, _JSON_INNER, max_size=3))


@settings(max_examples=120, deadline=None, database=None)
@given(st.dictionaries(_JSON_KEYS, _JSON, max_size=6))
@example({"quantity": "480", "unit": "case", "count": 3, "ok": True, "none": None, "list": [1, "a"]})
@example({"a": "\x00\x1f\x7f\u2028\b\t\n\f\r\"\\/", "b": "Rückruf ☎ 😀"})
@example({"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER})
@example({"n": MAX_SAFE_INTEGER + 1})
@example({"t": "\udc00"})
@example({"f": 1e21, "g": 1e-7, "h": 100.0, "i": -0.0})
@example({"z": 1, "a": {"y": [2, {"x": 3}]}})
@example({"\U0001f600": 1, "\ufb33": 2, "a": {"\ufb33": 3, "\U0001f600": 4}})
def test_canonical_json_gives_the_rfc8785_bytes_of_the_plain_payload(payload: dict[str, Any]) -> None:
    """canonical_json writes payloads without floats with the C JSON encoder: the same bytes as the RFC 8785
    library writes, and the same refusal (naming the field) for what has no canonical form."""
    try:
        expected: bytes | str = rfc8785.dumps(ensure_canonicalisable(payload))
    except InvalidInput as exc:
        expected = exc.message
    try:
        actual: bytes | str = canonical_json(payload)
    except InvalidInput as exc:
        actual = exc.message
    assert actual == expected
