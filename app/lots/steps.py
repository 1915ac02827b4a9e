"""One-field steps on a lot (close, place or lift a hold, cancel a shipment): a reason, and for the steps that
cannot be undone the lot code typed again. The lot page carries them as small inline forms; a refused one (or
one opened from a link) is shown on a page of its own with the errors next to the inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext
from flask_babel.speaklater import LazyString
from werkzeug.wrappers import Response

from app.forms import Checks, check_payload, confirm_lot_code, today
from app.web import commit, form_failed, get_ctx, require_org, roles_required, submitted_form, visible_lot
from supply_chain.domain.errors import Conflict, InvalidInput
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import Action
from supply_chain.services import lots as lot_service
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Lot, Organisation


@dataclass(frozen=True)
class Step:
    action: Action
    kind: EventKind
    title: str | LazyString
    """The page's heading, ``%(code)s`` standing for the lot code (translated when shown)."""
    explain: str | LazyString
    button: str | LazyString
    endpoint: str
    confirm: str | None = None
    """What typing the lot code confirms ("close the lot"); None for a step that can be undone."""
    danger: bool = False


STEPS = {
    "close": Step(
        Action.CLOSE,
        EventKind.CLOSE,
        lazy_gettext("Close lot %(code)s"),
        lazy_gettext(
            "A closed lot is sold, used up or destroyed: nothing more can be recorded on it, and it cannot be reopened."
        ),
        lazy_gettext("Close lot"),
        "lots.close",
        confirm="close the lot",
        danger=True,
    ),
    "release": Step(
        Action.RELEASE,
        EventKind.RELEASE,
        lazy_gettext("Lift the hold on lot %(code)s"),
        lazy_gettext(
            "Once the hold is lifted the lot may be shipped, sold and used again; the release is recorded on the "
            "ledger."
        ),
        lazy_gettext("Release lot"),
        "inspections.release",
        confirm="lift the hold",
    ),
    "hold": Step(
        Action.HOLD,
        EventKind.HOLD,
        lazy_gettext("Place a hold on lot %(code)s"),
        lazy_gettext("A held lot may not be shipped or used until an inspector lifts the hold."),
        lazy_gettext("Hold lot"),
        "inspections.hold",
        danger=True,
    ),
    "cancel": Step(
        Action.CANCEL,
        EventKind.CUSTODY_CANCELLED,
        lazy_gettext("Cancel the shipment of lot %(code)s"),
        lazy_gettext("The receiver has not accepted the lot yet; cancelling gives it back to you."),
        lazy_gettext("Cancel shipment"),
        "lots.cancel_offer",
    ),
}
FORM_ERRORS = (InvalidInput, Conflict)


def run(name: str, lot: Lot, act: Callable[[str, str | None], Any], done: str) -> str | Response | tuple[str, int]:
    """Show the step's page (GET), or check the reason (and the typed lot code) all at once, then ``act``."""
    step = STEPS[name]
    ctx = get_ctx()
    lot_service.check(ctx, step.action, require_org(), lot)
    form = submitted_form()
    context = {"lot": lot, "step": step, "title": str(step.title) % {"code": lot.lot_code}, "form": form}
    if request.method == "GET":
        return render_template("lots/step.html", **context)
    reason = (form.get("reason") or "").strip()
    when = form.get("date") or None
    try:
        checks = Checks()
        check_payload(checks, step.kind, {"reason": reason, "date": when or today()})
        if step.confirm:
            confirm_lot_code(checks, form, lot.lot_code, step.confirm)
        checks.done()
        act(reason, when)
    except FORM_ERRORS as err:
        return form_failed(err, "lots/step.html", **context)
    commit()
    flash(done, "ok")
    return redirect(url_for("lots.show", lot_id=lot.id))


StepService = Callable[[Ctx, Organisation, Lot, str, str | None], Any]
"""A service taking the step: ``(ctx, actor, lot, reason, date)``, e.g. ``lots.close``."""


def route(
    bp: Blueprint,
    rule: str,
    name: str,
    roles: tuple[str, ...],
    service: StepService,
    done: Callable[[Lot], str],
    doc: str | None = None,
) -> None:
    """Register the page of step ``name`` at ``rule`` (GET shows it, POST takes the step with ``service``),
    open to ``roles``; ``done`` is what the user is told afterwards. Its endpoint is the step's."""
    endpoint = STEPS[name].endpoint.split(".", 1)[1]

    def view(lot_id: int) -> str | Response | tuple[str, int]:
        lot = visible_lot(lot_id)
        org = require_org()
        return run(name, lot, lambda reason, when: service(get_ctx(), org, lot, reason, when), done(lot))

    view.__name__ = endpoint
    view.__doc__ = doc
    bp.add_url_rule(rule, endpoint, roles_required(*roles)(view), methods=["GET", "POST"])
