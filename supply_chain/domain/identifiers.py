"""GS1 identifiers: GTIN, GLN, lot code (AI 10), the on-chain lot id and the GS1 Digital Link URI.

Rules follow the GS1 General Specifications: GTIN-8/12/13/14 and GLN carry a mod-10 check digit
(section 7.9.1); AI (10) batch/lot is 1-20 characters of the AI encodable character set 82 (figure 7.11-1).
"""

from __future__ import annotations

import re
import string
from urllib.parse import quote, unquote, urlsplit

from .errors import InvalidInput
from .hashing import keccak256

GTIN_LENGTHS = (8, 12, 13, 14)
GLN_LENGTH = 13
LOT_CODE_MAX_LENGTH = 20

# GS1 AI encodable character set 82: digits, upper- and lower-case letters and 20 punctuation characters.
LOT_CODE_PUNCTUATION = "!\"%&'()*+,-./:;<=>?_"
LOT_CODE_CHARACTERS = frozenset(
    string.digits + string.ascii_uppercase + string.ascii_lowercase + LOT_CODE_PUNCTUATION
)
assert len(LOT_CODE_CHARACTERS) == 82

_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def gs1_check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit for ``body`` (the digits before the check digit).

    From the right, digits are weighted 3, 1, 3, 1, ...; the check digit brings the sum to a multiple of 10.
    """
    if not body.isascii() or not body.isdigit():
        raise InvalidInput(f"check digit body must be digits only, got {body!r}", field="gtin")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin_check_digit(body: str) -> int:
    """Return the check digit of a GTIN whose other digits are ``body`` (7, 11, 12 or 13 digits)."""
    return gs1_check_digit(body)


def _digits(value: object, label: str, field: str, code: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{label} must be text, got {type(value).__name__}", field=field, code=code)
    text = "".join(value.split())  # labels print GTINs in groups: "4 006381 333931"
    if not text:
        raise InvalidInput(f"{label} is required", field=field, code=code)
    bad = next((c for c in text if not ("0" <= c <= "9")), None)
    if bad is not None:
        raise InvalidInput(f"{label} {text}: digits only, found {bad!r}", field=field, code=code)
    return text


def _check(text: str, label: str, field: str, code: str) -> None:
    expected = gs1_check_digit(text[:-1])
    got = int(text[-1])
    if expected != got:
        raise InvalidInput(
            f"{label} {text}: check digit should be {expected}, got {got}", field=field, code=code
        )


def parse_gtin(value: str) -> str:
    """Validate a GTIN-8/12/13/14 (spaces ignored) and return it as a GTIN-14 (left-padded with zeros)."""
    text = _digits(value, "GTIN", "gtin", "invalid_gtin")
    if len(text) not in GTIN_LENGTHS:
        raise InvalidInput(
            f"GTIN {text}: must have 8, 12, 13 or 14 digits, got {len(text)}",
            field="gtin",
            code="invalid_gtin",
        )
    _check(text, "GTIN", "gtin", "invalid_gtin")
    gtin14 = text.zfill(14)
    if gtin14 == "0" * 14:
        raise InvalidInput("GTIN must not be all zeros", field="gtin", code="invalid_gtin")
    return gtin14


def parse_gln(value: str) -> str:
    """Validate a 13-digit GLN (spaces ignored, check digit verified) and return it."""
    text = _digits(value, "GLN", "gln", "invalid_gln")
    if len(text) != GLN_LENGTH:
        raise InvalidInput(
            f"GLN {text}: must have 13 digits, got {len(text)}", field="gln", code="invalid_gln"
        )
    _check(text, "GLN", "gln", "invalid_gln")
    if text == "0" * 13:
        raise InvalidInput("GLN must not be all zeros", field="gln", code="invalid_gln")
    return text


def _prefix(prefix: str) -> str:
    if (
        not isinstance(prefix, str)
        or not prefix.isascii()
        or not prefix.isdigit()
        or not 4 <= len(prefix) <= 12
    ):
        raise InvalidInput(
            f"GS1 company prefix must be 4 to 12 digits, got {prefix!r}",
            field="prefix",
            code="invalid_prefix",
        )
    return prefix


def gtin_has_prefix(gtin14: str, prefix: str) -> bool:
    """Return True when the GTIN belongs to GS1 company prefix ``prefix``.

    In a GTIN-14 the indicator digit comes first, then the company prefix. A U.P.C. company prefix is
    written with its leading 0 as a GS1 company prefix (UPC prefix 614141 -> GS1 prefix 0614141).
    """
    return parse_gtin(gtin14)[1:].startswith(_prefix(prefix))


def gln_has_prefix(gln: str, prefix: str) -> bool:
    """Return True when the GLN belongs to GS1 company prefix ``prefix`` (the GLN starts with it)."""
    return parse_gln(gln).startswith(_prefix(prefix))


def parse_lot_code(value: str) -> str:
    """Validate a lot code per GS1 AI (10): 1-20 characters of GS1 character set 82; case is kept.

    Surrounding whitespace is removed (space is not in set 82, so it can only be a typing slip).
    """
    if not isinstance(value, str):
        raise InvalidInput(
            f"lot code must be text, got {type(value).__name__}", field="lot_code", code="invalid_lot_code"
        )
    text = value.strip()
    if not text:
        raise InvalidInput(
            "lot code is required (1 to 20 characters)", field="lot_code", code="invalid_lot_code"
        )
    if len(text) > LOT_CODE_MAX_LENGTH:
        raise InvalidInput(
            f"lot code {text!r}: must be at most {LOT_CODE_MAX_LENGTH} characters, got {len(text)}",
            field="lot_code",
            code="invalid_lot_code",
        )
    for position, char in enumerate(text, start=1):
        if char not in LOT_CODE_CHARACTERS:
            shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
            raise InvalidInput(
                f"lot code {text!r}: character {shown} at position {position} is not allowed "
                f"(GS1 AI (10) allows digits, letters and {LOT_CODE_PUNCTUATION})",
                field="lot_code",
                code="invalid_lot_code",
            )
    return text


def abi_encode_strings(*texts: str) -> bytes:
    """Solidity's ``abi.encode(string, string, ...)``: a head of 32-byte offsets, then each string as its
    32-byte length and its UTF-8 bytes right-padded with zeros to a multiple of 32."""
    tails = []
    for text in texts:
        raw = text.encode("utf-8")
        tails.append(len(raw).to_bytes(32, "big") + raw + b"\x00" * (-len(raw) % 32))
    head, offset = b"", 32 * len(texts)
    for tail in tails:
        head += offset.to_bytes(32, "big")
        offset += len(tail)
    return head + b"".join(tails)


def lot_id(gtin14: str, lot_code: str) -> bytes:
    """Return the on-chain lot id: ``keccak256(abi.encode(string gtin14, string lotCode))``.

    ``abi.encode`` length-prefixes each string, so no two labels share an id (``encodePacked`` of two strings
    would give ``("1", "23")`` and ``("12", "3")`` the same bytes). Both parts are validated (and the GTIN
    normalised to 14 digits) first; the contract computes the same id in ``lotIdOf`` and ``createLot``.
    """
    return keccak256(abi_encode_strings(parse_gtin(gtin14), parse_lot_code(lot_code)))


def encode_lot_code(lot_code: str) -> str:
    """Percent-encode a lot code for a Digital Link path: everything except A-Z a-z 0-9 - . _ ~ is encoded."""
    return quote(parse_lot_code(lot_code), safe="")


def digital_link(base_url: str, gtin14: str, lot_code: str) -> str:
    """Return the GS1 Digital Link URI ``{base}/01/{gtin14}/10/{lot}`` (lot percent-encoded)."""
    base = (base_url or "").rstrip("/")
    return f"{base}/01/{parse_gtin(gtin14)}/10/{encode_lot_code(lot_code)}"


def digital_link_path(gtin14: str, lot_code: str) -> str:
    """Return the path part of the Digital Link, ``/01/{gtin14}/10/{lot}``."""
    return digital_link("", gtin14, lot_code)


def parse_digital_link(url_or_path: str) -> tuple[str, str]:
    """Return ``(gtin14, lot_code)`` from a Digital Link URL or path ending in ``/01/{gtin}/10/{lot}``.

    Any path before ``/01/`` (a resolver prefix) is allowed; the query string and fragment are ignored;
    nothing may follow the lot (no ``/21/serial``, no ``/qr.png``). The GTIN may have 8, 12, 13 or 14 digits.
    """
    if not isinstance(url_or_path, str) or not url_or_path.strip():
        raise InvalidInput("Digital Link is required", field="digital_link", code="invalid_digital_link")
    try:
        path = urlsplit(url_or_path.strip()).path
    except ValueError as exc:  # "Invalid IPv6 URL", a host that changes under NFKC normalisation, ...
        raise InvalidInput(
            f"Digital Link {url_or_path!r}: not a URL ({exc})", field="digital_link", code="invalid_digital_link"
        ) from None
    segments = path.split("/")
    if len(segments) < 5 or segments[-4] != "01" or segments[-2] != "10":
        raise InvalidInput(
            f"Digital Link {url_or_path!r}: path must end with /01/{{gtin}}/10/{{lot}}",
            field="digital_link",
            code="invalid_digital_link",
        )
    raw_gtin, raw_lot = segments[-3], segments[-1]
    if _PERCENT_ESCAPE.search(raw_lot):
        raise InvalidInput(
            f"Digital Link {url_or_path!r}: '%' in the lot must start a %XX escape",
            field="digital_link",
            code="invalid_digital_link",
        )
    if not (raw_gtin.isascii() and raw_gtin.isdigit()):
        raise InvalidInput(
            f"Digital Link {url_or_path!r}: the GTIN after /01/ must be digits only, got {raw_gtin!r}",
            field="gtin",
            code="invalid_gtin",
        )
    gtin14 = parse_gtin(raw_gtin)
    lot = unquote(raw_lot, errors="replace")
    if lot != lot.strip():
        raise InvalidInput(
            f"Digital Link {url_or_path!r}: the lot must not have surrounding whitespace",
            field="lot_code",
            code="invalid_lot_code",
        )
    return gtin14, parse_lot_code(lot)
