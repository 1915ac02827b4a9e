"""The consumer page behind the QR code: what a shopper sees, without signing in."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

# "Block N · transaction 0x..." in "How we know", the two words linked to the glossary
BLOCK_AND_TRANSACTION = (
    r'(<a href="/glossary#block">)?Block(</a>)? \d+ · (<a href="/glossary#transaction">)?transaction(</a>)? '
    r'<code title="0x[0-9a-f]{64}"'
)


def _url(world: Any, key: str, gtin: str | None = None) -> str:
    g, code = world.labels[key]
    return f"/01/{gtin or g}/10/{quote(code, safe='')}"


def _top(page: str) -> str:
    """The part of a consumer page a shopper reads first: everything in <main> above "How we know"."""
    return page[page.index("<main") : page.index('<details class="how-we-know')]


def _how_we_know(page: str) -> str:
    return page[page.index('<details class="how-we-know') : page.index("</main>")]


@pytest.fixture(scope="module")
def public(make_app: Any) -> FlaskClient:
    return make_app().test_client()


@pytest.fixture(scope="module")
def mix_page(public: FlaskClient, world: Any) -> str:
    response = public.get(_url(world, "M1"))
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def test_derived_lot_of_a_recalled_farm_lot_says_do_not_eat_right_under_its_title(mix_page: str) -> None:
    top = _top(mix_page)
    h1, banner = top.index("<h1>"), top.index('<section class="recall-banner" aria-labelledby="recall-title">')
    assert h1 < banner  # the page's own heading first, then the recall as a region with its own h2
    assert not re.search(r"<h[1-6]", top[:h1])
    assert re.search(r'<h2 id="recall-title">.*Do not eat: recalled</h2>', top)
    assert top[h1:banner].count("<") <= 12, "nothing but the product line between the title and the recall"
    assert "Class I recall" in top and "Listeria monocytogenes" in top
    assert "Do not eat; return it to the store." in top
    assert "Made from Test lettuce lot <strong>F1</strong>, which has been recalled." in top


def test_recalled_or_held_lot_shows_no_verified_badge_or_green_check_above_how_we_know(
    public: FlaskClient, world: Any
) -> None:
    for key in ("M1", "F1", "H1"):
        page = public.get(_url(world, key)).get_data(as_text=True)
        top = _top(page)
        assert "recall-banner" in top or "hold-notice" in top, key
        for green in ("Verified", "verified", "✔", "state-verified"):
            assert green not in top, (key, green)
        assert "Verified journey" in _how_we_know(page), key  # the check moved, it did not disappear
        assert '<details class="how-we-know quiet"' in page, key  # and is not green there either


def test_top_part_names_no_block_transaction_or_hash(public: FlaskClient, world: Any) -> None:
    for key in ("M1", "F2"):
        page = public.get(_url(world, key)).get_data(as_text=True)
        top = _top(page)
        for chain_word in ("Block", "block", "transaction", "0x", "hash", "ledger contract"):
            assert chain_word not in top, (key, chain_word)
        details = _how_we_know(page)
        assert re.search(BLOCK_AND_TRANSACTION, details)
        assert "Head hash" in details and "Lot id" in details and "Accept: application/json" in details


def test_top_part_answers_first_what_where_when_and_who(mix_page: str, public: FlaskClient, world: Any) -> None:
    top = _top(mix_page)
    assert "Test salad mix" in top and "by <strong>Test Processor</strong>" in top
    assert re.search(r"Test lettuce at Test Farm site, harvested <time datetime=\"2026-11-01\">Nov 1, 2026</time>", top)
    assert re.search(r"<dt>Packed</dt><dd><time datetime=\"2026-11-\d\d\">", top)
    # the journey: one line per step, what, where and when; the ingredients' steps folded
    assert '<details class="ingredient-journey">' in top and "Earlier:" in top
    assert re.search(r'<li class="step kind-transformation"><time datetime="2026-11-\d\d">Nov \d+</time>', top)
    fine = _top(public.get(_url(world, "F2")).get_data(as_text=True))
    assert "<strong>Fine:</strong> no recall and no hold" in fine and "Do not eat" not in fine
    assert "Verified journey" in fine  # a lot with no recall or hold may show its check at the top


def test_consumer_page_shows_product_producer_origin_and_the_verified_journey(mix_page: str) -> None:
    assert "Test salad mix" in mix_page and "by <strong>Test Processor</strong>" in mix_page
    assert "Test Farm site" in mix_page and "2026-11-01" in mix_page  # the farm and harvest date of the ingredient
    assert "Verified journey" in _how_we_know(mix_page)
    for step in (
        "Harvested",
        "Cooled",
        "Shipped",
        "Received",
        "Made from other lots",
        "Cold-chain readings",
        "Inspected",
    ):
        assert step in mix_page
    assert re.search(BLOCK_AND_TRANSACTION, mix_page)


def test_consumer_page_shows_inspection_certificate_hash_cold_chain_and_compliance(mix_page: str, world: Any) -> None:
    with world.runtime.ctx() as ctx:
        from supply_chain.store.models import Document

        sha = ctx.session.get(Document, world.document_id).sha256
    assert "ISO 6579-1" in mix_page and sha in mix_page
    assert "6 temperature readings on Nov 5, 2026" in mix_page and "2 °C to 4 °C" in mix_page
    # the recall of F1 reached the mix through an ingredient: counted apart from recalls of its own lots
    assert re.search(
        r"Compliance record of Test Processor: \d+ lots?; inspections: 0 passed, 0 failed; 0 holds; "
        r"0 recalls of its own lots; [1-9]\d* recalls? reached it through an ingredient or stock\.",
        mix_page,
    )


def test_consumer_page_never_shows_consortium_or_private_fields(public: FlaskClient, world: Any) -> None:
    for key in ("M1", "F1"):
        page = public.get(_url(world, key)).get_data(as_text=True)
        json = public.get(_url(world, key), headers={"Accept": "application/json"}).get_data(as_text=True)
        for value in (*world.consortium_values, *world.private_values, "LOGGER-SECRET"):
            assert value not in page
            assert value not in json
        assert "Quantity" not in page  # quantities are consortium data


def test_json_variant_carries_the_same_content(public: FlaskClient, world: Any) -> None:
    response = public.get(_url(world, "M1"), headers={"Accept": "application/json"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.json
    assert data["product"]["name"] == "Test salad mix" and data["producer"]["name"] == "Test Processor"
    assert data["state"] == "verified"
    assert data["recalls"][0]["lot"]["lot_code"] == "F1" and data["recalls"][0]["recall_class"] == "I"
    assert data["lot"]["digital_link"] == f"https://trace.lotline.example{_url(world, 'M1')}"
    assert {o["lot"]["lot_code"] for o in data["origin"]} == {"F1", "F3"}
    assert all(step["tx_hash"] and step["block_number"] for step in data["journey"])
    assert data["cold_chain"]["readings"] == 6
    assert "summary" in data["compliance"]
    # added for the shopper's page: the verdict, what it is, where it was made, the journey by lot, the ledger
    assert data["verdict"] == "do_not_eat" and data["product"]["maker"] == "Test Processor"
    assert data["made"]["label"] == "Packed" and data["made"]["by"] == "Test Processor"
    assert data["ledger"]["head_hash"].startswith("0x") and data["ledger"]["event_count"] >= 1


def test_held_lot_shows_an_amber_notice_and_no_recall(public: FlaskClient, world: Any) -> None:
    page = public.get(_url(world, "H1")).get_data(as_text=True)
    assert 'class="hold-notice"' in page and "On hold since Nov 6, 2026" in page
    assert "Not for sale: on hold" in _top(page)
    assert "recall-banner" not in page
    assert "suspected contamination" not in page  # the hold reason is consortium data


def test_lot_not_yet_verified_shows_pending_never_verified(public: FlaskClient, world: Any) -> None:
    page = public.get(_url(world, "P1")).get_data(as_text=True)
    assert "Pending verification" in page and "Verified journey" not in page


def test_any_gtin_length_is_accepted_and_normalised(public: FlaskClient, world: Any) -> None:
    gtin14, _ = world.labels["F2"]
    assert gtin14.startswith("0")
    response = public.get(_url(world, "F2", gtin=gtin14[1:]))  # the GTIN-13 form
    assert response.status_code == 200
    assert f"<code>{gtin14}</code>" in response.get_data(as_text=True)


def test_percent_encoded_lot_code_is_found(public: FlaskClient, world: Any) -> None:
    url = _url(world, "TR/7%x")
    assert "%2F" in url and "%25" in url
    response = public.get(url)
    assert response.status_code == 200
    assert "<code>TR/7%x</code>" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/01/00700001000012/10/F1", 400, "product number (GTIN) is not valid"),  # wrong check digit
        ("/01/0070000100001X/10/F1", 400, "product number (GTIN) is not valid"),
        ("/01/00700001000015/10/F%231", 400, "lot code is not valid"),  # '#' is not in GS1 set 82
        ("/01/00700001000015/10/ABCDEFGHIJKLMNOPQRSTU", 400, "lot code is not valid"),  # 21 characters
        ("/01/00700001000015/10/NO-SUCH-LOT", 404, "We have no record of this lot"),
    ],
)
def test_bad_or_unknown_labels_get_a_friendly_page_that_says_which(
    public: FlaskClient, world: Any, path: str, status: int, says: str
) -> None:
    assert world.labels["F1"][0] == "00700001000015"
    response = public.get(path)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert says in page and "Traceback" not in page


def test_bad_label_as_json_names_the_field(public: FlaskClient) -> None:
    response = public.get("/01/00700001000012/10/F1", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.json["field"] == "gtin" and response.json["error"] == "invalid_gtin"


def test_consumer_page_needs_no_javascript(mix_page: str) -> None:
    assert "<script" not in mix_page and " style=" not in mix_page and "onclick" not in mix_page.lower()


def test_lookup_form_redirects_to_the_digital_link(public: FlaskClient, world: Any) -> None:
    gtin14, code = world.labels["F2"]
    response = public.get(f"/lookup?gtin={gtin14[1:]}&lot={code}")
    assert response.status_code == 302 and response.headers["Location"] == f"/01/{gtin14}/10/{code}"
    bad = public.get("/lookup?gtin=123&lot=F2")
    assert bad.status_code == 400 and "Please correct the GTIN" in bad.get_data(as_text=True)


def test_altered_record_shows_tampered_and_names_no_false_verification(public: FlaskClient, world: Any) -> None:
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Organisation

    with world.runtime.ctx() as ctx:
        farm = ctx.session.get(Organisation, world.org_ids["producer"])
        lot = lots.create_lot(
            ctx,
            farm,
            world.gtins["lettuce"],
            "TAMPER-1",
            EventKind.HARVESTING,
            {"location_gln": world.sites["producer"], "harvest_date": "2026-11-01", "commodity": "lettuce"},
            "10",
            "kg",
        )
        event = lot.events[0]
        event.payload = dict(event.payload) | {"commodity": "organic lettuce"}  # edited behind the chain's back
        ctx.session.flush()
        assert verify_lot(ctx, lot).state == "tampered"
        gtin = lot.gtin
    page = public.get(f"/01/{gtin}/10/TAMPER-1").get_data(as_text=True)
    assert "Warning: this record was altered" in page
    assert "Record does not match the chain" in page
    assert "Verified journey" not in page


def test_consumer_page_reads_the_store_only_never_the_chain(
    public: FlaskClient, world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def untouchable(_self: Any) -> Any:
        raise AssertionError("the consumer page asked the chain")

    monkeypatch.setattr(type(world.runtime), "ledger", property(untouchable))
    monkeypatch.setattr(type(world.runtime), "chain", property(untouchable))
    for key in ("M1", "F1", "H1"):
        assert public.get(_url(world, key)).status_code == 200
        assert public.get(_url(world, key), headers={"Accept": "application/json"}).status_code == 200
        assert public.get(_url(world, key) + "/qr.png").status_code == 200


# ------------------------------------------------------------------ state checked, not only hashes


def _sql(world: Any, statement: str, **params: Any) -> None:
    from sqlalchemy import text

    with world.runtime.engine.begin() as conn:
        conn.execute(text(statement), params)


def _org(ctx: Any, world: Any, key: str) -> Any:
    from supply_chain.store.models import Organisation

    return ctx.session.get(Organisation, world.org_ids[key])


def _harvest(ctx: Any, world: Any, code: str) -> Any:
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots

    return lots.create_lot(
        ctx,
        _org(ctx, world, "producer"),
        world.gtins["lettuce"],
        code,
        EventKind.HARVESTING,
        {"location_gln": world.sites["producer"], "harvest_date": "2026-11-01", "commodity": "lettuce"},
        "10",
        "kg",
    )


def _verify(world: Any, *lot_ids: int) -> list[Any]:
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Lot

    with world.runtime.ctx() as ctx:
        return [verify_lot(ctx, ctx.session.get(Lot, pk)) for pk in lot_ids]


def _page(public: FlaskClient, gtin: str, code: str) -> tuple[str, dict[str, Any]]:
    path = f"/01/{gtin}/10/{quote(code, safe='')}"
    html = public.get(path).get_data(as_text=True)
    data = public.get(path, headers={"Accept": "application/json"}).json
    return html, data


def test_recall_stays_on_the_page_after_sql_reactivates_the_lot_and_deletes_its_recall_row(
    public: FlaskClient, world: Any
) -> None:
    from supply_chain.services import lots

    with world.runtime.ctx() as ctx:
        lot = _harvest(ctx, world, "RSQL-1")
        lots.recall(ctx, _org(ctx, world, "regulator"), lot, "Salmonella", "I", "Throw it away.", "2026-11-08")
        pk, gtin = lot.id, lot.gtin
    assert _verify(world, pk)[0].state == "verified"
    html, data = _page(public, gtin, "RSQL-1")
    assert "Verified journey" in _how_we_know(html) and "Verified" not in _top(html)
    assert "Salmonella" in html and data["lot"]["status"] == "recalled"

    _sql(world, "UPDATE lots SET status = 'active' WHERE id = :pk", pk=pk)
    _sql(world, "DELETE FROM recalls WHERE lot_id = :pk", pk=pk)
    (result,) = _verify(world, pk)
    assert result.state == "tampered"
    assert "stored status 'active' differs from the chain's 'recalled'" in result.detail
    assert "('Salmonella') is missing from the stored recalls" in result.detail

    html, data = _page(public, gtin, "RSQL-1")
    assert html.index("<h1>") < html.index('class="recall-banner"') < html.index('class="how-we-know')
    assert "Class I recall of Nov 8, 2026:</strong> Salmonella" in html and "Throw it away." in html
    assert "Verified journey" not in html and "Warning: this record was altered" in html
    assert data["state"] == "tampered"
    assert [(r["reason"], r["recall_class"], r["this_lot"]) for r in data["recalls"]] == [("Salmonella", "I", True)]


def test_recall_reaching_a_derived_lot_names_its_source_and_survives_a_deleted_lineage_row(
    public: FlaskClient, world: Any
) -> None:
    from supply_chain.services import lots
    from supply_chain.services.lots import NewLot

    with world.runtime.ctx() as ctx:
        farm_lot = _harvest(ctx, world, "RSRC-1")
        offer = {
            "from_gln": world.sites["producer"],
            "to_gln": world.sites["processor"],
            "reference_document_type": "bill of lading",
            "reference_document_number": "BOL-9",
        }
        processor = _org(ctx, world, "processor")
        lots.offer_custody(ctx, _org(ctx, world, "producer"), farm_lot, processor, offer | {"ship_date": "2026-11-03"})
        lots.accept_custody(ctx, processor, farm_lot, offer | {"receive_date": "2026-11-04"})
        (mix,) = lots.transform(
            ctx,
            processor,
            [NewLot(world.gtins["mix"], "RMIX-1", "5", "kg", [(farm_lot, "5")])],
            world.sites["processor"],
            "2026-11-05",
        )
        lots.recall(ctx, _org(ctx, world, "regulator"), farm_lot, "E. coli O157:H7", "I", "Do not eat.", "2026-11-09")
        ids, gtin = (farm_lot.id, mix.id), mix.gtin
    assert [r.state for r in _verify(world, *ids)] == ["verified", "verified"]

    html, data = _page(public, gtin, "RMIX-1")
    assert "Verified journey" in _how_we_know(html)
    assert "Made from Test lettuce lot <strong>RSRC-1</strong>, which has been recalled." in _top(html)
    (row,) = data["recalls"]  # its own recall event and the source's are one recall, shown once
    assert row["via"]["lot_code"] == "RSRC-1" and row["this_lot_recalled"] and not row["this_lot"]
    assert row["reason"] == "E. coli O157:H7" and row["issued_by"] == "Test Regulator"

    _sql(world, "DELETE FROM lot_inputs WHERE output_lot_id = :pk", pk=ids[1])
    (result,) = _verify(world, ids[1])
    assert result.state == "tampered" and "stored input lots [] differ from the chain's [" in result.detail
    html, data = _page(public, gtin, "RMIX-1")
    assert "Verified journey" not in html and "Warning: this record was altered" in html
    assert "E. coli O157:H7" in html and "lot <strong>RSRC-1</strong>, which has been recalled" in html
    assert [r["via"]["lot_code"] for r in data["recalls"]] == ["RSRC-1"] and data["state"] == "tampered"


def test_hold_stays_on_the_page_after_sql_reactivates_the_lot(public: FlaskClient, world: Any) -> None:
    from supply_chain.services import lots

    with world.runtime.ctx() as ctx:
        lot = _harvest(ctx, world, "HSQL-1")
        lots.hold(ctx, _org(ctx, world, "inspector"), lot, "suspected contamination", "2026-11-10")
        pk, gtin = lot.id, lot.gtin
    assert _verify(world, pk)[0].state == "verified"
    _sql(world, "UPDATE lots SET status = 'active' WHERE id = :pk", pk=pk)
    (result,) = _verify(world, pk)
    assert result.state == "tampered" and "stored status 'active' differs from the chain's 'held'" in result.detail
    html, data = _page(public, gtin, "HSQL-1")
    assert 'class="hold-notice"' in html and "On hold since Nov 10, 2026" in html
    assert data["hold"]["since"] == "2026-11-10"
    assert "Verified journey" not in html and data["state"] == "tampered"


def test_pages_say_how_long_ago_the_record_was_checked(
    public: FlaskClient, world: Any, make_app: Any, login: Any
) -> None:
    from datetime import UTC, datetime, timedelta

    with world.runtime.ctx() as ctx:
        lot = _harvest(ctx, world, "AGE-1")
        pk, gtin = lot.id, lot.gtin
    _verify(world, pk)
    html, data = _page(public, gtin, "AGE-1")
    assert data["verified_ago"] == "checked just now" and "Last checked just now" in html

    checked = datetime.now(UTC) - timedelta(hours=2, minutes=5)
    _sql(world, "UPDATE events SET confirmed_at = :at WHERE lot_id = :pk", at=checked - timedelta(hours=1), pk=pk)
    _sql(world, "UPDATE lots SET verified_at = :at WHERE id = :pk", at=checked, pk=pk)
    html, data = _page(public, gtin, "AGE-1")
    assert data["state"] == "verified" and data["verified_ago"] == "checked 2 hours ago"
    assert datetime.fromisoformat(data["verified_at"]) == checked
    assert "Last checked 2 hours ago" in html
    participant = login(make_app().test_client(), "producer").get(f"/lots/{pk}").get_data(as_text=True)
    assert "(checked 2 hours ago)" in participant

    _, unchecked = _page(public, *world.labels["P1"])
    assert unchecked["state"] == "pending" and unchecked["verified_at"] is None and unchecked["verified_ago"] is None


# ------------------------------------------------------------------ a link that names no lot


def test_gtin_alone_shows_the_product_and_asks_for_the_lot_code(public: FlaskClient, world: Any) -> None:
    gtin14 = world.gtins["mix"]
    for path in (f"/01/{gtin14}", f"/01/{gtin14[1:]}"):  # any GTIN length
        response = public.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        assert "<h1>Test salad mix</h1>" in page and "by <strong>Test Processor</strong>" in page
        assert '<form class="scan-form card" method="get" action="/lookup">' in page
        assert f'<input type="hidden" name="gtin" value="{gtin14}">' in page
        assert "Enter the lot code printed next to the date" in page
    data = public.get(f"/01/{gtin14}", headers={"Accept": "application/json"}).json
    assert data["product"] == data["product"] | {"name": "Test salad mix", "gtin": gtin14, "maker": "Test Processor"}
    # the form's answer goes to the lot's page
    code = world.labels["M1"][1]
    response = public.get(f"/lookup?gtin={gtin14}&lot={quote(code)}")
    assert response.status_code == 302 and response.headers["Location"] == _url(world, "M1")


def test_unknown_lot_of_a_known_product_shows_the_product_and_the_prompt(public: FlaskClient, world: Any) -> None:
    response = public.get(f"/01/{world.gtins['mix']}/10/NO-SUCH-LOT")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>Test salad mix</h1>" in page and "We have no record of this lot" in page
    assert "<code>NO-SUCH-LOT</code>" in page and "Enter the lot code printed next to the date" in page
    data = public.get(f"/01/{world.gtins['mix']}/10/NO-SUCH-LOT", headers={"Accept": "application/json"})
    assert data.status_code == 404 and data.json["error"] == "unknown_lot"
    assert data.json["product"]["name"] == "Test salad mix"


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/01/09506000134352", 404, "We do not know this product"),  # valid check digit, nobody's product
        ("/01/09506000134352/10/A1", 404, "We have no record of this lot"),
        ("/01/09506000134352/21/SN-1", 404, "We do not know this product"),
        ("/01/00700001000012", 400, "product number (GTIN) is not valid"),
    ],
)
def test_unknown_or_bad_gtin_without_a_lot_gets_a_page_in_words(
    public: FlaskClient, path: str, status: int, says: str
) -> None:
    response = public.get(path)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert says in page and "Traceback" not in page and "Not Found" not in page


def test_serialised_digital_link_shows_the_product_and_says_a_serial_names_no_lot(
    public: FlaskClient, world: Any
) -> None:
    response = public.get(f"/01/{world.gtins['lettuce']}/21/SN%2F0042")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Test lettuce</h1>" in page and "by <strong>Test Farm</strong>" in page
    assert "<code>SN/0042</code>" in page and "A serial number alone does not tell us which lot" in page
    assert "Enter the lot code printed next to the date" in page
    data = public.get(f"/01/{world.gtins['lettuce']}/21/SN-1", headers={"Accept": "application/json"}).json
    assert data["serial"] == "SN-1" and data["product"]["name"] == "Test lettuce"


def test_digital_link_with_lot_and_serial_opens_the_lots_page(public: FlaskClient, world: Any) -> None:
    gtin14, code = world.labels["F2"]
    plain = public.get(_url(world, "F2"), headers={"Accept": "application/json"}).json
    with_serial = public.get(f"{_url(world, 'F2')}/21/SN-0042", headers={"Accept": "application/json"})
    assert with_serial.status_code == 200, with_serial.json
    assert with_serial.json["serial"] == "SN-0042"
    assert with_serial.json["lot"] == plain["lot"]
    page = public.get(f"{_url(world, 'F2')}/21/SN-0042")
    assert page.status_code == 200 and "We have no record of this lot" not in page.get_data(as_text=True)
    assert page.headers["Link"] == f'<{plain["lot"]["digital_link"]}>; rel="canonical"'
    unknown = public.get(f"/01/{gtin14}/10/NO-SUCH/21/SN-1")
    assert unknown.status_code == 404 and "We have no record of this lot" in unknown.get_data(as_text=True)
