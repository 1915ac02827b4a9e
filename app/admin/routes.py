from __future__ import annotations

import re
from typing import Any

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.admin import bp
from app.forms import Checks
from app.messages import tr, translate_map_layers, translate_message
from app.web import (
    SUPERVISION_ROLES,
    commit,
    form_failed,
    get_ctx,
    require_org,
    roles_required,
    submitted_form,
    visible_lot,
    wants_json,
)
from supply_chain.domain.delivery import parse_emails
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.domain.policy import GRANTABLE_ROLES, ONBOARDING_ROLES
from supply_chain.services import credit, delivery, fsma, orgs, supervision, trace, verification_state, views
from supply_chain.services import recalls as recall_service
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
        records += [credit.summary(ctx, o) | {"id": o.id, "roles": list(o.suspended_roles or [])} for o in missing]
        records.sort(key=lambda r: str(r["organisation"]))
    return render_template(
        "admin/index.html",
        records=records,
        suspended=suspended,
        recalls=views.recalls(ctx),
        drafts=recall_service.drafts(ctx),
        held=views.held_lots(ctx),
    )


@bp.route("/organisations/new", methods=["GET", "POST"])
@roles_required(*sorted(ONBOARDING_ROLES))
def onboard() -> str | Response | tuple[str, int]:
    """Onboard an organisation: a fresh chain key, its roles granted on chain, and its first user."""
    org = require_org()
    ctx = get_ctx()
    context = {"roles": GRANTABLE_ROLES, "form": submitted_form()}
    if request.method == "GET":
        return render_template("admin/onboard.html", **context)
    form = request.form
    roles = [r for r in form.getlist("roles") if r]
    email = (form.get("email") or "").strip().lower()
    password = form.get("password") or ""
    try:
        # The user is checked before the chain is asked to grant roles, so a typo in the e-mail does not
        # leave roles granted to a key nobody holds.
        checks = Checks()
        if not (form.get("name") or "").strip():
            checks.add("is required: the organisation's legal or trading name", field="name")
        if not roles:
            checks.add("tick at least one role", field="roles")
        if "admin" in roles:
            checks.add("the admin role is not granted from the dashboard", field="roles")
        notify_to = checks.run(parse_emails, form.get("notification_email", ""), field="notification_email")
        checks.extend(orgs.new_user_problems(ctx, email, password))
        checks.done()
        email = orgs.check_new_user(ctx, email, password)
        new = orgs.onboard(
            ctx, org, form.get("name", ""), roles, (form.get("gs1_company_prefix") or "").strip() or None
        )
        orgs.add_user(ctx, new, email, form.get("display_name") or email, password)
        delivery.set_notification_email(ctx, new, ", ".join(notify_to or []))
    except FORM_ERRORS as err:
        return form_failed(err, "admin/onboard.html", **context)
    commit()
    flash(
        gettext(
            "%(name)s onboarded with roles %(roles)s; %(email)s can sign in.",
            name=new.name,
            roles=", ".join(tr(r) for r in new.roles),
            email=email,
        ),
        "ok",
    )
    return redirect(url_for("admin.organisation", org_id=new.id))


def _organisation_page(org: Organisation) -> dict[str, Any]:
    ctx = get_ctx()
    created = list(ctx.session.scalars(select(Lot).where(Lot.creator_org_id == org.id).order_by(Lot.id.desc())))
    return {
        "subject": org,
        "record": credit.summary(ctx, org),
        "credit": credit.record(ctx, org),
        "credit_labels": credit.TERM_LABELS,
        "not_tracked": credit.NOT_TRACKED,
        "lots": created,
        "grantable": GRANTABLE_ROLES,
        "state_of": verification_state.lot_state,
        "suspend_refusal": orgs.suspension_refusal(require_org(), org),
        "form": submitted_form(),  # on the page: a suspension reason typed before the session ended
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
        gettext(
            "%(name)s is suspended: its roles are revoked on the ledger, its users are signed out and its API "
            "tokens no longer work.",
            name=subject.name,
        ),
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
    roles = ", ".join(tr(r) for r in subject.roles) or gettext("none")
    flash(gettext("%(name)s is reinstated with roles %(roles)s.", name=subject.name, roles=roles), "ok")
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
        flash(translate_message(err.message), "error")
        return redirect(url_for("admin.organisation", org_id=org_id))
    commit()
    flash(
        gettext("%(name)s now holds: %(roles)s", name=subject.name, roles=", ".join(tr(r) for r in subject.roles)), "ok"
    )
    return redirect(url_for("admin.organisation", org_id=org_id))


@bp.get("/lots/<int:lot_id>/trace")
@roles_required("regulator")
def trace_lot(lot_id: int) -> str:
    lot = visible_lot(lot_id)
    direction = request.args.get("direction", "forward")
    result = views.trace_view(get_ctx(), lot, direction)
    if wants_json():
        return jsonify(result)  # type: ignore[return-value]
    return render_template("admin/trace.html", lot=lot, trace=result, direction=direction)


def _direction() -> str:
    direction = request.args.get("direction", "forward")
    if direction not in trace.DIRECTIONS:
        raise InvalidInput("direction must be backward or forward", field="direction")
    return direction


def _attachment(data: bytes, mimetype: str, name: str) -> Response:
    response = Response(data, mimetype=mimetype)
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


@bp.get("/lots/<int:lot_id>/trace.csv")
@roles_required(*SUPERVISION_ROLES)
def trace_csv(lot_id: int) -> Response:
    """The trace as CSV: one row per lot reached, with its holder, sites and the recalls that reach it."""
    lot = visible_lot(lot_id)
    direction = _direction()
    result = views.trace_view(get_ctx(), lot, direction)
    return _attachment(trace.to_csv(result), "text/csv", f"trace-{direction}-{lot.gtin}-{lot.lot_code}.csv")


@bp.get("/lots/<int:lot_id>/fsma204.<fmt>")
@roles_required(*SUPERVISION_ROLES)
def fsma_forward(lot_id: int, fmt: str) -> Response:
    """The FSMA 204 sortable spreadsheet of the whole forward trace: every critical tracking event of the lot
    and of every lot made from it, directly or not (CSV or XLSX, formula-like cells neutralised)."""
    lot = visible_lot(lot_id)
    data, mimetype = fsma.export(get_ctx(), fmt, viewer=require_org(), lot=lot, forward=True)
    return _attachment(data, mimetype, f"fsma204-forward-{lot.gtin}-{lot.lot_code}.{fmt}")


MAP_LINKS = {
    "lot": lambda ref: url_for("lots.show", lot_id=ref),
    "trace": lambda ref: url_for("admin.trace_lot", lot_id=ref, direction="forward"),
    "organisation": lambda ref: url_for("admin.organisation", org_id=ref),
}


@bp.get("/map")
@roles_required(*SUPERVISION_ROLES)
def supervision_map() -> str:
    """The supervision map ("one graph"): every site, with the layers of ``supervision.LAYERS``."""
    return render_template("admin/map.html", layers=supervision.LAYERS)


@bp.get("/map/layers.json")
@roles_required(*SUPERVISION_ROLES)
def supervision_layers() -> Response:
    """Every layer of the supervision map as a GeoJSON FeatureCollection; each feature's links as URLs."""
    result = translate_map_layers(supervision.layers(get_ctx()))
    for layer in result["layers"]:
        for feature in layer["data"]["features"]:
            for link in feature["properties"]["links"]:
                link["href"] = MAP_LINKS[link["kind"]](link["id"])
    return jsonify(result)
