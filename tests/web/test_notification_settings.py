"""Notification settings (issue 12): an organisation sets where its notices are e-mailed, registers webhook
endpoints (the secret shown once; private addresses refused) and reads the delivery log with its failures.
The shared web installation has no SMTP server and does not allow private webhook addresses."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from supply_chain.services import delivery
from supply_chain.store.models import Organisation, WebhookEndpoint

PAGE = "/settings/notifications"


def _post(client: FlaskClient, csrf: Any, path: str, data: dict[str, Any]) -> Any:
    return client.post(path, data={"csrf_token": csrf(client)} | data)


def _org(world: Any, role: str) -> Organisation:
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, world.org_ids[role])
        assert org is not None
        ctx.session.expunge(org)
        return org


def _endpoints(world: Any, role: str) -> list[str]:
    with world.runtime.ctx() as ctx:
        return list(
            ctx.session.scalars(
                select(WebhookEndpoint.url).where(WebhookEndpoint.organisation_id == world.org_ids[role])
            )
        )


def test_the_notification_email_is_saved_and_a_bad_address_is_refused_naming_the_field(
    world: Any, app: Flask, signed_in: Any, csrf: Any
) -> None:
    shop = signed_in("retailer")
    page = shop.get(PAGE).get_data(as_text=True)
    assert "retailer@test.lotline" in page  # no address set: the organisation's users
    assert "LOTLINE_SMTP_HOST" in page  # this installation cannot send e-mail, and says so

    refused = _post(shop, csrf, f"{PAGE}/email", {"notification_email": "recalls@shop.example, not-an-address"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert 'id="f-notification_email-error">Notification e-mail address(es): ' in html
    assert "&#39;not-an-address&#39; is not an e-mail address" in html
    assert _org(world, "retailer").notification_email is None

    saved = _post(shop, csrf, f"{PAGE}/email", {"notification_email": "Recalls@Shop.example; qa@shop.example"})
    assert saved.status_code == 302
    assert _org(world, "retailer").notification_email == "recalls@shop.example, qa@shop.example"
    assert "recalls@shop.example, qa@shop.example" in shop.get(PAGE).get_data(as_text=True)
    _post(shop, csrf, f"{PAGE}/email", {"notification_email": ""})  # back to the users, for other tests
    assert _org(world, "retailer").notification_email is None


def test_a_webhook_is_added_with_its_secret_shown_once_and_private_addresses_are_refused(
    world: Any, app: Flask, signed_in: Any, csrf: Any
) -> None:
    carrier = signed_in("distributor")
    for url in ("http://127.0.0.1:9000/hook", "http://169.254.169.254/latest", "ftp://partner.example/x"):
        refused = _post(carrier, csrf, f"{PAGE}/webhooks", {"url": url})
        assert refused.status_code == 400 and 'id="f-url-error">Endpoint URL: ' in refused.get_data(as_text=True), url
    assert _endpoints(world, "distributor") == []

    added = _post(carrier, csrf, f"{PAGE}/webhooks", {"url": "https://hooks.carrier.example/lotline"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and "shown only now" in html
    secret = re.search(r"(whsec_[A-Za-z0-9_\-]+)", html).group(1)
    listing = carrier.get(PAGE).get_data(as_text=True)
    assert "https://hooks.carrier.example/lotline" in listing and secret not in listing
    assert _endpoints(world, "distributor") == ["https://hooks.carrier.example/lotline"]


def test_the_delivery_log_shows_each_try_and_the_failures(world: Any, app: Flask, signed_in: Any, csrf: Any) -> None:
    grocer = signed_in("processor")
    _post(grocer, csrf, f"{PAGE}/webhooks", {"url": "https://hooks.unresolvable.example/lotline"})
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, world.org_ids["processor"])
        assert org is not None
        rows = delivery.enqueue(
            ctx,
            org,
            topic="recall.issued",
            subject="Class I recall: Test lettuce lot F1",
            text="Remove lot F1 from sale.",
            data={"lot": "F1"},
            link="/admin",
        )
        ids = [row.id for row in rows]
    for delivery_id in ids:  # only this test's deliveries (the installation is shared)
        with world.runtime.ctx() as ctx:
            token = delivery.claim(ctx, delivery_id, delivery.utcnow())
        assert token is not None
        delivery.attempt(world.runtime, delivery_id, token)

    html = grocer.get(PAGE).get_data(as_text=True)
    assert "did not get through" in html
    assert "not configured" in html and "LOTLINE_SMTP_HOST is not set" in html  # the e-mail
    assert "Class I recall: Test lettuce lot F1" in html
    assert re.search(r"Try 1 at [A-Za-z0-9:, -]+UTC:\s+failed", html)  # the webhook's first try ...
    assert "cannot resolve hooks.unresolvable.example" in html and "next try" in html  # ... and its retry


def test_another_organisation_cannot_switch_off_test_or_delete_your_webhook(
    world: Any, app: Flask, signed_in: Any, csrf: Any
) -> None:
    owner = signed_in("inspector")
    _post(owner, csrf, f"{PAGE}/webhooks", {"url": "https://lab.example/hooks"})
    with world.runtime.ctx() as ctx:
        endpoint_id = ctx.session.scalar(
            select(WebhookEndpoint.id).where(WebhookEndpoint.organisation_id == world.org_ids["inspector"])
        )
    stranger = signed_in("producer")
    for action, data in (("active", {"active": "0"}), ("ping", {}), ("delete", {})):
        answer = _post(stranger, csrf, f"{PAGE}/webhooks/{endpoint_id}/{action}", data)
        assert answer.status_code == 404, action
    with world.runtime.ctx() as ctx:
        endpoint = ctx.session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.active

    assert _post(owner, csrf, f"{PAGE}/webhooks/{endpoint_id}/active", {"active": "0"}).status_code == 302
    assert "Switch on" in owner.get(PAGE).get_data(as_text=True)
    assert _post(owner, csrf, f"{PAGE}/webhooks/{endpoint_id}/delete", {}).status_code == 302
    assert _endpoints(world, "inspector") == []


def test_onboarding_sets_the_notification_email_and_refuses_a_bad_one_before_the_chain(
    world: Any, app: Flask, signed_in: Any, csrf: Any, counts: Any
) -> None:
    regulator = signed_in("regulator")
    form = {
        "name": "Notified Grocer",
        "roles": ["retailer"],
        "email": "boss@notified.example",
        "password": "a long password",
    }
    before = counts()
    refused = _post(regulator, csrf, "/admin/organisations/new", form | {"notification_email": "recalls@"})
    assert refused.status_code == 400 and 'id="f-notification_email-error"' in refused.get_data(as_text=True)
    assert counts() == before
    with world.runtime.ctx() as ctx:
        assert not ctx.session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.name == "Notified Grocer")
        )
    made = _post(regulator, csrf, "/admin/organisations/new", form | {"notification_email": "recalls@notified.example"})
    assert made.status_code == 302, made.get_data(as_text=True)[:500]
    with world.runtime.ctx() as ctx:
        org = ctx.session.scalars(select(Organisation).where(Organisation.name == "Notified Grocer")).one()
        assert org.notification_email == "recalls@notified.example"
