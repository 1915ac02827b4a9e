"""Events a captured document carries that the chain already holds: a Lotline export (``lotline:payloadHash``,
``lotline:seq``, ``lotline:kde``, ``lotline:proof``) captured by another Lotline instance on the same chain.

Such an event was signed on chain by the organisation that wrote it. Capturing it again would make the
capturer sign it as its own; instead it is matched to the chain's record of the lot (the ``LotEventRecorded``
log at its sequence number) and verified there: the log's ``dataHash`` is the one the event names, its kind is
the event's CTE, and the fields it shows (``lotline:kde``) re-hash to that ``dataHash`` with their proof
(salted commitments, docs/hashing.md section 6). A match is stored in the event repository as
``known_on_chain``, attributed to the chain's signer, and never written again; a mismatch refuses the
document (``chain_mismatch``): a copy of history that disagrees with the chain is not taken in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from supply_chain.chain.ledger import ChainEvent
from supply_chain.domain.disclosure import check_disclosure
from supply_chain.domain.errors import InvalidInput, LotlineError
from supply_chain.domain.hashing import SCHEME_PLAIN, hex32, payload_hash
from supply_chain.domain.identifiers import lot_id
from supply_chain.domain.kinds import EventKind
from supply_chain.services.epcis.vocabulary import parse_lot_uri
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import ChainDeployment, Organisation

KNOWN = "known_on_chain"
"""The repository note (and result code) of an event matched to, and verified against, the chain."""


@dataclass
class Match:
    """The chain's record of one exported event."""

    gtin: str
    lot_code: str
    seq: int
    kind: EventKind
    actor: str  # the address that signed it
    data_hash: str
    tx_hash: str
    block_number: int

    def attribution(self, orgs: Mapping[str, Organisation]) -> dict[str, Any]:
        org = orgs.get(self.actor.lower())
        return {
            "party": org.name if org is not None else self.actor,
            "address": self.actor,
            "source": "chain",
            "lot": f"{self.gtin}/{self.lot_code}",
            "seq": self.seq,
            "txHash": self.tx_hash,
        }


def claims_chain(event: Mapping[str, Any]) -> bool:
    """Whether the event says it is anchored on a Lotline chain (a Lotline export)."""
    return isinstance(event.get("lotline:payloadHash"), str)


class ChainIndex:
    """The chain's event logs of the lots a document names, read once per lot."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self._logs: dict[str, list[ChainEvent]] = {}
        self._exists: dict[str, bool] = {}
        deployment = ctx.session.scalars(
            select(ChainDeployment).where(ChainDeployment.address == ctx.ledger.address)
        ).first()
        self.from_block = deployment.block_number if deployment else 0
        self.orgs = {o.chain_address.lower(): o for o in ctx.session.scalars(select(Organisation))}

    def exists(self, lid: str) -> bool:
        if lid not in self._exists:
            self._exists[lid] = self.ctx.ledger.get_lot(lid).exists
        return self._exists[lid]

    def logs(self, lid: str) -> list[ChainEvent]:
        if lid not in self._logs:
            found = [e for e in self.ctx.ledger.logs(self.from_block, lot_id=lid) if e.name == "LotEventRecorded"]
            self._logs[lid] = sorted(found, key=lambda e: int(e.args["seq"]))
        return self._logs[lid]

    def match(self, event: Mapping[str, Any], path: str) -> Match | None:
        """The chain's record of ``event`` (a Lotline export), verified; None when the chain knows nothing of
        its lot (the event comes from elsewhere and is captured as any other). Raises InvalidInput
        (``chain_mismatch``) when the chain holds the lot but not this event as the document states it."""
        key = _lot_of(event, path)
        if key is None:
            return None
        lid = hex32(lot_id(*key))
        if not self.exists(lid):
            return None
        claimed = str(event["lotline:payloadHash"]).lower()
        logs = self.logs(lid)
        seq = event.get("lotline:seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            log = next((e for e in logs if int(e.args["seq"]) == seq), None)
        else:
            log = next((e for e in logs if str(e.args["dataHash"]).lower() == claimed), None)
        if log is None:
            raise _mismatch(
                f"{path}.lotline:seq: lot {key[1]} of GTIN {key[0]} has {len(logs)} events on chain; "
                f"none is event {seq if seq is not None else 'with this payload hash'}",
                f"{path}.lotline:seq",
            )
        found = Match(
            key[0],
            key[1],
            int(log.args["seq"]),
            EventKind(int(log.args["kind"])),
            str(log.args["actor"]),
            str(log.args["dataHash"]).lower(),
            log.tx_hash,
            log.block_number,
        )
        label = f"event #{found.seq} of lot {key[1]} (GTIN {key[0]}) on chain"
        if found.data_hash != claimed:
            raise _mismatch(
                f"{path}.lotline:payloadHash: {claimed} is not the hash anchored for {label} ({found.data_hash})",
                f"{path}.lotline:payloadHash",
            )
        cte = event.get("lotline:cte")
        if isinstance(cte, str) and cte.upper() != found.kind.name:
            raise _mismatch(
                f"{path}.lotline:cte: {label} is a {found.kind.name.lower()} event, not {cte}", f"{path}.lotline:cte"
            )
        problems = _disclosure_problems(event, found.data_hash)
        if problems:
            raise _mismatch(
                f"{path}.lotline:kde: the fields shown do not match {label}: {'; '.join(problems)}",
                f"{path}.lotline:kde",
            )
        return found


def _mismatch(message: str, field: str) -> InvalidInput:
    return InvalidInput(message, field=field, code="chain_mismatch")


def _lot_of(event: Mapping[str, Any], path: str) -> tuple[str, str] | None:
    """The lot an exported event belongs to: the output of a transformation, else the (one) lot of its
    quantityList (a Lotline export names the lot there)."""
    name = "outputQuantityList" if event.get("type") == "TransformationEvent" else "quantityList"
    items = event.get(name) or []
    if len(items) != 1 or not isinstance(items[0], Mapping):
        return None
    try:
        return parse_lot_uri(items[0].get("epcClass"), f"{path}.{name}[0].epcClass")
    except (LotlineError, TypeError, AttributeError):
        return None


def _disclosure_problems(event: Mapping[str, Any], data_hash: str) -> list[str]:
    """What does not hold when the event's ``lotline:kde`` is checked with its ``lotline:proof`` against the
    chain's ``dataHash``."""
    kde = event.get("lotline:kde")
    proof = event.get("lotline:proof")
    if not isinstance(kde, Mapping) or not isinstance(proof, Mapping):
        return ["lotline:kde and lotline:proof are needed to check it against the chain"]
    if proof.get("scheme") == SCHEME_PLAIN:
        # scheme 1 hashes the whole payload: only an export showing every field re-hashes
        try:
            same = hex32(payload_hash(kde)) == data_hash
        except LotlineError as exc:
            return [exc.message]
        return [] if same else ["scheme 1: the fields shown are not the whole payload the chain anchored"]
    return check_disclosure(kde, proof, data_hash)


@dataclass
class Recheck:
    """One stored ``known_on_chain`` event checked against the chain again."""

    event_id: str | None
    lot: str
    state: str  # verified | tampered
    detail: str


def verify_known(ctx: Ctx) -> list[Recheck]:
    """Check every captured event stored as ``known_on_chain`` against the chain again, as stored now: the
    body kept in the repository must still name the chain's event, its hash and the fields that re-hash to
    it. An edit of the stored body behind the store's back is ``tampered``."""
    from supply_chain.store.models import EpcisEvent

    rows = list(
        ctx.session.scalars(
            select(EpcisEvent)
            .where(EpcisEvent.note == KNOWN, EpcisEvent.state == "captured")
            .order_by(EpcisEvent.id)
        )
    )
    if not rows:
        return []
    index = ChainIndex(ctx)
    out = []
    for row in rows:
        lot = (row.attribution or {}).get("lot", "?")
        try:
            found = index.match(row.body, f"event {row.event_id or row.hash_id}")
        except LotlineError as exc:
            out.append(Recheck(row.event_id, lot, "tampered", exc.message))
            continue
        if found is None or f"{found.gtin}/{found.lot_code}" != lot:
            out.append(Recheck(row.event_id, lot, "tampered", "it no longer names the lot it was matched to"))
            continue
        out.append(
            Recheck(row.event_id, lot, "verified", f"event #{found.seq} matches the chain ({found.data_hash})")
        )
    return out
