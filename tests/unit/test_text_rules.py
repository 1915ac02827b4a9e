"""Free text holds no control or bidirectional override characters (issue 9, item 8a): one rule in
``domain/text.py``, applied by the payload validation every path shares."""

from __future__ import annotations

import pytest

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.events import validate_payload
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.text import check_text

HOLD = {"reason": "temperature excursion", "date": "2025-05-01"}


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x1b", "\x7f", "\x80", "\x9b", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
             "\u2066", "\u2067", "\u2068", "\u2069"]
)
def test_control_and_bidi_characters_are_refused_naming_field_and_character(char: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_payload(EventKind.HOLD, HOLD | {"reason": f"bad{char}reason"})
    assert refused.value.code == "invalid_characters" and refused.value.field == "payload.reason"
    assert f"U+{ord(char):04X}" in refused.value.message


@pytest.mark.parametrize("char", ["\t", "\n", "\r"])
def test_line_breaks_and_tabs_only_in_multi_line_text(char: str) -> None:
    with pytest.raises(InvalidInput):
        check_text(f"a{char}b", "name")
    assert check_text(f"a{char}b", "notes", multiline=True) == f"a{char}b"
    note = validate_payload(EventKind.OBSERVATION, {"note": f"first{char}second", "date": "2025-05-01"})
    assert note["note"] == f"first{char}second"


def test_extra_fields_are_checked_too_keys_and_nested_values() -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_payload(EventKind.HOLD, HOLD | {"notes": {"lines": ["ok", "bad\x00"]}})
    assert refused.value.field == "payload.notes.lines[1]"
    with pytest.raises(InvalidInput):
        validate_payload(EventKind.HOLD, HOLD | {"no\u202ete": "x"})


def test_ordinary_and_right_to_left_text_is_accepted() -> None:
    for text in ("Prüfbericht Nr. 7 — ok", "مزرعة الوادي", "\u200fשדה 4\u200e", "日本のレタス"):
        assert validate_payload(EventKind.HOLD, HOLD | {"reason": text})["reason"] == text
