"""Named EPCIS queries (the REST binding's ``/queries``): the standard query parameters an organisation
stores under a name and runs later through ``/queries/{name}/events``.

A query is checked by the parser of ``GET /events`` (``repository.parse_query``) when it is stored, so a
parameter Lotline does not answer is refused then (400 naming it) and nothing is stored. It is run with the
visibility of whoever asks (``repository.query``), so a stored query never shows more than its caller
may see. Names belong to the organisation that made them: another organisation's query is a 404, for
oversight too (regulators see every event, not every organisation's saved views).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from supply_chain.domain import delivery as rules
from supply_chain.domain.errors import Conflict, InvalidInput, LotlineError, NotFound
from supply_chain.services import delivery
from supply_chain.services.epcis import repository
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import EpcisNamedQuery, EpcisSubscription, Organisation

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9._~-]{1,100}")
"""A query name: 1-100 of the characters a URL path segment carries unescaped."""

PAGE_PARAMETERS = ("perPage", "nextPageToken")
"""What a caller of ``/queries/{name}/events`` adds: the page, not the query."""


class QueryExists(Conflict):
    """Raised when the organisation already has a query of that name (the binding's
    ``ResourceAlreadyExistsException``, 409)."""

    code = "epcis_query_exists"
    details = {"type": "epcisException:ResourceAlreadyExistsException"}


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InvalidInput(
            f"name: a query name is 1-100 letters, digits, '.', '_', '~' or '-'; got {str(name)!r:.60}",
            field="name",
            code="invalid_query_name",
        )
    return name


def arguments(query: Mapping[str, Any]) -> dict[str, list[str]]:
    """The query body (the binding's query schema: a list of strings, a string, a number or ``true`` per
    parameter) as the URL parameters ``parse_query`` reads. A value of another shape is refused naming
    the parameter."""
    args: dict[str, list[str]] = {}
    for name, value in query.items():
        if name == "nextPageToken":
            raise InvalidInput(
                "nextPageToken: a page token belongs to one answer, not to a stored query",
                field=name,
                code="epcis_query_parameter_invalid",
            )
        if isinstance(value, bool):
            if not value:
                raise InvalidInput(
                    f"{name}: false is not a value this parameter takes (leave it out)",
                    field=name,
                    code="epcis_query_parameter_invalid",
                )
            args[name] = ["true"]
        elif isinstance(value, str):
            args[name] = [value]
        elif isinstance(value, int | float):
            args[name] = [str(value)]
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            args[name] = list(value)
        else:
            raise InvalidInput(
                f"{name}: must be a list of strings, a string, a number or true",
                field=name,
                code="epcis_query_parameter_invalid",
            )
    return args


def create(ctx: Ctx, org: Organisation, body: Mapping[str, Any]) -> EpcisNamedQuery:
    """Store ``body`` (``{"name", "query"}``) as ``org``'s query (not committed). Its parameters are parsed
    as ``GET /events`` parses them; a bad one is refused naming it, a name already used is ``QueryExists``."""
    name = check_name(body.get("name"))
    query = body.get("query")
    if not isinstance(query, dict):
        raise InvalidInput("query: must be an object of query parameters", field="query", code="missing_field")
    repository.parse_query(arguments(query))
    if _find(ctx, org, name) is not None:
        raise QueryExists(f"name: {org.name} already has a query named {name!r}", field="name")
    row = EpcisNamedQuery(organisation_id=org.id, name=name, query=dict(query))
    ctx.session.add(row)
    ctx.session.flush()
    return row


def _find(ctx: Ctx, org: Organisation, name: str) -> EpcisNamedQuery | None:
    return ctx.session.scalars(
        select(EpcisNamedQuery).where(EpcisNamedQuery.organisation_id == org.id, EpcisNamedQuery.name == name)
    ).first()


def get(ctx: Ctx, org: Organisation, name: str) -> EpcisNamedQuery:
    """``org``'s query ``name``; NotFound otherwise (another organisation's query does not exist)."""
    row = _find(ctx, org, name)
    if row is None:
        raise NotFound(f"no query named {name!r:.100} of {org.name}", field="queryName", code="unknown_query")
    return row


def delete(ctx: Ctx, org: Organisation, name: str) -> None:
    """Remove ``org``'s query ``name`` and its subscriptions (not committed), as the binding says: deleting a
    query unsubscribes its subscribers."""
    for sub in subscriptions(ctx, org, name):
        ctx.session.delete(sub)
    ctx.session.flush()
    ctx.session.delete(get(ctx, org, name))
    ctx.session.flush()


def listing(
    ctx: Ctx, org: Organisation, per_page: int = 30, page_token: str | None = None
) -> tuple[list[EpcisNamedQuery], str | None]:
    """One page of ``org``'s queries by name, and the next page's token (None on the last page)."""
    statement = select(EpcisNamedQuery).where(EpcisNamedQuery.organisation_id == org.id)
    if page_token:
        statement = statement.where(EpcisNamedQuery.name > repository.listing_after(page_token))
    rows = list(ctx.session.scalars(statement.order_by(EpcisNamedQuery.name).limit(per_page + 1)))
    more = len(rows) > per_page
    rows = rows[:per_page]
    return rows, repository.token(rows[-1].name) if more and rows else None


def run_arguments(row: EpcisNamedQuery, page: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The parameters to run ``row`` with: its own, with the caller's page (``perPage``, ``nextPageToken``);
    any other parameter of the caller is refused naming it (a query is changed by storing another)."""
    for name in page:
        if name not in PAGE_PARAMETERS:
            raise InvalidInput(
                f"{name}: a named query's events take only perPage and nextPageToken (to change the query, "
                "store another; WebSocket subscriptions are not offered)",
                field=name,
                code="epcis_query_parameter_unsupported",
            )
    return arguments(row.query) | dict(page)


def as_json(row: EpcisNamedQuery) -> dict[str, Any]:
    return {"name": row.name, "query": row.query}


# ------------------------------------------------------------------ webhook subscriptions (stream)

MAX_SUBSCRIPTIONS = 10
"""Subscriptions per named query."""
TOKEN_MAX = 200
MAX_STREAM_EVENTS = 10_000
"""Events of one capture job in one delivery at most (a capture job holds at most 10,000)."""


def subscribe(ctx: Ctx, org: Organisation, name: str, body: Mapping[str, Any]) -> EpcisSubscription:
    """Subscribe ``dest`` (a webhook URL, checked as webhook endpoints are: no private address) to ``org``'s
    query ``name`` with ``stream: true``: every capture job's newly captured events that the query selects
    are delivered (not committed). A ``schedule`` is refused: scheduled subscriptions are not offered."""
    row = get(ctx, org, name)
    if body.get("schedule") is not None:
        raise InvalidInput(
            "schedule: scheduled subscriptions are not offered yet; subscribe with stream: true",
            field="schedule",
            code="epcis_subscription_unsupported",
        )
    if body.get("initialRecordTime") is not None:
        raise InvalidInput(
            "initialRecordTime: not offered; a stream delivers the events captured after it is made",
            field="initialRecordTime",
            code="epcis_subscription_unsupported",
        )
    if body.get("stream") is not True:
        raise InvalidInput(
            "stream: must be true (deliver each newly captured matching event); schedules are not offered",
            field="stream",
            code="missing_field",
        )
    dest = rules.check_webhook_url(body.get("dest"), allow_private=ctx.settings.webhook_allow_private, field="dest")
    token = body.get("signatureToken")
    sealed = kek = None
    if token is not None:
        if not isinstance(token, str) or not 1 <= len(token) <= TOKEN_MAX or not token.isprintable():
            raise InvalidInput(
                f"signatureToken: 1-{TOKEN_MAX} printable characters", field="signatureToken", code="invalid_token"
            )
        sealed, kek = ctx.runtime.keyring.seal_secret(token)
    count = len(subscriptions(ctx, org, name))
    if count >= MAX_SUBSCRIPTIONS:
        raise Conflict(
            f"{name} has {count} subscriptions, the most allowed; delete one first",
            field="dest",
            code="too_many_subscriptions",
        )
    sub = EpcisSubscription(
        uid=str(uuid.uuid4()),
        organisation_id=org.id,
        query_id=row.id,
        dest=dest,
        stream=True,
        sealed_token=sealed,
        key_encryption_id=kek,
    )
    ctx.session.add(sub)
    ctx.session.flush()
    return sub


def subscriptions(ctx: Ctx, org: Organisation, name: str) -> list[EpcisSubscription]:
    """The subscriptions of ``org``'s query ``name``, oldest first."""
    row = get(ctx, org, name)
    return list(
        ctx.session.scalars(
            select(EpcisSubscription).where(EpcisSubscription.query_id == row.id).order_by(EpcisSubscription.id)
        )
    )


def subscription(ctx: Ctx, org: Organisation, name: str, uid: str) -> EpcisSubscription:
    for sub in subscriptions(ctx, org, name):
        if sub.uid == uid:
            return sub
    raise NotFound(f"no subscription {uid!r:.60} to {name!r:.100}", field="subscriptionID", code="unknown_subscription")


def unsubscribe(ctx: Ctx, org: Organisation, name: str, uid: str) -> None:
    """Delete a subscription (not committed); deliveries not yet sent are cancelled when their turn comes."""
    ctx.session.delete(subscription(ctx, org, name, uid))
    ctx.session.flush()


def subscription_json(sub: EpcisSubscription) -> dict[str, Any]:
    """A subscription as the binding shows it (never its signature token)."""
    return {
        "subscriptionID": sub.uid,
        "queryName": sub.query.name,
        "dest": sub.dest,
        "stream": sub.stream,
        "createdAt": sub.created_at.isoformat().replace("+00:00", "Z"),
        "lastNotifiedAt": sub.last_notified_at.isoformat().replace("+00:00", "Z") if sub.last_notified_at else None,
    }


def on_captured(ctx: Ctx, job_id: int, context: Any) -> int:
    """Enqueue, for every stream subscription whose query selects events the capture job ``job_id`` just
    captured (those its subscriber may see), one delivery of an EPCIS query document holding them (in the
    caller's transaction, the one that settles the job). A query that cannot run now (``maxEventCount``
    exceeded) skips that subscription, logged. Returns how many deliveries were enqueued."""
    subs = list(ctx.session.scalars(select(EpcisSubscription).where(EpcisSubscription.stream.is_(True))))
    enqueued = 0
    for sub in subs:
        try:
            q = repository.parse_query(arguments(sub.query.query))
        except LotlineError as exc:  # stored before a rule changed: never breaks a capture
            log.warning("subscription %s: its query no longer parses: %s", sub.uid, exc)
            continue
        q.capture_job, q.per_page, q.event_count_limit = job_id, MAX_STREAM_EVENTS, None
        try:
            rows, _ = repository.query(ctx, sub.organisation, q)
        except repository.QueryTooLarge as exc:
            log.warning("subscription %s: %s", sub.uid, exc.message)
            continue
        if not rows:
            continue
        document = repository.query_document(rows, context=context, query_name=sub.query.name)
        delivery.enqueue_subscription(
            ctx,
            sub.organisation,
            url=sub.dest,
            subject=f"EPCIS query {sub.query.name}: {len(rows)} event(s)",
            data={"subscription": sub.uid, "document": document},
        )
        sub.last_notified_at = datetime.now(UTC)
        enqueued += 1
    return enqueued
