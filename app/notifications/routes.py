from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.notifications import bp
from app.web import commit, current_user, form_failed, get_ctx, login_required, require_org
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from supply_chain.services import notifications, recalls
from supply_chain.store.models import Notification, Recall

FORM_ERRORS = (InvalidInput, Conflict, Forbidden)


@bp.get("")
@login_required
def index() -> str:
    org = require_org()
    ctx = get_ctx()
    return render_template(
        "notifications/inbox.html",
        items=notifications.inbox(ctx, org),
        unread=notifications.unread_count(ctx, org),
    )


@bp.post("/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int) -> Response:
    notifications.mark_read(get_ctx(), require_org(), current_user(), notification_id)
    commit()
    return redirect(url_for("notifications.index"))


@bp.post("/read")
@login_required
def mark_all_read() -> Response:
    n = notifications.mark_read(get_ctx(), require_org(), current_user())
    commit()
    flash(ngettext("%(num)s notification marked read.", "%(num)s notifications marked read.", n), "ok")
    return redirect(url_for("notifications.index"))


def _notice_context(recall: Recall) -> dict[str, Any]:
    ctx = get_ctx()
    org = require_org()
    mine = next((h for h in recalls.holders(ctx, recall.lot) if h.org.id == org.id), None)
    return {
        "recall": recall,
        "lot": recall.lot,
        "holder": mine,
        "notified": org.id in recalls.notified_org_ids(ctx, recall),
        "ack": recalls.acknowledgement_of(ctx, recall, org),
        "messages": list(
            ctx.session.scalars(
                select(Notification)
                .where(Notification.recall_id == recall.id, Notification.organisation_id == org.id)
                .order_by(Notification.id)
            )
        ),
        "history": [s for s in recalls.history(ctx, recall) if s.kind in ("issued", "update", "terminated")],
        "form": request.form,
    }


def _visible_recall(recall_id: int) -> Recall:
    ctx = get_ctx()
    org = require_org()
    recall = ctx.session.get(Recall, recall_id)
    if recall is None or not recalls.can_read_notice(ctx, org, recall):
        raise NotFound(f"no recall notice {recall_id} for {org.name}", code="unknown_recall")
    return recall


@bp.get("/recalls/<int:recall_id>")
@login_required
def recall_notice(recall_id: int) -> str:
    """The recall notice as a holder reads it, with the acknowledgement form; reading it marks its
    notifications read."""
    recall = _visible_recall(recall_id)
    ctx = get_ctx()
    org = require_org()
    for row in ctx.session.scalars(
        select(Notification).where(
            Notification.recall_id == recall.id,
            Notification.organisation_id == org.id,
            Notification.read_at.is_(None),
        )
    ):
        notifications.mark_read(ctx, org, current_user(), row.id)
    return render_template("notifications/recall.html", **_notice_context(recall))


@bp.post("/recalls/<int:recall_id>/acknowledge")
@login_required
def acknowledge(recall_id: int) -> str | Response | tuple[str, int]:
    ctx = get_ctx()
    org = require_org()
    recall = ctx.session.get(Recall, recall_id)
    if recall is None:
        raise NotFound(f"no recall {recall_id}", code="unknown_recall")
    try:
        recalls.acknowledge(ctx, org, current_user(), recall, request.form)
    except FORM_ERRORS as err:
        if isinstance(err, Forbidden) and not recalls.can_read_notice(ctx, org, recall):
            raise
        return form_failed(err, "notifications/recall.html", **_notice_context(recall))
    commit()
    flash(
        gettext(
            "Thank you: %(org)s's answer to the recall of lot %(lot)s is recorded.",
            org=org.name,
            lot=recall.lot.lot_code,
        ),
        "ok",
    )
    return redirect(url_for("notifications.recall_notice", recall_id=recall.id))
