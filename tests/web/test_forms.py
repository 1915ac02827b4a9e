"""Writing through the dashboard: forms that work, and bad input refused with a message naming the field
while nothing is written (no row, no transaction)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from supply_chain.store.models import Lot, Organisation

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _lot_form(world: Any, code: str, **overrides: str) -> dict[str, str]:
    return {
        "kind": "harvesting",
        "gtin": world.gtins["lettuce"],
        "lot_code": code,
        "kde.location_gln": world.sites["producer"],
        "kde.harvest_date": "2026-11-10",
        "kde.commodity": "lettuce",
        "kde.field_name": "Block 3",
        "kde.quantity": "40",
        "kde.unit": "kg",
    } | overrides


def _post(client: FlaskClient, csrf: Any, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(path, data=data | {"csrf_token": csrf(client)}, **kwargs)


def _lot_pk(world: Any, code: str) -> int:
    with world.runtime.ctx() as ctx:
        return ctx.session.scalars(select(Lot.id).where(Lot.lot_code == code)).one()


def _marked(page: str, input_id: str) -> bool:
    """The input is marked invalid and tied to its error text (issue 13)."""
    return bool(re.search(rf'id="{input_id}"[^>]*aria-invalid="true"[^>]*aria-describedby="{input_id}-error', page))


# ------------------------------------------------------------------ refused input


BAD_LOTS = [
    ({"gtin": "00700001000012"}, "gtin", "check digit"),
    ({"lot_code": "LOT#1"}, "lot_code", "not allowed"),
    ({"lot_code": "L" * 21}, "lot_code", "at most 20"),
    ({"kde.quantity": "-5"}, "quantity", "greater than 0"),
    ({"kde.quantity": "0"}, "quantity", "greater than 0"),
    ({"kde.quantity": "lots"}, "quantity", "not a decimal number"),
    ({"kde.harvest_date": "2026-02-30"}, "payload.harvest_date", "not a valid date"),
    ({"kde.location_gln": "0700001000010"}, "payload.location_gln", "check digit"),
    ({"gtin": "OTHER"}, "gtin", "belongs to Other Farm"),
    ({"kde.commodity": "abc\u202egnp.exe"}, "payload.commodity", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ({"kde.variety": "Little\x00Gem"}, "payload.variety", "U+0000 NUL"),
]


INPUTS = {
    "gtin": ("f-gtin", "Product"),
    "lot_code": ("f-lot_code", "Lot code"),
    "quantity": ("kde-quantity", "Quantity"),
    "payload.harvest_date": ("kde-harvest_date", "Harvest date"),
    "payload.location_gln": ("kde-location_gln", "Location"),
    "payload.commodity": ("kde-commodity", "Commodity"),
    "payload.variety": ("kde-variety", "Variety"),
}


@pytest.mark.parametrize(("changes", "field", "rule"), BAD_LOTS, ids=[f for _, f, _ in BAD_LOTS])
def test_bad_lot_input_is_refused_naming_the_field_and_nothing_is_written(
    world: Any, signed_in: Any, csrf: Any, counts: Any, changes: dict[str, str], field: str, rule: str
) -> None:
    client = signed_in("producer")
    if changes.get("gtin") == "OTHER":
        changes = {"gtin": world.gtins["kale"]}
    before = counts()
    response = _post(client, csrf, "/lots/new", _lot_form(world, "BAD-1", **changes))
    page = response.get_data(as_text=True)
    assert response.status_code in (400, 403), page[:300]
    # Named by the input's label, next to it, and the input marked for screen readers (issue 13).
    input_id, label = INPUTS[field]
    assert f'id="{input_id}-error">{label}: ' in page and rule in page
    assert re.search(rf'id="{input_id}"[^>]*aria-invalid="true"', page)
    assert 'class="field has-error"' in page
    assert counts() == before


def test_bad_input_as_json_names_the_field(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    client = signed_in("producer")
    before = counts()
    response = _post(
        client,
        csrf,
        "/lots/new",
        _lot_form(world, "BAD-2", **{"kde.quantity": "-1"}),
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400
    error = {"error": "invalid_quantity", "message": "quantity: must be greater than 0", "field": "quantity"}
    assert response.json == error | {"errors": [error]}
    assert counts() == before


def test_refused_form_keeps_what_was_typed(world: Any, signed_in: Any, csrf: Any) -> None:
    client = signed_in("producer")
    page = _post(client, csrf, "/lots/new", _lot_form(world, "KEEP-ME", **{"kde.quantity": "-1"})).get_data(
        as_text=True
    )
    assert 'value="KEEP-ME"' in page and 'value="Block 3"' in page


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"gtin": "4006381333932", "name": "Bad"}, "gtin"),  # wrong check digit
        ({"gtin": "00614141000012", "name": "Not ours"}, "gtin"),  # another company prefix
        ({"gtin": "00700001000022", "name": ""}, "name"),
    ],
)
def test_bad_product_is_refused(signed_in: Any, csrf: Any, form: dict[str, str], field: str) -> None:
    response = _post(signed_in("producer"), csrf, "/products", form)
    assert response.status_code in (400, 403)
    assert _marked(response.get_data(as_text=True), f"f-{field}")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"gln": "0700001000010", "name": "Bad check digit"}, "gln"),
        ({"gln": "0700001000022", "name": "Site", "latitude": "95"}, "latitude"),
        ({"gln": "0700001000022", "name": "Site", "longitude": "east"}, "longitude"),
    ],
)
def test_bad_site_is_refused(signed_in: Any, csrf: Any, form: dict[str, str], field: str) -> None:
    response = _post(signed_in("producer"), csrf, "/sites", form)
    assert response.status_code == 400
    assert _marked(response.get_data(as_text=True), f"f-{field}")


def test_transform_refuses_negative_and_excess_quantities(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    client = signed_in("processor")
    before = counts()
    base = {
        "gtin": world.gtins["mix"],
        "lot_code": "MIX-BAD",
        "quantity": "5",
        "location_gln": world.sites["processor"],
        "transformation_date": "2026-11-10",
    }
    negative = _post(client, csrf, "/transform", base | {f"input.{world.lot('F3')}": "-2"})
    assert negative.status_code == 400 and "must be greater than 0" in negative.get_data(as_text=True)
    excess = _post(client, csrf, "/transform", base | {f"input.{world.lot('F3')}": "5000"})
    assert excess.status_code == 400 and "only 0 kg left" in excess.get_data(as_text=True)
    nothing = _post(client, csrf, "/transform", base)
    assert nothing.status_code == 400 and 'id="inputs-legend-error"' in nothing.get_data(as_text=True)
    not_held = _post(client, csrf, "/transform", base | {f"input.{world.lot('F2')}": "1"})
    assert not_held.status_code == 403
    assert counts() == before


def test_certificate_of_the_wrong_type_is_refused(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    from io import BytesIO

    client = signed_in("inspector")
    before = counts()
    response = client.post(
        f"/inspections/lots/{world.lot('F3')}/new",
        data={
            "csrf_token": csrf(client),
            "kde.outcome": "pass",
            "kde.inspection_date": "2026-11-10",
            "kde.inspector_name": "I",
            "certificate": (BytesIO(b"MZ\x90\x00 not a pdf"), "cert.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert _marked(response.get_data(as_text=True), "f-cert")
    assert counts() == before


def test_oversized_upload_is_refused_with_413(world: Any, make_app: Any, login: Any, csrf: Any, counts: Any) -> None:
    from io import BytesIO

    # A small limit keeps the test's request body in memory; the production limit is 6 MiB.
    client = login(make_app(MAX_CONTENT_LENGTH=64 * 1024).test_client(), "inspector")
    before = counts()
    big = b"%PDF-1.4\n" + b"0" * (100 * 1024)
    response = client.post(
        f"/inspections/lots/{world.lot('F3')}/new",
        data={
            "csrf_token": csrf(client),
            "kde.outcome": "pass",
            "kde.inspection_date": "2026-11-10",
            "kde.inspector_name": "I",
            "certificate": (BytesIO(big), "big.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert "larger than the 64 KiB the server accepts" in response.get_data(as_text=True)
    assert counts() == before


def test_onboarding_with_a_bad_email_grants_nothing(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    before = counts()
    response = _post(
        signed_in("regulator"),
        csrf,
        "/admin/organisations/new",
        {
            "name": "Never Onboarded",
            "roles": "retailer",
            "email": "not-an-email",
            "password": "long enough pw",
        },
    )
    assert response.status_code == 400 and _marked(response.get_data(as_text=True), "f-email")
    assert counts() == before
    with world.runtime.ctx() as ctx:
        assert not ctx.session.scalar(
            select(func.count()).select_from(Organisation).where(Organisation.name == "Never Onboarded")
        )


# ------------------------------------------------------------------ what works


def test_regulator_onboards_an_organisation_whose_user_can_sign_in(
    world: Any, app: Flask, signed_in: Any, csrf: Any, login: Any
) -> None:
    response = _post(
        signed_in("regulator"),
        csrf,
        "/admin/organisations/new",
        {
            "name": "New Grocer",
            "roles": ["retailer"],
            "gs1_company_prefix": "0700009",
            "email": "grocer@new.example",
            "display_name": "Nina New",
            "password": "a long password",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    signed = client.post(
        "/login", data={"email": "grocer@new.example", "password": "a long password", "csrf_token": token}
    )
    assert signed.headers["Location"] == "/dashboard"
    assert "New Grocer" in client.get("/dashboard").get_data(as_text=True)


def test_the_journey_through_the_dashboard(world: Any, app: Flask, signed_in: Any, csrf: Any) -> None:
    """Producer creates a lot and records cooling, ships it; the distributor receives it; the inspector
    records a pass with a certificate; the retailer receives it; the consumer page shows every step; the
    regulator recalls it and the page turns red."""
    farm, carrier, lab, shop, regulator = (
        signed_in(r) for r in ("producer", "distributor", "inspector", "retailer", "regulator")
    )
    created = _post(farm, csrf, "/lots/new", _lot_form(world, "UI-1"))
    assert created.status_code == 302, created.get_data(as_text=True)[:800]
    pk = _lot_pk(world, "UI-1")
    assert created.headers["Location"] == f"/lots/{pk}"
    cooled = _post(
        farm,
        csrf,
        f"/lots/{pk}/events/new",
        {
            "kind": "cooling",
            "kde.location_gln": world.sites["producer"],
            "kde.cooling_date": "2026-11-10",
            "kde.quantity": "40",
            "kde.unit": "kg",
        },
    )
    assert cooled.status_code == 302, cooled.get_data(as_text=True)[:800]
    shipped = _post(
        farm,
        csrf,
        f"/lots/{pk}/ship",
        {
            "to": str(world.org_ids["distributor"]),
            "kde.from_gln": world.sites["producer"],
            "kde.to_gln": world.sites["distributor"],
            "kde.ship_date": "2026-11-11",
            "kde.quantity": "40",
            "kde.unit": "kg",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-9",
        },
    )
    assert shipped.status_code == 302, shipped.get_data(as_text=True)[:800]
    inbox = carrier.get("/custody").get_data(as_text=True)
    assert ">UI-1<" in inbox
    form = carrier.get(f"/custody/{pk}/accept").get_data(as_text=True)
    assert f'value="{world.sites["producer"]}" selected' in form  # prefilled from the shipment
    received = _post(
        carrier,
        csrf,
        f"/custody/{pk}/accept",
        {
            "kde.from_gln": world.sites["producer"],
            "kde.to_gln": world.sites["distributor"],
            "kde.receive_date": "2026-11-12",
            "kde.quantity": "40",
            "kde.unit": "kg",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-9",
        },
    )
    assert received.status_code == 302, received.get_data(as_text=True)[:800]
    from io import BytesIO

    inspected = lab.post(
        f"/inspections/lots/{pk}/new",
        data={
            "csrf_token": csrf(lab),
            "kde.outcome": "pass",
            "kde.inspection_date": "2026-11-12",
            "kde.inspector_name": "Lab Person",
            "kde.standard": "GLOBALG.A.P.",
            "certificate": (BytesIO(PDF + b"% UI-1\n"), "ui-cert.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert inspected.status_code == 302, inspected.get_data(as_text=True)[:800]
    _post(
        carrier,
        csrf,
        f"/lots/{pk}/ship",
        {
            "to": str(world.org_ids["retailer"]),
            "kde.from_gln": world.sites["distributor"],
            "kde.to_gln": world.sites["retailer"],
            "kde.ship_date": "2026-11-13",
            "kde.quantity": "40",
            "kde.unit": "kg",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-10",
        },
    )
    received = _post(
        shop,
        csrf,
        f"/custody/{pk}/accept",
        {
            "kde.from_gln": world.sites["distributor"],
            "kde.to_gln": world.sites["retailer"],
            "kde.receive_date": "2026-11-14",
            "kde.quantity": "40",
            "kde.unit": "kg",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-10",
        },
    )
    assert received.status_code == 302, received.get_data(as_text=True)[:800]

    lot_page = shop.get(f"/lots/{pk}").get_data(as_text=True)
    assert "ui-cert.pdf" in lot_page and "Held by</dt><dd>Test Shop" in lot_page
    consumer = app.test_client().get(f"/01/{world.gtins['lettuce']}/10/UI-1").get_data(as_text=True)
    for step in ("Harvested", "Cooled", "Shipped", "Received", "Inspected", "GLOBALG.A.P."):
        assert step in consumer
    with world.runtime.ctx() as ctx:  # the page shows the state stored at indexing, not one made up per request
        stored = ctx.session.get(Lot, pk).verification_state
    assert stored is not None
    assert ("Verified journey" in consumer) == (stored == "verified")
    assert "B-9" not in consumer and "Lab Person" not in consumer

    drafted = _post(
        regulator,
        csrf,
        f"/admin/lots/{pk}/recall",
        {
            "reason": "Salmonella",
            "recall_class": "II",
            "depth": "consumer",
            "public_notice": "yes",
            "instructions": "Return to the store.",
        },
    )
    assert drafted.status_code == 302, drafted.get_data(as_text=True)[:800]
    draft = drafted.headers["Location"]
    assert _post(regulator, csrf, f"{draft}/review", {}).status_code == 302
    recalled = _post(regulator, csrf, f"{draft}/issue", {"confirm_lot_code": "UI-1"})
    assert recalled.status_code == 302, recalled.get_data(as_text=True)[:800]
    assert recalled.headers["Location"].startswith("/admin/recalls/")
    consumer = app.test_client().get(f"/01/{world.gtins['lettuce']}/10/UI-1").get_data(as_text=True)
    assert consumer.index("<h1>") < consumer.index("recall-banner") < consumer.index("how-we-know")
    assert "Class II recall" in consumer and "Return to the store." in consumer


def test_inspector_holds_and_releases_and_receiver_refuses(world: Any, signed_in: Any, csrf: Any) -> None:
    farm, lab, carrier = signed_in("producer"), signed_in("inspector"), signed_in("distributor")
    assert _post(farm, csrf, "/lots/new", _lot_form(world, "UI-2")).status_code == 302
    pk = _lot_pk(world, "UI-2")
    assert _post(lab, csrf, f"/inspections/lots/{pk}/hold", {"reason": "sampling"}).status_code == 302
    assert "On hold." in farm.get(f"/lots/{pk}").get_data(as_text=True)
    refused = _post(
        farm,
        csrf,
        f"/lots/{pk}/ship",
        {
            "to": str(world.org_ids["distributor"]),
            "kde.from_gln": world.sites["producer"],
            "kde.to_gln": world.sites["distributor"],
            "kde.ship_date": "2026-11-11",
            "kde.quantity": "40",
            "kde.unit": "kg",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-1",
        },
    )
    assert refused.status_code == 409 and "it is held" in refused.get_data(as_text=True)
    released = _post(lab, csrf, f"/inspections/lots/{pk}/release", {"reason": "negative", "confirm_lot_code": "UI-2"})
    assert released.status_code == 302
    shipped = _post(
        farm,
        csrf,
        f"/lots/{pk}/ship",
        {
            "to": str(world.org_ids["distributor"]),
            "kde.from_gln": world.sites["producer"],
            "kde.to_gln": world.sites["distributor"],
            "kde.ship_date": "2026-11-11",
            "kde.quantity": "40",
            "kde.unit": "kg",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-1",
        },
    )
    assert shipped.status_code == 302
    assert _post(carrier, csrf, f"/custody/{pk}/reject", {"reason": "warm on arrival"}).status_code == 302
    page = farm.get(f"/lots/{pk}").get_data(as_text=True)
    assert "Delivery refused" in page and "Held by</dt><dd>Test Farm" in page


def test_transform_through_the_dashboard_links_the_lineage(world: Any, signed_in: Any, csrf: Any) -> None:
    farm, packer = signed_in("producer"), signed_in("processor")
    assert _post(farm, csrf, "/lots/new", _lot_form(world, "UI-3")).status_code == 302
    pk = _lot_pk(world, "UI-3")
    assert (
        _post(
            farm,
            csrf,
            f"/lots/{pk}/ship",
            {
                "to": str(world.org_ids["processor"]),
                "kde.from_gln": world.sites["producer"],
                "kde.to_gln": world.sites["processor"],
                "kde.ship_date": "2026-11-11",
                "kde.quantity": "40",
                "kde.unit": "kg",
                "kde.reference_document_type": "bill of lading",
                "kde.reference_document_number": "B-3",
            },
        ).status_code
        == 302
    )
    assert (
        _post(
            packer,
            csrf,
            f"/custody/{pk}/accept",
            {
                "kde.from_gln": world.sites["producer"],
                "kde.to_gln": world.sites["processor"],
                "kde.receive_date": "2026-11-12",
                "kde.quantity": "40",
                "kde.unit": "kg",
                "kde.reference_document_type": "bill of lading",
                "kde.reference_document_number": "B-3",
            },
        ).status_code
        == 302
    )
    made = _post(
        packer,
        csrf,
        "/transform",
        {
            "gtin": world.gtins["mix"],
            "lot_code": "UI-MIX",
            "quantity": "30",
            "location_gln": world.sites["processor"],
            "transformation_date": "2026-11-13",
            f"input.{pk}": "30",
        },
    )
    assert made.status_code == 302, made.get_data(as_text=True)[:800]
    page = packer.get(made.headers["Location"]).get_data(as_text=True)
    assert "Made from" in page and ">UI-3</code></a>" in page
    assert "10 kg left of 40 kg" in packer.get(f"/lots/{pk}").get_data(as_text=True)


def test_the_same_certificate_file_can_back_inspections_of_two_lots(world: Any, signed_in: Any, csrf: Any) -> None:
    """Files are stored by content: a certificate covering several lots is kept once, recorded per lot."""
    from io import BytesIO

    client = signed_in("inspector")
    response = client.post(
        f"/inspections/lots/{world.lot('F3')}/new",
        data={
            "csrf_token": csrf(client),
            "kde.outcome": "pass",
            "kde.inspection_date": "2026-11-10",
            "kde.inspector_name": "I",
            "certificate": (BytesIO(PDF), "again.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:800]
    page = client.get(f"/lots/{world.lot('F3')}").get_data(as_text=True)
    assert "again.pdf" in page


def test_regulator_changes_an_organisations_roles_on_chain(world: Any, signed_in: Any, csrf: Any) -> None:
    from supply_chain.store.models import Organisation

    client = signed_in("regulator")
    org_id = world.org_ids["other"]
    response = client.post(
        f"/admin/organisations/{org_id}/roles",
        data={"csrf_token": csrf(client), "roles": ["producer", "distributor"]},
    )
    assert response.status_code == 302
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, org_id)
        assert org.roles == ["distributor", "producer"]
        assert ctx.ledger.has_role("distributor", org.chain_address)
    client.post(f"/admin/organisations/{org_id}/roles", data={"csrf_token": csrf(client), "roles": ["producer"]})
    with world.runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, org_id)
        assert org.roles == ["producer"] and not ctx.ledger.has_role("distributor", org.chain_address)
