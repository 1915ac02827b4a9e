"""Store rows as the API's JSON (the shapes the OpenAPI components describe)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from supply_chain.domain.events import visible_view
from supply_chain.domain.identifiers import digital_link
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import format_quantity
from supply_chain.services import access, verification_state, views
from supply_chain.store.models import ApiToken, Event, Location, Lot, Organisation, Product, WebhookEndpoint


def _iso(value: datetime | Any | None) -> str | None:
    return value.isoformat() if value is not None else None


def org_ref(org: Organisation | None) -> dict[str, Any] | None:
    return {"id": org.id, "name": org.name} if org is not None else None


def organisation(org: Organisation) -> dict[str, Any]:
    return {
        "id": org.id,
        "name": org.name,
        "roles": list(org.roles),
        "chain_address": org.chain_address,
        "gs1_company_prefix": org.gs1_company_prefix,
        "gs1_company_prefixes": org.company_prefixes,
    }


def product(item: Product) -> dict[str, Any]:
    return {
        "gtin": item.gtin,
        "name": item.name,
        "category": item.category,
        "unit": item.unit,
        "on_food_traceability_list": bool(item.on_food_traceability_list),
        "commodity": item.commodity,
        "variety": item.variety,
        "organisation": org_ref(item.organisation),
    }


def location(item: Location) -> dict[str, Any]:
    return {
        "gln": item.gln,
        "name": item.name,
        "address": item.address,
        "latitude": item.latitude,
        "longitude": item.longitude,
        "kind": item.kind,
        "organisation": org_ref(item.organisation),
    }


def lot(item: Lot, base_url: str) -> dict[str, Any]:
    return {
        "gtin": item.gtin,
        "lot_code": item.lot_code,
        "lot_id": item.lot_id,
        "digital_link": digital_link(base_url, item.gtin, item.lot_code),
        "product": {"gtin": item.product.gtin, "name": item.product.name},
        "status": item.status,
        "recalled_via": (
            {"gtin": item.recall_source.gtin, "lot_code": item.recall_source.lot_code}
            if item.recall_source is not None and item.recall_source_id != item.id
            else None
        ),
        "quantity": format_quantity(item.quantity),
        "initial_quantity": format_quantity(item.initial_quantity),
        "unit": item.unit,
        "creator": org_ref(item.creator),
        "custodian": org_ref(item.custodian),
        "pending_custodian": org_ref(item.pending_custodian),
        "event_count": item.event_count,
        "head_hash": item.head_hash,
        "harvest_date": _iso(item.harvest_date),
        "pack_date": _iso(item.pack_date),
        "origin_gln": item.origin_location.gln if item.origin_location else None,
        "inputs": [
            {
                "gtin": e.input_lot.gtin,
                "lot_code": e.input_lot.lot_code,
                "quantity": format_quantity(e.quantity),
                "unit": e.unit,
            }
            for e in item.inputs
        ],
        "verification": {
            "state": verification_state.lot_state(item),
            "detail": item.verification_detail,
            "verified_at": _iso(item.verified_at),
        },
        "created_at": _iso(item.created_at),
    }


def event(item: Event, viewer: Organisation) -> dict[str, Any]:
    kind = EventKind(int(item.kind))
    return {
        "id": item.id,
        "seq": item.seq,
        "kind": kind.name.lower(),
        "label": views.kind_label(kind),
        "actor": org_ref(item.actor),
        "occurred_at": _iso(item.occurred_at),
        "recorded_at": _iso(item.recorded_at),
        "status": item.status,
        "payload": visible_view(kind, item.payload or {}, access.level_for(item, viewer)),
        "payload_hash": item.payload_hash,
        "proof": access.event_proof(item, access.level_for(item, viewer)),
        "tx_hash": item.tx_hash,
        "block_number": item.block_number,
        "failure_reason": item.failure_reason,
        "lot": {"gtin": item.lot.gtin, "lot_code": item.lot.lot_code},
    }


def token(item: ApiToken) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "scope": item.scope,
        "created_at": _iso(item.created_at),
        "last_used_at": _iso(item.last_used_at),
        "revoked_at": _iso(item.revoked_at),
    }


def webhook(item: WebhookEndpoint) -> dict[str, Any]:
    return {"id": item.id, "url": item.url, "active": item.active, "created_at": _iso(item.created_at)}
