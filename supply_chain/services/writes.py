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

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from supply_chain.chain.ledger import PreparedTx, TxResult
from supply_chain.domain.errors import ChainUnavailable
from supply_chain.services import indexer
from supply_chain.services.orgs import signer
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import Event, Organisation, PendingTransaction


def execute(
    ctx: Ctx, actor: Organisation, calls: Sequence[tuple[str, Sequence[Any]]], events: Sequence[Event]
) -> TxResult:
    """Send `calls` (one transaction; several are batched with multicall) that append `events`."""
    ledger = ctx.ledger
    account = signer(ctx, actor)
    if len(calls) == 1:
        prepared = ledger.prepare(account, calls[0][0], calls[0][1])
    else:
        prepared = ledger.prepare_multicall(account, calls)
    in_flight = ctx.runtime.in_flight
    in_flight.add(prepared.tx_hash)  # set.add / discard are atomic under the GIL
    try:
        return _send(ctx, prepared, events)
    finally:
        in_flight.discard(prepared.tx_hash)


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
    report = indexer.apply_logs(ctx, result.events)
    indexer.reverify(ctx, report)
    ptx = session.get(PendingTransaction, prepared.tx_hash)
    if ptx is not None:
        session.delete(ptx)
    session.flush()
    # The maintenance pass or another writer may have applied this receipt first: what the caller is told
    # (and what the answer shows) is the stored row, not this session's copy from before the send.
    session.scalars(
        select(Event).where(Event.tx_hash == prepared.tx_hash).execution_options(populate_existing=True)
    ).all()
    session.commit()
    return result
