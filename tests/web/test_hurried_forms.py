"""Forms for hurried people (issue 13): every error at once, next to its field, in the words of the field's
label, tied to it for screen readers; limits the browser enforces; drafts kept across an expired session; no
preselected inspection outcome; the lot code typed again before a step that cannot be undone; and the custody
notices (a refused delivery tells the sender; a second receipt says plainly it was received already)."""

from __future__ import annotations

import re
from typing import Any

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


@pytest.fixture
def signed_in(app: Flask, login: Any) -> Any:
    return lambda role: login(app.test_client(), role)


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
        **{"kde.quantity": "-5", "kde.harvest_date": "2026-02-30", "kde.variety": "Little\x00Gem", "kde.location_gln": ""},
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
