"""Verification: recompute a lot's history from the stored payloads and compare it with the chain.

For each stored event, in order, the payload is hashed again (RFC 8785 + keccak256, docs/hashing.md) and
compared with the data hash the chain logged at that position; the head-hash chain is recomputed and
compared with the head the contract holds. Results:

- ``verified``: every stored event matches the chain, and the chain has no event the store lacks;
- ``tampered``: the first event that does not match is named, with why (payload altered, event missing,
  events reordered, event not on chain);
- ``pending``: the confirmed history matches, but some writes are not mined yet;
- ``unverifiable``: the chain has no record of this lot (no anchor found).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from supply_chain.domain.errors import LotlineError
from supply_chain.domain.hashing import ZERO_HASH, bytes32, hex32, next_head, payload_hash
from supply_chain.domain.kinds import EventKind
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import ChainDeployment, Event, Lot


@dataclass
class Verification:
    state: str
    detail: str
    lot: Lot
    bad_event_id: int | None = None
    checked_events: int = 0


def _label(event: Event, position: int) -> str:
    return f"event #{position} ({EventKind(int(event.kind)).name.lower()}, id {event.id})"


def verify_lot(ctx: Ctx, lot: Lot, *, save: bool = True) -> Verification:
    """Compare the lot's stored history with the chain; store the result on the lot when `save`."""
    result = _verify(ctx, lot)
    if save:
        store_result(ctx, lot, result)
    return result


def store_result(ctx: Ctx, lot: Lot, result: Verification) -> None:
    """Store a verification result on the lot (what pages read)."""
    lot.verification_state = result.state
    lot.verification_detail = result.detail
    lot.verified_at = datetime.now(UTC)
    ctx.session.flush()



def verify_new_events(ctx: Ctx, lot: Lot, verified_head: str, verified_count: int) -> Verification | None:
    """Check only the events after a verified prefix: hash their payloads again, chain them onto the verified
    head and compare with the head the contract holds now. None when that is not conclusive (pending writes,
    a gap, a mismatch): the caller then runs the full `verify_lot`, which names what is wrong."""
    events = list(
        ctx.session.scalars(
            select(Event).where(Event.lot_id == lot.id, Event.status != "failed").order_by(Event.seq.asc().nulls_last())
        )
    )
    new = [e for e in events if e.seq is not None and e.seq > verified_count]
    if any(e.status != "confirmed" for e in events) or not new:
        return None
    if [e.seq for e in new] != list(range(verified_count + 1, verified_count + len(new) + 1)):
        return None
    head = bytes32(verified_head)
    for event in new:
        if event.failure_reason:
            return None
        head = next_head(head, int(event.kind), event.actor_address, bytes32(_hash(event)))
    chain_lot = ctx.ledger.get_lot(lot.lot_id)
    if hex32(head) != chain_lot.head.lower() or chain_lot.event_count != verified_count + len(new):
        return None
    return Verification(
        "verified",
        f"{chain_lot.event_count} events match the chain (head {chain_lot.head}; the {len(new)} newest checked "
        "against the previously verified head)",
        lot,
        None,
        chain_lot.event_count,
    )


def _verify(ctx: Ctx, lot: Lot) -> Verification:
    ledger = ctx.ledger
    chain_lot = ledger.get_lot(lot.lot_id)
    events = list(
        ctx.session.scalars(
            select(Event).where(Event.lot_id == lot.id).order_by(Event.seq.asc().nulls_last(), Event.id)
        )
    )
    pending = [e for e in events if e.status == "pending"]
    stored = [e for e in events if e.status == "confirmed"]
    if not chain_lot.exists:
        if pending and not stored:
            return Verification("pending", "the lot's creation is not mined yet", lot)
        return Verification("unverifiable", "the chain has no record of this lot", lot)
    deployment = ctx.session.scalars(select(ChainDeployment).where(ChainDeployment.address == ledger.address)).first()
    from_block = deployment.block_number if deployment else 0
    logs = [e for e in ledger.logs(from_block, lot_id=lot.lot_id) if e.name == "LotEventRecorded"]
    logs.sort(key=lambda e: int(e.args["seq"]))
    chain_hashes = [str(log.args["dataHash"]).lower() for log in logs]
    head = ZERO_HASH
    for position, event in enumerate(stored, start=1):
        recomputed = _hash(event)
        if position > len(logs):
            return Verification(
                "tampered",
                f"{_label(event, position)} is not on the chain: the chain records "
                f"{len(logs)} events; this one was inserted off chain",
                lot,
                event.id,
                position - 1,
            )
        log = logs[position - 1]
        if (
            recomputed == chain_hashes[position - 1]
            and int(event.kind) == int(log.args["kind"])
            and event.actor_address.lower() == str(log.args["actor"]).lower()
        ):
            head = next_head(head, int(event.kind), event.actor_address, bytes32(recomputed))
            continue
        if event.seq is not None and position < event.seq <= len(logs) and recomputed == chain_hashes[event.seq - 1]:
            missing = logs[position - 1]
            why = (
                f"the chain's event #{position} (kind {EventKind(int(missing.args['kind'])).name.lower()}, "
                f"transaction {missing.tx_hash}) is missing from the store before it"
            )
        elif recomputed in chain_hashes:
            where = chain_hashes.index(recomputed) + 1
            why = f"events out of order: it holds what the chain recorded as event #{where}"
        elif event.failure_reason == "payload not held by this node":
            return Verification(
                "unverifiable", f"{_label(event, position)}: its payload is not held here", lot, event.id, position - 1
            )
        elif recomputed != chain_hashes[position - 1]:
            why = "its payload was altered: the payload's hash differs from the hash anchored on chain"
        else:
            why = "its kind or actor differs from what the chain recorded"
        return Verification("tampered", f"{_label(event, position)}: {why}", lot, event.id, position - 1)
    if len(stored) < len(logs):
        missing = logs[len(stored)]
        return Verification(
            "tampered",
            f"the chain's event #{len(stored) + 1} (kind "
            f"{EventKind(int(missing.args['kind'])).name.lower()}, transaction {missing.tx_hash}) is "
            "missing from the store",
            lot,
            None,
            len(stored),
        )
    if hex32(head) != chain_lot.head.lower() or len(stored) != chain_lot.event_count:
        return Verification(
            "tampered",
            f"recomputed head {hex32(head)} differs from the chain's {chain_lot.head}",
            lot,
            None,
            len(stored),
        )
    if pending:
        return Verification(
            "pending", f"{len(stored)} events verified; {len(pending)} not mined yet", lot, None, len(stored)
        )
    return Verification(
        "verified", f"{len(stored)} events match the chain (head {chain_lot.head})", lot, None, len(stored)
    )


def _hash(event: Event) -> str:
    try:
        return hex32(payload_hash(event.payload))
    except LotlineError:
        return "0x" + "ff" * 32  # a payload that no longer canonicalises cannot match anything


def verify_all(ctx: Ctx) -> list[Verification]:
    """Verify every lot the store knows, in creation order."""
    lots = ctx.session.scalars(select(Lot).order_by(Lot.id))
    return [verify_lot(ctx, lot) for lot in lots]
