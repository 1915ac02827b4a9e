"""GS1 identifiers: GTIN, GLN, lot code (AI 10), the on-chain lot id and the GS1 Digital Link URI; and one
reader (``parse_gs1_uri``) for the EPC URNs and Digital Links of SGTIN, LGTIN, SGLN, SSCC, GRAI and PGLN.

Rules follow the GS1 General Specifications: GTIN-8/12/13/14 and GLN carry a mod-10 check digit
(section 7.9.1); AI (10) batch/lot is 1-20 characters of the AI encodable character set 82 (figure 7.11-1).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from epcpy import ConvertException, epc_pure_identity_to_gs1_element_string

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


# ================================================================== any GS1 key: EPC URNs and Digital Links


@dataclass(frozen=True)
class GS1Key:
    """What an EPC URN or a GS1 Digital Link names: its ``scheme`` (``sgtin`` one item, ``lgtin`` a lot,
    ``gtin`` a product, ``sgln``/``gln`` a location, ``pgln`` a party, ``sscc`` a logistic unit, ``grai`` a
    returnable asset), the GS1 ``key`` (GTIN-14, GLN, SSCC-18, GRAI) and its qualifiers."""

    scheme: str
    key: str
    lot: str | None = None
    serial: str | None = None
    extension: str | None = None
    company_prefix: str | None = None  # known from a URN only (a Digital Link does not mark it)

    def digital_link(self, base_url: str = "https://id.gs1.org") -> str:
        """The Digital Link of the key with its qualifiers (``/01/{gtin}/10/{lot}/21/{serial}``, ...)."""
        ai = {"sgtin": "01", "lgtin": "01", "gtin": "01", "sgln": "414", "gln": "414", "pgln": "417"}
        ai |= {"sscc": "00", "grai": "8003"}
        path = f"/{ai[self.scheme]}/{self.key}"
        for qualifier, value in (("10", self.lot), ("21", self.serial), ("254", self.extension)):
            if value is not None:
                path += f"/{qualifier}/{encode_lot_code(value)}"
        return (base_url or "").rstrip("/") + path


class NotGS1Key(InvalidInput):
    """The identifier is no GS1 key at all (another URI scheme, another EPC scheme such as GIAI or a class
    pattern), as opposed to a GS1 key written wrongly (a bad check digit, a misplaced qualifier)."""


_URN_SCHEMES = {"sgtin": "sgtin", "lgtin": "lgtin", "sgln": "sgln", "sscc": "sscc", "grai": "grai", "pgln": "pgln"}
_ELEMENT = re.compile(r"\((\d{2,4})\)([^(]*)")
# Digital Link primary keys and the qualifiers each may carry, in the order GS1 allows them
_LINK_KEYS = {"01": ("22", "10", "21"), "414": ("254",), "417": (), "00": (), "8003": ()}


def parse_gs1_uri(uri: str, field: str = "identifier") -> GS1Key:
    """The GS1 key an EPC pure-identity URN (``urn:epc:id:sgtin:...``, ``urn:epc:class:lgtin:...``, sgln, sscc,
    grai, pgln; converted with the EPC Tag Data Standard library ``epcpy``) or a GS1 Digital Link (any host;
    ``/01/{gtin}[/10/{lot}][/21/{serial}]``, ``/414/{gln}[/254/{ext}]``, ``/417/``, ``/00/``, ``/8003/``)
    names; InvalidInput naming ``field`` otherwise. Check digits are verified."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"{field}: an identifier is required", field=field, code="invalid_identifier")
    uri = uri.strip()
    if uri.startswith("urn:epc:"):
        return _from_urn(uri, field)
    try:
        path = urlsplit(uri).path
    except ValueError:
        path = ""
    segments = [unquote(s) for s in path.split("/")]
    for index, segment in enumerate(segments):
        if segment in _LINK_KEYS and index + 1 < len(segments):
            try:
                return _from_link(uri, segment, segments[index + 1 :], field)
            except InvalidInput as exc:
                if exc.field == field:
                    raise
                raise InvalidInput(f"{field}: {exc.message}", field=field, code=exc.code) from None
    raise NotGS1Key(
        f"{field}: {uri!r} is neither an EPC URN nor a GS1 Digital Link", field=field, code="invalid_identifier"
    )


def _from_urn(uri: str, field: str) -> GS1Key:
    parts = uri.split(":")
    scheme = _URN_SCHEMES.get(parts[3]) if len(parts) > 4 else None
    if scheme is None or parts[2] not in ("id", "class"):
        raise NotGS1Key(
            f"{field}: {uri!r} is not an SGTIN, LGTIN, SGLN, SSCC, GRAI or PGLN URN",
            field=field,
            code="invalid_identifier",
        )
    try:
        elements = dict(_ELEMENT.findall(epc_pure_identity_to_gs1_element_string(uri)))
    except (ConvertException, ValueError, IndexError) as exc:
        raise InvalidInput(
            f"{field}: {uri!r} is not a valid {scheme.upper()} URN ({exc})", field=field, code="invalid_identifier"
        ) from None
    prefix = parts[4].split(".", 1)[0]
    if scheme in ("sgtin", "lgtin"):
        lot = elements.get("10")
        return GS1Key(
            scheme,
            elements["01"],
            lot=parse_lot_code(lot) if lot else None,
            serial=elements.get("21"),
            company_prefix=prefix,
        )
    if scheme == "sgln":
        extension = elements.get("254")
        return GS1Key(
            scheme, elements["414"], extension=None if extension in (None, "0") else extension, company_prefix=prefix
        )
    ai = {"sscc": "00", "grai": "8003", "pgln": "417"}[scheme]
    return GS1Key(scheme, elements[ai], company_prefix=prefix)


def _from_link(uri: str, ai: str, rest: list[str], field: str) -> GS1Key:
    value, pairs = rest[0], rest[1:]
    qualifiers: dict[str, str] = {}
    allowed = list(_LINK_KEYS[ai])
    while pairs:
        if len(pairs) < 2 or pairs[0] not in allowed:
            raise InvalidInput(
                f"{field}: {uri!r}: /{pairs[0]}/ may not follow /{ai}/ here (qualifiers of /{ai}/: "
                f"{', '.join('/' + q + '/' for q in _LINK_KEYS[ai]) or 'none'}, in that order)",
                field=field,
                code="invalid_identifier",
            )
        allowed = allowed[allowed.index(pairs[0]) + 1 :]
        qualifiers[pairs[0]], pairs = pairs[1], pairs[2:]
    if ai == "01":
        gtin = parse_gtin(value)
        lot = parse_lot_code(qualifiers["10"]) if "10" in qualifiers else None
        serial = qualifiers.get("21")
        scheme = "sgtin" if serial is not None else ("lgtin" if lot is not None else "gtin")
        return GS1Key(scheme, gtin, lot=lot, serial=serial)
    if ai in ("414", "417"):
        gln = parse_gln(value)
        return GS1Key(
            "sgln" if "254" in qualifiers else ("gln" if ai == "414" else "pgln"), gln, extension=qualifiers.get("254")
        )
    if ai == "00":
        if not (value.isdigit() and len(value) == 18 and int(value[-1]) == gs1_check_digit(value[:-1])):
            raise InvalidInput(
                f"{field}: {value!r} is not an SSCC (18 digits, check digit)", field=field, code="invalid_identifier"
            )
        return GS1Key("sscc", value)
    if not (len(value) >= 14 and value[:14].isdigit() and int(value[13]) == gs1_check_digit(value[:13])):
        raise InvalidInput(
            f"{field}: {value!r} is not a GRAI (14 digits with check digit, then a serial)",
            field=field,
            code="invalid_identifier",
        )
    return GS1Key("grai", value)


def split_serial(lot_path: str) -> tuple[str, str] | None:
    """``(lot, serial)`` when a Digital Link's lot segment carries a serial after it (``LOT/21/SERIAL``, as a
    route taking the rest of the path sees ``/10/LOT/21/SERIAL``); None otherwise."""
    lot, sep, serial = lot_path.rpartition("/21/")
    if not sep or not lot or not serial or "/" in serial:
        return None
    return lot, serial


# ================================================================== EPC patterns (EPCIS MATCH_* wildcards)

PATTERN_KEY_LENGTHS = {"sgtin": 14, "sgln": 13, "sscc": 18, "grai": 13}
"""The length of ``pattern_key`` for each pattern scheme (GTIN-14, GLN, SSCC-18, GRAI without its serial)."""


def pattern_key(key: GS1Key) -> str | None:
    """The digits of a GS1 key with its company prefix first, so that every EPC pattern (``CP.*.*``, ``CP.IR.*``)
    is a range of these digits: a GTIN or SSCC moves its indicator/extension digit to the end; a GLN already
    begins with its prefix; a GRAI drops its leading zero and its serial. None for other keys."""
    if key.scheme in ("sgtin", "lgtin", "gtin", "sscc"):
        return key.key[1:] + key.key[0]
    if key.scheme in ("sgln", "gln", "pgln"):
        return key.key
    if key.scheme == "grai":
        return key.key[1:14]
    return None


@dataclass(frozen=True)
class EpcPattern:
    """An EPC pattern URI (TDS section 8, ``urn:epc:idpat:sgtin:0614141.107346.*``) as a range of
    ``pattern_key`` digits within its ``scheme`` (sgtin, sgln, sscc, grai); ``low``/``high`` are None for a
    pattern of all wildcards (every EPC of the scheme), equal for one class (``CP.IR.*``). Every bound has the
    key's full length and only digits, so it compares the same under any database collation."""

    scheme: str
    low: str | None = None
    high: str | None = None


_PATTERN_FIELDS = {"sgtin": 3, "sgln": 3, "grai": 3, "sscc": 2}
"""How many fields each pattern scheme has."""


def parse_epc_pattern(uri: str, field: str) -> EpcPattern | None:
    """The pattern ``uri`` writes, None if it is no pattern URI (``urn:epc:idpat:``) or names every field (then it
    is one EPC; the caller compares it as its ``urn:epc:id:`` twin); InvalidInput naming ``field`` for a pattern
    written wrongly or of a scheme Lotline cannot match (sgtin, sgln, grai and sscc are matched)."""
    if not uri.startswith("urn:epc:idpat:"):
        return None
    scheme, _, rest = uri[len("urn:epc:idpat:") :].partition(":")
    count = _PATTERN_FIELDS.get(scheme)
    if count is None:
        raise InvalidInput(
            f"{field}: {uri!r:.80} is a pattern of a scheme Lotline does not match (sgtin, sgln, grai, sscc)",
            field=field,
            code="invalid_identifier",
        )
    parts = rest.split(".")
    stars = [p == "*" for p in parts]
    wrong = len(parts) != count or any(stars[i] and not stars[i + 1] for i in range(len(parts) - 1))
    fixed = parts[: stars.index(True)] if True in stars else parts
    if not wrong and len(fixed) < count:
        digits = "".join(fixed)
        # company prefix + item reference (with indicator) is 13 digits, + location reference or asset type 12
        wrong = (bool(fixed) and not digits.isdigit()) or (
            len(fixed) == 2 and len(digits) != (13 if scheme == "sgtin" else 12)
        )
    if wrong:
        raise InvalidInput(
            f"{field}: {uri!r:.80} is not an EPC pattern: {scheme} takes {count} fields separated by '.', digits "
            "first and '*' for every field after the first wildcard (e.g. urn:epc:idpat:sgtin:0614141.107346.*)",
            field=field,
            code="invalid_identifier",
        )
    if len(fixed) == count:
        return None
    length = PATTERN_KEY_LENGTHS[scheme]
    if not fixed:
        return EpcPattern(scheme)
    if len(fixed) == 1:
        prefix = fixed[0]
        if not 6 <= len(prefix) <= 12:
            raise InvalidInput(
                f"{field}: {uri!r:.80}: a GS1 company prefix has 6 to 12 digits", field=field, code="invalid_identifier"
            )
        return EpcPattern(scheme, prefix.ljust(length, "0"), prefix.ljust(length, "9"))
    prefix, reference = fixed
    if scheme == "sgtin":  # indicator digit + company prefix + item reference + check digit
        body = reference[0] + prefix + reference[1:]
        key = pattern_key(GS1Key("gtin", body + str(gtin_check_digit(body))))
    elif scheme == "sgln":
        key = prefix + reference + str(gs1_check_digit(prefix + reference))
    else:  # grai: company prefix + asset type + check digit (of the GRAI-14 with its leading zero)
        key = prefix + reference + str(gs1_check_digit("0" + prefix + reference))
    assert key is not None
    return EpcPattern(scheme, key, key)
