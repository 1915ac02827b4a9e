from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.dashboard import bp
from app.forms import LOT_FILLED, PREFIX, Checks, bound_fields, check_payload, kde_fields, payload_from_form, today
from app.web import (
    CREATOR_ROLES,
    HANDLER_ROLES,
    commit,
    form_failed,
    get_ctx,
    require_org,
    roles_required,
    submitted_form,
)
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput
from supply_chain.domain.events import parse_when
from supply_chain.domain.identifiers import parse_gln, parse_gtin, parse_lot_code
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import check_consumption, parse_quantity
from supply_chain.services import lots as lot_service
from supply_chain.services import orgs, verification_state, views
from supply_chain.services import recalls as recall_service
from supply_chain.store.models import LOCATION_KINDS, LOT_STATUSES, Lot

CREATE_KINDS = {
    "harvesting": EventKind.HARVESTING,
    "initial_packing": EventKind.INITIAL_PACKING,
    "first_land_based_receiving": EventKind.FIRST_LAND_BASED_RECEIVING,
}
FORM_ERRORS = (InvalidInput, Conflict, Forbidden)  # Forbidden here: e.g. a GTIN of another company


@bp.get("/dashboard")
@roles_required(*HANDLER_ROLES)
def index() -> str:
    org = require_org()
    ctx = get_ctx()
    status = request.args.get("status") or None
    if status not in (None, *LOT_STATUSES):
        raise InvalidInput(f"status must be one of {', '.join(LOT_STATUSES)}", field="status")
    q = (request.args.get("q") or "").strip()[:100]
    incoming, outgoing = views.inbox(ctx, org)
    return render_template(
        "dashboard/index.html",
        lots=views.lots_for_org(ctx, org, status, q),
        status=status,
        q=q,
        statuses=LOT_STATUSES,
        counts=views.lot_counts(ctx, org),
        incoming=incoming,
        outgoing=outgoing,
        recall_notices=recall_service.notices_for(ctx, org),
        state_of=verification_state.lot_state,
    )


# ------------------------------------------------------------------ products and sites


@bp.route("/products", methods=["GET", "POST"])
@roles_required(*CREATOR_ROLES)
def products() -> str | Response | tuple[str, int]:
    org = require_org()
    if request.method == "POST":
        form = request.form
        try:
            checks = Checks()
            checks.run(parse_gtin, form.get("gtin", ""), field="gtin")
            if not (form.get("name") or "").strip():
                checks.add("is required: the name shoppers and partners know the product by", field="name")
            if not (form.get("unit") or "kg").strip():
                checks.add("is required (kg, lb, case, ...)", field="unit")
            checks.done()
            product = orgs.register_product(
                get_ctx(),
                org,
                form.get("gtin", ""),
                form.get("name", ""),
                form.get("category") or None,
                form.get("on_food_traceability_list") == "on",
                (form.get("unit") or "kg").strip(),
                form.get("commodity") or None,
                form.get("variety") or None,
            )
        except FORM_ERRORS as err:
            return form_failed(err, "dashboard/products.html", org=require_org(), form=form)
        commit()
        flash(gettext("Product %(name)s (%(gtin)s) registered.", name=product.name, gtin=product.gtin), "ok")
        return redirect(url_for("dashboard.products"))
    return render_template("dashboard/products.html", org=org, form=submitted_form())


@bp.route("/sites", methods=["GET", "POST"])
@roles_required(*HANDLER_ROLES)
def sites() -> str | Response | tuple[str, int]:
    org = require_org()
    if request.method == "POST":
        form = request.form
        try:
            checks = Checks()
            checks.run(parse_gln, form.get("gln", ""), field="gln")
            if not (form.get("name") or "").strip():
                checks.add("is required: the name your partners know the site by", field="name")
            lat = checks.run(_coordinate, form.get("latitude"), "latitude", 90)
            lon = checks.run(_coordinate, form.get("longitude"), "longitude", 180)
            checks.done()
            location = orgs.register_location(
                get_ctx(),
                org,
                form.get("gln", ""),
                form.get("name", ""),
                form.get("address") or None,
                lat,
                lon,
                form.get("kind") or "other",
            )
        except FORM_ERRORS as err:
            return form_failed(err, "dashboard/sites.html", org=require_org(), form=form, kinds=LOCATION_KINDS)
        commit()
        flash(gettext("Site %(name)s (%(gln)s) registered.", name=location.name, gln=location.gln), "ok")
        return redirect(url_for("dashboard.sites"))
    return render_template("dashboard/sites.html", org=org, form=submitted_form(), kinds=LOCATION_KINDS)


def _input_field(err: Exception, inputs: list[tuple[Lot, str]]) -> Exception:
    """A service's ``outputs[0].inputs[j]...`` refusal named by the form's input of that lot (``input.<id>``)."""
    name = getattr(err, "field", None) or ""
    match = re.match(r"outputs\[0\]\.inputs\[(\d+)\]", name)
    if match and int(match.group(1)) < len(inputs) and isinstance(err, InvalidInput | Conflict | Forbidden):
        lot = inputs[int(match.group(1))][0]
        return type(err)(err.message, field=f"input.{lot.id}", code=err.code)
    return err


def _coordinate(raw: str | None, field: str, limit: int = 180) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        raise InvalidInput(f"{field} must be a number in decimal degrees, e.g. 36.6777", field=field) from None
    if not value.is_finite():
        raise InvalidInput(f"{field} must be a finite number", field=field)
    if not -limit <= value <= limit:
        raise InvalidInput(f"{field} must be between -{limit} and {limit}", field=field)
    return float(value)


# ------------------------------------------------------------------ new lots


@bp.route("/lots/new", methods=["GET", "POST"])
@roles_required(*CREATOR_ROLES)
def new_lot() -> str | Response | tuple[str, int]:
    org = require_org()
    ctx = get_ctx()
    kind_name = request.values.get("kind") or submitted_form().get("kind") or "harvesting"
    if kind_name not in CREATE_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(CREATE_KINDS)}", field="kind")
    kind = CREATE_KINDS[kind_name]

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        sites = views.locations(ctx)
        values = submitted_form()
        chosen = request.values.get("gtin") or values.get("gtin") or ""  # ?gtin= picks the product without a script
        product = next((p for p in org.products if p.gtin == chosen), None) or (
            org.products[0] if org.products else None
        )
        fields = kde_fields(
            kind,
            sites,
            org.id,
            values,
            defaults={
                "unit": product.unit if product else "kg",
                "commodity": (product.commodity or product.name) if product else "",
                "variety": (product.variety or "") if product else "",
            },
        )
        context = {
            "org": org,
            "kind": kind_name,
            "kinds": CREATE_KINDS,
            "fields": fields,
            "form": values,
            "product": product,
            "has_sites": any(s.organisation_id == org.id for s in sites),
        }
        if error is not None:
            return form_failed(error, "dashboard/new_lot.html", **context)
        return render_template("dashboard/new_lot.html", **context)

    if request.method == "GET":
        return page()
    form = request.form
    payload = payload_from_form(kind, form)
    try:
        checks = Checks()
        checks.run(parse_gtin, form.get("gtin", ""), field="gtin")
        checks.run(parse_lot_code, form.get("lot_code", ""), field="lot_code")
        # The quantity is the lot's (``quantity``, as the service names it); the other KDEs are the event's.
        checks.run(parse_quantity, form.get(PREFIX + "quantity", ""))
        chosen = next((p for p in org.products if p.gtin == form.get("gtin")), None)
        rest = {k: v for k, v in payload.items() if k != "quantity"}
        check_payload(checks, kind, rest, may_be_missing=(*LOT_FILLED, *bound_fields(chosen)))
        checks.done()
        lot = lot_service.create_lot(
            ctx,
            org,
            form.get("gtin", ""),
            form.get("lot_code", ""),
            kind,
            payload,
            form.get(PREFIX + "quantity", ""),
            form.get(PREFIX + "unit") or None,
        )
    except FORM_ERRORS as err:
        return page(err)
    commit()
    flash(gettext("Lot %(lot)s created.", lot=lot.lot_code), "ok")
    return redirect(url_for("lots.show", lot_id=lot.id))


@bp.route("/transform", methods=["GET", "POST"])
@roles_required(*CREATOR_ROLES)
def transform() -> str | Response | tuple[str, int]:
    """Make one new lot from lots the organisation holds (wash, cut, mix, merge), consuming part or all of
    each input."""
    org = require_org()
    ctx = get_ctx()
    held = [lot for lot in views.lots_for_org(ctx, org, "active") if lot.custodian_org_id == org.id]

    def page(error: Exception | None = None) -> tuple[str, int] | str:
        context = {
            "org": org,
            "held": held,
            "form": submitted_form(),
            "sites": views.locations(ctx),
            "today_iso": today(),
        }
        if error is not None:
            return form_failed(error, "dashboard/transform.html", **context)
        return render_template("dashboard/transform.html", **context)

    if request.method == "GET":
        return page()
    form = request.form
    inputs: list[tuple[Lot, str]] = []
    try:
        checks = Checks()
        for lot in held:
            qty = (form.get(f"input.{lot.id}") or "").strip()
            if qty:
                inputs.append((lot, qty))
                amount = checks.run(parse_quantity, qty, f"input.{lot.id}")
                if amount is not None:
                    checks.run(check_consumption, lot.quantity, amount, f"input.{lot.id}", lot.unit)
        for key in form:
            if (
                key.startswith("input.")
                and key[6:].isdigit()
                and form[key].strip()
                and int(key[6:]) not in {lot.id for lot in held}
            ):
                raise Forbidden(f"{org.name} cannot use lot {key[6:]}: it does not hold it", field=key)
        if not inputs:
            checks.add("pick at least one input lot and the quantity used from it", field="inputs")
        checks.run(parse_gtin, form.get("gtin", ""), field="gtin")
        checks.run(parse_lot_code, form.get("lot_code", ""), field="lot_code")
        checks.run(parse_quantity, form.get("quantity", ""))
        checks.run(parse_gln, form.get("location_gln", ""), field="payload.location_gln")
        checks.run(parse_when, form.get("transformation_date", ""), "payload.transformation_date")
        checks.done()
        output = lot_service.NewLot(
            form.get("gtin", ""),
            form.get("lot_code", ""),
            form.get("quantity", ""),
            (form.get("unit") or "").strip() or None,
            inputs,
        )
        extra = {"product_description": form.get("product_description")} if form.get("product_description") else None
        created = lot_service.transform(
            ctx, org, [output], form.get("location_gln", ""), form.get("transformation_date", ""), extra
        )
    except FORM_ERRORS as err:
        return page(_input_field(err, inputs))
    commit()
    flash(gettext("Lot %(lot)s made from %(n)s input lot(s).", lot=created[0].lot_code, n=len(inputs)), "ok")
    return redirect(url_for("lots.show", lot_id=created[0].id))
