"""Salted commitments (hash scheme 2): the public can re-hash an event from its public fields, nobody can find
a consortium or private field by trying values, and each audience can check exactly the fields it sees."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from supply_chain.domain.disclosure import (
    PUBLIC_FIELDS_V2,
    check_disclosure,
    check_scheme,
    commitments,
    data_hash,
    disclosed_hash,
    disclosure,
    envelope,
    split,
)
from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.events import INPUT_ITEM_FIELDS, Visibility, public_view, validate_payload, visible_view
from supply_chain.domain.hashing import (
    SCHEME_PLAIN,
    SCHEME_SALTED,
    ZERO_HASH,
    bytes32,
    canonical_json,
    field_commitment,
    field_salt,
    hex32,
    keccak256,
    next_head,
    payload_hash,
)
from supply_chain.domain.kinds import EventKind

DOCS = Path(__file__).resolve().parents[2] / "docs"
SALT = bytes(range(32))  # the worked example's event salt, 0x000102…1f (real ones come from secrets.token_bytes)
ACTOR = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
COOLING = validate_payload(
    EventKind.COOLING,
    {
        "location_gln": "0614141000012",
        "cooling_date": "2024-05-01",
        "quantity": "1200",
        "unit": "kg",
        "commodity": "romaine lettuce",
    },
)

# What an attacker would try for a cooling event's quantity and unit: every whole quantity up to 2,000 and
# a tenth of a unit below 100, in the units a packhouse uses.
UNITS = ("kg", "lb", "g", "t", "case", "carton", "crate", "bin", "box", "bag", "pallet", "each", "head", "bunch")
QUANTITIES = [str(q) for q in range(1, 2001)] + [f"{q / 10:g}" for q in range(1, 1000) if q % 10]


def _candidates() -> itertools.product[tuple[str, str]]:
    return itertools.product(QUANTITIES, UNITS)


def _plain_guesser(public: dict) -> Callable[[str, str], bytes]:
    """keccak256(JCS(public + quantity + unit)) for candidate values, built the way an attacker would: the
    canonical bytes are a template (the keys sort as commodity < cooling_date < location_gln < quantity < unit),
    so each guess costs one keccak256."""
    head = canonical_json(public)[:-1] + b',"quantity":"'
    return lambda q, u: keccak256(head + q.encode() + b'","unit":"' + u.encode() + b'"}')


def test_plain_hash_gives_away_quantity_and_unit_to_anyone_holding_the_public_view() -> None:
    """Scheme 1 (every event before salted commitments): the public fields and the chain's dataHash are enough
    to find the consortium-only quantity and unit by trying values, in a fraction of a second."""
    public, on_chain = public_view(EventKind.COOLING, COOLING), payload_hash(COOLING)
    assert "quantity" not in public and "unit" not in public  # what the consumer page shows
    guess = _plain_guesser(public)
    assert guess("1200", "kg") == payload_hash(public | {"quantity": "1200", "unit": "kg"})  # the template is JCS
    started = time.perf_counter()
    found = [(q, u) for q, u in _candidates() if guess(q, u) == on_chain]
    elapsed = time.perf_counter() - started
    assert found == [("1200", "kg")]
    assert elapsed < 10  # about 1 s for all 40,600 candidates on a busy 2-core machine; the bound keeps CI green


def test_salted_hash_gives_nothing_to_the_same_brute_force() -> None:
    """Scheme 2: the public gets the public fields and the commitments (and can re-hash the dataHash from them),
    but no candidate quantity or unit matches the dataHash or a commitment without the field's salt."""
    on_chain = data_hash(EventKind.COOLING, COOLING, SCHEME_SALTED, SALT)
    proof = disclosure(EventKind.COOLING, COOLING, SCHEME_SALTED, SALT, Visibility.PUBLIC)
    public = proof["public"]
    assert public == public_view(EventKind.COOLING, COOLING)
    assert proof["salts"] == {} and set(proof["sealed"]) == {"quantity", "unit"}
    assert check_disclosure(public, proof, on_chain) == []  # the public view alone re-hashes to the dataHash
    guess = _plain_guesser(public)
    assert not [(q, u) for q, u in _candidates() if guess(q, u) == on_chain]  # the attack above, again
    sealed = {name: bytes32(c) for name, c in proof["sealed"].items()}
    salts_without_the_secret = (b"", ZERO_HASH, on_chain, keccak256(canonical_json(public)))
    for name, values in (("quantity", QUANTITIES), ("unit", UNITS)):
        for salt in salts_without_the_secret:
            assert not [v for v in values if keccak256(salt + canonical_json({name: v})) == sealed[name]], salt
    # The same search with the field's salt (what a consortium member is given) does find it: the loop works.
    opened = field_salt(SALT, "quantity")
    assert [q for q in QUANTITIES if field_commitment(opened, "quantity", q) == sealed["quantity"]] == ["1200"]


# --- the worked example of docs/hashing.md section 6 --------------------------------------------------------


def test_docs_salted_worked_example() -> None:
    text = (DOCS / "hashing.md").read_text(encoding="utf-8")
    public, sealed = split(EventKind.COOLING, COOLING)
    assert sealed == ["quantity", "unit"]
    assert canonical_json(public).decode() == (
        '{"commodity":"romaine lettuce","cooling_date":"2024-05-01","location_gln":"0614141000012"}'
    )
    values = {
        "fieldSalt(quantity)": hex32(field_salt(SALT, "quantity")),
        "fieldSalt(unit)": hex32(field_salt(SALT, "unit")),
        "commitment(quantity)": commitments(EventKind.COOLING, COOLING, SALT)["quantity"],
        "commitment(unit)": commitments(EventKind.COOLING, COOLING, SALT)["unit"],
        "dataHash": hex32(data_hash(EventKind.COOLING, COOLING, SCHEME_SALTED, SALT)),
        "head_1": hex32(next_head(ZERO_HASH, 2, ACTOR, data_hash(EventKind.COOLING, COOLING, SCHEME_SALTED, SALT))),
        "plain": hex32(payload_hash(COOLING)),
    }
    assert values == {
        "fieldSalt(quantity)": "0x1f801131e3732da08dfffdc8e65ae103ba7744b6e463e193a1ce8f022a65c21c",
        "fieldSalt(unit)": "0x981207a68b83a5e7795d228ab840e7aed9e6beb86c077b5a3609e5d585d240f0",
        "commitment(quantity)": "0x971ec5a513a1e7e62b4260fcd5be369766fee5b8d5562d8c2f7908a3fe7ba82a",
        "commitment(unit)": "0x9be635d877892b6201afe7ef44dde0d2789bf32e3bc2d2ef78f2cdd1dd8b70d6",
        "dataHash": "0x704e104443f63abbec0b29eb72e9115b1247029c778f945d8e7b9154bc12aa02",
        "head_1": "0xda79861066b56cfcb9185b06172ba0b98c640d0e6c32469fea25e045adaec732",
        "plain": "0xcb1afc3b0e49cfb99f676b6bd9a053f7882fb1091e3dacfbe21a5b7013770cec",
    }
    envelope_bytes = canonical_json(envelope(EventKind.COOLING, COOLING, SALT))
    assert len(envelope_bytes) == 274
    # the page shows the same numbers and the same envelope, byte for byte
    for value in values.values():
        assert value.removeprefix("0x") in text, value
    assert envelope_bytes.decode() in text


# --- what each audience gets and can check ------------------------------------------------------------------


INSPECTION = validate_payload(
    EventKind.INSPECTION,
    {
        "outcome": "fail",
        "inspection_date": "2024-05-03",
        "inspector_name": "Ivy Inspector",
        "findings": "Listeria swab positive on belt 2",
        "standard": "ISO 11290-1",
    },
)


@pytest.mark.parametrize(
    ("level", "opened"),
    [
        (Visibility.PUBLIC, set()),
        (Visibility.CONSORTIUM, {"findings"}),
        (Visibility.PRIVATE, {"findings", "inspector_name"}),
    ],
)
def test_each_audience_gets_the_salts_of_exactly_the_sealed_fields_it_sees(level: Visibility, opened: set) -> None:
    on_chain = data_hash(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT)
    proof = disclosure(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT, level)
    assert set(proof["sealed"]) == {"findings", "inspector_name"}
    assert set(proof["salts"]) == opened
    assert SALT.hex() not in repr(proof)  # never the event salt
    assert proof["public"]["outcome"] == "fail"  # a failed inspection is a public-safety fact
    assert check_disclosure(visible_view(EventKind.INSPECTION, INSPECTION, level), proof, on_chain) == []


def test_a_field_salt_opens_its_own_field_only() -> None:
    proof = disclosure(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT, Visibility.CONSORTIUM)
    findings_salt = bytes32(proof["salts"]["findings"])
    sealed_name = bytes32(proof["sealed"]["inspector_name"])
    assert field_commitment(findings_salt, "inspector_name", "Ivy Inspector") != sealed_name
    assert field_salt(SALT, "inspector_name") != findings_salt


def test_altered_fields_or_proofs_are_named() -> None:
    on_chain = data_hash(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT)
    shown = visible_view(EventKind.INSPECTION, INSPECTION, Visibility.CONSORTIUM)
    proof = disclosure(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT, Visibility.CONSORTIUM)
    assert check_disclosure(shown | {"outcome": "pass"}, proof, on_chain) == [
        "outcome: differs from the public part that was hashed in clear"
    ]
    assert check_disclosure(shown | {"findings": "all clear"}, proof, on_chain) == [
        "findings: its value and salt do not give its commitment"
    ]
    assert check_disclosure(shown | {"inspector_name": "Ivy"}, proof, on_chain) == [
        "inspector_name: shown without the salt that opens its commitment"
    ]
    forged = proof | {"public": proof["public"] | {"outcome": "pass"}}
    assert check_disclosure(shown | {"outcome": "pass"}, forged, on_chain)[0].startswith(
        "public part and commitments hash to 0x"
    )
    assert check_disclosure(shown, {"scheme": 1}, on_chain) == [
        "scheme 1: only the whole payload re-hashes to the dataHash"
    ]


def test_fields_held_in_part_rehash_to_the_chains_hash_with_their_proof_and_an_edit_is_refused() -> None:
    """What a second instance holds of an event it took in from an export: the fields shown and their proof,
    no event salt; ``disclosed_hash`` is the dataHash those prove, and refuses a field or proof edited since."""
    on_chain = data_hash(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT)
    shown = visible_view(EventKind.INSPECTION, INSPECTION, Visibility.CONSORTIUM)
    proof = disclosure(EventKind.INSPECTION, INSPECTION, SCHEME_SALTED, SALT, Visibility.CONSORTIUM)
    assert shown != INSPECTION and disclosed_hash(shown, proof) == on_chain
    with pytest.raises(InvalidInput, match="findings: its value and salt do not give its commitment"):
        disclosed_hash(shown | {"findings": "all clear"}, proof)
    hidden = next(name for name in proof["sealed"] if name not in proof["salts"])
    forged = proof | {"sealed": proof["sealed"] | {hidden: "0x" + "00" * 32}}
    assert disclosed_hash(shown, forged) != on_chain  # a forged commitment no longer gives the chain's hash
    plain = data_hash(EventKind.COOLING, COOLING, SCHEME_PLAIN, None)
    assert disclosed_hash(COOLING, {"scheme": SCHEME_PLAIN}) == plain
    assert disclosed_hash(COOLING | {"quantity": "1"}, {"scheme": SCHEME_PLAIN}) != plain


def test_transformation_inputs_show_their_lots_in_clear_and_seal_the_quantities() -> None:
    payload = validate_payload(
        EventKind.TRANSFORMATION,
        {
            "location_gln": "0614141000012",
            "transformation_date": "2024-05-04",
            "inputs": [{"gtin": "9506000134352", "lot_code": "L1", "quantity": "60", "unit": "kg"}],
            "quantity": "55",
            "unit": "kg",
        },
    )
    public, sealed = split(EventKind.TRANSFORMATION, payload)
    assert public["inputs"] == [{"gtin": "09506000134352", "lot_code": "L1"}]
    assert sealed == ["inputs", "quantity", "unit"]
    on_chain = data_hash(EventKind.TRANSFORMATION, payload, SCHEME_SALTED, SALT)
    for level in Visibility:
        proof = disclosure(EventKind.TRANSFORMATION, payload, SCHEME_SALTED, SALT, level)
        assert check_disclosure(visible_view(EventKind.TRANSFORMATION, payload, level), proof, on_chain) == []
    assert disclosure(EventKind.TRANSFORMATION, payload, SCHEME_SALTED, SALT, Visibility.PUBLIC)["salts"] == {}


def test_fields_no_kind_defines_are_sealed_and_only_their_author_opens_them() -> None:
    payload = COOLING | {"notes": "buyer pays 0.80/kg"}
    proof = disclosure(EventKind.COOLING, payload, SCHEME_SALTED, SALT, Visibility.CONSORTIUM)
    assert "notes" in proof["sealed"] and "notes" not in proof["salts"] and "notes" not in proof["public"]
    assert "notes" in disclosure(EventKind.COOLING, payload, SCHEME_SALTED, SALT, Visibility.PRIVATE)["salts"]


# --- versions -----------------------------------------------------------------------------------------------


def test_scheme_1_events_hash_the_whole_payload_as_before() -> None:
    assert data_hash(EventKind.COOLING, COOLING, SCHEME_PLAIN, None) == payload_hash(COOLING)
    assert disclosure(EventKind.COOLING, COOLING, SCHEME_PLAIN, None, Visibility.PUBLIC) == {"scheme": 1}
    assert data_hash(EventKind.COOLING, COOLING, SCHEME_SALTED, SALT) != payload_hash(COOLING)


@pytest.mark.parametrize(("scheme", "salt"), [(1, SALT), (2, None), (3, SALT), (0, None)])
def test_a_scheme_without_its_salt_or_unknown_is_refused(scheme: int, salt: bytes | None) -> None:
    with pytest.raises(InvalidInput) as err:
        check_scheme(scheme, salt)
    assert err.value.field == "hash_scheme"


def test_the_salted_split_is_pinned() -> None:
    """Scheme 2 hashes these fields in clear and seals the rest. Making a field public or not changes the
    dataHash of every stored event that has it: that needs a new scheme number, not an edit of this table."""
    pinned = {
        "HARVESTING": {"location_gln", "harvest_date", "commodity", "variety"},
        "COOLING": {"location_gln", "cooling_date", "commodity", "variety", "harvest_location_gln"},
        "INITIAL_PACKING": {
            "location_gln", "packing_date", "commodity", "variety", "product_description",
            "harvest_location_gln", "harvest_date", "cooling_location_gln", "cooling_date",
        },
        "FIRST_LAND_BASED_RECEIVING": {
            "location_gln", "landing_date", "harvest_area", "vessel_name", "harvest_date_start",
            "harvest_date_end", "commodity",
        },
        "SHIPPING": {"from_gln", "to_gln", "ship_date", "tlc_source_gln", "product_description"},
        "RECEIVING": {"from_gln", "to_gln", "receive_date", "tlc_source_gln", "product_description"},
        "TRANSFORMATION": {"location_gln", "transformation_date", "inputs", "product_description"},
        "INSPECTION": {
            "outcome", "inspection_date", "inspection_body", "standard", "certificate_sha256", "location_gln",
        },
        "HOLD": {"date"},
        "RELEASE": {"date"},
        "RECALL": {
            "reason", "recall_class", "date", "instructions", "contact", "notice_url", "source_gtin",
            "source_lot_code",
        },
        "SENSOR_ANCHOR": {
            "merkle_root", "reading_count", "period_start", "period_end", "min_temperature_c",
            "max_temperature_c", "location_gln",
        },
        "CLOSE": {"reason", "date"},
        "CUSTODY_REJECTED": {"date"},
        "CUSTODY_CANCELLED": {"date"},
        "OBSERVATION": {"date"},
        "RECALL_ENDED": {"reason", "date", "recall_class"},  # a new kind: no earlier event's hash changes
    }  # fmt: skip
    assert {kind.name: set(fields) for kind, fields in PUBLIC_FIELDS_V2.items()} == pinned
    assert {f.name for f in INPUT_ITEM_FIELDS if f.visibility is Visibility.PUBLIC} == {"gtin", "lot_code"}
