"""EPCIS header master data: the locations (and party GLNs) a document describes in
``epcisHeader.epcisMasterData.vocabularyList`` are registered as the capturing organisation's locations when
their GLN is under one of its GS1 company prefixes.

Vocabularies read: ``urn:epcglobal:epcis:vtype:BusinessLocation``, ``...:ReadPoint`` and ``...:Party`` (also in
their ``https://ref.gs1.org/epcis/vtype/`` form). Attributes read (CBV master data, ``urn:epcglobal:cbv:mda#``,
``cbvmda:`` or ``https://gs1.org/voc/``): ``name``, ``streetAddressOne``/``Two``/``Three``, ``city``, ``state``,
``postalCode``, ``countryCode`` (joined into the address), ``latitude``, ``longitude``. An element whose GLN
is not the capturer's, or is already registered, is left as it is and reported; a value breaking a rule (a
latitude of 100) refuses the document, naming the attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from supply_chain.domain import policy
from supply_chain.domain.errors import InvalidInput, LotlineError
from supply_chain.domain.identifiers import gln_has_prefix
from supply_chain.services import orgs
from supply_chain.services.epcis.vocabulary import parse_gln_uri
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Location, Organisation

LOCATION_VOCABULARIES = {
    "BusinessLocation": "other",
    "ReadPoint": "other",
    "Party": "other",
}
_VOCABULARY_PREFIXES = ("urn:epcglobal:epcis:vtype:", "https://ref.gs1.org/epcis/vtype/")
_ATTRIBUTE_PREFIXES = ("urn:epcglobal:cbv:mda#", "urn:epcglobal:cbv:mda:", "cbvmda:", "https://gs1.org/voc/", "gs1:")
_ADDRESS_PARTS = ("streetAddressOne", "streetAddressTwo", "streetAddressThree", "city", "state", "postalCode")


def _vocabulary_kind(value: Any) -> str | None:
    for prefix in _VOCABULARY_PREFIXES:
        if isinstance(value, str) and value.startswith(prefix) and value[len(prefix) :] in LOCATION_VOCABULARIES:
            return value[len(prefix) :]
    return None


def _attributes(element: Mapping[str, Any]) -> dict[str, tuple[int, Any]]:
    """Attribute name (without its vocabulary prefix) -> (its index, its value)."""
    out: dict[str, tuple[int, Any]] = {}
    for index, attribute in enumerate(element.get("attributes") or []):
        name = attribute.get("id") if isinstance(attribute, Mapping) else None
        for prefix in _ATTRIBUTE_PREFIXES:
            if isinstance(name, str) and name.startswith(prefix):
                out.setdefault(name[len(prefix) :], (index, attribute.get("attribute")))
    return out


def _number(attributes: dict[str, tuple[int, Any]], name: str, where: str) -> float | None:
    if name not in attributes:
        return None
    index, value = attributes[name]
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{where}.attributes[{index}] ({name}): {value!r} is not a number",
            field=f"{where}.attributes[{index}]",
            code="invalid_field",
        ) from None


def register_from_header(ctx: Ctx, org: Organisation, document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Register the header's locations that ``org`` owns and that are not registered yet; one result per
    location vocabulary element: ``registered``, ``known`` (already ``org``'s) or ``skipped`` (with the
    reason). Flushes, does not commit: the caller commits with the capture, or not at all."""
    header = document.get("epcisHeader") if isinstance(document, Mapping) else None
    vocabularies = ((header or {}).get("epcisMasterData") or {}).get("vocabularyList") or []
    results: list[dict[str, Any]] = []
    for v_index, vocabulary in enumerate(vocabularies):
        kind = _vocabulary_kind(vocabulary.get("type")) if isinstance(vocabulary, Mapping) else None
        if kind is None:
            continue
        for e_index, element in enumerate(vocabulary.get("vocabularyElementList") or []):
            where = f"epcisHeader.epcisMasterData.vocabularyList[{v_index}].vocabularyElementList[{e_index}]"
            results.append(_register(ctx, org, element, kind, where))
    return results


def _register(ctx: Ctx, org: Organisation, element: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    uri = element.get("id")
    result: dict[str, Any] = {"id": uri, "vocabulary": kind, "field": where}
    try:
        gln = parse_gln_uri(uri, f"{where}.id")
    except LotlineError as exc:
        return result | {"status": "skipped", "reason": exc.message}
    result["gln"] = gln
    location = ctx.session.scalars(select(Location).where(Location.gln == gln)).first()
    if location is not None:
        if location.organisation_id == org.id:
            return result | {"status": "known"}
        return result | {"status": "skipped", "reason": f"GLN {gln} is registered to {location.organisation.name}"}
    if not set(org.roles) & policy.HANDLER_ROLES:  # who may register a location (as POST /locations)
        roles = ", ".join(policy.ordered(policy.HANDLER_ROLES))
        return result | {"status": "skipped", "reason": f"{org.name} registers no locations (roles: {roles})"}
    prefixes = org.company_prefixes
    if not any(gln_has_prefix(gln, p) for p in prefixes):
        owned = ", ".join(prefixes) or "none"
        return result | {
            "status": "skipped",
            "reason": f"GLN {gln} is not under {org.name}'s GS1 company prefixes ({owned})",
        }
    attributes = _attributes(element)
    name = attributes.get("name", (0, None))[1]
    address = ", ".join(str(attributes[part][1]) for part in (*_ADDRESS_PARTS, "countryCode") if part in attributes)
    try:
        orgs.register_location(
            ctx,
            org,
            gln,
            str(name) if name else f"GLN {gln}",
            address or None,
            _number(attributes, "latitude", where),
            _number(attributes, "longitude", where),
            LOCATION_VOCABULARIES[kind],
        )
    except InvalidInput as exc:
        # name the attribute the value came from
        source = {"latitude": "latitude", "longitude": "longitude", "name": "name", "address": "streetAddressOne"}
        attribute = attributes.get(source.get(exc.field or "", ""), (None, None))[0]
        field = f"{where}.attributes[{attribute}]" if attribute is not None else where
        raise InvalidInput(f"{field}: {exc.message}", field=field, code=exc.code) from None
    return result | {"status": "registered"}
