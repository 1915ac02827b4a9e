"""Notifications: the one place a notification is created (``notify``), and an organisation's inbox.

Every message to an organisation goes through ``notify``: today it writes the in-app inbox row
(``/notifications``); delivery by e-mail and webhook hooks in here too, so no caller needs to know how an
organisation is told.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update

from supply_chain.domain.errors import NotFound
from supply_chain.domain.text import check_text
from supply_chain.services import delivery
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Notification, Organisation, User

TOPIC_RECALL_ISSUED = "recall.issued"
TOPIC_RECALL_UPDATE = "recall.update"
TOPIC_RECALL_REMINDER = "recall.reminder"
TOPIC_RECALL_TERMINATED = "recall.terminated"
TOPIC_CUSTODY_REFUSED = "custody.refused"
TOPICS = (
    TOPIC_RECALL_ISSUED,
    TOPIC_RECALL_UPDATE,
    TOPIC_RECALL_REMINDER,
    TOPIC_RECALL_TERMINATED,
    TOPIC_CUSTODY_REFUSED,
)


def notify(
    ctx: Ctx,
    org: Organisation,
    *,
    topic: str,
    subject: str,
    text: str,
    link: str | None = None,
    recall_id: int | None = None,
) -> Notification:
    """Tell ``org`` something: the single entry point for every notification (inbox now; e-mail and
    webhooks are delivered from here). ``link`` is a path in the app (the recall notice)."""
    if topic not in TOPICS:
        raise ValueError(f"unknown notification topic {topic!r}")
    row = Notification(
        organisation_id=org.id,
        topic=topic,
        subject=check_text(subject[:300], "subject"),
        text=check_text(text, "text", multiline=True),
        link=link,
        recall_id=recall_id,
    )
    ctx.session.add(row)
    ctx.session.flush()
    # The same notice by e-mail and to the organisation's webhooks, written in this transaction and sent
    # after it commits (never inside the caller's request): a rolled-back change tells no one.
    delivery.enqueue(
        ctx,
        org,
        topic=topic,
        subject=row.subject,
        text=row.text,
        data={"notification_id": row.id, "recall_id": recall_id, "topic": topic},
        link=link,
    )
    return row


def inbox(ctx: Ctx, org: Organisation, limit: int = 200) -> list[Notification]:
    """The organisation's notifications, newest first."""
    return list(
        ctx.session.scalars(
            select(Notification)
            .where(Notification.organisation_id == org.id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )


def unread_count(ctx: Ctx, org: Organisation) -> int:
    return int(
        ctx.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.organisation_id == org.id, Notification.read_at.is_(None))
        )
        or 0
    )


def get(ctx: Ctx, org: Organisation, notification_id: int) -> Notification:
    """One of the organisation's notifications (NotFound for another's, so ids cannot be probed)."""
    row = ctx.session.get(Notification, notification_id)
    if row is None or row.organisation_id != org.id:
        raise NotFound(f"no notification {notification_id} for {org.name}", code="unknown_notification")
    return row


def mark_read(ctx: Ctx, org: Organisation, user: User | None, notification_id: int | None = None) -> int:
    """Mark one notification (or, with None, every unread one) of ``org`` read; returns how many changed."""
    query = update(Notification).where(Notification.organisation_id == org.id, Notification.read_at.is_(None))
    if notification_id is not None:
        get(ctx, org, notification_id)
        query = query.where(Notification.id == notification_id)
    result = ctx.session.execute(
        query.values(read_at=datetime.now(UTC), read_by_user_id=user.id if user else None),
        execution_options={"synchronize_session": "fetch"},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
