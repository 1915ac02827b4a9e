"""Webhook endpoints through the API (issue 12): registered with their secret in the answer only, listed
without it, deleted; private addresses refused naming the field; another organisation can neither see nor
delete them. The API installation does not allow private webhook addresses (LOTLINE_WEBHOOK_ALLOW_PRIVATE)."""

from __future__ import annotations

from sqlalchemy import func, select

from supply_chain.store.models import WebhookEndpoint


def _count(api_runtime) -> int:  # noqa: ANN001
    with api_runtime.ctx() as ctx:
        return ctx.session.scalar(select(func.count(WebhookEndpoint.id))) or 0


def test_a_webhook_is_registered_listed_without_its_secret_and_deleted(as_role, api_runtime) -> None:
    api = as_role("retailer")
    created = api("POST", "/webhooks", json={"url": "https://erp.shop.example/lotline"})
    assert created.status_code == 201
    body = created.get_json()
    assert body["secret"].startswith("whsec_") and body["url"] == "https://erp.shop.example/lotline"
    assert body["active"] is True
    with api_runtime.ctx() as ctx:
        stored = ctx.session.get(WebhookEndpoint, body["id"])
        assert stored is not None and body["secret"] not in stored.sealed_secret  # sealed under the KEK

    listed = api("GET", "/webhooks", scope="read").get_json()["items"]
    assert [w for w in listed if w["id"] == body["id"]] == [
        {"id": body["id"], "url": body["url"], "active": True, "created_at": body["created_at"]}
    ]
    assert api("DELETE", f"/webhooks/{body['id']}", scope="read").status_code == 403  # a read token
    deleted = api("DELETE", f"/webhooks/{body['id']}")
    assert deleted.status_code == 200 and deleted.get_json()["id"] == body["id"]
    assert body["id"] not in [w["id"] for w in api("GET", "/webhooks").get_json()["items"]]
    assert api("DELETE", f"/webhooks/{body['id']}").get_json()["error"] == "unknown_webhook"


def test_webhooks_to_private_addresses_or_other_schemes_are_refused_naming_the_url(as_role, api_runtime) -> None:
    api = as_role("distributor")
    before = _count(api_runtime)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hook",
        "file:///etc/passwd",
        "https://",
    ):
        answer = api("POST", "/webhooks", json={"url": url})
        assert answer.status_code == 400, url
        assert answer.get_json()["field"] == "url", url
    assert api("POST", "/webhooks", json={"url": "https://ok.example/x", "active": "yes"}).status_code == 400
    assert _count(api_runtime) == before


def test_another_organisation_can_neither_see_nor_delete_your_webhook(as_role) -> None:
    owner, stranger = as_role("processor"), as_role("producer")
    made = owner("POST", "/webhooks", json={"url": "https://mix.processor.example/hooks", "active": False}).get_json()
    assert made["active"] is False
    assert made["id"] not in [w["id"] for w in stranger("GET", "/webhooks").get_json()["items"]]
    refused = stranger("DELETE", f"/webhooks/{made['id']}")
    assert refused.status_code == 404 and refused.get_json()["error"] == "unknown_webhook"
    assert made["id"] in [w["id"] for w in owner("GET", "/webhooks").get_json()["items"]]
    assert stranger("DELETE", "/webhooks/not-a-number").status_code == 400
