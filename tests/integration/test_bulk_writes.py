"""Bulk writes through the services (issue 11): a batch's rows go in without a flush per event and the lookups
its planning and indexing make do not grow with the batch, while event ids still follow call order (the
indexer matches a receipt's logs to the rows by it), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from supply_chain.bench import commissioning_document
from supply_chain.domain.errors import LotlineError
from supply_chain.domain.hashing import hex32
from supply_chain.domain.identifiers import lot_id
from supply_chain.domain.kinds import EventKind
from supply_chain.services import indexer, lots, verify
from supply_chain.services.epcis import jobs
from supply_chain.services.epcis.capture import Writer, capture, plan_capture
from supply_chain.store.models import Event, Lot, Organisation

pytestmark = pytest.mark.slow

BATCH = 12


@contextmanager
def _statements(ctx: Any) -> Iterator[list[str]]:
    """The SQL statements the session's connection runs inside the block."""
    with _statements_on(ctx.session.get_bind()) as seen:
        yield seen


@contextmanager
def _statements_on(engine: Any) -> Iterator[list[str]]:
    """The SQL statements any connection of ``engine`` runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)


def test_a_batch_of_events_looks_each_site_up_once_and_is_confirmed_in_call_order(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        farm = network.org("farm", ctx)
        lot = ctx.session.get(Lot, network.lot_pk)
        items = [
            (EventKind.OBSERVATION, {"note": f"check {i}", "date": "2026-11-21", "location_gln": network.farm_site})
            for i in range(BATCH)
        ]
        with _statements(ctx) as seen:
            written = lots.record_events(ctx, farm, lot, items)
        site_lookups = [s for s in seen if re.search(r"FROM locations\b", s)]
        seq_lookups = [s for s in seen if re.search(r"WHERE .*events\.seq (=|BETWEEN)", s, re.S)]
        # one look-up of the site for the whole batch (was one per event); the indexer asks which events it
        # holds once per receipt (was once per log)
        assert len(site_lookups) <= 2, site_lookups
        assert len(seq_lookups) <= 4, seq_lookups
        rows = list(ctx.session.scalars(select(Event).where(Event.lot_id == lot.id).order_by(Event.id)))[1:]
        assert [r.payload["note"] for r in rows] == [f"check {i}" for i in range(BATCH)]
        assert [r.id for r in rows] == [e.id for e in written]
        assert [r.seq for r in rows] == list(range(2, BATCH + 2))  # ids, calls and chain order agree
        assert {r.status for r in rows} == {"confirmed"}
        assert lot.verification_state == "verified", lot.verification_detail


def test_a_capture_batch_without_a_flush_per_event_keeps_ids_in_call_order(network: Any) -> None:
    """The capture ``Writer`` no longer flushes after each event: the ids still follow the calls."""
    with network.runtime.ctx() as ctx:
        farm = ctx.session.get(Organisation, network.ids["farm"])
        document = commissioning_document(
            network.greens, network.farm_site, 7, name="urn:test:bulk", lot="BULK-{:03d}", day="2026-11-20"
        )
        result = capture(ctx, farm, document)
        ids = [w["event_id"] for r in result.events for w in r.writes]
        codes = [w["lot_code"] for r in result.events for w in r.writes]
        assert codes == [f"BULK-{i:03d}" for i in range(7)]
        assert ids == sorted(ids) and len(set(ids)) == 7
        events = [ctx.session.get(Event, i) for i in ids]
        assert {e.status for e in events} == {"confirmed"}
        # one transaction: the logs' order is the calls' order, and each row holds its own lot's log
        assert [e.log_index for e in events] == sorted(e.log_index for e in events)
        assert all(e.lot.verification_state == "verified" for e in events)


def test_a_capture_asks_the_store_about_its_new_lots_at_once_and_verifies_them_together(network: Any) -> None:
    """Creating the lots of a capture asks the store once which of them it holds (rehearsal and write), not
    once per lot with a flush of the rows planned before it; the new lots are verified from one read of their
    events and rows, not lot by lot. Each lot is still verified, and a lot the store holds is still refused."""
    with network.runtime.ctx() as ctx:
        farm = ctx.session.get(Organisation, network.ids["farm"])
        document = commissioning_document(
            network.greens, network.farm_site, BATCH, name="urn:test:together", lot="TOG-{:03d}", day="2026-11-20"
        )
        asked: list[int] = []
        get_lots = ctx.ledger.get_lots

        def counted(lot_ids: Any, chunk: int = 200) -> Any:
            asked.append(len(lot_ids))
            return get_lots(lot_ids, chunk)

        ctx.ledger.get_lots = counted  # type: ignore[method-assign]
        try:
            with _statements(ctx) as seen:
                result = capture(ctx, farm, document)
        finally:
            del ctx.ledger.get_lots
        per_lot = [s for s in seen if re.search(r"FROM lots\s+WHERE lots\.lot_id = ", s)]
        events_of_one_lot = [s for s in seen if re.search(r"FROM events\s+WHERE events\.lot_id = ", s)]
        # before: one look-up per lot in the rehearsal and again when written (24), and each lot's events read
        # by its own query when verified (12)
        assert per_lot == [], len(per_lot)
        assert events_of_one_lot == [], len(events_of_one_lot)
        codes = [w["lot_code"] for r in result.events for w in r.writes]
        assert codes == [f"TOG-{i:03d}" for i in range(BATCH)]
        stored = list(ctx.session.scalars(select(Lot).where(Lot.lot_code.like("TOG-%"))))
        assert len(stored) == BATCH
        assert {lot.verification_state for lot in stored} == {"verified"}, [lot.verification_detail for lot in stored]
        # the chain is asked about the new lots once, when planned; after the write their state is what the
        # receipt's logs give, and that is what getLot answers
        assert asked == [BATCH], asked
        receipt = ctx.ledger.receipt(result.transactions[0])
        assert receipt is not None
        born = indexer.born([receipt.events])
        assert born == get_lots([lot.lot_id for lot in stored])

        # a lot the store holds is refused when written, although the plan found it absent
        again = commissioning_document(
            network.greens, network.farm_site, 2, name="urn:test:again", lot="AGAIN-{:03d}", day="2026-11-20"
        )
        plan = plan_capture(ctx, farm, again)
        lots.create_lot(
            ctx,
            farm,
            network.greens,
            "AGAIN-001",
            EventKind.HARVESTING,
            {"harvest_date": "2026-11-20", "location_gln": network.farm_site},
            "5",
            "kg",
        )
        writer = Writer(ctx, farm, absent=plan.absent)
        writer.write(plan.steps[0])
        with pytest.raises(LotlineError) as refused:
            writer.write(plan.steps[1])
        assert refused.value.code == "lot_exists"


def test_a_capture_jobs_batches_do_not_read_its_document_again(network: Any) -> None:
    """A job's document, plan and results (megabytes for 10,000 events) are read when the job starts, not again
    by every batch: before, each batch read and parsed them twice, so the run grew with the square of the size."""
    runtime = network.runtime
    with runtime.ctx() as ctx:
        farm = ctx.session.get(Organisation, network.ids["farm"])
        document = commissioning_document(
            network.greens, network.farm_site, 6, name="urn:test:light", lot="LIGHT-{:03d}", day="2026-11-20"
        )
        job, _ = jobs.submit(ctx, farm, document, inline_calls=0)
        job_id = job.id
    marks: list[int] = []
    with _statements_on(runtime.engine) as seen:
        outcome = jobs.run_pending(runtime, batch_calls=2, after_batch=lambda _done: marks.append(len(seen)))
    assert outcome[job_id] == "done"
    assert len(marks) == 3
    # what the second and third batches ran (and the progress read after each): no read of the document
    between = seen[marks[0] : marks[-1]]
    documents = [s for s in between if re.search(r"capture_jobs\.document\b", s)]
    assert documents == [], len(documents)  # was 2 per batch
    with runtime.ctx() as ctx:
        stored = list(ctx.session.scalars(select(Lot).where(Lot.lot_code.like("LIGHT-%"))))
        assert len(stored) == 6 and {lot.verification_state for lot in stored} == {"verified"}


def test_get_lots_answers_as_get_lot_for_each_lot(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, network.lot_pk)
        unknown = hex32(lot_id(network.greens, "NOT-ON-CHAIN"))
        many = ctx.ledger.get_lots([lot.lot_id, unknown])
        assert many == {lot.lot_id.lower(): ctx.ledger.get_lot(lot.lot_id), unknown: ctx.ledger.get_lot(unknown)}
        assert many[lot.lot_id.lower()].event_count == 1 and not many[unknown].exists


def test_a_batch_reads_the_lots_events_once_for_its_facts_and_still_applies_them_to_every_event(
    network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The facts an event is checked against (the lot's creation, its last shipment) are read once per batch
    and brought up to date with the batch's own events, not read again for each event. The facts still hold
    for the batch's last event: one dated before the lot's creation is refused, and nothing of the batch is
    written."""
    read: list[int] = []
    read_facts = lots._FactsRead.of.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, ctx: Any, lot: Any) -> Any:
        read.append(lot.id)
        return read_facts(cls, ctx, lot)

    monkeypatch.setattr(lots._FactsRead, "of", classmethod(counted))
    with network.runtime.ctx() as ctx:
        farm = network.org("farm", ctx)
        lot = ctx.session.get(Lot, network.lot_pk)
        note = {"note": "check", "date": "2026-11-21", "location_gln": network.farm_site}
        lots.record_events(ctx, farm, lot, [(EventKind.OBSERVATION, note)] * BATCH)
        read.clear()
        lots.record_events(ctx, farm, lot, [(EventKind.OBSERVATION, note)] * BATCH)
        # read once for the batch, then kept up to date with each planned event (before: once per event)
        assert read == [lot.id], read
        before = dict(events=len(lot.events), block=ctx.ledger.w3.eth.block_number)
        early = dict(note, date="2026-11-19")  # the lot was harvested on 2026-11-20
        with pytest.raises(LotlineError) as refused:
            lots.record_events(
                ctx, farm, lot, [(EventKind.OBSERVATION, note)] * (BATCH - 1) + [(EventKind.OBSERVATION, early)]
            )
        assert refused.value.code == "date_before_lot"
        ctx.session.rollback()
        assert (
            ctx.session.scalar(select(func.count()).select_from(Event).where(Event.lot_id == lot.id))
            == before["events"]
        )
        assert ctx.ledger.w3.eth.block_number == before["block"]


def test_a_single_write_on_a_lot_with_a_history_reads_neither_that_history_nor_its_logs(
    network: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write on a lot of many events costs what it costs on a short one (issue 11): the facts it is checked
    against (the lot's creation, its last shipment) are found by index probes, and its re-verification reads the
    new event alone (the verified head stands for the rest) plus the few events stored rows copy (recalls,
    inspections). Before, the lot's whole history was loaded twice (for the facts, then for re-verification)."""
    note = {"note": "check", "date": "2026-11-21", "location_gln": network.farm_site}
    with network.runtime.ctx() as ctx:
        farm = network.org("farm", ctx)
        lot = ctx.session.get(Lot, network.lot_pk)
        lots.record_events(ctx, farm, lot, [(EventKind.OBSERVATION, note)] * (3 * BATCH))
        history = lot.event_count
    rows: list[str] = []
    facts: list[int] = []
    logs: list[Any] = []

    class CountedFact(verify._Fact):
        def __init__(self, row: Any) -> None:
            super().__init__(row)
            facts.append(self.id)

    def loaded(target: Any, _context: Any) -> None:
        rows.append(target.id)

    monkeypatch.setattr(verify, "_Fact", CountedFact)
    with network.runtime.ctx() as ctx:  # a new session: nothing of the lot is held in memory
        farm = network.org("farm", ctx)
        lot = ctx.session.get(Lot, network.lot_pk)
        real_logs = ctx.ledger.logs
        monkeypatch.setattr(ctx.ledger, "logs", lambda *a, **k: logs.append(a) or real_logs(*a, **k))
        sa_event.listen(Event, "load", loaded)
        try:
            event = lots.record_event(ctx, farm, lot, EventKind.OBSERVATION, dict(note, note="one more"))
        finally:
            sa_event.remove(Event, "load", loaded)
        assert event.status == "confirmed" and event.seq == history + 1
        assert lot.verification_state == "verified", lot.verification_detail
        assert "newest checked" in lot.verification_detail  # the incremental path, not a full verification
    assert history > 30
    assert len(rows) <= 4, rows  # the creation event, the new event (and its reload after the receipt)
    assert facts == [event.id], facts  # re-verification hashed the new event only
    assert logs == []


def test_get_lot_answers_are_decoded_by_hand_exactly_as_eth_abi_decodes_them_and_odd_ones_are_left_to_it() -> None:
    """The verification pass decodes ``getLot`` answers and the multicall around them itself (eth_abi's decoder
    cost more per lot than the node); anything but the canonical layout goes back to eth_abi."""
    from eth_abi import decode, encode

    from supply_chain.chain.ledger import Ledger, _plain_bytes_list, _plain_get_lot

    types = Ledger._GET_LOT_TYPES
    addresses = ["0x" + (bytes([n]) * 20).hex() for n in (0xAB, 2, 0)]
    for inputs in ([], [b"\x07" * 32], [bytes([n]) * 32 for n in range(1, 4)]):
        raw = encode(types, [*addresses, 3, 2**64 - 1, b"\x09" * 32, inputs])
        assert _plain_get_lot(raw) == decode(types, raw)
        items = [raw, b"", b"\x01" * 33]
        nested = encode(("bytes[]",), [items])
        assert _plain_bytes_list(nested) == items == list(decode(("bytes[]",), nested)[0])
    canonical = encode(types, [*addresses, 1, 1, b"\x00" * 32, []])
    dirty = canonical[:11] + b"\x01" + canonical[12:]  # a non-zero byte in an address's padding
    assert _plain_get_lot(dirty) is None and _plain_get_lot(canonical[:-32]) is None
    assert _plain_bytes_list(encode(("bytes[]",), [[b"\x01"]])[:-1]) is None
