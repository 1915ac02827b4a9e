from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.forms import Checks, check_payload, kde_fields, payload_from_form
from app.inspections import bp
from app.lots import steps
from app.web import (
    commit,
    current_user,
    form_failed,
    get_ctx,
    require_org,
    roles_required,
    rule_roles,
    submitted_form,
    visible_lot,
)
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services import views

FORM_ERRORS = (InvalidInput, Conflict)


@bp.get("/inspections")
@roles_required(*rule_roles(Action.INSPECT))
def index() -> str:
    org = require_org()
    ctx = get_ctx()
    return render_template(
        "inspections/index.html", recent=views.recent_inspections(ctx, org), held=views.held_lots(ctx)
    )


@bp.route("/inspections/lots/<int:lot_id>/new", methods=["GET", "POST"])
@roles_required(*rule_roles(Action.INSPECT))
def new(lot_id: int) -> str | Response | tuple[str, int]:
    """Record an inspection or lab result with an optional certificate (PDF, PNG or JPEG, at most 5 MiB)."""
    lot = visible_lot(lot_id)
    org = require_org()
    ctx = get_ctx()

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        values = submitted_form()
        defaults = {"inspection_body": org.name, "inspector_name": current_user().display_name}  # type: ignore[union-attr]
        fields = kde_fields(EventKind.INSPECTION, views.locations(ctx), org.id, values, defaults)
        context = {"lot": lot, "fields": fields, "form": values}
        if error is not None:
            return form_failed(error, "inspections/new.html", **context)
        return render_template("inspections/new.html", **context)

    if request.method == "GET":
        return page()
    upload = request.files.get("certificate")
    certificate = None
    if upload is not None and upload.filename:
        certificate = (upload.filename, upload.mimetype or "", upload.read())
    payload = payload_from_form(EventKind.INSPECTION, request.form, exclude=("outcome",))
    try:
        checks = Checks()  # the outcome is checked with the rest: it is never assumed
        check_payload(checks, EventKind.INSPECTION, payload | {"outcome": request.form.get("kde.outcome", "")})
        checks.done()
        lot_service.inspect(
            ctx,
            org,
            lot,
            request.form.get("kde.outcome", ""),
            payload,
            certificate,
            (request.form.get("notes") or "").strip() or None,
        )
    except FORM_ERRORS as err:
        return page(err)
    commit()
    flash(gettext("Inspection of lot %(lot)s recorded.", lot=lot.lot_code), "ok")
    return redirect(url_for("lots.show", lot_id=lot.id))


steps.route(
    bp,
    "/inspections/lots/<int:lot_id>/hold",
    "hold",
    rule_roles(Action.HOLD),
    lot_service.hold,
    lambda lot: gettext("Lot %(lot)s is on hold.", lot=lot.lot_code),
)
steps.route(
    bp,
    "/inspections/lots/<int:lot_id>/release",
    "release",
    rule_roles(Action.RELEASE),
    lot_service.release,
    lambda lot: gettext("The hold on lot %(lot)s is lifted.", lot=lot.lot_code),
    "Lift a hold: the lot may be shipped and sold again, so the lot code is typed again to confirm.",
)
