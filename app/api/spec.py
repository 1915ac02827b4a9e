"""The route table of ``/api/v1`` on spectree: every endpoint is declared once (``operation``) with its
pydantic models (``app/api/models.py``), scope and roles; spectree validates the query and body against
those models and generates the OpenAPI 3.1 document from them, so the document cannot drift from the code.

Why spectree (3.x): it decorates plain Flask views on our own blueprint, validates with pydantic v2 and
emits OpenAPI 3.1. flask-openapi3 wants its own ``OpenAPI`` app and ``APIBlueprint`` classes in place of
Flask's, and flask-smorest is built on marshmallow, so either would mean rebuilding the app factory or
keeping a second schema language. What spectree cannot say is added here, in one place: the lot and token
path patterns (checked before anything else is read), the ``Idempotency-Key`` header, bodies in a second
media type (EPCIS XML, read by ``read_body``), non-JSON answers (CSV, XLSX, EPCIS JSON-LD) and the shared error answers.

``operation`` keeps the API's own dispatch around spectree's validation: the bearer token names the
organisation, then the scope, the roles and the path parameters are checked, then spectree validates the
request (a refusal becomes the API's error envelope: ``400`` with the field's code, e.g. ``invalid_gtin``),
then the view runs, POSTs under their ``Idempotency-Key``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ValidationError
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.models import Server
from spectree.plugins.base import Context
from spectree.plugins.flask_plugin import FlaskPlugin

from app.api import models
from app.api.cursors import decode_cursor, encode_cursor
from app.body_limits import FILE_MIMETYPES, MAX_JSON_DEPTH, MAX_JSON_ITEMS
from app.web import get_ctx
from supply_chain.domain.errors import Forbidden, InvalidInput
from supply_chain.services import tokens
from supply_chain.services.epcis import xml as epcis_xml
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Organisation

API_VERSION = "1.0.0"
API_DESCRIPTION = """\
Every dashboard action is also an API call. Authenticate with `Authorization: Bearer llt_...` (tokens are
created per organisation, read or write scope); the organisation's role rules apply exactly as in the
dashboard. Errors are JSON: `{"error": code, "message": text, "field": name}`. Lists are paginated with
`limit` and `cursor` (pass the `next_cursor` of the previous page). POST requests accept an `Idempotency-Key`
header: a retried request with the same key and body returns the first answer without writing again.
Lots are addressed as `/lots/{gtin}/{lot}` (GTIN-8/12/13/14, lot code as on the label; a `/` in a lot code
may be sent as is or as `%2F`). See docs/api.md, docs/epcis.md and docs/fsma204.md."""

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
BODY_ERROR_RESPONSES = {
    415: "The body's media type is not one this operation takes (a file or XML where it reads JSON)",
}
"""Answers of operations that read a request body, besides ``ERROR_RESPONSES``."""
# a refused field's code when it is a known identifier; every other refusal is invalid_field
_FIELD_CODES = {
    "gtin": "invalid_gtin",
    "gln": "invalid_gln",
    "lot_code": "invalid_lot_code",
    "quantity": "invalid_quantity",
    "scope": "invalid_scope",
}
_PATH_CODES = {"gtin": "invalid_gtin", "lot": "invalid_lot_code"}

XML_BODY_SCHEMA = {
    "type": "string",
    "description": "An EPCIS 2.0 or 1.2 XML document (EPCISDocument), validated against the standard's XSD "
    "of its version and captured as its JSON-LD equivalent (docs/epcis.md, XML binding).",
}

Content = Mapping[str, type[BaseModel] | Mapping[str, Any]]
"""Media type -> model (referenced as a component) or a literal JSON schema, for answers that are not one
JSON model (CSV, XLSX, EPCIS JSON-LD)."""


@dataclass
class Call:
    """What a view receives: the unit of work, who is calling, and the validated request. ``body`` is the
    JSON as sent, checked against the operation's model: the services normalise and hash payloads
    themselves, so they get the client's values, not a model's re-serialisation of them."""

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
    body: type[BaseModel] | None
    body_types: tuple[str, ...]
    query: type[models.Query] | None
    responses: dict[int, type[BaseModel] | tuple[str, Content]]
    description: str
    view: Callable[[Call], Response] = field(repr=False, default=None)  # type: ignore[assignment]
    upload: Content | None = None  # a file body (media type -> schema), read by the view itself

    @property
    def rule(self) -> str:
        """The Flask rule: ``{lot}`` may hold '/' (GS1 lot codes can), ``{x}`` is one path segment."""
        return re.sub(r"\{(\w+)\}", lambda m: f"<path:{m[1]}>" if m[1] in _SLASHED else f"<{m[1]}>", self.path)

    @property
    def body_required(self) -> bool:
        return self.body is not None and needs_body(self.body)


def needs_body(model: type[BaseModel]) -> bool:
    """A body whose model needs no field may be left out (receiving takes its KDEs from the shipment)."""
    return any(f.is_required() for f in model.model_fields.values())


_SLASHED = frozenset({"lot", "epc", "biz_step", "biz_location", "read_point", "disposition", "event_id"})
"""Path parameters that may hold '/' (lot codes, URIs), sent as is or as %2F."""

OPERATIONS: list[Operation] = []
_BY_ID: dict[str, Operation] = {}  # operation id (the endpoint's name) -> operation
_BY_URL: dict[tuple[str, str], Operation] = {}  # (method, the path as Flask serves it) -> operation


# ------------------------------------------------------------------ spectree, reading requests our way


class _Plugin(FlaskPlugin):
    """spectree's Flask plugin, reading the body with the API's own rules (any JSON media type, an empty
    or malformed body named as such, NaN refused) and the query one value per name. Answers are not
    re-validated at runtime: the schemathesis test holds them to the document, and a 500 after a committed
    write would tell the client the opposite of what happened."""

    def request_validation(self, request: Any, query: Any, json: Any, form: Any, headers: Any, cookies: Any) -> None:
        checked_query = self.model_adapter.validate_obj(query, request.args.to_dict()) if query else None
        checked_json = None
        if json:
            g.api_json = read_body(json, _BY_ID.get((request.endpoint or "").rpartition(".")[2]))
            checked_json = self.model_adapter.validate_obj(json, g.api_json)
        request.context = Context(checked_query, checked_json, None, None, None)

    def validate_response(
        self, resp: Any, resp_model: Any, skip_validation: bool, force_resp_serialize: bool
    ) -> tuple[Any, None]:
        return resp, None


def _refuse(req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any) -> None:
    """spectree's ``before`` hook: a request its models refuse is the API's 400, naming the field."""
    if isinstance(error, ValidationError):
        raise invalid_input(error)


API = SpecTree(
    backend=_Plugin,
    mode="strict",  # only the operations declared here, not the rest of the app
    annotations=False,
    before=_refuse,
    validation_error_status=400,
    validation_error_model=models.Error,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    title="Lotline API",
    version=API_VERSION,
    description=API_DESCRIPTION,
    servers=[Server(url="/api/v1")],
    security_schemes=[
        SecurityScheme(
            name="bearerAuth",
            data=SecuritySchemeData(
                type="http",
                scheme="bearer",
                bearer_format="llt_...",
                description="A Lotline API token (read or write scope).",
            ),
        )
    ],
    security={"bearerAuth": []},
)


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
    body: type[BaseModel] | None = None,
    body_types: Sequence[str] = ("application/json",),
    query: type[models.Query] | None = None,
    responses: Mapping[int, type[BaseModel] | tuple[str, Content]] | None = None,
    description: str = "",
    upload: Content | None = None,
) -> Callable[[Callable[[Call], Response]], Callable[[Call], Response]]:
    """Declare an endpoint; ``responses`` maps a status to a model (a JSON answer) or to (description,
    content) for other media types."""

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
            tuple(body_types),
            query,
            dict(responses or {}),
            description or (view.__doc__ or ""),
            view,
            upload,
        )
        OPERATIONS.append(op)
        _BY_ID[operation_id] = op
        _BY_URL[(method.lower(), (bp.url_prefix or "") + path)] = op
        answers = {f"HTTP_{status}": model for status, model in op.responses.items() if not isinstance(model, tuple)}
        if op.scope != "public":
            errors = ERROR_RESPONSES | (BODY_ERROR_RESPONSES if op.body is not None or op.upload else {})
            answers |= {f"HTTP_{status}": (models.Error, text) for status, text in errors.items()}

        def run(call: Call) -> Response:
            """The operation once spectree has validated the request."""
            from app.api import idempotency

            if op.query is not None:
                call.query = request.context.query.model_dump(mode="json", by_alias=True)
            if op.body is not None:
                call.body = g.api_json
            if op.method == "POST":
                return idempotency.run(call, lambda: op.view(call))
            return op.view(call)

        validated = API.validate(
            query=op.query,
            json=op.body,
            resp=Answers(**answers) if answers else None,
            tags=[op.tag],
            operation_id=op.operation_id,
            security={} if op.scope == "public" else None,
        )(run)

        def endpoint(**path_params: str) -> Response:
            return validated(_caller(op, path_params))

        endpoint.__name__ = endpoint.__qualname__ = operation_id
        endpoint.__doc__ = op.description
        endpoint.__wrapped__ = validated  # type: ignore[attr-defined]  - how spectree finds the models
        bp.add_url_rule(op.rule, endpoint=operation_id, view_func=endpoint, methods=[method])
        return view

    return register


# ------------------------------------------------------------------ one request


def _caller(op: Operation, path_params: dict[str, str]) -> Call:
    """Who calls, checked against the operation's scope and roles, and the path parameters checked."""
    ctx = get_ctx()
    if op.scope == "public":
        return Call(ctx, None, "public", 0, None, {}, path_params)  # type: ignore[arg-type]
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
    check_path(path_params)
    return Call(ctx, org, scope, token_id, None, {}, path_params)


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


class UnsupportedMediaType(InvalidInput):
    """Raised when a body comes in a media type the operation does not take (XML or a file where only
    JSON is read)."""

    status = 415
    code = "unsupported_media_type"


def read_json() -> Any:
    if request.mimetype in FILE_MIMETYPES:  # not scanned as JSON (body_limits): never parsed as JSON either
        raise UnsupportedMediaType(f"this operation takes JSON, not {request.mimetype}", field="Content-Type")
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


def read_body(model: type[BaseModel], op: Operation | None = None) -> Any:
    """The request's JSON; an empty body is an empty object where the model needs no field. An XML body
    (``application/xml``, ``text/xml``) is read where the operation lists an XML media type (EPCIS capture:
    parsed with the limits of ``epcis.xml``, validated against the standard's XSD, converted to JSON-LD)."""
    if request.mimetype in epcis_xml.XML_MEDIA_TYPES:
        if op is None or request.mimetype not in op.body_types:
            raise UnsupportedMediaType(
                f"this operation takes {', '.join(op.body_types) if op else 'application/json'}, not "
                f"{request.mimetype}",
                field="Content-Type",
            )
        return epcis_xml.document_from_xml(
            request.get_data(cache=True), max_elements=MAX_JSON_ITEMS, max_depth=MAX_JSON_DEPTH
        )
    if not needs_body(model) and not request.get_data(cache=True).strip():
        return {}
    return read_json()


def field_path(parts: Sequence[Any], root: str = "") -> str:
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def invalid_input(error: ValidationError) -> InvalidInput:
    """The first refusal of a model (the shallowest, as the old JSON Schema check chose) as the API's error:
    the field as a path (``outputs[0].inputs[1].quantity``), its code and the rule."""
    problems = error.errors(include_url=False)

    def depth(problem: Any) -> int:  # a missing or unknown field is a fault of the object holding it
        return len(problem["loc"]) - (problem["type"] in ("missing", "extra_forbidden"))

    first = min(problems, key=depth)
    parts = list(first["loc"])
    if first["type"] == "missing":
        where = field_path(parts)
        return InvalidInput(f"{where}: is required", field=where, code="missing_field")
    if first["type"] == "extra_forbidden":
        where = field_path(parts[:-1]) or "body"
        names = [
            repr(p["loc"][-1]) for p in problems if p["type"] == "extra_forbidden" and list(p["loc"][:-1]) == parts[:-1]
        ]
        were = "was" if len(names) == 1 else "were"
        return InvalidInput(
            f"{where}: Additional properties are not allowed ({', '.join(names)} {were} unexpected)",
            field=where,
            code="unknown_field",
        )
    where = field_path(parts) or "body"
    last = next((p for p in reversed(parts) if isinstance(p, str)), "")
    return refusal(where, first["input"], _rule(first), _FIELD_CODES.get(last, "invalid_field"))


def refusal(where: str, value: Any, rule: str, code: str = "invalid_field") -> InvalidInput:
    """A refused value as the API words it: the field, the value as sent (JSON, cut at 60 characters), the rule."""
    shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return InvalidInput(f"{where}: {shown} {rule}", field=where, code=code)


_TYPES = {
    "string_type": "string",
    "int_type": "integer",
    "int_from_float": "integer",
    "float_type": "number",
    "bool_type": "boolean",
    "dict_type": "object",
    "model_type": "object",
    "model_attributes_type": "object",
    "list_type": "array",
}


def _rule(problem: Any) -> str:
    ctx = problem.get("ctx") or {}
    kind = problem["type"]
    if kind in _TYPES:
        return f"must be of type {_TYPES[kind]}"
    match kind:
        case "enum" | "literal_error":
            return "must be one of " + ", ".join(re.findall(r"'([^']*)'", ctx.get("expected", "")))
        case "string_too_long":
            return f"must be at most {ctx['max_length']} characters"
        case "string_too_short":
            return f"must be at least {ctx['min_length']} character(s)"
        case "string_pattern_mismatch":
            return f"must match {ctx['pattern']}"
        case "too_short":
            return f"must have at least {ctx['min_length']} item(s)"
        case "too_long":
            return f"must have at most {ctx['max_length']} item(s)"
        case "greater_than_equal":
            return f"is less than the minimum of {ctx['ge']}"
        case "less_than_equal":
            return f"is greater than the maximum of {ctx['le']}"
        case "value_error":
            return str(ctx.get("error", problem["msg"]))
    return problem["msg"][:1].lower() + problem["msg"][1:]


def check_path(path_params: Mapping[str, str]) -> None:
    """The path parameters against their documented patterns (GTIN digits, GS1 lot characters, token id)."""
    try:
        models.PathParameters.model_validate(path_params)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        schema = _path_schemas()[name]
        raise InvalidInput(
            f"{name}: {path_params[name][:40]!r} is not valid here ({schema['description']}; pattern "
            f"{schema['pattern']})",
            field=name,
            code=_PATH_CODES.get(name, "invalid_field"),
        ) from None


@cache
def _path_schemas() -> dict[str, dict[str, Any]]:
    return models.PathParameters.model_json_schema()["properties"]


# ------------------------------------------------------------------ pagination


def page(
    call: Call, statement: Any, column: Any, serialise: Callable[[Any], dict[str, Any]], *, descending: bool = False
) -> Response:
    """One page of ``statement`` ordered by ``column`` (an integer key), as {items, next_cursor}."""
    limit = call.query.get("limit", models.DEFAULT_PAGE)
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


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared operation: spectree's, completed with what it cannot say
    (see the module's docstring). Needs an application context (spectree reads the app's routes)."""
    document = copy.deepcopy(API.spec)
    schemas = document["components"]["schemas"]
    for model in models.published_models():
        _add_component(schemas, model)
    paths: dict[str, dict[str, Any]] = {}
    for url, item in document["paths"].items():
        for method, generated in item.items():
            op = _BY_URL[(method, url)]
            paths.setdefault(op.path, {})[method] = _complete(op, generated, schemas)  # relative to servers
    document["paths"] = paths
    document["info"]["summary"] = (
        "Food-lot traceability anchored on an EVM chain: lots, critical tracking events, custody, inspections, "
        "recalls, trace, EPCIS 2.0 and FSMA 204 records."
    )
    document["tags"] = [{"name": t} for t in dict.fromkeys(op.tag for op in OPERATIONS)]
    return document


def _add_component(schemas: dict[str, Any], model: type[BaseModel]) -> str:
    """``model``'s JSON schema (and those it refers to) as components; its name."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    schemas.setdefault(model.__name__, schema)
    return model.__name__


def _complete(op: Operation, generated: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    doc = dict(generated)
    description = " ".join(op.description.split())
    if op.scope == "write":
        description += " Needs a token with the write scope."
    if op.roles:
        description += f" Roles: {', '.join(op.roles)}."
    doc["summary"] = op.summary
    doc["description"] = description.strip()
    parameters = []
    for parameter in generated.get("parameters", []):
        if parameter["in"] == "path":
            schema = _path_schemas()[parameter["name"]]
            parameter = {**parameter, "schema": dict(schema), "description": schema["description"]}
        parameters.append(parameter)
    if op.method == "POST" and op.scope != "public":
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[\\x21-\\x7e]+$"},
                "description": "Send the same key with a retried request: the first answer is replayed and "
                "nothing is written twice. The same key with a different request is a 409.",
            }
        )
    if parameters:
        doc["parameters"] = parameters
    else:
        doc.pop("parameters", None)
    if op.body is not None:
        schema = generated["requestBody"]["content"]["application/json"]["schema"]
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {
                m: {"schema": XML_BODY_SCHEMA if m in epcis_xml.XML_MEDIA_TYPES else schema} for m in op.body_types
            },
        }
    if op.upload is not None:
        doc["requestBody"] = {"required": True, "content": {m: {"schema": dict(s)} for m, s in op.upload.items()}}
    responses = dict(generated.get("responses", {}))
    for status, spec in op.responses.items():
        if isinstance(spec, tuple):
            text, content = spec
            responses[str(status)] = {
                "description": text,
                "content": {
                    media: {"schema": {"$ref": f"#/components/schemas/{_add_component(schemas, s)}"}}
                    if isinstance(s, type)
                    else {"schema": dict(s)}
                    for media, s in content.items()
                },
            }
    if op.scope != "public":
        responses["401"] = {
            **responses["401"],
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
        }
    doc["responses"] = dict(sorted(responses.items()))
    return doc
