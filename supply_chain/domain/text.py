"""Which characters free text may hold: one rule for every path (web form, API, EPCIS capture, CLI).

Refused everywhere: NUL and the other C0 controls, DEL, the C1 controls (U+0080-U+009F) and the bidirectional
embedding, override and isolate characters (U+202A-U+202E, U+2066-U+2069), which make text display in another
order than it is stored ("Trojan Source"): a lot note or a product name could otherwise show one thing on a
page or a label and mean another in the record, or break a terminal, a log line or a CSV file. Multi-line
text (long text such as findings and recall instructions, notes, addresses) may hold tab, line feed and
carriage return; single-line text may not. The implicit direction marks (U+200E, U+200F, U+061C) are allowed:
they change no order of stored text and right-to-left names need them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_FORBIDDEN_SINGLE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
_FORBIDDEN_MULTI_LINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


def _name(char: str) -> str:
    name = unicodedata.name(char, "")
    if not name:
        name = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\x00": "NUL", "\x7f": "DELETE"}.get(
            char, "control character"
        )
    return f"U+{ord(char):04X} {name}"


def check_text(text: str, field: str, *, multiline: bool = False) -> str:
    """Return ``text`` unchanged, or raise InvalidInput (code ``invalid_characters``) naming ``field`` and
    the first character that free text may not hold (see the module docstring)."""
    pattern = _FORBIDDEN_MULTI_LINE if multiline else _FORBIDDEN_SINGLE_LINE
    found = pattern.search(text)
    if found is not None:
        where = "" if multiline else " (this is single-line text)"
        raise InvalidInput(
            f"{field}: contains {_name(found.group())} at position {found.start() + 1}{where}; control "
            "characters and bidirectional overrides are not allowed in text",
            field=field,
            code="invalid_characters",
        )
    return text


def check_json_text(value: Any, field: str) -> Any:
    """Check every string (keys too) inside a JSON value with the multi-line rule; return ``value``."""
    if isinstance(value, str):
        check_text(value, field, multiline=True)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                check_text(key, field, multiline=False)
            check_json_text(item, f"{field}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json_text(item, f"{field}[{i}]")
    return value
