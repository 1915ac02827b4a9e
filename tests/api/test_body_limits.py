"""Bounded request bodies (issue 9, item 1): a JSON body nested 10^5 levels deep used to segfault the
process (py-evm raises Python's recursion limit to 100,000, and the C JSON parser then overflows the stack).

The deep-body sweep runs in a subprocess, so a crash fails this test instead of killing the test runner. It
sends every POST/PUT/PATCH/DELETE rule of the URL map (API and web) bodies nested 10^2, 10^4, 10^5 and 10^6
levels deep: 10^2 is handled as usual (a schema error, a CSRF refusal, ...), deeper ones are a 400
``body_too_deep`` naming the limit, and the app answers normally afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.body_limits import MAX_JSON_DEPTH, MAX_JSON_ITEMS, BodyTooComplex, check_json_body
from tests.api.conftest import harvest_body, new_code

ROOT = Path(__file__).resolve().parents[2]
DEPTHS = (10**2, 10**4, 10**5, 10**6)

PROBE = r"""
import json, sys
from pathlib import Path

from tests.api.conftest import build_network, make_runtime

runtime = make_runtime(Path(sys.argv[1]))
network = build_network(runtime)
from app import create_app

app = create_app({"RUNTIME": runtime, "TESTING": True})
client = app.test_client()
producer = network["producer"]
values = {"gtin": producer.gtin, "lot": "DEEP-1", "rest": "nowhere", "token_id": "999999"}
adapter = app.url_map.bind("localhost")
depths = [int(d) for d in sys.argv[2].split(",")]
key = 0
for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
    for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
        url = adapter.build(rule.endpoint, {a: values.get(a, "1") for a in rule.arguments}, method=method)
        scopes = ("write", "read") if rule.endpoint == "api.verifyLot" else ("write",)
        for scope in scopes:
            for depth in depths:
                key += 1
                headers = producer.headers(scope, **{"Idempotency-Key": f"deep-{key}", "Accept": "application/json"})
                body = "[" * depth + "]" * depth
                response = client.open(url, method=method, data=body, content_type="application/json", headers=headers)
                try:
                    answer = response.get_json(silent=True) or {}
                except Exception:
                    answer = {}
                print(json.dumps({"rule": rule.rule, "method": method, "scope": scope, "depth": depth,
                                  "status": response.status_code, "error": answer.get("error"),
                                  "message": answer.get("message"), "field": answer.get("field")}), flush=True)
health = client.get("/healthz")
me = client.get("/api/v1/me", headers=producer.headers("read"))
print(json.dumps({"after": True, "health": health.status_code, "me": me.status_code}), flush=True)
runtime.close()
"""


def test_deeply_nested_json_is_refused_on_every_endpoint_and_the_app_keeps_answering(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path), ",".join(map(str, DEPTHS))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert run.returncode == 0, (
        f"the probe died (exit {run.returncode}) after {len(lines)} answers; last: {lines[-1:]}\n{run.stderr[-2000:]}"
    )
    answers = [line for line in lines if "rule" in line]
    rules = {a["rule"] for a in answers}
    assert "/api/v1/lots/<gtin>/<path:lot>/verify" in rules and "/api/v1/epcis/capture" in rules
    assert any(not r.startswith("/api/") for r in rules), "web form endpoints are swept too"
    for answer in answers:
        if answer["depth"] <= MAX_JSON_DEPTH:
            assert answer["status"] < 500 and answer["error"] != "body_too_deep", answer
        else:
            assert answer["status"] == 400 and answer["error"] == "body_too_deep", answer
            assert f"at most {MAX_JSON_DEPTH} levels" in answer["message"], answer
            if answer["rule"].startswith("/api/"):
                assert answer["field"] == "body", answer
    assert lines[-1] == {"after": True, "health": 200, "me": 200}


# ------------------------------------------------------------------ the scanner itself


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 1),  # brackets inside a string do not nest
        (b'{"a": "\\"[[[[\\\\", "b": [[]]}', 3),  # escaped quotes and backslashes keep the string boundaries
        (b'"plain"', 0),
    ],
)
def test_nesting_inside_strings_does_not_count(body: bytes, depth: int) -> None:
    check_json_body(body, max_depth=depth)
    if depth:
        with pytest.raises(BodyTooComplex) as refused:
            check_json_body(body, max_depth=depth - 1)
        assert refused.value.code == "body_too_deep"


def test_unclosed_brackets_count_as_nesting() -> None:
    """The parser recurses into ``[[[[`` before it finds the body truncated, so the scanner counts it."""
    with pytest.raises(BodyTooComplex):
        check_json_body(b"[" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(BodyTooComplex):
        check_json_body(b'"unterminated ' + b"[" * (MAX_JSON_DEPTH + 1))


def test_many_items_are_refused_before_parsing(as_role, network) -> None:
    producer = network["producer"]
    body = json.dumps(harvest_body(producer, new_code("ITEMS")) | {"extra": [0] * (MAX_JSON_ITEMS + 1)})
    answer = as_role("producer")("POST", "/lots", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json["error"] == "body_too_many_items" and answer.json["field"] == "body"
    assert f"at most {MAX_JSON_ITEMS}" in answer.json["message"]


def test_a_body_over_the_size_limit_is_a_413(as_role, app) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    answer = as_role("producer")("POST", "/lots", data=b" " * (limit + 1), content_type="application/json")
    assert answer.status_code == 413 and answer.json["error"] == "too_large"


def test_python_recursion_limit_is_restored_after_py_evm_is_imported() -> None:
    """py-evm (and py_ecc) raise the limit to 100,000 on import; the chain adapter puts it back."""
    code = (
        "import sys; import supply_chain.chain.embedded, supply_chain.chain.connect; "
        "import eth, py_ecc, eth_tester; print(sys.getrecursionlimit())"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert int(run.stdout.strip()) <= 10_000
