"""What the pages say about verification: a lot's state as last computed against the chain (or "pending" when
it has not been checked since its last event), each event's state, a journey's weakest state, and how long
ago it was checked. Reads what `services.verify` stored; never asks the chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from supply_chain.store.models import Event, Lot

STATE_LABELS = {
    "verified": "Verified on chain",
    "tampered": "Record does not match the chain",
    "pending": "Pending verification",
    "unverifiable": "No chain record found",
    "failed": "Not recorded (transaction failed)",
    "unverified": "Not vouched for (an earlier record does not match)",
}


_BAD_EVENT = re.compile(r"\bid (\d+)\)")


@dataclass(frozen=True)
class LotFacts:
    """What the states of some lots' events depend on, read with SQL over indexed columns instead of from each
    lot's whole history (`lot_facts`): per lot id, when its last confirmed event was confirmed, and the
    sequence number of the event its tampered verification names."""

    latest: dict[int, datetime | None] = field(default_factory=dict)
    bad_seq: dict[int, int | None] = field(default_factory=dict)


def lot_facts(session: Session, lots: Collection[Lot]) -> LotFacts:
    """`LotFacts` for ``lots`` in at most two queries, whatever the length of their histories (a page of a lot of
    1,000 events need not load the 1,000 to say whether the lot was checked since its last one)."""
    ids = [lot.id for lot in lots]
    latest: dict[int, datetime | None] = dict.fromkeys(ids)
    if ids:
        rows = session.execute(
            select(Event.lot_id, func.max(Event.confirmed_at))
            .where(Event.lot_id.in_(ids), Event.status == "confirmed", Event.confirmed_at.is_not(None))
            .group_by(Event.lot_id)
        )
        latest.update({lot_id: moment for lot_id, moment in rows})
    named = {lot.id: _named_bad_event(lot) for lot in lots if lot.verification_state == "tampered"}
    wanted = {lot_id: event_id for lot_id, event_id in named.items() if event_id is not None}
    bad_seq: dict[int, int | None] = dict.fromkeys(named)
    if wanted:
        seqs = {i: seq for i, seq in session.execute(select(Event.id, Event.seq).where(Event.id.in_(wanted.values())))}
        bad_seq.update({lot_id: seqs.get(event_id) for lot_id, event_id in wanted.items()})
    return LotFacts(latest, bad_seq)


def _named_bad_event(lot: Lot) -> int | None:
    match = _BAD_EVENT.search(lot.verification_detail or "")
    return int(match.group(1)) if match is not None else None


def _latest_confirmed(lot: Lot, facts: LotFacts | None) -> datetime | None:
    if facts is not None and lot.id in facts.latest:
        return facts.latest[lot.id]
    return max((e.confirmed_at for e in lot.events if e.status == "confirmed" and e.confirmed_at), default=None)


def _unchecked(lot: Lot, facts: LotFacts | None = None) -> bool:
    """True when the lot has not been verified since its last confirmed event (its state is stale)."""
    if lot.verification_state is None or lot.verified_at is None:
        return True
    latest = _latest_confirmed(lot, facts)
    return latest is not None and latest > lot.verified_at


def lot_state(lot: Lot, facts: LotFacts | None = None) -> str:
    """The lot's verification state as last computed against the chain; "pending" when it has not been
    checked since its last confirmed event. ``facts``: what `lot_facts` read (else the lot's history is read)."""
    return "pending" if _unchecked(lot, facts) else str(lot.verification_state)


def event_state(lot: Lot, event: Event) -> str:
    """One event's state: pending until mined and checked, then what the lot's last verification found
    (for a tampered lot: the named event is tampered, those before it verified, those after unverified).
    For many events of a lot use `EventStates`: this reads the lot's whole history on each call."""
    return _judge(lot)(event)


class EventStates:
    """`event_state` for many events, each lot's history read once: a page of a lot of 1,000 events asks
    1,000 times, and reading every event for each answer made that page quadratic. With ``facts``
    (`lot_facts`) the lots it covers are judged without reading their histories at all."""

    def __init__(self, facts: LotFacts | None = None) -> None:
        self._judges: dict[int, Callable[[Event], str]] = {}
        self.facts = facts

    def __call__(self, lot: Lot, event: Event) -> str:
        judge = self._judges.get(lot.id)
        if judge is None:
            judge = self._judges[lot.id] = _judge(lot, self.facts)
        return judge(event)

    def lot_state(self, lot: Lot) -> str:
        """`lot_state` from the same facts."""
        return lot_state(lot, self.facts)


def _judge(lot: Lot, facts: LotFacts | None = None) -> Callable[[Event], str]:
    """The state of any event of ``lot``, from what the lot's history (or ``facts``) says once."""
    unchecked = _unchecked(lot, facts)
    state = lot.verification_state
    bad: int | None = None
    bad_seq: int | None = None
    if not unchecked and state == "tampered":
        bad = _named_bad_event(lot)
        if bad is not None and facts is not None and lot.id in facts.bad_seq:
            bad_seq = facts.bad_seq[lot.id]
        elif bad is not None:
            bad_event = next((e for e in lot.events if e.id == bad), None)
            bad_seq = bad_event.seq if bad_event is not None else None

    def of(event: Event) -> str:
        if event.status in ("failed", "pending"):
            return event.status
        if unchecked:
            return "pending"
        if state in ("verified", "pending"):  # "pending": the confirmed history matched, later writes not mined
            return "verified"
        if state == "tampered":
            if bad is None:
                return "unverified"
            if event.id == bad:
                return "tampered"
            if bad_seq is not None and event.seq is not None and event.seq < bad_seq:
                return "verified"
            return "unverified"
        return str(state)

    return of


def combined_state(lots: Iterable[Lot], facts: LotFacts | None = None) -> str:
    """The weakest state of a lot and its ancestors: one tampered record taints the whole journey."""
    states = {lot_state(lot, facts) for lot in lots}
    for state in ("tampered", "unverifiable", "pending"):
        if state in states:
            return state
    return "verified" if states else "pending"


def checked_ago(moment: datetime | None, now: datetime | None = None) -> str | None:
    """How long ago a verification ran, in words ("checked 5 minutes ago"); None when it never ran."""
    if moment is None:
        return None
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"checked {n} {unit}{'' if n == 1 else 's'} ago"
    return "checked just now"


def oldest_check(lots: Iterable[Lot]) -> datetime | None:
    """When the weakest part of a journey was last checked: the oldest check of the lot and its ancestors
    (None when one of them was never checked)."""
    moments = [lot.verified_at for lot in lots]
    return None if not moments or any(m is None for m in moments) else min(m for m in moments if m is not None)
