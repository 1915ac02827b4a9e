"""Identity of EPCIS events: the CBV 2.0 event hash ID, and identifiers in one comparable form.

The event hash ID (CBV 2.0 section 8.9) is computed by ``epcis-event-hash-generator`` (the reference
implementation by the algorithm's authors): the event is expanded as JSON-LD, its fields are written in the
canonical order into the pre-hash string, with identifiers normalised to GS1 Digital Link and CBV words to
their URIs, and the SHA-256 of that string is ``ni:///sha-256;{hex}?ver=CBV2.0``.

JSON-LD expansion needs the documents named in ``@context``. Nothing is fetched over the network here: the
GS1 EPCIS 2.0 context (every published address of it) is served from the copy the package ships, and inline
context objects (user namespaces) need no fetching. A document naming any other remote context is refused
(``epcis_context_unavailable``), since its terms could not be expanded the way its author meant.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from epcis_event_hash_generator import JOIN_BY as DEFAULT_JOIN_BY
from epcis_event_hash_generator import (
    PROP_ORDER,
    dl_normaliser,
    hash_generator,
    json_to_py,
    json_xml_model_mismatch_correction,
)
from pyld import jsonld

from supply_chain.domain.errors import InvalidInput

_GS1_CONTEXT_FILE = "e532647e8eb371379b8b0e8602d8981c8566bc60f7351f22c76a5bc865962008.jsonld"
"""The EPCIS 2.0.0 JSON-LD context as shipped by epcis-event-hash-generator."""

GS1_CONTEXTS = (
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
    "https://gs1.github.io/EPCIS/epcis-context.jsonld",
    "https://gs1.github.io/EPCIS/epcis-context-simple.jsonld",
    "https://id.gs1.org/epcis-context.jsonld",
)
"""Addresses of GS1's EPCIS 2.0 context served from the local copy (the "simple" variant defines the same
terms for event data)."""


class ContextUnavailable(InvalidInput):
    """Raised when a document names a remote JSON-LD context other than GS1's EPCIS context."""

    code = "epcis_context_unavailable"


@cache
def _gs1_context() -> dict[str, Any]:
    text = importlib.resources.files("epcis_event_hash_generator").joinpath(_GS1_CONTEXT_FILE).read_text()
    return json.loads(text)


def _offline_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if url.rstrip("/") in GS1_CONTEXTS:
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": _gs1_context(),
        }
    raise ContextUnavailable(
        f"@context: {url} cannot be read here (only GS1's EPCIS context and inline context objects are "
        "understood); put the namespace prefixes in an inline object instead",
        field="@context",
    )


def _offline() -> None:
    # The package installs a loader that falls back to the network; replace it (the setting is global to pyld).
    jsonld.set_document_loader(_offline_loader)


def hash_ids(document: Mapping[str, Any]) -> list[str]:
    """The CBV 2.0 event hash ID of every event of a (schema-valid) EPCIS 2.0 JSON-LD document, in order.

    Raises ContextUnavailable for a remote context other than GS1's, InvalidInput if an event cannot be
    expanded (the message names ``@context``).
    """
    _offline()
    events = document["epcisBody"]["eventList"]
    if not events:
        return []
    for item in _context_list(document.get("@context")):
        if isinstance(item, str):
            _offline_loader(item)  # refuse an unknown remote context up front, naming it
    try:
        expanded = _event_list(_without_class_names(document))
        ids = hash_generator.calculate_hashes_from_pre_hashes(_prehashes(expanded))
    except InvalidInput:
        raise
    except Exception as exc:  # noqa: BLE001 - pyld and the generator raise many kinds; the sender gets a 400
        cause = getattr(exc, "cause", None)
        if isinstance(cause, InvalidInput):
            raise cause from None
        raise InvalidInput(
            f"@context: the events cannot be expanded as JSON-LD to compute their event hash IDs ({exc})"[:400],
            field="@context",
            code="epcis_jsonld_invalid",
        ) from None
    if len(ids) != len(events):  # pragma: no cover - the generator returns one hash per event
        raise InvalidInput("epcisBody.eventList: an event hash ID could not be computed", field="epcisBody.eventList")
    return [str(i) for i in ids]


def _event_list(document: dict[str, Any]) -> tuple[str, str, list[Any]]:
    """What ``json_to_py.event_list_from_epcis_document_json`` returns for ``document``, the same steps in the
    same order, less its three ``json.dumps(..., indent=2)`` of the whole document (and of its expansion) made
    for ``logging.debug`` messages whether or not debug logging is on: a fifth of the time the hash IDs took.
    ``tests/unit/test_epcis_identity.py`` compares the two on GS1's examples."""
    expanded = jsonld.expand(document)
    found: list[str] = []
    json_to_py._find_expanded_values(expanded, found)
    vocabulary_values = {
        x for x in found if x.startswith("https://ref.gs1.org/cbv") or x.startswith("https://gs1.org/voc")
    }
    document = json_to_py._replace_bare_string_values(document, vocabulary_values)
    if document.get("@context") is not None:
        json_to_py._collect_namespaces_from_jsonld_context(document["@context"])
    body = document["epcisBody"]
    event_list = body["eventList"] if "eventList" in body else [body["event"]]
    correct = json_xml_model_mismatch_correction.deep_structure_correction
    return ("EventList", "", [correct(json_to_py._json_to_py(event)) for event in event_list])


def _prehashes(events: tuple[str, str, list[Any]]) -> list[str]:
    """``hash_generator.derive_prehashes_from_events`` with the default separator, less its deep copy of the
    events (it consumes what it hashes; ``events`` is ``_event_list``'s fresh result, used for nothing else)."""
    hash_generator.JOIN_BY = DEFAULT_JOIN_BY  # what the generator's own entry point sets before hashing
    out = []
    for event in events[2]:
        try:
            out.append(
                "eventType="
                + event[0]
                + DEFAULT_JOIN_BY
                + hash_generator._recurse_through_children_in_order(event[2], PROP_ORDER)
                + DEFAULT_JOIN_BY
                + hash_generator._gather_elements_not_in_order(event[2], PROP_ORDER)
            )
        except Exception:  # noqa: BLE001, S112 - as the generator: an event it cannot hash is left out (then refused)
            continue
    return out


_SENSOR_ELEMENT_CLASS = {"SensorElement", "epcis:SensorElement", "https://ref.gs1.org/epcis/SensorElement"}


def _without_class_names(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the document with each sensor element's JSON-LD class name (``"type": "epcis:SensorElement"``)
    left out. The class name is how JSON-LD says what the object is; it is no field of the event (the XML
    binding has no place for it, and the canonical property order of CBV 2.0 section 8.9 has none), but the
    generator would hash it as if it were a user extension, so the same event sent with and without it, or
    once as JSON-LD and once as XML, would get two hash IDs."""
    copied = copy.deepcopy(dict(document))
    for event in copied.get("epcisBody", {}).get("eventList", []) or []:
        if not isinstance(event, dict):
            continue
        for element in event.get("sensorElementList", []) or []:
            if isinstance(element, dict) and element.get("type") in _SENSOR_ELEMENT_CLASS:
                del element["type"]
    return copied


def _context_list(context: object) -> Sequence[Any]:
    if isinstance(context, list):
        return context
    return [] if context is None else [context]


def normal_epc(value: str) -> str:
    """An identifier in the form queries compare: its GS1 Digital Link on ``id.gs1.org`` where it has one
    (an EPC URN, or a Digital Link on any resolver), otherwise the text as given."""
    try:
        normal = dl_normaliser.normaliser(value)
    except Exception:  # noqa: BLE001 - the normaliser raises on some odd text; the text stands for itself
        normal = None
    return normal or value
