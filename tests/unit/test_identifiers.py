"""GS1 identifiers: GTIN, GLN, lot code, lot id and Digital Link."""

from __future__ import annotations

import pytest

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.hashing import keccak256
from supply_chain.domain.identifiers import (
    LOT_CODE_CHARACTERS,
    PATTERN_KEY_LENGTHS,
    EpcPattern,
    digital_link,
    digital_link_path,
    gln_has_prefix,
    gtin_check_digit,
    gtin_has_prefix,
    lot_id,
    parse_digital_link,
    parse_epc_pattern,
    parse_gln,
    parse_gs1_uri,
    parse_gtin,
    parse_lot_code,
    pattern_key,
)

# --- GTIN -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "gtin14"),
    [
        ("09506000134352", "09506000134352"),  # GTIN-14 from the GS1 Digital Link examples
        ("4006381333931", "04006381333931"),  # EAN-13 (Stabilo pen)
        ("036000291452", "00036000291452"),  # UPC-A
        ("96385074", "00000096385074"),  # EAN-8
        ("10614141000019", "10614141000019"),  # case GTIN, indicator digit 1
        (" 4 006381 333931 ", "04006381333931"),  # as printed under the bars
    ],
)
def test_valid_gtins_normalise_to_gtin14(given: str, gtin14: str) -> None:
    assert parse_gtin(given) == gtin14


@pytest.mark.parametrize(
    "body, check", [("950600013435", 2), ("400638133393", 1), ("401234567890", 1), ("9638507", 4)]
)
def test_gtin_check_digit_follows_gs1_mod10(body: str, check: int) -> None:
    assert gtin_check_digit(body) == check


@pytest.mark.parametrize("good", ["09506000134352", "4006381333931", "036000291452", "96385074"])
def test_changing_any_single_digit_of_a_gtin_breaks_its_check(good: str) -> None:
    for position in range(len(good)):
        digit = int(good[position])
        bad = good[:position] + str((digit + 1) % 10) + good[position + 1 :]
        with pytest.raises(InvalidInput) as info:
            parse_gtin(bad)
        assert info.value.code == "invalid_gtin"
        assert info.value.field == "gtin"


def test_gtin_with_wrong_check_digit_says_which_digit_is_expected() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_gtin("4012345678902")
    assert info.value.message == "GTIN 4012345678902: check digit should be 1, got 2"


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("400638133393", "check digit"),  # 12 digits, a UPC with a bad check digit
        ("40063813339312", "check digit"),
        ("123456789", "must have 8, 12, 13 or 14 digits, got 9"),
        ("400638133393100", "got 15"),
        ("40063813339X1", "digits only, found 'X'"),
        ("４００６３８１３３３９３１", "digits only"),  # full-width digits are not GS1 digits
        ("", "required"),
        ("00000000000000", "all zeros"),
    ],
)
def test_invalid_gtins_are_rejected_with_the_rule_broken(given: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_gtin(given)
    assert fragment in info.value.message
    assert info.value.to_dict()["field"] == "gtin"


def test_gtin_must_be_text() -> None:
    with pytest.raises(InvalidInput, match="must be text"):
        parse_gtin(4006381333931)  # type: ignore[arg-type]


# --- GLN ------------------------------------------------------------------------------------------


def test_valid_gln_is_returned_unchanged() -> None:
    assert parse_gln("0614141000005") == "0614141000005"
    assert parse_gln("4012345 000009") == "4012345000009"


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("0614141000006", "check digit should be 5, got 6"),
        ("061414100000", "must have 13 digits, got 12"),
        ("09506000134352", "must have 13 digits, got 14"),
        ("06141410000O5", "digits only"),
    ],
)
def test_invalid_glns_are_rejected(given: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_gln(given)
    assert fragment in info.value.message
    assert (info.value.field, info.value.code) == ("gln", "invalid_gln")


# --- company prefix -------------------------------------------------------------------------------


def test_gtin_prefix_skips_the_indicator_digit() -> None:
    assert gtin_has_prefix("10614141000019", "0614141")
    assert gtin_has_prefix("00614141000012", "0614141")
    assert not gtin_has_prefix("10614141000019", "1061414")
    assert gtin_has_prefix("4006381333931", "4006381")  # shorter GTINs are normalised first


def test_gln_prefix_is_the_start_of_the_gln() -> None:
    assert gln_has_prefix("0614141000005", "0614141")
    assert not gln_has_prefix("4012345000009", "0614141")


@pytest.mark.parametrize("prefix", ["", "123", "06141X", "1234567890123"])
def test_malformed_company_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(InvalidInput) as info:
        gln_has_prefix("0614141000005", prefix)
    assert info.value.field == "prefix"


# --- lot code -------------------------------------------------------------------------------------


def test_character_set_82_has_exactly_82_characters() -> None:
    assert len(LOT_CODE_CHARACTERS) == 82
    assert set("!\"%&'()*+,-./:;<=>?_") <= LOT_CODE_CHARACTERS
    assert not set("#$@[\\]^`{|}~ ") & LOT_CODE_CHARACTERS


@pytest.mark.parametrize(
    "code",
    [
        "A",
        "L2405-01",
        "x" * 20,
        "AB/12",
        "50%",
        "lot:1;2<3=4>5?",
        "!\"%&'()*+,-./:;<=>?_",
        "0123456789abcXYZ",
    ],
)
def test_lot_codes_of_set_82_are_accepted_case_kept(code: str) -> None:
    assert parse_lot_code(code) == code


def test_lot_code_of_20_characters_is_accepted_and_21_rejected() -> None:
    assert parse_lot_code("A" * 20) == "A" * 20
    with pytest.raises(InvalidInput) as info:
        parse_lot_code("A" * 21)
    assert "at most 20 characters, got 21" in info.value.message
    assert (info.value.field, info.value.code) == ("lot_code", "invalid_lot_code")


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("AB#12", "character '#' at position 3"),
        ("LOT 7", "character ' ' at position 4"),
        ("Lot-ä", "character 'ä' at position 5"),
        ("A~B", "character '~' at position 2"),
        ("A\tB", "U+0009 at position 2"),
        ("", "required"),
        ("   ", "required"),
    ],
)
def test_lot_codes_outside_set_82_name_the_character_and_position(code: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_lot_code(code)
    assert fragment in info.value.message


def test_lot_code_surrounding_whitespace_is_removed() -> None:
    assert parse_lot_code("  L2405 \n") == "L2405"


# --- lot id ---------------------------------------------------------------------------------------


def test_lot_id_is_keccak_of_gtin14_and_lot_code_abi_encoded() -> None:
    expected = keccak256(
        (64).to_bytes(32, "big")
        + (128).to_bytes(32, "big")
        + (14).to_bytes(32, "big")
        + b"04006381333931".ljust(32, b"\0")
        + (8).to_bytes(32, "big")
        + b"L2405-01".ljust(32, b"\0")
    )
    assert lot_id("04006381333931", "L2405-01") == expected
    assert lot_id("4006381333931", "L2405-01") == expected  # any GTIN length gives the GTIN-14 id
    assert expected.hex() == "f696ea29c43f8aab8c7777a8cf27527956dac2eb832f109777b2bf45ed353806"


def test_lot_id_matches_solidity_abi_encode() -> None:
    abi = pytest.importorskip("eth_abi")
    for code in ("ABC/1%", "A", "L" * 20, "x" * 32):
        data = abi.encode(["string", "string"], ["09506000134352", code[:20]])
        assert lot_id("09506000134352", code[:20]) == keccak256(data)


def test_lot_ids_of_labels_that_pack_alike_differ() -> None:
    """encodePacked("0950600013435", "21") == encodePacked("09506000134352", "1"): abi.encode keeps them apart."""
    from supply_chain.domain.identifiers import abi_encode_strings

    assert abi_encode_strings("0950600013435", "21") != abi_encode_strings("09506000134352", "1")


def test_lot_ids_differ_for_different_lots_and_case() -> None:
    ids = {lot_id("09506000134352", code) for code in ("abc", "ABC", "ABC1")}
    ids.add(lot_id("04006381333931", "abc"))
    assert len(ids) == 4


def test_lot_id_refuses_invalid_parts() -> None:
    with pytest.raises(InvalidInput):
        lot_id("09506000134353", "A")
    with pytest.raises(InvalidInput):
        lot_id("09506000134352", "A#")


# --- Digital Link ---------------------------------------------------------------------------------


def test_digital_link_has_gs1_shape() -> None:
    assert digital_link("https://id.lotline.example", "4006381333931", "L2405-01") == (
        "https://id.lotline.example/01/04006381333931/10/L2405-01"
    )
    assert digital_link("https://id.lotline.example/", "09506000134352", "ABC") == (
        "https://id.lotline.example/01/09506000134352/10/ABC"
    )
    assert digital_link_path("96385074", "x") == "/01/00000096385074/10/x"


@pytest.mark.parametrize(
    ("lot", "encoded"),
    [
        ("AB/12", "AB%2F12"),
        ("50%", "50%25"),
        ("a.b-c_d", "a.b-c_d"),
        ("!\"%&'()*+,", "%21%22%25%26%27%28%29%2A%2B%2C"),
        ("/:;<=>?", "%2F%3A%3B%3C%3D%3E%3F"),
    ],
)
def test_digital_link_percent_encodes_reserved_characters(lot: str, encoded: str) -> None:
    assert digital_link("https://x.example", "09506000134352", lot).endswith("/10/" + encoded)


@pytest.mark.parametrize("lot", ["AB/12", "50%", "%25", "a%2Fb", "x" * 20, "!\"%&'()*+,-./:;<=>?_", "?q=1"])
def test_digital_link_round_trips(lot: str) -> None:
    url = digital_link("https://id.lotline.example/dl", "4006381333931", lot)
    assert parse_digital_link(url) == ("04006381333931", lot)
    path = digital_link("", "4006381333931", lot)
    assert parse_digital_link(path) == ("04006381333931", lot)


def test_parse_digital_link_accepts_short_gtins_and_ignores_query() -> None:
    assert parse_digital_link("https://example.com/01/4006381333931/10/L1?linkType=gs1:pip#top") == (
        "04006381333931",
        "L1",
    )
    assert parse_digital_link("/01/96385074/10/A%2FB") == ("00000096385074", "A/B")


@pytest.mark.parametrize(
    ("link", "field"),
    [
        ("https://example.com/01/4006381333931/10/L1/qr.png", "digital_link"),
        ("https://example.com/01/4006381333931/10/L1/", "digital_link"),
        ("https://example.com/01/4006381333931/21/S1", "digital_link"),
        ("https://example.com/01/4006381333931", "digital_link"),
        ("https://example.com/10/L1/01/4006381333931", "digital_link"),
        ("https://example.com/01/4006381333932/10/L1", "gtin"),
        ("https://example.com/01/4006381%33333931/10/L1", "gtin"),
        ("https://example.com/01/4006381333931/10/L%231", "lot_code"),
        ("https://example.com/01/4006381333931/10/50%", "digital_link"),
        ("https://example.com/01/4006381333931/10/5%G0", "digital_link"),
        ("https://example.com/01/4006381333931/10/%20L1", "lot_code"),
        ("https://example.com/01/4006381333931/10/" + "A" * 21, "lot_code"),
        ("", "digital_link"),
    ],
)
def test_parse_digital_link_is_strict(link: str, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_digital_link(link)
    assert info.value.field == field


# --- EPC patterns -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "identifier"),
    [
        ("urn:epc:idpat:sgtin:0614141.107346.*", "urn:epc:id:sgtin:0614141.107346.2017"),
        ("urn:epc:idpat:sgtin:0614141.*.*", "https://id.gs1.org/01/10614141073464/21/2017"),
        ("urn:epc:idpat:sgtin:0614141.*.*", "https://id.gs1.org/01/90614141000015/21/x"),  # any indicator digit
        ("urn:epc:idpat:sgln:0614141.00777.*", "urn:epc:id:sgln:0614141.00777.12"),
        ("urn:epc:idpat:grai:4012345.55555.*", "urn:epc:id:grai:4012345.55555.987"),
        ("urn:epc:idpat:sscc:0614141.*", "urn:epc:id:sscc:0614141.1234567890"),
    ],
)
def test_an_epc_pattern_is_a_range_of_pattern_keys_holding_its_epcs(pattern: str, identifier: str) -> None:
    found = parse_epc_pattern(pattern, "MATCH_epc")
    key = pattern_key(parse_gs1_uri(identifier))
    assert found is not None and key is not None
    assert found.low is not None and found.high is not None and found.low <= key <= found.high
    assert len(found.low) == len(found.high) == len(key) == PATTERN_KEY_LENGTHS[found.scheme]


def test_an_epc_pattern_leaves_out_other_company_prefixes_and_items() -> None:
    item = pattern_key(parse_gs1_uri("urn:epc:id:sgtin:0614141.107346.2017"))
    for pattern in ("urn:epc:idpat:sgtin:0614142.*.*", "urn:epc:idpat:sgtin:0614141.007346.*"):
        found = parse_epc_pattern(pattern, "MATCH_epc")
        assert found is not None and found.low is not None and found.high is not None
        assert not found.low <= item <= found.high  # type: ignore[operator]
    assert parse_epc_pattern("urn:epc:idpat:sgtin:*.*.*", "MATCH_epc") == EpcPattern("sgtin")
    assert parse_epc_pattern("urn:epc:idpat:sgtin:0614141.107346.2017", "MATCH_epc") is None  # one EPC
    assert parse_epc_pattern("urn:epc:id:sgtin:0614141.107346.2017", "MATCH_epc") is None  # no pattern


@pytest.mark.parametrize(
    "pattern",
    [
        "urn:epc:idpat:sgtin:0614141.*.2017",
        "urn:epc:idpat:sgtin:0614141.10734.*",
        "urn:epc:idpat:sgtin:06141.*.*",
        "urn:epc:idpat:sgtin:06l4141.*.*",
        "urn:epc:idpat:sgtin:0614141.*",
        "urn:epc:idpat:giai:4000001.*",
    ],
)
def test_an_epc_pattern_written_wrongly_is_refused_naming_the_parameter(pattern: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_epc_pattern(pattern, "MATCH_anyEPC")
    assert refused.value.field == "MATCH_anyEPC"
