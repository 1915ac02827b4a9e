"""The OpenAPI document matches the code: schemathesis fuzzes every operation for each role's token and finds
no server error and no response that breaks the document; a third party with only the document and a token
creates a lot, ships it and reads its trace."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from app.api.spec import OPERATIONS
from supply_chain.services import lots as lot_service
from supply_chain.services import tokens
from tests.api.conftest import ROLES, new_code

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
POSITIVE_EXAMPLES = 3
NEGATIVE_EXAMPLES = 2


def test_document_is_openapi_3_1_and_lists_every_route(client, app) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    declared = {(op.method.lower(), op.path) for op in OPERATIONS}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == declared
    flask_rules = {
        (m.lower(), re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule.removeprefix("/api/v1")))
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("api.") and not r.endpoint.startswith("api.fallback")
        for m in r.methods - {"HEAD", "OPTIONS"}
    }
    assert flask_rules == declared  # no route the document does not describe
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids)) >= 30
    jsonschema.Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})


def test_request_bodies_are_validated_with_the_documented_schema(client, network) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    body_schema = document["paths"]["/lots"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/NewLot"}
    kinds = document["components"]["schemas"]["NewLot"]["properties"]["kind"]["enum"]
    response = client.post(
        "/api/v1/lots",
        headers=network["producer"].headers(),
        json={"gtin": network["producer"].gtin, "lot_code": "X", "kind": "cooling", "quantity": 1, "payload": {}},
    )
    assert response.status_code == 400 and response.get_json()["field"] == "kind"
    assert ", ".join(kinds) in response.get_json()["message"]


class ThirdParty:
    """A client that knows nothing but the OpenAPI document and its token: calls go by operationId."""

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.token = token
        self.document = client.get("/api/v1/openapi.json").get_json()
        base = self.document["servers"][0]["url"]
        self.operations = {
            op["operationId"]: (method.upper(), base + path, op)
            for path, item in self.document["paths"].items()
            for method, op in item.items()
        }

    def call(self, operation_id: str, body: Any = None, **params: str) -> Any:
        method, template, op = self.operations[operation_id]
        path_names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        url = re.sub(r"\{(\w+)\}", lambda m: params[m[1]], template)
        query = {k: v for k, v in params.items() if k not in path_names}
        response = self.client.open(
            url, method=method, json=body, query_string=query, headers={"Authorization": f"Bearer {self.token}"}
        )
        documented = op["responses"][str(response.status_code)]
        schema = documented["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator(
            schema | {"components": self.document["components"]}
            if "$ref" not in schema
            else {"$ref": schema["$ref"], "components": self.document["components"]}
        )
        validator.validate(response.get_json())  # the answer is what the document promised
        return response.status_code, response.get_json()


def test_third_party_creates_ships_and_traces_a_lot_from_the_document_alone(client, api_runtime, network) -> None:
    with api_runtime.ctx() as ctx:
        _, token = tokens.create(ctx, network["producer"].org, "third party", "write")
    api = ThirdParty(client, token)
    status, me = api.call("getMe")
    assert status == 200 and "producer" in me["organisation"]["roles"]
    _, products = api.call("listProducts")
    _, mine = api.call("listLocations", mine="true")
    _, orgs = api.call("listOrganisations", limit="200")
    receiver = next(o for o in orgs["items"] if "processor" in o["roles"])
    _, everywhere = api.call("listLocations", limit="200")
    to_gln = next(loc["gln"] for loc in everywhere["items"] if loc["organisation"]["id"] == receiver["id"])
    code = new_code("3P")
    gtin = products["items"][0]["gtin"]
    status, lot = api.call(
        "createLot",
        {
            "gtin": gtin,
            "lot_code": code,
            "kind": "harvesting",
            "quantity": "750",
            "unit": "kg",
            "payload": {
                "location_gln": mine["items"][0]["gln"],
                "harvest_date": "2025-07-01",
                "commodity": "romaine lettuce",
            },
        },
    )
    assert status == 201 and lot["status"] == "active"
    status, shipped = api.call(
        "shipLot",
        {
            "payload": {
                "from_gln": mine["items"][0]["gln"],
                "to_gln": to_gln,
                "ship_date": "2025-07-02",
                "reference_document_type": "bill of lading",
                "reference_document_number": "BOL-3P",
            }
        },
        gtin=gtin,
        lot=code,
    )
    assert status == 201 and shipped["lot"]["pending_custodian"]["id"] == receiver["id"]
    status, traced = api.call("traceLot", gtin=gtin, lot=code, direction="forward")
    assert status == 200 and traced["lots"][0]["lot_code"] == code and traced["lots"][0]["status"] == "in_transit"
    status, events = api.call("listLotEvents", gtin=gtin, lot=code)
    assert [e["kind"] for e in events["items"]] == ["harvesting", "shipping"]
    status, checked = api.call("verifyLot", gtin=gtin, lot=code)
    assert checked["state"] == "verified"


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_schema_violation(app, api_runtime, network) -> None:
    """Every generated request is sent with each role's write token and a read token (one hypothesis run per
    operation keeps it fast), also with the path naming a lot that exists so the 2xx answers are checked for
    every role; negative data (breaking the schema) is sent as the producer."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= len(OPERATIONS) - 1  # all but the document itself
    with api_runtime.ctx() as ctx:
        callers = {role: tokens.create(ctx, network[role].org, "schemathesis", "write")[1] for role in ROLES}
        callers["producer (read token)"] = tokens.create(ctx, network["producer"].org, "schemathesis", "read")[1]
    producer = network["producer"]
    real = {"gtin": producer.gtin, "lot": new_code("FUZZ")}  # a lot that exists, so 2xx answers are checked too
    with api_runtime.ctx() as ctx:
        lot_service.create_lot(
            ctx,
            producer.org,
            real["gtin"],
            real["lot"],
            1,
            {"location_gln": producer.gln, "harvest_date": "2025-08-01", "commodity": "kale"},
            "10",
            "kg",
        )
    failures: list[str] = []
    calls: Counter = Counter()
    started = time.monotonic()
    with api_runtime.ctx() as ctx:
        spare = {"token_id": tokens.create(ctx, producer.org, "schemathesis spare", "read")[0].id}
    for operation in operations:
        # Revoking is fuzzed on a token of its own: a generated id could otherwise revoke a token that the tests
        # after this one sign in with (which ids get generated changes with every edit of the document).
        fixed = spare if "{token_id}" in operation.path else None
        _fuzz(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
            operation.label,
            callers,
            failures,
            calls,
            POSITIVE_EXAMPLES,
        )
        _fuzz(
            operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
            operation.label,
            {"producer": callers["producer"]},
            failures,
            calls,
            NEGATIVE_EXAMPLES,
        )
        if "{lot}" in operation.path:
            _fuzz(
                operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real),
                operation.label,
                callers,
                failures,
                calls,
                NEGATIVE_EXAMPLES,
            )
    assert not failures, "\n".join(failures[:20])
    assert {label for label, _ in calls} >= {op.label for op in operations}  # every operation was called
    assert {role for label, role in calls if label != "status"} == set(callers)
    missed = {(op.label, role) for op in operations for role in callers} - set(calls)
    assert not missed, sorted(missed)  # every operation was fuzzed with every role's token and the read token
    statuses = {status for label, status in calls if label == "status"}
    assert {200, 201, 400, 401, 403, 404} <= statuses, statuses
    assert time.monotonic() - started < 1.6 * len(operations)  # a budget per operation (60 s for the first 37)


def _fuzz(
    strategy: Any, label: str, callers: dict[str, str], failures: list[str], calls: Counter, examples: int
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        for role, token in callers.items():
            calls[(label, role)] += 1
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            calls[("status", response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS)
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collect them all, report at the end
                failures.append(
                    f"{role} {case.method} {case.formatted_path} -> {response.status_code}: {str(exc)[:600]}"
                )

    run()
