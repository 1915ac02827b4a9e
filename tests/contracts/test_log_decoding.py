"""Reading a log of the ledger gives what ``eth_abi`` gives: the words of static values are read directly (a lot
of 1,000 events has 1,000 logs to read when its verification must name a bad event), so every event of the
ABI, with any values and with words ``eth_abi`` refuses, is checked against ``eth_abi`` itself."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from supply_chain.chain.compile import load_artifact
from supply_chain.chain.ledger import Ledger

LEDGER = Ledger(Web3(), "0x" + "11" * 20)
EVENTS = {topic: item for topic, item in LEDGER._events.items()}


def _reference(topic: str, log: dict[str, Any]) -> dict[str, Any]:
    """The decoding as it was written before: ``eth_abi`` for every value, then addresses in EIP-55 form."""
    item = EVENTS[topic]
    indexed = [i for i in item["inputs"] if i["indexed"]]
    plain = [i for i in item["inputs"] if not i["indexed"]]
    args: dict[str, Any] = {}
    for inp, value in zip(indexed, log["topics"][1:], strict=True):
        (args[inp["name"]],) = abi_decode([inp["type"]], bytes(value))
    for inp, value in zip(plain, abi_decode([i["type"] for i in plain], bytes(log["data"])), strict=True):
        args[inp["name"]] = value

    def shown(v: Any) -> Any:
        if isinstance(v, str) and v.startswith("0x") and len(v) == 42:
            return to_checksum_address(v)
        if isinstance(v, bytes):
            return "0x" + v.hex()
        if isinstance(v, tuple | list):
            return [shown(x) for x in v]
        return v

    return {k: shown(v) for k, v in args.items()}


def _value(abi_type: str) -> st.SearchStrategy[Any]:
    if abi_type == "bytes32":
        return st.binary(min_size=32, max_size=32)
    if abi_type == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address("0x" + b.hex()))
    if abi_type == "bool":
        return st.booleans()
    if abi_type.startswith("uint"):
        return st.integers(0, (1 << int(abi_type[4:])) - 1)
    if abi_type == "string":
        return st.text(max_size=30)
    if abi_type == "bytes32[]":
        return st.lists(st.binary(min_size=32, max_size=32), max_size=3)
    raise AssertionError(abi_type)


@st.composite
def _logs(draw: Any) -> tuple[str, dict[str, Any]]:
    topic = draw(st.sampled_from(sorted(EVENTS)))
    item = EVENTS[topic]
    values = {i["name"]: draw(_value(i["type"])) for i in item["inputs"]}
    topics = [bytes.fromhex(topic[2:])]
    topics += [abi_encode([i["type"]], [values[i["name"]]]) for i in item["inputs"] if i["indexed"]]
    plain = [i for i in item["inputs"] if not i["indexed"]]
    data = abi_encode([i["type"] for i in plain], [values[i["name"]] for i in plain])
    if draw(st.booleans()):  # spoil one word: a byte of padding or of the value set
        words = topics[1:] + [data[i : i + 32] for i in range(0, len(data), 32)]
        if words:
            which = draw(st.integers(0, len(words) - 1))
            at = draw(st.integers(0, 31))
            word = bytearray(words[which])
            word[at] ^= draw(st.integers(1, 255))
            if which < len(topics) - 1:
                topics[which + 1] = bytes(word)
            else:
                start = (which - len(topics) + 1) * 32
                data = data[:start] + bytes(word) + data[start + 32 :]
    log = {"topics": topics, "data": data, "transactionHash": b"\x01" * 32, "blockNumber": 7, "logIndex": 0}
    return topic, log


@settings(max_examples=150, deadline=None)
@given(_logs())
def test_a_log_decodes_to_what_eth_abi_gives_or_is_refused_as_eth_abi_refuses(
    drawn: tuple[str, dict[str, Any]],
) -> None:
    topic, log = drawn
    try:
        expected: Any = _reference(topic, log)
    except Exception as exc:  # noqa: BLE001 - whatever eth_abi raises, reading the log must raise too
        with pytest.raises(type(exc)):
            LEDGER._decode_log(log)
        return
    event = LEDGER._decode_log(log)
    assert event.name == EVENTS[topic]["name"]
    assert event.args == expected
    assert list(event.args) == list(expected)  # in the same order


def test_the_ledgers_events_are_read_from_their_words_but_two() -> None:
    """Every event but the two with a dynamic value skips ``eth_abi`` (what makes a lot's logs cheap)."""
    dynamic = {EVENTS[t]["name"] for t, readers in LEDGER._word_readers.items() if readers is None}
    assert dynamic == {"CompanyPrefixRegistered", "LotCreated"}
    assert len(EVENTS) == len([i for i in load_artifact("LotLedger")["abi"] if i["type"] == "event"])


def test_an_address_met_again_is_checksummed_once_and_a_raw_number_reads_in_either_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The logs of a long lot name the same few organisations again and again: each checksum (a keccak) is taken
    once. A raw JSON-RPC number is hex from a node and an int from the embedded chain's holder."""
    from supply_chain.chain import ledger

    calls: list[str] = []
    monkeypatch.setattr(ledger, "to_checksum_address", lambda a: calls.append(a) or to_checksum_address(a))
    address = "0x" + "ab" * 20
    ledger._checksummed.cache_clear()
    try:
        assert ledger._checksummed(address) == ledger._checksummed(address) == to_checksum_address(address)
        assert calls == [address]
    finally:
        ledger._checksummed.cache_clear()
    assert ledger._quantity("0x1f") == ledger._quantity(31) == 31
