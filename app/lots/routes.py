from __future__ import annotations

import hashlib
import io
from pathlib import Path

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.forms import LOT_FILLED, Checks, bound_fields, check_payload, kde_fields, payload_from_form, today
from app.lots import bp, steps
from app.messages import tr
from app.web import (
    HANDLER_ROLES,
    OVERSIGHT_ROLES,
    commit,
    form_failed,
    get_ctx,
    login_required,
    require_org,
    roles_required,
    submitted_form,
    visible_lot,
)
from supply_chain.domain.errors import Conflict, InvalidInput, NotFound
from supply_chain.domain.kinds import FREE_KINDS, EventKind
from supply_chain.domain.lineage import format_quantity
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services import views

FORM_ERRORS = (InvalidInput, Conflict)
EVENT_KINDS = {k.name.lower(): k for k in sorted(FREE_KINDS)}


@bp.get("/lots/<int:lot_id>")
@login_required
def show(lot_id: int) -> str:
    lot = visible_lot(lot_id)
    org = require_org()
    ctx = get_ctx()
    page = views.lot_page(ctx, lot, org, request.args.get("page"))
    # the page walked the lot's lineage already: the rulebook asks its ancestors rather than walking it again
    actions = (a for a in Action if a is not Action.CREATE)
    return render_template(
        "lots/show.html",
        page=page,
        can={
            a.value: answer.allowed
            for a, answer in lot_service.verdicts(ctx, actions, org, lot, page["ancestors"]).items()
        },
        lot=lot,
        org=org,
        event_kinds=EVENT_KINDS,
        today=today(),
    )


@bp.get("/lots/search")
@roles_required(*OVERSIGHT_ROLES)
def search() -> str | Response:
    """Find any lot by a scanned Digital Link, by "GTIN lot-code", or by part of a code or product name."""
    q = (request.args.get("q") or "").strip()[:300]
    ctx = get_ctx()
    if q:
        exact = views.find_lot(ctx, q)
        if exact is not None:
            return redirect(url_for("lots.show", lot_id=exact.id))
    return render_template("lots/search.html", q=q, results=views.search_lots(ctx, q) if q else [])


@bp.route("/lots/<int:lot_id>/events/new", methods=["GET", "POST"])
@roles_required(*HANDLER_ROLES)
def record_event(lot_id: int) -> str | Response | tuple[str, int]:
    lot = visible_lot(lot_id)
    org = require_org()
    ctx = get_ctx()
    kind_name = request.values.get("kind") or submitted_form().get("kind") or "cooling"
    if kind_name not in EVENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(EVENT_KINDS)}", field="kind")
    kind = EVENT_KINDS[kind_name]
    lot_service.check(ctx, Action.RECORD, org, lot)

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        values = submitted_form()
        origin = lot.origin_location.gln if lot.origin_location else ""
        defaults = {
            "quantity": format_quantity(lot.quantity),
            "unit": lot.unit,
            "commodity": lot.product.commodity or lot.product.name,
            "variety": lot.product.variety or "",
            "harvest_location_gln": origin,
        }
        context = {
            "lot": lot,
            "kind": kind_name,
            "kinds": EVENT_KINDS,
            "form": values,
            "fields": kde_fields(kind, views.locations(ctx), org.id, values, defaults),
        }
        if error is not None:
            return form_failed(error, "lots/record_event.html", **context)
        return render_template("lots/record_event.html", **context)

    if request.method == "GET":
        return page()
    try:
        payload = payload_from_form(kind, request.form)
        checks = Checks()
        check_payload(checks, kind, payload, LOT_FILLED + bound_fields(lot.product))
        checks.done()
        lot_service.record_event(ctx, org, lot, kind, payload)
    except FORM_ERRORS as err:
        return page(err)
    commit()
    flash(gettext("%(what)s: recorded on lot %(lot)s.", what=tr(views.kind_label(kind)), lot=lot.lot_code), "ok")
    return redirect(url_for("lots.show", lot_id=lot.id))


@bp.route("/lots/<int:lot_id>/ship", methods=["GET", "POST"])
@roles_required(*HANDLER_ROLES)
def ship(lot_id: int) -> str | Response | tuple[str, int]:
    """Offer custody of a lot to another organisation (the shipping CTE)."""
    lot = visible_lot(lot_id)
    org = require_org()
    ctx = get_ctx()
    lot_service.check(ctx, Action.SHIP, org, lot)
    recipients = views.receivers(ctx, org)

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        values = submitted_form()
        defaults = {
            "quantity": format_quantity(lot.quantity),
            "unit": lot.unit,
            "product_description": lot.product.name,
            "tlc_source_gln": lot.origin_location.gln if lot.origin_location else "",
        }
        fields = kde_fields(EventKind.SHIPPING, views.locations(ctx), org.id, values, defaults, other_first=("to_gln",))
        context = {"lot": lot, "recipients": recipients, "fields": fields, "form": values}
        if error is not None:
            return form_failed(error, "lots/ship.html", **context)
        return render_template("lots/ship.html", **context)

    if request.method == "GET":
        return page()
    try:
        to_id = request.form.get("to", "")
        to = next((o for o in recipients if str(o.id) == to_id), None)
        checks = Checks()
        if to is None:
            checks.add("choose the organisation that receives the lot", field="to")
        payload = payload_from_form(EventKind.SHIPPING, request.form)
        check_payload(checks, EventKind.SHIPPING, payload, LOT_FILLED)
        checks.done()
        assert to is not None
        lot_service.offer_custody(ctx, org, lot, to, payload)
    except FORM_ERRORS as err:
        return page(err)
    commit()
    flash(
        gettext("Lot %(lot)s shipped to %(to)s; it is in transit until they accept it.", lot=lot.lot_code, to=to.name),
        "ok",
    )
    return redirect(url_for("lots.show", lot_id=lot.id))


steps.route(
    bp,
    "/lots/<int:lot_id>/cancel-offer",
    "cancel",
    HANDLER_ROLES,
    lot_service.cancel_custody_offer,
    lambda lot: gettext("The shipment of lot %(lot)s was cancelled; you hold it again.", lot=lot.lot_code),
)
steps.route(
    bp,
    "/lots/<int:lot_id>/close",
    "close",
    HANDLER_ROLES,
    lot_service.close,
    lambda lot: gettext("Lot %(lot)s closed.", lot=lot.lot_code),
    "Close a lot (sold, used up, destroyed): it cannot be undone, so the lot code is typed again.",
)


@bp.route("/lots/<int:lot_id>/readings", methods=["GET", "POST"])
@roles_required(*HANDLER_ROLES)
def readings(lot_id: int) -> str | Response | tuple[str, int]:
    """Upload cold-chain readings (CSV lines); they are anchored on chain by their Merkle root."""
    lot = visible_lot(lot_id)
    org = require_org()
    ctx = get_ctx()
    lot_service.check(ctx, Action.ANCHOR, org, lot)
    context = {
        "lot": lot,
        "form": submitted_form(),
        "sites": [s for s in views.locations(ctx) if s.organisation_id == org.id],
    }
    if request.method == "GET":
        return render_template("lots/readings.html", **context)
    try:
        rows, problems = views.read_reading_lines(request.form.get("readings", ""))
        checks = Checks()
        checks.extend(problems)
        for index, row in enumerate(rows):
            checks.run(lot_service.validate_reading, row, index)
        gln = (request.form.get("location_gln") or "").strip() or None
        checks.done()
        lot_service.anchor_readings(ctx, org, lot, rows, (request.form.get("sensor_id") or "").strip() or None, gln)
    except FORM_ERRORS as err:
        return form_failed(err, "lots/readings.html", **context)
    commit()
    flash(gettext("%(count)s readings anchored on lot %(lot)s.", count=len(rows), lot=lot.lot_code), "ok")
    return redirect(url_for("lots.show", lot_id=lot.id))


@bp.get("/lots/<int:lot_id>/documents/<int:document_id>")
@login_required
def document(lot_id: int, document_id: int) -> Response:
    """Download a certificate: participants of the lot only; the file is checked against its recorded hash."""
    lot = visible_lot(lot_id)
    doc = views.document_of(get_ctx(), lot, document_id)
    path = Path(doc.storage_path)
    if not path.is_absolute():
        path = Path(get_ctx().settings.home) / path
    if not path.is_file():
        raise NotFound(f"the file of document {doc.filename} is missing from the instance folder")
    content = path.read_bytes()  # at most a few MiB: read once, check, serve
    if hashlib.sha256(content).hexdigest() != doc.sha256:
        raise Conflict(
            f"the stored file of {doc.filename} no longer matches the SHA-256 recorded with the "
            "inspection; it was altered after upload",
            code="document_tampered",
        )
    # Served as an attachment under a safe name with the extension of its checked type, never the uploader's
    # name as given (``../../x.html``), and never sniffed into another type.
    known = doc.content_type in lot_service.CERTIFICATE_TYPES
    response = send_file(
        io.BytesIO(content),
        mimetype=doc.content_type if known else "application/octet-stream",
        as_attachment=True,
        download_name=lot_service.certificate_name(doc.filename, doc.content_type),
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
