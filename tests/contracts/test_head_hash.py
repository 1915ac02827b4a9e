"""Anyone can recompute a lot's head hash from the chain's logs alone, and only the true order matches.

The head chain (and the lot id a label gives) is computed here with eth_abi and eth_utils directly, not with
the project's own hashing code, so a shared mistake in the project cannot make both sides agree.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

import pytest
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from supply_chain.chain.ledger import Ledger
from supply_chain.domain.hashing import head_chain
from supply_chain.domain.kinds import EventKind, InspectionOutcome
from tests.contracts.conftest import COMPANY_PREFIX, gtin_under

LOT_EVENT_RECORDED = keccak(text="LotEventRecorded(bytes32,address,uint8,uint64,bytes32,bytes32)")
ZERO = b"\x00" * 32


@dataclass(frozen=True)
class Recorded:
    """One LotEventRecorded log, decoded by hand from its topics and data."""

    lot_id: bytes
    actor: str
    kind: int
    seq: int
    data_hash: bytes
    head: bytes


def new_hash() -> bytes:
    return secrets.token_bytes(32)


def new_label(owner: str = "producer") -> tuple[str, str]:
    """A fresh label (GTIN-14 under `owner`'s registered company prefix, lot code)."""
    return gtin_under(COMPANY_PREFIX[owner]), "H" + secrets.token_hex(5)


def id_of(label: tuple[str, str]) -> bytes:
    """The lot id anyone holding the label computes: keccak256(abi.encode(string gtin14, string lotCode))."""
    return keccak(encode(["string", "string"], list(label)))


def recorded_logs(ledger: Ledger, from_block: int, lot_id: bytes) -> list[Recorded]:
    """The lot's LotEventRecorded logs in chain order, read with a raw eth_getLogs."""
    raw = ledger.w3.eth.get_logs(
        {
            "address": ledger.address,
            "fromBlock": from_block,
            "toBlock": "latest",
            "topics": ["0x" + LOT_EVENT_RECORDED.hex(), "0x" + lot_id.hex()],
        }
    )
    out = []
    for log in sorted(raw, key=lambda item: (item["blockNumber"], item["logIndex"])):
        topics = [bytes(t) for t in log["topics"]]
        seq, data_hash, head = decode(["uint64", "bytes32", "bytes32"], bytes(log["data"]))
        out.append(
            Recorded(
                lot_id=topics[1],
                actor=to_checksum_address(topics[2][12:]),
                kind=int.from_bytes(topics[3], "big"),
                seq=seq,
                data_hash=data_hash,
                head=head,
            )
        )
    return out


def replay(events: list[Recorded]) -> list[bytes]:
    """head_n = keccak256(abi.encode(head_{n-1}, uint8 kind, address actor, bytes32 dataHash)), head_0 = 0."""
    heads, head = [], ZERO
    for event in events:
        values = [head, event.kind, event.actor, event.data_hash]
        head = keccak(encode(["bytes32", "uint8", "address", "bytes32"], values))
        heads.append(head)
    return heads


@pytest.fixture
def journey(ledger, actors, deployment) -> tuple[bytes, list[Recorded]]:
    """A lot with ten events by five organisations, including a batch and an automatic hold."""
    label = new_label()
    ledger.create_lot(actors.producer, *label, [], EventKind.HARVESTING, new_hash())
    lot_id = id_of(label)  # the logs are found from the label alone
    ledger.record_event(actors.producer, lot_id, EventKind.COOLING, new_hash())
    ledger.record_events(
        actors.producer, lot_id, [EventKind.INITIAL_PACKING, EventKind.OBSERVATION], [new_hash(), new_hash()]
    )
    ledger.offer_custody(actors.producer, lot_id, actors.distributor.address, new_hash())
    ledger.anchor_readings(actors.producer, lot_id, new_hash(), 12, new_hash())  # the sender, while in transit
    ledger.accept_custody(actors.distributor, lot_id, new_hash())
    ledger.inspect(actors.inspector, lot_id, InspectionOutcome.FAIL, new_hash())
    ledger.release(actors.inspector, lot_id, new_hash())
    ledger.close(actors.distributor, lot_id, new_hash())
    return lot_id, recorded_logs(ledger, deployment.block, lot_id)


def test_head_recomputed_from_logs_matches_get_lot_head(ledger, journey):
    lot_id, events = journey
    lot = ledger.get_lot(lot_id)

    heads = replay(events)

    assert [e.seq for e in events] == list(range(1, lot.event_count + 1))
    assert lot.event_count == 10
    assert [e.head for e in events] == heads  # every intermediate head, not only the last
    assert "0x" + heads[-1].hex() == lot.head


def test_history_covers_every_actor_and_kind_in_order(journey, actors):
    _lot_id, events = journey
    assert [(e.kind, e.actor) for e in events] == [
        (EventKind.HARVESTING, actors.producer.address),
        (EventKind.COOLING, actors.producer.address),
        (EventKind.INITIAL_PACKING, actors.producer.address),
        (EventKind.OBSERVATION, actors.producer.address),
        (EventKind.SHIPPING, actors.producer.address),
        (EventKind.SENSOR_ANCHOR, actors.producer.address),
        (EventKind.RECEIVING, actors.distributor.address),
        (EventKind.INSPECTION, actors.inspector.address),
        (EventKind.RELEASE, actors.inspector.address),
        (EventKind.CLOSE, actors.distributor.address),
    ]


@pytest.mark.parametrize(("i", "j"), [(0, 1), (2, 3), (4, 5), (8, 9), (1, 8)])
def test_reordered_history_does_not_match_head(ledger, journey, i, j):
    lot_id, events = journey
    reordered = list(events)
    reordered[i], reordered[j] = reordered[j], reordered[i]
    assert "0x" + replay(reordered)[-1].hex() != ledger.get_lot(lot_id).head


def test_altered_shortened_or_reattributed_history_does_not_match_head(ledger, journey, actors):
    lot_id, events = journey
    head = ledger.get_lot(lot_id).head
    altered = [*events[:3], replace(events[3], data_hash=new_hash()), *events[4:]]
    reattributed = [*events[:7], replace(events[7], actor=actors.regulator.address), *events[8:]]
    rekinded = [*events[:1], replace(events[1], kind=int(EventKind.OBSERVATION)), *events[2:]]
    for history in (altered, reattributed, rekinded, events[:-1], events[1:]):
        assert "0x" + replay(history)[-1].hex() != head


def test_interleaved_lots_in_one_transaction_keep_separate_heads(ledger, actors, deployment):
    labels = new_label(), new_label()
    first, second = (id_of(label) for label in labels)
    ledger.multicall(
        actors.producer,
        [
            ("createLot", Ledger.args_create_lot(*labels[0], [], EventKind.HARVESTING, new_hash())),
            ("createLot", Ledger.args_create_lot(*labels[1], [], EventKind.HARVESTING, new_hash())),
            ("recordEvent", [first, int(EventKind.COOLING), new_hash()]),
            ("recordEvent", [second, int(EventKind.COOLING), new_hash()]),
            ("recordEvent", [first, int(EventKind.OBSERVATION), new_hash()]),
        ],
    )
    for lot_id, count in ((first, 3), (second, 2)):
        events = recorded_logs(ledger, deployment.block, lot_id)
        assert len(events) == count
        assert "0x" + replay(events)[-1].hex() == ledger.get_lot(lot_id).head


def test_project_head_chain_agrees_with_independent_replay(ledger, journey):
    """The verifier's own implementation (supply_chain.domain.hashing) gives the chain's heads too."""
    lot_id, events = journey
    heads = head_chain((e.kind, e.actor, e.data_hash) for e in events)
    assert heads == replay(events)
    assert "0x" + heads[-1].hex() == ledger.get_lot(lot_id).head
