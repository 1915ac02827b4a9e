"""EPCIS 2.0 export: a lot's history (optionally with its ancestors) as an EPCIS document (see the package
docstring and docs/epcis.md)."""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from supply_chain.domain.errors import LotlineError
from supply_chain.domain.events import Visibility, event_date, visible_view
from supply_chain.domain.kinds import CREATION_KINDS, EventKind
from supply_chain.services import lots as lot_service
from supply_chain.services.access import event_proof, level_for
from supply_chain.services.epcis import repository
from supply_chain.services.epcis.vocabulary import (
    BT_BY_WORD,
    BT_TYPES,
    CONTEXT,
    EVENT_ID_NAMESPACE,
    LOTLINE_NAMESPACE,
    OUTCOME_DISPOSITION,
    STEPS,
    UNIT_TO_UOM,
    gln_uri,
    lot_uri,
    parse_gln_uri,
)
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import (
    EpcisEvent,
    Event,
    Location,
    Lot,
    Organisation,
)
from supply_chain.store.queries import ancestors as ancestor_ids

# ================================================================== export


def _number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _quantity_element(gtin: str, lot_code: str, quantity: str | None, unit: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": lot_uri(gtin, lot_code)}
    if quantity is not None:
        element["quantity"] = _number(quantity)
        uom = UNIT_TO_UOM.get((unit or "").strip().lower())
        if uom:
            element["uom"] = uom
    return element


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z") or "+0000"
    return f"{text[:3]}:{text[3:5]}"


def event_time(value: str | None, fallback: datetime) -> tuple[str, str]:
    """(eventTime, eventTimeZoneOffset) for a normalised payload date or date-time (a date is 00:00 UTC)."""
    if value and "T" in value:
        moment = datetime.fromisoformat(value)
        return value, _offset(moment)
    if value:
        return f"{value}T00:00:00+00:00", "+00:00"
    moment = fallback.astimezone(UTC)
    return moment.isoformat(), "+00:00"


def _bt(gln: str | None, ref_type: str | None, number: str | None) -> dict[str, Any] | None:
    if not number:
        return None
    word = (ref_type or "").strip().lower()
    bt_type = BT_BY_WORD.get(word) or (word if word in BT_TYPES else None)
    owner = gln or "0000000000000"
    entry: dict[str, Any] = {"bizTransaction": f"urn:epcglobal:cbv:bt:{owner}:{quote(number, safe='')}"}
    if bt_type:
        entry["type"] = bt_type
    return entry


def _event_id(event: Event, lot: Lot) -> str:
    captured = (event.payload or {}).get("epcis_event_id")
    if isinstance(captured, str) and captured:
        return captured
    return "urn:uuid:" + str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{lot.lot_id}:{event.payload_hash}:{event.id}"))


def _ni(sha256_hex: str) -> str:
    """RFC 6920 named information URI of a SHA-256 digest (how EPCIS names a document by its hash)."""
    digest = base64.urlsafe_b64encode(bytes.fromhex(sha256_hex)).decode().rstrip("=")
    return f"ni:///sha-256;{digest}"


def _is_creation(lot: Lot, event: Event) -> bool:
    first = next((e for e in lot.events if e.status != "failed"), None)
    return first is not None and first.id == event.id and int(event.kind) in CREATION_KINDS


def export_event(event: Event, lot: Lot, level: Visibility) -> dict[str, Any]:
    """One Lotline event as an EPCIS 2.0 event (JSON-LD), showing the payload fields ``level`` may see."""
    kind = EventKind(int(event.kind))
    kde = visible_view(kind, event.payload or {}, level)
    captured_time = (event.payload or {}).get("epcis_event_time")
    when, offset = event_time(
        captured_time if isinstance(captured_time, str) else event_date(kind, event.payload or {}), event.occurred_at
    )
    step, disposition = STEPS[kind]
    out: dict[str, Any] = {
        "type": "TransformationEvent" if kind is EventKind.TRANSFORMATION else "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": offset,
        "eventID": _event_id(event, lot),
    }
    quantity = kde.get("quantity")
    this_lot = _quantity_element(lot.gtin, lot.lot_code, quantity, kde.get("unit") or lot.unit)
    if kind is EventKind.TRANSFORMATION:
        out["inputQuantityList"] = [
            _quantity_element(i["gtin"], i["lot_code"], i.get("quantity"), i.get("unit"))
            for i in kde.get("inputs", [])
            if isinstance(i, Mapping) and "gtin" in i and "lot_code" in i
        ] or [{"epcClass": lot_uri(e.input_lot.gtin, e.input_lot.lot_code)} for e in lot.inputs]
        out["outputQuantityList"] = [this_lot]
        if event.batch_id:
            out["transformationID"] = "urn:uuid:" + str(uuid.UUID(hex=event.batch_id))
    else:
        out["action"] = "DELETE" if kind is EventKind.CLOSE else ("ADD" if _is_creation(lot, event) else "OBSERVE")
        out["quantityList"] = [this_lot]
    if kind is EventKind.INSPECTION:
        disposition = OUTCOME_DISPOSITION.get(str(kde.get("outcome")))
    if step:
        out["bizStep"] = step
    if disposition:
        out["disposition"] = disposition
    here = kde.get("location_gln")
    if kind is EventKind.SHIPPING:
        here = kde.get("from_gln")
    elif kind is EventKind.RECEIVING:
        here = kde.get("to_gln")
    if here:
        out["readPoint"] = {"id": gln_uri(here)}
        if kind is not EventKind.SHIPPING:  # in transit after shipping: no business location
            out["bizLocation"] = {"id": gln_uri(here)}
    if kind in (EventKind.SHIPPING, EventKind.RECEIVING):
        if kde.get("from_gln"):
            out["sourceList"] = [{"type": "location", "source": gln_uri(kde["from_gln"])}]
        if kde.get("to_gln"):
            out["destinationList"] = [{"type": "location", "destination": gln_uri(kde["to_gln"])}]
    transactions = []
    bt = _bt(
        kde.get("from_gln") or kde.get("location_gln"),
        kde.get("reference_document_type"),
        kde.get("reference_document_number"),
    )
    if bt:
        transactions.append(bt)
    if kde.get("certificate_sha256"):
        transactions.append({"type": "testres", "bizTransaction": _ni(kde["certificate_sha256"])})
    if transactions:
        out["bizTransactionList"] = transactions
    if kind is EventKind.SENSOR_ANCHOR:
        out["sensorElementList"] = _sensor_elements(event, kde)
    out["lotline:cte"] = kind.name.lower()
    out["lotline:kde"] = kde
    out["lotline:payloadHash"] = event.payload_hash
    out["lotline:proof"] = {k: v for k, v in event_proof(event, level).items() if k != "data_hash"}
    out["lotline:status"] = event.status
    if event.seq is not None:
        out["lotline:seq"] = event.seq
    if event.tx_hash and event.status == "confirmed":
        out["lotline:txHash"] = event.tx_hash
    return out


def _temp(value: float | Decimal) -> int | float:
    return _number(lot_service.format_quantity_signed(Decimal(str(value))))


def _sensor_elements(event: Event, kde: Mapping[str, Any]) -> list[dict[str, Any]]:
    batch = event.sensor_batch
    device = {"lotline:sensorId": kde["sensor_id"]} if kde.get("sensor_id") else {}
    if batch is not None and batch.readings:
        elements = []
        for reading in batch.readings:
            report: list[dict[str, Any]] = [
                {"type": "Temperature", "value": _temp(reading.temperature_c), "uom": "CEL"}
            ]
            if reading.humidity is not None:
                report.append({"type": "RelativeHumidity", "value": _temp(reading.humidity), "uom": "P1"})
            elements.append({"sensorMetadata": {"time": reading.taken_at.isoformat()} | device, "sensorReport": report})
        return elements
    summary: dict[str, Any] = {"type": "Temperature", "uom": "CEL"}
    if kde.get("min_temperature_c") is not None:
        summary["minValue"] = _number(kde["min_temperature_c"])
    if kde.get("max_temperature_c") is not None:
        summary["maxValue"] = _number(kde["max_temperature_c"])
    metadata = {k: v for k, v in (("startTime", kde.get("period_start")), ("endTime", kde.get("period_end"))) if v}
    return [{"sensorMetadata": metadata | device, "sensorReport": [summary]}]


def export_lot(
    ctx: Ctx, lot: Lot, *, ancestors: bool = False, viewer: Organisation | None = None, include_failed: bool = False
) -> dict[str, Any]:
    """The lot's events (and, with ``ancestors``, those of every lot it was made from) as an EPCIS 2.0
    document, oldest first.

    A Lotline event written from a captured EPCIS event is exported as that event, exactly as it was
    captured (from the event repository, plus ``recordTime``; once, however many lots it touched), when the
    viewer may see it there (it captured it, or has oversight; the CLI always). Every other event is built
    from the lot model, its fields shown at the viewer's level (all of its own events, the consortium fields
    of others'); without a viewer (the CLI), at consortium level."""
    chain = [lot]
    if ancestors:
        ids = [i for i, _ in ancestor_ids(ctx.session, lot.id)]
        if ids:
            chain += list(ctx.session.scalars(select(Lot).where(Lot.id.in_(ids)).order_by(Lot.id)))
    rows = [(item, e) for item in chain for e in item.events if include_failed or e.status != "failed"]
    rows.sort(key=lambda pair: (pair[1].occurred_at, pair[1].seq or 10**12, pair[1].id))
    found = repository.originals(ctx, (e for _, e in rows))
    timed: list[tuple[datetime, int, dict[str, Any]]] = []  # (when, order, event)
    sent: dict[int, EpcisEvent] = {}  # stored originals already in the document (one EPCIS event, many lot events)
    for item, e in rows:
        original = found.get(e.id)
        if original is not None and (viewer is None or repository.may_see(viewer, original)):
            if original.id not in sent:
                sent[original.id] = original
                timed.append((e.occurred_at, len(timed), repository.exported(original)))
            continue
        timed.append(
            (
                e.occurred_at,
                len(timed),
                export_event(e, item, level_for(e, viewer) if viewer else Visibility.CONSORTIUM),
            )
        )
    # Events another organisation's capturer reported about these lots (stored, never applied to them): as
    # captured, marked ``lotline:reported``, each once, placed by their eventTime among the lots' events.
    reported = repository.reported_rows(ctx, viewer, {item.id: lot_uri(item.gtin, item.lot_code) for item in chain})
    reports = {row.id: row for found_rows in reported.values() for row in found_rows}
    for row in reports.values():
        sent.setdefault(row.id, row)
        timed.append((row.event_time, len(timed), repository.exported_report(row)))
    events = [event for *_, event in sorted(timed, key=lambda t: (t[0], t[1]))]
    document: dict[str, Any] = {
        "@context": repository.merged_context(list(sent.values()), CONTEXT),
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat(),
    }
    vocabularies = master_data(ctx, events, [e.actor for _, e in rows])
    if vocabularies:
        document["epcisHeader"] = {"epcisMasterData": {"vocabularyList": vocabularies}}
    document["epcisBody"] = {"eventList": events}
    return document


MDA = "urn:epcglobal:cbv:mda#"
LOCATION_VTYPE = "urn:epcglobal:epcis:vtype:BusinessLocation"
PARTY_VTYPE = "urn:epcglobal:epcis:vtype:Party"
ORGANISATION_ATTRIBUTE = LOTLINE_NAMESPACE + "organisation"
CHAIN_ADDRESS_ATTRIBUTE = LOTLINE_NAMESPACE + "chainAddress"
SITE_KIND_ATTRIBUTE = LOTLINE_NAMESPACE + "siteKind"
PARTY_ID_PREFIX = LOTLINE_NAMESPACE + "party:"
"""A Lotline organisation in the Party vocabulary: ``urn:lotline:epcis:party:{chain address}`` (it has no
PGLN of its own; the chain knows it by its address)."""


def _named_glns(event: Mapping[str, Any]) -> list[str]:
    uris: list[Any] = [(event.get(key) or {}).get("id") for key in ("readPoint", "bizLocation")]
    uris += [e.get("source") for e in event.get("sourceList") or [] if isinstance(e, Mapping)]
    uris += [e.get("destination") for e in event.get("destinationList") or [] if isinstance(e, Mapping)]
    out = []
    for uri in uris:
        if isinstance(uri, str):
            with contextlib.suppress(LotlineError):
                out.append(parse_gln_uri(uri, "id"))
    return out


def master_data(ctx: Ctx, events: list[dict[str, Any]], signers: Sequence[Organisation] = ()) -> list[dict[str, Any]]:
    """The header master data of an export: each registered location the events name (readPoint,
    bizLocation, source, destination) with what the consumer page shows of it - name, address, latitude,
    longitude, kind of site and its organisation (``views.place``) - and, in the Party vocabulary, those
    organisations by their chain address, with the ``signers`` of the events (whom the consumer page names
    for each step). Nothing the public page would not show; a GLN nobody registered is left out."""
    glns = list(dict.fromkeys(g for event in events for g in _named_glns(event)))
    locations = (
        list(
            ctx.session.scalars(
                select(Location)
                .where(Location.gln.in_(glns))
                .options(selectinload(Location.organisation))
                .order_by(Location.gln)
            )
        )
        if glns
        else []
    )
    elements = []
    parties: dict[str, Organisation] = {}
    for location in locations:
        owner = location.organisation
        attributes: list[dict[str, Any]] = [{"id": MDA + "name", "attribute": location.name}]
        if location.address:
            attributes.append({"id": MDA + "streetAddressOne", "attribute": location.address})
        if location.latitude is not None and location.longitude is not None:
            attributes.append({"id": MDA + "latitude", "attribute": str(location.latitude)})
            attributes.append({"id": MDA + "longitude", "attribute": str(location.longitude)})
        attributes.append({"id": SITE_KIND_ATTRIBUTE, "attribute": location.kind})
        attributes.append({"id": ORGANISATION_ATTRIBUTE, "attribute": owner.name})
        if owner.chain_address:
            attributes.append({"id": CHAIN_ADDRESS_ATTRIBUTE, "attribute": owner.chain_address})
            parties.setdefault(owner.chain_address, owner)
        elements.append({"id": gln_uri(location.gln), "attributes": attributes})
    for signer in signers:
        if signer.chain_address:
            parties.setdefault(signer.chain_address, signer)
    vocabularies = [{"type": LOCATION_VTYPE, "vocabularyElementList": elements}] if elements else []
    if parties:
        vocabularies.append(
            {
                "type": PARTY_VTYPE,
                "vocabularyElementList": [
                    {
                        "id": PARTY_ID_PREFIX + address,
                        "attributes": [
                            {"id": MDA + "name", "attribute": owner.name},
                            {"id": CHAIN_ADDRESS_ATTRIBUTE, "attribute": address},
                        ],
                    }
                    for address, owner in parties.items()
                ],
            }
        )
    return vocabularies
