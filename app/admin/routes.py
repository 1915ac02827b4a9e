from __future__ import annotations

from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.admin import bp
from app.forms import kde_fields, today
from app.web import commit, form_failed, get_ctx, require_org, roles_required, visible_lot, wants_json
from supply_chain.domain.delivery import parse_emails
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import GRANTABLE_ROLES, ONBOARDING_ROLES
from supply_chain.services import delivery, orgs, trace, verification_state, views
from supply_chain.services import lots as lot_service
from supply_chain.store.models import Lot, Organisation

FORM_ERRORS = (InvalidInput, Conflict)


@bp.get("")
@roles_required(*sorted(ONBOARDING_ROLES))
def index() -> str:
    ctx = get_ctx()
    records = views.compliance_records(ctx)
    suspended = {org.id: org for org in orgs.suspended_organisations(ctx)}
    # A suspended organisation holds no role, so the compliance list leaves it out; show it, with the roles
    # it will get back.
    listed = {r["id"] for r in records}
    missing = [org for org in suspended.values() if org.id not in listed]
    if missing:
        records += [trace.compliance(ctx, o) | {"id": o.id, "roles": list(o.suspended_roles or [])} for o in missing]
        records.sort(key=lambda r: str(r["organisation"]))
    return render_template(
        "admin/index.html",
        records=records,
        suspended=suspended,
        recalls=views.recalls(ctx),
        held=views.held_lots(ctx),
    )


@bp.route("/organisations/new", methods=["GET", "POST"])
@roles_required(*sorted(ONBOARDING_ROLES))
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
        notify_to = parse_emails(form.get("notification_email", ""))
        if "admin" in roles:
            raise InvalidInput("the admin role is not granted from the dashboard", field="roles")
        new = orgs.onboard(
            ctx, org, form.get("name", ""), roles, (form.get("gs1_company_prefix") or "").strip() or None
        )
        orgs.add_user(ctx, new, email, form.get("display_name") or email, password)
        delivery.set_notification_email(ctx, new, ", ".join(notify_to))
    except FORM_ERRORS as err:
        return form_failed(err, "admin/onboard.html", **context)
    commit()
    flash(f"{new.name} onboarded with roles {', '.join(new.roles)}; {email} can sign in.", "ok")
    return redirect(url_for("admin.organisation", org_id=new.id))


def _organisation_page(org: Organisation) -> dict[str, Any]:
    ctx = get_ctx()
    created = list(ctx.session.scalars(select(Lot).where(Lot.creator_org_id == org.id).order_by(Lot.id.desc())))
    return {
        "subject": org,
        "record": trace.compliance(ctx, org),
        "lots": created,
        "grantable": GRANTABLE_ROLES,
        "state_of": verification_state.lot_state,
        "suspend_refusal": orgs.suspension_refusal(require_org(), org),
        "form": request.form,
    }


@bp.get("/organisations/<int:org_id>")
@roles_required(*sorted(ONBOARDING_ROLES))
def organisation(org_id: int) -> str:
    return render_template("admin/organisation.html", **_organisation_page(views.organisation(get_ctx(), org_id)))


@bp.post("/organisations/<int:org_id>/suspend")
@roles_required(*sorted(ONBOARDING_ROLES))
def suspend(org_id: int) -> Response | tuple[str, int]:
    """Suspend an organisation: its roles revoked on chain, its users signed out, its API tokens refused."""
    actor = require_org()
    ctx = get_ctx()
    subject = views.organisation(ctx, org_id)
    try:
        refusal = orgs.suspension_refusal(actor, subject)
        if refusal is not None:
            raise refusal  # before the confirmation: "already suspended" is the answer, not "type the name"
        if (request.form.get("confirm_name") or "").strip() != subject.name:
            raise InvalidInput(
                f"type the organisation's name, {subject.name}, to confirm the suspension", field="confirm_name"
            )
        orgs.suspend(ctx, actor, subject, request.form.get("reason", ""))
    except FORM_ERRORS as err:
        return form_failed(err, "admin/organisation.html", **_organisation_page(subject))
    commit()
    if wants_json():
        return jsonify(_suspension_json(subject))
    flash(
        f"{subject.name} is suspended: its roles are revoked on the ledger, its users are signed out and its API "
        "tokens no longer work.",
        "ok",
    )
    return redirect(url_for("admin.organisation", org_id=org_id))


@bp.post("/organisations/<int:org_id>/reinstate")
@roles_required(*sorted(ONBOARDING_ROLES))
def reinstate(org_id: int) -> Response | tuple[str, int]:
    """Reinstate a suspended organisation: the roles it held are granted again on chain."""
    actor = require_org()
    ctx = get_ctx()
    subject = views.organisation(ctx, org_id)
    try:
        orgs.reinstate(ctx, actor, subject)
    except FORM_ERRORS as err:
        return form_failed(err, "admin/organisation.html", **_organisation_page(subject))
    commit()
    if wants_json():
        return jsonify(_suspension_json(subject))
    flash(f"{subject.name} is reinstated with roles {', '.join(subject.roles) or 'none'}.", "ok")
    return redirect(url_for("admin.organisation", org_id=org_id))


def _suspension_json(org: Organisation) -> dict[str, Any]:
    return {
        "organisation": org.name,
        "id": org.id,
        "roles": list(org.roles),
        "suspended": org.suspended,
        "suspended_at": org.suspended_at.isoformat() if org.suspended_at else None,
        "suspended_reason": org.suspended_reason,
        "suspended_roles": list(org.suspended_roles or []),
    }


@bp.post("/organisations/<int:org_id>/roles")
@roles_required(*sorted(ONBOARDING_ROLES))
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
    progress = lot_service.recall_progress(ctx, lot)
    if progress["remaining"]:
        flash(
            f"Lot {lot.lot_code} recalled. {progress['recalled']} of {progress['downstream']} lots made from it are "
            "recalled on chain so far; the rest follow in batches.",
            "error",
        )
    elif progress["downstream"]:
        n = progress["downstream"]
        lots_text = f"{n} lot{'s' if n != 1 else ''}"
        flash(f"Lot {lot.lot_code} recalled. All {lots_text} made from it are recalled on chain.", "ok")
    else:
        flash(f"Lot {lot.lot_code} recalled.", "ok")
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
