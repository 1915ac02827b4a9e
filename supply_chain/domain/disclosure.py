"""Salted commitments: which fields of an event enter its ``dataHash`` in clear, and what each audience is
given to check the part of an event it may see against the chain (docs/hashing.md section 6).

Under hash scheme 2 a payload is split by field visibility (``events.visible_view``):

- ``public``: the public view of the payload (what the consumer page shows), hashed in clear;
- ``sealed``: one salted commitment per field that is not wholly public (a consortium or private field, or a
  field such as a transformation's ``inputs`` whose items are public only in part: its public part is in
  ``public``, its whole value behind the commitment).

``dataHash = keccak256(JCS({"public": public, "sealed": {name: commitment}, "v": 2}))``. Anyone holding the
public view and the commitments can recompute it; nobody can find a sealed value by trying candidates without
that field's salt, which is derived from a 32-byte random event salt kept off chain.

The split is part of the scheme: changing a field's visibility changes the ``dataHash`` of every event that
has it, so ``PUBLIC_FIELDS_V2`` (checked by a unit test) pins it; a change needs a new scheme number. Events
written under scheme 1 (no salt) keep ``dataHash = keccak256(JCS(payload))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidInput
from .events import KIND_SPECS, Visibility, public_view, visible_view
from .hashing import (
    HASH_SCHEMES,
    SCHEME_PLAIN,
    SCHEME_SALTED,
    bytes32,
    field_commitment,
    field_salt,
    hex32,
    payload_hash,
    salted_envelope,
    salted_payload_hash,
)
from .kinds import EventKind

PUBLIC_FIELDS_V2: dict[EventKind, frozenset[str]] = {
    kind: frozenset(f.name for f in spec.fields if f.visibility is Visibility.PUBLIC)
    for kind, spec in KIND_SPECS.items()
}
"""The fields of each kind that scheme 2 hashes in clear (the rest are sealed); pinned by a unit test."""

_MISSING = object()


def split(kind: EventKind | int | str, payload: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the public part hashed in clear, the names of the fields sealed behind a commitment), in key order.

    A field is sealed unless the public sees it whole: a transformation's ``inputs`` appears in the public
    part with each input's GTIN and lot code, and is sealed whole (with the quantities)."""
    public = public_view(kind, payload)
    sealed = sorted(name for name, value in payload.items() if name not in public or public[name] != value)
    return public, sealed


def commitments(kind: EventKind | int | str, payload: Mapping[str, Any], event_salt: bytes) -> dict[str, str]:
    """Every sealed field's commitment, ``name -> 0x…``."""
    _, sealed = split(kind, payload)
    return {name: hex32(field_commitment(field_salt(event_salt, name), name, payload[name])) for name in sealed}


def check_scheme(scheme: object, salt: object) -> int:
    """The scheme number, checked against the salt it needs (scheme 2) or must not have (scheme 1)."""
    if scheme not in HASH_SCHEMES:
        raise InvalidInput(f"hash_scheme: unknown scheme {scheme!r}", field="hash_scheme", code="invalid_hash")
    if (scheme == SCHEME_SALTED) != (salt is not None):
        raise InvalidInput(
            f"hash_scheme: scheme {scheme} {'needs' if scheme == SCHEME_SALTED else 'takes no'} salt",
            field="hash_scheme",
            code="invalid_hash",
        )
    return int(scheme)  # type: ignore[call-overload]


def data_hash(kind: EventKind | int | str, payload: Mapping[str, Any], scheme: int, salt: bytes | str | None) -> bytes:
    """The ``dataHash`` of a stored event: scheme 1 hashes the whole payload, scheme 2 the public part and
    the commitments to the rest."""
    if check_scheme(scheme, salt) == SCHEME_PLAIN:
        return payload_hash(payload)
    public, _ = split(kind, payload)
    return salted_payload_hash(public, commitments(kind, payload, bytes32(salt, "salt")))


def disclosure(
    kind: EventKind | int | str,
    payload: Mapping[str, Any],
    scheme: int,
    salt: bytes | str | None,
    level: Visibility,
) -> dict[str, Any]:
    """What an audience seeing ``visible_view(kind, payload, level)`` is given to check it against the chain.

    Scheme 2: the public part and every commitment (``dataHash`` is the hash of those two), and the salt of
    each sealed field the audience sees whole; never the event salt, nor the salt of a field it may not see.
    Scheme 1: only the scheme number (the whole payload is needed to re-hash it)."""
    if check_scheme(scheme, salt) == SCHEME_PLAIN:
        return {"scheme": SCHEME_PLAIN}
    event_salt = bytes32(salt, "salt")
    public, sealed = split(kind, payload)
    seen = visible_view(kind, payload, level)
    return {
        "scheme": SCHEME_SALTED,
        "public": public,
        "sealed": commitments(kind, payload, event_salt),
        "salts": {
            name: hex32(field_salt(event_salt, name)) for name in sealed if name in seen and seen[name] == payload[name]
        },
    }


def check_disclosure(fields: Mapping[str, Any], proof: Mapping[str, Any], expected: bytes | str) -> list[str]:
    """What does not hold when the ``fields`` an audience was shown are checked with their ``proof`` (from
    ``disclosure``) against ``expected``, the ``dataHash`` the chain logged; empty when everything holds.

    Needs no field table: the public part and the commitments hash to ``dataHash``, each public field shown
    equals the one hashed, and each opened field's salt, name and value give its commitment."""
    if proof.get("scheme") != SCHEME_SALTED:
        return [f"scheme {proof.get('scheme')!r}: only the whole payload re-hashes to the dataHash"]
    public, sealed, salts = proof.get("public"), proof.get("sealed"), proof.get("salts") or {}
    if not isinstance(public, Mapping) or not isinstance(sealed, Mapping) or not isinstance(salts, Mapping):
        return ["the proof needs public, sealed and salts objects"]
    problems = []
    try:
        recomputed = salted_payload_hash(public, sealed)
    except InvalidInput as exc:
        return [f"the proof does not canonicalise: {exc.message}"]
    if recomputed != bytes32(expected, "data_hash"):
        problems.append(f"public part and commitments hash to {hex32(recomputed)}, not {hex32(bytes32(expected))}")
    for name, value in fields.items():
        if name in salts:
            if name not in sealed or field_commitment(bytes32(salts[name]), name, value) != bytes32(sealed[name]):
                problems.append(f"{name}: its value and salt do not give its commitment")
        elif name in sealed and name not in public:
            problems.append(f"{name}: shown without the salt that opens its commitment")
        elif public.get(name, _MISSING) != value:
            problems.append(f"{name}: differs from the public part that was hashed in clear")
    return problems


def envelope(kind: EventKind | int | str, payload: Mapping[str, Any], salt: bytes | str) -> dict[str, Any]:
    """The JSON object a scheme-2 ``dataHash`` is the hash of (for documentation and tests)."""
    public, _ = split(kind, payload)
    return salted_envelope(public, commitments(kind, payload, bytes32(salt, "salt")))


def disclosed_hash(fields: Mapping[str, Any], proof: Mapping[str, Any]) -> bytes:
    """The ``dataHash`` that ``fields`` (part of an event's payload, as an export showed them) prove with their
    ``proof``: under scheme 2 the hash of the proof's public part and commitments, once every field shown is
    found to be that public part or to open its commitment; under scheme 1 the hash of ``fields`` (which must
    then be the whole payload). Raises InvalidInput naming what does not hold (a field edited since)."""
    if proof.get("scheme") == SCHEME_PLAIN:
        return payload_hash(fields)
    public, sealed = proof.get("public"), proof.get("sealed")
    if proof.get("scheme") != SCHEME_SALTED or not isinstance(public, Mapping) or not isinstance(sealed, Mapping):
        raise InvalidInput("disclosure: not a proof of scheme 1 or 2", field="disclosure", code="invalid_hash")
    claimed = salted_payload_hash(public, sealed)
    problems = check_disclosure(fields, proof, claimed)
    if problems:
        raise InvalidInput(f"disclosure: {'; '.join(problems)}", field="disclosure", code="invalid_hash")
    return claimed
