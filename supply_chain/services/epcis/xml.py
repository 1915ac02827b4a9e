"""EPCIS XML binding: read EPCIS 2.0 and 1.2 XML documents into the JSON-LD document the capture path takes,
and write a JSON-LD document (an export) as EPCIS 2.0 XML.

Reading (``document_from_xml``) is hardened before anything else looks at the bytes: no network, no DTD
loading, no entity expansion (a document declaring entities, an external DTD or an internal DTD subset is
refused: XXE and "billion laughs" never reach the parser's expansion), at most ``MAX_XML_ELEMENTS`` elements
nested at most ``MAX_XML_DEPTH`` deep. The document is then validated against the standard's XSD of its
version (``schemas/xsd-2.0/EPCglobal-epcis-2_0.xsd`` for namespace ``urn:epcglobal:epcis:xsd:2``,
``schemas/xsd-1.2/EPCglobal-epcis-1_2.xsd`` for ``urn:epcglobal:epcis:xsd:1``); a failure is
``epcis_schema_invalid`` naming the XSD rule, the line and the element. Only then is it converted.

The conversion follows the two bindings of the standard:

- event fields by name; the ``extension``/``baseExtension`` wrappers of EPCIS 1.2 (quantityList, ILMD,
  eventID, errorDeclaration, a TransformationEvent under ``EventList/extension``) are unwrapped, a 1.2
  QuantityEvent becomes an ObjectEvent with action OBSERVE and one quantityList element;
- CBV values: XML writes URNs (``urn:epcglobal:cbv:bizstep:shipping``), JSON-LD bare words (``shipping``);
  sensor types are kept as written (``gs1:Temperature``); a JSON bare sensor type is written ``gs1:...``;
- user extensions: an element in another namespace becomes a ``prefix:name`` member, its namespace goes
  into ``@context``; nested elements become objects, repeated elements arrays, text stays a string; an
  element with attributes becomes ``{"@value": text, attribute: value, ...}`` (``xsi:type`` is dropped);
- ``EPCISHeader/extension/EPCISMasterData`` becomes ``epcisHeader.epcisMasterData.vocabularyList``; the
  Standard Business Document Header has no JSON-LD counterpart and is not carried over.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from lxml import etree

from supply_chain.domain.errors import InvalidInput
from supply_chain.services.epcis.vocabulary import EPCIS_CONTEXT

NS_20 = "urn:epcglobal:epcis:xsd:2"
NS_12 = "urn:epcglobal:epcis:xsd:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})
EPCIS_XML_MEDIA = "application/xml"

MAX_XML_ELEMENTS = 100_000
"""Default for the most elements one document may hold (the API passes its body limit, ``MAX_JSON_ITEMS``)."""
MAX_XML_DEPTH = 100
"""Default for the deepest element nesting; an EPCIS event with sensor reports and extensions nests about ten
(the API passes ``MAX_JSON_DEPTH``)."""

SCHEMA_FILES = {
    NS_20: ("xsd-2.0", "EPCglobal-epcis-2_0.xsd", "2.0"),
    NS_12: ("xsd-1.2", "EPCglobal-epcis-1_2.xsd", "1.2"),
}

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")

# The prefixes the EPCIS 2.0 JSON-LD context defines; a JSON extension may use them without declaring them.
KNOWN_PREFIXES = {
    "gs1": "https://gs1.org/voc/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "epcis": "https://ref.gs1.org/epcis/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

# CBV fields: (JSON-LD member, URN vocabulary) - the URN prefix is urn:epcglobal:cbv:{vocabulary}:
_CBV_PREFIX = "urn:epcglobal:cbv:{}:"
_BARE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NCNAME = re.compile(r"^[^\W\d][\w.\-]*$")  # an XML name without a colon (close enough for JSON keys)

_BASE_FIELDS = ("eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "errorDeclaration", "certificationInfo")
_WHERE = ("bizStep", "disposition", "readPoint", "bizLocation")
_TAIL = ("sourceList", "destinationList", "sensorElementList", "persistentDisposition")
# The element order of each event type in the 2.0 XSD (after the base fields).
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "ObjectEvent": ("epcList", "action", *_WHERE, "bizTransactionList", "quantityList", *_TAIL, "ilmd"),
    "AggregationEvent": ("parentID", "childEPCs", "action", *_WHERE, "bizTransactionList", "childQuantityList", *_TAIL),
    "TransactionEvent": ("bizTransactionList", "parentID", "epcList", "action", *_WHERE, "quantityList", *_TAIL),
    "TransformationEvent": (
        "inputEPCList",
        "inputQuantityList",
        "outputEPCList",
        "outputQuantityList",
        "transformationID",
        *_WHERE,
        "bizTransactionList",
        *_TAIL,
        "ilmd",
    ),
    "AssociationEvent": ("parentID", "childEPCs", "childQuantityList", "action", *_WHERE, "bizTransactionList", *_TAIL),
}
STANDARD_FIELDS = frozenset(_BASE_FIELDS) | {f for fields in EVENT_FIELDS.values() for f in fields}
_EPC_LISTS = frozenset({"epcList", "childEPCs", "inputEPCList", "outputEPCList"})
_QUANTITY_LISTS = frozenset({"quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"})
_TEXT_FIELDS = frozenset({"eventTime", "recordTime", "eventTimeZoneOffset", "eventID", "action", "parentID"})
_TEXT_FIELDS |= {"transformationID", "certificationInfo"}
_SENSOR_NUMBERS = frozenset({"value", "minValue", "maxValue", "sDev", "meanValue", "percRank", "percValue"})


class XmlRefused(InvalidInput):
    """Raised when an XML body is malformed, hostile (DTD, entities) or too large to parse safely."""

    code = "malformed_xml"


# ================================================================== reading: hardened parse and XSD check


def _parser() -> etree.XMLParser:
    # One parser per call: lxml parsers are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_DTD_WITH_CONTENT = re.compile(rb"<!DOCTYPE[^>\[]*(?:\[|\bSYSTEM\b|\bPUBLIC\b)")


def _utf8_or_ascii(raw: bytes) -> bool:
    """EPCIS documents are UTF-8; a UTF-16/32 body could hide a DTD from the byte check above."""
    return not raw.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00", b"<\x00", b"\x00<")) and b"\x00" not in raw[:64]


def parse_xml(raw: bytes, *, max_elements: int = MAX_XML_ELEMENTS, max_depth: int = MAX_XML_DEPTH) -> etree._Element:
    """The root element of ``raw``: refused (400, field ``body``) when it is not well-formed XML, declares
    entities or a DTD with content, or holds more elements or deeper nesting than the limits."""
    if not raw.strip():
        raise XmlRefused("the request body is empty: send an EPCIS XML document", field="body", code="missing_body")
    if b"<!ENTITY" in raw or _DTD_WITH_CONTENT.search(raw) or not _utf8_or_ascii(raw):
        # Refused on the bytes, before the parser sees them; the tree is checked again below.
        raise XmlRefused(
            "the XML document declares a DTD with content (entities, an internal subset or an external "
            "reference) or is not UTF-8; DTDs and entities are not accepted",
            field="body",
            code="xml_dtd_forbidden",
        )
    try:
        tree = etree.fromstring(raw, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise XmlRefused(f"the request body is not well-formed XML: {exc}", field="body") from None
    info = tree.docinfo
    subset = info.internalDTD
    if info.system_url or info.public_id or (subset is not None and (subset.elements() or subset.entities())):
        # A bare <!DOCTYPE name> (GS1's own examples carry one) says nothing; a DTD with content or an
        # external reference is refused.
        raise XmlRefused(
            "the XML document carries a DTD (internal subset or external reference); DTDs and entities are "
            "not accepted",
            field="body",
            code="xml_dtd_forbidden",
        )
    root = tree.getroot()
    _check_size(root, max_elements, max_depth)
    return root


def _check_size(root: etree._Element, max_elements: int, max_depth: int) -> None:
    count = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        if count > max_elements:
            raise XmlRefused(
                f"the XML document holds more than {max_elements} elements; at most {max_elements} are "
                "accepted in one request: split it into several",
                field="body",
                code="body_too_many_items",
            )
        if depth > max_depth:
            raise XmlRefused(
                f"the XML document nests elements more than {max_depth} levels deep; at most {max_depth} "
                "levels are accepted",
                field="body",
                code="body_too_deep",
            )
        stack.extend((child, depth + 1) for child in element if isinstance(child.tag, str))


@cache
def xml_schema(namespace: str) -> etree.XMLSchema:
    """The standard's XSD for documents in ``namespace`` (2.0 or 1.2), loaded from the package."""
    folder, name, _ = SCHEMA_FILES[namespace]
    with resources.as_file(resources.files("supply_chain.services").joinpath(f"schemas/{folder}/{name}")) as path:
        return etree.XMLSchema(etree.parse(str(path), _parser()))


def schema_version(root: etree._Element) -> str:
    """'2.0' or '1.2' from the root element's namespace; InvalidInput for anything but an EPCISDocument."""
    qname = etree.QName(root)
    if qname.localname != "EPCISDocument" or qname.namespace not in SCHEMA_FILES:
        raise InvalidInput(
            f"the XML root element is {{{qname.namespace or ''}}}{qname.localname}; an EPCIS document's root is "
            f"EPCISDocument in namespace {NS_20} (EPCIS 2.0) or {NS_12} (EPCIS 1.2)",
            field="(document)",
            code="epcis_schema_invalid",
        )
    return SCHEMA_FILES[qname.namespace][2]


def validate_xml(root: etree._Element) -> str:
    """Check ``root`` against the XSD of its EPCIS version; the version, or InvalidInput naming the XSD rule
    broken, its line and element (``field`` is the element's path)."""
    version = schema_version(root)
    schema = xml_schema(etree.QName(root).namespace)
    if schema.validate(root):
        return version
    errors = list(schema.error_log)
    first = errors[0]
    more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise InvalidInput(
        f"EPCIS {version} XML schema: line {first.line}, {first.path}: {first.message}{more}",
        field=first.path or "(document)",
        code="epcis_schema_invalid",
    )


def document_from_xml(
    raw: bytes, *, max_elements: int = MAX_XML_ELEMENTS, max_depth: int = MAX_XML_DEPTH
) -> dict[str, Any]:
    """The JSON-LD EPCIS 2.0 document equal to the EPCIS 2.0 or 1.2 XML document ``raw`` (parsed with the
    limits above and validated against its XSD first)."""
    root = parse_xml(raw, max_elements=max_elements, max_depth=max_depth)
    validate_xml(root)
    return _Reader().document(root)


# ================================================================== reading: XML -> JSON-LD


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _is_standard(element: etree._Element) -> bool:
    """An element of the EPCIS binding itself: unqualified (the XSDs say elementFormDefault unqualified)."""
    return isinstance(element.tag, str) and etree.QName(element).namespace is None


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


def _number(text: str) -> int | float:
    value = Decimal(text.strip())
    return int(value) if value == value.to_integral_value() and "e" not in text.lower() else float(value)


def _bare(value: str, vocabulary: str) -> str:
    """A CBV URN as the bare word JSON-LD uses; anything else unchanged."""
    prefix = _CBV_PREFIX.format(vocabulary)
    if value.startswith(prefix) and _BARE.match(value[len(prefix) :]):
        return value[len(prefix) :]
    return value


class _Reader:
    """One conversion: collects the namespaces the extensions use, for the document's ``@context``."""

    def __init__(self) -> None:
        self.prefixes: dict[str, str] = {}  # prefix -> namespace
        self._by_namespace: dict[str, str] = {}

    def document(self, root: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"@context": [EPCIS_CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0"}
        out["creationDate"] = root.get("creationDate")
        header = root.find("EPCISHeader")
        if header is not None:
            vocabularies = header.find("extension/EPCISMasterData/VocabularyList")
            if vocabularies is not None:
                out["epcisHeader"] = {
                    "epcisMasterData": {"vocabularyList": [self._vocabulary(v) for v in vocabularies]}
                }
        events: list[dict[str, Any]] = []
        event_list = root.find("EPCISBody/EventList")
        for element in event_list if event_list is not None else ():
            events.extend(self._events(element))
        out["epcisBody"] = {"eventList": events}
        for child in root:
            if isinstance(child.tag, str) and not _is_standard(child):
                self._put(out, child)
        if self.prefixes:
            out["@context"].append(dict(self.prefixes))
        return out

    # ------------------------------------------------------------------ master data

    def _vocabulary(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"type": element.get("type")}
        items = []
        for item in element.iterfind("VocabularyElementList/VocabularyElement"):
            entry: dict[str, Any] = {"id": item.get("id")}
            attributes = [
                {"id": a.get("id"), "attribute": self._attribute_value(a)} for a in item.iterfind("attribute")
            ]
            if attributes:
                entry["attributes"] = attributes
            children = [_text(c) for c in item.iterfind("children/id")]
            if children:
                entry["children"] = children
            items.append(entry)
        out["vocabularyElementList"] = items
        return out

    def _attribute_value(self, element: etree._Element) -> Any:
        if len([c for c in element if isinstance(c.tag, str)]) == 0:
            return _text(element)
        return self._children(element)

    # ------------------------------------------------------------------ events

    def _events(self, element: etree._Element) -> Iterator[dict[str, Any]]:
        name = _local(element)
        if name == "extension":  # 1.2: TransformationEvent (and future types) under EventList/extension
            for child in element:
                if isinstance(child.tag, str) and _is_standard(child):
                    yield from self._events(child)
            return
        if name == "QuantityEvent":  # 1.2, removed in 2.0: an ObjectEvent OBSERVE of a quantity
            yield self._quantity_event(element)
            return
        event: dict[str, Any] = {"type": name}
        self._fields(event, element)
        if name == "TransactionEvent":
            # optional in the 2.0 XSD, required by the JSON Schema: an absent list is an empty one
            event.setdefault("epcList", [])
        yield event

    def _quantity_event(self, element: etree._Element) -> dict[str, Any]:
        event: dict[str, Any] = {"type": "ObjectEvent"}
        quantity: dict[str, Any] = {}
        rest = []
        for child in element:
            if _is_standard(child) and _local(child) == "epcClass":
                quantity["epcClass"] = _text(child)
            elif _is_standard(child) and _local(child) == "quantity":
                quantity["quantity"] = _number(_text(child))
            else:
                rest.append(child)
        holder = etree.Element("holder")
        for child in rest:
            holder.append(child)
        self._fields(event, holder)
        event["action"] = "OBSERVE"
        event["quantityList"] = [quantity]
        return event

    def _fields(self, event: dict[str, Any], element: etree._Element) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if not _is_standard(child):
                self._put(event, child)
                continue
            name = _local(child)
            if name in ("extension", "baseExtension"):  # 1.2 wrappers; 2.0 keeps baseExtension for ##other
                self._fields(event, child)
            elif name in _TEXT_FIELDS:
                event[name] = _text(child)
            elif name == "bizStep":
                event[name] = _bare(_text(child), "bizstep")
            elif name == "disposition":
                event[name] = _bare(_text(child), "disp")
            elif name in _EPC_LISTS:
                event[name] = [_text(epc) for epc in child.iterfind("epc")]
            elif name in _QUANTITY_LISTS:
                event[name] = [self._quantity(q) for q in child.iterfind("quantityElement")]
            elif name in ("readPoint", "bizLocation"):
                event[name] = self._place(child)
            elif name == "bizTransactionList":
                event[name] = [
                    ({"type": _bare(bt.get("type"), "btt")} if bt.get("type") else {}) | {"bizTransaction": _text(bt)}
                    for bt in child.iterfind("bizTransaction")
                ]
            elif name in ("sourceList", "destinationList"):
                key = name.removesuffix("List")
                event[name] = [{"type": _bare(s.get("type"), "sdt"), key: _text(s)} for s in child.iterfind(key)]
            elif name == "sensorElementList":
                event[name] = [self._sensor_element(s) for s in child.iterfind("sensorElement")]
            elif name == "persistentDisposition":
                disposition: dict[str, list[str]] = {}
                for part in child:
                    if isinstance(part.tag, str):
                        disposition.setdefault(_local(part), []).append(_bare(_text(part), "disp"))
                event[name] = {k: disposition[k] for k in ("set", "unset") if k in disposition}
            elif name == "ilmd":
                event[name] = self._children(child)
            elif name == "errorDeclaration":
                event[name] = self._error_declaration(child)
            # anything else unqualified is only what the XSDs allow under ##local extension points, which
            # the 2.0 JSON-LD binding has no member for.

    def _quantity(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"epcClass": _text(element.find("epcClass"))}
        quantity = element.find("quantity")
        if quantity is not None and _text(quantity):
            out["quantity"] = _number(_text(quantity))
        uom = element.find("uom")
        if uom is not None:
            out["uom"] = _text(uom)
        return out

    def _place(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"id": _text(element.find("id"))}
        for child in element:
            if isinstance(child.tag, str) and not _is_standard(child):
                self._put(out, child)
        return out

    def _error_declaration(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if not _is_standard(child):
                self._put(out, child)
            elif _local(child) == "declarationTime":
                out["declarationTime"] = _text(child)
            elif _local(child) == "reason":
                out["reason"] = _bare(_text(child), "er")
            elif _local(child) == "correctiveEventIDs":
                out["correctiveEventIDs"] = [_text(c) for c in child.iterfind("correctiveEventID")]
        return out

    def _sensor_element(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        metadata = element.find("sensorMetadata")
        if metadata is not None:
            out["sensorMetadata"] = self._attributes(metadata)
        out["sensorReport"] = [self._attributes(r) for r in element.iterfind("sensorReport")]
        for child in element:
            if isinstance(child.tag, str) and not _is_standard(child):
                self._put(out, child)
        return out

    def _attributes(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in element.attrib.items():
            qname = etree.QName(name)
            if qname.namespace == XSI:
                continue
            if qname.namespace:
                out[self._key(qname.namespace, qname.localname, element)] = value
            elif name in _SENSOR_NUMBERS:
                out[name] = _number(value)
            elif name == "booleanValue":
                out[name] = value.strip() in ("true", "1")
            else:
                out[name] = value
        return out

    # ------------------------------------------------------------------ user extensions

    def _key(self, namespace: str, localname: str, element: etree._Element) -> str:
        prefix = self._by_namespace.get(namespace)
        if prefix is None:
            wanted = next((p for p, ns in (element.nsmap or {}).items() if ns == namespace and p), None)
            if (
                not wanted
                or wanted in self.prefixes
                or (wanted in KNOWN_PREFIXES and KNOWN_PREFIXES[wanted] != namespace)
            ):
                wanted = next(f"ns{n}" for n in range(1, 10_000) if f"ns{n}" not in self.prefixes)
            if KNOWN_PREFIXES.get(wanted) != namespace:
                self.prefixes[wanted] = namespace
            self._by_namespace[namespace] = prefix = wanted
        return f"{prefix}:{localname}"

    def _name(self, element: etree._Element) -> str:
        qname = etree.QName(element)
        return self._key(qname.namespace, qname.localname, element) if qname.namespace else qname.localname

    def _value(self, element: etree._Element) -> Any:
        children = [c for c in element if isinstance(c.tag, str)]
        attributes = {
            (
                self._key(etree.QName(k).namespace, etree.QName(k).localname, element)
                if etree.QName(k).namespace
                else k
            ): v
            for k, v in element.attrib.items()
            if etree.QName(k).namespace != XSI
        }
        if children:
            return self._children(element)
        text = element.text or ""
        if attributes:
            return {"@value": text} | attributes
        return text

    def _children(self, element: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in element:
            if isinstance(child.tag, str):
                self._put(out, child)
        return out

    def _put(self, target: dict[str, Any], element: etree._Element) -> None:
        """Add ``element`` to ``target``; a repeated element makes an array (``_value`` never returns one)."""
        key, value = self._name(element), self._value(element)
        if key not in target:
            target[key] = value
        elif isinstance(target[key], list):
            target[key].append(value)
        else:
            target[key] = [target[key], value]


# ================================================================== writing: JSON-LD -> XML 2.0


class _Writer:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.namespaces: dict[str, str] = dict(KNOWN_PREFIXES)
        for entry in _context_entries(document.get("@context")):
            self.namespaces.update({k: v for k, v in entry.items() if isinstance(v, str)})
        self.used: dict[str, str] = {}

    def qname(self, key: str) -> str:
        prefix, sep, local = key.partition(":")
        if not _NCNAME.match(local if sep else key):
            raise InvalidInput(
                f"{key}: not writable as an XML element or attribute name (the XML binding needs an NCName)",
                field=key,
                code="epcis_schema_invalid",
            )
        if not sep:
            return key
        namespace = self.namespaces.get(prefix)
        if namespace is None:
            raise InvalidInput(
                f"{key}: the prefix {prefix!r} is not declared in @context, so it has no XML namespace",
                field=key,
                code="epcis_schema_invalid",
            )
        self.used[prefix] = namespace
        return f"{{{namespace}}}{local}"

    def extension(self, parent: etree._Element, key: str, value: Any) -> None:
        tag = self.qname(key)
        for item in value if isinstance(value, list) else [value]:
            element = etree.SubElement(parent, tag)
            self._fill(element, item)

    def _fill(self, element: etree._Element, value: Any) -> None:
        if isinstance(value, Mapping):
            if "@value" in value:
                element.text = _scalar(value["@value"])
                for k, v in value.items():
                    if k != "@value":
                        element.set(self.qname(k), _scalar(v))
                return
            for k, v in value.items():
                self.extension(element, k, v)
        elif isinstance(value, list):  # a list inside a list: one wrapper element per inner list
            for item in value:
                self._fill(etree.SubElement(element, element.tag), item)
        else:
            element.text = _scalar(value)

    def document(self, document: Mapping[str, Any]) -> etree._Element:
        root = etree.Element(f"{{{NS_20}}}EPCISDocument")
        root.set("schemaVersion", "2.0")
        root.set("creationDate", str(document.get("creationDate")))
        master = ((document.get("epcisHeader") or {}).get("epcisMasterData") or {}).get("vocabularyList")
        if master:
            vocabularies = _sub(_sub(_sub(_sub(root, "EPCISHeader"), "extension"), "EPCISMasterData"), "VocabularyList")
            for vocabulary in master:
                self._vocabulary(vocabularies, vocabulary)
        events = _sub(_sub(root, "EPCISBody"), "EventList")
        for index, event in enumerate((document.get("epcisBody") or {}).get("eventList") or []):
            self._event(events, event, index)
        for key, value in document.items():
            if ":" in key and not key.startswith("@"):
                self.extension(root, key, value)
        return root

    def _vocabulary(self, parent: etree._Element, vocabulary: Mapping[str, Any]) -> None:
        element = _sub(parent, "Vocabulary")
        element.set("type", vocabulary["type"])
        items = vocabulary.get("vocabularyElementList") or []
        if items:
            listing = _sub(element, "VocabularyElementList")
            for item in items:
                entry = _sub(listing, "VocabularyElement")
                entry.set("id", item["id"])
                for attribute in item.get("attributes") or []:
                    node = _sub(entry, "attribute")
                    node.set("id", attribute["id"])
                    value = attribute.get("attribute")
                    if isinstance(value, Mapping):
                        for k, v in value.items():
                            self.extension(node, k, v)
                    elif value is not None:
                        node.text = _scalar(value)
                if item.get("children"):
                    children = _sub(entry, "children")
                    for child in item["children"]:
                        _sub(children, "id").text = child

    def _event(self, parent: etree._Element, event: Mapping[str, Any], index: int) -> None:
        kind = event.get("type")
        if kind not in EVENT_FIELDS:
            raise InvalidInput(
                f"epcisBody.eventList[{index}].type: {kind!r} is not an EPCIS 2.0 event type",
                field=f"epcisBody.eventList[{index}].type",
                code="epcis_schema_invalid",
            )
        element = _sub(parent, kind)
        for name in (*_BASE_FIELDS, *EVENT_FIELDS[kind]):
            if name in event:
                self._field(element, name, event[name], index)
        for key, value in event.items():
            if key not in STANDARD_FIELDS and key != "type" and not key.startswith("@"):
                if ":" not in key:
                    raise InvalidInput(
                        f"epcisBody.eventList[{index}].{key}: not an EPCIS field of a {kind}, and not an "
                        "extension (prefix:name)",
                        field=f"epcisBody.eventList[{index}].{key}",
                        code="epcis_schema_invalid",
                    )
                self.extension(element, key, value)

    def _field(self, parent: etree._Element, name: str, value: Any, index: int) -> None:
        if name == "certificationInfo":
            values = value if isinstance(value, list) else [value]
            if len(values) != 1:
                raise InvalidInput(
                    f"epcisBody.eventList[{index}].certificationInfo: the XML binding holds one certificationInfo "
                    f"per event, this event has {len(values)}",
                    field=f"epcisBody.eventList[{index}].certificationInfo",
                    code="epcis_schema_invalid",
                )
            _sub(parent, name).text = values[0]
        elif name in _TEXT_FIELDS:
            _sub(parent, name).text = str(value)
        elif name == "bizStep":
            _sub(parent, name).text = _urn(value, "bizstep")
        elif name == "disposition":
            _sub(parent, name).text = _urn(value, "disp")
        elif name in _EPC_LISTS:
            listing = _sub(parent, name)
            for epc in value:
                _sub(listing, "epc").text = epc
        elif name in _QUANTITY_LISTS:
            listing = _sub(parent, name)
            for quantity in value:
                element = _sub(listing, "quantityElement")
                _sub(element, "epcClass").text = quantity["epcClass"]
                if "quantity" in quantity:
                    _sub(element, "quantity").text = _decimal(quantity["quantity"])
                    if "uom" in quantity:
                        _sub(element, "uom").text = quantity["uom"]
        elif name in ("readPoint", "bizLocation"):
            element = _sub(parent, name)
            _sub(element, "id").text = value["id"]
            for key, extra in value.items():
                if key != "id":
                    self.extension(element, key, extra)
        elif name == "bizTransactionList":
            listing = _sub(parent, name)
            for bt in value:
                element = _sub(listing, "bizTransaction")
                element.text = bt["bizTransaction"]
                if bt.get("type"):
                    element.set("type", _urn(bt["type"], "btt"))
        elif name in ("sourceList", "destinationList"):
            key = name.removesuffix("List")
            listing = _sub(parent, name)
            for item in value:
                element = _sub(listing, key)
                element.text = item[key]
                element.set("type", _urn(item["type"], "sdt"))
        elif name == "sensorElementList":
            listing = _sub(parent, name)
            for sensor in value:
                self._sensor_element(listing, sensor)
        elif name == "persistentDisposition":
            element = _sub(parent, name)
            for part in ("unset", "set"):
                for disposition in value.get(part) or []:
                    _sub(element, part).text = _urn(disposition, "disp")
        elif name == "ilmd":
            element = _sub(parent, name)
            for key, extra in value.items():
                self.extension(element, key, extra)
        elif name == "errorDeclaration":
            element = _sub(parent, name)
            if "declarationTime" in value:
                _sub(element, "declarationTime").text = value["declarationTime"]
            if value.get("reason"):
                _sub(element, "reason").text = _urn(value["reason"], "er")
            if value.get("correctiveEventIDs"):
                ids = _sub(element, "correctiveEventIDs")
                for event_id in value["correctiveEventIDs"]:
                    _sub(ids, "correctiveEventID").text = event_id
            for key, extra in value.items():
                if key not in ("declarationTime", "reason", "correctiveEventIDs"):
                    self.extension(element, key, extra)

    def _sensor_element(self, parent: etree._Element, sensor: Mapping[str, Any]) -> None:
        element = _sub(parent, "sensorElement")
        if "sensorMetadata" in sensor:
            self._sensor_attributes(_sub(element, "sensorMetadata"), sensor["sensorMetadata"])
        for report in sensor.get("sensorReport") or []:
            self._sensor_attributes(_sub(element, "sensorReport"), report, report=True)
        for key, value in sensor.items():
            if key not in ("sensorMetadata", "sensorReport", "type"):
                self.extension(element, key, value)

    def _sensor_attributes(self, element: etree._Element, values: Mapping[str, Any], report: bool = False) -> None:
        for key, value in values.items():
            if report and key == "type" and isinstance(value, str) and ":" not in value:
                value = f"gs1:{value}"  # the JSON-LD context's vocabulary for measurement types
            element.set(self.qname(key) if ":" in key else key, _scalar(value))


def _context_entries(context: Any) -> Iterable[Mapping[str, Any]]:
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, Mapping):
            yield entry


def _sub(parent: etree._Element, tag: str) -> etree._Element:
    return etree.SubElement(parent, tag)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _decimal(value)
    return "" if value is None else str(value)


def _decimal(value: Any) -> str:
    try:
        text = format(Decimal(str(value)), "f")
    except InvalidOperation:
        return str(value)
    return text


def _urn(value: str, vocabulary: str) -> str:
    """A bare CBV word as the URN the XML binding uses; a URI unchanged."""
    return _CBV_PREFIX.format(vocabulary) + value if _BARE.match(value) else value


def document_to_xml(document: Mapping[str, Any]) -> bytes:
    """``document`` (JSON-LD EPCIS 2.0) as EPCIS 2.0 XML, UTF-8 with an XML declaration."""
    writer = _Writer(document)
    root = writer.document(document)
    nsmap = {"epcis": NS_20} | {p: ns for p, ns in sorted(writer.used.items())}
    # Rebuild the root with the namespaces declared once on it (lxml keeps child declarations otherwise).
    tidy = etree.Element(root.tag, attrib=dict(root.attrib), nsmap=nsmap)
    tidy.extend(list(root))
    etree.cleanup_namespaces(tidy, top_nsmap=nsmap)
    return etree.tostring(tidy, xml_declaration=True, encoding="UTF-8", pretty_print=True)
