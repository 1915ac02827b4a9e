"""One reader for the GS1 keys EPCIS documents carry: EPC URNs (converted with epcpy) and Digital Links of
SGTIN, LGTIN, SGLN, SSCC, GRAI and PGLN, check digits verified, qualifiers in GS1's order."""

from __future__ import annotations

import pytest

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.identifiers import GS1Key, parse_gs1_uri, split_serial


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        (
            "urn:epc:id:sgtin:0614141.107346.2018",
            GS1Key("sgtin", "10614141073464", serial="2018", company_prefix="0614141"),
        ),
        (
            "urn:epc:class:lgtin:4012345.012345.998877",
            GS1Key("lgtin", "04012345123456", lot="998877", company_prefix="4012345"),
        ),
        ("urn:epc:id:sgln:0614141.00777.0", GS1Key("sgln", "0614141007776", company_prefix="0614141")),
        ("urn:epc:id:sgln:0614141.00777.12", GS1Key("sgln", "0614141007776", extension="12", company_prefix="0614141")),
        ("urn:epc:id:sscc:0614141.1234567890", GS1Key("sscc", "106141412345678908", company_prefix="0614141")),
        ("urn:epc:id:grai:4000001.12345.1", GS1Key("grai", "040000011234521", company_prefix="4000001")),
        ("urn:epc:id:pgln:4012345.00225", GS1Key("pgln", "4012345002256", company_prefix="4012345")),
        ("https://id.gs1.org/01/10614141073464/21/2018", GS1Key("sgtin", "10614141073464", serial="2018")),
        ("https://example.com/x/01/04012345123456/10/998877", GS1Key("lgtin", "04012345123456", lot="998877")),
        (
            "https://id.gs1.org/01/04012345123456/10/L%2F1/21/S1",
            GS1Key("sgtin", "04012345123456", lot="L/1", serial="S1"),
        ),
        ("https://id.gs1.org/01/4012345123456", GS1Key("gtin", "04012345123456")),
        ("https://id.gs1.org/414/0614141007776/254/12", GS1Key("sgln", "0614141007776", extension="12")),
        ("https://id.gs1.org/414/0614141007776", GS1Key("gln", "0614141007776")),
        ("https://id.gs1.org/417/4012345002256", GS1Key("pgln", "4012345002256")),
        ("https://id.gs1.org/00/106141412345678908", GS1Key("sscc", "106141412345678908")),
        ("https://id.gs1.org/8003/040000011234521", GS1Key("grai", "040000011234521")),
    ],
)
def test_urns_and_digital_links_name_the_same_keys(uri: str, key: GS1Key) -> None:
    assert parse_gs1_uri(uri) == key


def test_urn_and_its_digital_link_agree() -> None:
    for urn in ("urn:epc:id:sgtin:0614141.107346.2018", "urn:epc:class:lgtin:4012345.012345.998877"):
        key = parse_gs1_uri(urn)
        again = parse_gs1_uri(key.digital_link())
        assert (again.scheme, again.key, again.lot, again.serial) == (key.scheme, key.key, key.lot, key.serial)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("urn:epc:id:sgtin:0614141.107346", "not a valid SGTIN"),
        ("urn:epc:id:giai:4000001.111", "not an SGTIN, LGTIN"),
        ("https://id.gs1.org/01/10614141073465/21/1", "check digit"),
        ("https://id.gs1.org/01/10614141073464/21/1/10/L1", "may not follow"),
        ("https://id.gs1.org/414/0614141007776/10/L1", "may not follow"),
        ("https://id.gs1.org/00/106141412345678909", "not an SSCC"),
        ("https://example.com/products/42", "neither an EPC URN nor a GS1 Digital Link"),
        ("", "identifier is required"),
    ],
)
def test_bad_identifiers_are_refused_naming_the_field(uri: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_gs1_uri(uri, field="epcList[0]")
    assert says in refused.value.message and refused.value.field == "epcList[0]"


def test_split_serial_reads_a_trailing_serial_only() -> None:
    assert split_serial("LOT-1/21/SN-9") == ("LOT-1", "SN-9")
    assert split_serial("A/21/B/21/C") == ("A/21/B", "C")
    assert split_serial("LOT-1") is None and split_serial("LOT/21/") is None and split_serial("/21/SN") is None


def test_captures_lot_and_location_readers_are_the_one_reader() -> None:
    """capture's readers (``vocabulary.parse_lot_uri``/``parse_gln_uri``) answer what ``parse_gs1_uri`` reads:
    a Digital Link with its consumer product variant before the lot (GS1's order) is a lot, an SGLN URN
    without its extension is refused as the Tag Data Standard does, a GIAI or any other URI is no lot."""
    from supply_chain.services.epcis.vocabulary import Unsupported, parse_gln_uri, parse_lot_uri

    assert parse_lot_uri("https://id.gs1.org/01/09506000134352/22/2A/10/ABC", "f") == ("09506000134352", "ABC")
    assert parse_lot_uri("https://r.example/01/09506000134352/10/A%2FB", "f") == ("09506000134352", "A/B")
    assert parse_gln_uri("urn:epc:id:pgln:4012345.00225", "f") == "4012345002256"
    with pytest.raises(InvalidInput) as refused:
        parse_gln_uri("urn:epc:id:sgln:0614141.07346", "readPoint.id")
    assert refused.value.field == "readPoint.id" and "SGLN" in refused.value.message
    with pytest.raises(InvalidInput) as refused:  # a GS1 key written wrongly is an error, not "unsupported"
        parse_lot_uri("https://id.gs1.org/01/09506000134353/10/ABC", "epcClass")
    assert not isinstance(refused.value, Unsupported) and "check digit" in refused.value.message
    for uri in ("urn:epc:id:giai:4000001.111", "https://example.com/other", "urn:epc:idpat:sgtin:4012345.066666.*"):
        with pytest.raises(Unsupported):
            parse_lot_uri(uri, "f")
        with pytest.raises(Unsupported):
            parse_gln_uri(uri, "f")
