"""The ``/api/v1`` endpoints: one view per dashboard action, plus trace, verify, EPCIS and FSMA 204 exports.

Each view is declared with ``spec.operation`` (path, scope, roles, and the pydantic models of ``models`` for its
query, body and answers); role rules are those of the dashboard, and the services enforce custody and status
with the same errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response, current_app, jsonify, request
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from app.api import bp, models, serialize
from app.api.spec import Call, openapi_document, operation, page, refusal
from app.body_limits import FILE_MIMETYPES
from app.web import (
    CREATOR_ROLES,
    HANDLER_ROLES,
    ONBOARDING_ROLES,
    OVERSIGHT_ROLES,
    RECEIVING_ROLES,
    TRACE_ROLES,
    rule_roles,
)
from supply_chain.domain.errors import Conflict, InvalidInput, NotFound
from supply_chain.domain.events import Visibility, visible_view
from supply_chain.domain.identifiers import digital_link, encode_lot_code
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import Action
from supply_chain.services import access, credit, delivery, epcis, fsma, imports, orgs, tokens, trace, views
from supply_chain.services import lots as lot_service
from supply_chain.services import recalls as recall_service
from supply_chain.services.epcis import jobs as capture_jobs
from supply_chain.services.epcis import masterdata as epcis_masterdata
from supply_chain.services.epcis import named, repository
from supply_chain.services.epcis import xml as epcis_xml
from supply_chain.services.epcis.vocabulary import CONTEXT
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import CaptureJob, Event, Location, Lot, Organisation, Product, WebhookEndpoint

EPCIS_MEDIA = "application/ld+json"
EPCIS_XML_CONTENT = {"type": "string", "description": "An EPCIS 2.0 XML document (valid against the 2.0 XSD)"}


def _created(data: Any) -> Response:
    response = jsonify(data)
    response.status_code = 201
    return response


def _lot(call: Call) -> Lot:
    """The lot named by the path, if the calling organisation may see it (404 otherwise, like a lot that
    does not exist, so labels cannot be probed)."""
    item = lot_service.get_lot(call.ctx, call.path["gtin"], call.path["lot"])
    if not access.can_see_lot(call.ctx, call.org, item):
        raise NotFound(f"no lot {item.lot_code} of GTIN {item.gtin} visible to {call.org.name}", code="unknown_lot")
    return item


def _lot_json(call: Call, item: Lot) -> dict[str, Any]:
    return serialize.lot(item, call.ctx.settings.public_url)


def _action(call: Call, item: Lot, event: Event, status: int = 201) -> Response:
    call.ctx.session.refresh(item)
    response = jsonify({"lot": _lot_json(call, item), "event": serialize.event(event, call.org)})
    response.status_code = status
    return response


def _idem(call: Call) -> str | None:
    """The services' own idempotency key for this request (hashed: keys may be 200 characters long)."""
    if not call.idempotency_key:
        return None
    return "api:" + hashlib.sha256(call.idempotency_key.encode()).hexdigest()[:40]


# ------------------------------------------------------------------ the document and who am I


@operation(
    bp,
    "GET",
    "/openapi.json",
    "getOpenApiDocument",
    summary="This OpenAPI 3.1 document",
    tag="Meta",
    scope="public",
    responses={200: ("The OpenAPI document", {"application/json": {"type": "object"}})},
)
def openapi(call: Call) -> Response:
    """The OpenAPI document; no token needed."""
    return jsonify(openapi_document())


@operation(
    bp, "GET", "/me", "getMe", summary="Show the calling organisation and token", tag="Meta", responses={200: models.Me}
)
def me(call: Call) -> Response:
    """Which organisation the token acts for, its roles, and the token's scope."""
    token = tokens.get(call.ctx, call.org, call.token_id)
    return jsonify(
        {
            "organisation": serialize.organisation(call.org),
            "token": {"id": token.id, "name": token.name, "scope": token.scope},
        }
    )


@operation(
    bp,
    "GET",
    "/organisations",
    "listOrganisations",
    summary="List the network's organisations",
    tag="Meta",
    query=models.PageQuery,
    responses={200: models.OrganisationPage},
)
def list_organisations(call: Call) -> Response:
    """Every organisation of the network with its roles (to pick the receiver of a shipment)."""
    statement = select(Organisation).options(selectinload(Organisation.extra_prefixes))
    return page(call, statement, Organisation.id, serialize.organisation)


@operation(
    bp,
    "POST",
    "/organisations",
    "createOrganisation",
    summary="Onboard an organisation",
    tag="Master data",
    scope="write",
    roles=ONBOARDING_ROLES,
    body=models.NewOrganisation,
    responses={201: models.CreatedOrganisation},
)
def create_organisation(call: Call) -> Response:
    """Onboard an organisation: a fresh chain key, its roles granted on chain and its GS1 company prefixes
    registered to its key (so only it creates lots of GTINs under them), in one transaction. The answer holds
    a write token of the new organisation, shown once (it creates its own further tokens). The admin role is
    not granted over the API."""
    body = call.body
    if "admin" in body["roles"]:
        raise InvalidInput("the admin role is not granted over the API", field="roles")
    prefixes = body.get("gs1_company_prefixes") or []
    org = orgs.onboard(call.ctx, call.org, body["name"], body["roles"], prefixes[0] if prefixes else None, prefixes[1:])
    row, plain = tokens.create(call.ctx, org, "onboarding", "write")
    call.ctx.session.commit()
    return _created({"organisation": serialize.organisation(org), "token": serialize.token(row) | {"token": plain}})


@operation(
    bp,
    "POST",
    "/organisations/{org_id}/prefixes",
    "addCompanyPrefix",
    summary="Add a GS1 company prefix to an organisation",
    tag="Master data",
    scope="write",
    roles=ONBOARDING_ROLES,
    body=models.NewCompanyPrefix,
    responses={201: models.Organisation},
)
def add_company_prefix(call: Call) -> Response:
    """Register a further GS1 company prefix to an organisation, on chain and here: its products and locations
    may then be under any of its prefixes. A prefix overlapping one already held is a 409 (`prefix_taken`)."""
    org = views.organisation(call.ctx, int(call.path["org_id"]))
    orgs.add_company_prefix(call.ctx, call.org, org, call.body["gs1_company_prefix"])
    call.ctx.session.commit()
    return _created(serialize.organisation(org))


@operation(
    bp,
    "GET",
    "/organisations/{org_id}/credit",
    "getOrganisationCredit",
    summary="Show an organisation's credit record",
    tag="Meta",
    responses={200: models.CreditRecord},
)
def organisation_credit(call: Call) -> Response:
    """An organisation's compliance record month by month over the last 12 months and its grade (A-D), with
    the rule in words and the thresholds that moved it down. Any organisation may read any other's (a buyer
    checks a supplier)."""
    return jsonify(credit.record(call.ctx, views.organisation(call.ctx, int(call.path["org_id"]))))


# ------------------------------------------------------------------ tokens


@operation(
    bp,
    "GET",
    "/tokens",
    "listTokens",
    summary="List the organisation's API tokens",
    tag="Tokens",
    query=models.PageQuery,
    responses={200: models.TokenPage},
)
def list_tokens(call: Call) -> Response:
    """The organisation's tokens, newest first, revoked ones included (never the token itself)."""
    from supply_chain.store.models import ApiToken

    return page(
        call,
        select(ApiToken).where(ApiToken.organisation_id == call.org.id),
        ApiToken.id,
        serialize.token,
        descending=True,
    )


@operation(
    bp,
    "POST",
    "/tokens",
    "createToken",
    summary="Create an API token",
    tag="Tokens",
    scope="write",
    body=models.NewToken,
    responses={201: models.CreatedToken},
)
def create_token(call: Call) -> Response:
    """Create a read or write token for the organisation. The token is in the answer once; only its hash is
    stored."""
    row, plain = tokens.create(call.ctx, call.org, call.body["name"], call.body.get("scope", "read"))
    call.ctx.session.commit()
    return _created(serialize.token(row) | {"token": plain})


@operation(
    bp,
    "DELETE",
    "/tokens/{token_id}",
    "revokeToken",
    summary="Revoke an API token",
    tag="Tokens",
    scope="write",
    responses={200: models.Token},
)
def revoke_token(call: Call) -> Response:
    """Revoke one of the organisation's tokens; it stops working at once. The token making the request cannot
    revoke itself (use another token, or the dashboard)."""
    token_id = int(call.path["token_id"])
    if token_id == call.token_id:
        raise Conflict(
            "a token cannot revoke itself: use another write token or the dashboard",
            field="token_id",
            code="token_in_use",
        )
    row = tokens.revoke(call.ctx, call.org, token_id)
    call.ctx.session.commit()
    return jsonify(serialize.token(row))


# ------------------------------------------------------------------ webhooks


@operation(
    bp,
    "GET",
    "/webhooks",
    "listWebhooks",
    summary="List the organisation's webhook endpoints",
    tag="Webhooks",
    query=models.PageQuery,
    responses={200: models.WebhookPage},
)
def list_webhooks(call: Call) -> Response:
    """The endpoints Lotline posts the organisation's notices to (never their secrets)."""
    return page(
        call,
        select(WebhookEndpoint).where(WebhookEndpoint.organisation_id == call.org.id),
        WebhookEndpoint.id,
        serialize.webhook,
    )


@operation(
    bp,
    "POST",
    "/webhooks",
    "createWebhook",
    summary="Register a webhook endpoint",
    tag="Webhooks",
    scope="write",
    body=models.NewWebhook,
    responses={201: models.CreatedWebhook},
)
def create_webhook(call: Call) -> Response:
    """Register an endpoint for the organisation's notices. Each is POSTed as JSON with the headers
    Lotline-Event, Lotline-Delivery and Lotline-Signature (t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>" under
    the secret); 2xx is a delivery, anything else is retried. The secret is in this answer only (stored
    encrypted). See docs/notifications.md."""
    endpoint, secret = delivery.create_endpoint(
        call.ctx, call.org, call.body["url"], active=call.body.get("active", True)
    )
    call.ctx.session.commit()
    return _created(serialize.webhook(endpoint) | {"secret": secret})


@operation(
    bp,
    "DELETE",
    "/webhooks/{webhook_id}",
    "deleteWebhook",
    summary="Delete a webhook endpoint",
    tag="Webhooks",
    scope="write",
    responses={200: models.Webhook},
)
def delete_webhook(call: Call) -> Response:
    """Delete one of the organisation's endpoints: nothing more is sent to it (deliveries waiting for it are
    cancelled; the log keeps them)."""
    endpoint = delivery.delete_endpoint(call.ctx, call.org, int(call.path["webhook_id"]))
    data = serialize.webhook(endpoint)
    call.ctx.session.commit()
    return jsonify(data)


# ------------------------------------------------------------------ products and locations


@operation(
    bp,
    "GET",
    "/products",
    "listProducts",
    summary="List the organisation's products",
    tag="Catalogue",
    query=models.PageQuery,
    responses={200: models.ProductPage},
)
def list_products(call: Call) -> Response:
    """Products (GTINs) registered by the calling organisation."""
    statement = (
        select(Product).where(Product.organisation_id == call.org.id).options(selectinload(Product.organisation))
    )
    return page(call, statement, Product.id, serialize.product)


@operation(
    bp,
    "POST",
    "/products",
    "createProduct",
    summary="Register a product",
    tag="Catalogue",
    scope="write",
    roles=CREATOR_ROLES,
    body=models.NewProduct,
    responses={201: models.Product},
)
def create_product(call: Call) -> Response:
    """Register a GTIN; it must be under the organisation's GS1 company prefix when it has one."""
    body = call.body
    item = orgs.register_product(
        call.ctx,
        call.org,
        body["gtin"],
        body["name"],
        body.get("category"),
        bool(body.get("on_food_traceability_list", False)),
        body.get("unit") or "kg",
        body.get("commodity"),
        body.get("variety"),
    )
    call.ctx.session.commit()
    return _created(serialize.product(item))


@operation(
    bp,
    "GET",
    "/locations",
    "listLocations",
    summary="List registered locations",
    tag="Catalogue",
    query=models.LocationQuery,
    responses={200: models.LocationPage},
)
def list_locations(call: Call) -> Response:
    """Every registered location (GLN) of the network, or only the organisation's own."""
    statement = select(Location).options(selectinload(Location.organisation))
    if call.query.get("mine"):
        statement = statement.where(Location.organisation_id == call.org.id)
    return page(call, statement, Location.id, serialize.location)


@operation(
    bp,
    "POST",
    "/locations",
    "createLocation",
    summary="Register a location",
    tag="Catalogue",
    scope="write",
    roles=HANDLER_ROLES,
    body=models.NewLocation,
    responses={201: models.Location},
)
def create_location(call: Call) -> Response:
    """Register a site by its GLN (under the organisation's GS1 company prefix when it has one)."""
    body = call.body
    item = orgs.register_location(
        call.ctx,
        call.org,
        body["gln"],
        body["name"],
        body.get("address"),
        body.get("latitude"),
        body.get("longitude"),
        body.get("kind") or "other",
    )
    call.ctx.session.commit()
    return _created(serialize.location(item))


# ------------------------------------------------------------------ lots


@operation(
    bp,
    "GET",
    "/lots",
    "listLots",
    summary="List lots",
    tag="Lots",
    query=models.LotQuery,
    responses={200: models.LotPage},
)
def list_lots(call: Call) -> Response:
    """The lots the organisation created, holds or was offered, newest first; inspectors and regulators see
    every lot."""
    statement = (
        select(Lot)
        .join(Product, Lot.product_id == Product.id)
        .options(selectinload(Lot.product), selectinload(Lot.custodian), selectinload(Lot.creator))
    )
    if not set(OVERSIGHT_ROLES) & set(call.org.roles):
        statement = statement.where(
            or_(
                Lot.creator_org_id == call.org.id,
                Lot.custodian_org_id == call.org.id,
                Lot.pending_custodian_org_id == call.org.id,
            )
        )
    if call.query.get("status"):
        statement = statement.where(Lot.status == call.query["status"])
    if q := (call.query.get("q") or "").strip():
        statement = statement.where(views.text_filter(q))
    return page(call, statement, Lot.id, lambda item: _lot_json(call, item), descending=True)


@operation(
    bp,
    "POST",
    "/lots",
    "createLot",
    summary="Create a lot",
    tag="Lots",
    scope="write",
    roles=CREATOR_ROLES,
    body=models.NewLot,
    responses={201: models.Lot},
)
def create_lot(call: Call) -> Response:
    """Create a lot at harvesting, initial packing or first land-based receiving, with that event's KDEs
    (HarvestingKDEs, InitialPackingKDEs, FirstLandBasedReceivingKDEs). The lot is anchored on chain."""
    body = call.body
    item = lot_service.create_lot(
        call.ctx,
        call.org,
        body["gtin"],
        body["lot_code"],
        EventKind[body["kind"].upper()],
        body["payload"],
        body["quantity"],
        body.get("unit"),
        idempotency_key=_idem(call),
    )
    call.ctx.session.refresh(item)
    return _created(_lot_json(call, item))


@operation(bp, "GET", "/lots/{gtin}/{lot}", "getLot", summary="Show a lot", tag="Lots", responses={200: models.Lot})
def get_lot(call: Call) -> Response:
    """A lot with its status, custodian, quantity left, inputs and last verification."""
    return jsonify(_lot_json(call, _lot(call)))


@operation(
    bp,
    "GET",
    "/lots/{gtin}/{lot}/events",
    "listLotEvents",
    summary="List a lot's events",
    tag="Lots",
    query=models.PageQuery,
    responses={200: models.EventPage},
)
def list_events(call: Call) -> Response:
    """The lot's events in the order they were recorded, each payload at the caller's level (all fields of
    its own events, the consortium fields of others')."""
    item = _lot(call)
    statement = select(Event).where(Event.lot_id == item.id).options(selectinload(Event.actor))
    return page(call, statement, Event.id, lambda e: serialize.event(e, call.org))


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/events",
    "recordLotEvent",
    summary="Record an event on a lot",
    tag="Lots",
    scope="write",
    roles=HANDLER_ROLES,
    body=models.NewEvent,
    responses={201: models.LotAction},
)
def record_event(call: Call) -> Response:
    """Record cooling, initial packing, harvesting, first land-based receiving or an observation on a lot the
    organisation holds. Quantity and unit default to what the lot holds."""
    item = _lot(call)
    kind = EventKind[call.body["kind"].upper()]
    event = lot_service.record_event(call.ctx, call.org, item, kind, call.body["payload"], idempotency_key=_idem(call))
    return _action(call, item, event)


# ------------------------------------------------------------------ custody


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/shipments",
    "shipLot",
    summary="Ship a lot (offer custody)",
    tag="Custody",
    scope="write",
    roles=HANDLER_ROLES,
    body=models.Shipment,
    responses={201: models.LotAction},
)
def ship(call: Call) -> Response:
    """The shipping CTE: offer the lot to another organisation; it is in transit until accepted or refused.
    The receiver is `to` (an organisation id) or, by default, the organisation owning `payload.to_gln`."""
    item = _lot(call)
    payload = call.body["payload"]
    if "to" in call.body:
        to = call.ctx.session.get(Organisation, call.body["to"])
        if to is None:
            raise InvalidInput(f"to: no organisation {call.body['to']}", field="to", code="unknown_organisation")
    else:
        gln = payload.get("to_gln")
        if not isinstance(gln, str):
            raise InvalidInput("payload.to_gln: is required (the ship-to location)", field="payload.to_gln")
        to = orgs.location_by_gln(call.ctx, gln.strip(), field="payload.to_gln").organisation
    event = lot_service.offer_custody(call.ctx, call.org, item, to, payload, idempotency_key=_idem(call))
    return _action(call, item, event)


def _offered(call: Call, action: Action) -> Lot:
    """The lot if the rulebook lets the caller take ``action`` (accept / reject) on it now."""
    item = _lot(call)
    lot_service.check(call.ctx, action, call.org, item)
    return item


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/custody/accept",
    "acceptCustody",
    summary="Receive a lot",
    tag="Custody",
    scope="write",
    roles=RECEIVING_ROLES,
    body=models.Receipt,
    responses={201: models.LotAction},
)
def accept(call: Call) -> Response:
    """The receiving CTE: take custody of a lot offered to the organisation. KDEs left out are taken from the
    shipment; receive_date defaults to today."""
    item = _offered(call, Action.ACCEPT)
    offer = views.last_offer(item)
    shipped = visible_view(EventKind.SHIPPING, offer.payload, Visibility.CONSORTIUM) if offer else {}
    defaults = {
        k: shipped[k]
        for k in (
            "from_gln",
            "to_gln",
            "reference_document_type",
            "reference_document_number",
            "tlc_source_gln",
            "product_description",
            "quantity",
            "unit",
        )
        if k in shipped
    }
    defaults["receive_date"] = datetime.now(UTC).date().isoformat()
    payload = defaults | {k: v for k, v in (call.body.get("payload") or {}).items() if v not in (None, "")}
    event = lot_service.accept_custody(call.ctx, call.org, item, payload)
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/custody/reject",
    "rejectCustody",
    summary="Refuse a delivery",
    tag="Custody",
    scope="write",
    roles=RECEIVING_ROLES,
    body=models.Reason,
    responses={201: models.LotAction},
)
def reject(call: Call) -> Response:
    """Refuse a lot offered to the organisation; it goes back to the shipper."""
    item = _offered(call, Action.REJECT)
    event = lot_service.reject_custody(call.ctx, call.org, item, call.body["reason"], call.body.get("date"))
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/custody/cancel",
    "cancelCustodyOffer",
    summary="Cancel a shipment",
    tag="Custody",
    scope="write",
    roles=HANDLER_ROLES,
    body=models.Reason,
    responses={201: models.LotAction},
)
def cancel(call: Call) -> Response:
    """Withdraw the organisation's own custody offer while the lot is in transit."""
    item = _lot(call)
    event = lot_service.cancel_custody_offer(call.ctx, call.org, item, call.body["reason"], call.body.get("date"))
    return _action(call, item, event)


# ------------------------------------------------------------------ inspections, holds, recalls, close, readings


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/inspections",
    "recordInspection",
    summary="Record an inspection",
    tag="Inspections",
    scope="write",
    roles=("inspector",),
    body=models.NewInspection,
    responses={201: models.LotAction},
)
def inspect(call: Call) -> Response:
    """An inspection or lab result, with an optional certificate (PDF, PNG or JPEG, base64, at most 5 MiB)
    whose SHA-256 is recorded; a fail puts the lot on hold."""
    item = _lot(call)
    body = call.body
    certificate = None
    if body.get("certificate"):
        cert = body["certificate"]
        try:
            content = base64.b64decode(cert["content_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                "certificate.content_base64: not valid base64", field="certificate.content_base64", code="invalid_field"
            ) from None
        certificate = (cert["filename"], cert["content_type"], content)
    event = lot_service.inspect(
        call.ctx, call.org, item, body["outcome"], body["payload"], certificate, body.get("notes")
    )
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/holds",
    "holdLot",
    summary="Put a lot on hold",
    tag="Inspections",
    scope="write",
    roles=rule_roles(Action.HOLD),
    body=models.Reason,
    responses={201: models.LotAction},
)
def hold(call: Call) -> Response:
    """Hold a lot: it cannot be shipped or used until released."""
    item = _lot(call)
    event = lot_service.hold(call.ctx, call.org, item, call.body["reason"], call.body.get("date"))
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/release",
    "releaseLot",
    summary="Lift a hold",
    tag="Inspections",
    scope="write",
    roles=("inspector",),
    body=models.Reason,
    responses={201: models.LotAction},
)
def release(call: Call) -> Response:
    """Release a held lot."""
    item = _lot(call)
    event = lot_service.release(call.ctx, call.org, item, call.body["reason"], call.body.get("date"))
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/recalls",
    "recallLot",
    summary="Recall a lot",
    tag="Recalls",
    scope="write",
    body=models.NewRecall,
    responses={201: models.LotAction},
)
def recall(call: Call) -> Response:
    """Recall a lot (FDA class I, II or III); every lot made from it is affected. A regulator, an inspector or
    the lot's creator (a voluntary recall) may recall."""
    item = _lot(call)
    body = call.body
    event = recall_service.issue_now(
        call.ctx,
        call.org,
        item,
        body["reason"],
        body["recall_class"],
        body["instructions"],
        body.get("date"),
        body.get("contact"),
    )
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/close",
    "closeLot",
    summary="Close a lot",
    tag="Lots",
    scope="write",
    roles=HANDLER_ROLES,
    body=models.Reason,
    responses={201: models.LotAction},
)
def close(call: Call) -> Response:
    """Close a lot the organisation holds (sold out, consumed, destroyed)."""
    item = _lot(call)
    event = lot_service.close(call.ctx, call.org, item, call.body["reason"], call.body.get("date"))
    return _action(call, item, event)


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/readings",
    "anchorReadings",
    summary="Anchor cold-chain readings",
    tag="Lots",
    scope="write",
    roles=HANDLER_ROLES,
    body=models.Readings,
    responses={201: models.LotAction},
)
def readings(call: Call) -> Response:
    """Anchor a batch of sensor readings by their Merkle root (the custodian; while in transit the sender, the
    receiver once it has accepted)."""
    body = call.body
    rows = reading_rows(body["readings"])
    item = _lot(call)
    event = lot_service.anchor_readings(call.ctx, call.org, item, rows, body.get("sensor_id"), body.get("location_gln"))
    return _action(call, item, event)


_TAKEN_AT_LENGTH = 40  # models.Date's maxLength


def reading_rows(readings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The readings of an upload as the services take them (numbers as their JSON text), once each has the
    fields and JSON types ``models.Reading`` documents; the first reading that has not is refused, naming
    its field (``readings[17].temperature_c``). The model checked only that each is an object: a reading's
    rules (a date-time with offset, plausible values) are the domain's (``lots.validate_readings``)."""
    rows: list[dict[str, Any]] = []
    for index, raw in enumerate(readings):
        taken, temp, humidity = raw.get("taken_at"), raw.get("temperature_c"), raw.get("humidity", "")
        if type(taken) is str and len(taken) <= _TAKEN_AT_LENGTH and type(temp) is str:
            if type(humidity) is str:  # the usual reading: texts throughout
                rows.append(raw)
                continue
            if type(humidity) is int or type(humidity) is float:  # a humidity sent as a JSON number
                rows.append({**raw, "humidity": str(humidity)})
                continue
        rows.append(_reading_row(raw, index))
    return rows


def _reading_row(raw: dict[str, Any], index: int) -> dict[str, Any]:
    """``reading_rows`` of one reading that is not all texts: its numbers as text, or the API's refusal."""
    where = f"readings[{index}]"
    for key in ("taken_at", "temperature_c"):
        if key not in raw:
            raise InvalidInput(f"{where}.{key}: is required", field=f"{where}.{key}", code="missing_field")
    taken = raw["taken_at"]
    if type(taken) is not str:
        raise refusal(f"{where}.taken_at", taken, "must be of type string")
    if len(taken) > _TAKEN_AT_LENGTH:
        raise refusal(f"{where}.taken_at", taken, f"must be at most {_TAKEN_AT_LENGTH} characters")
    row = dict(raw)
    for key in ("temperature_c", "humidity"):
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise refusal(f"{where}.{key}", value, "must be of type string or number")
        row[key] = str(value)
    return row


@operation(
    bp,
    "POST",
    "/transformations",
    "createTransformation",
    summary="Transform lots into new lots",
    tag="Lots",
    scope="write",
    roles=CREATOR_ROLES,
    body=models.NewTransformation,
    responses={201: models.Transformation},
)
def transform(call: Call) -> Response:
    """Make new lots from lots the organisation holds (wash, cut, mix, split, merge), in one transaction;
    what each output consumes is taken from its inputs."""
    body = call.body
    outputs = []
    for i, out in enumerate(body["outputs"]):
        inputs = []
        for j, given in enumerate(out["inputs"]):
            try:
                source = lot_service.get_lot(call.ctx, given["gtin"], given["lot_code"])
            except NotFound as exc:
                raise NotFound(exc.message, field=f"outputs[{i}].inputs[{j}]", code=exc.code) from None
            if not access.can_see_lot(call.ctx, call.org, source):
                raise NotFound(
                    f"no lot {source.lot_code} of GTIN {source.gtin} visible to {call.org.name}",
                    field=f"outputs[{i}].inputs[{j}]",
                    code="unknown_lot",
                )
            inputs.append((source, given["quantity"]))
        outputs.append(lot_service.NewLot(out["gtin"], out["lot_code"], out["quantity"], out.get("unit"), inputs))
    extra = {"product_description": body["product_description"]} if body.get("product_description") else None
    created = lot_service.transform(
        call.ctx, call.org, outputs, body["location_gln"], body["transformation_date"], extra
    )
    for item in created:
        call.ctx.session.refresh(item)
    return _created({"lots": [_lot_json(call, item) for item in created]})


# ------------------------------------------------------------------ trace and verify


@operation(
    bp,
    "GET",
    "/lots/{gtin}/{lot}/trace",
    "traceLot",
    summary="Trace a lot backward or forward",
    tag="Trace",
    roles=TRACE_ROLES,
    query=models.TraceQuery,
    responses={200: models.Trace},
)
def trace_lot(call: Call) -> Response:
    """Every ancestor or descendant of a lot the organisation can see, with holder, locations and recall
    reach. A lot the organisation may not see itself is an opaque node (`redacted`, `label`, depth and recall
    reach only)."""
    item = _lot(call)
    return jsonify(trace.trace(call.ctx, item, call.query["direction"], viewer=call.org))


@operation(
    bp,
    "POST",
    "/lots/{gtin}/{lot}/verify",
    "verifyLot",
    summary="Verify a lot against the chain",
    tag="Trace",
    responses={200: models.Verification},
)
def verify(call: Call) -> Response:
    """Recompute the lot's payload hashes and head-hash chain and compare them with the chain. Reads only
    (a read token will do); the result is kept as the lot's verification state."""
    item = _lot(call)
    result = verify_lot(call.ctx, item)
    call.ctx.session.commit()
    return jsonify(
        {
            "lot": {"gtin": item.gtin, "lot_code": item.lot_code},
            "state": result.state,
            "detail": result.detail,
            "checked_events": result.checked_events,
            "bad_event_id": result.bad_event_id,
        }
    )


# ------------------------------------------------------------------ EPCIS and FSMA 204


@operation(
    bp,
    "GET",
    "/lots/{gtin}/{lot}/epcis",
    "exportLotEpcis",
    summary="Export a lot as EPCIS 2.0",
    tag="Interchange",
    query=models.EpcisExportQuery,
    responses={
        200: (
            "An EPCIS 2.0 document: JSON-LD, or XML when the client asks for it with Accept",
            {EPCIS_MEDIA: models.EPCISDocument, epcis_xml.EPCIS_XML_MEDIA: EPCIS_XML_CONTENT},
        )
    },
)
def export_epcis(call: Call) -> Response:
    """The lot's events as an EPCIS 2.0 JSON-LD document (docs/epcis.md has the mapping); as EPCIS 2.0 XML
    when `Accept` prefers `application/xml` or `text/xml`."""
    item = _lot(call)
    document = epcis.export_lot(call.ctx, item, ancestors=call.query["ancestors"], viewer=call.org)
    wanted = request.accept_mimetypes.best_match([EPCIS_MEDIA, "application/json", *sorted(epcis_xml.XML_MEDIA_TYPES)])
    if wanted in epcis_xml.XML_MEDIA_TYPES:
        return Response(epcis_xml.document_to_xml(document), mimetype=wanted)
    return Response(json.dumps(document, ensure_ascii=False), mimetype=EPCIS_MEDIA)


@operation(
    bp,
    "POST",
    "/epcis/capture",
    "captureEpcis",
    summary="Capture an EPCIS 2.0 document",
    tag="Interchange",
    scope="write",
    body=models.EPCISDocument,
    body_types=("application/json", EPCIS_MEDIA, *sorted(epcis_xml.XML_MEDIA_TYPES)),
    responses={202: models.CaptureJob},
)
def capture_epcis(call: Call) -> Response:
    """Check an EPCIS 2.0 document and accept it as a capture job: commissioning (ADD) creates lots, shipping
    and receiving move custody, TransformationEvents make new lots, sensor reports are anchored. Every event
    is checked first; if any cannot be captured the whole document is refused (422, a result per event) and
    nothing is written. An accepted document is answered 202 with the job (`Location` is its address): a
    document whose writes fit in one transaction (40 contract calls) is written before the answer (status
    `done`), a larger one in batches in the background (poll the job). The same document sent again while its
    job is queued or running is answered with that job. An EPCIS 2.0 or 1.2 XML document (`application/xml`,
    `text/xml`) is validated against the standard's XSD (a failure names the rule, line and element) and
    captured as its JSON-LD equivalent. Locations and parties described in the header's master data
    (`epcisHeader.epcisMasterData`) are registered first when their GLN is under one of the capturer's GS1
    company prefixes (`master_data` in the answer); a refused document registers none."""
    master_data = epcis_masterdata.register_from_header(call.ctx, call.org, call.body)
    job, earlier = capture_jobs.submit(call.ctx, call.org, call.body, idempotency_key=call.idempotency_key)
    call.ctx.session.commit()
    return _job_accepted(call, job, earlier, lambda job: _job_json(call, job) | {"master_data": master_data})


@operation(
    bp,
    "GET",
    "/epcis/capture/{job_id}",
    "getCaptureJob",
    summary="Show an EPCIS capture job",
    tag="Interchange",
    responses={200: models.CaptureJob},
)
def get_capture_job(call: Call) -> Response:
    """A capture job of the organisation: status, counts (EPCIS events total and written, Lotline writes,
    batches), the result of every event with the Lotline events it wrote, the lots it created, and why it
    failed. Another organisation's job is a 404."""
    job = capture_jobs.get(call.ctx, call.org, int(call.path["job_id"]))
    return jsonify(_job_json(call, job))


@operation(
    bp,
    "GET",
    "/epcis/capture",
    "listCaptureJobs",
    summary="List EPCIS capture jobs",
    tag="Interchange",
    query=models.PageQuery,
    responses={200: models.CaptureJobPage},
)
def list_capture_jobs(call: Call) -> Response:
    """The organisation's capture jobs, newest first, without their per-event results."""
    statement = select(CaptureJob).where(CaptureJob.organisation_id == call.org.id)
    return page(call, statement, CaptureJob.id, lambda job: _job_json(call, job, events=False), descending=True)


# ------------------------------------------------------------------ EPCIS query interface (REST binding)

EPCIS_EVENTS = ("An EPCIS 2.0 query document", {EPCIS_MEDIA: models.EPCISQueryDocument})


def _epcis_events(call: Call, extra: dict[str, str] | None = None) -> Response:
    """Answer a query: the standard parameters of the URL (``request.args``, each possibly repeated) and a
    filter named by the path, as an EPCIS query document; ``Link: <...>; rel="next"`` names the next page."""
    args = _request_args()
    for name, value in (extra or {}).items():
        args[name] = [value]
    return _query_answer(call, args)


def _request_args() -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in request.args}


def _query_answer(call: Call, args: dict[str, list[str]], query_name: str = "SimpleEventQuery") -> Response:
    """The events ``args`` (standard query parameters) select among those the caller may see, one page, as an
    EPCIS query document; ``GS1-EPC-Format: Always_GS1_Digital_Link`` names their GS1 keys as Digital Links
    (the answer's ``GS1-EPC-Format`` says which was done)."""
    links = repository.epc_format(request.headers.get("GS1-EPC-Format"))
    query = repository.parse_query(args)
    rows, next_token = repository.query(call.ctx, call.org, query)
    document = repository.query_document(rows, context=CONTEXT, query_name=query_name, digital_links=links)
    response = Response(json.dumps(document, ensure_ascii=False), mimetype=EPCIS_MEDIA)
    response.headers["GS1-EPC-Format"] = "Always_GS1_Digital_Link" if links else "Never_Translates"
    return _versioned_page(response, next_token)


@operation(
    bp,
    "GET",
    "/epcis/events",
    "queryEpcisEvents",
    summary="Query EPCIS events",
    tag="EPCIS query",
    query=models.EpcisEventQuery,
    responses={200: EPCIS_EVENTS},
)
def query_epcis_events(call: Call) -> Response:
    """The captured EPCIS events matching the standard query parameters, each exactly as captured plus
    `recordTime`, oldest capture first, `perPage` at a time (default 30). An organisation sees the events it
    captured; inspectors and regulators see every captured event (docs/epcis.md, "Who sees which events")."""
    return _epcis_events(call)


@operation(
    bp,
    "GET",
    "/epcis/events/{event_id}",
    "getEpcisEvent",
    summary="Show one EPCIS event",
    tag="EPCIS query",
    responses={200: EPCIS_EVENTS},
)
def get_epcis_event(call: Call) -> Response:
    """One captured event by its eventID (or its CBV event hash ID), as a query document; 404 if none is
    visible. An error declaration shares its eventID with the event it declares: both are answered."""
    response = _epcis_events(call, {"EQ_eventID": call.path["event_id"]})
    if not json.loads(response.get_data())["epcisBody"]["queryResults"]["resultsBody"]["eventList"]:
        raise NotFound(f"no EPCIS event {call.path['event_id']} visible to {call.org.name}", code="unknown_event")
    return response


@operation(
    bp,
    "GET",
    "/epcis/events/{event_id}/anchor",
    "getEpcisEventAnchor",
    summary="Show an EPCIS event's on-chain anchor",
    tag="EPCIS query",
    responses={200: models.EpcisAnchor},
)
def get_epcis_event_anchor(call: Call) -> Response:
    """The event's inclusion proof: its leaf (keccak256 of its canonical JSON as captured), the sibling
    hashes up to its capture job's Merkle root, the anchoring transaction and whether they agree with the
    chain now; whether an error declaration marked it erroneous (naming the corrective events)."""
    return jsonify(repository.proof(call.ctx, call.org, call.path["event_id"]))


@operation(
    bp,
    "GET",
    "/epcis/eventTypes",
    "listEpcisEventTypes",
    summary="List EPCIS event types",
    tag="EPCIS query",
    responses={200: models.EpcisEventTypes},
)
def list_epcis_event_types(call: Call) -> Response:
    """The event types this repository captures and answers: the five of EPCIS 2.0."""
    return _collection(list(repository.EVENT_TYPES))


def _versioned_page(response: Response, next_token: str | None) -> Response:
    """Add the binding's version headers and, when there is a next page, ``Link: <...>; rel="next"`` (this
    request's URL with ``nextPageToken`` replaced)."""
    response.headers["GS1-EPCIS-Version"] = "2.0.0"
    response.headers["GS1-CBV-Version"] = "2.0.0"
    if next_token:
        params = [(k, v) for k, v in request.args.items(multi=True) if k != "nextPageToken"]
        params.append(("nextPageToken", next_token))
        response.headers["Link"] = f'<{request.base_url}?{urlencode(params)}>; rel="next"'
    return response


def _collection(member: list[str], next_token: str | None = None) -> Response:
    """A REST binding collection (``{"@context", "type": "Collection", "member"}``) with the version headers;
    ``Link: <...>; rel="next"`` names the next page."""
    response = jsonify({"@context": CONTEXT[0], "type": "Collection", "member": member})
    return _versioned_page(response, next_token)


def _per_page(call: Call) -> int:
    """``perPage`` of a listing (1-500, default 30)."""
    per_page = call.query.get("perPage")
    if per_page is not None and (not per_page.isdigit() or not 1 <= int(per_page) <= repository.MAX_PER_PAGE):
        raise InvalidInput(
            f"perPage: must be a whole number 1-{repository.MAX_PER_PAGE}, got {per_page!r:.40}", field="perPage"
        )
    return int(per_page or 30)


def _listing(name: str, what: str) -> None:
    def view(call: Call) -> Response:
        values, next_token = repository.listing(
            call.ctx, call.org, name, _per_page(call), call.query.get("nextPageToken")
        )
        return _collection(values, next_token)

    view.__doc__ = (
        f"The {what}, sorted, `perPage` at a time (default 30; the next page is named by the `Link` header). "
        "Only what the events the caller may see name is listed (docs/epcis.md, the listing resources)."
    )
    operation(
        bp,
        "GET",
        f"/epcis/{name}",
        f"listEpcis{name[0].upper()}{name[1:]}",
        summary=f"List EPCIS {name}",
        tag="EPCIS query",
        query=models.EpcisListingQuery,
        responses={200: models.EpcisEventTypes},
    )(view)


_listing("epcs", "EPCs (instance-level identifiers, as GS1 Digital Links where they have one) the events name")
_listing("bizSteps", "business steps: the CBV 2.0 steps and any other step the events use")
_listing("bizLocations", "business locations of the events (as GS1 Digital Links where they have one)")
_listing("readPoints", "read points of the events (as GS1 Digital Links where they have one)")
_listing("dispositions", "dispositions: the CBV 2.0 dispositions and any other the events use")


def _sub_resources(path: str, operation_id: str, name: str) -> None:
    def view(call: Call) -> Response:
        if name == "event_type" and call.path[name] not in repository.EVENT_TYPES:
            raise NotFound(f"eventType: {call.path[name]!r:.60} is not an EPCIS event type", field="eventType")
        return _collection(["events"])

    view.__doc__ = "The sub-resources of this resource (for discovery): `events`."
    operation(
        bp,
        "GET",
        path,
        operation_id,
        summary=f"List the sub-resources of one of the {path.split('/')[2]}",
        tag="EPCIS query",
        responses={200: models.EpcisEventTypes},
    )(view)


_sub_resources("/epcis/eventTypes/{event_type}", "getEpcisEventType", "event_type")
_sub_resources("/epcis/epcs/{epc}", "getEpcisEpc", "epc")
_sub_resources("/epcis/bizSteps/{biz_step}", "getEpcisBizStep", "biz_step")
_sub_resources("/epcis/bizLocations/{biz_location}", "getEpcisBizLocation", "biz_location")
_sub_resources("/epcis/readPoints/{read_point}", "getEpcisReadPoint", "read_point")
_sub_resources("/epcis/dispositions/{disposition}", "getEpcisDisposition", "disposition")


@operation(
    bp,
    "DELETE",
    "/epcis/nextPageToken/{token}",
    "releaseEpcisNextPageToken",
    summary="Release a page token",
    tag="EPCIS query",
    responses={204: ("Nothing held: the token is released", {})},
)
def release_next_page_token(call: Call) -> Response:
    """The REST binding's optional release of what a `nextPageToken` holds. Lotline's tokens hold nothing on
    the server (each names the last item of its page), so a token it gave is answered 204 at once; any other
    text is a 400."""
    if not repository.valid_token(call.path["token"]):
        raise InvalidInput("token: not a token this server gave", field="token", code="invalid_cursor")
    return Response(status=204)


def _by_path(path: str, operation_id: str, name: str, parameter: str, what: str) -> None:
    def view(call: Call) -> Response:
        return _epcis_events(call, {parameter: call.path[name]})

    view.__doc__ = f"The captured events {what}, as a query document (the standard query parameters narrow it further)."
    operation(
        bp,
        "GET",
        path,
        operation_id,
        summary=f"Query EPCIS events by {name.replace('_', ' ')}",
        tag="EPCIS query",
        query=models.EpcisEventQuery,
        responses={200: EPCIS_EVENTS},
    )(view)


_by_path("/epcis/eventTypes/{event_type}/events", "queryEpcisEventsByType", "event_type", "eventType", "of one type")
_by_path("/epcis/epcs/{epc}/events", "queryEpcisEventsByEpc", "epc", "MATCH_anyEPC", "naming an EPC")
_by_path(
    "/epcis/bizSteps/{biz_step}/events", "queryEpcisEventsByBizStep", "biz_step", "EQ_bizStep", "of a business step"
)
_by_path(
    "/epcis/bizLocations/{biz_location}/events",
    "queryEpcisEventsByBizLocation",
    "biz_location",
    "EQ_bizLocation",
    "at a business location",
)
_by_path(
    "/epcis/readPoints/{read_point}/events",
    "queryEpcisEventsByReadPoint",
    "read_point",
    "EQ_readPoint",
    "at a read point",
)
_by_path(
    "/epcis/dispositions/{disposition}/events",
    "queryEpcisEventsByDisposition",
    "disposition",
    "EQ_disposition",
    "with a disposition",
)


# ------------------------------------------------------------------ EPCIS: root, single-event capture, named queries

EPCIS_TOP_LEVEL = (
    "queries", "capture", "events", "eventTypes", "epcs", "readPoints", "bizLocations", "dispositions", "bizSteps",
)  # fmt: skip
"""The top-level resources of the REST binding Lotline serves (``GET /epcis/``)."""


@operation(
    bp,
    "GET",
    "/epcis/",
    "getEpcisRoot",
    summary="List the EPCIS top-level resources",
    tag="EPCIS query",
    responses={200: models.EpcisEventTypes},
)
def epcis_root(call: Call) -> Response:
    """The REST binding's root: the top-level resources this repository serves, as a collection."""
    return _collection(list(EPCIS_TOP_LEVEL))


@operation(
    bp,
    "POST",
    "/epcis/events",
    "captureEpcisEvent",
    summary="Capture one EPCIS event",
    tag="Interchange",
    scope="write",
    body=models.EPCISEvent,
    body_types=("application/json", EPCIS_MEDIA),
    responses={
        201: ("The event as captured (Location is its address)", {EPCIS_MEDIA: {"type": "object"}}),
        202: models.CaptureJob,
    },
)
def capture_epcis_event(call: Call) -> Response:
    """The REST binding's single-event capture: the event (with its `@context`, or GS1's) is captured as a
    document holding only it, through the checks and capture job of `POST /epcis/capture`. Answered 201 with
    the event as stored and `Location` its address (`/epcis/events/{eventID}`, or its hash ID when it has no
    eventID); an event already captured is 409 (`epcisException:ResourceAlreadyExistsException`); a refusal
    is what capture answers (400 naming the field within the event, 422 with its result). Should its writes
    not fit in one transaction it is answered 202 with the capture job, as `/capture` would."""
    job, earlier = capture_jobs.submit_event(call.ctx, call.org, call.body, idempotency_key=call.idempotency_key)
    call.ctx.session.commit()
    _run_submitted(call, job, earlier)
    stored = repository.of_job(call.ctx, job.id) if job.status == "done" else []
    if not stored:
        return _job_accepted(call, job, True, lambda job: _job_json(call, job))
    row = stored[0]
    response = Response(json.dumps(repository.exported(row), ensure_ascii=False), status=201, mimetype=EPCIS_MEDIA)
    response.headers["Location"] = f"{EPCIS_PREFIX}/events/{quote(row.event_id or row.hash_id, safe='')}"
    return _versioned_page(response, None)


@operation(
    bp,
    "POST",
    "/epcis/queries",
    "createEpcisQuery",
    summary="Create a named EPCIS query",
    tag="EPCIS query",
    scope="write",
    body=models.EpcisNamedQueryBody,
    responses={201: models.EpcisNamedQuery},
)
def create_epcis_query(call: Call) -> Response:
    """Store the standard query parameters under a name of the organisation's (`Location`:
    `/epcis/queries/{name}`; its events at `.../events`). The parameters are checked as `GET /epcis/events`
    checks them: one Lotline does not answer, or a bad value, is 400 naming it and nothing is stored; a name
    the organisation already uses is 409 (`epcisException:ResourceAlreadyExistsException`)."""
    row = named.create(call.ctx, call.org, call.body)
    call.ctx.session.commit()
    response = _versioned_page(_created(named.as_json(row)), None)
    response.headers["Location"] = f"{EPCIS_PREFIX}/queries/{row.name}"
    return response


@operation(
    bp,
    "GET",
    "/epcis/queries",
    "listEpcisQueries",
    summary="List the named EPCIS queries",
    tag="EPCIS query",
    query=models.EpcisNamedQueryPageQuery,
    responses={200: ("The organisation's named queries", {"application/json": {"type": "array"}})},
)
def list_epcis_queries(call: Call) -> Response:
    """The organisation's named queries (`[{"name", "query"}]`, as the binding lists them) by name, `perPage`
    at a time (default 30; the next page is named by the `Link` header). Another organisation's are not
    listed."""
    rows, next_token = named.listing(call.ctx, call.org, _per_page(call), call.query.get("nextPageToken"))
    return _versioned_page(jsonify([named.as_json(r) for r in rows]), next_token)


@operation(
    bp,
    "GET",
    "/epcis/queries/{query_name}",
    "getEpcisQuery",
    summary="Show a named EPCIS query",
    tag="EPCIS query",
    responses={200: models.EpcisNamedQuery},
)
def get_epcis_query(call: Call) -> Response:
    """One of the organisation's named queries; another organisation's is a 404."""
    return _versioned_page(jsonify(named.as_json(named.get(call.ctx, call.org, call.path["query_name"]))), None)


@operation(
    bp,
    "DELETE",
    "/epcis/queries/{query_name}",
    "deleteEpcisQuery",
    summary="Delete a named EPCIS query",
    tag="EPCIS query",
    scope="write",
    responses={204: ("Deleted", {})},
)
def delete_epcis_query(call: Call) -> Response:
    """Remove one of the organisation's named queries (204); another organisation's is a 404."""
    named.delete(call.ctx, call.org, call.path["query_name"])
    call.ctx.session.commit()
    return Response(status=204)


@operation(
    bp,
    "GET",
    "/epcis/queries/{query_name}/events",
    "queryEpcisNamedQueryEvents",
    summary="Run a named EPCIS query",
    tag="EPCIS query",
    query=models.EpcisListingQuery,
    responses={200: EPCIS_EVENTS},
)
def query_epcis_named_events(call: Call) -> Response:
    """The events the named query selects among those the caller may see now, as a query document
    (`queryName` is the query's name), `perPage` at a time with the `Link` header; no other parameter is
    taken (400 naming it)."""
    row = named.get(call.ctx, call.org, call.path["query_name"])
    return _query_answer(call, named.run_arguments(row, _request_args()), query_name=row.name)


def _subscription_href(name: str, uid: str) -> str:
    return f"{EPCIS_PREFIX}/queries/{name}/subscriptions/{uid}"


@operation(
    bp,
    "POST",
    "/epcis/queries/{query_name}/subscriptions",
    "subscribeEpcisQuery",
    summary="Subscribe a webhook to a named EPCIS query",
    tag="EPCIS query",
    scope="write",
    body=models.EpcisSubscriptionBody,
    responses={201: models.EpcisSubscription},
)
def subscribe_epcis_query(call: Call) -> Response:
    """Subscribe `dest` to the named query with `stream: true`: after each capture, the newly captured events
    the query selects (among those the organisation may see) are POSTed to `dest` as an EPCIS query document,
    signed in `GS1-Signature` when a `signatureToken` is given, and retried like webhook notices. `dest` is
    checked as webhook endpoints are (no private, loopback or link-local address; again at each try).
    `schedule` is not offered (400). 201 with `Location`; the token is never shown again."""
    sub = named.subscribe(call.ctx, call.org, call.path["query_name"], call.body)
    call.ctx.session.commit()
    response = _versioned_page(_created(named.subscription_json(sub)), None)
    response.headers["Location"] = _subscription_href(sub.query.name, sub.uid)
    return response


@operation(
    bp,
    "GET",
    "/epcis/queries/{query_name}/subscriptions",
    "listEpcisQuerySubscriptions",
    summary="List a named EPCIS query's subscriptions",
    tag="EPCIS query",
    responses={200: ("The query's subscriptions (at most 10)", {"application/json": {"type": "array"}})},
)
def list_epcis_query_subscriptions(call: Call) -> Response:
    """The subscriptions of one of the organisation's named queries, oldest first (without their tokens)."""
    subs = named.subscriptions(call.ctx, call.org, call.path["query_name"])
    return _versioned_page(jsonify([named.subscription_json(s) for s in subs]), None)


@operation(
    bp,
    "GET",
    "/epcis/queries/{query_name}/subscriptions/{subscription_id}",
    "getEpcisQuerySubscription",
    summary="Show a subscription",
    tag="EPCIS query",
    responses={200: models.EpcisSubscription},
)
def get_epcis_query_subscription(call: Call) -> Response:
    """One subscription (without its token); another organisation's is a 404."""
    sub = named.subscription(call.ctx, call.org, call.path["query_name"], call.path["subscription_id"])
    return _versioned_page(jsonify(named.subscription_json(sub)), None)


@operation(
    bp,
    "DELETE",
    "/epcis/queries/{query_name}/subscriptions/{subscription_id}",
    "unsubscribeEpcisQuery",
    summary="Unsubscribe",
    tag="EPCIS query",
    scope="write",
    responses={204: ("Unsubscribed", {})},
)
def unsubscribe_epcis_query(call: Call) -> Response:
    """Delete a subscription (204); deliveries not yet sent are cancelled."""
    named.unsubscribe(call.ctx, call.org, call.path["query_name"], call.path["subscription_id"])
    call.ctx.session.commit()
    return Response(status=204)


EPCIS_DISCOVERY_HEADERS = {
    "GS1-EPCIS-Version": "2.0.0",
    "GS1-EPCIS-Min": "2.0.0",
    "GS1-EPCIS-Max": "2.0.0",
    "GS1-CBV-Version": "2.0.0",
    "GS1-CBV-Min": "2.0.0",
    "GS1-CBV-Max": "2.0.0",
    "GS1-Vendor-Version": "lotline",
}
"""What ``OPTIONS`` on an EPCIS resource announces (the REST binding's discovery headers)."""

EPCIS_PREFIX = f"{bp.url_prefix}/epcis"


@bp.before_request
def _epcis_options() -> Response | None:
    """``OPTIONS`` on a resource of the EPCIS REST binding: 204 with ``Allow`` (the methods its routes take)
    and the discovery headers; no token is needed (it tells only what the server speaks). Other paths keep
    Flask's own answer."""
    if request.method != "OPTIONS" or not request.path.startswith(EPCIS_PREFIX):
        return None
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "DELETE"):
        try:
            rule, _args = adapter.match(request.path, method=method, return_rule=True)
        except HTTPException:
            continue
        if not rule.endpoint.startswith(f"{bp.name}.fallback"):
            allowed.append(method)
    if not allowed:
        return None
    response = Response(status=204)
    response.headers["Allow"] = ", ".join(["OPTIONS", *allowed])
    response.headers.update(EPCIS_DISCOVERY_HEADERS)
    # events are answered as captured; listings name identifiers as GS1 Digital Links
    listing = request.path.rstrip("/").rsplit("/", 1)[-1] in repository.LISTINGS
    response.headers["GS1-EPC-Format"] = "Always_GS1_Digital_Link" if listing else "Never_Translates"
    if request.path.rstrip("/") in (f"{EPCIS_PREFIX}/capture", f"{EPCIS_PREFIX}/events"):
        response.headers["GS1-Capture-Error-Behaviour"] = "rollback"
    return response


def _job_href(job_id: int) -> str:
    return f"{bp.url_prefix}/epcis/capture/{job_id}"


def _run_submitted(call: Call, job: CaptureJob, earlier: bool) -> None:
    """A new job that fits in one batch is written now (before the answer); a larger one wakes the worker."""
    if not earlier and capture_jobs.runs_inline(job):
        capture_jobs.run_job(call.ctx.runtime, job.id, replan=False)
        call.ctx.session.refresh(job)
    elif job.status == "queued" and (worker := current_app.extensions.get("lotline_capture_worker")) is not None:
        worker.wake()


def _job_accepted(
    call: Call, job: CaptureJob, earlier: bool, as_json: Callable[[CaptureJob], dict[str, Any]]
) -> Response:
    """202 with a submitted job (an EPCIS capture or an import) as ``as_json`` describes it, ``Location`` its
    ``href``: a new job that fits in one batch is written before the answer, a larger one wakes the worker."""
    _run_submitted(call, job, earlier)
    data = as_json(job)
    response = jsonify(data)
    response.status_code = 202
    response.headers["Location"] = data["href"]
    return response


def _job_json(call: Call, job: CaptureJob, *, events: bool = True) -> dict[str, Any]:
    data = {"id": job.id, "href": _job_href(job.id)} | capture_jobs.describe(call.ctx, job, events=events)
    if events:
        base = call.ctx.settings.public_url
        data["lots_created"] = [
            lot
            | {
                "href": f"{bp.url_prefix}/lots/{lot['gtin']}/{encode_lot_code(lot['lot_code'])}",
                "digital_link": digital_link(base, lot["gtin"], lot["lot_code"]),
            }
            for lot in data["lots_created"]
        ]
    return data


FSMA_CONTENT = {
    "text/csv": {"type": "string"},
    fsma.XLSX_CONTENT_TYPE: {"type": "string", "contentEncoding": "binary"},
    "application/json": models.FsmaRecords,
}


@operation(
    bp,
    "GET",
    "/fsma204",
    "exportFsma204",
    summary="Export FSMA 204 records",
    tag="Interchange",
    query=models.FsmaQuery,
    responses={200: ("The electronic sortable spreadsheet", FSMA_CONTENT)},
)
def export_fsma(call: Call) -> Response:
    """The FSMA 204 electronic sortable spreadsheet: one row per critical tracking event with its KDEs, for a
    lot or a product over a date range (docs/fsma204.md). Inspectors and regulators get every lot; others
    the lots they created, held or handled."""
    q = call.query
    selection: dict[str, Any] = {"chain": q["chain"]}
    if q.get("lot"):
        if q.get("product"):
            raise InvalidInput("give lot, or product with from and to, not both", field="product")
        gtin, sep, code = q["lot"].partition("/")
        if not sep:
            raise InvalidInput("lot: write it as GTIN/LOT", field="lot")
        try:
            selection["lot"] = _visible(call, lot_service.get_lot(call.ctx, gtin, code))
        except InvalidInput as exc:
            raise InvalidInput(f"lot: {exc.message}", field="lot", code=exc.code) from None
        if q.get("from") or q.get("to"):
            raise InvalidInput("a date range goes with product, not with lot", field="from")
    elif q.get("product"):
        selection |= {"product": q["product"], "date_from": q.get("from"), "date_to": q.get("to")}
    else:
        raise InvalidInput("give lot=GTIN/LOT, or product=GTIN with from and to", field="lot", code="missing_field")
    table = fsma.rows(call.ctx, fsma.select_events(call.ctx, viewer=call.org, **selection), call.org)
    name = "fsma204-" + (q["lot"].replace("/", "-") if q.get("lot") else f"{q['product']}-{q['from']}-{q['to']}")
    if q["format"] == "json":
        return jsonify({"columns": [{"key": k, "header": h} for k, h in fsma.COLUMNS], "rows": table})
    data = fsma.to_csv(table) if q["format"] == "csv" else fsma.to_xlsx(table)
    response = Response(data, mimetype="text/csv" if q["format"] == "csv" else fsma.XLSX_CONTENT_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{_safe(name)}.{q["format"]}"'
    return response


def _visible(call: Call, item: Lot) -> Lot:
    if not access.can_see_lot(call.ctx, call.org, item):
        raise NotFound(
            f"no lot {item.lot_code} of GTIN {item.gtin} visible to {call.org.name}", field="lot", code="unknown_lot"
        )
    return item


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]


# ------------------------------------------------------------------ bulk import (CSV or XLSX, one row per CTE)

IMPORT_ROLES = tuple(dict.fromkeys(CREATOR_ROLES + HANDLER_ROLES + RECEIVING_ROLES))
IMPORT_UPLOAD = {
    "text/csv": {"type": "string", "description": "The CSV file as it is (UTF-8, UTF-16 or GB18030)"},
    fsma.XLSX_CONTENT_TYPE: {"type": "string", "contentEncoding": "binary"},
    "multipart/form-data": {
        "type": "object",
        "properties": {"file": {"type": "string", "contentEncoding": "binary", "description": "CSV or XLSX"}},
        "required": ["file"],
    },
}


def _import_file(call: Call) -> dict[str, Any]:
    """The uploaded file, read (``imports.read_file``): a multipart ``file`` part, or the body itself sent as
    text/csv or the XLSX media type."""
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is not None:
        data, name, media = upload.read(), upload.filename or "", upload.mimetype or ""
    elif request.mimetype in FILE_MIMETYPES:
        data, media = request.get_data(cache=True), request.mimetype
        name = "upload.xlsx" if media == fsma.XLSX_CONTENT_TYPE else "upload.csv"
    else:
        raise InvalidInput(
            "send the file as text/csv or as an XLSX workbook, or as the part 'file' of a multipart form",
            field="file",
            code="missing_file",
        )
    return imports.read_file(data, name, media)


@operation(
    bp,
    "GET",
    "/imports/template",
    "getImportTemplate",
    summary="Download the bulk import template",
    tag="Interchange",
    query=models.ImportTemplateQuery,
    responses={
        200: ("The header row of an import file", {k: v for k, v in FSMA_CONTENT.items() if k != "application/json"})
    },
)
def import_template(call: Call) -> Response:
    """An empty import file: the FSMA 204 spreadsheet's columns that an import reads (docs/import.md)."""
    data, media = imports.template(call.query["format"])
    response = Response(data, mimetype=media.split(";")[0])
    response.headers["Content-Disposition"] = f'attachment; filename="lotline-import.{call.query["format"]}"'
    return response


@operation(
    bp,
    "POST",
    "/imports",
    "createImport",
    summary="Import critical tracking events from a CSV or XLSX file",
    tag="Interchange",
    scope="write",
    roles=IMPORT_ROLES,
    query=models.ImportQuery,
    upload=IMPORT_UPLOAD,
    responses={200: models.ImportDryRun, 202: models.ImportJob},
)
def create_import(call: Call) -> Response:
    """Check every row of a CSV or XLSX file (one row per critical tracking event, the FSMA 204 spreadsheet's
    columns) with the rules of the single-event operations; rows may build on earlier rows (a lot created in
    row 3 shipped in row 10). A file with any refused row is refused whole (422: `errors` lists each row number
    and column as in the file, and the rule) and nothing is written. With `dry_run=true` an acceptable file is
    answered 200 with what it would write (and its plan is kept for a day: importing the same file next
    is not planned again while no lot has changed); otherwise 202 with the import job (`Location`), written in
    batches like an EPCIS capture (a file that fits in one transaction before the answer). At most
    10,000 rows and 5 MiB per file."""
    document = _import_file(call)
    if call.query["dry_run"]:
        plan = imports.plan_import(call.ctx, call.org, document)
        call.ctx.session.rollback()
        # kept for a day: the import of the same file that follows need not be planned again
        imports.stage(call.ctx, call.org, document, capture_jobs.prepared_plan(call.ctx, plan))
        data = {"dry_run": True, "filename": document["filename"], "format": document["format"]}
        return jsonify(data | imports.summary(document, plan))
    token = imports.token_of(document)
    try:
        prepared = imports.staged(call.ctx, call.org, token)[1]
    except InvalidInput:
        prepared = None
    job, earlier = capture_jobs.submit(
        call.ctx, call.org, document, source="import", idempotency_key=call.idempotency_key, prepared=prepared
    )
    call.ctx.session.commit()
    imports.unstage(call.ctx, call.org, token)
    return _job_accepted(call, job, earlier, lambda job: _import_json(call, job))


@operation(
    bp,
    "GET",
    "/imports/{job_id}",
    "getImport",
    summary="Show an import",
    tag="Interchange",
    responses={200: models.ImportJob},
)
def get_import(call: Call) -> Response:
    """An import of the organisation: status, progress (rows written, Lotline writes, batches), every row's
    result with the Lotline event it wrote, the lots it created, and why it failed. Another organisation's
    import is a 404."""
    job = capture_jobs.get(call.ctx, call.org, int(call.path["job_id"]), source="import")
    return jsonify(_import_json(call, job))


@operation(
    bp,
    "GET",
    "/imports",
    "listImports",
    summary="List imports",
    tag="Interchange",
    query=models.PageQuery,
    responses={200: models.ImportJobPage},
)
def list_imports(call: Call) -> Response:
    """The organisation's imports, newest first, without their per-row results."""
    statement = select(CaptureJob).where(CaptureJob.organisation_id == call.org.id, CaptureJob.source == "import")
    return page(call, statement, CaptureJob.id, lambda job: _import_json(call, job, events=False), descending=True)


def _import_href(job_id: int) -> str:
    return f"{bp.url_prefix}/imports/{job_id}"


def _import_json(call: Call, job: CaptureJob, *, events: bool = True) -> dict[str, Any]:
    data = _job_json(call, job, events=events) | {"href": _import_href(job.id)}
    return imports.as_import(data, job)
