"""The EPCIS schema check: a compiled validator decides, ``jsonschema`` words a refusal."""

from __future__ import annotations

import copy

import pytest

from supply_chain.bench import commissioning_document
from supply_chain.domain.errors import InvalidInput
from supply_chain.services.epcis import vocabulary


def _document() -> dict:
    return commissioning_document(
        "09506000134352", "9506000134352", 3, name="urn:x:b", lot="BC-{:05d}", day="2026-11-20"
    )


def test_a_valid_document_is_not_walked_by_jsonschema(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> None:
        raise AssertionError("jsonschema asked")

    monkeypatch.setattr(vocabulary, "_validator", refuse)
    document = _document()
    assert vocabulary.validate_document(document) is document


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("eventTime", "2026-13-01T08:00:00Z", "epcisBody.eventList[1].eventTime"),
        ("eventTime", "yesterday", "epcisBody.eventList[1].eventTime"),
        ("action", "MOVE", "epcisBody.eventList[1]"),
        ("eventTimeZoneOffset", "+25:00", "epcisBody.eventList[1].eventTimeZoneOffset"),
    ],
)
def test_a_refusal_is_worded_by_jsonschema_as_before(field: str, value: str, words: str) -> None:
    document = _document()
    document["epcisBody"]["eventList"][1][field] = value
    with pytest.raises(InvalidInput) as refused:
        vocabulary.validate_document(document)
    expected = list(vocabulary._validator().iter_errors(document))
    assert expected, "jsonschema refuses it too"
    assert refused.value.code == "epcis_schema_invalid"
    assert refused.value.field.startswith(words)
    assert refused.value.message.startswith("EPCIS schema: ")


def test_where_the_compiled_validator_is_stricter_jsonschema_has_the_last_word() -> None:
    """Python's ``$`` matches before a final newline, Rust's does not: jsonschema accepts, so the document
    passes as it did."""
    document = _document()
    document["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] = "+01:00\n"
    assert not vocabulary._fast_validator().is_valid(document)
    assert not list(vocabulary._validator().iter_errors(copy.deepcopy(document)))
    assert vocabulary.validate_document(document) is document


def test_text_the_compiled_validator_cannot_read_is_left_to_jsonschema() -> None:
    document = _document()
    document["epcisBody"]["eventList"][0]["eventTimeZoneOffset"] = "+01:\ud800"
    with pytest.raises(InvalidInput) as refused:
        vocabulary.validate_document(document)
    assert refused.value.field == "epcisBody.eventList[0].eventTimeZoneOffset"
