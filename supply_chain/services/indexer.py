"""The chain index: applying contract logs to the store, catching up, reconciling and rebuilding.

One code path turns chain logs into store state, whoever wrote them: `apply_logs` is called with a receipt's
logs right after our own write, by `sync` for logs read from the cursor (events written by another app
instance sharing the database, or the same app after a crash), and by `reindex` after the derived state was
wiped. Matching a log to its stored payload goes by transaction hash and order, so it is exact.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from supply_chain.chain.ledger import ChainEvent, ChainLot
from supply_chain.domain.errors import ChainUnavailable, LotlineError
from supply_chain.domain.hashing import ZERO_HASH, hex32
from supply_chain.domain.kinds import LotStatus
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import (
    ChainDeployment,
    Event,
    IndexerCursor,
    Lot,
    Organisation,
    PendingTransaction,
)

log = logging.getLogger(__name__)

CURSOR = "LotLedger"
# Logs are read in windows so one call never asks a node for an unbounded range.
WINDOW = 5_000


@dataclass
class SyncReport:
    applied: int = 0
    foreign: int = 0
    from_block: int = 0
    to_block: int = 0
    lots: set[int] = field(default_factory=set)  # primary keys of the lots that got new events
    # per lot, its verification state, head and event count before these logs: lets re-verification check
    # only the new events when the lot was verified up to there
    baselines: dict[int, tuple[str | None, str, int]] = field(default_factory=dict)
    # the chain's state of each lot these logs create and do nothing else to (its ``LotCreated`` and its first
    # ``LotEventRecorded``), by chain lot id: what ``getLot`` answers right after them (``born``)
    born: dict[str, ChainLot] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _orgs_by_address(ctx: Ctx) -> dict[str, Organisation]:
    return {o.chain_address.lower(): o for o in ctx.session.scalars(select(Organisation))}


def apply_logs(ctx: Ctx, logs: Iterable[ChainEvent]) -> SyncReport:
    """Apply decoded LotLedger logs (in chain order) to the store; already-applied logs are skipped."""
    report = SyncReport()
    by_tx: dict[str, list[ChainEvent]] = defaultdict(list)
    lot_ids: set[str] = set()
    logs_seqs: dict[str, list[int]] = defaultdict(list)
    for log in logs:
        by_tx[log.tx_hash].append(log)
        if "lotId" in log.args:
            lot_ids.add(str(log.args["lotId"]))
            if log.name == "LotEventRecorded":
                logs_seqs[str(log.args["lotId"]).lower()].append(int(log.args["seq"]))
    if not by_tx:
        return report
    report.born = born(by_tx.values())
    orgs = _orgs_by_address(ctx)
    session = ctx.session
    # Sessions keep objects across commits (``expire_on_commit=False``): a lot loaded before a write was sent
    # may hold a counter another writer has moved since, so every lot is read again here, locked.
    fresh = _lock_lots(ctx, lot_ids)
    # Which (lot, seq) the store holds already, for every lot and seq these logs name: one query here instead
    # of one per log; kept up to date below as logs are applied.
    held = _held_seqs(ctx, fresh, logs_seqs)
    for tx_hash, tx_logs in by_tx.items():
        waiting: dict[int, deque[Event]] = defaultdict(deque)
        for event in session.scalars(
            select(Event).where(Event.tx_hash == tx_hash, Event.status == "pending").order_by(Event.id)
        ):
            waiting[event.lot_id].append(event)
        # Every state change comes with an event of the same lot in the same transaction. When that event was
        # applied before (by the write itself, before the cursor caught up), so were the state changes: they
        # are not applied again, so a stored state edited since is left for verification to find, not
        # silently overwritten (`reindex` is the repair).
        last_seq: dict[str, int] = {}
        for log in tx_logs:
            if log.name == "LotEventRecorded":
                key = str(log.args["lotId"]).lower()
                last_seq[key] = max(last_seq.get(key, 0), int(log.args["seq"]))
        done: dict[str, bool] = {}
        for log in sorted(tx_logs, key=lambda e: e.log_index):
            if "lotId" not in log.args:
                continue  # role grants and revocations: the organisations table is their off-chain copy
            lot = fresh[str(log.args["lotId"]).lower()]
            if lot is None:
                report.foreign += 1  # a lot created elsewhere, whose label this store never saw
                continue
            key = str(log.args["lotId"]).lower()
            if key not in done:
                # State changes are applied once, and only when this transaction is the newest the store
                # knows for the lot: writers apply their receipts concurrently, so an older transaction's
                # logs may arrive after a newer one's and must not set its state back.
                done[key] = key not in last_seq or lot.event_count >= last_seq[key] or (lot.id, last_seq[key]) in held
            if log.name == "LotEventRecorded":
                report.baselines.setdefault(lot.id, (lot.verification_state, lot.head_hash, lot.event_count))
                if _apply_recorded(ctx, lot, log, waiting[lot.id], orgs, held):
                    report.applied += 1
                    report.lots.add(lot.id)
            elif not done[key]:
                _apply_state(lot, log, orgs)
                if log.name == "LotRecalled":
                    source_id = str(log.args["sourceId"]).lower()
                    source = lot if source_id == lot.lot_id else _lot_by_chain_id(ctx, source_id)
                    lot.recall_source_id = source.id if source is not None else None
        session.flush()
    return report


def born(transactions: Iterable[Sequence[ChainEvent]]) -> dict[str, ChainLot]:
    """The lots created in ``transactions`` (logs grouped by transaction, in chain order) that nothing else in
    them touched, with the state the contract gave them then: ``createLot`` sets creator and custodian to the
    sender, the status active and the inputs given, and appends one event, whose log carries the head. A lot
    with any other log (a second event, custody offered, an input of a later lot is no log of its own) is left
    out: ``getLot`` is asked about it."""
    created: dict[str, ChainEvent] = {}
    recorded: dict[str, list[ChainEvent]] = defaultdict(list)
    other: set[str] = set()
    for tx_logs in transactions:
        for log in tx_logs:
            if "lotId" not in log.args:
                continue
            key = str(log.args["lotId"]).lower()
            if log.name == "LotCreated":
                if key in created:
                    other.add(key)
                created[key] = log
            elif log.name == "LotEventRecorded":
                recorded[key].append(log)
            else:
                other.add(key)
    out: dict[str, ChainLot] = {}
    for key, creation in created.items():
        events = recorded.get(key, [])
        if key in other or len(events) != 1 or int(events[0].args["seq"]) != 1:
            continue
        if events[0].tx_hash != creation.tx_hash or events[0].log_index <= creation.log_index:
            continue
        creator = str(creation.args["creator"])
        out[key] = ChainLot(
            lot_id=key,
            creator=creator,
            custodian=creator,
            pending_custodian=None,
            status=LotStatus.ACTIVE,
            event_count=1,
            head=str(events[0].args["head"]),
            inputs=tuple(str(i) for i in creation.args.get("inputs") or ()),
        )
    return out


def _lock_lots(ctx: Ctx, lot_ids: set[str]) -> dict[str, Lot | None]:
    """Every lot the logs name, read as committed now and locked until this transaction ends (SQLite: the
    write lock of ``BEGIN IMMEDIATE``; PostgreSQL: ``FOR NO KEY UPDATE``, so rows that only reference a lot go
    on), in one query and in ``Lot.id`` order: the order every writer and the verification pass lock lots in,
    so two of them never wait on each other."""
    fresh: dict[str, Lot | None] = {key.lower(): None for key in lot_ids}
    if not lot_ids:
        return fresh
    query = (
        select(Lot)
        .where(Lot.lot_id.in_(sorted(lot_ids)))
        .order_by(Lot.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    for lot in ctx.session.scalars(query):
        fresh[lot.lot_id.lower()] = lot
    return fresh


def lock_for_planning(ctx: Ctx, lots: Sequence[Lot]) -> None:
    """Hold ``lots`` (read again as committed now) until this transaction ends, before their quantities are
    checked: two processes planning transformations from one lot then take turns, so together they cannot
    consume more than it holds. PostgreSQL only: on SQLite the one writer lock of ``BEGIN IMMEDIATE`` already
    puts writers in line. Same lock and order as ``_lock_lots``, so the two never wait on each other."""
    if not lots or ctx.session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({lot.id for lot in lots})
    query = (
        select(Lot)
        .where(Lot.id.in_(ids))
        .order_by(Lot.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    ctx.session.scalars(query).all()


HELD_CHUNK = 500
"""Lots per query when reading which of their events the store holds (bound parameters stay few)."""


def _held_seqs(ctx: Ctx, fresh: dict[str, Lot | None], seqs: dict[str, list[int]]) -> set[tuple[int, int]]:
    """The (lot primary key, seq) pairs among ``seqs`` (per chain lot id) that the store holds: events applied
    by whichever writer came first. Read after the lots are locked, so no other writer adds any meanwhile."""
    ctx.session.flush()
    ranges = {lot.id: (min(seqs[key]), max(seqs[key])) for key, lot in fresh.items() if lot is not None and key in seqs}
    held: set[tuple[int, int]] = set()
    pks = sorted(ranges)
    for start in range(0, len(pks), HELD_CHUNK):
        part = pks[start : start + HELD_CHUNK]
        low = min(ranges[pk][0] for pk in part)
        high = max(ranges[pk][1] for pk in part)
        rows = ctx.session.execute(
            select(Event.lot_id, Event.seq).where(Event.lot_id.in_(part), Event.seq.between(low, high))
        )
        held.update((lot_pk, seq) for lot_pk, seq in rows)
    return held


def _lot_by_chain_id(ctx: Ctx, lot_id: str) -> Lot | None:
    return ctx.session.scalars(select(Lot).where(Lot.lot_id == lot_id)).first()


def _apply_recorded(
    ctx: Ctx,
    lot: Lot,
    log: ChainEvent,
    waiting: deque[Event],
    orgs: dict[str, Organisation],
    held: set[tuple[int, int]],
) -> int:
    """Confirm the lot's next waiting event (its pending rows of this transaction, in id order) with the
    log, or keep the anchor alone when the store holds no payload for it. ``held`` is updated."""
    seq = int(log.args["seq"])
    if (lot.id, seq) in held:
        return 0  # applied before (by the writer, the maintenance pass or a second reindex pass)
    held.add((lot.id, seq))
    if waiting:
        event = waiting.popleft()
    else:
        # Written by someone whose payload this store does not hold: keep the anchor, mark the gap.
        actor = orgs.get(log.args["actor"].lower())
        event = Event(
            lot=lot,
            kind=int(log.args["kind"]),
            actor_org_id=actor.id if actor else lot.creator_org_id,
            actor_address=log.args["actor"],
            payload={},
            payload_hash=log.args["dataHash"],
            visibility={},
            tx_hash=log.tx_hash,
            occurred_at=_now(),
            failure_reason="payload not held by this node",
        )
        ctx.session.add(event)
    event.seq = seq
    event.block_number = log.block_number
    event.log_index = log.log_index
    event.head_after = log.args["head"]
    event.status = "confirmed"
    event.confirmed_at = event.confirmed_at or _now()
    if seq > lot.event_count:  # receipts are applied in any order; the counter and head follow the newest
        lot.event_count = seq
        lot.head_hash = log.args["head"]
    if lot.status == "pending":
        lot.status = "active"
    lot.verification_state = None  # stale until verified again
    return 1


def _apply_state(lot: Lot, log: ChainEvent, orgs: dict[str, Organisation]) -> None:
    def org(key: str) -> Organisation | None:
        return orgs.get(str(log.args[key]).lower())

    name = log.name
    if name == "LotCreated":
        lot.status = "active"
    elif name == "CustodyOffered":
        lot.status = "in_transit"
        to = org("to")
        lot.pending_custodian_org_id = to.id if to else None
    elif name == "CustodyAccepted":
        to = org("to")
        if to is not None:
            lot.custodian_org_id = to.id
        lot.pending_custodian_org_id = None
        lot.status = "active"
    elif name in ("CustodyRejected", "CustodyCancelled"):
        lot.pending_custodian_org_id = None
        lot.status = "active"
    elif name == "LotHeld":
        lot.status = "held"
    elif name == "LotReleased":
        lot.status = "active"
    elif name == "LotRecalled":
        lot.status = "recalled"
        lot.pending_custodian_org_id = None
    elif name == "LotClosed":
        lot.status = "closed"
    # RecallEnded changes no state: the lot stays recalled; its RECALL_ENDED event (LotEventRecorded) is the
    # record of the end.


# ------------------------------------------------------------------ catching up


def _deployment_block(ctx: Ctx) -> int:
    deployment = ctx.session.scalars(
        select(ChainDeployment).where(ChainDeployment.address == ctx.ledger.address)
    ).first()
    return deployment.block_number if deployment else 0


def _cursor(ctx: Ctx) -> IndexerCursor:
    cursor = ctx.session.get(IndexerCursor, CURSOR)
    if cursor is None:
        cursor = IndexerCursor(name=CURSOR, last_block=_deployment_block(ctx) - 1)
        ctx.session.add(cursor)
    return cursor


def sync(ctx: Ctx, to_block: int | None = None) -> SyncReport:
    """Read every log from the cursor to the chain head (or `to_block`) into the store and move the cursor."""
    ledger = ctx.ledger
    cursor = _cursor(ctx)
    head = ledger.block_number() if to_block is None else to_block
    total = SyncReport(from_block=cursor.last_block + 1, to_block=head)
    start = cursor.last_block + 1
    while start <= head:
        end = min(head, start + WINDOW - 1)
        part = apply_logs(ctx, ledger.logs(start, end))
        total.applied += part.applied
        total.foreign += part.foreign
        total.lots |= part.lots
        for lot_id, baseline in part.baselines.items():
            total.baselines.setdefault(lot_id, baseline)
        cursor.last_block = end
        cursor.updated_at = _now()
        reverify(ctx, part)
        # One short transaction per window: lots stay locked only while their own logs are applied, so
        # writers are not held up behind a long catch-up (and the cursor never runs ahead of the rows).
        ctx.session.commit()
        cursor = _cursor(ctx)
        start = end + 1
    return total


FOLLOW_GAP = 256
"""How far behind a write's block the cursor may be for the write to bring it up to that block."""


def follow(ctx: Ctx, block: int) -> None:
    """After a write mined in `block` and committed: when the cursor is a few blocks behind, index up to that
    block now (the write's own logs are already applied and are skipped; anything else in between is
    applied and verified as by a sync), so the cursor keeps up with the writes of every process and a server
    starting later reads only what was written while no Lotline process was writing. Best effort: a failure
    leaves the cursor where it was, for the next sync."""
    session = ctx.session
    try:
        cursor = session.scalars(
            select(IndexerCursor).where(IndexerCursor.name == CURSOR).with_for_update()
        ).first()
        if cursor is None or not 0 < block - cursor.last_block <= FOLLOW_GAP:
            session.commit()  # releases the row lock; nothing was changed
            return
        if block - cursor.last_block == 1 and ctx.ledger.transaction_count(block) == 1:
            # The block holds only the write whose receipt was just applied (each write is its own block on
            # the embedded chain): nothing in it is left to index, so its logs are not read and decoded again.
            cursor.last_block = block
            cursor.updated_at = _now()
            session.commit()
            return
        sync(ctx, to_block=block)
    except (OperationalError, LotlineError) as exc:
        session.rollback()
        log.info("cursor not advanced after block %d: %s", block, exc)


REVERIFY_CHUNK = 200
"""Lots re-verified together after a write or a window of logs (one chain call and one set of loads each)."""


def reverify(ctx: Ctx, report: SyncReport) -> None:
    """Verify again the lots that just got events, so pages that read the stored state stay true.

    A lot that was verified before these events only needs its new events checked: their payloads are
    hashed again and chained onto the verified head, and the result must equal the chain's head now. Any
    other case (never verified, pending writes, a mismatch) gets the full comparison."""
    from supply_chain.services.verify import BATCH_LOADS, facts_of, store_result, verify_lot, verify_new_events

    ids = sorted(report.lots)
    for start in range(0, len(ids), REVERIFY_CHUNK):
        part = ids[start : start + REVERIFY_CHUNK]
        lots = [lot for lot_id in part if (lot := ctx.session.get(Lot, lot_id)) is not None]
        # A batch write touches many lots: the chain is asked about all of them in one call (``get_lots``)
        # instead of one ``getLot`` round trip per lot, and what verification compares (each lot's events and
        # its other rows) is read for all of them in a few queries, as the verification pass does, instead of
        # lot by lot (a capture batch of 40 new lots made ~10 queries per lot); a single lot is read as before.
        # A lot the write created and did nothing else to is compared with the state its creation's logs give
        # (``born``: what ``getLot`` answers right after them; on the embedded chain each ``getLot`` is an EVM
        # run reading the lot's storage, ~40 ms under load).
        chain: dict[str, ChainLot] = {}
        if len(lots) > 1:  # a single lot is asked as before
            chain = {key: report.born[key] for lot in lots if (key := lot.lot_id.lower()) in report.born}
            ask = [lot.lot_id for lot in lots if lot.lot_id.lower() not in chain]
            if ask:
                chain |= ctx.ledger.get_lots(ask)
        full = [lot for lot in lots if report.baselines.get(lot.id, (None, "", 0))[0] != "verified"]
        facts: dict[int, list[Any]] = {}
        if len(full) > 1:
            ctx.session.scalars(select(Lot).where(Lot.id.in_([lot.id for lot in full])).options(*BATCH_LOADS)).all()
            facts = facts_of(ctx, full)
        for lot in lots:
            chain_lot = chain.get(lot.lot_id.lower())
            state, head, count = report.baselines.get(lot.id, (None, "", 0))
            result = verify_new_events(ctx, lot, head, count, chain_lot) if state == "verified" else None
            if result is None:
                result = verify_lot(ctx, lot, save=False, chain_lot=chain_lot, facts=facts.get(lot.id))
            store_result(ctx, lot, result, flush=False)  # one flush for the part's results, below
        ctx.session.flush()


def reconcile_pending(ctx: Ctx, min_age: timedelta | None = None, sender: str | None = None) -> dict[str, int]:
    """Settle every pending write after a crash or an outage: mined -> applied; reverted -> failed;
    never arrived -> sent again while its nonce is still free, else failed with the reason.

    ``min_age``: leave younger pending writes alone; the maintenance pass of a running server passes it,
    since a write stored as pending a moment ago is most likely being sent by its writer in this or another
    process right now. ``sender``: only that signer's writes (its next write settles them first)."""
    ledger = ctx.ledger
    counts = {"confirmed": 0, "failed": 0, "resent": 0, "waiting": 0}
    query = select(PendingTransaction).order_by(PendingTransaction.created_at)
    if min_age is not None:
        query = query.where(PendingTransaction.created_at <= _now() - min_age)
    if sender is not None:
        query = query.where(PendingTransaction.sender == sender)
    pending = list(ctx.session.scalars(query))
    for ptx in pending:
        if ptx.tx_hash in ctx.runtime.in_flight:
            continue  # its writer is sending it now and applies its receipt itself
        result = ledger.receipt(ptx.tx_hash)
        if result is None and ledger.account_nonce(ptx.sender) <= ptx.nonce:
            try:
                ledger.resend(bytes.fromhex(ptx.raw_tx))
            except ChainUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - the node's refusal is the reason we record
                fail_transaction(ctx, ptx.tx_hash, f"resending failed: {exc}")
                counts["failed"] += 1
                continue
            counts["resent"] += 1
            try:
                result = ledger.wait(ptx.tx_hash)
            except ChainUnavailable:
                counts["waiting"] += 1  # sent; the next start or `lotline reindex` settles it
                continue
        if result is None:
            fail_transaction(ctx, ptx.tx_hash, "never mined: its nonce was used by another transaction")
            counts["failed"] += 1
        elif not result.success:
            fail_transaction(ctx, ptx.tx_hash, "reverted when mined")
            counts["failed"] += 1
        else:
            reverify(ctx, apply_logs(ctx, result.events))
            ctx.session.delete(ptx)
            counts["confirmed"] += 1
    ctx.session.flush()
    return counts


def fail_transaction(ctx: Ctx, tx_hash: str, reason: str) -> None:
    """Mark a transaction's events failed; lots it would have created (and their lineage) are removed, and
    the quantities their transformation took from input lots are given back."""
    session = ctx.session
    events = list(session.scalars(select(Event).where(Event.tx_hash == tx_hash, Event.status == "pending")))
    for event in events:
        lot = event.lot
        if lot.status == "pending" and lot.event_count == 0:
            for edge in list(lot.inputs):
                edge.input_lot.quantity += edge.quantity
                session.delete(edge)
            for other in list(lot.events):
                session.delete(other)
            session.delete(lot)
        else:
            event.status = "failed"
            event.failure_reason = reason
            # A failed write is not the answer to its request: the client's retry with the same key writes
            # it anew instead of being handed this failure back.
            event.idempotency_key = None
    ptx = session.get(PendingTransaction, tx_hash)
    if ptx is not None:
        session.delete(ptx)
    session.flush()


def reindex(ctx: Ctx) -> SyncReport:
    """Rebuild the chain index from the chain plus the stored payloads.

    Everything the chain decides (sequence numbers, blocks, heads, status, custodian) is wiped and read again
    from the logs; payloads, documents and lineage quantities stay, matched back by transaction hash.
    """
    session = ctx.session
    session.execute(
        update(Event)
        .where(Event.status == "confirmed")
        .values(status="pending", seq=None, block_number=None, log_index=None, head_after=None)
    )
    for lot in session.scalars(select(Lot)):
        lot.status = "pending"
        lot.custodian_org_id = lot.creator_org_id
        lot.pending_custodian_org_id = None
        lot.recall_source_id = None
        lot.event_count = 0
        lot.head_hash = hex32(ZERO_HASH)
        lot.verification_state = None
    cursor = session.get(IndexerCursor, CURSOR)
    if cursor is not None:
        session.delete(cursor)
    session.flush()
    session.expire_all()
    return sync(ctx)
