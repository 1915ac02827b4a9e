"""Open data under /open/: valid JSON (matching the documented schemas) and Atom (RFC 4287), cacheable, small
counts suppressed - and no consortium or private fact in any of it.

The scenario is the module's own: three farms (so a statistics cell can reach the suppression threshold), a
processor, a carrier, a shop, a lab and a regulator, where every field that is not public, and everything
else private (user e-mails and names, token names, the organisations' keys, a suspension reason, quantities),
carries a unique marker. Every /open/ resource is then fetched and searched for every marker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import select

from app import create_app
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots, opendata, orgs, tokens
from supply_chain.services.demo import gln, gtin
from supply_chain.services.lots import NewLot
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up
from supply_chain.store.models import Event, Organisation

PUBLIC_URL = "https://open.lotline.example"
ATOM = "{http://www.w3.org/2005/Atom}"
QUANTITY = "4321.123"  # a quantity (consortium) no count or id can spell: it has a point
INPUT_QUANTITY = "12.345"

MARKERS = {
    "field_name": "MRK-FIELD-NAME",
    "container_name": "MRK-CONTAINER",
    "harvest_reference": "MRK-HARVEST-REFDOC",
    "note": "MRK-PRIVATE-NOTE",
    "price": "MRK-PRICE",
    "harvester": "MRK-HARVESTER-BUSINESS",
    "carrier": "MRK-CARRIER",
    "bill_of_lading": "MRK-BILL-OF-LADING",
    "inspector_name": "MRK-INSPECTOR-PERSON",
    "findings": "MRK-FINDINGS",
    "hold_reason": "MRK-HOLD-REASON",
    "release_reason": "MRK-RELEASE-REASON",
    "reject_reason": "MRK-REJECT-REASON",
    "observation": "MRK-OBSERVATION",
    "sensor": "MRK-SENSOR-ID",
    "token": "MRK-TOKEN-NAME",
    "user_name": "MRK-USER-DISPLAY",
    "email": "mrk-user-email",
    "suspension": "MRK-SUSPENSION-REASON",
    "category": "mrk-single-maker-category",  # public, but one maker's: its counts must be suppressed
}
def _build(home: Path) -> dict[str, Any]:
    today = datetime.now(UTC).date().isoformat()  # taken when the data is written, not at import (midnight)
    settings = Settings.from_env(env={"LOTLINE_PUBLIC_URL": PUBLIC_URL}, home=home, secret_key="open-data-secret")
    runtime = Runtime(settings)
    catch_up(runtime)
    with runtime.ctx() as ctx:
        regulator = orgs.onboard(ctx, None, "Open Regulator", ["regulator", "admin"])
        o: dict[str, Organisation] = {"regulator": regulator}
        site: dict[str, str] = {}
        specs = {
            "farm1": ("Open Farm One", "producer", "0710001", "farm"),
            "farm2": ("Open Farm Two", "producer", "0710002", "farm"),
            "farm3": ("Open Farm Three", "producer", "0710003", "farm"),
            "processor": ("Open Processor", "processor", "0710004", "plant"),
            "carrier": ("Open Carrier", "distributor", "0710005", "warehouse"),
            "shop": ("Open Shop", "retailer", "0710006", "store"),
            "lab": ("Open Lab", "inspector", "0710007", "lab"),
        }
        for key, (name, role, prefix, kind) in specs.items():
            o[key] = orgs.onboard(ctx, regulator, name, [role], prefix)
            site[key] = orgs.register_location(
                ctx, o[key], gln(prefix, "00001"), f"{name} site", None, 36.5, -121.5, kind
            ).gln
        for key, org in o.items():
            orgs.add_user(
                ctx,
                org,
                f"{key}-{MARKERS['email']}@test.lotline",
                f"{MARKERS['user_name']} {key}",
                "correct horse battery",
            )
            tokens.create(ctx, org, f"{MARKERS['token']} {key}", "read")
        lettuce = {
            key: orgs.register_product(
                ctx, o[key], gtin(specs[key][2], "00001"), f"Lettuce of {key}", "leafy greens", True, "kg",
                commodity="lettuce",
            ).gtin
            for key in ("farm1", "farm2", "farm3")
        }  # fmt: skip
        mix = orgs.register_product(ctx, o["processor"], gtin("0710004", "00001"), "Open mix", MARKERS["category"]).gtin
        ctx.session.commit()

        def ship(lot: Any, src: str, dst: str) -> None:
            lots.offer_custody(
                ctx, o[src], lot, o[dst],
                {
                    "from_gln": site[src], "to_gln": site[dst], "ship_date": today,
                    "reference_document_type": "bill of lading",
                    "reference_document_number": MARKERS["bill_of_lading"], "carrier": MARKERS["carrier"],
                },
            )  # fmt: skip

        def receive(lot: Any, src: str, dst: str) -> None:
            lots.accept_custody(
                ctx, o[dst], lot,
                {
                    "from_gln": site[src], "to_gln": site[dst], "receive_date": today,
                    "reference_document_type": "bill of lading",
                    "reference_document_number": MARKERS["bill_of_lading"],
                },
            )  # fmt: skip

        farm_lots = {}
        for key in ("farm1", "farm2", "farm3"):
            lot = lots.create_lot(
                ctx, o[key], lettuce[key], f"OPEN-{key.upper()}", EventKind.HARVESTING,
                {
                    "location_gln": site[key], "harvest_date": today, "field_name": MARKERS["field_name"],
                    "container_name": MARKERS["container_name"],
                    "reference_document_type": "harvest log",
                    "reference_document_number": MARKERS["harvest_reference"],
                    "immediate_subsequent_recipient_gln": site["processor"],
                    "notes": MARKERS["note"], "price": MARKERS["price"],
                },
                QUANTITY, "kg",
            )  # fmt: skip
            lots.record_events(
                ctx, o[key], lot,
                [
                    (EventKind.INITIAL_PACKING, {
                        "location_gln": site[key], "packing_date": today,
                        "harvester_business_name": MARKERS["harvester"],
                    }),
                    (EventKind.OBSERVATION, {"note": MARKERS["observation"], "date": today}),
                ],
            )  # fmt: skip
            lots.inspect(
                ctx, o["lab"], lot, "pass",
                {
                    "inspection_date": today, "inspector_name": MARKERS["inspector_name"],
                    "inspection_body": "Open Lab", "findings": MARKERS["findings"],
                },
            )  # fmt: skip
            farm_lots[key] = lot
        spare = lots.create_lot(
            ctx, o["farm3"], lettuce["farm3"], "OPEN-SPARE", EventKind.HARVESTING,
            {"location_gln": site["farm3"], "harvest_date": today}, "10", "kg",
        )  # fmt: skip
        lots.hold(ctx, o["lab"], spare, MARKERS["hold_reason"], today)
        lots.release(ctx, o["lab"], spare, MARKERS["release_reason"], today)
        ship(spare, "farm3", "shop")
        lots.reject_custody(ctx, o["shop"], spare, MARKERS["reject_reason"], today)
        for key in ("farm1", "farm2"):
            ship(farm_lots[key], key, "processor")
            receive(farm_lots[key], key, "processor")
        (mixed,) = lots.transform(
            ctx, o["processor"],
            [NewLot(mix, "OPEN-MIX", "20", "kg", [(farm_lots["farm1"], INPUT_QUANTITY), (farm_lots["farm2"], "5")])],
            site["processor"], today,
        )  # fmt: skip
        ship(mixed, "processor", "carrier")
        receive(mixed, "processor", "carrier")
        lots.anchor_readings(
            ctx, o["carrier"], mixed,
            [{"taken_at": datetime.now(UTC).replace(microsecond=0).isoformat(), "temperature_c": "3"}],
            sensor_id=MARKERS["sensor"], location_gln=site["carrier"],
        )  # fmt: skip
        lots.recall(
            ctx, regulator, farm_lots["farm1"], "Listeria monocytogenes", "I",
            "Do not eat; return it to the store.", today, "recalls@open.example",
        )  # fmt: skip
        orgs.suspend(ctx, regulator, o["shop"], MARKERS["suspension"])
        ctx.session.commit()
        keys = [org.encrypted_key for org in ctx.session.scalars(select(Organisation))]
        stored = json.dumps([e.payload for e in ctx.session.scalars(select(Event))])
    return {"runtime": runtime, "keys": keys, "stored_payloads": stored, "today": today}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    built = _build(tmp_path_factory.mktemp("open-data-home"))
    try:
        yield built
    finally:
        built["runtime"].close()


@pytest.fixture(scope="module")
def open_app(scenario: dict[str, Any]) -> Flask:
    return create_app({"RUNTIME": scenario["runtime"], "TESTING": True})


@pytest.fixture
def anon(open_app: Flask) -> FlaskClient:
    return open_app.test_client()


RESOURCES = [
    "/open/",
    "/open/recalls.json",
    "/open/recalls.atom",
    "/open/statistics.json",
    *(f"/open/statistics/{t}.csv" for t in opendata.TABLES),
    "/open/schema/recalls.json",
    "/open/schema/statistics.json",
]


def test_every_open_resource_answers_without_sign_in_with_its_content_type(anon: FlaskClient) -> None:
    expected = {".json": "application/json", ".atom": "application/atom+xml", ".csv": "text/csv", "/": "text/html"}
    for path in RESOURCES:
        response = anon.get(path)
        assert response.status_code == 200, path
        suffix = next(s for s in expected if path.endswith(s))
        mimetype = "application/schema+json" if "/schema/" in path else expected[suffix]
        assert response.mimetype == mimetype, path
    assert anon.get("/open/statistics/secrets.csv").status_code == 404
    assert anon.get("/open/statistics/lots.csv").headers["Content-Type"] == "text/csv; charset=utf-8; header=present"


def test_no_consortium_or_private_value_appears_in_any_open_resource(
    anon: FlaskClient, scenario: dict[str, Any]
) -> None:
    stored = scenario["stored_payloads"]
    # The markers were really written (else this test could not fail) ...
    for key in ("field_name", "carrier", "bill_of_lading", "findings", "inspector_name", "hold_reason", "note"):
        assert MARKERS[key] in stored, key
    assert QUANTITY in stored and INPUT_QUANTITY in stored
    # ... and no /open/ resource carries any of them, nor an organisation's key.
    secrets = [*MARKERS.values(), QUANTITY, INPUT_QUANTITY, *(k[40:80] for k in scenario["keys"])]
    for path in RESOURCES:
        body = anon.get(path).get_data(as_text=True)
        for secret in secrets:
            assert secret.lower() not in body.lower(), f"{secret!r} in {path}"


def test_recalls_json_matches_its_schema_and_names_the_lots_the_recall_reached(anon: FlaskClient) -> None:
    response = anon.get("/open/recalls.json")
    data = json.loads(response.get_data(as_text=True))
    schema = anon.get("/open/schema/recalls.json").json
    jsonschema.validate(data, schema, format_checker=jsonschema.FormatChecker())
    (recall,) = data["recalls"]
    assert recall["recall_class"] == "I" and recall["reason"] == "Listeria monocytogenes"
    assert (
        recall["instructions"] == "Do not eat; return it to the store." and recall["contact"] == "recalls@open.example"
    )
    assert recall["lot"]["lot_code"] == "OPEN-FARM1" and recall["producer"] == "Open Farm One"
    assert recall["lot"]["digital_link"].startswith(PUBLIC_URL + "/01/")
    assert [lot["lot_code"] for lot in recall["reached_lots"]] == ["OPEN-MIX"]
    assert recall["status"] == "active" and recall["id"].startswith("urn:uuid:")


def test_recalls_atom_is_rfc_4287_with_stable_ids(anon: FlaskClient) -> None:
    first = anon.get("/open/recalls.atom")
    root = ET.fromstring(first.data)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    assert root.find(f"{ATOM}author/{ATOM}name").text
    self_link = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert self_link and self_link[0].get("href") == PUBLIC_URL + "/open/recalls.atom"
    assert root.find(f"{ATOM}id").text.startswith("urn:uuid:")
    datetime.fromisoformat(root.find(f"{ATOM}updated").text.replace("Z", "+00:00"))
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == 1
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert entry.find(f"{ATOM}{name}") is not None, name
        assert entry.find(f"{ATOM}summary") is not None or entry.find(f"{ATOM}content") is not None
        assert entry.find(f"{ATOM}id").text.startswith("urn:uuid:")
        alternate = entry.find(f"{ATOM}link[@rel='alternate']")
        assert alternate is not None and "/01/" in alternate.get("href")
        assert "Do not eat; return it to the store." in entry.find(f"{ATOM}content").text
        assert "OPEN-MIX" in entry.find(f"{ATOM}content").text
    ids = [e.find(f"{ATOM}id").text for e in entries]
    again = ET.fromstring(anon.get("/open/recalls.atom").data)
    assert [e.find(f"{ATOM}id").text for e in again.findall(f"{ATOM}entry")] == ids
    json_ids = [r["id"] for r in anon.get("/open/recalls.json").json["recalls"]]
    assert json_ids == ids


def test_statistics_match_their_schema_and_suppress_small_cells(anon: FlaskClient, scenario: dict[str, Any]) -> None:
    data = anon.get("/open/statistics.json").json
    jsonschema.validate(data, anon.get("/open/schema/statistics.json").json, format_checker=jsonschema.FormatChecker())
    month = scenario["today"][:7]
    tables = data["tables"]
    # three farms' lettuce passed inspection this month: 3 records of 3 organisations, published
    assert {"month": month, "commodity": "lettuce", "outcome": "pass", "count": 3} in tables["inspections"]["rows"]
    assert {"month": month, "commodity": "lettuce", "count": 4} in tables["lots"]["rows"]
    # the mix is one maker's only: its lot count is left out, and said to be
    assert all(row["commodity"] != MARKERS["category"] for row in tables["lots"]["rows"])
    assert tables["lots"]["suppressed_cells"] == 1
    assert tables["recalls"]["rows"] == [{"month": month, "recall_class": "I", "count": 1}]
    assert data["suppression"] == {
        "min_count": opendata.MIN_COUNT,
        "min_organisations": opendata.MIN_ORGANISATIONS,
        "rule": opendata.SUPPRESSION_RULE,
    }
    csv_text = anon.get("/open/statistics/inspections.csv").get_data(as_text=True)
    assert csv_text.splitlines() == ["month,commodity,outcome,count", f"{month},lettuce,pass,3"]


@pytest.mark.parametrize(
    ("count", "organisations", "published"),
    [(2, 2, False), (3, 2, False), (2, 3, False), (3, 3, True), (10, 1, False)],
)
def test_the_suppression_rule_needs_three_records_of_three_organisations(
    count: int, organisations: int, published: bool
) -> None:
    assert opendata.publishable(count, organisations) is published


def test_open_resources_are_cacheable_and_answer_304_when_unchanged(anon: FlaskClient) -> None:
    for path in ("/open/recalls.json", "/open/recalls.atom", "/open/statistics.json", "/open/statistics/lots.csv"):
        first = anon.get(path)
        assert first.headers["Cache-Control"].startswith("public")
        assert first.headers["Access-Control-Allow-Origin"] == "*"
        etag = first.headers["ETag"]
        again = anon.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.data == b"", path
    recalls = anon.get("/open/recalls.json")
    assert recalls.headers["Last-Modified"]
    since = anon.get("/open/recalls.atom", headers={"If-Modified-Since": recalls.headers["Last-Modified"]})
    assert since.status_code == 304


def test_public_pages_link_the_open_data_and_announce_the_feed(anon: FlaskClient) -> None:
    page = anon.get("/lookup").get_data(as_text=True)
    assert 'href="/open/"' in page and 'href="/open/recalls.atom"' in page
    assert 'rel="alternate" type="application/atom+xml"' in page
    index = anon.get("/open/").get_data(as_text=True)
    assert "OPEN-FARM1" in index and "Do not eat; return it to the store." in index
    assert str(escape(opendata.SUPPRESSION_RULE)) in index
