"""The app as a whole: health check, error pages and JSON errors, the WSGI entry point."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from supply_chain.services.runtime import Runtime, Settings


def test_healthz_reports_chain_mode_block_and_ledger(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert body["chain"]["mode"] == "embedded"
    assert isinstance(body["chain"]["block_number"], int) and body["chain"]["block_number"] > 0
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", body["chain"]["ledger_address"])


def test_healthz_answers_while_another_process_holds_the_sqlite_write_lock(client: FlaskClient, app: Flask) -> None:
    """The health check only reads: it must not queue behind a writer (a verification pass, an import, a CLI
    command beside the server), or a busy server looks dead to its load balancer."""
    import sqlite3

    url = app.extensions["lotline"].settings.database_url
    assert url.startswith("sqlite:///")
    writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the write lock, held by "another process"
        response = client.get("/healthz")
        assert response.status_code == 200, response.json
        assert response.json["database"] == "ok"
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_healthz_answers_503_json_when_the_chain_is_unreachable(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env={"LOTLINE_CHAIN_URL": "http://127.0.0.1:9"}, home=tmp_path, secret_key="t", chain_timeout=1.0
    )
    runtime = Runtime(settings)
    try:
        app = create_app({"RUNTIME": runtime, "TESTING": True})
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.json["status"] == "unavailable"
        assert response.json["chain"]["mode"] == "rpc"
        assert response.json["error"] == "chain_unavailable" and response.json["message"]
    finally:
        runtime.close()


def test_pages_that_read_the_store_work_while_the_chain_is_unreachable(tmp_path: Path) -> None:
    settings = Settings.from_env(
        env={"LOTLINE_CHAIN_URL": "http://127.0.0.1:9"}, home=tmp_path, secret_key="t", chain_timeout=1.0
    )
    runtime = Runtime(settings)
    try:
        client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()
        assert client.get("/").status_code == 200
        unknown = client.get("/01/00700001000015/10/F1")  # the consumer page reads the store, not the chain
        assert unknown.status_code == 404 and "We have no record of this lot" in unknown.get_data(as_text=True)
    finally:
        runtime.close()


def test_domain_errors_answer_json_to_json_clients_and_html_to_browsers(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    as_json = client.get("/lots/999999", headers={"Accept": "application/json"})
    assert as_json.status_code == 404
    assert as_json.json["error"] == "unknown_lot" and "999999" in as_json.json["message"]
    as_html = client.get("/lots/999999", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert as_html.status_code == 404 and as_html.mimetype == "text/html"
    assert "Not found" in as_html.get_data(as_text=True)


def test_unknown_page_and_wrong_method_get_friendly_pages(client: FlaskClient) -> None:
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Not found" in missing.get_data(as_text=True)
    wrong = client.get("/logout")
    assert wrong.status_code == 405 and "Not allowed here" in wrong.get_data(as_text=True)


def test_bad_filter_value_is_a_400_naming_the_field(client: FlaskClient, login: Any) -> None:
    login(client, "producer")
    response = client.get("/dashboard?status=exploded")
    assert response.status_code == 400 and "Status: must be one of" in response.get_data(as_text=True)


def test_unexpected_error_rolls_back_and_answers_500(make_app: Any, world: Any) -> None:
    app: Flask = make_app(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page and "secret detail" not in page
    assert app.test_client().get("/boom", headers={"Accept": "application/json"}).json["error"] == "internal_error"


def test_wsgi_module_has_no_import_time_side_effects() -> None:
    module = importlib.import_module("app.wsgi")
    assert not any(isinstance(value, Flask) for value in vars(module).values())
    assert callable(module.serve) and callable(module.application)


def test_app_does_not_import_the_chain_layer() -> None:
    """Flask never touches web3: app/ imports services, domain and store models only."""
    root = Path(__file__).resolve().parents[2] / "app"
    forbidden = re.compile(r"^\s*(from|import)\s+(web3|eth_account|eth_tester|supply_chain\.chain)\b", re.M)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if forbidden.search(p.read_text())]
    assert offenders == []
