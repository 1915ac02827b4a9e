"""The scan page's cache (issue 11): pages kept under the version of the lot's lineage, with an ETag. A new
event, a hold, a recall and a verification finding on an ancestor each show on the very next request, in every
server process (two apps here, each with its own cache, over one store), and a browser that revalidates with
a current ETag gets a 304."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.public.page_cache import PageCache
from supply_chain.domain.errors import InvalidInput
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots
from supply_chain.services.lots import NewLot
from supply_chain.services.runtime import Settings
from supply_chain.services.verify import Verification, store_result, verify_lot
from supply_chain.store.models import Lot, Organisation

_codes = itertools.count(1)


def _lineage(world: Any) -> dict[str, Any]:
    """A farm lot received by the processor and made into a mix, both verified."""
    n = next(_codes)
    with world.runtime.ctx() as ctx:
        o = {key: ctx.session.get(Organisation, pk) for key, pk in world.org_ids.items()}
        s = world.sites
        farm = lots.create_lot(
            ctx,
            o["producer"],
            world.gtins["lettuce"],
            f"SC-F{n}",
            EventKind.HARVESTING,
            {"location_gln": s["producer"], "harvest_date": "2026-11-01", "commodity": "lettuce"},
            "100",
            "kg",
        )
        doc = {"reference_document_type": "bill of lading", "reference_document_number": f"BOL-SC-{n}"}
        where = {"from_gln": s["producer"], "to_gln": s["processor"]}
        lots.offer_custody(ctx, o["producer"], farm, o["processor"], where | {"ship_date": "2026-11-02"} | doc)
        lots.accept_custody(ctx, o["processor"], farm, where | {"receive_date": "2026-11-03"} | doc)
        (mix,) = lots.transform(
            ctx,
            o["processor"],
            [NewLot(world.gtins["mix"], f"SC-M{n}", "80", "kg", [(farm, "60")])],
            s["processor"],
            "2026-11-04",
        )
        verify_lot(ctx, farm)
        verify_lot(ctx, mix)
        ctx.session.commit()
        return {"farm": farm.id, "mix": mix.id, "path": f"/01/{mix.gtin}/10/{mix.lot_code}"}


def _change(world: Any, what: Any) -> None:
    with world.runtime.ctx() as ctx:
        o = {key: ctx.session.get(Organisation, pk) for key, pk in world.org_ids.items()}
        what(ctx, o)
        ctx.session.commit()


def _fresh(client: FlaskClient, path: str, etag: str) -> tuple[str, str]:
    """Revalidate with the ETag the browser holds: the page must have changed (200 and a new ETag)."""
    response = client.get(path, headers={"If-None-Match": f'"{etag}"'})
    assert response.status_code == 200, "a change was answered 304 (not modified)"
    new = response.headers["ETag"].strip('"')
    assert new != etag
    return response.get_data(as_text=True), new


def test_scan_page_answers_304_to_its_current_etag_and_asks_browsers_to_revalidate(make_app: Any, world: Any) -> None:
    app = make_app()
    client = app.test_client()
    path = _lineage(world)["path"]
    first = client.get(path)
    assert client.get(path).get_data() == first.get_data()
    assert app.extensions["scan_page_cache"].hits == 1  # the second request was served from the cache
    assert first.status_code == 200 and "Test salad mix" in first.get_data(as_text=True)
    etag = first.headers["ETag"]
    assert "no-cache" in first.headers["Cache-Control"] and "Accept-Language" in first.headers["Vary"]

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    # Another process (its own, empty cache) agrees on the ETag: the 304 needs no page built anywhere.
    assert make_app().test_client().get(path, headers={"If-None-Match": etag}).status_code == 304

    as_json = client.get(path, headers={"Accept": "application/json", "If-None-Match": etag})
    assert as_json.status_code == 200 and as_json.json["lot"]["lot_code"].startswith("SC-M")
    assert as_json.headers["ETag"] != etag
    assert (
        client.get(path, headers={"Accept": "application/json", "If-None-Match": as_json.headers["ETag"]}).status_code
        == 304
    )


def test_an_event_a_hold_a_recall_and_a_verification_finding_on_an_ancestor_show_on_the_very_next_request(
    make_app: Any, world: Any
) -> None:
    walk = _lineage(world)
    path = walk["path"]
    processes = [make_app().test_client(), make_app().test_client()]
    etags = []
    for client in processes:
        page = client.get(path)
        assert client.get(path).status_code == 200  # a second request is served from the cache
        assert "Fine:" in page.get_data(as_text=True) and "Observation" not in page.get_data(as_text=True)
        etags.append(page.headers["ETag"].strip('"'))

    def step(what: Any, shows: str) -> None:
        _change(world, what)
        for i, client in enumerate(processes):
            page, etags[i] = _fresh(client, path, etags[i])
            assert shows in page

    def observe(ctx: Any, o: dict[str, Organisation]) -> None:
        farm = ctx.session.get(Lot, walk["farm"])
        payload = {"note": "cooler checked", "date": "2026-11-05", "location_gln": world.sites["processor"]}
        lots.record_event(ctx, o["processor"], farm, EventKind.OBSERVATION, payload)

    step(observe, "Observation")
    step(
        lambda ctx, o: lots.hold(ctx, o["inspector"], ctx.session.get(Lot, walk["farm"]), "checks", "2026-11-06"),
        "Put on hold",
    )
    step(
        lambda ctx, o: lots.hold(ctx, o["inspector"], ctx.session.get(Lot, walk["mix"]), "checks", "2026-11-06"),
        "Not for sale: on hold",
    )
    step(
        lambda ctx, o: lots.recall(
            ctx, o["regulator"], ctx.session.get(Lot, walk["farm"]), "Listeria", "I", "Return it.", "2026-11-07"
        ),
        "Do not eat: recalled",
    )

    def tampered(ctx: Any, _o: dict[str, Organisation]) -> None:
        farm = ctx.session.get(Lot, walk["farm"])
        store_result(ctx, farm, Verification("tampered", "event #1 (harvesting, id 0) does not match", farm))

    step(tampered, "this record was altered")


INGREDIENTS = 50


def test_a_lot_of_50_ingredients_shows_one_summary_line_per_ingredient_and_its_own_steps_only(
    make_app: Any, world: Any
) -> None:
    """Each ingredient: product, lot code (a link to its own page, where its steps are), origin and status; the
    page lists the lot's own steps, not the 50 ingredients' (the JSON keeps every step for checking)."""
    n = next(_codes)
    with world.runtime.ctx() as ctx:
        o = {key: ctx.session.get(Organisation, pk) for key, pk in world.org_ids.items()}
        inputs = []
        for i in range(1, INGREDIENTS + 1):
            harvest = {"location_gln": world.sites["producer"], "harvest_date": "2026-11-01", "commodity": "lettuce"}
            lot = lots.create_lot(
                ctx, o["producer"], world.gtins["lettuce"], f"W{n}-{i:02d}", EventKind.HARVESTING, harvest, "10", "kg"
            )
            inputs.append((lot, "10"))
        (wide,) = lots.transform(
            ctx,
            o["producer"],
            [NewLot(world.gtins["lettuce"], f"W{n}-MIX", "500", "kg", inputs)],
            world.sites["producer"],
            "2026-11-02",
        )
        lots.hold(ctx, o["inspector"], inputs[6][0], "checks", "2026-11-03")
        ctx.session.commit()
        path, own_steps = f"/01/{wide.gtin}/10/{wide.lot_code}", len(wide.events)

    client = make_app().test_client()
    page = client.get(path).get_data(as_text=True)
    lines = page.split('<li class="ingredient ')[1:]
    assert len(lines) == INGREDIENTS
    for i, line in enumerate(lines, start=1):
        code = f"W{n}-{i:02d}"
        assert f"/01/{wide.gtin}/10/{code}" in line and f"<code>{code}</code>" in line
        assert "Test lettuce" in line and "Test Farm site" in line and "harvested Nov 1, 2026" in line
        assert ("On hold" if i == 7 else "No recall or hold") in line
    assert page.count('<li class="step ') == own_steps  # the ingredients' harvests are on their own pages
    assert page.count('<li><strong>') == own_steps  # "Each step on the ledger": this lot's steps only
    assert "(50 lots)" in page  # one "Grown" line for the farm, not fifty

    data = client.get(path, headers={"Accept": "application/json"}).json
    assert data["collapsed"] is True and len(data["journey"]) == own_steps + INGREDIENTS + 1  # + the hold


@pytest.mark.parametrize("value", ["many", "-1", "2.5"])
def test_a_scan_page_cache_size_that_is_not_a_whole_number_is_refused_naming_the_variable(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(InvalidInput, match="LOTLINE_SCAN_PAGE_CACHE must be a whole number of 0 or more"):
        Settings.from_env(env={"LOTLINE_SCAN_PAGE_CACHE": value}, home=tmp_path, secret_key="s")
    assert Settings.from_env(env={"LOTLINE_SCAN_PAGE_CACHE": "0"}, home=tmp_path, secret_key="s").scan_page_cache == 0


def test_with_the_cache_off_every_scan_builds_the_page_and_sends_no_etag(make_app: Any, world: Any) -> None:
    app = make_app()
    app.extensions["scan_page_cache"] = PageCache(0)
    client = app.test_client()
    path = "/01/{}/10/{}".format(*world.labels["M1"])
    first, second = client.get(path), client.get(path)
    assert first.status_code == second.status_code == 200 and "ETag" not in first.headers
    assert first.get_data() == second.get_data() and len(app.extensions["scan_page_cache"]) == 0
