"""A participant's page of a lot with a long history: the SQL it sends does not grow with the events, and the
timeline comes a page at a time (the latest steps first), so neither the work nor the HTML grows with them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import jinja2.runtime
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import Action
from supply_chain.services import lots, views
from supply_chain.services.access import level_for
from supply_chain.services.verification_state import (
    EventStates,
    combined_state,
    event_state,
    lot_facts,
    lot_state,
)
from supply_chain.store.models import Event, Lot, LotInput, Organisation


def _long_lot(world: Any, code: str, events: int) -> int:
    """A producer's lot with ``events`` events: its harvest, then observations written in one transaction."""
    with world.runtime.ctx() as ctx:
        producer = ctx.session.get(Organisation, world.org_ids["producer"])
        site = world.sites["producer"]
        harvest = {"location_gln": site, "harvest_date": "2026-11-01", "commodity": "lettuce"}
        lot = lots.create_lot(ctx, producer, world.gtins["lettuce"], code, EventKind.HARVESTING, harvest, "100", "kg")
        note = {"note": "routine check", "date": "2026-11-02", "location_gln": site}
        lots.record_events(ctx, producer, lot, [(EventKind.OBSERVATION, note)] * (events - 1))
        ctx.session.commit()
        assert len(lot.events) == events
        return lot.id


@pytest.fixture(scope="module")
def long_lots(world: Any) -> dict[int, int]:
    return {n: _long_lot(world, f"HIST-{n}", n) for n in (10, 100)}


def _statements(world: Any, client: Any, url: str) -> list[str]:
    client.get(url)  # the first request of a client does its own one-off work (session, language)
    seen: list[str] = []

    def grab(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    sa_event.listen(world.runtime.engine, "before_cursor_execute", grab)
    try:
        response = client.get(url)
    finally:
        sa_event.remove(world.runtime.engine, "before_cursor_execute", grab)
    assert response.status_code == 200
    return seen


def test_lot_page_sends_as_many_statements_for_100_events_as_for_10(
    world: Any, signed_in: Any, long_lots: dict[int, int]
) -> None:
    client = signed_in("producer")
    few = _statements(world, client, f"/lots/{long_lots[10]}")
    many = _statements(world, client, f"/lots/{long_lots[100]}")
    assert len(many) == len(few), "\n".join(many)


def test_the_lot_page_loads_company_prefixes_for_the_viewer_alone(
    world: Any, signed_in: Any, long_lots: dict[int, int]
) -> None:
    """The organisations a page only names (the lot's creator, each step's actor, a site's owner) come without
    their company prefixes: the model loads those with every organisation, a second statement per load."""
    seen = _statements(world, signed_in("regulator"), f"/lots/{long_lots[10]}")
    prefixes = [s for s in seen if "FROM company_prefixes" in s]
    assert len(prefixes) == 1, "\n".join(prefixes)  # the signed-in user's organisation, loaded for every page


def _macro_calls(client: Any, url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    client.get(url)
    calls: list[str] = []
    real = jinja2.runtime.Macro._invoke

    def invoke(self: Any, arguments: Any, autoescape: bool) -> Any:
        calls.append(self.name)
        return real(self, arguments, autoescape)

    with monkeypatch.context() as patched:
        patched.setattr(jinja2.runtime.Macro, "_invoke", invoke)
        assert client.get(url).status_code == 200
    return len(calls)


def test_the_lot_page_calls_as_many_macros_for_100_events_as_for_10(
    signed_in: Any, long_lots: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step's badge, its fields' place names and labels are worked out once per value on the page, not once
    per step: rendering a page of 50 steps called three macros a step."""
    client = signed_in("producer")
    few = _macro_calls(client, f"/lots/{long_lots[10]}", monkeypatch)
    many = _macro_calls(client, f"/lots/{long_lots[100]}", monkeypatch)
    assert many <= few + 2, (few, many)  # the pager, above and below the timeline: the 10 steps need none


def _steps(html: str) -> int:
    timeline = html.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    return len(re.findall(r'<li class="state-', timeline))


def test_a_long_timeline_shows_the_latest_page_and_links_to_earlier_ones(
    signed_in: Any, long_lots: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "TIMELINE_PAGE", 40)
    client = signed_in("producer")
    url = f"/lots/{long_lots[100]}"

    latest = client.get(url).get_data(as_text=True)
    assert _steps(latest) == 40  # the latest page is a full one
    assert "Steps 61–100 of 100" in latest
    assert f'href="{url}?page=2#timeline"' in latest and "Later steps" not in latest

    first = client.get(url + "?page=1").get_data(as_text=True)
    assert _steps(first) == 20  # the oldest steps take the remainder
    assert "Steps 1–20 of 100" in first and "kind-harvesting" in first.split('<ol class="timeline">', 1)[1]
    assert f'href="{url}?page=2#timeline"' in first and "Earlier steps" not in first

    short = client.get(f"/lots/{long_lots[10]}").get_data(as_text=True)
    assert _steps(short) == 10 and "Timeline pages" not in short  # one page: no pager


@pytest.mark.parametrize("page", ["0", "4", "two", "-1"])
def test_a_timeline_page_the_lot_does_not_have_is_refused_naming_the_page(
    signed_in: Any, long_lots: dict[int, int], monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    monkeypatch.setattr(views, "TIMELINE_PAGE", 40)
    response = signed_in("producer").get(f"/lots/{long_lots[100]}?page={page}")
    assert response.status_code == 400
    assert "timeline page: give a page number from 1 to 3" in response.get_data(as_text=True)


class _CountingLot:
    """A lot whose history counts how often it is read."""

    def __init__(self, events: list[Any], state: str, detail: str | None = None) -> None:
        self.id, self._events, self.reads = 1, events, 0
        self.verification_state, self.verification_detail = state, detail
        self.verified_at = datetime(2026, 12, 1, tzinfo=UTC)

    @property
    def events(self) -> list[Any]:
        self.reads += 1
        return self._events


@pytest.mark.parametrize("state", ["verified", "tampered"])
def test_event_states_read_a_lots_history_once_and_agree_with_event_state(state: str) -> None:
    """The page asks each event's state; reading the whole history for each answer made it quadratic."""
    confirmed = datetime(2026, 11, 30, tzinfo=UTC)
    events = [SimpleNamespace(id=i, seq=i, status="confirmed", confirmed_at=confirmed) for i in range(1, 201)]
    lot = _CountingLot(events, state, "event 120 does not match (id 120)" if state == "tampered" else None)
    states = EventStates()
    answers = [states(lot, e) for e in events]  # type: ignore[arg-type]
    assert lot.reads <= 2
    assert answers == [event_state(lot, e) for e in events]  # type: ignore[arg-type]
    if state == "tampered":
        assert answers[118:121] == ["verified", "tampered", "unverified"]
    else:
        assert set(answers) == {"verified"}


def test_the_lot_page_reads_only_its_page_of_a_long_history(
    world: Any, signed_in: Any, long_lots: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page of a lot of 100 events with 40 steps a page builds no more events than it shows (and the few
    that say whether the lot is held): loading the whole history and slicing it made the page grow with it."""
    monkeypatch.setattr(views, "TIMELINE_PAGE", 40)
    client = signed_in("producer")
    url = f"/lots/{long_lots[100]}"
    client.get(url)
    loaded: list[int] = []

    def count(target: Any, _context: Any) -> None:
        loaded.append(target.id)

    sa_event.listen(Event, "load", count)
    try:
        html = client.get(url).get_data(as_text=True)
    finally:
        sa_event.remove(Event, "load", count)
    assert _steps(html) == 40
    assert len(loaded) <= 40 + 2, len(loaded)  # the page's steps, and the harvest at most


def test_the_actions_of_a_lot_ask_the_store_each_question_once(
    world: Any, long_lots: dict[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page asks the rulebook about every action; whether an ancestor is recalled (a walk of the lineage)
    is asked once for all of them, and the answers are `verdict`'s."""
    asked: list[int] = []
    real = lots.recall_affected

    def recall_affected(ctx: Any, lot: Any) -> bool:
        asked.append(lot.id)
        return real(ctx, lot)

    with world.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, long_lots[10])
        org = ctx.session.get(Organisation, world.org_ids["producer"])
        expected = {a: lots.verdict(ctx, a, org, lot) for a in Action if a is not Action.CREATE}
        monkeypatch.setattr(lots, "recall_affected", recall_affected)
        answers = lots.verdicts(ctx, expected, org, lot)
    assert answers == expected
    assert asked == [lot.id]


def test_the_lot_page_says_what_the_lots_whole_history_says(world: Any) -> None:
    """The page reads a history's few facts with SQL (its page of steps, the events that hold or recall the lot,
    its last shipment, when each lot was last confirmed): for every lot of the scenario (held, recalled through
    an input, in transit, made from inputs, one shown as tampered) it shows what the whole-history helpers say."""
    seen = set()
    with world.runtime.ctx() as ctx, ctx.session.no_autoflush:
        all_lots = list(ctx.session.scalars(select(Lot).order_by(Lot.id)))
        # one lot shown as tampered, so the step it names (and those after) are judged from the facts too
        shown = next(lot for lot in all_lots if len(lot.events) >= 3)
        shown.verification_state = "tampered"
        shown.verification_detail = f"event #2 (shipping, id {shown.events[1].id}): its payload was altered"
        base = ctx.settings.public_url
        for lot in all_lots:
            for org in {lot.creator, lot.custodian}:
                page = views.lot_page(ctx, lot, org)
                chain = views._ancestor_chain(ctx, lot)
                paging = page["timeline_paging"]
                timeline, _places = views._journey(
                    ctx,
                    lot,
                    [(lot, 0)],
                    lambda e, org=org: level_for(e, org),
                    base,
                    True,
                    window=slice(paging["first"] - 1, paging["last"]),
                    proofs=False,
                )
                assert page["timeline"] == timeline
                assert paging["total"] == len(lot.events)
                assert page["hold"] == views.hold_notice(lot)
                assert page["recalls"] == views._recall_rows(ctx, lot, base, chain)
                assert page["state"] == lot_state(lot)
                assert page["journey_state"] == combined_state(lot_ for lot_, _ in chain)
                offer = page["offer"]["event"] if page["offer"] else None
                assert offer is (views.last_offer(lot) if lot.status == "in_transit" else None)
                seen |= {("held", page["hold"] is not None), ("recalled", bool(page["recalls"]))}
                seen |= {("in transit", offer is not None), ("tampered", "'tampered'" in str(page["timeline"]))}
        ctx.session.rollback()
    assert {k for k, v in seen if v} == {"held", "recalled", "in transit", "tampered"}


def test_lot_facts_judge_each_event_as_the_lots_history_does(world: Any) -> None:
    with world.runtime.ctx() as ctx, ctx.session.no_autoflush:
        all_lots = [lot for lot in ctx.session.scalars(select(Lot).order_by(Lot.id)) if len(lot.events) >= 3]
        all_lots[0].verification_state = "tampered"
        all_lots[0].verification_detail = f"event #2 (x, id {all_lots[0].events[1].id}): its payload was altered"
        all_lots[1].verification_state = "tampered"
        all_lots[1].verification_detail = "the chain's event #9 is missing from the store"
        facts = EventStates(lot_facts(ctx.session, all_lots))
        history = EventStates()
        for lot in all_lots:
            assert facts.lot_state(lot) == lot_state(lot)
            assert [facts(lot, e) for e in lot.events] == [history(lot, e) for e in lot.events]
        assert [facts(all_lots[0], e) for e in all_lots[0].events][:3] == ["verified", "tampered", "unverified"]
        ctx.session.rollback()


def test_a_lots_logs_read_straight_from_the_embedded_chain_are_what_eth_get_logs_gives(world: Any) -> None:
    """The ledger reads a lot's logs from the embedded chain's receipts without JSON-RPC formatting (a tenth of
    the cost a log): the same decoded events, in the same order, as through ``eth_getLogs``."""
    ledger = world.runtime.ledger
    assert callable(getattr(ledger.w3.provider, "contract_logs", None))

    def via_rpc(from_block: int, to_block: int | None, lot_id: str | None) -> list[Any]:
        topics = [None, bytes.fromhex(lot_id.removeprefix("0x"))] if lot_id else []
        raw = ledger._rpc_logs(from_block, to_block, topics)
        return [ledger._decode_log(log) for log in raw if "0x" + bytes(log["topics"][0]).hex() in ledger._events]

    head = ledger.block_number()
    with world.runtime.ctx() as ctx:
        ids = list(ctx.session.scalars(select(Lot.lot_id)))
    everything = ledger.logs(0)
    assert everything == via_rpc(0, None, None) and len(everything) > 20
    for lot_id in ids:
        mine = ledger.logs(0, lot_id=lot_id)
        assert mine == via_rpc(0, None, lot_id) and mine
        middle = mine[len(mine) // 2].block_number
        assert ledger.logs(middle, lot_id=lot_id) == via_rpc(middle, None, lot_id)
        assert ledger.logs(0, middle, lot_id=lot_id) == via_rpc(0, middle, lot_id)
    assert ledger.logs(head + 1) == via_rpc(head + 1, None, None) == []


def _made_from_inputs(world: Any) -> int:
    """A lot of the scenario made from other lots (it has ancestors to walk)."""
    with world.runtime.ctx() as ctx:
        lot_id = ctx.session.scalars(select(LotInput.output_lot_id).order_by(LotInput.output_lot_id)).first()
        assert lot_id is not None
        return lot_id


def test_the_lot_page_walks_the_lineage_once_and_reads_its_edges_and_steps_in_one_statement_each(
    world: Any, signed_in: Any
) -> None:
    """The page shows the lot's lineage and its action buttons ask whether an ancestor is recalled: one walk of
    the lineage serves both (it was walked twice). The number of steps comes with the latest steps (it was a
    COUNT first), and the lineage tree's edges both ways with one statement (it was one per lot and direction)."""
    seen = _statements(world, signed_in("regulator"), f"/lots/{_made_from_inputs(world)}")
    text = "\n\n".join(seen)
    assert len([s for s in seen if "WITH RECURSIVE" in s]) == 1, text
    assert not [s for s in seen if s.startswith("SELECT count(*)") and "FROM events" in s], text
    assert len([s for s in seen if "FROM lot_inputs" in s and "RECURSIVE" not in s]) == 1, text
    assert len(seen) <= 18, text  # 33 before


def test_the_actions_judge_a_recalled_ancestor_from_the_lineage_the_page_loaded(world: Any) -> None:
    """`recall_affected` given the ancestors the lot page loaded answers what its own walk of the lineage does,
    for every lot of the scenario (one of them made from a recalled lot)."""
    answers = []
    with world.runtime.ctx() as ctx:
        for lot in ctx.session.scalars(select(Lot).order_by(Lot.id)).all():
            page = views.lot_page(ctx, lot, lot.creator)
            answers.append(lots.recall_affected(ctx, lot, page["ancestors"]))
            assert answers[-1] == lots.recall_affected(ctx, lot), lot.lot_code
            org = lot.creator
            assert lots.verdicts(ctx, Action, org, lot, page["ancestors"]) == lots.verdicts(ctx, Action, org, lot)
        ctx.session.rollback()
    assert True in answers and False in answers
