"""Named EPCIS queries (the REST binding's ``/queries``): the standard query parameters an organisation
stores under a name and runs later through ``/queries/{name}/events``.

A query is checked by the parser of ``GET /events`` (``repository.parse_query``) when it is stored, so a
parameter Lotline does not answer is refused then (400 naming it) and nothing is stored. It is run with the
visibility of whoever asks (``repository.query``), so a stored query never shows more than its caller
may see. Names belong to the organisation that made them: another organisation's query is a 404, for
oversight too (regulators see every event, not every organisation's saved views).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from supply_chain.domain.errors import Conflict, InvalidInput, NotFound
from supply_chain.services.epcis import repository
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import EpcisNamedQuery, Organisation

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
    """Remove ``org``'s query ``name`` (not committed)."""
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
