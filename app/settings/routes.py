from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.settings import bp
from app.web import commit, form_failed, get_ctx, login_required, require_org, submitted_form
from supply_chain.domain import delivery as rules
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.services import delivery

FORM_ERRORS = (InvalidInput, Conflict)
TEMPLATE = "settings/notifications.html"


def _context(**extra: object) -> dict[str, object]:
    ctx = get_ctx()
    org = require_org()
    log = delivery.log_for(ctx, org)
    return {
        "org": org,
        "recipients": delivery.email_recipients(org),
        "endpoints": delivery.list_endpoints(ctx, org),
        "log": log,
        "failures": sum(1 for row in log if row.status in ("failed", "not_configured")),
        "smtp_configured": bool(ctx.settings.smtp_host),
        "max_addresses": rules.MAX_ADDRESSES,
        "form": submitted_form(),  # on the page: what was typed before the session ended, if anything
    } | extra


@bp.get("/notifications")
@login_required
def notifications() -> str:
    return render_template(TEMPLATE, **_context())


@bp.post("/notifications/email")
@login_required
def set_email() -> Response | tuple[str, int]:
    """Set the organisation's notification addresses (empty: its users)."""
    org = require_org()
    try:
        addresses = delivery.set_notification_email(get_ctx(), org, request.form.get("notification_email", ""))
    except FORM_ERRORS as err:
        return form_failed(err, TEMPLATE, **_context())
    commit()
    if addresses:
        flash(gettext("Notices to %(org)s are e-mailed to %(to)s.", org=org.name, to=", ".join(addresses)), "ok")
    else:
        flash(gettext("Notices to %(org)s are e-mailed to its users.", org=org.name), "ok")
    return redirect(url_for("settings.notifications"))


@bp.post("/notifications/webhooks")
@login_required
def add_webhook() -> str | tuple[str, int]:
    """Register an endpoint; its signing secret is on this answer only."""
    org = require_org()
    try:
        endpoint, secret = delivery.create_endpoint(get_ctx(), org, request.form.get("url", ""))
    except FORM_ERRORS as err:
        return form_failed(err, TEMPLATE, **_context())
    commit()
    return render_template(TEMPLATE, **_context(created=endpoint, secret=secret, form={}))


@bp.post("/notifications/webhooks/<int:webhook_id>/active")
@login_required
def set_active(webhook_id: int) -> Response:
    active = request.form.get("active") == "1"
    endpoint = delivery.set_active(get_ctx(), require_org(), webhook_id, active)  # another org's: 404
    commit()
    if active:
        flash(gettext("Webhook %(url)s is on.", url=endpoint.url), "ok")
    else:
        flash(gettext("Webhook %(url)s is off (waiting deliveries to it are cancelled).", url=endpoint.url), "ok")
    return redirect(url_for("settings.notifications"))


@bp.post("/notifications/webhooks/<int:webhook_id>/ping")
@login_required
def ping(webhook_id: int) -> Response:
    row = delivery.ping(get_ctx(), require_org(), webhook_id)
    commit()
    flash(
        gettext("A test delivery to %(to)s is on its way; its result appears in the log below.", to=row.recipient), "ok"
    )
    return redirect(url_for("settings.notifications"))


@bp.post("/notifications/webhooks/<int:webhook_id>/delete")
@login_required
def delete_webhook(webhook_id: int) -> Response:
    endpoint = delivery.delete_endpoint(get_ctx(), require_org(), webhook_id)
    commit()
    flash(gettext("Webhook %(url)s deleted; nothing more is sent to it.", url=endpoint.url), "ok")
    return redirect(url_for("settings.notifications"))
