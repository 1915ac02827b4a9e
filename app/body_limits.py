"""Bounded request bodies: a JSON body's nesting depth and number of items are checked on the raw bytes,
before any parser sees them.

Python's JSON parser recurses once per nesting level (in C, on the thread's stack), and importing py-evm
raises the recursion limit far above what the stack holds: a body of 100,000 ``[`` used to crash the whole
process. So every request body that is not a form is scanned first, by ``check_json_body``: a linear,
non-recursive pass that removes string contents and escapes (C-level regular expressions), then counts
brackets. It over-approximates what a parser would do (unclosed brackets count, so does nesting after a
syntax error), never under-approximates, so whatever passes it is safe to hand to ``json.loads``.

The limits: the body size is Flask's ``MAX_CONTENT_LENGTH`` (413), the nesting depth ``MAX_JSON_DEPTH`` and
the number of items ``MAX_JSON_ITEMS`` (400 ``body_too_deep`` / ``body_too_many_items``, field ``body``).
Form bodies are parsed by Werkzeug without recursion and bounded by ``MAX_FORM_MEMORY_SIZE`` and
``MAX_FORM_PARTS``. XML bodies (EPCIS capture only) are not scanned here: the EPCIS XML reader
(``supply_chain/services/epcis/xml.py``) parses them without DTDs, entities or network and and with the
same limits: ``MAX_JSON_ITEMS`` elements, ``MAX_JSON_DEPTH`` levels (``app/api/spec.py`` passes them).
"""

from __future__ import annotations

import re

from flask import Flask, request

from supply_chain.domain.errors import InvalidInput
from supply_chain.services.epcis.xml import XML_MEDIA_TYPES

MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects accepted; the deepest document the API defines (EPCIS with sensor
reports and extensions) nests about ten levels."""
MAX_JSON_ITEMS = 100_000
"""Most arrays, objects and separated members/elements one body may hold (brackets plus commas)."""
MAX_FORM_MEMORY_SIZE = 1024 * 1024
"""Largest non-file form field (a pasted readings table is the largest legitimate one)."""
MAX_FORM_PARTS = 1000
"""Most fields and files one form may hold."""

FORM_MIMETYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
FILE_MIMETYPES = frozenset({"text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
"""Bodies that are files (a bulk import sent as it is), never read as JSON (``spec.read_json`` refuses them),
so not scanned; their size is bounded by ``MAX_CONTENT_LENGTH`` and the import's own limits."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


class BodyTooComplex(InvalidInput):
    """Raised when a request body nests too deeply or holds too many items to be parsed safely."""

    code = "body_too_deep"


def check_json_body(raw: bytes, max_depth: int = MAX_JSON_DEPTH, max_items: int = MAX_JSON_ITEMS) -> None:
    """Raise BodyTooComplex when ``raw``, read as JSON, nests deeper than ``max_depth`` or holds more than
    ``max_items`` arrays, objects and separators; linear in the body's length, no recursion."""
    # Escapes first (a \" must not end a string), then whole strings: what is left is the JSON structure.
    # Bytes of UTF-8 multi-byte characters are all >= 0x80, so they never look like quotes or brackets.
    structure = _STRING.sub(b'""', _ESCAPE.sub(b"", raw))
    # Depth first (a 10^6-deep body is "too deep" rather than "too many items"), over a bounded prefix: a
    # body within the item limit has at most 2 x max_items brackets, and one beyond it is refused below.
    depth = 0
    for byte in structure.translate(None, _NOT_BRACKET)[: 2 * max_items + 2]:
        if byte in b"[{":
            depth += 1
            if depth > max_depth:
                raise BodyTooComplex(
                    f"the request body nests JSON arrays/objects more than {max_depth} levels deep; at most "
                    f"{max_depth} levels are accepted",
                    field="body",
                    code="body_too_deep",
                )
        else:
            depth -= 1
            if depth <= 0:
                break  # the first value is complete (or a stray close bracket ends it): a parser stops here
    items = structure.count(b"[") + structure.count(b"{") + structure.count(b",")
    if items > max_items:
        raise BodyTooComplex(
            f"the request body holds more than {max_items} JSON items (arrays, objects, elements and "
            f"members); at most {max_items} are accepted in one request: split it into several",
            field="body",
            code="body_too_many_items",
        )


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding", "").lower() == "chunked"


def init_app(app: Flask) -> None:
    """Check every non-form request body before a view (or the CSRF check) reads it."""
    app.config.setdefault("MAX_FORM_MEMORY_SIZE", MAX_FORM_MEMORY_SIZE)
    app.config.setdefault("MAX_FORM_PARTS", MAX_FORM_PARTS)

    @app.before_request
    def _bounded_body() -> None:
        if request.method not in BODY_METHODS or request.mimetype in FORM_MIMETYPES | FILE_MIMETYPES or not _has_body():
            return
        if request.mimetype in XML_MEDIA_TYPES:
            return  # bounded by the XML reader's own limits, where an operation takes XML (415 elsewhere)
        check_json_body(request.get_data(cache=True))  # the size is bounded by MAX_CONTENT_LENGTH (413)
