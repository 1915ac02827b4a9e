"""Verification: recompute a lot's history from the stored payloads and compare it with the chain.

For each stored event, in order, the payload is hashed again under its hash scheme (RFC 8785 + keccak256;
under scheme 2 the fields that are not public enter as salted commitments; docs/hashing.md) and compared
with the data hash the chain logged at that position; the head-hash chain is recomputed and compared with
the head the contract holds. Then the rest of the stored record is compared with what the
chain and the anchored payloads say:

- the lot's state: its status, creator, custodian, pending custodian and input lots against ``getLot``;
- the rows pages show that are copies of anchored payloads: recalls (reason, class, instructions),
  inspection outcomes and cold-chain batch summaries against their events' payloads;
- every stored document file: hashed again, and its SHA-256 against the one its event anchored.

Results:

- ``verified``: every stored event matches the chain, the chain has no event the store lacks, and the
  lot's state, copied rows and files match too;
- ``tampered``: the first event that does not match is named, with why (payload altered, event missing,
  events reordered, event not on chain); or, when the events match, every state column, row or file that
  differs, naming it with the stored value and the chain's;
- ``pending``: the confirmed history matches, but some writes are not mined yet;
- ``unverifiable``: the chain has no record of this lot (no anchor found).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, Text, bindparam, cast, select, type_coerce, update
from sqlalchemy.orm import joinedload, selectinload

from supply_chain.chain.ledger import ChainLot
from supply_chain.domain.disclosure import data_hash, disclosed_hash
from supply_chain.domain.errors import LotlineError
from supply_chain.domain.hashing import ZERO_HASH, bytes32, hex32, next_head
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import Status
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import (
    ChainDeployment,
    Document,
    Event,
    Inspection,
    Lot,
    LotInput,
    Organisation,
    Recall,
    SensorBatch,
    confirmed_events,
)
from supply_chain.store.queries import named_organisation


@dataclass
class Verification:
    state: str
    detail: str
    lot: Lot
    bad_event_id: int | None = None
    checked_events: int = 0


BATCH_LOADS = (
    selectinload(Lot.inputs).joinedload(LotInput.input_lot),
    joinedload(Lot.recall_source),
    named_organisation(Lot.creator),
    named_organisation(Lot.custodian),
    named_organisation(Lot.pending_custodian),
    selectinload(Lot.recalls).joinedload(Recall.event),
    selectinload(Lot.inspections),
    selectinload(Lot.sensor_batches).joinedload(SensorBatch.event),
    selectinload(Lot.documents).joinedload(Document.inspection).joinedload(Inspection.event),
)
"""What verification reads of each lot besides its events (the lineage, the recall source, the organisations
it compares with the chain's, without their company prefixes, the rows copied from anchored payloads and the
events that anchored them), loaded for a batch at once, not lot by lot: by the verification pass
(``startup.verify_ids``) and after a write of many lots (``indexer.reverify``)."""


def _label(event: Event, position: int) -> str:
    return f"event #{position} ({EventKind(int(event.kind)).name.lower()}, id {event.id})"


def verify_lot(
    ctx: Ctx,
    lot: Lot,
    *,
    save: bool = True,
    chain_lot: ChainLot | None = None,
    facts: Sequence[Any] | None = None,
) -> Verification:
    """Compare the lot's stored history with the chain; store the result on the lot when `save`.
    ``chain_lot``: the chain's ``getLot`` answer read just before (``Ledger.get_lots``, many lots at once);
    ``facts``: the lot's events as read just before (``facts_of``, many lots in one query)."""
    result = _verify(ctx, lot, chain_lot, facts)
    if save:
        store_result(ctx, lot, result)
    return result


def store_result(ctx: Ctx, lot: Lot, result: Verification, *, flush: bool = True) -> None:
    """Store a verification result on the lot (what pages read); ``flush=False`` leaves it to the caller's next
    flush (one for the results of many lots)."""
    lot.verification_state = result.state
    lot.verification_detail = result.detail
    lot.verified_at = datetime.now(UTC)
    if flush:
        ctx.session.flush()


_LOTS = Lot.__table__
_STORE_RESULTS = (
    update(_LOTS)
    .where(_LOTS.c.id == bindparam("lot_pk"), _LOTS.c.revision == bindparam("read_revision"))
    .values(
        verification_state=bindparam("state"),
        verification_detail=bindparam("detail"),
        verified_at=bindparam("at"),
        revision=_LOTS.c.revision + 1,
    )
)


def store_results(ctx: Ctx, results: Sequence[tuple[Verification, int]]) -> int:
    """Store many results (each with the ``Lot.revision`` its lot had when it was read) in one UPDATE statement
    run once per lot (executemany), moving each lot's revision as a flush would (the scan page's cache). A lot
    whose row moved since it was read (a write, and its own verification, came in between) keeps what is
    stored: that is newer than this result. Returns how many results were stored."""
    if not results:
        return 0
    at = datetime.now(UTC)
    rows = [
        {"lot_pk": r.lot.id, "read_revision": revision, "state": r.state, "detail": r.detail, "at": at}
        for r, revision in results
    ]
    outcome = ctx.session.connection().execute(_STORE_RESULTS, rows)
    return int(getattr(outcome, "rowcount", 0) or 0)


def verify_new_events(
    ctx: Ctx, lot: Lot, verified_head: str, verified_count: int, chain_lot: ChainLot | None = None
) -> Verification | None:
    """Check only the events after a verified prefix: hash their payloads again, chain them onto the verified
    head and compare with the head the contract holds now. None when that is not conclusive (pending writes,
    a gap, a mismatch): the caller then runs the full `verify_lot`, which names what is wrong. The lot's
    state, copied rows and document files are compared in full as well (the `getLot` answer is at hand)."""
    # Only the events after the verified prefix are read, and whether any write is not mined yet: the cost
    # does not grow with the lot's history (the prefix is what the verified head commits to).
    # (``confirmed_events``: the status is written into the statement, so the database sees it is an index probe
    # on ``ix_events_unconfirmed_lot_id``, not a read of every event of the lot.)
    unmined = select(Event.id).where(Event.lot_id == lot.id, ~confirmed_events(), Event.status != "failed")
    if ctx.session.scalars(unmined.limit(1)).first() is not None:
        return None
    new = _facts(ctx, lot, Event.status != "failed", Event.seq > verified_count, order=(Event.seq.asc(),))
    if not new:
        return None
    if [e.seq for e in new] != list(range(verified_count + 1, verified_count + len(new) + 1)):
        return None
    head = bytes32(verified_head)
    for event in new:
        if event.failure_reason:
            return None
        head = next_head(head, int(event.kind), event.actor_address, _data_hash(event))
    chain_lot = chain_lot or ctx.ledger.get_lot(lot.lot_id)
    if hex32(head) != chain_lot.head.lower() or chain_lot.event_count != verified_count + len(new):
        return None
    if record_findings(ctx, lot, chain_lot, _finding_facts(ctx, lot)):
        return None
    return Verification(
        "verified",
        f"{chain_lot.event_count} events match the chain (head {chain_lot.head}; the {len(new)} newest checked "
        "against the previously verified head)",
        lot,
        None,
        chain_lot.event_count,
    )


_FINDING_KINDS = (EventKind.RECALL, EventKind.RECALL_ENDED, EventKind.INSPECTION)
"""The kinds of event ``record_findings`` compares stored rows with (documents aside: see ``_finding_facts``)."""


def _finding_facts(ctx: Ctx, lot: Lot) -> list[Any]:
    """The confirmed events ``record_findings`` needs, in history order: those of ``_FINDING_KINDS``, or every
    confirmed event when the lot holds a document not cited by an inspection (any event may anchor it by a
    ``*_sha256`` field). A lot's observations and the like are not read."""
    if any(d.inspection_id is None for d in lot.documents):
        return _facts(ctx, lot, confirmed_events(), order=_HISTORY_ORDER)
    return _facts(ctx, lot, confirmed_events(), Event.kind.in_(_FINDING_KINDS), order=_HISTORY_ORDER)


def _verify(ctx: Ctx, lot: Lot, chain_lot: ChainLot | None = None, facts: Sequence[Any] | None = None) -> Verification:
    ledger = ctx.ledger
    chain_lot = chain_lot or ledger.get_lot(lot.lot_id)
    events = list(facts) if facts is not None else _facts(ctx, lot, order=_HISTORY_ORDER)
    pending = [e for e in events if e.status == "pending"]
    stored = [e for e in events if e.status == "confirmed"]
    if not chain_lot.exists:
        if pending and not stored:
            return Verification("pending", "the lot's creation is not mined yet", lot)
        return Verification("unverifiable", "the chain has no record of this lot", lot)
    if len(stored) == chain_lot.event_count and _chained_head(stored) == chain_lot.head.lower():
        # The head the contract holds commits to every (kind, actor, data hash) in order, so a match proves the
        # stored history is the chain's, event for event, without reading a single log.
        return _conclude(ctx, lot, chain_lot, events, stored, pending)
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
    return _conclude(ctx, lot, chain_lot, events, stored, pending)


_FACT_COLUMNS = (
    Event.id,
    Event.seq,
    type_coerce(Event.kind, Integer).label("kind"),
    Event.actor_address,
    cast(Event.payload, Text).label("stored_payload"),
    Event.hash_scheme,
    Event.salt,
    Event.disclosure,
    Event.status,
    Event.failure_reason,
)
"""What verification reads of an event: the payload as the database holds it (its text, decoded only where a
finding needs a field), the rest as plain values. A lot of 1,000 events was mostly ORM hydration of columns
verification never looks at, then decoding every payload."""


class _Fact:
    """One event as verification reads it (``_FACT_COLUMNS``): the attribute names of ``Event``, with
    ``payload`` decoded from ``stored_payload`` on first use."""

    __slots__ = (
        "id",
        "seq",
        "kind",
        "actor_address",
        "stored_payload",
        "hash_scheme",
        "salt",
        "disclosure",
        "status",
        "failure_reason",
        "_payload",
    )

    def __init__(self, row: Sequence[Any]) -> None:
        (
            self.id,
            self.seq,
            self.kind,
            self.actor_address,
            self.stored_payload,
            self.hash_scheme,
            self.salt,
            self.disclosure,
            self.status,
            self.failure_reason,
        ) = row
        self._payload: Any = None

    @property
    def payload(self) -> Any:
        if self._payload is None:
            self._payload = json.loads(self.stored_payload)
        return self._payload


def _facts(ctx: Ctx, lot: Lot, *where: Any, order: Sequence[Any]) -> list[Any]:
    """The lot's events as ``_Fact`` rows, read from the database as stored now."""
    statement = select(*_FACT_COLUMNS).where(Event.lot_id == lot.id, *where).order_by(*order)
    return [_Fact(row) for row in ctx.session.execute(statement)]


_HISTORY_ORDER = (Event.seq.asc().nulls_last(), Event.id)
"""The order `_verify` reads a lot's events in: the chain's sequence, events without one (not mined) last."""


def facts_of(ctx: Ctx, lots: Sequence[Lot]) -> dict[int, list[Any]]:
    """The events of each of ``lots`` as `_verify` reads them (``_FACT_COLUMNS``, in ``_HISTORY_ORDER``), keyed
    by the lot's store key, in one query for all of them (the verification pass reads a batch at once)."""
    out: dict[int, list[Any]] = {lot.id: [] for lot in lots}
    if not out:
        return out
    statement = (
        select(Event.lot_id, *_FACT_COLUMNS).where(Event.lot_id.in_(list(out))).order_by(Event.lot_id, *_HISTORY_ORDER)
    )
    for row in ctx.session.execute(statement):
        out[row[0]].append(_Fact(row[1:]))
    return out


def _chained_head(stored: Sequence[Event]) -> str:
    """The head-hash chain recomputed over the stored confirmed events, in order (docs/hashing.md)."""
    head = ZERO_HASH
    for event in stored:
        head = next_head(head, int(event.kind), event.actor_address, _data_hash(event))
    return hex32(head)


def _conclude(
    ctx: Ctx, lot: Lot, chain_lot: ChainLot, events: Sequence[Event], stored: Sequence[Event], pending: Sequence[Event]
) -> Verification:
    """The events match the chain: compare the rest of the record, then say verified or pending."""
    findings = record_findings(ctx, lot, chain_lot, list(events))
    if findings:
        return Verification("tampered", "; ".join(findings), lot, None, len(stored))
    if pending:
        return Verification(
            "pending", f"{len(stored)} events verified; {len(pending)} not mined yet", lot, None, len(stored)
        )
    return Verification(
        "verified", f"{len(stored)} events match the chain (head {chain_lot.head})", lot, None, len(stored)
    )


# ------------------------------------------------------------------ the rest of the record


def record_findings(ctx: Ctx, lot: Lot, chain_lot: ChainLot, events: Sequence[Event]) -> list[str]:
    """Where the stored record, beyond the events' hashes, differs from the chain: the lot's state, the rows
    copied from anchored payloads and the document files. Each finding names the column, row or file with the
    stored value and the chain's (or the anchored payload's). Empty when everything matches.

    Only confirmed events count: a write not mined yet has not changed the chain, nor the stored state (the
    indexer applies state from the chain's logs only)."""
    confirmed = [e for e in events if e.status == "confirmed" and e.failure_reason is None]
    return [
        *_state_findings(ctx, lot, chain_lot),
        *_recall_findings(lot, confirmed),
        *_inspection_findings(lot, confirmed),
        *_sensor_findings(lot),
        *_document_findings(ctx, lot, confirmed),
    ]


def _org_label(ctx: Ctx, address: str | None) -> str:
    if address is None:
        return "none"
    org = ctx.session.scalars(select(Organisation).where(Organisation.chain_address == address)).first()
    return f"{org.name} ({address})" if org is not None else address


def _stored_org(ctx: Ctx, org_id: int | None) -> tuple[str | None, str]:
    """(the organisation's chain address, how to name it) for a stored organisation key."""
    if org_id is None:
        return None, "none"
    org = ctx.session.get(Organisation, org_id)
    if org is None:
        return f"unknown organisation {org_id}", f"unknown organisation {org_id}"
    return org.chain_address, f"{org.name} ({org.chain_address})"


def _state_findings(ctx: Ctx, lot: Lot, chain_lot: ChainLot) -> list[str]:
    out = []
    chain_status = Status.of_chain(chain_lot.status)
    if chain_status is not None and lot.status != chain_status.value:
        out.append(f"stored status '{lot.status}' differs from the chain's '{chain_status.value}'")
    for column, org_id, on_chain in (
        ("creator", lot.creator_org_id, chain_lot.creator),
        ("custodian", lot.custodian_org_id, chain_lot.custodian),
        ("pending custodian", lot.pending_custodian_org_id, chain_lot.pending_custodian),
    ):
        address, shown = _stored_org(ctx, org_id)
        if (address or "").lower() != (on_chain or "").lower():
            out.append(f"stored {column} '{shown}' differs from the chain's '{_org_label(ctx, on_chain)}'")
    stored_inputs = {edge.input_lot.lot_id.lower(): edge.input_lot for edge in lot.inputs}
    chain_inputs = [i.lower() for i in chain_lot.inputs]
    if set(stored_inputs) != set(chain_inputs):
        known = (
            {x.lot_id: x for x in ctx.session.scalars(select(Lot).where(Lot.lot_id.in_(chain_inputs)))}
            if chain_inputs
            else {}
        )

        def names(ids: Sequence[str], lots: dict[str, Lot]) -> str:
            shown = [f"{lots[i].gtin}/{lots[i].lot_code}" if i in lots else i for i in ids]
            return "[" + ", ".join(sorted(shown)) + "]"

        out.append(
            f"stored input lots {names(list(stored_inputs), stored_inputs)} differ from the chain's "
            f"{names(chain_inputs, known)}"
        )
    if chain_status is Status.RECALLED or lot.recall_source_id is not None:
        on_chain = ctx.ledger.recall_source_of(lot.lot_id) if chain_status is Status.RECALLED else None
        stored = lot.recall_source.lot_id if lot.recall_source is not None else None
        if (stored or "").lower() != (on_chain or "").lower():
            source = _lot_by_chain_id(ctx, on_chain) if on_chain else None
            out.append(
                f"stored recall source '{_lot_text(lot.recall_source)}' differs from the chain's "
                f"'{_lot_text(source) if source is not None else on_chain or 'none'}'"
            )
    return out


def _lot_by_chain_id(ctx: Ctx, lot_id: str) -> Lot | None:
    return ctx.session.scalars(select(Lot).where(Lot.lot_id == lot_id.lower())).first()


def _lot_text(lot: Lot | None) -> str:
    return f"{lot.gtin}/{lot.lot_code}" if lot is not None else "none"


def _label_seq(event: Event) -> str:
    return f"event #{event.seq} ({EventKind(int(event.kind)).name.lower()})"


def _recall_findings(lot: Lot, confirmed: Sequence[Event]) -> list[str]:
    """The recalls table is what lists, open data and notices read: each row must say what its anchored
    recall event says, and each recall issued on this lot (not one that reached it from an input) must have
    its row."""
    out = []
    by_event = {e.id: e for e in confirmed if int(e.kind) == EventKind.RECALL}
    rows = {r.event_id: r for r in lot.recalls}
    for recall in lot.recalls:
        event = recall.event
        if event.status != "confirmed" or event.failure_reason is not None:
            continue
        if event.id not in by_event:
            out.append(f"recall #{recall.id} cites {_label_seq(event)}, which is not a recall of this lot")
            continue
        for column, value in (
            ("reason", recall.reason),
            ("recall_class", recall.recall_class),
            ("instructions", recall.instructions),
        ):
            anchored = event.payload.get(column)
            if (value or None) != (anchored or None):
                out.append(
                    f"recall #{recall.id}: stored {column} {value!r} differs from the {anchored!r} anchored by "
                    f"{_label_seq(event)}"
                )
    for event in by_event.values():
        issued_here = not event.payload.get("source_lot_code")
        if issued_here and event.id not in rows:
            out.append(
                f"the recall anchored by {_label_seq(event)} ({event.payload.get('reason')!r}) is missing from "
                "the stored recalls"
            )
    # The end of the recall (endRecall: once per lot) is what the recall pages and open data call terminated.
    issued = [r for r in lot.recalls if r.event.status == "confirmed" and r.event.failure_reason is None]
    for event in (e for e in confirmed if int(e.kind) == EventKind.RECALL_ENDED):
        row = max(issued, key=lambda r: r.id, default=None)
        if row is None or row.terminated_at is None:
            out.append(f"the end of the recall anchored by {_label_seq(event)} is missing from the stored recalls")
        elif (row.termination_reason or None) != (event.payload.get("reason") or None):
            out.append(
                f"recall #{row.id}: stored termination_reason {row.termination_reason!r} differs from the "
                f"{event.payload.get('reason')!r} anchored by {_label_seq(event)}"
            )
    return out


def _inspection_findings(lot: Lot, confirmed: Sequence[Event]) -> list[str]:
    """Inspection outcomes are shown from their rows: each must say what its anchored event says, and each
    anchored inspection must have its row."""
    out = []
    by_event = {e.id: e for e in confirmed if int(e.kind) == EventKind.INSPECTION}
    rows = {i.event_id for i in lot.inspections}
    for inspection in lot.inspections:
        event = by_event.get(inspection.event_id)
        if event is None:
            continue  # not mined yet (its event pending or failed)
        anchored = event.payload.get("outcome")
        if inspection.outcome != anchored:
            out.append(
                f"inspection #{inspection.id}: stored outcome '{inspection.outcome}' differs from the "
                f"'{anchored}' anchored by {_label_seq(event)}"
            )
    for event in by_event.values():
        if event.id not in rows:
            out.append(
                f"the inspection anchored by {_label_seq(event)} (outcome '{event.payload.get('outcome')}') is "
                "missing from the stored inspections"
            )
    return out


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _sensor_findings(lot: Lot) -> list[str]:
    """Cold-chain summaries are shown from their batch rows: each must say what its anchored event says."""
    out = []
    for batch in lot.sensor_batches:
        event = batch.event
        if event.status != "confirmed" or event.failure_reason is not None:
            continue
        payload = event.payload
        checks = [
            ("merkle_root", batch.merkle_root, payload.get("merkle_root")),
            ("reading_count", batch.reading_count, payload.get("reading_count")),
        ]
        for column, key in (("min_temp", "min_temperature_c"), ("max_temp", "max_temperature_c")):
            if payload.get(key) is not None:
                checks.append((column, _decimal(getattr(batch, column)), _decimal(payload[key])))
        for column, stored, anchored in checks:
            if stored != anchored:
                out.append(
                    f"cold-chain batch #{batch.id}: stored {column} {stored} differs from the {anchored} anchored "
                    f"by {_label_seq(event)}"
                )
    return out


def _file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _anchored_sha256(document: Document, confirmed: Sequence[Event]) -> tuple[Event | None, str | None]:
    """(the confirmed event that cites the document, the SHA-256 it anchored); (None, None) when no confirmed
    event cites it. A certificate is cited by its inspection; any other document by a ``*_sha256`` field."""
    if document.inspection is not None:
        event = document.inspection.event
        if event.status != "confirmed":
            return event, None
        return event, event.payload.get("certificate_sha256")
    for event in confirmed:
        for key, value in event.payload.items():
            if key.endswith("_sha256") and value == document.sha256:
                return event, value
    return None, None


def _document_findings(ctx: Ctx, lot: Lot, confirmed: Sequence[Event]) -> list[str]:
    """Every stored document: its file is hashed again and must equal the recorded SHA-256, which must equal
    the SHA-256 its event anchored on chain."""
    out = []
    home = Path(ctx.settings.home)
    for document in lot.documents:
        name = f"document #{document.id} '{document.filename}'"
        event, anchored = _anchored_sha256(document, confirmed)
        if event is not None and event.status != "confirmed":
            continue  # its inspection is not mined yet: nothing anchored to compare with
        if event is None or anchored is None:
            out.append(f"{name} is cited by no event anchored on chain")
        elif anchored != document.sha256:
            out.append(
                f"{name}: stored SHA-256 {document.sha256} differs from the {anchored} anchored by {_label_seq(event)}"
            )
        path = Path(document.storage_path)
        path = path if path.is_absolute() else home / path
        if not path.is_file():
            out.append(f"{name}: its file {document.storage_path} is missing from the instance folder")
            continue
        actual = _file_sha256(path)
        if actual != document.sha256:
            out.append(
                f"{name}: its file {document.storage_path} was altered (SHA-256 {actual}, recorded {document.sha256})"
            )
    return out


_RECOMPUTED: dict[bytes, bytes] = {}
"""Data hashes this process has recomputed, keyed by a SHA-256 of exactly what went into each: the kind, the
scheme, the salt and the payload's text as the database holds it. Canonical JSON and the salted commitments
cost a fraction of a millisecond an event; this digest is computed in C in about a microsecond, without
decoding the payload. Any change to a stored payload changes its text and so its digest, so a tampered event
is never answered from here: it is hashed again and found. The memo lives in this process's memory only
(never in the database an attacker could edit) and starts empty at every start."""

_RECOMPUTED_MAX = 200_000

_UNHASHABLE = b"\xff" * 32
"""What a payload that no longer decodes or canonicalises recomputes to: it cannot match any anchored hash."""


def _data_hash(event: _Fact) -> bytes:
    """The event's ``dataHash`` recomputed from the stored payload under its hash scheme (scheme 1: the whole
    payload; scheme 2: its public fields and the salted commitments to the others, docs/hashing.md); for an
    event held in part (``disclosure``), from the fields shown and their proof."""
    stored = event.stored_payload
    disclosure = event.disclosure
    shown = "" if disclosure is None else json.dumps(disclosure, sort_keys=True, ensure_ascii=False)
    key = hashlib.sha256(
        f"{int(event.kind)}\x00{event.hash_scheme}\x00{event.salt}\x00{stored}\x00{shown}".encode(
            "utf-8", "surrogatepass"
        )
    ).digest()
    known = _RECOMPUTED.get(key)
    if known is not None:
        return known
    try:
        if disclosure is not None:
            # held in part (a Lotline export taken in): the fields shown, re-hashed with their proof
            result = disclosed_hash(json.loads(stored), disclosure)
        else:
            result = data_hash(int(event.kind), json.loads(stored), event.hash_scheme, event.salt)
    except (LotlineError, ValueError, TypeError):
        return _UNHASHABLE
    if len(_RECOMPUTED) >= _RECOMPUTED_MAX:
        _RECOMPUTED.clear()
    _RECOMPUTED[key] = result
    return result


def _hash(event: _Fact) -> str:
    """``_data_hash`` as ``0x`` hex, as the chain's logs give data hashes."""
    return hex32(_data_hash(event))


def verify_all(ctx: Ctx) -> list[Verification]:
    """Verify every lot the store knows, in creation order."""
    lots = ctx.session.scalars(select(Lot).order_by(Lot.id))
    return [verify_lot(ctx, lot) for lot in lots]
