"""Canonical payload hashing, the per-lot head-hash chain and Merkle roots for sensor readings.

Everything here is specified byte for byte in ``docs/hashing.md`` so that anyone outside the project can
recompute the same hashes; change nothing here without changing that document (and the contract).

- ``canonical_json``: RFC 8785 (JSON Canonicalization Scheme) of a JSON object, as UTF-8 bytes.
- ``payload_hash``: ``keccak256(canonical_json(payload))``, the ``dataHash`` of an event written under hash
  scheme 1 (plain; events recorded before salted commitments).
- ``field_salt`` / ``field_commitment`` / ``salted_payload_hash``: hash scheme 2 (salted), where every field
  that is not public enters the hash only as a salted commitment, so the public can re-hash an event from its
  public fields while the others cannot be found by trying values (``domain/disclosure.py`` splits a payload).
- ``next_head``: ``keccak256(abi.encode(bytes32 prevHead, uint8 kind, address actor, bytes32 dataHash))``.
- ``merkle_root`` / ``merkle_proof`` / ``verify_merkle_proof``: a domain-separated sorted-pair tree.

keccak256 is the original Keccak (Ethereum's hash), not the standardised SHA3-256: their padding differs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import rfc8785

try:  # safe-pysha3's C Keccak is about five times faster per call than pycryptodome's
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - the fallback when the wheel is not installed
    _keccak_256 = None
from Crypto.Hash import keccak as _keccak

from .errors import InvalidInput, describe

ZERO_HASH = bytes(32)
"""The head hash of a lot before its first event (32 zero bytes)."""

SCHEME_PLAIN = 1
"""Hash scheme 1: ``dataHash = keccak256(JCS(payload))`` (every event recorded before salted commitments)."""
SCHEME_SALTED = 2
"""Hash scheme 2: ``dataHash = keccak256(JCS({"public": ..., "sealed": {name: commitment}, "v": 2}))``."""
HASH_SCHEMES = (SCHEME_PLAIN, SCHEME_SALTED)
SALT_BYTES = 32

MAX_SAFE_INTEGER = 2**53 - 1
"""JSON numbers are IEEE-754 doubles; integers beyond +-(2^53 - 1) cannot be represented exactly."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX32_RE = re.compile(r"(0x)?[0-9a-fA-F]{64}")


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Keccak-256 digest of ``data`` (Ethereum's keccak256, not SHA3-256)."""
    if _keccak_256 is not None:
        return _keccak_256(bytes(data)).digest()
    return _keccak.new(digest_bits=256, data=bytes(data)).digest()


def _keccak_bytes(data: bytes) -> bytes:
    """``keccak256`` of a value known to be ``bytes`` (no copy): the hot loop of Merkle trees and leaves."""
    if _keccak_256 is not None:
        return _keccak_256(data).digest()
    return keccak256(data)  # pragma: no cover - the fallback when the wheel is not installed


def hex32(value: bytes | bytearray) -> str:
    """Format a 32-byte hash as ``0x`` followed by 64 lower-case hex digits."""
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInput(f"expected 32 bytes, got {_describe(value)}", field="hash", code="invalid_hash")
    return "0x" + bytes(value).hex()


def bytes32(value: object, field: str = "hash") -> bytes:
    """Parse a 32-byte hash given as bytes or as 64 hex digits (``0x`` optional, any case)."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 32:
            raise InvalidInput(
                f"{field}: expected 32 bytes, got {len(value)}", field=field, code="invalid_hash"
            )
        return bytes(value)
    if isinstance(value, str) and _HEX32_RE.fullmatch(value.strip()):
        text = value.strip()
        return bytes.fromhex(text[2:] if text.startswith("0x") else text)
    raise InvalidInput(
        f"{field}: expected 64 hex digits (optionally prefixed with 0x), got {_describe(value)}",
        field=field,
        code="invalid_hash",
    )


def address_bytes(actor: str) -> bytes:
    """Parse an EVM address (``0x`` + 40 hex digits, case-insensitive; no checksum check) to 20 bytes."""
    if not isinstance(actor, str) or not _ADDRESS_RE.fullmatch(actor.strip()):
        raise InvalidInput(
            f"actor: expected an address of 0x and 40 hex digits, got {_describe(actor)}",
            field="actor",
            code="invalid_address",
        )
    return bytes.fromhex(actor.strip()[2:])


# --- canonical JSON -------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    return describe(value)


def _child(path: str, key: str) -> str:
    return f"{path}.{key}"


def _plain(value: Any, path: str) -> Any:
    """Check that ``value`` has exactly one JSON form and return it built from plain dict/list/str/int/float.

    Raises InvalidInput naming the offending field (as a path such as ``payload.inputs[2].quantity``).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise InvalidInput(
                f"{path}: integer {_describe(int(value))} is outside the range JSON can carry exactly "
                f"(+-{MAX_SAFE_INTEGER}, i.e. 2^53-1); send it as a string",
                field=path,
                code="not_canonicalisable",
            )
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise InvalidInput(
                f"{path}: {value!r} is not a JSON number (NaN and Infinity cannot be canonicalised)",
                field=path,
                code="not_canonicalisable",
            )
        return float(value)
    if isinstance(value, str):
        text = str.__str__(value)  # the raw characters, also for (str, Enum) members
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"{path}: text contains a lone surrogate and has no UTF-8 form",
                field=path,
                code="not_canonicalisable",
            ) from None
        return text
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"{path}: object key {_describe(key)} is not a string (JSON keys are strings)",
                    field=path,
                    code="not_canonicalisable",
                )
            key_text = _plain(key, f"{path} key {key!r}")
            out[key_text] = _plain(item, _child(path, key_text))
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise InvalidInput(
        f"{path}: {type(value).__name__} has no JSON form; use a string, number, boolean, null, list, object",
        field=path,
        code="not_canonicalisable",
    )


def ensure_canonicalisable(value: Any, path: str = "payload") -> Any:
    """Return ``value`` rebuilt from plain JSON types, or raise InvalidInput naming the field that has no
    canonical JSON form (NaN/Infinity, non-string keys, unsafe integers, lone surrogates, other types)."""
    return _plain(value, path)


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical JSON of a JSON object, as UTF-8 bytes.

    Keys are sorted by their UTF-16 code units, no whitespace, numbers in ECMAScript shortest form,
    strings escaped only where JSON requires it.
    """
    if not isinstance(payload, Mapping):
        raise InvalidInput(
            f"payload: must be a JSON object, got {type(payload).__name__}",
            field="payload",
            code="not_canonicalisable",
        )
    quick = _quick_canonical_json(payload)
    if quick is not None:
        return quick
    plain = _plain(payload, "payload")
    try:
        return rfc8785.dumps(plain)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - _plain rejects these first
        raise InvalidInput(f"payload: {exc}", field="payload", code="not_canonicalisable") from exc


def _quick_canonical_json(payload: Mapping[str, Any]) -> bytes | None:
    """RFC 8785 of a payload made only of ``dict`` objects with ASCII keys, lists, text, safe integers,
    booleans and null, written by the C JSON encoder; None for anything else (floats, other key texts,
    subclasses, a text with a lone surrogate), which the generic path writes or refuses.

    For these values the two agree byte for byte: keys sorted by code point are sorted by UTF-16 code units
    when they are ASCII; the encoder escapes exactly what JCS escapes (quote, backslash, U+0000-U+001F, with
    the short forms and lower-case ``\\u00xx``) and writes the rest as raw UTF-8; integers within +-(2^53 - 1)
    are written as JCS writes them. Floats are left out: ECMAScript and Python write many differently."""
    if type(payload) is not dict or not _jcs_ready(payload):
        return None
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the generic path names the field
        return None


def _jcs_ready(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER
    if kind is dict:
        return all(type(key) is str and key.isascii() and _jcs_ready(item) for key, item in value.items())
    if kind is list:
        return all(_jcs_ready(item) for item in value)
    return False


def payload_hash(payload: Mapping[str, Any]) -> bytes:
    """Return ``keccak256(canonical_json(payload))``, the 32-byte ``dataHash`` of an event payload."""
    return keccak256(canonical_json(payload))


# A text that JCS writes as it is between two quotes: no quote, backslash or control character (which it
# escapes) and no lone surrogate (which has no UTF-8 form: canonical_json refuses it).
_VERBATIM_TEXT = re.compile(r'[^"\\\x00-\x1f\ud800-\udfff]*')


def reading_leaf(reading: Mapping[str, Any]) -> bytes:
    """Return ``payload_hash(reading)`` for a sensor reading as validated, written without the generic
    canonicaliser: a Merkle leaf of a cold-chain batch (docs/hashing.md, section 5).

    A validated reading has a fixed shape, ``{"taken_at": str, "temperature_c": str}`` and optionally
    ``"humidity": str``, whose texts (an ISO date-time and decimal numbers) JCS writes verbatim; its members
    sort as ``humidity < taken_at < temperature_c``. For that shape the canonical bytes are put together
    directly; anything else (another key, a value that is not plain text, a text JCS would escape) is
    hashed the generic way, so the result is always byte for byte ``keccak256(canonical_json(reading))``.
    """
    size = len(reading)
    taken = reading.get("taken_at")
    temperature = reading.get("temperature_c")
    humidity = reading.get("humidity") if size == 3 else None
    if (
        type(taken) is str
        and type(temperature) is str
        and (size == 2 or (size == 3 and type(humidity) is str))
        and _VERBATIM_TEXT.fullmatch(taken)
        and _VERBATIM_TEXT.fullmatch(temperature)
    ):
        if humidity is None:
            return _keccak_bytes(f'{{"taken_at":"{taken}","temperature_c":"{temperature}"}}'.encode())
        if _VERBATIM_TEXT.fullmatch(humidity):
            text = f'{{"humidity":"{humidity}","taken_at":"{taken}","temperature_c":"{temperature}"}}'
            return _keccak_bytes(text.encode())
    return payload_hash(reading)


# --- salted commitments (hash scheme 2) ------------------------------------------------------------
#
# fieldSalt(name)      = keccak256(eventSalt || UTF-8(name))                   (eventSalt: 32 random bytes)
# commitment(name)     = keccak256(fieldSalt(name) || JCS({name: value}))
# dataHash             = keccak256(JCS({"public": {public fields}, "sealed": {name: commitment}, "v": 2}))
#
# The event salt never leaves the store; an audience that may see a field gets that field's salt, which
# opens its commitment and nothing else (keccak256 cannot be inverted to the event salt).


def field_salt(event_salt: bytes, name: str) -> bytes:
    """Return ``keccak256(eventSalt || UTF-8(name))``: the salt that opens one field's commitment."""
    salt = bytes32(event_salt, "salt")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"name: expected a field name, got {_describe(name)}", field="name")
    return keccak256(salt + _plain(name, "name").encode("utf-8"))


def field_commitment(salt: bytes, name: str, value: Any) -> bytes:
    """Return ``keccak256(fieldSalt || JCS({name: value}))``, the commitment to one field (name and value)."""
    return keccak256(bytes32(salt, "field_salt") + canonical_json({name: value}))


def salted_envelope(public: Mapping[str, Any], sealed: Mapping[str, bytes | str]) -> dict[str, Any]:
    """Return the JSON object a scheme-2 ``dataHash`` is the hash of (commitments as ``0x`` hex)."""
    return {
        "public": dict(public),
        "sealed": {name: hex32(bytes32(value, f"sealed.{name}")) for name, value in sealed.items()},
        "v": SCHEME_SALTED,
    }


def salted_payload_hash(public: Mapping[str, Any], sealed: Mapping[str, bytes | str]) -> bytes:
    """Return ``keccak256(JCS({"public": public, "sealed": {name: commitment}, "v": 2}))``, a scheme-2
    ``dataHash``: the public fields in clear, every other field as its salted commitment."""
    return keccak256(canonical_json(salted_envelope(public, sealed)))


# --- head-hash chain ------------------------------------------------------------------------------


def next_head(prev_head: bytes, kind: int, actor: str, data_hash: bytes) -> bytes:
    """Return ``keccak256(abi.encode(bytes32 prevHead, uint8 kind, address actor, bytes32 dataHash))``.

    abi.encode gives each value one 32-byte word: the two hashes as they are, ``kind`` and the 20-byte
    ``actor`` left-padded with zeros. The head commits to the order of events, so a reordered, removed or
    altered event changes every later head.
    """
    prev = prev_head if type(prev_head) is bytes and len(prev_head) == 32 else bytes32(prev_head, "prev_head")
    data = data_hash if type(data_hash) is bytes and len(data_hash) == 32 else bytes32(data_hash, "data_hash")
    word_kind = _KIND_WORDS.get(kind) if type(kind) is int else None
    if word_kind is None:
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 255:
            raise InvalidInput(f"kind: expected an integer 0..255, got {_describe(kind)}", field="kind")
        word_kind = int(kind).to_bytes(32, "big")
    word_actor = _ACTOR_WORDS.get(actor) if type(actor) is str else None
    if word_actor is None:
        word_actor = address_bytes(actor).rjust(32, b"\x00")
        if type(actor) is str and len(_ACTOR_WORDS) < _ACTOR_WORDS_MAX:
            _ACTOR_WORDS[actor] = word_actor
    return _keccak_bytes(prev + word_kind + word_actor + data)


_KIND_WORDS = {kind: kind.to_bytes(32, "big") for kind in range(256)}
"""The ABI word of each kind, 0..255 (``next_head`` writes one per event)."""
_ACTOR_WORDS: dict[str, bytes] = {}
"""The ABI word of each actor address met, keyed by the exact text (parsing it is a pure function of it)."""
_ACTOR_WORDS_MAX = 100_000


def head_chain(events: Iterable[tuple[int, str, bytes]], start: bytes = ZERO_HASH) -> list[bytes]:
    """Replay ``(kind, actor, data_hash)`` events from ``start`` and return the head after each one."""
    heads: list[bytes] = []
    head = start
    for kind, actor, data_hash in events:
        head = next_head(head, kind, actor, data_hash)
        heads.append(head)
    return heads


# --- Merkle tree for sensor readings --------------------------------------------------------------
#
# leaf node     = keccak256(0x00 || leaf)               (leaf = payload_hash(reading), 32 bytes)
# internal node = keccak256(0x01 || min(a, b) || max(a, b))   (byte-wise comparison: pairs are sorted)
# Levels are built left to right in the given leaf order; a level with an odd count promotes its last
# node unchanged. The prefixes keep a leaf from being passed off as an internal node; sorting the pair
# means a proof needs no left/right flags.


def _leaf_node(leaf: bytes) -> bytes:
    return _keccak_bytes(LEAF_PREFIX + leaf)


def _pair(a: bytes, b: bytes) -> bytes:
    return _keccak_bytes(NODE_PREFIX + a + b if a < b else NODE_PREFIX + b + a)


def _check_leaves(leaves: Sequence[bytes]) -> list[bytes]:
    if not leaves:
        raise InvalidInput("leaves: a Merkle root needs at least one leaf", field="leaves")
    return [
        leaf if type(leaf) is bytes and len(leaf) == 32 else bytes32(leaf, f"leaves[{i}]")
        for i, leaf in enumerate(leaves)
    ]


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    level = [_leaf_node(leaf) for leaf in _check_leaves(leaves)]
    levels = [level]
    while len(level) > 1:
        nxt = [_pair(a, b) for a, b in zip(level[0::2], level[1::2], strict=False)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle root of 32-byte leaves (each ``payload_hash`` of one reading), in the given order."""
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the sibling hashes from leaf ``index`` up to the root (promoted levels contribute none)."""
    levels = _levels(leaves)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(leaves):
        raise InvalidInput(f"index: must be 0..{len(leaves) - 1}, got {_describe(index)}", field="index")
    proof: list[bytes] = []
    position = index
    for level in levels[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        position //= 2
    return proof


def verify_merkle_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Return True when ``leaf`` with ``proof`` (from ``merkle_proof``) hashes up to ``root``."""
    try:
        node = _leaf_node(bytes32(leaf, "leaf"))
        for i, sibling in enumerate(proof):
            node = _pair(node, bytes32(sibling, f"proof[{i}]"))
        return node == bytes32(root, "root")
    except InvalidInput:
        return False
