"""The write path that keeps the store and the chain in agreement.

1. The caller has validated input and added its rows (lots, events, inspections, ...) to the session.
2. `execute` asks the ledger to check and sign the transaction. A refusal (not custodian, lot held, ...)
   raises before anything is committed, so nothing is written anywhere.
3. The rows are committed as *pending*, together with the signed raw transaction, before it is sent:
   a crash from here on is settled at the next start by `indexer.reconcile_pending`.
4. The transaction is sent; on its receipt the logs are applied (rows confirmed) and committed.
   A node that goes away leaves the rows pending and answers ChainUnavailable saying so; a transaction
   reverted when mined marks its rows failed (lots it would have created are removed) and raises.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from supply_chain.chain.ledger import PreparedTx, TxResult
from supply_chain.domain.errors import ChainUnavailable, LotlineError
from supply_chain.services import indexer
from supply_chain.services.orgs import signer
from supply_chain.services.runtime import Ctx
from supply_chain.store.db import writer_lock
from supply_chain.store.models import Event, Organisation, PendingTransaction

APPLY_ATTEMPTS = 4
"""How often a mined transaction's receipt is applied before the error is reported (see ``_send``)."""


def execute(
    ctx: Ctx,
    actor: Organisation,
    calls: Sequence[tuple[str, Sequence[Any]]],
    events: Sequence[Event],
    *,
    check: bool = True,
) -> TxResult:
    """Send `calls` (one transaction; several are batched with multicall) that append `events`.

    ``check=False`` skips the pre-flight (the ``eth_call`` where the gas limit is fixed, the gas estimate on a
    node; ``Ledger.prepare``): for batches planned and rehearsed already (capture and import jobs), so the
    chain runs each batch once. A
    refusal then comes after step 3: the rows are failed (lots the batch would create removed), the chain
    applied nothing (a multicall is all or nothing), and the error is raised as with the check.

    A refused batch of several calls names its refused call: the error's ``call_index`` is its position in
    ``calls`` (found by ``Ledger.refused_call`` only once the batch was refused)."""
    ledger = ctx.ledger
    account = signer(ctx, actor)
    try:
        with sender_lock(ctx, account.address):
            _send_stranded(ctx, account.address)
            if len(calls) == 1:
                prepared = ledger.prepare(account, calls[0][0], calls[0][1], check=check)
            else:
                prepared = ledger.prepare_multicall(account, calls, check=check)
            in_flight = ctx.runtime.in_flight
            in_flight.add(prepared.tx_hash)  # set.add / discard are atomic under the GIL
            try:
                return _send(ctx, prepared, events)
            finally:
                in_flight.discard(prepared.tx_hash)
    except LotlineError as exc:
        if len(calls) > 1 and not isinstance(exc, ChainUnavailable) and getattr(exc, "call_index", None) is None:
            with suppress(LotlineError):  # the chain went away meanwhile: the batch is refused all the same
                exc.call_index = ledger.refused_call(account.address, calls)  # type: ignore[attr-defined]
        raise


def _send_stranded(ctx: Ctx, address: str) -> None:
    """Settle this signer's earlier writes left pending by an outage (sent again) or a crash, before its next
    transaction takes a nonce: the stranded write keeps its place in line (and its nonce) instead of being
    overtaken and failed. Inside the sender lock, a pending row of this signer that this process is not
    sending is nobody's: its writer answered 503 or died."""
    stranded = ctx.session.scalar(
        select(PendingTransaction.tx_hash).where(
            PendingTransaction.sender == address, PendingTransaction.tx_hash.not_in(list(ctx.runtime.in_flight))
        )
    )
    if stranded is None:
        return
    # Settled in the caller's unit of work (committed with its pending rows): a refusal of the new write
    # rolls the settlement back too, and the next pass applies the mined receipt again; nothing is lost.
    counts = indexer.reconcile_pending(ctx, sender=address)
    if counts.get("waiting"):
        raise ChainUnavailable(
            "The chain did not confirm this organisation's earlier write yet; nothing new was written. Try again."
        )


@contextmanager
def sender_lock(ctx: Ctx, address: str) -> Iterator[None]:
    """One write at a time per signing key across every process sharing the database.

    A nonce is taken from the node's pending count when a transaction is signed, so two processes signing
    for one organisation between each other's signing and sending would take the same nonce (one of the two
    writes then fails). On PostgreSQL a session-level advisory lock keyed by the address, held on a
    connection of its own from signing until the receipt is applied, puts them in line. On SQLite, with one
    server process the ledger's per-address lock within the process is enough; with several (``lotline serve
    --workers N``, ``Settings.workers`` other than 1) the database's write lock, which every process on the
    file queues for (``db.writer_lock``), is held from signing until the receipt is applied: SQLite lets one
    writer in at a time anyway, and no other process can sign between this one's signing and sending.
    """
    engine = ctx.runtime.engine
    if engine.dialect.name != "postgresql":
        shared = writer_lock(engine) if ctx.settings.workers != 1 else None
        if shared is None:
            yield
            return
        with shared:
            yield
        return
    key = int.from_bytes(bytes.fromhex(address[2:18]), "big", signed=True)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def _send(ctx: Ctx, prepared: PreparedTx, events: Sequence[Event]) -> TxResult:
    ledger = ctx.ledger
    session = ctx.session
    for event in events:
        event.tx_hash = prepared.tx_hash
        event.status = "pending"
    session.add(
        PendingTransaction(
            tx_hash=prepared.tx_hash,
            raw_tx=prepared.raw.hex(),
            sender=prepared.sender,
            nonce=prepared.nonce,
            function=prepared.function,
        )
    )
    try:
        session.commit()
    except Exception:
        ledger.abandon(prepared)  # never sent: its nonce must not leave a gap
        raise
    try:
        result = ledger.submit(prepared)
    except ChainUnavailable as exc:
        raise ChainUnavailable(
            f"{exc.message}. The request is stored as pending (transaction {prepared.tx_hash}) and will be "
            "sent again when the chain is reachable."
        ) from exc
    except Exception as exc:  # refused or reverted: its rows are failed (lots it would create removed)
        indexer.fail_transaction(ctx, prepared.tx_hash, getattr(exc, "message", None) or str(exc))
        session.commit()
        raise
    for attempt in range(APPLY_ATTEMPTS):
        try:
            report = indexer.apply_logs(ctx, result.events)
            indexer.reverify(ctx, report)
            ptx = session.get(PendingTransaction, prepared.tx_hash)
            if ptx is not None:
                session.delete(ptx)
            session.flush()
            break
        except OperationalError:
            # The database chose this transaction to break a lock cycle (PostgreSQL's deadlock detector) or
            # timed it out: the write is mined, so applying its receipt is tried again, not reported failed.
            session.rollback()
            if attempt == APPLY_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    # The maintenance pass or another writer may have applied this receipt first: what the caller is told
    # (and what the answer shows) is the stored row, not this session's copy from before the send.
    session.scalars(
        select(Event).where(Event.tx_hash == prepared.tx_hash).execution_options(populate_existing=True)
    ).all()
    session.commit()
    indexer.follow(ctx, result.block_number)
    return result
