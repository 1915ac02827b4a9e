"""The ledger adapter: one Python method per LotLedger function, signed locally, errors decoded.

Nothing above this module sees web3 types or raw reverts. A contract custom error is decoded by its selector
into the project's exceptions (`NotFound`, `Forbidden`, `Conflict`, `InvalidInput`) carrying the error's name
and values; a node that cannot be reached raises `ChainUnavailable`.

Writes happen in two steps so the caller can store a pending record between them:
`prepare()` runs the call against the current state (a revert is reported before anything is signed or
written), sizes the gas, signs and returns the raw transaction with its hash; `submit()` sends it and waits for
the receipt. `receipt()` and `resend()` serve start-up reconciliation.
"""

from __future__ import annotations

import ast
import functools
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import requests
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
)
from web3.types import RPCEndpoint

from supply_chain.chain.compile import load_artifact
from supply_chain.domain.errors import (
    ChainUnavailable,
    Conflict,
    InvalidInput,
    LotlineError,
)
from supply_chain.domain.kinds import EventKind, InspectionOutcome, LotStatus
from supply_chain.domain.policy import ROLES, chain_error_code

ROLE_NAMES = ROLES
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_HASH = b"\x00" * 32
# How often to ask for a receipt: nodes that mine at once (anvil automine) answer within a few milliseconds.
POLL_SECONDS = 0.02


def role_id(name: str) -> bytes:
    """The on-chain role identifier of a role name (`admin` is AccessControl's DEFAULT_ADMIN_ROLE)."""
    if name not in ROLE_NAMES:
        raise InvalidInput(f"unknown role {name!r}; roles are {', '.join(ROLE_NAMES)}", field="role")
    return ZERO_HASH if name == "admin" else keccak(text=f"{name.upper()}_ROLE")


ROLE_BY_ID = {role_id(name): name for name in ROLE_NAMES}


class Call(NamedTuple):
    """One LotLedger call, not yet sent: the function and its ABI arguments. The services plan their writes as
    rows plus calls built here (never as hand-written tuples) and `writes.execute` sends them in one
    transaction (several are batched with multicall)."""

    function: str
    args: list[Any]

    @staticmethod
    def create_lot(
        gtin14: str, lot_code: str, inputs: Sequence[str | bytes], kind: EventKind, data_hash: str | bytes
    ) -> Call:
        return Call("createLot", [gtin14, lot_code, [_b32(i) for i in inputs], int(kind), _b32(data_hash)])

    @staticmethod
    def record_events(lot_id: str | bytes, kinds: Sequence[EventKind], data_hashes: Sequence[str | bytes]) -> Call:
        """`recordEvent` for one event, `recordEvents` for several (in order)."""
        if len(kinds) == 1:
            return Call("recordEvent", [_b32(lot_id), int(kinds[0]), _b32(data_hashes[0])])
        return Call("recordEvents", [_b32(lot_id), [int(k) for k in kinds], [_b32(h) for h in data_hashes]])

    @staticmethod
    def offer_custody(lot_id: str | bytes, to: str, data_hash: str | bytes) -> Call:
        return Call("offerCustody", [_b32(lot_id), to_checksum_address(to), _b32(data_hash)])

    @staticmethod
    def on_lot(function: str, lot_id: str | bytes, data_hash: str | bytes) -> Call:
        """The calls that take a lot and a data hash alone: acceptCustody, rejectCustody, cancelCustodyOffer,
        hold, release, recall, endRecall, close."""
        if function not in _LOT_AND_HASH:
            raise ValueError(f"{function} does not take (lotId, dataHash)")
        return Call(function, [_b32(lot_id), _b32(data_hash)])

    @staticmethod
    def inspect(lot_id: str | bytes, outcome: InspectionOutcome, data_hash: str | bytes) -> Call:
        return Call("inspect", [_b32(lot_id), int(outcome), _b32(data_hash)])

    @staticmethod
    def anchor_readings(lot_id: str | bytes, merkle_root: str | bytes, count: int, data_hash: str | bytes) -> Call:
        return Call("anchorReadings", [_b32(lot_id), _b32(merkle_root), int(count), _b32(data_hash)])

    @staticmethod
    def recall_derived(
        source_id: str | bytes, lot_ids: Sequence[str | bytes], data_hashes: Sequence[str | bytes]
    ) -> Call:
        return Call("recallDerived", [_b32(source_id), [_b32(i) for i in lot_ids], [_b32(h) for h in data_hashes]])

    @staticmethod
    def grant_role(role: str, account: str) -> Call:
        return Call("grantRole", [role_id(role), to_checksum_address(account)])

    @staticmethod
    def revoke_role(role: str, account: str) -> Call:
        return Call("revokeRole", [role_id(role), to_checksum_address(account)])

    @staticmethod
    def register_company_prefix(prefix: str, owner: str) -> Call:
        return Call("registerCompanyPrefix", [prefix, to_checksum_address(owner)])


_LOT_AND_HASH = frozenset(
    {"acceptCustody", "rejectCustody", "cancelCustodyOffer", "hold", "release", "recall", "endRecall", "close"}
)


@dataclass(frozen=True)
class ChainLot:
    """What the chain knows about a lot."""

    lot_id: str
    creator: str
    custodian: str
    pending_custodian: str | None
    status: LotStatus
    event_count: int
    head: str
    inputs: tuple[str, ...]

    @property
    def exists(self) -> bool:
        return self.status is not LotStatus.NONE


@dataclass(frozen=True)
class ChainEvent:
    """One decoded contract log. `args` holds the event's values with bytes as 0x hex."""

    name: str
    args: dict[str, Any]
    tx_hash: str
    block_number: int
    log_index: int


@dataclass(frozen=True)
class PreparedTx:
    """A signed transaction not yet sent."""

    tx_hash: str
    raw: bytes
    sender: str
    nonce: int
    function: str
    data: str = ""  # the call data, to replay the call and learn why a mined transaction reverted


@dataclass
class TxResult:
    """A mined transaction and the contract logs it emitted."""

    tx_hash: str
    block_number: int
    success: bool
    gas_used: int
    events: list[ChainEvent] = field(default_factory=list)

    def recorded(self) -> list[ChainEvent]:
        """The LotEventRecorded logs, in order: one per appended lot event."""
        return [e for e in self.events if e.name == "LotEventRecorded"]


class Recorded(NamedTuple):
    """One ``LotEventRecorded`` log, as `Ledger.submit_bulk` reads it (hashes and ids as 0x hex)."""

    lot_id: str
    actor: str
    kind: int
    seq: int
    data_hash: str
    head: str
    log_index: int


@dataclass
class BulkResult:
    """A mined transaction of many events: its ``LotEventRecorded`` logs in order."""

    tx_hash: str
    block_number: int
    recorded: list[Recorded]


def _word(raw: bytes, index: int) -> int:
    return int.from_bytes(raw[32 * index : 32 * index + 32], "big")


def _plain_get_lot(raw: bytes) -> tuple[Any, ...] | None:
    """A ``getLot`` answer decoded by hand when it has the one layout the contract's compiler gives it (seven
    head words, the input ids' array right after them, every padding zero), as ``abi_decode`` would return it;
    None for anything else, which ``abi_decode`` then decodes (or refuses). eth_abi's general decoder cost
    more per lot than the node's answer in a verification pass."""
    if len(raw) < 256 or len(raw) % 32 or _word(raw, 6) != 224 or len(raw) != 256 + 32 * _word(raw, 7):
        return None
    if any(raw[32 * i : 32 * i + 12] != bytes(12) for i in range(3)) or _word(raw, 3) > 255 or _word(raw, 4) >> 64:
        return None
    addresses = ("0x" + raw[32 * i + 12 : 32 * i + 32].hex() for i in range(3))
    inputs = tuple(raw[i : i + 32] for i in range(256, len(raw), 32))
    return (*addresses, _word(raw, 3), _word(raw, 4), raw[160:192], inputs)


def _plain_bytes_list(raw: bytes) -> list[bytes] | None:
    """An ABI-encoded ``bytes[]`` (a multicall's answer) decoded by hand when it has the canonical layout
    (items in order, each right after the one before, zero padding); None for anything else (then
    ``abi_decode``)."""
    if len(raw) < 64 or _word(raw, 0) != 32:
        return None
    count = _word(raw, 1)
    base = 64  # offsets count from the start of the array's contents, after its length
    expected = 32 * count
    if base + expected > len(raw):
        return None
    out = []
    for index in range(count):
        if _word(raw, 2 + index) != expected:
            return None
        start = base + expected
        if start + 32 > len(raw):
            return None
        length = int.from_bytes(raw[start : start + 32], "big")
        padded = -(-length // 32) * 32
        end = start + 32 + padded
        if end > len(raw) or any(raw[start + 32 + length : end]):
            return None
        out.append(raw[start + 32 : start + 32 + length])
        expected += 32 + padded
    if base + expected != len(raw):
        return None
    return out


def _quantity(value: str | int) -> int:
    """A number in a raw JSON-RPC answer: a hex string from a node, an int from the embedded chain's holder
    (`holder.ChainHolder` relays the in-process provider's answer, whose numbers are Python ints)."""
    return value if isinstance(value, int) else int(value, 16)


@functools.lru_cache(maxsize=65_536)
def _checksummed(address: str) -> str:
    """``to_checksum_address``, remembered: a verification pass over many lots, and the logs of a long lot, meet
    the same few organisations' addresses again and again, and each checksum is a keccak of the address."""
    return to_checksum_address(address)


def _hex(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_hex(v) for v in value]
    return value


_GET_LOT_SELECTOR = function_signature_to_4byte_selector("getLot(bytes32)")


_UINT = re.compile(r"uint(\d+)")


def _word_reader(abi_type: str) -> Any:
    """A reader of one 32-byte ABI word of a static ``abi_type`` giving what ``eth_abi.decode`` gives (bytes32
    as bytes, addresses lower case, integers, booleans), or None for a word it would refuse (padding that is
    not zero, an integer too wide for its type). None as the reader: a type decoded by ``eth_abi`` instead."""
    if abi_type == "bytes32":
        return bytes
    if abi_type == "address":
        return lambda word: "0x" + word[12:].hex() if not any(word[:12]) else None
    if abi_type == "bool":
        return lambda word: bool(word[31]) if not any(word[:31]) else None
    match = _UINT.fullmatch(abi_type)
    if match is not None:
        limit = 1 << int(match.group(1))

        def uint(word: bytes) -> int | None:
            value = int.from_bytes(word, "big")
            return value if value < limit else None

        return uint
    return None


def _b32(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        if len(value) != 32:
            raise InvalidInput("expected 32 bytes", field="hash")
        return value
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise InvalidInput(f"{value!r} is not a 32-byte hex value", field="hash")
    return raw


@contextmanager
def chain_guard(what: str) -> Iterator[None]:
    """Turn transport failures into ChainUnavailable; let project errors through."""
    try:
        yield
    except LotlineError:
        raise
    except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError, OSError) as exc:
        raise ChainUnavailable(f"chain node unreachable during {what}: {exc.__class__.__name__}") from exc
    except TimeExhausted as exc:
        raise ChainUnavailable(f"no receipt in time during {what}; the transaction may still be mined") from exc


class Ledger:
    """The LotLedger contract at one address on one chain."""

    def __init__(self, w3: Web3, address: str, *, receipt_timeout: float = 120.0, fixed_gas: int | None = None) -> None:
        artifact = load_artifact("LotLedger")
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=artifact["abi"])
        self.receipt_timeout = receipt_timeout
        # On the embedded chain a gas estimate re-runs the call a dozen times (binary search); one eth_call
        # for the revert check plus a fixed limit is several times faster, and only used gas is charged.
        self.fixed_gas = fixed_gas
        self._errors = self._error_table(artifact["abi"])
        self._events = {
            "0x" + keccak(text=self._signature(item)).hex(): item for item in artifact["abi"] if item["type"] == "event"
        }
        self._word_readers = {topic: self._static_readers(item) for topic, item in self._events.items()}
        self._functions = {item["name"]: item for item in artifact["abi"] if item["type"] == "function"}
        self._encoders: dict[str, tuple[bytes, list[str]]] = {}
        recorded = "LotEventRecorded(bytes32,address,uint8,uint64,bytes32,bytes32)"
        self._recorded_topic = "0x" + keccak(text=recorded).hex()
        self._chain_id: int | None = None
        self._nonce_locks: dict[str, threading.Lock] = {}
        self._next_nonce: dict[str, int] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ deployment

    @classmethod
    def deploy(cls, w3: Web3, deployer: LocalAccount, admin: str) -> tuple[Ledger, int]:
        """Deploy a new LotLedger whose admin is `admin`; returns the ledger and the deployment block."""
        artifact = load_artifact("LotLedger")
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        with chain_guard("deploy"):
            data = factory.constructor(to_checksum_address(admin)).data_in_transaction
            tx = _fees(w3) | {
                "from": deployer.address,
                "data": data,
                "nonce": w3.eth.get_transaction_count(deployer.address, "pending"),
                "chainId": w3.eth.chain_id,
                "gas": 6_000_000,
                "value": 0,
            }
            signed = deployer.sign_transaction(tx)
            tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1 or not receipt["contractAddress"]:
            raise Conflict(f"deploying LotLedger failed in transaction {_hex(tx_hash)}")
        return cls(w3, receipt["contractAddress"]), receipt["blockNumber"]

    def is_deployed(self) -> bool:
        with chain_guard("code lookup"):
            return len(self.w3.eth.get_code(self.address)) > 0

    # ------------------------------------------------------------ reads

    def block_number(self) -> int:
        with chain_guard("block number"):
            return self.w3.eth.block_number

    def transaction_count(self, block: int) -> int:
        """How many transactions block ``block`` holds."""
        with chain_guard("block transaction count"):
            return int(self.w3.eth.get_block_transaction_count(block))

    def get_lot(self, lot_id: str | bytes) -> ChainLot:
        lot_bytes = _b32(lot_id)
        # The call data and the answer are coded here with the ABI types of getLot: web3's contract function
        # looks the function up in the whole ABI on every call, which cost more than the EVM running it.
        return self._chain_lot(lot_bytes, self.read_call(_GET_LOT_SELECTOR + lot_bytes, "getLot"))

    def _chain_lot(self, lot_bytes: bytes, raw: bytes) -> ChainLot:
        """A ``getLot`` answer (ABI-encoded) as a ChainLot."""
        decoded = _plain_get_lot(raw) or abi_decode(self._GET_LOT_TYPES, raw)
        creator, custodian, pending, status, count, head, inputs = decoded
        creator, custodian, pending = (_checksummed(a) for a in (creator, custodian, pending))
        return ChainLot(
            lot_id=_hex(lot_bytes),
            creator=creator,
            custodian=custodian,
            pending_custodian=None if pending == ZERO_ADDRESS or int(pending, 16) == 0 else pending,
            status=LotStatus(status),
            event_count=count,
            head=_hex(head),
            inputs=tuple(_hex(i) for i in inputs),
        )

    _GET_LOT_TYPES = ("address", "address", "address", "uint8", "uint64", "bytes32", "bytes32[]")

    def existing_lots(self, lot_ids: Sequence[str | bytes], chunk: int = 200) -> set[str]:
        """The ids (``0x`` hex, lower case) among ``lot_ids`` of lots that exist on chain (see `get_lots`)."""
        return {lot_id for lot_id, lot in self.get_lots(lot_ids, chunk).items() if lot.exists}

    def get_lots(self, lot_ids: Sequence[str | bytes], chunk: int = 200) -> dict[str, ChainLot]:
        """`get_lot` of many lots, keyed by their id (``0x`` hex, lower case), in the order given: ``getLot`` of
        up to ``chunk`` lots in one ``eth_call`` of the contract's multicall, instead of one round trip per lot
        (a capture checks thousands of new lots; re-verifying the lots of a batch write asks once)."""
        out: dict[str, ChainLot] = {}
        ids = [_b32(i) for i in lot_ids]
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            data = [_GET_LOT_SELECTOR + i for i in part]  # getLot(bytes32): the id is its one word
            call = self.encode_call("multicall", [data])  # coded here, as in get_lot: no ABI look-up per call
            answer = self.read_call(call, "getLot")
            results = _plain_bytes_list(answer)
            if results is None:
                (results,) = abi_decode(("bytes[]",), answer)
            for lot, raw in zip(part, results, strict=True):
                out[_hex(lot).lower()] = self._chain_lot(lot, raw)
        return out

    def read_call(self, data: bytes, what: str) -> bytes:
        """The answer of one read-only ``eth_call`` of this contract on the latest block, asked of the node as
        JSON-RPC: web3's request stack (its validation middleware asks the node for its chain id twice per
        call, then formats request and answer) cost more than the node's work for a batch of ``getLot``. An
        error answer (a revert, a node refusing the call) raises ChainUnavailable naming ``what``."""
        request = [{"to": self.address, "data": "0x" + data.hex()}, "latest"]
        with chain_guard(what):
            answer = self.w3.provider.make_request(RPCEndpoint("eth_call"), request)
        if answer.get("error"):
            raise ChainUnavailable(f"the chain node refused {what}: {answer['error']}")
        result = answer.get("result")
        return bytes(result) if isinstance(result, bytes) else bytes.fromhex(str(result).removeprefix("0x"))

    def lot_outputs(self, lot_id: str | bytes) -> list[str]:
        with chain_guard("lotOutputs"):
            return [_hex(o) for o in self.contract.functions.lotOutputs(_b32(lot_id)).call()]

    def has_role(self, role: str, account: str) -> bool:
        with chain_guard("hasRole"):
            return self.contract.functions.hasRole(role_id(role), to_checksum_address(account)).call()

    def logs(self, from_block: int, to_block: int | None = None, lot_id: str | bytes | None = None) -> list[ChainEvent]:
        """Every decoded log of this contract in the block range, in chain order."""
        topics = [None, _b32(lot_id)] if lot_id is not None else []
        # The embedded chain answers straight from its receipts (no JSON-RPC formatting of each log).
        direct = getattr(self.w3.provider, "contract_logs", None)
        with chain_guard("getLogs"):
            if direct is not None:
                raw_logs = direct(self.address, from_block, to_block, topics)
            else:
                raw_logs = self._rpc_logs(from_block, to_block, topics)
        return [self._decode_log(log) for log in raw_logs if _hex(log["topics"][0]) in self._events]

    def _rpc_logs(self, from_block: int, to_block: int | None, topics: Sequence[bytes | None]) -> Any:
        """``eth_getLogs`` for this contract's logs through web3 (any node)."""
        params: dict[str, Any] = {"address": self.address, "fromBlock": from_block, "toBlock": to_block or "latest"}
        if topics:
            params["topics"] = [None if t is None else "0x" + t.hex() for t in topics]
        return self.w3.eth.get_logs(params)

    # ------------------------------------------------------------ writes: two steps

    def prepare(
        self,
        signer: LocalAccount,
        function: str,
        args: Sequence[Any],
        *,
        check: bool = True,
        data: str | None = None,
        nonce: int | None = None,
        fees: dict[str, int] | None = None,
    ) -> PreparedTx:
        """Check the call against current state, size its gas and sign it. Raises the decoded error on revert.

        ``check=False`` signs without the pre-flight: the transaction then runs once, when sent, instead of
        twice (on a node, where the pre-flight is the gas estimate, instead of a dozen times: the node searches
        for the limit by running the call again and again), and a refusal is reported by ``submit`` (mined
        reverted, nothing of it applied) instead of here. Its gas limit is then the fixed one (the embedded
        chain) or the latest block's gas limit (`block_gas_limit`): only the gas used is charged, and a
        transaction needing more would not fit in a block anyway; a sender whose balance does not cover that
        limit at the offered fee gets the estimate instead (`_unchecked_gas`). For callers that planned and
        rehearsed the calls already, and can afford a refusal after their rows are stored as pending (capture
        and import jobs).

        ``nonce`` and ``fees`` (`fees`) are for a sender that keeps its own count of a signer's transactions and
        its fees for a whole run (a bulk load with several transactions in flight): signing then asks the node
        nothing."""
        if data is None:  # (a multicall brings its call data, encoded without web3's per-call ABI validation)
            data = self.contract.encode_abi(function, args=list(args))
        call = {"from": signer.address, "to": self.address, "data": data}
        with chain_guard(function):
            tx_fees = fees if fees is not None else _fees(self.w3)
            try:
                if self.fixed_gas and not check:
                    gas = self.fixed_gas
                elif not check:
                    gas = self._unchecked_gas(call, tx_fees)
                elif self.fixed_gas:
                    self.w3.eth.call(call | {"data": self._check_data(function, args, data)})
                    gas = self.fixed_gas
                else:
                    gas = int(self.w3.eth.estimate_gas(call) * 1.2) + 30_000
            except (ContractCustomError, ContractLogicError, TransactionFailed) as exc:
                raise self.decode_revert(exc, function) from None
            if nonce is None:
                with self._nonce_lock(signer.address):
                    nonce = max(
                        self.w3.eth.get_transaction_count(signer.address, "pending"),
                        self._next_nonce.get(signer.address, 0),
                    )
                    self._next_nonce[signer.address] = nonce + 1
            tx = (
                tx_fees
                | call
                | {
                    "nonce": nonce,
                    "chainId": self.chain_id(),
                    "gas": gas,
                    "value": 0,
                }
            )
            signed = signer.sign_transaction(tx)
        return PreparedTx(
            tx_hash=_hex(signed.hash),
            raw=bytes(signed.raw_transaction),
            sender=signer.address,
            nonce=nonce,
            function=function,
            data=data,
        )

    def _unchecked_gas(self, call: dict[str, Any], fees: dict[str, int]) -> int:
        """The gas limit of a transaction signed without a pre-flight, on a node: the latest block's gas limit
        when the sender's balance covers that limit at the offered fee (a node refuses a transaction whose
        sender could not pay its whole limit; a chain without fees always can), otherwise the estimate."""
        limit = self.block_gas_limit()
        price = fees.get("maxFeePerGas", fees.get("gasPrice", 0))
        if price == 0 or self.w3.eth.get_balance(call["from"]) >= limit * price:
            return limit
        return int(self.w3.eth.estimate_gas(call) * 1.2) + 30_000

    def block_gas_limit(self) -> int:
        """The gas limit of the latest block (asked of the node raw: one cheap read, no EVM run)."""
        with chain_guard("block gas limit"):
            answer = self.w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), ["latest", False])
        if answer.get("error") or not answer.get("result"):
            raise ChainUnavailable(f"the latest block could not be read: {answer.get('error')}")
        return _quantity(answer["result"]["gasLimit"])

    def prepare_anchor(self, signer: LocalAccount, data: bytes) -> PreparedTx:
        """Sign a zero-value transaction from ``signer`` to its own address carrying ``data`` (an anchor: a
        Merkle root the chain then dates and attributes to the signer; no contract is called)."""
        call = {"from": signer.address, "to": signer.address, "data": "0x" + bytes(data).hex()}
        with chain_guard("anchor"):
            lock = self._nonce_lock(signer.address)
            with lock:
                nonce = max(
                    self.w3.eth.get_transaction_count(signer.address, "pending"),
                    self._next_nonce.get(signer.address, 0),
                )
                self._next_nonce[signer.address] = nonce + 1
            gas = 21_000 + 16 * len(data) + 10_000
            tx = _fees(self.w3) | call | {"nonce": nonce, "chainId": self.chain_id(), "gas": gas, "value": 0}
            signed = signer.sign_transaction(tx)
        return PreparedTx(
            tx_hash=_hex(signed.hash),
            raw=bytes(signed.raw_transaction),
            sender=signer.address,
            nonce=nonce,
            function="anchor",
            data=call["data"],
        )

    def transaction_input(self, tx_hash: str) -> tuple[str, str, bytes, int | None] | None:
        """(sender, recipient, data, block number) of a transaction, or None if the node does not know it."""
        with chain_guard("transaction lookup"):
            try:
                tx = self.w3.eth.get_transaction(tx_hash)
            except TransactionNotFound:
                return None
        data = tx["input"]
        raw = bytes(data) if not isinstance(data, str) else bytes.fromhex(data.removeprefix("0x"))
        return str(tx["from"]), str(tx["to"]), raw, tx.get("blockNumber")

    def abandon(self, prepared: PreparedTx) -> None:
        """Give back the nonce of a prepared transaction that will not be sent (the caller's own write
        failed between the two steps), so the signer's next transaction does not wait behind a gap."""
        with self._lock:
            if self._next_nonce.get(prepared.sender) == prepared.nonce + 1:
                self._next_nonce[prepared.sender] = prepared.nonce
            else:
                self._next_nonce.pop(prepared.sender, None)

    def _check_data(self, function: str, args: Sequence[Any], data: str) -> str:
        """The call data of the pre-flight ``eth_call`` for ``function(args)`` (call data ``data``).

        A ``recordEvents`` of many events is checked with one event of each kind it records, in the order
        they first appear: the contract refuses it for the lot (unknown, caller not a handler, not its
        custodian, status not active or held: asked once, before any event) or for the first event whose kind
        is not a free kind, and nothing else in it can revert (``_append`` only hashes and counts). So the
        shorter call is refused exactly when the whole one is, with the same error, and the EVM runs the 100
        events of a batch once (in the transaction) instead of twice. Every other call is checked as sent."""
        if function != "recordEvents":
            return data
        lot, kinds, hashes = args
        if not kinds or len(kinds) != len(hashes):
            return data  # the contract's own refusal (EmptyBatch, LengthMismatch) from the call as sent
        first: dict[int, int] = {}
        for i, kind in enumerate(kinds):
            first.setdefault(int(kind), i)
        if len(first) == len(kinds):
            return data
        picked = sorted(first.values())
        return "0x" + self.encode_call(function, [lot, [kinds[i] for i in picked], [hashes[i] for i in picked]]).hex()

    def submit(self, prepared: PreparedTx) -> TxResult:
        """Send a prepared transaction and wait for its receipt.

        On a node (JSON-RPC over HTTP) the receipt is read as the node sends it and only this
        contract's logs are converted for decoding (`_raw_receipt`): web3's formatting of every field of a
        receipt of 80 logs took ~45 ms of a job's batch on anvil. The result is the one web3's receipt gives
        (``tests/reliability/test_capture_job_on_anvil.py`` compares the two)."""
        self._send(prepared)
        if isinstance(self.w3.provider, HTTPProvider):  # (the embedded chain's provider answers in Python types)
            receipt = self._raw_receipt(prepared)
        else:
            with chain_guard(prepared.function):
                receipt = self.w3.eth.wait_for_transaction_receipt(
                    prepared.tx_hash, timeout=self.receipt_timeout, poll_latency=POLL_SECONDS
                )
        result = self._result(receipt)
        if not result.success:
            raise self._mined_revert(prepared, result.block_number)
        return result

    def submit_bulk(self, prepared: PreparedTx) -> BulkResult:
        """`submit` for a transaction of many events, returning its ``LotEventRecorded`` logs only. The receipt
        is read as the node sends it (JSON-RPC): web3's formatting and decoding of a receipt cost 1-2 ms a log,
        more than the node took to run a thousand events."""
        self._send(prepared)
        return self.wait_bulk(prepared)

    def send(self, prepared: PreparedTx) -> None:
        """Send a prepared transaction without waiting for it (`wait_bulk` then reads its logs): a signer may
        have several in flight, the node runs them in nonce order."""
        self._send(prepared)

    def wait_bulk(self, prepared: PreparedTx) -> BulkResult:
        """The ``LotEventRecorded`` logs of a sent transaction of many events, once mined (see `submit_bulk`)."""
        receipt = self._receipt_json(prepared)
        block = _quantity(receipt["blockNumber"])
        if _quantity(receipt["status"]) != 1:
            raise self._mined_revert(prepared, block)
        recorded = []
        contract = self.address.lower()
        for log in receipt["logs"]:
            topics = log["topics"]
            if topics[0] != self._recorded_topic or log["address"].lower() != contract:
                continue
            data = log["data"][2:]
            recorded.append(
                Recorded(
                    lot_id=topics[1],
                    actor=_checksummed("0x" + topics[2][-40:]),  # remembered: a keccak per actor, not per log
                    kind=int(topics[3], 16),
                    seq=int(data[:64], 16),
                    data_hash="0x" + data[64:128],
                    head="0x" + data[128:192],
                    log_index=_quantity(log["logIndex"]),
                )
            )
        return BulkResult(tx_hash=receipt["transactionHash"], block_number=block, recorded=recorded)

    def _receipt_json(self, prepared: PreparedTx) -> dict[str, Any]:
        """The receipt of a sent transaction once mined, as the node sends it (JSON-RPC, hex strings)."""
        deadline = time.monotonic() + self.receipt_timeout
        with chain_guard(prepared.function):
            while True:
                answer = self.w3.provider.make_request(RPCEndpoint("eth_getTransactionReceipt"), [prepared.tx_hash])
                if answer.get("error"):
                    raise ChainUnavailable(f"receipt lookup failed: {answer['error']}")
                if answer.get("result"):
                    return answer["result"]
                if time.monotonic() > deadline:
                    raise TimeExhausted(f"no receipt for {prepared.tx_hash}")
                time.sleep(POLL_SECONDS)

    def _raw_receipt(self, prepared: PreparedTx) -> dict[str, Any]:
        """The receipt of a sent transaction once mined, read raw (JSON-RPC), in the shape `_result` reads from
        web3's: numbers as int, this contract's logs with their topics and data as bytes (other logs left out,
        as `_result` leaves them)."""
        raw = self._receipt_json(prepared)
        contract = self.address.lower()
        logs = [
            {
                "address": log["address"],
                "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
                "data": bytes.fromhex(log["data"][2:]),
                "transactionHash": log["transactionHash"],
                "blockNumber": _quantity(log["blockNumber"]),
                "logIndex": _quantity(log["logIndex"]),
            }
            for log in raw["logs"]
            if log["address"].lower() == contract and log["topics"]
        ]
        return {
            "transactionHash": raw["transactionHash"],
            "blockNumber": _quantity(raw["blockNumber"]),
            "status": _quantity(raw["status"]),
            "gasUsed": _quantity(raw["gasUsed"]),
            "logs": logs,
        }

    def _send(self, prepared: PreparedTx) -> None:
        with chain_guard(prepared.function):
            try:
                self.w3.eth.send_raw_transaction(prepared.raw)
            except (ContractCustomError, ContractLogicError, TransactionFailed) as exc:
                # eth-tester mines on send and reports the revert here.
                with self._lock:
                    self._next_nonce.pop(prepared.sender, None)
                raise self.decode_revert(exc, prepared.function) from None
            except Web3Exception as exc:
                text = str(exc).lower()
                if "already known" not in text and "nonce too low" not in text:
                    # The node refused it (nonce gap, funds, ...): forget this signer's nonce memory so the
                    # next transaction asks the node afresh, and report the refusal as a project error.
                    with self._lock:
                        self._next_nonce.pop(prepared.sender, None)
                    raise Conflict(
                        f"{prepared.function}: the chain node refused the transaction: {exc}", code="tx_refused"
                    ) from exc

    def _mined_revert(self, prepared: PreparedTx, block_number: int) -> LotlineError:
        """Why a mined transaction reverted: the same call replayed on the state just before its block."""
        try:
            with chain_guard("replaying a reverted call"):
                self.w3.eth.call(
                    {"from": prepared.sender, "to": self.address, "data": prepared.data}, max(block_number - 1, 0)
                )
        except (ContractCustomError, ContractLogicError, TransactionFailed) as exc:
            return self.decode_revert(exc, prepared.function)
        except LotlineError:
            pass
        return Conflict(f"transaction {prepared.tx_hash} ({prepared.function}) was reverted when mined")

    def transact(self, signer: LocalAccount, function: str, args: Sequence[Any]) -> TxResult:
        return self.submit(self.prepare(signer, function, args))

    def wait(self, tx_hash: str) -> TxResult:
        """Wait for a sent transaction's receipt (ChainUnavailable if it does not come in time)."""
        with chain_guard("waiting for a receipt"):
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=POLL_SECONDS
            )
            return self._result(receipt)

    def receipt(self, tx_hash: str) -> TxResult | None:
        """The mined result of a transaction, or None if the node does not know it as mined."""
        with chain_guard("receipt lookup"):
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                return None
        return self._result(receipt) if receipt else None

    def resend(self, raw: bytes) -> None:
        """Send a stored raw transaction again (after a crash between signing and sending)."""
        with chain_guard("resend"):
            self.w3.eth.send_raw_transaction(raw)

    def account_nonce(self, address: str) -> int:
        with chain_guard("nonce lookup"):
            return self.w3.eth.get_transaction_count(to_checksum_address(address), "latest")

    # ------------------------------------------------------------ one method per contract function

    def create_lot(
        self,
        signer: LocalAccount,
        gtin14: str,
        lot_code: str,
        inputs: Sequence[str | bytes],
        kind: EventKind,
        data_hash: str | bytes,
    ) -> TxResult:
        """Create the lot of this label; the contract derives its id (`lot_id(gtin14, lot_code)`)."""
        return self.transact(signer, "createLot", self.args_create_lot(gtin14, lot_code, inputs, kind, data_hash))

    @staticmethod
    def args_create_lot(
        gtin14: str, lot_code: str, inputs: Sequence[str | bytes], kind: EventKind, data_hash: str | bytes
    ) -> list[Any]:
        return Call.create_lot(gtin14, lot_code, inputs, kind, data_hash).args

    @staticmethod
    def args_recall_derived(
        source_id: str | bytes, lot_ids: Sequence[str | bytes], data_hashes: Sequence[str | bytes]
    ) -> list[Any]:
        return Call.recall_derived(source_id, lot_ids, data_hashes).args

    def recall_derived(
        self,
        signer: LocalAccount,
        source_id: str | bytes,
        lot_ids: Sequence[str | bytes],
        data_hashes: Sequence[str | bytes],
    ) -> TxResult:
        """Carry the recall of `source_id` to lots made from it (parent-first order)."""
        return self.transact(signer, "recallDerived", self.args_recall_derived(source_id, lot_ids, data_hashes))

    def register_company_prefix(self, admin: LocalAccount, prefix: str, owner: str) -> TxResult:
        """Register a GS1 company prefix (or a single GTIN's 13 digits) to `owner` (admin only)."""
        return self.transact(admin, "registerCompanyPrefix", [prefix, to_checksum_address(owner)])

    def gtin_owner(self, gtin14: str) -> str | None:
        """The account that may create lots of this GTIN-14, or None."""
        with chain_guard("gtinOwner"):
            owner = self.contract.functions.gtinOwner(gtin14).call()
        return None if int(owner, 16) == 0 else to_checksum_address(owner)

    def recall_source_of(self, lot_id: str | bytes) -> str | None:
        """For a recalled lot, the id of the lot its recall started from; None if not recalled."""
        (source,) = abi_decode(
            ("bytes32",), self.read_call(self.encode_call("recallSourceOf", [_b32(lot_id)]), "recallSourceOf")
        )
        return None if bytes(source) == ZERO_HASH else _hex(source)

    def record_event(
        self, signer: LocalAccount, lot_id: str | bytes, kind: EventKind, data_hash: str | bytes
    ) -> TxResult:
        return self.transact(signer, "recordEvent", [_b32(lot_id), int(kind), _b32(data_hash)])

    def record_events(
        self, signer: LocalAccount, lot_id: str | bytes, kinds: Sequence[EventKind], data_hashes: Sequence[str | bytes]
    ) -> TxResult:
        return self.transact(
            signer, "recordEvents", [_b32(lot_id), [int(k) for k in kinds], [_b32(h) for h in data_hashes]]
        )

    def offer_custody(self, signer: LocalAccount, lot_id: str | bytes, to: str, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "offerCustody", [_b32(lot_id), to_checksum_address(to), _b32(data_hash)])

    def accept_custody(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "acceptCustody", [_b32(lot_id), _b32(data_hash)])

    def reject_custody(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "rejectCustody", [_b32(lot_id), _b32(data_hash)])

    def cancel_custody_offer(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "cancelCustodyOffer", [_b32(lot_id), _b32(data_hash)])

    def inspect(
        self, signer: LocalAccount, lot_id: str | bytes, outcome: InspectionOutcome, data_hash: str | bytes
    ) -> TxResult:
        return self.transact(signer, "inspect", [_b32(lot_id), int(outcome), _b32(data_hash)])

    def hold(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "hold", [_b32(lot_id), _b32(data_hash)])

    def release(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "release", [_b32(lot_id), _b32(data_hash)])

    def recall(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "recall", [_b32(lot_id), _b32(data_hash)])

    def end_recall(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "endRecall", [_b32(lot_id), _b32(data_hash)])

    def recall_ended(self, lot_id: str | bytes) -> bool:
        """Whether the recall issued on the lot has been ended on chain."""
        with chain_guard("recallEnded"):
            return bool(self.contract.functions.recallEnded(_b32(lot_id)).call())

    def close(self, signer: LocalAccount, lot_id: str | bytes, data_hash: str | bytes) -> TxResult:
        return self.transact(signer, "close", [_b32(lot_id), _b32(data_hash)])

    def anchor_readings(
        self, signer: LocalAccount, lot_id: str | bytes, merkle_root: str | bytes, count: int, data_hash: str | bytes
    ) -> TxResult:
        return self.transact(signer, "anchorReadings", [_b32(lot_id), _b32(merkle_root), int(count), _b32(data_hash)])

    def grant_role(self, admin: LocalAccount, role: str, account: str) -> TxResult:
        return self.transact(admin, "grantRole", [role_id(role), to_checksum_address(account)])

    def revoke_role(self, admin: LocalAccount, role: str, account: str) -> TxResult:
        return self.transact(admin, "revokeRole", [role_id(role), to_checksum_address(account)])

    def multicall(self, signer: LocalAccount, calls: Sequence[tuple[str, Sequence[Any]]]) -> TxResult:
        """Several contract calls in one transaction (all or nothing), each checked as if sent alone."""
        return self.submit(self.prepare_multicall(signer, calls))

    def prepare_multicall(
        self, signer: LocalAccount, calls: Sequence[tuple[str, Sequence[Any]]], *, check: bool = True
    ) -> PreparedTx:
        if not calls:
            raise InvalidInput("a batch needs at least one call", field="calls")
        encoded = [self._encode_calls(calls)]
        return self.prepare(
            signer, "multicall", encoded, check=check, data="0x" + self.encode_call("multicall", encoded).hex()
        )

    def _encode_calls(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[bytes]:
        return [self.encode_call(fn, a) for fn, a in calls]

    def encode_call(self, function: str, args: Sequence[Any]) -> bytes:
        """The call data of one contract function: its selector and ABI-encoded arguments (as `Call` builds
        them: bytes for hashes and ids, checksummed addresses). The selector and argument types are worked out
        once per function: web3's ``encode_abi`` validates the whole ABI on every call (~30 ms each), which
        made encoding, not the chain, the cost of a multicall of a thousand events."""
        encoder = self._encoders.get(function)
        if encoder is None:
            item = self._functions[function]
            types = [_canonical_type(i) for i in item["inputs"]]
            encoder = function_signature_to_4byte_selector(f"{function}({','.join(types)})"), types
            self._encoders[function] = encoder
        selector, types = encoder
        return selector + abi_encode(types, list(args))

    def refused_call(self, sender: str, calls: Sequence[tuple[str, Sequence[Any]]]) -> int | None:
        """The position of the first of ``calls`` the chain refuses when they run in order as one multicall
        from ``sender`` on the latest state, or None when the whole batch passes. A multicall reverts whole
        with its failing call's error but not its position: this finds it by bisecting on prefixes of the
        batch (about log2(n) ``eth_call``s), which is only worth paying once a batch was refused."""
        encoded = self._encode_calls(calls)

        def refuses(count: int) -> bool:
            data = self.contract.encode_abi("multicall", args=[encoded[:count]])
            with chain_guard("finding the refused call"):
                try:
                    self.w3.eth.call({"from": sender, "to": self.address, "data": data})
                except (ContractCustomError, ContractLogicError, TransactionFailed):
                    return True
            return False

        if not encoded or not refuses(len(encoded)):
            return None
        low, high = 1, len(encoded)  # the shortest refused prefix has a length in [low, high]
        while low < high:
            middle = (low + high) // 2
            if refuses(middle):
                high = middle
            else:
                low = middle + 1
        return low - 1

    # ------------------------------------------------------------ internals

    def fees(self) -> dict[str, int]:
        """The fee fields a transaction sent now would carry (EIP-1559 where the chain has a base fee)."""
        with chain_guard("fees"):
            return _fees(self.w3)

    def chain_id(self) -> int:
        if self._chain_id is None:
            with chain_guard("chain id"):
                self._chain_id = self.w3.eth.chain_id
        return self._chain_id

    def _nonce_lock(self, address: str) -> threading.Lock:
        with self._lock:
            return self._nonce_locks.setdefault(address, threading.Lock())

    def _result(self, receipt: Any) -> TxResult:
        events = [
            self._decode_log(log)
            for log in receipt["logs"]
            if log["address"].lower() == self.address.lower() and _hex(log["topics"][0]) in self._events
        ]
        return TxResult(
            tx_hash=_hex(receipt["transactionHash"]),
            block_number=receipt["blockNumber"],
            success=receipt["status"] == 1,
            gas_used=receipt["gasUsed"],
            events=events,
        )

    @staticmethod
    def _static_readers(item: dict[str, Any]) -> list[tuple[str, bool, Any]] | None:
        """(name, indexed, word reader) per input of an event whose inputs are all static one-word types, in
        the order the log holds them (topics, then data); None for an event ``eth_abi`` decodes."""
        inputs = [i for i in item["inputs"] if i["indexed"]] + [i for i in item["inputs"] if not i["indexed"]]
        readers = [(i["name"], bool(i["indexed"]), _word_reader(i["type"])) for i in inputs]
        return None if any(reader is None for _, _, reader in readers) else readers

    def _decode_args(self, topic: str, log: Any) -> dict[str, Any]:
        """The event's values as ``eth_abi.decode`` gives them. Static one-word values (every LotLedger event
        but two) are read straight from their words: ``eth_abi`` validating and dispatching per value was most
        of the cost of reading a lot's thousand logs. Anything unusual goes to ``eth_abi``, which decides."""
        readers = self._word_readers[topic]
        if readers is not None:
            data = bytes(log["data"])
            topics = log["topics"][1:]
            plain = sum(1 for _, indexed, _ in readers if not indexed)
            if len(topics) == len(readers) - plain and len(data) == 32 * plain:
                args: dict[str, Any] = {}
                words = [bytes(t) for t in topics] + [data[i : i + 32] for i in range(0, len(data), 32)]
                for (name, _, reader), word in zip(readers, words, strict=True):
                    if len(word) != 32 or (value := reader(word)) is None:
                        break
                    args[name] = value
                else:
                    return args
        item = self._events[topic]
        indexed = [i for i in item["inputs"] if i["indexed"]]
        plain_inputs = [i for i in item["inputs"] if not i["indexed"]]
        args = {}
        for inp, topic_value in zip(indexed, log["topics"][1:], strict=True):
            (args[inp["name"]],) = abi_decode([inp["type"]], bytes(topic_value))
        values = abi_decode([i["type"] for i in plain_inputs], bytes(log["data"]))
        for inp, value in zip(plain_inputs, values, strict=True):
            args[inp["name"]] = value
        return args

    def _decode_log(self, log: Any) -> ChainEvent:
        topic = _hex(log["topics"][0])
        item = self._events[topic]
        args = {
            k: (_checksummed(v) if isinstance(v, str) and v.startswith("0x") and len(v) == 42 else _hex(v))
            for k, v in self._decode_args(topic, log).items()
        }
        return ChainEvent(
            name=item["name"],
            args=args,
            tx_hash=_hex(log["transactionHash"]),
            block_number=log["blockNumber"],
            log_index=log["logIndex"],
        )

    @staticmethod
    def _signature(item: dict[str, Any]) -> str:
        return f"{item['name']}({','.join(_canonical_type(i) for i in item['inputs'])})"

    def _error_table(self, abi: list[dict[str, Any]]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
        return {
            "0x" + function_signature_to_4byte_selector(self._signature(item)).hex(): (item["name"], item["inputs"])
            for item in abi
            if item["type"] == "error"
        }

    def decode_revert(self, exc: Exception, function: str) -> LotlineError:
        """The project error for a revert, from the custom error's selector and values."""
        data = _revert_data(exc)
        if data is None:
            message = getattr(exc, "message", None) or str(exc)
            return Conflict(f"{function} reverted: {message}", code="chain_revert")
        selector, body = data[:10].lower(), bytes.fromhex(data[10:])
        if selector not in self._errors:
            return Conflict(f"{function} reverted with unknown error {selector}", code="chain_revert")
        name, inputs = self._errors[selector]
        values = abi_decode([_canonical_type(i) for i in inputs], body) if inputs else ()
        decoded = {inp["name"]: _describe(inp, v) for inp, v in zip(inputs, values, strict=True)}
        shown = ", ".join(f"{k}={v}" for k, v in decoded.items())
        error_class, code = chain_error_code(name, values[1] if name == "LotUnavailable" else None)
        error = error_class(f"{function} refused by the ledger: {name}({shown})", code=code)
        error.chain_error = name  # type: ignore[attr-defined]
        error.chain_args = decoded  # type: ignore[attr-defined]
        return error


def _revert_data(exc: BaseException) -> str | None:
    """The revert data (0x hex) of a failed call: JSON-RPC nodes put it in `data`; the embedded chain raises
    its error with the raw bytes and web3 re-raises it as text, so walk the exception chain for the bytes."""
    seen: BaseException | None = exc
    while seen is not None:
        data = getattr(seen, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            return data
        for arg in seen.args:
            if isinstance(arg, bytes | bytearray) and len(arg) >= 4:
                return "0x" + bytes(arg).hex()
            if isinstance(arg, str) and "reverted: b" in arg:
                literal = ast.literal_eval(arg.split("reverted: ", 1)[1])
                if isinstance(literal, bytes) and len(literal) >= 4:
                    return "0x" + literal.hex()
        seen = seen.__cause__ or seen.__context__
    return None


def _canonical_type(inp: dict[str, Any]) -> str:
    if inp["type"].startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in inp["components"])
        return f"({inner}){inp['type'][5:]}"
    return inp["type"]


def _describe(inp: dict[str, Any], value: Any) -> Any:
    if inp.get("internalType", "").startswith("enum LotLedger.Status"):
        return LotStatus(value).name.lower()
    if inp["type"] == "bytes32[]":
        return [ROLE_BY_ID.get(bytes(v), _hex(v)) for v in value]
    if inp["type"] == "bytes32" and inp["name"] in ("neededRole", "role"):
        return ROLE_BY_ID.get(bytes(value), _hex(value))
    if inp["type"] == "address":
        return to_checksum_address(value)
    return _hex(value)


def _fees(w3: Web3) -> dict[str, int]:
    """EIP-1559 fees where the chain has a base fee, a legacy gas price otherwise (some consortium chains)."""
    block = w3.eth.get_block("latest")
    base = block.get("baseFeePerGas")
    if base is None:
        return {"gasPrice": w3.eth.gas_price}
    priority = 1_000_000_000 if base > 0 else 0
    return {"maxFeePerGas": 2 * base + priority, "maxPriorityFeePerGas": priority, "type": 2}
