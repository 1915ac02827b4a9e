"""The recall desk: draft -> review -> issue (typed lot code) -> updates -> terminate; the recall page with
every affected lot and holder, its history, and the effectiveness view with reminders."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from app.admin import bp
from app.forms import Checks
from app.web import (
    commit,
    current_user,
    form_failed,
    get_ctx,
    require_org,
    roles_required,
    submitted_form,
    visible_lot,
)
from supply_chain.domain import policy
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput
from supply_chain.domain.policy import RecallDepth
from supply_chain.services import lots as lot_service
from supply_chain.services import recalls
from supply_chain.store.models import Recall, RecallDraft

DESK_ROLES = policy.ordered(policy.RECALL_DESK_ROLES)
FORM_ERRORS = (InvalidInput, Conflict, Forbidden)
NOTICE_FIELDS = ("recall_class", "depth", "reason", "instructions", "public_notice", "contact")


def _draft_values(draft: RecallDraft | None = None) -> dict[str, Any]:
    if request.method == "POST":
        return {name: request.form.get(name, "") for name in NOTICE_FIELDS}
    kept = submitted_form()  # a draft kept when the session ended (of this form, or of the draft's edit form)
    if kept:
        return {name: kept.get(name, "") for name in NOTICE_FIELDS}
    if draft is None:
        return {"recall_class": "", "depth": RecallDepth.CONSUMER.value, "public_notice": "yes"}
    values = {name: getattr(draft, name) or "" for name in NOTICE_FIELDS}
    values["public_notice"] = "yes" if draft.public_notice else "no"
    return values


def _form_context(lot: Any, values: dict[str, Any], draft: RecallDraft | None = None) -> dict[str, Any]:
    ctx = get_ctx()
    return {
        "lot": lot,
        "draft": draft,
        "form": values,
        "depths": [d.value for d in RecallDepth],
        "affected": recalls.affected_lots(ctx, lot),
        "holders": recalls.holders(ctx, lot, exclude=require_org()),
    }


@bp.route("/lots/<int:lot_id>/recall", methods=["GET", "POST"])
@roles_required(*DESK_ROLES)
def recall(lot_id: int) -> str | Response | tuple[str, int]:
    """Start a recall: the draft form (nothing is issued from here)."""
    lot = visible_lot(lot_id)
    values = _draft_values()
    if request.method == "GET":
        return render_template("admin/recall.html", **_form_context(lot, values))
    try:
        _check_notice()
        draft = recalls.create_draft(get_ctx(), require_org(), current_user(), lot, request.form)
    except FORM_ERRORS as err:
        return form_failed(err, "admin/recall.html", **_form_context(lot, values))
    commit()
    flash(gettext("Draft recall of lot %(lot)s saved. Review it before issuing.", lot=lot.lot_code), "ok")
    return redirect(url_for("admin.recall_draft", draft_id=draft.id))


def _check_notice() -> None:
    """Every wrong field of the submitted notice at once (the service then checks them again)."""
    checks = Checks()
    checks.extend(recalls.notice_problems(request.form))
    checks.done()


def _draft_page(draft: RecallDraft, error: Exception | None = None) -> str | tuple[str, int]:
    ctx = get_ctx()
    context = _form_context(draft.lot, _draft_values(draft), draft) | {
        "history": recalls.history(ctx, draft=draft),
        "level": policy.effectiveness_level(draft.recall_class, draft.depth),
        "progress": lot_service.recall_progress(ctx, draft.lot),
    }
    if error is not None:
        return form_failed(error, "admin/recall_draft.html", **context)
    return render_template("admin/recall_draft.html", **context)


@bp.get("/recalls/drafts/<int:draft_id>")
@roles_required(*DESK_ROLES)
def recall_draft(draft_id: int) -> str | Response | tuple[str, int]:
    """A draft (edit, send to review, discard) or, in review, the review page with the typed confirmation."""
    draft = recalls.get_draft(get_ctx(), draft_id)
    if draft.recall_id is not None:
        return redirect(url_for("admin.recall_page", recall_id=draft.recall_id))
    return _draft_page(draft)


def _draft_action(draft_id: int, action: str) -> str | Response | tuple[str, int]:
    ctx = get_ctx()
    draft = recalls.get_draft(ctx, draft_id)
    org, user = require_org(), current_user()
    try:
        if action == "edit":
            _check_notice()
            recalls.edit_draft(ctx, org, user, draft, request.form)
            message = gettext("Draft saved.")
        elif action == "review":
            recalls.submit_for_review(ctx, org, user, draft)
            message = gettext("Check every affected lot and holder below, then type the lot code to issue the recall.")
        elif action == "discard":
            recalls.discard_draft(ctx, org, user, draft)
            message = gettext("Draft recall of lot %(lot)s discarded; nothing was issued.", lot=draft.lot.lot_code)
        else:
            recall = recalls.issue(ctx, org, user, draft, request.form.get("confirm_lot_code"))
            commit()
            progress = lot_service.recall_progress(ctx, draft.lot)
            n = len(recalls.notified_org_ids(ctx, recall))
            if progress["remaining"]:
                done = gettext(
                    "Lot %(lot)s recalled on chain; %(remaining)s lots made from it follow in batches. "
                    "%(n)s holders notified.",
                    lot=draft.lot.lot_code,
                    remaining=progress["remaining"],
                    n=n,
                )
            else:
                done = gettext("Lot %(lot)s recalled on chain. %(n)s holders notified.", lot=draft.lot.lot_code, n=n)
            flash(done, "ok")
            return redirect(url_for("admin.recall_page", recall_id=recall.id))
    except FORM_ERRORS as err:
        return _draft_page(draft, err)
    commit()
    flash(message, "ok")
    if action == "discard":
        return redirect(url_for("admin.index"))
    return redirect(url_for("admin.recall_draft", draft_id=draft.id))


@bp.post("/recalls/drafts/<int:draft_id>/edit")
@roles_required(*DESK_ROLES)
def edit_recall_draft(draft_id: int) -> str | Response | tuple[str, int]:
    return _draft_action(draft_id, "edit")


@bp.post("/recalls/drafts/<int:draft_id>/review")
@roles_required(*DESK_ROLES)
def review_recall_draft(draft_id: int) -> str | Response | tuple[str, int]:
    return _draft_action(draft_id, "review")


@bp.post("/recalls/drafts/<int:draft_id>/discard")
@roles_required(*DESK_ROLES)
def discard_recall_draft(draft_id: int) -> str | Response | tuple[str, int]:
    return _draft_action(draft_id, "discard")


@bp.post("/recalls/drafts/<int:draft_id>/issue")
@roles_required(*DESK_ROLES)
def issue_recall(draft_id: int) -> str | Response | tuple[str, int]:
    return _draft_action(draft_id, "issue")


# ------------------------------------------------------------------ issued recalls


def _recall_context(recall: Recall) -> dict[str, Any]:
    ctx = get_ctx()
    return {
        "recall": recall,
        "lot": recall.lot,
        "affected": recalls.affected_lots(ctx, recall.lot),
        "history": recalls.history(ctx, recall),
        "eff": recalls.effectiveness(ctx, recall),
        "progress": lot_service.recall_progress(ctx, recall.lot),
        "form": submitted_form(),  # on the page: an update or termination typed before the session ended
    }


def _recall_failed(recall: Recall, err: Exception, template: str = "admin/recall_page.html") -> tuple[str, int]:
    return form_failed(err, template, **_recall_context(recall))


@bp.get("/recalls/<int:recall_id>")
@roles_required(*DESK_ROLES)
def recall_page(recall_id: int) -> str:
    """An issued recall: its status, notice, every affected lot with its holder and quantity, its history."""
    return render_template("admin/recall_page.html", **_recall_context(recalls.get_recall(get_ctx(), recall_id)))


@bp.get("/recalls/<int:recall_id>/effectiveness")
@roles_required(*DESK_ROLES)
def recall_effectiveness(recall_id: int) -> str:
    """Who acknowledged, what they accounted for, who has not answered; the effectiveness-check level."""
    return render_template(
        "admin/recall_effectiveness.html", **_recall_context(recalls.get_recall(get_ctx(), recall_id))
    )


@bp.post("/recalls/<int:recall_id>/updates")
@roles_required(*DESK_ROLES)
def update_recall(recall_id: int) -> str | Response | tuple[str, int]:
    ctx = get_ctx()
    recall = recalls.get_recall(ctx, recall_id)
    try:
        recalls.add_update(ctx, require_org(), current_user(), recall, request.form.get("text"))
    except FORM_ERRORS as err:
        return _recall_failed(recall, err)
    commit()
    flash(gettext("Update published; every holder is notified."), "ok")
    return redirect(url_for("admin.recall_page", recall_id=recall.id))


@bp.post("/recalls/<int:recall_id>/terminate")
@roles_required(*DESK_ROLES)
def terminate_recall(recall_id: int) -> str | Response | tuple[str, int]:
    ctx = get_ctx()
    recall = recalls.get_recall(ctx, recall_id)
    try:
        recalls.terminate(ctx, require_org(), current_user(), recall, request.form.get("reason"))
    except FORM_ERRORS as err:
        return _recall_failed(recall, err)
    commit()
    flash(gettext("The recall of lot %(lot)s is terminated; every holder is notified.", lot=recall.lot.lot_code), "ok")
    return redirect(url_for("admin.recall_page", recall_id=recall.id))


@bp.post("/recalls/<int:recall_id>/remind")
@roles_required(*DESK_ROLES)
def remind_recall(recall_id: int) -> str | Response | tuple[str, int]:
    ctx = get_ctx()
    recall = recalls.get_recall(ctx, recall_id)
    try:
        reminded = recalls.remind(ctx, require_org(), current_user(), recall)
    except FORM_ERRORS as err:
        return _recall_failed(recall, err, "admin/recall_effectiveness.html")
    commit()
    if reminded:
        flash(gettext("Reminder sent to %(names)s.", names=", ".join(o.name for o in reminded)), "ok")
    else:
        flash(gettext("Every notified holder has acknowledged; no reminder sent."), "ok")
    return redirect(url_for("admin.recall_effectiveness", recall_id=recall.id))
