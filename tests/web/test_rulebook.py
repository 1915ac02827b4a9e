"""The rulebook through the web forms: a salad mix made from a recalled farm lot is recalled everywhere a
person looks, and nothing lets it move on. (M1 is made from F1, which the world's regulator recalled.)"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient


def test_mix_made_from_a_recalled_lot_is_recalled_in_search_dashboard_and_lot_page(
    world: Any, client: FlaskClient, login: Any
) -> None:
    login(client, "distributor")  # M1's holder
    dashboard = client.get("/dashboard").get_data(as_text=True)
    row = dashboard[dashboard.index(">M1<") :][:600]
    assert "status-recalled" in row and "status-active" not in row
    assert "via <code>F1</code>" in row  # which lot's recall reached it
    page = client.get(f"/lots/{world.lot('M1')}").get_data(as_text=True)
    assert "status-recalled" in page
    assert "Ship to…" not in page and "Print labels" not in page and "Close lot" not in page
    inspector = login(client.application.test_client(), "inspector")
    found = inspector.get("/lots/search?q=M1").get_data(as_text=True)
    assert "status-recalled" in found and "status-active" not in found[found.index("<tbody>") :]


def test_shipping_a_recalled_mix_onward_is_refused_and_writes_nothing(
    world: Any, client: FlaskClient, login: Any, csrf: Any, counts: Any
) -> None:
    login(client, "distributor")
    before = counts()
    form = client.get(f"/lots/{world.lot('M1')}/ship")
    assert form.status_code == 409 and "recalled" in form.get_data(as_text=True)
    posted = client.post(
        f"/lots/{world.lot('M1')}/ship",
        data={
            "csrf_token": csrf(client),
            "to": str(world.org_ids["retailer"]),
            "kde.from_gln": world.sites["distributor"],
            "kde.to_gln": world.sites["retailer"],
            "kde.ship_date": "2026-11-08",
            "kde.reference_document_type": "bill of lading",
            "kde.reference_document_number": "B-RECALLED",
        },
        headers={"Accept": "application/json"},
    )
    assert posted.status_code == 409 and posted.get_json()["error"] == "lot_recalled"
    assert counts() == before


def test_the_recall_dropped_the_offer_to_the_retailer(world: Any, client: FlaskClient, login: Any) -> None:
    login(client, "retailer")
    inbox = client.get("/custody").get_data(as_text=True)
    assert ">M1<" not in inbox  # the recall withdrew the pending offer on chain
    refused = client.get(f"/custody/{world.lot('M1')}/accept", headers={"Accept": "application/json"})
    assert refused.status_code in (403, 404)
