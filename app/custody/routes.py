from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.custody import bp
from app.forms import LOT_FILLED, Checks, check_payload, kde_fields, payload_from_form
from app.web import (
    RECEIVING_ROLES,
    commit,
    form_failed,
    get_ctx,
    require_org,
    roles_required,
    submitted_form,
    visible_lot,
    wants_json,
)
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.domain.events import Visibility, visible_view
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import format_quantity
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services import views
from supply_chain.store.models import Lot, Organisation

FORM_ERRORS = (InvalidInput, Conflict)


def _offered(lot_id: int, org: Organisation, action: Action) -> Lot:
    """The lot if the rulebook lets ``org`` take ``action`` (accept / reject) on it now."""
    lot = visible_lot(lot_id)
    lot_service.check(get_ctx(), action, org, lot)
    return lot


@bp.get("/custody")
@roles_required(*RECEIVING_ROLES)
def inbox() -> str:
    org = require_org()
    incoming, outgoing = views.inbox(get_ctx(), org)
    offers = {}
    for lot in incoming:
        event = views.last_offer(lot)
        offers[lot.id] = (
            event,
            visible_view(EventKind.SHIPPING, event.payload, Visibility.CONSORTIUM) if event else {},
        )
    return render_template("custody/inbox.html", incoming=incoming, outgoing=outgoing, offers=offers)


@bp.route("/custody/<int:lot_id>/accept", methods=["GET", "POST"])
@roles_required(*RECEIVING_ROLES)
def accept(lot_id: int) -> str | Response | tuple[str, int]:
    """Receive an offered lot with the receiving KDEs (prefilled from the shipment)."""
    org = require_org()
    try:
        lot = _offered(lot_id, org, Action.ACCEPT)
    except Conflict as err:
        if err.code != "already_received" or wants_json():
            raise
        # A second "Receive" (a double click, the back button): say so plainly instead of refusing.
        flash(
            gettext(
                "Lot %(lot)s is already received by you; nothing more was recorded.", lot=visible_lot(lot_id).lot_code
            ),
            "ok",
        )
        return redirect(url_for("lots.show", lot_id=lot_id))
    ctx = get_ctx()
    offer = views.last_offer(lot)
    shipped = visible_view(EventKind.SHIPPING, offer.payload, Visibility.CONSORTIUM) if offer else {}

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        values = submitted_form()
        defaults = {
            k: shipped.get(k)
            for k in (
                "from_gln",
                "to_gln",
                "reference_document_type",
                "reference_document_number",
                "tlc_source_gln",
                "product_description",
                "unit",
            )
        }
        defaults["quantity"] = shipped.get("quantity") or format_quantity(lot.quantity)
        fields = kde_fields(
            EventKind.RECEIVING,
            views.locations(ctx),
            org.id,
            values,
            defaults,
            other_first=("from_gln", "tlc_source_gln"),
        )
        context = {"lot": lot, "offer": offer, "shipped": shipped, "fields": fields, "form": values}
        if error is not None:
            return form_failed(error, "custody/accept.html", **context)
        return render_template("custody/accept.html", **context)

    if request.method == "GET":
        return page()
    try:
        payload = payload_from_form(EventKind.RECEIVING, request.form)
        checks = Checks()
        check_payload(checks, EventKind.RECEIVING, payload, LOT_FILLED)
        checks.done()
        lot_service.accept_custody(ctx, org, lot, payload)
    except FORM_ERRORS as err:
        return page(err)
    commit()
    flash(gettext("Lot %(lot)s received; your organisation now holds it.", lot=lot.lot_code), "ok")
    return redirect(url_for("lots.show", lot_id=lot.id))


@bp.post("/custody/<int:lot_id>/reject")
@roles_required(*RECEIVING_ROLES)
def reject(lot_id: int) -> Response:
    org = require_org()
    lot = _offered(lot_id, org, Action.REJECT)
    lot_service.reject_custody(
        get_ctx(), org, lot, (request.form.get("reason") or "").strip(), request.form.get("date") or None
    )
    commit()
    flash(
        gettext("Delivery of lot %(lot)s refused; it goes back to %(org)s.", lot=lot.lot_code, org=lot.custodian.name),
        "ok",
    )
    return redirect(url_for("custody.inbox"))
