"""The route table of ``/api/v1``: every endpoint is declared once, with its request schema, query
parameters, scope and roles; the same declaration registers the Flask route, validates requests and builds
the OpenAPI 3.1 document (``openapi_document``), so the document cannot drift from the code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, wraps
from typing import Any

import jsonschema
from flask import Blueprint, Response, jsonify, request
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from app.api import schemas
from app.api.cursors import decode_cursor, encode_cursor
from app.web import get_ctx
from supply_chain.domain.errors import Forbidden, InvalidInput
from supply_chain.services import tokens
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Organisation

API_VERSION = "1.0.0"
MAX_PAGE = 200
DEFAULT_PAGE = 50

ERROR_RESPONSES = {
    400: "Bad input: malformed JSON, a field breaking a rule (named in `field`), a bad query parameter",
    401: "No API token, or an unknown or revoked one",
    403: "The token's scope (read) or the organisation's role or custody does not allow this",
    404: "No such lot, or one this organisation may not see",
    409: "Clashes with the current state (lot held, in transit, exists), or an Idempotency-Key reused",
    413: "The request body is too large",
    422: "An EPCIS document whose events cannot be captured (a result per event)",
    503: "The chain cannot be reached; nothing was written, or the write is pending and will be retried",
}
# body schema errors: the field's domain code when the field is a known identifier
_FIELD_CODES = {
    "gtin": "invalid_gtin",
    "gln": "invalid_gln",
    "lot_code": "invalid_lot_code",
    "quantity": "invalid_quantity",
    "scope": "invalid_scope",
}


@dataclass(frozen=True)
class Param:
    """A query parameter: its JSON schema (string, integer, boolean or an enum of strings)."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass
class Call:
    """What a view receives: the unit of work, who is calling, and the validated request."""

    ctx: Ctx
    org: Organisation
    scope: str
    token_id: int
    body: Any
    query: dict[str, Any]
    path: dict[str, str]
    idempotency_key: str | None = None


@dataclass
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    scope: str  # "public" | "read" | "write"
    roles: tuple[str, ...] | None
    body: str | None
    body_required: bool
    body_types: tuple[str, ...]
    query: tuple[Param, ...]
    responses: dict[int, tuple[str, dict[str, Any]]]
    description: str
    view: Callable[[Call], Response] = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def rule(self) -> str:
        """The Flask rule: ``{lot}`` may hold '/' (GS1 lot codes can), ``{x}`` is one path segment."""
        return re.sub(r"\{(\w+)\}", lambda m: f"<path:{m[1]}>" if m[1] == "lot" else f"<{m[1]}>", self.path)


OPERATIONS: list[Operation] = []


def json_content(schema_name: str | dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{schema_name}"} if isinstance(schema_name, str) else schema_name
    return {media: {"schema": schema}}


def operation(
    bp: Blueprint,
    method: str,
    path: str,
    operation_id: str,
    *,
    summary: str,
    tag: str,
    scope: str = "read",
    roles: Sequence[str] | None = None,
    body: str | None = None,
    body_required: bool = True,
    body_types: Sequence[str] = ("application/json",),
    query: Sequence[Param] = (),
    responses: Mapping[int, Any] | None = None,
    description: str = "",
) -> Callable[[Callable[[Call], Response]], Callable[[Call], Response]]:
    """Declare an endpoint; ``responses`` maps a status to a schema name (JSON) or to (description,
    content) for other media types."""
    declared: dict[int, tuple[str, dict[str, Any]]] = {}
    for status, spec in (responses or {}).items():
        if isinstance(spec, tuple):
            declared[status] = spec
        else:
            declared[status] = ("OK" if status == 200 else "Created", json_content(spec))

    def register(view: Callable[[Call], Response]) -> Callable[[Call], Response]:
        op = Operation(
            method,
            path,
            operation_id,
            summary,
            tag,
            scope,
            tuple(roles) if roles else None,
            body,
            body_required,
            tuple(body_types),
            tuple(query),
            declared,
            description or (view.__doc__ or ""),
        )
        op.view = view
        OPERATIONS.append(op)

        @wraps(view)
        def endpoint(**path_params: str) -> Response:
            return _dispatch(op, path_params)

        bp.add_url_rule(op.rule, endpoint=operation_id, view_func=endpoint, methods=[method])
        return view

    return register


# ------------------------------------------------------------------ one request


def _dispatch(op: Operation, path_params: dict[str, str]) -> Response:
    from app.api import idempotency

    ctx = get_ctx()
    if op.scope == "public":
        return op.view(Call(ctx, None, "public", 0, None, {}, path_params))  # type: ignore[arg-type]
    token = tokens.token_for(ctx, bearer_token())
    org, scope, token_id = token.organisation, token.scope, token.id
    if ctx.session.dirty:
        ctx.session.commit()  # last_used_at, kept whatever the request's outcome
    if op.scope == "write" and scope != "write":
        raise Forbidden(
            f"{op.operation_id} writes, but this API token has the read scope; use a write token",
            field="Authorization",
            code="insufficient_scope",
        )
    if op.roles and not set(org.roles) & set(op.roles):
        raise Forbidden(
            f"{org.name} cannot {op.summary[0].lower() + op.summary[1:]}: it needs one of the roles "
            f"{', '.join(op.roles)}",
            code="wrong_role",
        )
    for name, value in path_params.items():
        check_path(name, value)
    call = Call(ctx, org, scope, token_id, None, parse_query(op), path_params)
    if op.body is not None:
        call.body = parse_body(op)
    if op.method == "POST":
        return idempotency.run(call, lambda: op.view(call))
    return op.view(call)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "").strip()
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise tokens.InvalidToken("send the API token as 'Authorization: Bearer llt_...'", field="Authorization")
    return value.strip()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidInput("the request body is empty: send a JSON object", field="body", code="missing_body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8 text", field="body", code="malformed_json") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="body",
            code="malformed_json",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}", field="body", code="malformed_json") from None


def parse_body(op: Operation) -> Any:
    if not op.body_required and not request.get_data(cache=True).strip():
        return {}
    data = read_json()
    check(op.body or "", data, root="")
    return data


def field_path(parts: Sequence[Any], root: str = "") -> str:
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def check(schema_name: str, value: Any, root: str = "") -> None:
    """Validate ``value`` against a component schema; InvalidInput naming the first bad field."""
    error = jsonschema.exceptions.best_match(validator(schema_name).iter_errors(value))  # the shallowest, most telling
    if error is None:
        return
    parts = list(error.absolute_path)
    if error.validator == "required":
        missing = re.search(r"'([^']+)'", error.message)
        name = missing[1] if missing else "?"
        where = field_path([*parts, name], root) or name
        raise InvalidInput(f"{where}: is required", field=where, code="missing_field")
    if error.validator == "additionalProperties":
        where = field_path(parts, root) or "body"
        raise InvalidInput(f"{where}: {error.message}", field=where, code="unknown_field")
    where = field_path(parts, root) or "body"
    last = next((p for p in reversed(parts) if isinstance(p, str)), "")
    shown = json.dumps(error.instance)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise InvalidInput(f"{where}: {shown} {_rule(error)}", field=where, code=_FIELD_CODES.get(last, "invalid_field"))


def _rule(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    match error.validator:
        case "type":
            kinds = schema.get("type")
            return f"must be of type {' or '.join(kinds) if isinstance(kinds, list) else kinds}"
        case "enum":
            return f"must be one of {', '.join(map(str, schema.get('enum', [])))}"
        case "maxLength":
            return f"must be at most {schema.get('maxLength')} characters"
        case "minLength":
            return f"must be at least {schema.get('minLength')} character(s)"
        case "pattern":
            return f"must match {schema.get('pattern')}"
        case "minItems":
            return f"must have at least {schema.get('minItems')} item(s)"
        case "maxItems":
            return f"must have at most {schema.get('maxItems')} item(s)"
        case "minimum" | "maximum":
            return error.message.split(" ", 1)[1] if " " in error.message else error.message
    return error.message.split(" ", 1)[1] if " " in error.message else error.message


@cache
def _registry() -> Registry:
    document = {"components": {"schemas": schemas.COMPONENTS}}
    return Registry().with_resource("urn:lotline:api", Resource(contents=document, specification=DRAFT202012))


@cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:lotline:api#/components/schemas/{schema_name}"}, registry=_registry()
    )


def check_path(name: str, value: str) -> None:
    """A path parameter against its documented pattern (GTIN digits, GS1 lot characters, token id)."""
    pattern = schemas.PATH_PARAMS[name]["pattern"]
    if not re.fullmatch(pattern, value):
        code = {"gtin": "invalid_gtin", "lot": "invalid_lot_code"}.get(name, "invalid_field")
        rule = schemas.PATH_PARAMS[name]["description"]
        raise InvalidInput(
            f"{name}: {value[:40]!r} is not valid here ({rule}; pattern {pattern})", field=name, code=code
        )


def parse_query(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for param in op.query:
        raw = request.args.get(param.name)
        if raw is None:
            if param.required:
                raise InvalidInput(f"query parameter {param.name} is required", field=param.name, code="missing_field")
            if "default" in param.schema:
                out[param.name] = param.schema["default"]
            continue
        kind = param.schema.get("type")
        value: Any = raw
        if kind == "integer":
            if not re.fullmatch(r"-?\d{1,9}", raw.strip()):
                raise InvalidInput(
                    f"{param.name}: must be a whole number, got {raw!r}", field=param.name, code="invalid_field"
                )
            value = int(raw)
        elif kind == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise InvalidInput(
                    f"{param.name}: must be true or false, got {raw!r}", field=param.name, code="invalid_field"
                )
            value = raw.lower() in ("true", "1")
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(param.schema).iter_errors(value))
        if error is not None:
            raise InvalidInput(
                f"{param.name}: {json.dumps(value)} {_rule(error)}", field=param.name, code="invalid_field"
            )
        out[param.name] = value
    return out


# ------------------------------------------------------------------ pagination

LIMIT = Param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE},
    f"Items per page (1-{MAX_PAGE}).",
)
CURSOR = Param("cursor", {"type": "string", "maxLength": 100}, "Opaque cursor from the previous page's `next_cursor`.")


def page(
    call: Call, statement: Any, column: Any, serialise: Callable[[Any], dict[str, Any]], *, descending: bool = False
) -> Response:
    """One page of ``statement`` ordered by ``column`` (an integer key), as {items, next_cursor}."""
    limit = call.query.get("limit", DEFAULT_PAGE)
    after = decode_cursor(call.query.get("cursor"))
    if after is not None:
        statement = statement.where(column < after if descending else column > after)
    statement = statement.order_by(column.desc() if descending else column.asc()).limit(limit + 1)
    rows = list(call.ctx.session.scalars(statement))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].id) if more and rows else None
    return jsonify({"items": [serialise(r) for r in rows], "next_cursor": next_cursor})


# ------------------------------------------------------------------ the OpenAPI document


def _parameters(op: Operation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in re.findall(r"\{(\w+)\}", op.path):
        out.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": schemas.PATH_PARAMS[name],
                "description": schemas.PATH_PARAMS[name].get("description", ""),
            }
        )
    for param in op.query:
        out.append(
            {
                "name": param.name,
                "in": "query",
                "required": param.required,
                "schema": param.schema,
                "description": param.description,
            }
        )
    if op.method == "POST" and op.scope != "public":
        out.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x21-\\x7e]+$"},
                "description": "Send the same key with a retried request: the first answer is replayed and "
                "nothing is written twice. The same key with a different request is a 409.",
            }
        )
    return out


def _operation_document(op: Operation) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    description = " ".join(op.description.split())
    if op.scope == "write":
        description += " Needs a token with the write scope."
    if op.roles:
        description += f" Roles: {', '.join(op.roles)}."
    doc["description"] = description.strip()
    parameters = _parameters(op)
    if parameters:
        doc["parameters"] = parameters
    if op.body:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {media: {"schema": {"$ref": f"#/components/schemas/{op.body}"}} for media in op.body_types},
        }
    responses: dict[str, Any] = {}
    for status, (description_text, content) in sorted(op.responses.items()):
        responses[str(status)] = {"description": description_text, "content": content}
    if op.scope == "public":
        doc["security"] = []
    else:
        for status, text in ERROR_RESPONSES.items():
            responses.setdefault(str(status), {"description": text, "content": json_content("Error")})
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}
        }
    doc["responses"] = responses
    return doc


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared operation."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation_document(op)
    tags = list(dict.fromkeys(op.tag for op in OPERATIONS))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Lotline API",
            "version": API_VERSION,
            "summary": "Food-lot traceability anchored on an EVM chain: lots, critical tracking events, custody, "
            "inspections, recalls, trace, EPCIS 2.0 and FSMA 204 records.",
            "description": schemas.API_DESCRIPTION,
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": schemas.COMPONENTS,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "llt_...",
                    "description": "A Lotline API token (read or write scope).",
                }
            },
        },
    }
