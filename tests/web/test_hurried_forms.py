"""Forms for hurried people (issue 13): every error at once, next to its field, in the words of the field's
label, tied to it for screen readers; limits the browser enforces; drafts kept across an expired session; no
preselected inspection outcome; the lot code typed again before a step that cannot be undone; and the custody
notices (a refused delivery tells the sender; a second receipt says plainly it was received already)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import html as lxml_html
from sqlalchemy import select

from supply_chain.store.models import Lot, Notification

_codes: list[str] = []


def _code(prefix: str = "HF") -> str:
    _codes.append(prefix)
    return f"{prefix}-{len(_codes)}"


def _lot_form(world: Any, code: str, **overrides: str) -> dict[str, str]:
    return {
        "kind": "harvesting",
        "gtin": world.gtins["lettuce"],
        "lot_code": code,
        "kde.location_gln": world.sites["producer"],
        "kde.harvest_date": "2026-11-10",
        "kde.commodity": "lettuce",
        "kde.quantity": "40",
        "kde.unit": "kg",
    } | overrides


def _post(client: FlaskClient, csrf: Any, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    return client.post(path, data=data | {"csrf_token": csrf(client)}, **kwargs)


def _lot_pk(world: Any, code: str) -> int:
    with world.runtime.ctx() as ctx:
        return ctx.session.scalars(select(Lot.id).where(Lot.lot_code == code)).one()


def _doc(response: Any) -> Any:
    return lxml_html.fromstring(response.get_data(as_text=True))


def _summary(doc: Any) -> list[tuple[str, str | None]]:
    """The error summary's items: (text, the id its link points at)."""
    box = doc.get_element_by_id("error-summary")
    return [
        (" ".join(li.text_content().split()), (li.find("a").get("href")[1:] if li.find("a") is not None else None))
        for li in box.iter("li")
    ]


def _field_error(doc: Any, input_id: str) -> str:
    """The error text an input is tied to (aria-invalid, aria-describedby -> the text)."""
    element = doc.get_element_by_id(input_id)
    assert element.get("aria-invalid") == "true", f"{input_id} is not marked invalid"
    described = element.get("aria-describedby", "").split()
    assert f"{input_id}-error" in described, f"{input_id} does not point at its error"
    return " ".join(doc.get_element_by_id(f"{input_id}-error").text_content().split())


INTERNAL = re.compile(r"payload\.|readings\[|inputs\[|\w+_\w+:|\[0\]")


def _no_internal_names(texts: list[str]) -> None:
    for text in texts:
        assert not INTERNAL.search(text), text


# ------------------------------------------------------------------ every error at once, by its label


def test_new_lot_shows_every_error_at_once_next_to_its_field_in_label_words(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    client = signed_in("producer")
    before = counts()
    bad = _lot_form(
        world,
        "BAD#CODE",
        **{
            "kde.quantity": "-5",
            "kde.harvest_date": "2026-02-30",
            "kde.variety": "Little\x00Gem",
            "kde.location_gln": "",
        },
    )
    response = _post(client, csrf, "/lots/new", bad)
    assert response.status_code == 400
    doc = _doc(response)
    summary = _summary(doc)
    anchors = {anchor for _, anchor in summary}
    assert {"f-lot_code", "kde-quantity", "kde-harvest_date", "kde-variety", "kde-location_gln"} <= anchors
    assert _field_error(doc, "f-lot_code").startswith("Lot code:")
    assert _field_error(doc, "kde-quantity") == "Quantity: must be greater than 0"
    assert _field_error(doc, "kde-harvest_date").startswith("Harvest date: ")
    assert _field_error(doc, "kde-variety").startswith("Variety: ")
    assert _field_error(doc, "kde-location_gln").startswith("Location: is required")
    _no_internal_names([text for text, _ in summary])
    assert doc.get_element_by_id("f-lot_code").get("aria-invalid") == "true"
    assert doc.get_element_by_id("kde-unit").get("aria-invalid") is None  # a right field is not marked
    assert counts() == before


def test_cooling_with_three_mistakes_lists_all_three(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    client = signed_in("producer")
    before = counts()
    response = _post(
        client,
        csrf,
        f"/lots/{world.lot('F2')}/events/new",
        {"kind": "cooling", "kde.location_gln": "", "kde.cooling_date": "yesterday", "kde.quantity": "lots"},
    )
    assert response.status_code == 400
    doc = _doc(response)
    assert len(_summary(doc)) == 3
    assert _field_error(doc, "kde-location_gln").startswith("Location: is required")
    assert _field_error(doc, "kde-cooling_date").startswith("Cooling date: must be a date")
    assert _field_error(doc, "kde-quantity").startswith("Quantity: ")
    _no_internal_names([text for text, _ in _summary(doc)])
    assert counts() == before


def test_shipping_without_receiver_or_papers_says_so_for_each(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    client = signed_in("producer")
    before = counts()
    response = _post(
        client,
        csrf,
        f"/lots/{world.lot('F2')}/ship",
        {
            "to": "",
            "kde.from_gln": world.sites["producer"],
            "kde.to_gln": world.sites["processor"],
            "kde.ship_date": "2026-11-11",
        },
    )
    assert response.status_code == 400
    doc = _doc(response)
    assert _field_error(doc, "f-to").startswith("Ship to: choose the organisation")
    assert _field_error(doc, "kde-reference_document_type").startswith("Reference document type: is required")
    assert _field_error(doc, "kde-reference_document_number").startswith("Reference document number: is required")
    assert counts() == before


def test_readings_errors_count_rows_from_one_in_words(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    client = signed_in("producer")
    before = counts()
    readings = "taken_at, temperature_c\n2026-11-05T06:00:00, 3.1\n2026-11-05T07:00:00+00:00, 300\njust one\n"
    response = _post(client, csrf, f"/lots/{world.lot('F2')}/readings", {"readings": readings})
    assert response.status_code == 400
    doc = _doc(response)
    text = _field_error(doc, "f-readings")
    assert "Reading 1, time taken: " in text  # the first reading, not readings[0].taken_at
    assert "Reading 2, temperature (°C): " in text
    assert "line 4 is not" in text  # the header is line 1
    _no_internal_names([t for t, _ in _summary(doc)])
    assert counts() == before


def test_transform_lists_every_wrong_field(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    client = signed_in("processor")
    before = counts()
    form = {
        "gtin": world.gtins["mix"],
        "lot_code": "MIX BAD#",
        "quantity": "-1",
        "location_gln": world.sites["processor"],
        "transformation_date": "2026-13-45",
        f"input.{world.lot('F3')}": "-2",
    }
    response = _post(client, csrf, "/transform", form)
    assert response.status_code == 400
    doc = _doc(response)
    assert _field_error(doc, f"in-{world.lot('F3')}").startswith("Quantity of F3 used: must be greater than 0")
    assert _field_error(doc, "f-lot_code").startswith("Lot code: ")
    assert _field_error(doc, "f-quantity") == "Quantity: must be greater than 0"
    assert _field_error(doc, "f-transformation_date").startswith("Date completed: ")
    assert counts() == before


@pytest.mark.parametrize(
    ("path", "form", "inputs"),
    [
        ("/products", {"gtin": "4006381333932", "name": ""}, {"f-gtin": "GTIN: ", "f-name": "Name: is required"}),
        (
            "/sites",
            {"gln": "0700001000010", "name": "", "latitude": "95", "longitude": "east"},
            {
                "f-gln": "GLN: ",
                "f-name": "Name: is required",
                "f-latitude": "Latitude: must be between -90 and 90",
                "f-longitude": "Longitude: must be a number",
            },
        ),
    ],
    ids=["products", "sites"],
)
def test_products_and_sites_list_every_wrong_field(
    signed_in: Any, csrf: Any, path: str, form: dict[str, str], inputs: dict[str, str]
) -> None:
    response = _post(signed_in("producer"), csrf, path, form)
    assert response.status_code == 400
    doc = _doc(response)
    for input_id, start in inputs.items():
        assert _field_error(doc, input_id).startswith(start)
    assert {anchor for _, anchor in _summary(doc)} == set(inputs)


def test_onboarding_lists_every_wrong_field(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    before = counts()
    response = _post(
        signed_in("regulator"),
        csrf,
        "/admin/organisations/new",
        {"name": "", "email": "not-an-email", "password": "short"},
    )
    assert response.status_code == 400
    doc = _doc(response)
    assert _field_error(doc, "f-name").startswith("Name: is required")
    assert _field_error(doc, "f-roles") == "Roles: tick at least one role"
    assert _field_error(doc, "f-email").startswith("E-mail: must look like")
    assert _field_error(doc, "f-password").startswith("Initial password: must be at least 10 characters")
    assert counts() == before


def test_password_form_lists_both_mistakes(app: Flask, world: Any, signed_in: Any, csrf: Any) -> None:
    client = signed_in("retailer")
    response = _post(client, csrf, "/account/password", {"current_password": "", "new_password": "short"})
    assert response.status_code == 400
    doc = _doc(response)
    assert _field_error(doc, "f-current_password").startswith("Current password: is required")
    assert _field_error(doc, "f-new_password").startswith("New password: must be at least 10 characters")


def test_token_form_marks_the_name(signed_in: Any, csrf: Any) -> None:
    response = _post(signed_in("producer"), csrf, "/tokens", {"name": "", "scope": "read"})
    assert response.status_code == 400
    assert _field_error(_doc(response), "f-name").startswith("Name: ")


def test_recall_draft_lists_every_wrong_field(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    before = counts()
    response = _post(
        signed_in("regulator"),
        csrf,
        f"/admin/lots/{world.lot('F2')}/recall",
        {"recall_class": "", "depth": "planet", "reason": "", "instructions": ""},
    )
    assert response.status_code == 400
    doc = _doc(response)
    assert {anchor for _, anchor in _summary(doc)} == {"f-recall_class", "f-depth", "f-reason", "f-instructions"}
    assert _field_error(doc, "f-depth").startswith("Depth: must be one of")
    assert counts() == before


def test_a_json_client_of_a_form_gets_every_field_error_at_once(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    before = counts()
    bad = _lot_form(world, "BAD#JSON", **{"kde.quantity": "-5", "kde.harvest_date": "2026-02-30"})
    response = _post(signed_in("producer"), csrf, "/lots/new", bad, headers={"Accept": "application/json"})
    assert response.status_code == 400
    body = response.get_json()
    errors = body["errors"]
    assert {e["field"] for e in errors} >= {"lot_code", "quantity", "payload.harvest_date"}, errors
    assert all(set(e) == {"error", "message", "field"} for e in errors)  # the API's error shape
    assert {k: body[k] for k in ("error", "message", "field")} == errors[0]  # the first, as before
    assert counts() == before


# ------------------------------------------------------------------ hints and limits the browser keeps


def test_no_hint_shows_backticks(world: Any, signed_in: Any) -> None:
    from supply_chain.domain.events import KIND_SPECS

    for spec in KIND_SPECS.values():
        for field in spec.fields:
            assert "`" not in field.description, (spec.kind, field.name)
    client = signed_in("producer")
    for path in ("/lots/new", f"/lots/{world.lot('F2')}/events/new?kind=cooling", f"/lots/{world.lot('F2')}/ship"):
        doc = _doc(client.get(path))
        hints = [" ".join(h.text_content().split()) for h in doc.find_class("hint")]
        assert hints and not [h for h in hints if "`" in h], path
    quantity_hint = _doc(client.get("/lots/new")).get_element_by_id("kde-quantity-hint").text_content()
    assert quantity_hint == "Quantity of food, in its unit of measure"


def test_lot_code_inputs_stop_at_20_characters(signed_in: Any) -> None:
    for role, path in (("producer", "/lots/new"), ("processor", "/transform")):
        page = signed_in(role).get(path).get_data(as_text=True)
        assert "&quot;20&quot;" not in page
        assert _doc_text(page).get_element_by_id("f-lot_code").get("maxlength") == "20", path


def _doc_text(page: str) -> Any:
    return lxml_html.fromstring(page)


# ------------------------------------------------------------------ no preselected outcome


def test_inspection_outcome_must_be_chosen(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    client = signed_in("inspector")
    path = f"/inspections/lots/{world.lot('F3')}/new"
    select_ = _doc(client.get(path)).get_element_by_id("kde-outcome")
    chosen = [o.get("value") for o in select_.iter("option") if o.get("selected") is not None]
    assert chosen == [""], "no outcome may be preselected"
    before = counts()
    response = _post(client, csrf, path, {"kde.inspection_date": "2026-11-10", "kde.inspector_name": "I"})
    assert response.status_code == 400
    assert _field_error(_doc(response), "kde-outcome").startswith("Outcome: is required")
    assert counts() == before


# ------------------------------------------------------------------ the lot code typed before what cannot be undone


def _new_lot(world: Any, client: FlaskClient, csrf: Any, prefix: str) -> tuple[int, str]:
    code = _code(prefix)
    created = _post(client, csrf, "/lots/new", _lot_form(world, code))
    assert created.status_code == 302, created.get_data(as_text=True)[:500]
    return _lot_pk(world, code), code


def _status(world: Any, pk: int) -> str:
    with world.runtime.ctx() as ctx:
        return str(ctx.session.get(Lot, pk).status)


def test_closing_a_lot_needs_its_code_typed(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    farm = signed_in("producer")
    pk, code = _new_lot(world, farm, csrf, "CLOSE")
    lot_page = farm.get(f"/lots/{pk}").get_data(as_text=True)
    assert 'id="f-close-confirm" name="confirm_lot_code"' in lot_page
    before = counts()
    for typed, rule in (("", f"type the lot code {code} to close the lot"), ("CLOSE-0", "you typed 'CLOSE-0'")):
        wrong = _post(farm, csrf, f"/lots/{pk}/close", {"reason": "sold out", "confirm_lot_code": typed})
        assert wrong.status_code == 400
        doc = _doc(wrong)
        assert rule in _field_error(doc, "f-confirm_lot_code")
        assert doc.get_element_by_id("f-reason").get("value") == "sold out"  # what was typed stays
        assert counts() == before and _status(world, pk) == "active"
    closed = _post(farm, csrf, f"/lots/{pk}/close", {"reason": "sold out", "confirm_lot_code": code})
    assert closed.status_code == 302
    assert _status(world, pk) == "closed"


def test_lifting_a_hold_needs_the_lot_code_typed(world: Any, signed_in: Any, csrf: Any, counts: Any) -> None:
    farm, lab = signed_in("producer"), signed_in("inspector")
    pk, code = _new_lot(world, farm, csrf, "HOLD")
    assert _post(lab, csrf, f"/inspections/lots/{pk}/hold", {"reason": "sampling"}).status_code == 302
    before = counts()
    wrong = _post(lab, csrf, f"/inspections/lots/{pk}/release", {"reason": "negative", "confirm_lot_code": "x"})
    assert wrong.status_code == 400
    assert "type the lot code exactly to lift the hold" in _field_error(_doc(wrong), "f-confirm_lot_code")
    assert counts() == before and _status(world, pk) == "held"
    released = _post(lab, csrf, f"/inspections/lots/{pk}/release", {"reason": "negative", "confirm_lot_code": code})
    assert released.status_code == 302 and _status(world, pk) == "active"


def test_issuing_a_recall_with_a_wrong_lot_code_names_the_field(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    farm, regulator = signed_in("producer"), signed_in("regulator")
    pk, code = _new_lot(world, farm, csrf, "RC")
    drafted = _post(
        regulator,
        csrf,
        f"/admin/lots/{pk}/recall",
        {"reason": "Salmonella", "recall_class": "II", "depth": "consumer", "instructions": "Return it."},
    )
    draft = drafted.headers["Location"]
    assert _post(regulator, csrf, f"{draft}/review", {}).status_code == 302
    before = counts()
    wrong = _post(regulator, csrf, f"{draft}/issue", {"confirm_lot_code": code.lower()})
    assert wrong.status_code == 400
    assert "exactly to issue the recall" in _field_error(_doc(wrong), "f-confirm_lot_code")
    assert counts() == before and _status(world, pk) == "active"


# ------------------------------------------------------------------ drafts kept across an expired session

_users: list[str] = []


def _own_user(world: Any, role: str = "producer") -> str:
    """A user of its own in ``role``'s organisation (its session is expired by the test)."""
    from supply_chain.services import orgs
    from supply_chain.store.models import Organisation

    email = f"hurried{len(_users)}-{role}@test.lotline"
    _users.append(email)
    with world.runtime.ctx() as ctx:
        orgs.add_user(ctx, ctx.session.get(Organisation, world.org_ids[role]), email, "Hannah Hurried", PASSWORD)
        ctx.session.commit()
    return email


PASSWORD = "hurried people password"


def _sign_in(client: FlaskClient, csrf_from: Any, email: str, next_path: str = "") -> Any:
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token, "next": next_path})


def _expire_sessions(world: Any, email: str) -> None:
    """As if the sign-in's time ran out while the user was typing (the cookie stays in the browser)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from supply_chain.store.models import User, UserSession

    with world.runtime.ctx() as ctx:
        user_id = ctx.session.scalars(select(User.id).where(User.email == email)).one()
        past = datetime.now(UTC) - timedelta(minutes=1)
        ctx.session.execute(update(UserSession).where(UserSession.user_id == user_id).values(expires_at=past))
        ctx.session.commit()


def test_a_form_submitted_after_the_session_ended_comes_back_filled_after_signing_in(
    app: Flask, world: Any, csrf: Any, csrf_from: Any, counts: Any
) -> None:
    email = _own_user(world)
    client = app.test_client()
    assert _sign_in(client, csrf_from, email).status_code == 302
    code = _code("DRAFT")
    form = _lot_form(world, code, **{"kde.field_name": "South Block 2", "kde.quantity": "41.5"})
    _expire_sessions(world, email)
    before = counts()
    answer = _post(client, csrf, "/lots/new", form)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login?next=/lots/new"
    assert counts() == before  # nothing written
    login_page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "the form comes back with what you typed" in login_page

    signed = _sign_in(client, csrf_from, email, "/lots/new")
    assert signed.status_code == 302 and signed.headers["Location"] == "/lots/new"
    page = client.get("/lots/new")
    doc = _doc(page)
    assert doc.get_element_by_id("f-lot_code").get("value") == code
    assert doc.get_element_by_id("kde-field_name").get("value") == "South Block 2"
    assert doc.get_element_by_id("kde-quantity").get("value") == "41.5"
    assert "Nothing was saved yet" in page.get_data(as_text=True)
    assert counts() == before  # still nothing written: the user submits again
    again = _doc(client.get("/lots/new"))  # handed out once
    assert again.get_element_by_id("f-lot_code").get("value") == ""
    created = _post(client, csrf, "/lots/new", form)
    assert created.status_code == 302 and created.headers["Location"].startswith("/lots/")


def test_a_draft_is_shown_to_its_author_alone_and_keeps_no_secret(
    app: Flask, world: Any, csrf: Any, csrf_from: Any
) -> None:
    from supply_chain.store.models import FormDraft, User

    author, colleague = _own_user(world), _own_user(world)
    client = app.test_client()
    assert _sign_in(client, csrf_from, author).status_code == 302
    _expire_sessions(world, author)
    answer = _post(client, csrf, "/account/password", {"current_password": "typed secret", "new_password": "x" * 12})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    _expire_sessions(world, author)
    close_path = f"/lots/{world.lot('F2')}/close"
    _post(client, csrf, close_path, {"reason": "sold out", "confirm_lot_code": "F2"})
    with world.runtime.ctx() as ctx:
        user_id = ctx.session.scalars(select(User.id).where(User.email == author)).one()
        kept = {d.path: d.fields for d in ctx.session.scalars(select(FormDraft).where(FormDraft.user_id == user_id))}
    assert kept[close_path] == [["reason", "sold out"]]  # neither the CSRF token nor the typed confirmation
    assert "/account/password" not in kept or kept["/account/password"] == []
    assert "typed secret" not in str(kept)

    # Someone else signing in on this browser does not get the author's draft.
    assert _sign_in(client, csrf_from, colleague).status_code == 302
    assert _doc(client.get(close_path)).get_element_by_id("f-reason").get("value") == ""


def test_a_refusal_typed_in_the_custody_inbox_comes_back_after_signing_in_again(
    app: Flask, world: Any, signed_in: Any, csrf: Any, csrf_from: Any, counts: Any
) -> None:
    """The refusal form posts to /custody/<lot>/reject, which is no page: the draft comes back in the inbox."""
    farm = signed_in("producer")
    pk, _ = _new_lot(world, farm, csrf, "INBOX")
    _ship(world, farm, csrf, pk, "distributor")
    email = _own_user(world, "distributor")
    client = app.test_client()
    assert _sign_in(client, csrf_from, email).status_code == 302
    _expire_sessions(world, email)
    before = counts()
    reason = "pallet arrived at 9 °C"
    answer = _post(client, csrf, f"/custody/{pk}/reject", {"reason": reason}, headers={"Referer": "/custody"})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login?next=")
    assert "the form comes back with what you typed" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert counts() == before and _status(world, pk) == "in_transit"

    next_path = parse_qs(urlsplit(answer.headers["Location"]).query)["next"][0]
    assert next_path == f"/custody?draft=%2Fcustody%2F{pk}%2Freject"  # the inbox, naming the form
    signed = _sign_in(client, csrf_from, email, next_path)
    assert signed.status_code == 302 and signed.headers["Location"] == next_path
    inbox = client.get(signed.headers["Location"])
    doc = _doc(inbox)
    assert doc.get_element_by_id(f"f-reason-{pk}").get("value") == reason
    assert "Nothing was saved yet" in inbox.get_data(as_text=True)
    assert counts() == before and _status(world, pk) == "in_transit"  # written only when submitted again
    refused = _post(client, csrf, f"/custody/{pk}/reject", {"reason": reason})
    assert refused.status_code == 302 and _status(world, pk) == "active"


def test_a_notification_address_typed_on_the_settings_page_comes_back(
    app: Flask, world: Any, csrf: Any, csrf_from: Any
) -> None:
    email = _own_user(world)
    client = app.test_client()
    assert _sign_in(client, csrf_from, email).status_code == 302
    _expire_sessions(world, email)
    answer = _post(
        client,
        csrf,
        "/settings/notifications/email",
        {"notification_email": "recalls@farm.example"},
        headers={"Referer": "/settings/notifications"},
    )
    next_path = "/settings/notifications?draft=/settings/notifications/email"
    assert answer.status_code == 302
    assert _sign_in(client, csrf_from, email, next_path).headers["Location"] == next_path
    page = _doc(client.get(next_path))
    assert page.get_element_by_id("f-notification_email").get("value") == "recalls@farm.example"


def test_a_draft_too_large_is_not_kept_and_the_user_is_told(
    app: Flask, world: Any, csrf: Any, csrf_from: Any
) -> None:
    from supply_chain.services import drafts

    email = _own_user(world)
    client = app.test_client()
    assert _sign_in(client, csrf_from, email).status_code == 302
    _expire_sessions(world, email)
    path = f"/lots/{world.lot('F2')}/readings"
    huge = "2026-11-05T06:00:00+00:00, 3.1\n" * (drafts.MAX_BYTES // 20)
    answer = _post(client, csrf, path, {"readings": huge})
    assert answer.status_code == 302
    assert "too large to keep" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert _sign_in(client, csrf_from, email).status_code == 302
    assert _doc(client.get(path)).get_element_by_id("f-readings").text in (None, "")


# ------------------------------------------------------------------ custody: refusals told, double receipts plain


def _ship(world: Any, client: FlaskClient, csrf: Any, pk: int, to: str) -> None:
    shipped = _post(
        client,
        csrf,
        f"/lots/{pk}/ship",
        {
            "to": str(world.org_ids[to]),
            "kde.from_gln": world.sites["producer"],
            "kde.to_gln": world.sites[to],
            "kde.ship_date": "2026-11-11",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-77",
        },
    )
    assert shipped.status_code == 302, shipped.get_data(as_text=True)[:800]


def test_the_sender_is_told_when_a_delivery_is_refused(world: Any, signed_in: Any, csrf: Any) -> None:
    farm, carrier = signed_in("producer"), signed_in("distributor")
    pk, code = _new_lot(world, farm, csrf, "REFUSED")
    _ship(world, farm, csrf, pk, "distributor")
    no_reason = _post(carrier, csrf, f"/custody/{pk}/reject", {"reason": ""})
    assert no_reason.status_code == 400
    text = " ".join(_doc(no_reason).text_content().split())
    assert "Reason: is required" in text and "payload." not in text  # the error page speaks the user's words
    refused = _post(carrier, csrf, f"/custody/{pk}/reject", {"reason": "temperature abuse on arrival"})
    assert refused.status_code == 302
    with world.runtime.ctx() as ctx:
        notices = list(
            ctx.session.scalars(
                select(Notification).where(
                    Notification.organisation_id == world.org_ids["producer"], Notification.link == f"/lots/{pk}"
                )
            )
        )
    assert [n.topic for n in notices] == ["custody.refused"]
    assert notices[0].subject == f"Test Carrier refused the delivery of Test lettuce lot {code}"
    assert "temperature abuse on arrival" in notices[0].text
    inbox = farm.get("/notifications").get_data(as_text=True)
    assert f"Test Carrier refused the delivery of Test lettuce lot {code}" in inbox


def test_receiving_the_same_lot_twice_says_it_is_already_received(
    world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    farm, carrier = signed_in("producer"), signed_in("distributor")
    pk, code = _new_lot(world, farm, csrf, "TWICE")
    _ship(world, farm, csrf, pk, "distributor")
    receipt = {
        "kde.from_gln": world.sites["producer"],
        "kde.to_gln": world.sites["distributor"],
        "kde.receive_date": "2026-11-12",
        "kde.reference_document_type": "bill of lading",
        "kde.reference_document_number": "B-77",
    }
    assert _post(carrier, csrf, f"/custody/{pk}/accept", receipt).status_code == 302
    before = counts()
    again = _post(carrier, csrf, f"/custody/{pk}/accept", receipt)
    assert again.status_code == 302 and again.headers["Location"] == f"/lots/{pk}"
    page = carrier.get(again.headers["Location"]).get_data(as_text=True)
    assert f"Lot {code} is already received by you; nothing more was recorded." in page
    assert counts() == before
    as_json = _post(carrier, csrf, f"/custody/{pk}/accept", receipt, headers={"Accept": "application/json"})
    assert as_json.status_code == 409 and as_json.json["error"] == "already_received"
    assert as_json.json["message"].startswith(f"lot {code} is already received by you")


def test_service_keys_become_the_words_of_the_form() -> None:
    from app.forms import field_words, plain_message
    from supply_chain.domain.errors import Conflict, InvalidInput

    assert field_words("readings[0].taken_at") == "Reading 1, time taken"
    assert field_words("outputs[0].inputs[1].quantity") == "New lot 1, input lot 2, quantity"
    assert field_words("payload.inputs[0].gtin") == "Input lot 1, GTIN"
    key = "payload.packing_date"
    before = InvalidInput(f"{key}: must not be before harvest_date (2026-01-01)", field=key)
    assert plain_message(before, "Packing date") == "Packing date: must not be before harvest date (2026-01-01)"
    # a lot code with an underscore is the user's, not a key: left as it is
    assert plain_message(Conflict("cannot ship lot tr_7: it is held")) == "Cannot ship lot tr_7: it is held"
