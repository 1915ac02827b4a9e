"""API tokens from the dashboard: created (the secret shown once), used against the API, revoked."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask


def test_token_created_in_the_dashboard_works_on_the_api_until_revoked(app: Flask, login: Any, csrf: Any) -> None:
    client = login(app.test_client(), "distributor")
    page = client.post("/tokens", data={"csrf_token": csrf(client), "name": "warehouse", "scope": "read"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    match = re.search(r"(llt_[A-Za-z0-9_\-]+)", html)
    assert match and "shown only once" in html
    secret = match.group(1)
    listing = client.get("/tokens").get_data(as_text=True)
    assert "warehouse" in listing and secret not in listing  # never shown again

    api = app.test_client()
    me = api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json["organisation"]["name"] == "Test Carrier"
    token_id = re.search(r"/tokens/(\d+)/revoke", listing).group(1)
    revoked = client.post(f"/tokens/{token_id}/revoke", data={"csrf_token": csrf(client)})
    assert revoked.status_code == 302
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_token_of_another_organisation_cannot_be_revoked(app: Flask, login: Any, csrf: Any) -> None:
    owner = login(app.test_client(), "retailer")
    owner.post("/tokens", data={"csrf_token": csrf(owner), "name": "till", "scope": "write"})
    token_id = re.search(r"/tokens/(\d+)/revoke", owner.get("/tokens").get_data(as_text=True)).group(1)
    stranger = login(app.test_client(), "producer")
    answer = stranger.post(f"/tokens/{token_id}/revoke", data={"csrf_token": csrf(stranger)})
    assert answer.status_code == 404
    assert "till" in owner.get("/tokens").get_data(as_text=True)
    assert "revoked" not in owner.get("/tokens").get_data(as_text=True).split("till", 1)[1].split("</tr>", 1)[0]


def test_token_form_rejects_a_bad_scope_naming_the_field(app: Flask, login: Any, csrf: Any) -> None:
    client = login(app.test_client(), "inspector")
    answer = client.post("/tokens", data={"csrf_token": csrf(client), "name": "x", "scope": "admin"})
    assert answer.status_code == 400 and "scope" in answer.get_data(as_text=True)
