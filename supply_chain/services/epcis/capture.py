"""EPCIS 2.0 capture: validate a document, plan every event on a simulated state with the rulebook, rehearse
the writes, then record them (see the package docstring)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select

from supply_chain.chain.ledger import Call
from supply_chain.domain import policy
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, LotlineError, NotFound
from supply_chain.domain.events import kind_spec, validate_payload
from supply_chain.domain.hashing import bytes32, hex32, merkle_root, reading_leaf
from supply_chain.domain.identifiers import (
    lot_id,
)
from supply_chain.domain.kinds import CREATION_KINDS, FREE_KINDS, EventKind
from supply_chain.domain.lineage import check_consumption, format_quantity, parse_quantity
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services.epcis import chainmatch, repository
from supply_chain.services.epcis.vocabulary import (
    BT_TYPES,
    UOM_TO_UNIT,
    Unsupported,
    bare_word,
    parse_gln_uri,
    parse_lot_uri,
    validate_document,
)
from supply_chain.services.runtime import Ctx
from supply_chain.services.writes import execute
from supply_chain.store.models import (
    Event,
    Location,
    Lot,
    LotInput,
    Organisation,
    Product,
)

MAX_CALLS_PER_TRANSACTION = 40
"""A createLot costs about 103k gas inside a multicall; 40 calls stay well under a 10M gas limit."""

_CREATOR_ROLES = policy.ordered(policy.CREATOR_ROLES)
_RECEIVING_ROLES = policy.ordered(policy.RECEIVING_ROLES)

_CREATION_BY_STEP = {
    "commissioning": EventKind.HARVESTING,
    "packing": EventKind.INITIAL_PACKING,
    "receiving": EventKind.FIRST_LAND_BASED_RECEIVING,
    "arriving": EventKind.FIRST_LAND_BASED_RECEIVING,
}


# ================================================================== capture: results


@dataclass
class EventResult:
    """What became of one event of a captured document."""

    index: int
    type: str | None
    event_id: str | None
    biz_step: str | None
    status: str = "accepted"  # accepted (valid) | captured | stored | duplicate | rejected
    code: str | None = None
    reason: str | None = None
    field: str | None = None
    writes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    hash_id: str | None = None
    attribution: dict[str, Any] | None = None
    """Whose event it is when that is not the capturer's: another organisation's (``reported``, the party
    owning its place) or one the chain already holds (``known_on_chain``, the chain's signer)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "eventID": self.event_id,
            "hashID": self.hash_id,
            "bizStep": self.biz_step,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "field": self.field,
            "lotline_events": self.writes,
        } | ({"attributedTo": self.attribution} if self.attribution else {})


class CaptureRejected(InvalidInput):
    """Raised when any event of an EPCIS document cannot be captured; nothing was written. Carries the
    result of every event (``details['events']``)."""

    status = 422
    code = "epcis_rejected"

    def __init__(self, message: str, results: list[EventResult], field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.results = results
        self.details = {"events": [r.to_dict() for r in results]}


@dataclass
class CaptureResult:
    events: list[EventResult]
    transactions: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "captured": len(self.events),
            "transactions": self.transactions,
            "events": [r.to_dict() for r in self.events],
        }


class Reported(LotlineError):
    """An event that happened at another organisation's place: that organisation's event, which the capturer
    only reports. It is stored as reported (attributed to ``party``), never applied to the lot model as if the
    party had written it (its custody changes are the party's to sign)."""

    status = 422
    code = "reported"

    def __init__(self, message: str, *, field: str, party: Organisation, gln: str) -> None:
        super().__init__(message, field=field)
        self.party = party
        self.gln = gln


# ================================================================== capture: planning on a simulated state


@dataclass
class _LotState:
    gtin: str
    lot_code: str
    product: Product
    status: str
    custodian_id: int
    pending_id: int | None
    quantity: Decimal
    unit: str
    row: Lot | None = None  # the stored lot; None for a lot this document creates
    offer: dict[str, Any] | None = None  # the payload of the current custody offer


@dataclass
class Step:
    """One planned Lotline write (one contract call; a transformation's outputs: one call each, sent in one
    transaction). Steps are numbered in document order (``number``) and can be frozen as JSON, so a capture
    job stores its plan once and writes it in batches, recognising after a crash which steps were written."""

    action: str  # create | record | offer | accept | transform | anchor
    index: int  # the EPCIS event it comes from
    kind: EventKind
    key: tuple[str, str] | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    quantity: str | None = None
    unit: str | None = None
    to_id: int | None = None  # the receiving organisation of an offer
    outputs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    readings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    number: int = 0

    @property
    def calls(self) -> int:
        """How many contract calls (Lotline events) the step makes."""
        return len(self.outputs) if self.action == "transform" else 1

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = int(self.kind)
        data["outputs"] = [
            {k: v for k, v in o.items() if k != "product"}
            | {"key": list(o["key"]), "inputs": [[list(k), q] for k, q in o.get("inputs", [])]}
            for o in self.outputs
        ]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        values = dict(data)
        values["kind"] = EventKind(int(values["kind"]))
        values["key"] = tuple(values["key"]) if values.get("key") else None
        values["outputs"] = [
            dict(o) | {"key": tuple(o["key"]), "inputs": [(tuple(k), q) for k, q in o.get("inputs", [])]}
            for o in values.get("outputs") or []
        ]
        return cls(**values)


_EPCIS_FIELD = {
    "location_gln": "readPoint",
    "from_gln": "sourceList",
    "to_gln": "destinationList",
    "quantity": "quantityList",
    "unit": "quantityList",
    "reference_document_type": "bizTransactionList",
    "reference_document_number": "bizTransactionList",
    "inputs": "inputQuantityList",
    "readings": "sensorElementList",
}


def _epcis_field(path: str, field: str | None, event_type: str | None = None) -> str:
    """The place in the document (under the event at ``path``) that carried the value a Lotline error names:
    ``payload.ship_date`` -> ``{path}.eventTime``, ``quantity`` -> ``{path}.quantityList``."""
    if field and field.startswith("epcisBody"):
        return field
    name = (field or "").removeprefix("payload.").split("[")[0].split(".")[0]
    where = _EPCIS_FIELD.get(name, "lotline:kde." + name if name else "")
    if event_type == "TransformationEvent" and name in ("quantity", "unit"):
        where = "outputQuantityList"
    if name.endswith("_date") or name in ("period_start", "period_end"):
        where = "eventTime"
    return f"{path}.{where}" if where else path


class Planner:
    """The lots, places and products a document (or an import file) names, as the events before the current
    one leave them: each event is asked of the rulebook against this simulated state, so later events may
    build on lots earlier ones create or move. Bulk imports (``services.imports``) plan with it too."""

    def __init__(self, ctx: Ctx, org: Organisation) -> None:
        self.ctx = ctx
        self.org = org
        self.lots: dict[tuple[str, str], _LotState] = {}
        self.locations: dict[str, Location | None] = {}
        self.products: dict[str, Product | None] = {}
        self.orgs = {o.id: o for o in ctx.session.scalars(select(Organisation))}
        self.checked: set[str] = set()  # lot ids whose existence on chain was asked in bulk (``prefetch``)
        self.on_chain: set[str] = set()  # ... and those that exist
        self.stored: set[str] = set()  # ... and those the store holds (asked in bulk with them)

    def prefetch(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Ask the chain in bulk whether the lots the document creates exist (one call per 200 lots, not one
        per lot); identifiers that do not parse are left to the mapping, which names the error."""
        ids = []
        for event in events:
            elements: list[Any] = []
            if event.get("type") == "ObjectEvent" and event.get("action") == "ADD":
                quantities = event.get("quantityList") or []
                elements = list(event.get("epcList") or []) + [q.get("epcClass") for q in quantities]
            elif event.get("type") == "TransformationEvent":
                elements = [q.get("epcClass") for q in event.get("outputQuantityList") or []]
            for uri in elements:
                try:
                    ids.append(hex32(lot_id(*parse_lot_uri(uri, "epcClass"))))
                except (LotlineError, TypeError, AttributeError):
                    continue
        self.check_absent(ids)

    def check_absent(self, ids: Sequence[str]) -> None:
        """Ask the chain in bulk which of the lots ``ids`` exist (``new_lot`` then needs no call per lot)."""
        if ids:
            self.on_chain |= self.ctx.ledger.existing_lots(list(ids))
            self.stored |= _stored_lots(self.ctx, set(ids))  # and the store, instead of a query per new lot
            self.checked |= set(ids)

    def created(self, key: tuple[str, str], product: Product, quantity: Decimal, unit: str) -> None:
        """Note a lot the document creates: later events find it active, held by the documenting organisation."""
        self.lots[key] = _LotState(key[0], key[1], product, "active", self.org.id, None, quantity, unit)

    # ---------------------------------------------------------------- store look-ups

    def location(self, gln: str, field: str, *, own: bool = False) -> Location:
        if gln not in self.locations:
            self.locations[gln] = self.ctx.session.scalars(select(Location).where(Location.gln == gln)).first()
        location = self.locations[gln]
        if location is None:
            raise InvalidInput(f"{field}: GLN {gln} is not a registered location", field=field, code="unknown_gln")
        if own and location.organisation_id != self.org.id:
            raise Forbidden(
                f"{field}: GLN {gln} ({location.name}) belongs to {location.organisation.name}; "
                f"{self.org.name} can only record what happens at its own locations",
                field=field,
            )
        return location

    def product(self, gtin: str, field: str) -> Product:
        if gtin not in self.products:
            self.products[gtin] = self.ctx.session.scalars(select(Product).where(Product.gtin == gtin)).first()
        product = self.products[gtin]
        if product is None:
            raise InvalidInput(f"{field}: GTIN {gtin} is not a registered product", field=field, code="unknown_gtin")
        return product

    def lot(self, key: tuple[str, str], field: str) -> _LotState:
        if key in self.lots:
            return self.lots[key]
        row = self.ctx.session.scalars(select(Lot).where(Lot.gtin == key[0], Lot.lot_code == key[1])).first()
        if row is None:
            self.product(key[0], field)
            raise NotFound(f"{field}: no lot {key[1]} of GTIN {key[0]}", field=field, code="unknown_lot")
        offer = next(
            (e.payload for e in reversed(row.events) if int(e.kind) == EventKind.SHIPPING and e.status != "failed"),
            None,
        )
        state = _LotState(
            row.gtin,
            row.lot_code,
            row.product,
            row.status,
            row.custodian_org_id,
            row.pending_custodian_org_id,
            Decimal(row.quantity),
            row.unit,
            row,
            dict(offer or {}),
        )
        self.lots[key] = state
        return state

    def new_lot(self, key: tuple[str, str], field: str) -> Product:
        product = self.product(key[0], field)
        if product.organisation_id != self.org.id:
            raise Forbidden(
                f"{field}: {self.org.name} cannot create lots of GTIN {key[0]}: the product belongs to "
                f"{product.organisation.name}",
                field=field,
            )
        lid = hex32(lot_id(key[0], key[1]))
        if lid in self.checked:
            exists = key in self.lots or lid in self.stored or lid in self.on_chain
        else:
            exists = (
                key in self.lots
                or self.ctx.session.scalars(select(Lot.id).where(Lot.gtin == key[0], Lot.lot_code == key[1])).first()
                is not None
                or self.ctx.ledger.get_lot(lid).exists
            )
        if exists:
            raise Conflict(f"{field}: lot {key[1]} of GTIN {key[0]} already exists", field=field, code="lot_exists")
        return product

    def role(self, roles: Sequence[str], action: str) -> None:
        if not set(self.org.roles) & set(roles):
            raise Forbidden(f"{self.org.name} cannot {action}: needs one of the roles {', '.join(roles)}")

    def payload(self, kind: EventKind, payload: Mapping[str, Any], path: str) -> dict[str, Any]:
        """The validated payload; errors name the EPCIS field that carried the value."""
        try:
            normalised = validate_payload(kind, payload)
            for key, value in normalised.items():
                if key.endswith("_gln") and isinstance(value, str):
                    self.location(value, f"payload.{key}")
        except LotlineError as exc:
            exc.field = _epcis_field(path, exc.field)
            raise
        return normalised

    # ---------------------------------------------------------------- the mapping

    def plan(self, index: int, event: Mapping[str, Any]) -> list[Step]:
        path = f"epcisBody.eventList[{index}]"
        etype = event.get("type")
        if etype in ("ObjectEvent", "TransformationEvent"):
            self.attribute(event, path)
        if etype == "TransformationEvent":
            return [self._transformation(index, event, path)]
        if etype != "ObjectEvent":
            raise Unsupported(
                f"{etype} is not mapped to Lotline: lots, their critical tracking events and custody "
                "are expressed with ObjectEvent and TransformationEvent",
                field=f"{path}.type",
            )
        action = event.get("action")
        step = bare_word(event.get("bizStep"), "bizstep")
        disposition = bare_word(event.get("disposition"), "disp")
        cte = event.get("lotline:cte")
        when = local_time(event, path)
        extra = dict(event["lotline:kde"]) if isinstance(event.get("lotline:kde"), Mapping) else {}
        items = self._lot_items(event, path)
        has_sensors = bool(event.get("sensorElementList"))
        writes: list[Step] = []
        if action == "ADD":
            kind = _creation_kind(cte, step)
            if kind is None:
                raise Unsupported(
                    f"an ADD event with bizStep {step!r} is not mapped: a lot is created by "
                    "commissioning (harvest), packing (initial packing) or receiving (first "
                    "land-based receiving)",
                    field=f"{path}.bizStep",
                )
            writes += self._create(index, event, path, kind, items, when, extra)
        elif (
            action == "OBSERVE"
            and isinstance(cte, str)
            and cte.upper() in EventKind.__members__
            and EventKind[cte.upper()] in FREE_KINDS
        ):
            writes += self._record(index, event, path, EventKind[cte.upper()], items, when, extra)
        elif action == "OBSERVE" and step == "shipping":
            writes += self._ship(index, event, path, items, when, extra)
        elif action == "OBSERVE" and step == "receiving" and disposition != "returned":
            writes += self._receive(index, event, path, items, when, extra)
        elif not has_sensors:
            what = f"bizStep {step!r}" if step else "an event without bizStep"
            if action == "DELETE":
                what = "action DELETE"
            elif step == "receiving":
                what = "a refused delivery (receiving with disposition returned)"
            raise Unsupported(
                f"{what} is not mapped to Lotline (captured are: commissioning/packing ADD, "
                "shipping, receiving, transformations and sensor readings)",
                field=f"{path}.bizStep",
            )
        if has_sensors:
            writes += self._sensors(index, event, path, items, extra)
        return writes

    def attribute(self, event: Mapping[str, Any], path: str) -> None:
        """Raise Reported when the event belongs to another organisation: the first place it names that is a
        registered location decides (for a shipment its source party or location, then bizLocation, then
        readPoint). Places nobody registered leave the event to the mapping."""
        places: list[tuple[str, Any]] = []
        if bare_word(event.get("bizStep"), "bizstep") == "shipping":
            order = {"owning_party": 0, "possessing_party": 1, "location": 2}
            sources = [
                (order[bare_word(e.get("type"), "sdt") or ""], j, e)
                for j, e in enumerate(event.get("sourceList") or [])
                if isinstance(e, Mapping) and (bare_word(e.get("type"), "sdt") or "") in order
            ]
            places += [(f"{path}.sourceList[{j}].source", e.get("source")) for _, j, e in sorted(sources)]
        for key in ("bizLocation", "readPoint"):
            if isinstance(event.get(key), Mapping):
                places.append((f"{path}.{key}.id", event[key].get("id")))
        for field, uri in places:
            try:
                gln = parse_gln_uri(uri, field)
                location = self.location(gln, field)
            except LotlineError:
                continue
            if location.organisation_id == self.org.id:
                return
            owner = location.organisation
            raise Reported(
                f"{field}: GLN {gln} ({location.name}) belongs to {owner.name}, so this is {owner.name}'s event; "
                f"{self.org.name} reports it: stored as reported by {self.org.name}, not applied to the lots "
                f"(only {owner.name} signs its own events and custody changes)",
                field=field,
                party=owner,
                gln=gln,
            )

    def _lot_items(self, event: Mapping[str, Any], path: str) -> list[tuple[tuple[str, str], dict[str, Any], str]]:
        items = []
        for j, uri in enumerate(event.get("epcList") or []):
            where = f"{path}.epcList[{j}]"
            items.append((parse_lot_uri(uri, where), {}, where))
        for j, element in enumerate(event.get("quantityList") or []):
            where = f"{path}.quantityList[{j}]"
            items.append((parse_lot_uri(element.get("epcClass"), f"{where}.epcClass"), element, where))
        if not items:
            raise Unsupported(
                "the event names no lot: give the lots in quantityList (LGTIN or Digital Link with /10/{lot})",
                field=f"{path}.quantityList",
            )
        seen: set[tuple[str, str]] = set()
        for key, _, where in items:
            if key in seen:
                raise InvalidInput(f"{where}: lot {key[0]}/{key[1]} is listed twice in the event", field=where)
            seen.add(key)
        return items

    def _quantity(self, element: Mapping[str, Any], where: str, default_unit: str) -> tuple[str | None, str]:
        unit = default_unit
        if element.get("uom"):
            unit = UOM_TO_UNIT.get(element["uom"], element["uom"])
        if element.get("quantity") is None:
            return None, unit
        return format_quantity(parse_quantity(str(element["quantity"]), f"{where}.quantity")), unit

    def _place(self, event: Mapping[str, Any], path: str, *, own: bool) -> str:
        for key in ("bizLocation", "readPoint"):
            if isinstance(event.get(key), Mapping):
                gln = parse_gln_uri(event[key]["id"], f"{path}.{key}.id")
                self.location(gln, f"{path}.{key}.id", own=own)
                return gln
        raise InvalidInput(
            f"{path}.readPoint: the event needs a readPoint or bizLocation (the GLN where it happened)",
            field=f"{path}.readPoint",
            code="missing_location",
        )

    def _party_list(self, event: Mapping[str, Any], name: str, path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        key = "source" if name == "sourceList" else "destination"
        for j, entry in enumerate(event.get(name) or []):
            kind = bare_word(entry.get("type"), "sdt")
            if kind in ("location", "owning_party", "possessing_party") and kind not in out:
                out[kind] = parse_gln_uri(entry[key], f"{path}.{name}[{j}].{key}")
        return out

    def _reference(
        self, event: Mapping[str, Any], extra: Mapping[str, Any], fallback: Mapping[str, Any] | None
    ) -> dict[str, str]:
        for entry in event.get("bizTransactionList") or []:
            value = str(entry.get("bizTransaction", ""))
            bt_type = bare_word(entry.get("type"), "btt") or "reference"
            number = value
            if value.startswith("urn:epcglobal:cbv:bt:") and value.count(":") >= 5:
                number = unquote(value.split(":", 5)[5])
            return {"reference_document_type": BT_TYPES.get(bt_type, bt_type), "reference_document_number": number}
        for source in (extra, fallback or {}):
            if source.get("reference_document_number"):
                return {k: source[k] for k in ("reference_document_type", "reference_document_number") if k in source}
        return {}

    def _create(
        self,
        index: int,
        event: Mapping[str, Any],
        path: str,
        kind: EventKind,
        items: list[Any],
        when: str,
        extra: dict[str, Any],
    ) -> list[Step]:
        self.role(_CREATOR_ROLES, "create lots")
        gln = self._place(event, path, own=True)
        writes = []
        for key, element, where in items:
            product = self.new_lot(key, f"{where}.epcClass" if element else where)
            quantity, unit = self._quantity(element, where, product.unit)
            if quantity is None:
                raise InvalidInput(
                    f"{where}: a new lot needs its quantity (quantityList with quantity and uom)",
                    field=f"{where}.quantity",
                    code="missing_quantity",
                )
            payload = extra | {
                "location_gln": gln,
                kind_spec(kind).date_field: _date(extra, kind_spec(kind).date_field, when),
                "quantity": quantity,
                "unit": unit,
                "epcis_event_id": event.get("eventID"),
            }
            payload = lot_service.bind_product(kind, product, payload)
            if kind is EventKind.INITIAL_PACKING:
                payload.setdefault("product_description", product.name)
            payload = self.payload(kind, _clean(payload), path)
            self.lots[key] = _LotState(key[0], key[1], product, "active", self.org.id, None, Decimal(quantity), unit)
            writes.append(Step("create", index, kind, key, payload, quantity, unit))
        return writes

    def _record(
        self,
        index: int,
        event: Mapping[str, Any],
        path: str,
        kind: EventKind,
        items: list[Any],
        when: str,
        extra: dict[str, Any],
    ) -> list[Step]:
        gln = self._place(event, path, own=True)
        writes = []
        for key, element, where in items:
            state = self.lot(key, where)
            self.allow(Action.RECORD, state, where)
            quantity, unit = self._quantity(element, where, state.unit)
            payload = extra | {
                "location_gln": gln,
                kind_spec(kind).date_field: _date(extra, kind_spec(kind).date_field, when),
                "quantity": quantity or format_quantity(state.quantity),
                "unit": unit,
                "epcis_event_id": event.get("eventID"),
            }
            payload = {
                k: v for k, v in payload.items() if k in kind_spec(kind).by_name or k in extra or k == "epcis_event_id"
            }
            writes.append(Step("record", index, kind, key, self.payload(kind, _clean(payload), path)))
        return writes

    def allow(self, action: Action, state: _LotState, where: str) -> None:
        """The rulebook's verdict on ``action`` for the lot as this document has left it so far; a refusal
        names the EPCIS field."""
        subject = policy.Subject(
            actor_roles=frozenset(self.org.roles),
            status=policy.Status(state.status),
            is_custodian=state.custodian_id == self.org.id,
            is_pending_custodian=state.pending_id == self.org.id,
            recall_affected=policy.RULES[action].refuse_recall_affected
            and state.row is not None
            and lot_service.recall_affected(self.ctx, state.row),
            actor=self.org.name,
            lot=state.lot_code,
        )
        verdict = policy.decide(action, subject)
        if not verdict.allowed:
            assert verdict.error is not None
            raise verdict.error(f"{where}: {verdict.message}", field=where, code=verdict.code)

    def _ship(
        self, index: int, event: Mapping[str, Any], path: str, items: list[Any], when: str, extra: dict[str, Any]
    ) -> list[Step]:
        self.role(lot_service.HANDLER_ROLES, "ship lots")
        sources = self._party_list(event, "sourceList", path)
        destinations = self._party_list(event, "destinationList", path)
        from_gln = sources.get("location") or self._place(event, path, own=True)
        self.location(from_gln, f"{path}.sourceList", own=True)
        to_gln = destinations.get("location")
        if not to_gln:
            raise InvalidInput(
                f"{path}.destinationList: shipping needs a destination of type location (the ship-to GLN)",
                field=f"{path}.destinationList",
                code="missing_destination",
            )
        to_location = self.location(to_gln, f"{path}.destinationList")
        recipient = to_location.organisation
        party = destinations.get("owning_party") or destinations.get("possessing_party")
        if party:
            recipient = self.location(party, f"{path}.destinationList").organisation
        if recipient.id == self.org.id or not set(recipient.roles) & set(_RECEIVING_ROLES):
            raise InvalidInput(
                f"{path}.destinationList: {recipient.name} cannot receive lots (needs a processor, "
                "distributor or retailer role, and must be another organisation)",
                field=f"{path}.destinationList",
                code="recipient_cannot_receive",
            )
        reference = self._reference(event, extra, None)
        writes = []
        for key, element, where in items:
            state = self.lot(key, where)
            self.allow(Action.SHIP, state, where)
            quantity, unit = self._quantity(element, where, state.unit)
            payload = (
                extra
                | reference
                | {
                    "from_gln": from_gln,
                    "to_gln": to_gln,
                    "ship_date": _date(extra, "ship_date", when),
                    "quantity": quantity or format_quantity(state.quantity),
                    "unit": unit,
                    "epcis_event_id": event.get("eventID"),
                }
            )
            payload = self.payload(EventKind.SHIPPING, _clean(payload), path)
            state.status, state.pending_id, state.offer = "in_transit", recipient.id, payload
            writes.append(Step("offer", index, EventKind.SHIPPING, key, payload, to_id=recipient.id))
        return writes

    def _receive(
        self, index: int, event: Mapping[str, Any], path: str, items: list[Any], when: str, extra: dict[str, Any]
    ) -> list[Step]:
        self.role(_RECEIVING_ROLES, "receive lots")
        to_gln = self._place(event, path, own=True)
        sources = self._party_list(event, "sourceList", path)
        writes = []
        for key, element, where in items:
            state = self.lot(key, where)
            self.allow(Action.ACCEPT, state, where)
            offer = state.offer or {}
            quantity, unit = self._quantity(element, where, offer.get("unit") or state.unit)
            payload = (
                {k: offer[k] for k in ("tlc_source_gln", "product_description") if k in offer}
                | extra
                | self._reference(event, extra, offer)
                | {
                    "from_gln": sources.get("location") or offer.get("from_gln"),
                    "to_gln": to_gln,
                    "receive_date": _date(extra, "receive_date", when),
                    "quantity": quantity or offer.get("quantity") or format_quantity(state.quantity),
                    "unit": unit,
                    "epcis_event_id": event.get("eventID"),
                }
            )
            payload = self.payload(EventKind.RECEIVING, _clean(payload), path)
            state.status, state.custodian_id, state.pending_id, state.offer = "active", self.org.id, None, None
            writes.append(Step("accept", index, EventKind.RECEIVING, key, payload))
        return writes

    def _sensors(
        self, index: int, event: Mapping[str, Any], path: str, items: list[Any], extra: dict[str, Any]
    ) -> list[Step]:
        readings: list[dict[str, Any]] = []
        device = None
        for j, element in enumerate(event.get("sensorElementList") or []):
            metadata = element.get("sensorMetadata") or {}
            device = device or metadata.get("deviceID") or metadata.get("lotline:sensorId")
            by_time: dict[str, dict[str, Any]] = {}
            for k, report in enumerate(element.get("sensorReport") or []):
                where = f"{path}.sensorElementList[{j}].sensorReport[{k}]"
                measure = bare_word(report.get("type"), "measurementtype") or ""
                measure = measure.removeprefix("gs1:")
                taken = report.get("time") or metadata.get("time")
                if report.get("value") is None or not taken:
                    continue
                if measure == "Temperature":
                    by_time.setdefault(taken, {})["temperature_c"] = _celsius(report, where)
                elif measure == "RelativeHumidity":
                    by_time.setdefault(taken, {})["humidity"] = _humidity(report, where)
            for taken, values in by_time.items():
                if "temperature_c" in values:
                    readings.append({"taken_at": taken, **values})
        if not readings:
            raise Unsupported(
                "sensorElementList holds no individual temperature readings (Temperature with value "
                "and time); aggregated reports (minValue/maxValue) cannot be anchored reading by "
                "reading",
                field=f"{path}.sensorElementList",
            )
        try:
            checked = lot_service.validate_readings(readings)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{path}.sensorElementList: {exc.message}", field=f"{path}.sensorElementList", code=exc.code
            ) from None
        gln = None
        if isinstance(event.get("readPoint"), Mapping):
            gln = parse_gln_uri(event["readPoint"]["id"], f"{path}.readPoint.id")
            self.location(gln, f"{path}.readPoint.id")
        sensor_id = str(extra.get("sensor_id") or device or "")[:100] or None  # the store keeps 100 characters
        writes = []
        for key, _element, where in items:
            state = self.lot(key, where)
            self.allow(Action.ANCHOR, state, where)
            # the readings date the anchor (period_end); the report's own time is kept for the export
            payload = _anchor_payload(checked, sensor_id, gln) | _clean(
                {"epcis_event_id": event.get("eventID"), "epcis_event_time": local_time(event, path)}
            )
            self.payload(EventKind.SENSOR_ANCHOR, payload, path)
            writes.append(Step("anchor", index, EventKind.SENSOR_ANCHOR, key, payload, readings=checked))
        return writes

    def _transformation(self, index: int, event: Mapping[str, Any], path: str) -> Step:
        # whether the event maps at all (its identifiers name lots) is asked before who may record it
        for name in ("inputQuantityList", "outputQuantityList"):
            for j, element in enumerate(event.get(name) or []):
                parse_lot_uri(element.get("epcClass"), f"{path}.{name}[{j}].epcClass")
        for name in ("inputEPCList", "outputEPCList"):
            for j, uri in enumerate(event.get(name) or []):
                parse_lot_uri(uri, f"{path}.{name}[{j}]")
                raise InvalidInput(
                    f"{path}.{name}[{j}]: list lots in {name.replace('EPC', 'Quantity')} with their quantity",
                    field=f"{path}.{name}[{j}]",
                    code="missing_quantity",
                )
        self.role(_CREATOR_ROLES, "transform lots")
        gln = self._place(event, path, own=True)
        when = local_time(event, path)
        extra = dict(event["lotline:kde"]) if isinstance(event.get("lotline:kde"), Mapping) else {}
        inputs: list[tuple[tuple[str, str], Decimal, str, str]] = []
        for j, element in enumerate(event.get("inputQuantityList") or []):
            where = f"{path}.inputQuantityList[{j}]"
            key = parse_lot_uri(element.get("epcClass"), f"{where}.epcClass")
            state = self.lot(key, f"{where}.epcClass")
            self.allow(Action.USE_AS_INPUT, state, where)
            quantity, _unit = self._quantity(element, where, state.unit)
            amount = Decimal(quantity) if quantity else state.quantity
            state.quantity = check_consumption(state.quantity, amount, field=f"{where}.quantity", unit=state.unit)
            inputs.append((key, amount, state.unit, where))
        if not inputs:
            raise InvalidInput(
                f"{path}.inputQuantityList: a transformation needs its input lots", field=f"{path}.inputQuantityList"
            )
        outputs = []
        for j, element in enumerate(event.get("outputQuantityList") or []):
            where = f"{path}.outputQuantityList[{j}]"
            key = parse_lot_uri(element.get("epcClass"), f"{where}.epcClass")
            product = self.new_lot(key, f"{where}.epcClass")
            quantity, unit = self._quantity(element, where, product.unit)
            if quantity is None:
                raise InvalidInput(
                    f"{where}: a new lot needs its quantity", field=f"{where}.quantity", code="missing_quantity"
                )
            if any(key == k for k, *_ in inputs) or any(key == o["key"] for o in outputs):
                raise InvalidInput(f"{where}: lot {key[1]} is listed twice", field=where)
            outputs.append({"key": key, "quantity": quantity, "unit": unit, "product": product})
        if not outputs:
            raise InvalidInput(
                f"{path}.outputQuantityList: a transformation needs its output lots", field=f"{path}.outputQuantityList"
            )
        shares = _split(inputs, [Decimal(o["quantity"]) for o in outputs], path)
        for output, share in zip(outputs, shares, strict=True):
            payload = {k: v for k, v in extra.items() if k not in ("inputs", "quantity", "unit")} | {
                "location_gln": gln,
                "transformation_date": _date(extra, "transformation_date", when),
                "quantity": output["quantity"],
                "unit": output["unit"],
                "epcis_event_id": event.get("eventID"),
                "inputs": [
                    {"gtin": k[0], "lot_code": k[1], "quantity": format_quantity(q), "unit": u} for k, q, u in share
                ],
            }
            output["payload"] = self.payload(EventKind.TRANSFORMATION, _clean(payload), path)
            output["inputs"] = [(k, format_quantity(q)) for k, q, _u in share]
            key = output["key"]
            self.lots[key] = _LotState(
                key[0],
                key[1],
                output["product"],
                "active",
                self.org.id,
                None,
                Decimal(output["quantity"]),
                output["unit"],
            )
        return Step("transform", index, EventKind.TRANSFORMATION, outputs=outputs)


def _split(
    inputs: list[tuple[tuple[str, str], Decimal, str, str]], sizes: list[Decimal], path: str
) -> list[list[tuple[tuple[str, str], Decimal, str]]]:
    """Each output's share of each input, in proportion to the outputs' quantities (EPCIS states what a
    transformation consumed in total; Lotline records what each output lot was made from)."""
    total = sum(sizes)
    shares: list[list[tuple[tuple[str, str], Decimal, str]]] = [[] for _ in sizes]
    for key, amount, unit, where in inputs:
        left = amount
        for j, size in enumerate(sizes):
            part = (
                left
                if j == len(sizes) - 1
                else (amount * size / total).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)
            )
            left -= part
            if part <= 0:
                raise InvalidInput(
                    f"{where}: too little of lot {key[1]} to share between {len(sizes)} output lots",
                    field=where,
                    code="invalid_quantity",
                )
            shares[j].append((key, part, unit))
    return shares


def _reading_number(report: Mapping[str, Any], where: str) -> Decimal:
    value = report["value"]
    try:
        number = Decimal(str(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None
    except InvalidOperation:  # pragma: no cover - str() of a float or int is always a decimal
        number = None
    if number is None or not number.is_finite() or abs(number) > 10**6:  # quantize() needs a bounded number
        raise InvalidInput(f"{where}.value: must be a plausible number, got {value!r:.40}", field=f"{where}.value")
    return number


def _celsius(report: Mapping[str, Any], where: str) -> str:
    value = _reading_number(report, where)
    uom = report.get("uom") or "CEL"
    if uom == "FAH":
        value = (value - 32) * 5 / 9
    elif uom == "KEL":
        value = value - Decimal("273.15")
    elif uom != "CEL":
        raise InvalidInput(f"{where}.uom: temperature must be in CEL, FAH or KEL, got {uom!r}", field=f"{where}.uom")
    return lot_service.format_quantity_signed(value.quantize(Decimal("0.001")).normalize())


def _humidity(report: Mapping[str, Any], where: str) -> str:
    return lot_service.format_quantity_signed(_reading_number(report, where).quantize(Decimal("0.001")).normalize())


def _anchor_payload(readings: list[dict[str, Any]], sensor_id: str | None, gln: str | None) -> dict[str, Any]:
    rows = sorted(readings, key=lot_service.reading_order)
    temps = [Decimal(r["temperature_c"]) for r in rows]
    return _clean(
        {
            "merkle_root": hex32(merkle_root([reading_leaf(r) for r in rows])),
            "reading_count": len(rows),
            "period_start": rows[0]["taken_at"],
            "period_end": rows[-1]["taken_at"],
            "min_temperature_c": lot_service.format_quantity_signed(min(temps)),
            "max_temperature_c": lot_service.format_quantity_signed(max(temps)),
            "sensor_id": sensor_id,
            "location_gln": gln,
        }
    )


def _date(extra: Mapping[str, Any], name: str, when: str) -> str:
    """The event's date field: the event's time in its own zone, unless the event's ``lotline:kde`` gives the
    field as a plain date of that same day (a Lotline export of a plain date): then the plain date, so a
    re-captured event keeps its payload (and payload hash) instead of gaining a time of day."""
    given = extra.get(name)
    if isinstance(given, str) and len(given) == 10 and when.startswith(given + "T"):
        return given
    return when


def _clean(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if v is not None and v != ""}


def _creation_kind(cte: object, step: str | None) -> EventKind | None:
    if isinstance(cte, str) and cte.upper() in EventKind.__members__:
        kind = EventKind[cte.upper()]
        return kind if kind in CREATION_KINDS and kind is not EventKind.TRANSFORMATION else None
    return _CREATION_BY_STEP.get(step or "")


def local_time(event: Mapping[str, Any], path: str) -> str:
    """The event's time as an ISO date-time in its own time zone (``eventTimeZoneOffset``)."""
    text = str(event.get("eventTime", ""))
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{path}.eventTime: {text!r} is not an ISO 8601 date-time", field=f"{path}.eventTime", code="invalid_date"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{path}.eventTime: needs a UTC offset", field=f"{path}.eventTime", code="invalid_date")
    offset = str(event.get("eventTimeZoneOffset") or "+00:00")
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.astimezone(zone).isoformat()


# ================================================================== capture: writing

StepKey = Callable[[Step, int], str | None]
"""The idempotency key of the ``n``-th Lotline event a step writes (None: no key)."""


class Writer:
    """Builds the store rows and contract calls of planned steps and sends them, one multicall transaction
    per ``MAX_CALLS_PER_TRANSACTION`` calls (a transformation's outputs never split). With ``key``, every
    event row gets that idempotency key, which is how a capture job recognises its written steps."""

    def __init__(
        self,
        ctx: Ctx,
        org: Organisation,
        *,
        send: bool = True,
        key: StepKey | None = None,
        absent: set[str] | None = None,
        check: bool = True,
    ) -> None:
        self.ctx = ctx
        self.org = org
        self.send = send  # False: build the rows and calls only (a rehearsal, rolled back by the caller)
        self.check = check  # False: no pre-flight eth_call per transaction (steps already rehearsed; writes.execute)
        self.key = key
        self.absent = absent or set()  # ids of new lots just checked (in bulk) not to exist on chain
        # ... and those of them the store does not hold either: asked here for all of them at once, so creating
        # each lot asks nothing (a query per lot flushed the rows planned before it: most of a batch's time)
        self.unstored = self.absent - _stored_lots(ctx, self.absent)
        self.calls: list[tuple[str, list[Any]]] = []
        self.events: list[Event] = []
        self.transactions: list[str] = []
        self.written: list[tuple[int, Event]] = []
        self.lots: dict[tuple[str, str], Lot] = {}  # lots this writer created or looked up, by label
        self.lookups: dict[str, Any] = {}  # sites and products its steps named (``lots.planning_batch``)

    def lot(self, key: tuple[str, str]) -> Lot:
        lot = self.lots.get(tuple(key))  # type: ignore[call-overload]
        if lot is None:
            lot = self.ctx.session.scalars(select(Lot).where(Lot.gtin == key[0], Lot.lot_code == key[1])).one()
            self.lots[(key[0], key[1])] = lot
        return lot

    def _idem(self, w: Step, n: int = 0) -> str | None:
        return self.key(w, n) if self.key is not None else None

    def _add(self, index: int, event: Event, call: tuple[str, list[Any]]) -> None:
        # No flush per event: the rows go in with the next flush, in the order they were added, so event ids
        # still follow call order (the indexer matches logs to rows by it; tests/integration/test_bulk_writes).
        self.calls.append(call)
        self.events.append(event)
        self.written.append((index, event))
        if len(self.calls) >= MAX_CALLS_PER_TRANSACTION:
            self.flush()

    def flush(self) -> None:
        if not self.send:
            self.calls, self.events = [], []
        elif self.calls:
            try:
                result = execute(self.ctx, self.org, self.calls, self.events, check=self.check)
            except LotlineError as exc:
                # the refused call's step (``index``), when the chain's refusal could be traced to one call
                position = getattr(exc, "call_index", None)
                if position is not None:
                    exc.index = self.written[len(self.written) - len(self.calls) + position][0]  # type: ignore[attr-defined]
                raise
            self.transactions.append(result.tx_hash)
            self.calls, self.events = [], []

    def write(self, w: Step) -> None:
        with lot_service.planning_batch(self.ctx, self.lookups):
            getattr(self, "_" + w.action)(w)

    def _create(self, w: Step) -> None:
        assert w.key is not None
        lot, _ = lot_service.plan_lot(
            self.ctx,
            self.org,
            lot_service.NewLot(w.key[0], w.key[1], w.quantity, w.unit),
            absent_on_chain=hex32(lot_id(*w.key)) in self.absent,
            absent_in_store=hex32(lot_id(*w.key)) in self.unstored,
        )
        self.lots[(lot.gtin, lot.lot_code)] = lot
        event = lot_service.plan_event(self.ctx, lot, self.org, w.kind, w.payload, idempotency_key=self._idem(w))
        lot_service.set_origin(self.ctx, lot, w.kind, event.payload)
        self._add(w.index, event, Call.create_lot(lot.gtin, lot.lot_code, [], w.kind, event.payload_hash))

    def _record(self, w: Step) -> None:
        assert w.key is not None
        lot = self.lot(w.key)
        event = lot_service.plan_event(self.ctx, lot, self.org, w.kind, w.payload, idempotency_key=self._idem(w))
        self._add(w.index, event, Call.record_events(lot.lot_id, [w.kind], [event.payload_hash]))

    def _offer(self, w: Step) -> None:
        assert w.key is not None and w.to_id is not None
        lot = self.lot(w.key)
        to = self.ctx.session.get(Organisation, w.to_id)
        assert to is not None
        event = lot_service.plan_event(
            self.ctx, lot, self.org, EventKind.SHIPPING, w.payload, recipient=to, idempotency_key=self._idem(w)
        )
        self._add(w.index, event, Call.offer_custody(lot.lot_id, to.chain_address, event.payload_hash))

    def _accept(self, w: Step) -> None:
        assert w.key is not None
        lot = self.lot(w.key)
        event = lot_service.plan_event(
            self.ctx, lot, self.org, EventKind.RECEIVING, w.payload, idempotency_key=self._idem(w)
        )
        self._add(w.index, event, Call.on_lot("acceptCustody", lot.lot_id, event.payload_hash))

    def _transform(self, w: Step) -> None:
        batch = uuid.uuid4().hex
        if len(self.calls) + len(w.outputs) > MAX_CALLS_PER_TRANSACTION:
            self.flush()  # the outputs of one transformation go in one transaction
        for n, output in enumerate(w.outputs):
            key = output["key"]
            lot, _ = lot_service.plan_lot(
                self.ctx,
                self.org,
                lot_service.NewLot(key[0], key[1], output["quantity"], output["unit"]),
                absent_on_chain=hex32(lot_id(*key)) in self.absent,
                absent_in_store=hex32(lot_id(*key)) in self.unstored,
            )
            self.lots[(lot.gtin, lot.lot_code)] = lot
            event = lot_service.plan_event(
                self.ctx,
                lot,
                self.org,
                EventKind.TRANSFORMATION,
                output["payload"],
                batch_id=batch,
                idempotency_key=self._idem(w, n),
            )
            inputs = []
            for input_key, amount in output["inputs"]:
                source = self.lot(input_key)
                quantity = Decimal(amount)
                self.ctx.session.add(LotInput(output_lot=lot, input_lot=source, quantity=quantity, unit=source.unit))
                source.quantity -= quantity
                inputs.append(source.lot_id)
            self._add(
                w.index,
                event,
                Call.create_lot(lot.gtin, lot.lot_code, inputs, EventKind.TRANSFORMATION, event.payload_hash),
            )

    def _anchor(self, w: Step) -> None:
        assert w.key is not None
        lot = self.lot(w.key)
        rows = sorted(w.readings, key=lot_service.reading_order)
        # the payload's root was computed from these readings in this order (_anchor_payload): not hashed again
        root = bytes32(w.payload["merkle_root"])
        event, call = lot_service.plan_sensor_batch(self.ctx, self.org, lot, rows, w.payload, root=root)
        event.idempotency_key = self._idem(w)
        self._add(w.index, event, call)


STORE_CHUNK = 500
"""Lot ids per query when asking which of a writer's new lots the store holds (bound parameters stay few)."""


def _stored_lots(ctx: Ctx, ids: set[str]) -> set[str]:
    """Which of the lot ids ``ids`` the store holds (lots created since the plan: refused as ``lot_exists`` by
    ``plan_lot``, which then asks again)."""
    ordered = sorted(ids)
    held: set[str] = set()
    for start in range(0, len(ordered), STORE_CHUNK):
        part = ordered[start : start + STORE_CHUNK]
        held.update(ctx.session.scalars(select(Lot.lot_id).where(Lot.lot_id.in_(part))))
    return held


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def rehearse(
    ctx: Ctx, org: Organisation, steps: list[Step], refused: Callable[[Step, LotlineError], None], absent: set[str]
) -> None:
    """Build every row of the planned steps inside a savepoint, then roll it back: the invariants that need
    the rows (quantities on hand, sites, dates; ``lots.plan_event``) are asked of every event before the first
    transaction is sent, so a refusal in a later batch can never leave earlier batches written. The first
    refused step is handed to ``refused`` with its error (later steps may build on its rows, so the rehearsal
    stops there)."""
    writer = Writer(ctx, org, send=False, absent=absent)
    savepoint = ctx.session.begin_nested()
    try:
        for step in steps:
            try:
                writer.write(step)
            except LotlineError as exc:
                refused(step, exc)
                break
    finally:
        savepoint.rollback()


def _rehearse(ctx: Ctx, org: Organisation, steps: list[Step], results: list[EventResult], absent: set[str]) -> None:
    """``rehearse`` for an EPCIS document: the first refused event is marked rejected in ``results``."""

    def refused(step: Step, exc: LotlineError) -> None:
        result = results[step.index]
        result.status, result.code, result.reason = "rejected", exc.code, exc.message
        # the services name their own fields (payload.ship_date, quantity): point into the document
        result.field = _epcis_field(f"epcisBody.eventList[{step.index}]", exc.field, result.type)

    rehearse(ctx, org, steps, refused, absent)


@dataclass
class CapturePlan:
    """A document checked and planned: a result per EPCIS event (all ``accepted``) and the steps to write."""

    results: list[EventResult]
    steps: list[Step]
    absent: set[str] = dataclasses.field(default_factory=set)
    """Ids of the lots it creates, found not to exist on chain when it was planned."""

    @property
    def calls(self) -> int:
        return sum(step.calls for step in self.steps)


STORED_ONLY = ("unknown_lot", "unknown_gtin", "unknown_gln")
"""Mapping refusals that leave an event stored in the repository but not applied to the lot model (besides
``Unsupported``): a lot, product or location Lotline has never seen cannot be received, shipped or observed
here; the event is still kept and reported as ``stored`` with the reason."""


def plan_capture(ctx: Ctx, org: Organisation, document: object, *, exclude_job: int | None = None) -> CapturePlan:
    """Validate an EPCIS 2.0 document for ``org``, identify every event (hash ID, duplicates, error
    declarations, eventTime not in the future), map the others to Lotline steps on a simulated state and
    rehearse the steps' rows (rolled back): nothing is written.

    Every event ends as ``accepted`` (it drives the lot model), ``stored`` (kept in the event repository only:
    no Lotline counterpart, an unknown lot, or an error declaration, with the reason), ``duplicate`` (already
    captured: neither stored again nor applied) or ``rejected``. ``exclude_job``: the job being planned again
    (its own stored events are not duplicates).

    Raises InvalidInput (schema, an empty document, a JSON-LD context that cannot be read) or CaptureRejected
    (422, a result per event) if any event is rejected.
    """
    doc = validate_document(document)
    events = doc["epcisBody"]["eventList"]
    if not events:
        raise InvalidInput(
            "epcisBody.eventList: the document holds no events", field="epcisBody.eventList", code="epcis_empty"
        )
    identities = repository.identify(ctx, doc, exclude_job=exclude_job, org_id=org.id)
    planner = Planner(ctx, org)
    chain = chainmatch.ChainIndex(ctx) if any(chainmatch.claims_chain(e) for e in events) else None
    planner.prefetch(events)
    results: list[EventResult] = []
    steps: list[Step] = []
    first_with_id: dict[str, int] = {}
    for index, event in enumerate(events):
        identity = identities[index]
        result = EventResult(index, event.get("type"), event.get("eventID"), event.get("bizStep"))
        result.hash_id = identity.hash_id
        results.append(result)
        event_id = event.get("eventID")
        if identity.duplicate_of:
            result.status, result.code = "duplicate", "duplicate_event"
            result.field = f"epcisBody.eventList[{index}]"
            result.reason = f"already captured ({identity.duplicate_of}): not stored or applied again"
            continue
        if (
            isinstance(event_id, str)
            and not identity.declaration
            and first_with_id.setdefault(event_id, index) != index
        ):
            # one eventID on two different events is a mix-up: the history could no longer be matched to
            # what was sent
            result.status, result.code = "rejected", "duplicate_event_id"
            result.field = f"epcisBody.eventList[{index}].eventID"
            result.reason = f"{result.field}: {event_id} is already the eventID of event {first_with_id[event_id]}"
            continue
        future = repository.future_error(event, index)
        if future is not None:
            result.status, result.code, result.reason, result.field = (
                "rejected",
                future.code,
                future.message,
                future.field,
            )
            continue
        if identity.declaration:
            result.status, result.code, result.field = "stored", "error_declaration", f"epcisBody.eventList[{index}]"
            result.reason = (
                "an error declaration: stored, and marks the event it names as erroneous once captured; "
                "it is not applied as new business"
            )
            continue
        path = f"epcisBody.eventList[{index}]"
        if repository.REPORTED_MARKER in event:
            _keep_report(result, event, path, org)
            continue
        if chain is not None and chainmatch.claims_chain(event):
            try:
                match = chain.match(event, path)
            except LotlineError as exc:
                result.status, result.code, result.reason = "rejected", exc.code, exc.message
                result.field = exc.field or path
                continue
            if match is not None:
                result.status, result.code, result.field = "stored", chainmatch.KNOWN, path
                result.attribution = match.attribution(chain.orgs)
                result.reason = (
                    f"already on chain: event #{match.seq} of lot {match.lot_code} (GTIN {match.gtin}), a "
                    f"{match.kind.name.lower()} signed by {result.attribution['party']} in transaction "
                    f"{match.tx_hash}; its payload hash and the fields shown verified against the chain, "
                    "not written again"
                )
                continue
        try:
            steps += planner.plan(index, event)
        except Reported as exc:
            result.status, result.code, result.reason, result.field = "stored", exc.code, exc.message, exc.field
            result.attribution = {
                "party": exc.party.name,
                "gln": exc.gln,
                "source": "location",
                "reportedBy": org.name,
            }
        except Unsupported as exc:
            result.status, result.code, result.reason, result.field = "stored", "not_mapped", exc.message, exc.field
        except LotlineError as exc:
            if exc.code in STORED_ONLY:
                result.status, result.code, result.reason = "stored", exc.code, exc.message
                result.field = exc.field or f"epcisBody.eventList[{index}]"
                continue
            result.status, result.code, result.reason = "rejected", exc.code, exc.message
            result.field = exc.field or f"epcisBody.eventList[{index}]"
    if not [r for r in results if r.status == "rejected"]:
        _rehearse(ctx, org, steps, results, planner.checked - planner.on_chain)
    bad = [r for r in results if r.status == "rejected"]
    if bad:
        first = bad[0]
        raise CaptureRejected(
            f"{len(bad)} of {len(results)} event(s) cannot be captured, so nothing was recorded; first: "
            f"event {first.index}: {first.reason}",
            results,
            field=first.field,
        )
    for number, step in enumerate(steps):
        step.number = number
    return CapturePlan(results, steps, planner.checked - planner.on_chain)


def _keep_report(result: EventResult, event: Mapping[str, Any], path: str, org: Organisation) -> None:
    """An event an export marked ``lotline:reported`` (another organisation's event, reported by a capturer):
    stored as reported with the attribution it came with, whoever captures it now; never applied."""
    field = f"{path}.{repository.REPORTED_MARKER}"
    marker = event[repository.REPORTED_MARKER]
    if not (
        isinstance(marker, Mapping)
        and all(isinstance(marker.get(key), str) and marker[key].strip() for key in ("party", "reportedBy"))
        and isinstance(marker.get("gln"), str | None)
    ):
        result.status, result.code, result.field = "rejected", "invalid_report", field
        result.reason = (
            f"{field}: must be an object naming the organisation whose event it is (party) and the one that "
            "reported it (reportedBy), with its GLN (gln) if known"
        )
        return
    result.status, result.code, result.field = "stored", Reported.code, field
    result.attribution = {
        "party": marker["party"],
        **({"gln": marker["gln"]} if marker.get("gln") else {}),
        "source": "report",
        "reportedBy": marker["reportedBy"],
        "capturedBy": org.name,
    }
    result.reason = (
        f"{marker['party']}'s event, reported by {marker['reportedBy']} (the document's {repository.REPORTED_MARKER}): "
        f"stored as reported, not applied to the lots"
    )


def new_lot_ids(steps: Sequence[Step]) -> list[str]:
    """The on-chain ids of the lots ``steps`` create."""
    keys = [s.key for s in steps if s.action == "create" and s.key] + [
        o["key"] for s in steps if s.action == "transform" for o in s.outputs
    ]
    return [hex32(lot_id(*key)) for key in keys]


def written(event: Event) -> dict[str, Any]:
    """What one captured Lotline event is reported as (the ``lotline_events`` of an EPCIS event's result)."""
    item = event.lot
    return {
        "kind": EventKind(int(event.kind)).name.lower(),
        "gtin": item.gtin,
        "lot_code": item.lot_code,
        "event_id": event.id,
        "status": event.status,
        "tx_hash": event.tx_hash,
    }


def capture(ctx: Ctx, org: Organisation, document: object) -> CaptureResult:
    """Capture an EPCIS 2.0 document for ``org`` at once, in this unit of work: plan (``plan_capture``), then
    write every step. The API stores a capture job instead (``jobs.submit``), written in batches.

    Raises InvalidInput (schema), CaptureRejected (422, a result per event) before anything is written.
    """
    plan = plan_capture(ctx, org, document)
    writer = Writer(ctx, org, absent=plan.absent)
    for step in plan.steps:
        writer.write(step)
    writer.flush()
    results = plan.results
    for index, event in writer.written:
        results[index].writes.append(written(event))
    for result in results:
        if result.status == "accepted":
            result.status = "captured"
    return CaptureResult(results, writer.transactions)
