"""Credit records in the browser: any signed-in organisation reads another's record and grade with the rule
beside it; the regulator sees them on its organisation pages and a grade per organisation in its list.

In the shared world the regulator recalled the farm's lot F1 (class I), which reached the processor's mix M1
(made from F1) and the carrier holding M1; the farm's lot H1 was put on hold."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from supply_chain.services import credit
from supply_chain.store.models import Organisation


@pytest.fixture(scope="module")
def credit_app(make_app: Any) -> Flask:
    return make_app()


@pytest.fixture(scope="module")
def shop(credit_app: Flask, login: Any) -> FlaskClient:
    return login(credit_app.test_client(), "retailer")


@pytest.fixture(scope="module")
def regulator(credit_app: Flask, login: Any) -> FlaskClient:
    return login(credit_app.test_client(), "regulator")


def _record(world: Any, key: str) -> dict[str, Any]:
    with world.runtime.ctx() as ctx:
        return credit.record(ctx, ctx.session.get(Organisation, world.org_ids[key]))


def test_a_buyer_reads_a_suppliers_record_with_the_grade_and_the_rule_beside_it(shop: FlaskClient, world: Any) -> None:
    page = shop.get(f"/organisations/{world.org_ids['producer']}/credit").get_data(as_text=True)
    record = _record(world, "producer")
    # F1's class I recall started from the farm's own lot: at least C, and the page says why
    assert record["totals"]["recalls_caused"] >= 1 and record["totals"]["recalls_caused_class_i"] >= 1
    assert record["grade"]["letter"] in ("C", "D")
    assert f'class="grade grade-{record["grade"]["letter"]}"' in page
    assert ("C", "recalls_caused") in {(r["grade"], r["term"]) for r in record["grade"]["reasons"]}
    assert str(escape(record["grade"]["explanation"])) in page
    assert "How the grade is worked out" in page and "A</strong> when none of these is reached" in page
    assert "Recalls of its own lots" in page and ">F1</code>" in page
    assert "Listeria monocytogenes" in page
    assert record["totals"]["holds"] >= 1  # H1
    # recall acknowledgements are tracked: nobody here was notified of a recall late
    assert record["totals"]["acks_late"] == 0 and record["acknowledgements_tracked"] is True
    assert "not tracked yet" not in page
    assert re.search(r'data-term="acks_late"><span class="n">0', page)


def test_a_recall_through_an_ingredient_is_shown_apart_and_does_not_lower_the_grade(
    shop: FlaskClient, world: Any
) -> None:
    record = _record(world, "processor")
    assert record["totals"]["recalls_caused"] == 0 and record["totals"]["recalls_reached"] >= 1
    f1 = next(r for r in record["recalls_reached"] if r["source"]["lot_code"] == "F1")
    assert f1["recall_class"] == "I" and f1["source"]["organisation"] == "Test Farm"
    how = {lot["lot_code"]: lot["how"] for lot in f1["lots"]}
    assert how["M1"] == "made from it" and how["F1"] == "held"
    assert not any(r["term"].startswith("recalls") for r in record["grade"]["reasons"])
    page = shop.get(f"/organisations/{world.org_ids['processor']}/credit").get_data(as_text=True)
    assert "Recalls that reached it through an ingredient or stock" in page
    assert "<code>M1</code> (made from it)" in page
    carrier = _record(world, "distributor")
    assert any(
        r["source"]["lot_code"] == "F1"
        and {"M1": "held"}.items() <= {x["lot_code"]: x["how"] for x in r["lots"]}.items()
        for r in carrier["recalls_reached"]
    )


def test_the_record_is_json_for_json_clients_and_lists_every_month_of_the_window(shop: FlaskClient, world: Any) -> None:
    data = shop.get(f"/organisations/{world.org_ids['processor']}/credit", headers={"Accept": "application/json"}).json
    assert data["organisation"]["name"] == "Test Processor"
    assert len(data["months"]) == data["window"]["months"] == 12
    assert data["months"][-1]["month"] == data["window"]["to"]
    assert sum(m["lots_created"] for m in data["months"]) == data["totals"]["lots_created"] >= 2
    assert [line["grade"] for line in data["rule"]["grades"]] == ["D", "C", "B"]


def test_signed_in_organisations_see_every_grade_in_one_list(shop: FlaskClient, world: Any) -> None:
    page = shop.get("/organisations").get_data(as_text=True)
    for name in ("Test Farm", "Test Processor", "Test Shop", "Test Lab"):
        assert name in page
    assert f'href="/organisations/{world.org_ids["producer"]}/credit"' in page
    assert "Lotline operator" not in page  # the operator only deploys; it has no record


def test_an_organisation_that_does_not_exist_is_not_found(shop: FlaskClient) -> None:
    assert shop.get("/organisations/999999/credit").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(credit_app: Flask, world: Any) -> None:
    anonymous = credit_app.test_client()
    response = anonymous.get(f"/organisations/{world.org_ids['producer']}/credit")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert anonymous.get("/organisations", headers={"Accept": "application/json"}).status_code == 403


def test_the_regulator_sees_the_record_on_the_organisation_page_and_grades_in_its_list(
    regulator: FlaskClient, world: Any
) -> None:
    page = regulator.get(f"/admin/organisations/{world.org_ids['processor']}").get_data(as_text=True)
    assert 'id="credit"' in page and "Recalls that reached it through an ingredient or stock" in page
    listing = regulator.get("/admin").get_data(as_text=True)
    assert "<th>Grade</th>" in listing
    farm = _record(world, "producer")["grade"]
    assert f'class="grade grade-sm grade-{farm["letter"]}" title="{escape(farm["explanation"])}"' in listing
    lab = _record(world, "inspector")["grade"]
    assert lab["letter"] is None  # an inspector makes and receives no lot: not graded
