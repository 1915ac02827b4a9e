from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.admin import bp
from app.forms import kde_fields, today
from app.web import commit, form_failed, get_ctx, require_org, roles_required, visible_lot, wants_json
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots as lot_service
from supply_chain.services import orgs, trace, views
from supply_chain.store.models import ROLES, Lot

FORM_ERRORS = (InvalidInput, Conflict)
GRANTABLE_ROLES = tuple(r for r in ROLES if r != "admin")


@bp.get("")
@roles_required("regulator", "admin")
def index() -> str:
    ctx = get_ctx()
    return render_template(
        "admin/index.html",
        records=views.compliance_records(ctx),
        recalls=views.recalls(ctx),
        held=views.held_lots(ctx),
    )


@bp.route("/organisations/new", methods=["GET", "POST"])
@roles_required("regulator", "admin")
def onboard() -> str | Response | tuple[str, int]:
    """Onboard an organisation: a fresh chain key, its roles granted on chain, and its first user."""
    org = require_org()
    ctx = get_ctx()
    context = {"roles": GRANTABLE_ROLES, "form": request.form}
    if request.method == "GET":
        return render_template("admin/onboard.html", **context)
    form = request.form
    roles = [r for r in form.getlist("roles") if r]
    email = (form.get("email") or "").strip().lower()
    password = form.get("password") or ""
    try:
        # The user is checked before the chain is asked to grant roles, so a typo in the e-mail does not
        # leave roles granted to a key nobody holds.
        email = orgs.check_new_user(ctx, email, password)
        if "admin" in roles:
            raise InvalidInput("the admin role is not granted from the dashboard", field="roles")
        new = orgs.onboard(
            ctx, org, form.get("name", ""), roles, (form.get("gs1_company_prefix") or "").strip() or None
        )
        orgs.add_user(ctx, new, email, form.get("display_name") or email, password)
    except FORM_ERRORS as err:
        return form_failed(err, "admin/onboard.html", **context)
    commit()
    flash(f"{new.name} onboarded with roles {', '.join(new.roles)}; {email} can sign in.", "ok")
    return redirect(url_for("admin.organisation", org_id=new.id))


@bp.get("/organisations/<int:org_id>")
@roles_required("regulator", "admin")
def organisation(org_id: int) -> str:
    ctx = get_ctx()
    org = views.organisation(ctx, org_id)
    created = list(ctx.session.scalars(select(Lot).where(Lot.creator_org_id == org.id).order_by(Lot.id.desc())))
    return render_template(
        "admin/organisation.html",
        subject=org,
        record=trace.compliance(ctx, org),
        lots=created,
        grantable=GRANTABLE_ROLES,
        state_of=views.lot_state,
    )


@bp.post("/organisations/<int:org_id>/roles")
@roles_required("regulator", "admin")
def roles(org_id: int) -> str | Response | tuple[str, int]:
    """Change an organisation's roles: granted and revoked on chain in one transaction by an admin."""
    actor = require_org()
    ctx = get_ctx()
    subject = views.organisation(ctx, org_id)
    wanted = [r for r in request.form.getlist("roles") if r in GRANTABLE_ROLES]
    if "admin" in subject.roles:
        wanted.append("admin")  # the dashboard neither grants nor takes the admin role
    try:
        orgs.set_roles(ctx, actor, subject, wanted)
    except FORM_ERRORS as err:
        flash(err.message, "error")
        return redirect(url_for("admin.organisation", org_id=org_id))
    commit()
    flash(f"{subject.name} now holds: {', '.join(subject.roles)}", "ok")
    return redirect(url_for("admin.organisation", org_id=org_id))


@bp.route("/lots/<int:lot_id>/recall", methods=["GET", "POST"])
@roles_required("regulator")
def recall(lot_id: int) -> str | Response | tuple[str, int]:
    lot = visible_lot(lot_id)
    org = require_org()
    ctx = get_ctx()

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        values = request.form if request.method == "POST" else {}
        fields = kde_fields(EventKind.RECALL, [], org.id, values, {"date": today()}, exclude=("notice_url",))
        context = {
            "lot": lot,
            "fields": fields,
            "form": values,
            "reach": views.trace_view(ctx, lot, "forward"),
        }
        if error is not None:
            return form_failed(error, "admin/recall.html", **context)
        return render_template("admin/recall.html", **context)

    if request.method == "GET":
        return page()
    form = request.form
    try:
        lot_service.recall(
            ctx,
            org,
            lot,
            form.get("kde.reason", ""),
            form.get("kde.recall_class", ""),
            form.get("kde.instructions", ""),
            form.get("kde.date") or None,
            (form.get("kde.contact") or "").strip() or None,
        )
    except FORM_ERRORS as err:
        return page(err)
    commit()
    flash(f"Lot {lot.lot_code} recalled. Every lot made from it now shows the recall.", "ok")
    return redirect(url_for("admin.trace_lot", lot_id=lot.id, direction="forward"))


@bp.get("/lots/<int:lot_id>/trace")
@roles_required("regulator")
def trace_lot(lot_id: int) -> str:
    lot = visible_lot(lot_id)
    direction = request.args.get("direction", "forward")
    result = views.trace_view(get_ctx(), lot, direction)
    if wants_json():
        return jsonify(result)  # type: ignore[return-value]
    return render_template("admin/trace.html", lot=lot, trace=result, direction=direction)
