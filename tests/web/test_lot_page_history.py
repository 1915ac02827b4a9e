"""A participant's page of a lot with a long history: the SQL it sends does not grow with the events, and the
timeline comes a page at a time (the latest steps first), so neither the work nor the HTML grows with them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots, views
from supply_chain.services.verification_state import EventStates, event_state
from supply_chain.store.models import Organisation


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
