"""What the event repository indexes of one EPCIS event, for the standard query parameters.

Pure functions of the event as captured (no database): the identifier rows (``epcis_event_epcs``: every EPC,
class, business transaction, source, destination, transformation ID, persistent disposition, error reason and
corrective event ID, each with its role), one row per sensor report (``epcis_sensor_reports``) and the time of
the event's error declaration. ``repository.store`` writes them at capture and migration 0020 wrote them for
the events stored before, with these same functions, so both give the same rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.identifiers import parse_gs1_uri, pattern_key
from supply_chain.services.epcis.identity import normal_epc
from supply_chain.services.epcis.vocabulary import bare_word

# the lists whose members are EPCs (MATCH_epc, MATCH_inputEPC, MATCH_outputEPC), the quantity lists (classes),
# and the typed lists (EQ_bizTransaction_{type}, EQ_source_{type}, EQ_destination_{type}): list -> role of
# their rows in epcis_event_epcs (the parent, parentID, is role "parent")
EPC_LISTS = (("epcList", "epc"), ("childEPCs", "epc"), ("inputEPCList", "in_epc"), ("outputEPCList", "out_epc"))
QUANTITY_LISTS = (
    ("quantityList", "class"),
    ("childQuantityList", "class"),
    ("inputQuantityList", "inclass"),
    ("outputQuantityList", "outclass"),
)
TYPED_LISTS = (
    ("bizTransactionList", "bizTransaction", "biztx", "btt"),
    ("sourceList", "source", "source", "sdt"),
    ("destinationList", "destination", "dest", "sdt"),
)
SUB_LOCATION = "/254/"
"""What follows a GLN's Digital Link for one of its sub-locations (GS1 AI 254, the SGLN extension). A
read point or business location that is a sub-location also gets a row naming the GLN it lies in (role
``rp_in``/``bl_in``): Lotline's location hierarchy, what ``WD_readPoint``/``WD_bizLocation`` follow."""
EPC_ROLES = ("epc", "in_epc", "out_epc", "parent")
"""The roles of instance-level identifiers: what ``/epcs`` lists and ``MATCH_anyEPC`` matches."""
CLASS_ROLES = ("class", "inclass", "outclass")
"""The roles of quantity elements (class-level identifiers, with their quantity)."""


@dataclass(frozen=True)
class Row:
    """One ``epcis_event_epcs`` row of an event."""

    role: str
    epc: str
    qualifier: str | None = None
    amount: float | None = None
    scheme: str | None = None
    pattern_key: str | None = None


def place(event: Mapping[str, Any], key: str) -> str | None:
    """The readPoint/bizLocation id, normalised (GS1 Digital Link where it has one)."""
    value = event.get(key)
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return normal_epc(value["id"])[:300]
    return None


def _keyed(role: str, value: str, **more: Any) -> Row:
    normal = normal_epc(value)[:500]
    scheme = key = None
    try:
        parsed = parse_gs1_uri(normal)
    except InvalidInput:
        parsed = None
    if parsed is not None:
        scheme, key = parsed.scheme, pattern_key(parsed)
    return Row(role, normal, scheme=scheme if key else None, pattern_key=key, **more)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def rows(event: Mapping[str, Any]) -> Iterable[Row]:
    """Every identifier row of the event, in the order of its lists."""
    for name, role in EPC_LISTS:
        for value in event.get(name) or []:
            if isinstance(value, str):
                yield _keyed(role, value)
    if isinstance(event.get("parentID"), str):
        yield _keyed("parent", event["parentID"])
    for name, role in QUANTITY_LISTS:
        for element in event.get(name) or []:
            if isinstance(element, Mapping) and isinstance(element.get("epcClass"), str):
                uom = element.get("uom")
                yield _keyed(
                    role,
                    element["epcClass"],
                    qualifier=uom[:300] if isinstance(uom, str) else None,
                    amount=_number(element.get("quantity")),
                )
    for name, key, role, kind in TYPED_LISTS:
        for element in event.get(name) or []:
            if isinstance(element, Mapping) and isinstance(element.get(key), str):
                kind_of = element.get("type")
                qualifier = bare_word(kind_of, kind)[:300] if isinstance(kind_of, str) else None
                yield Row(role, normal_epc(element[key])[:500], qualifier)
    for key, role in (("readPoint", "rp_in"), ("bizLocation", "bl_in")):
        where = place(event, key)
        if where and SUB_LOCATION in where:
            yield Row(role, where.split(SUB_LOCATION, 1)[0])
    if isinstance(event.get("transformationID"), str):
        yield Row("xform", normal_epc(event["transformationID"])[:500])
    persistent = event.get("persistentDisposition")
    if isinstance(persistent, Mapping):
        for name, role in (("set", "pd_set"), ("unset", "pd_unset")):
            for value in persistent.get(name) or []:
                if isinstance(value, str):
                    yield Row(role, (bare_word(value, "disp") or value)[:500])
    declared = event.get("errorDeclaration")
    if isinstance(declared, Mapping):
        if isinstance(declared.get("reason"), str):
            yield Row("err_why", (bare_word(declared["reason"], "er") or declared["reason"])[:500])
        for value in declared.get("correctiveEventIDs") or []:
            if isinstance(value, str):
                yield Row("fix_id", value[:500])


def moment(value: object) -> datetime | None:
    """An RFC 3339 date-time with its offset, or None."""
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().upper().replace("Z", "+00:00"))
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def error_declaration_time(event: Mapping[str, Any]) -> datetime | None:
    declared = event.get("errorDeclaration")
    return moment(declared.get("declarationTime")) if isinstance(declared, Mapping) else None


MEASUREMENT_TYPE_PREFIXES = ("gs1:", "https://gs1.org/voc/", "http://gs1.org/voc/")


def measurement_type(value: object) -> str | None:
    """A sensor report's type as its bare GS1 word (``Temperature`` from ``gs1:Temperature`` or
    ``https://gs1.org/voc/Temperature``), other URIs unchanged."""
    if not isinstance(value, str):
        return None
    for prefix in MEASUREMENT_TYPE_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


SENSOR_TEXTS = {
    "deviceID": "device_id",
    "dataProcessingMethod": "data_processing_method",
    "bizRules": "biz_rules",
    "microorganism": "microorganism",
    "chemicalSubstance": "chemical_substance",
    "stringValue": "string_value",
    "hexBinaryValue": "hex_binary_value",
    "uriValue": "uri_value",
}
"""Sensor attributes compared as text (EQ_{attribute}) -> column."""
SENSOR_NUMBERS = {
    "value": "value",
    "minValue": "min_value",
    "maxValue": "max_value",
    "meanValue": "mean_value",
    "sDev": "s_dev",
    "percRank": "perc_rank",
    "percValue": "perc_value",
}
"""Sensor attributes compared as numbers (EQ_/GT_/GE_/LT_/LE_{attribute}[_{uom}]) -> column."""


def sensor_text(attribute: str, value: str) -> str:
    """A text attribute as stored and compared: a deviceID normalised like any identifier, hexBinary in upper
    case (its case carries no meaning)."""
    if attribute == "deviceID":
        return normal_epc(value)[:500]
    if attribute == "hexBinaryValue":
        return value.upper()[:500]
    return value[:500]


def sensor_reports(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row (column -> value) per sensorReport of the event, its element's metadata folded in."""
    out = []
    for element in event.get("sensorElementList") or []:
        if not isinstance(element, Mapping):
            continue
        metadata = element.get("sensorMetadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        reports = [r for r in element.get("sensorReport") or [] if isinstance(r, Mapping)] or [{}]
        for report in reports:
            merged = {**metadata, **report}
            row: dict[str, Any] = {
                "type": (measurement_type(report.get("type")) or "")[:300] or None,
                "time": moment(merged.get("time")),
                "start_time": moment(metadata.get("startTime")),
                "end_time": moment(metadata.get("endTime")),
                "boolean_value": merged["booleanValue"] if isinstance(merged.get("booleanValue"), bool) else None,
                "uom": merged["uom"][:16] if isinstance(merged.get("uom"), str) else None,
            }
            for attribute, column in SENSOR_TEXTS.items():
                text = merged.get(attribute)
                row[column] = sensor_text(attribute, text) if isinstance(text, str) else None
            for attribute, column in SENSOR_NUMBERS.items():
                row[column] = _number(merged.get(attribute))
            out.append(row)
    return out
