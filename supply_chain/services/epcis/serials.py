"""Serial numbers to their lot: which lot one serialised pack (an SGTIN) belongs to, where the captured
EPCIS events tell it (docs/epcis.md, "Serial numbers and their lot").

Lotline traces lots; a partner's system often names packs by serial (``urn:epc:id:sgtin:...``, Digital Links
with ``/21/``). The event repository keeps every identifier an event names (``epcis_event_epcs``, in Digital
Link form, so a URN and a link of one pack match), which is the serial table this reads. A captured event ties
a serial to a lot when:

- the identifier itself names the lot (``/01/{gtin}/10/{lot}/21/{serial}``);
- its ``ilmd`` gives the lot number (``lotNumber``, ``cbvmda:lotNumber`` or GS1's web vocabulary URI) - an
  ObjectEvent ADD commissioning serials of a lot;
- its quantity lists name exactly one lot of the same GTIN (serials and their lot in one event).

A serial tied to two different lots by different events is ambiguous and maps to none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from supply_chain.domain.errors import InvalidInput, NotFound
from supply_chain.domain.identifiers import GS1Key, parse_gs1_uri, parse_lot_code
from supply_chain.services import lots as lot_service
from supply_chain.services.epcis.identity import normal_epc
from supply_chain.services.epcis.repository import EPC_ROLES
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import EpcisEvent, EpcisEventEpc, Lot

_LISTS = ("epcList", "childEPCs", "inputEPCList", "outputEPCList")
_CLASS_LISTS = ("quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList")
_LOT_NUMBER = ("lotNumber", "cbvmda:lotNumber", "gs1:lotNumber", "urn:epcglobal:cbv:mda#lotNumber")


def _key(text: object) -> GS1Key | None:
    try:
        return parse_gs1_uri(text, "epc") if isinstance(text, str) else None
    except InvalidInput:
        return None


def _lots_in(event: Mapping[str, Any], gtin: str, serial: str) -> set[str]:
    """The lot codes ``event`` ties the pack ``gtin``/``serial`` to."""
    found: set[str] = set()
    named = False
    for name in _LISTS:
        for text in event.get(name) or []:
            key = _key(text)
            if key is not None and key.scheme == "sgtin" and key.key == gtin and key.serial == serial:
                named = True
                if key.lot:
                    found.add(key.lot)
    parent = _key(event.get("parentID"))
    if parent is not None and parent.scheme == "sgtin" and parent.key == gtin and parent.serial == serial:
        named = True
    if not named:
        return found
    ilmd = event.get("ilmd")
    if isinstance(ilmd, Mapping):
        for name in _LOT_NUMBER:
            if isinstance(ilmd.get(name), str):
                with contextlib.suppress(InvalidInput):
                    found.add(parse_lot_code(ilmd[name]))
    classes = {
        key.lot
        for name in _CLASS_LISTS
        for element in event.get(name) or []
        if isinstance(element, Mapping)
        and (key := _key(element.get("epcClass"))) is not None
        and key.scheme == "lgtin"
        and key.key == gtin
        and key.lot
    }
    if len(classes) == 1:
        found |= classes
    return found


def lot_code_of(ctx: Ctx, gtin: str, serial: str) -> str | None:
    """The lot code the captured events tie pack ``gtin``/``serial`` to; None when none or several do."""
    epc = normal_epc(GS1Key("sgtin", gtin, serial=serial).digital_link())
    bodies = ctx.session.scalars(
        select(EpcisEvent.body)
        .join(EpcisEventEpc, EpcisEventEpc.event_pk == EpcisEvent.id)
        .where(
            EpcisEventEpc.epc == epc,
            EpcisEventEpc.role.in_(EPC_ROLES),
            EpcisEvent.state == "captured",
            EpcisEvent.declared_erroneous_by_id.is_(None),
        )
        .order_by(EpcisEvent.id)
    )
    lots: set[str] = set()
    for body in bodies:
        lots |= _lots_in(body, gtin, serial)
    return lots.pop() if len(lots) == 1 else None


def lot_of(ctx: Ctx, gtin: str, serial: str) -> Lot | None:
    """The lot of pack ``gtin``/``serial`` when the captured events tie it to one lot Lotline knows."""
    code = lot_code_of(ctx, gtin, serial)
    if code is None:
        return None
    try:
        return lot_service.get_lot(ctx, gtin, code)
    except (NotFound, InvalidInput):
        return None
