"""The embedded chain: eth-tester + py-evm in-process, with its state durable on disk.

Stock eth-tester keeps the whole chain in a Python dict, so every restart starts a new chain and every
acknowledged transaction of the previous run is gone. Here py-evm's key-value database is an SQLite file
(WAL, ``synchronous=FULL``) and the chain is reopened at its canonical head on the next start.

How durability works
--------------------
* :class:`SqliteKeyValueStore` buffers every write py-evm makes in memory and writes the buffer to SQLite
  in ONE transaction when :meth:`SqliteKeyValueStore.commit` is called. Readers see the buffer first, so
  py-evm never notices the difference.
* :class:`DurableTesterChain` (a py-evm ``MiningChain``) commits right after each mined block. eth-tester
  auto-mines one block per transaction inside ``eth_sendRawTransaction``, so by the time a transaction hash
  is returned to the caller its block is on disk: an acknowledged transaction survives ``kill -9``.
* A crash before the commit loses only the block being mined, whose hash was never returned to anyone.
  A commit is all-or-nothing (SQLite transaction), so the file always holds a whole chain up to some block.
* ``synchronous=FULL`` makes each commit wait for fsync, so an acknowledged block also survives a power
  cut, as far as the disk honours fsync.

The log index
-------------
``eth_getLogs`` must not read every block of a long-lived chain to find a lot's few logs. The SQLite file holds
a table ``log_blocks (k, block)`` with one row per block and per address, per (topic position, topic) and
"any log" that appears in the block's receipts: the lot id of every LotLedger event is an indexed topic, so a
lot's blocks are one index range read. Rows are written by :meth:`DurableTesterChain.index_logs` into the same
buffer and the same commit as the block itself (the metadata ``log_index_head`` records how far the index
goes), so the index is exactly as durable as the chain. A chain written before the index existed is indexed
once when it is opened.

What is not durable: eth-tester's in-Python state (log/block filters made with ``eth_newFilter``, snapshots)
and the pending block, which is always empty between requests because of auto-mining. Snapshots, revert and
reset-to-genesis are refused, because rewinding a durable ledger would silently drop acknowledged history.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import secrets
import sqlite3
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from eth._utils.headers import new_timestamp_from_parent
from eth.abc import (
    AtomicDatabaseAPI,
    BlockAndMetaWitness,
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound, VMError
from eth.exceptions import Revert as EVMRevert
from eth.exceptions import TransactionNotFound as EVMTransactionNotFound
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_abi import abi
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_bloom import BloomFilter
from eth_tester import EthereumTester
from eth_tester.backends.pyevm.main import (
    PyEVMBackend,
    _get_vm_for_block_number,
    get_default_genesis_params,
)
from eth_tester.backends.pyevm.serializers import (
    serialize_log,
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.constants import DYNAMIC_FEE_TRANSACTION_PARAMS
from eth_tester.exceptions import TransactionFailed, TransactionNotFound
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_tester.utils.filters import check_if_log_matches
from eth_utils import ValidationError as EthValidationError
from eth_utils import encode_hex, to_canonical_address
from eth_utils.toolz import assoc
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS, not_implemented, static_return
from web3.types import RPCEndpoint, RPCResponse

from supply_chain.domain.errors import ChainUnavailable

#: Python's recursion limit once py-evm is loaded. Importing py-evm (``eth``) and ``py_ecc`` raises it to
#: 100,000, far more than a thread's C stack holds, so a deeply nested input to a C-recursive routine (the
#: JSON parser, ``repr``) crashed the process instead of raising RecursionError. The ledger makes no nested
#: contract calls, so the EVM never needs more than a few hundred frames.
SAFE_RECURSION_LIMIT = 10_000


def restore_recursion_limit() -> None:
    """Put Python's recursion limit back to ``SAFE_RECURSION_LIMIT`` after py-evm raised it."""
    if sys.getrecursionlimit() > SAFE_RECURSION_LIMIT:
        sys.setrecursionlimit(SAFE_RECURSION_LIMIT)


restore_recursion_limit()  # eth, eth_tester's py-evm backend and py_ecc are all imported above

__all__ = [
    "BLOCK_GAS_LIMIT",
    "CHAIN_ID",
    "EmbeddedChain",
    "SqliteKeyValueStore",
    "open_embedded",
]

#: Fixed chain id of every embedded chain (the usual id of local development chains).
CHAIN_ID = 1337
#: Constant block gas limit; every block keeps its parent's limit.
BLOCK_GAS_LIMIT = 30_000_000
#: Genesis balance of the faucet: a billion test ether, enough for any installation's lifetime.
FAUCET_BALANCE_WEI = 10**9 * 10**18

DB_FILE = "chain.sqlite3"
FAUCET_KEY_FILE = "faucet.key"
LOCK_FILE = "chain.lock"
SCHEMA_VERSION = "1"
#: Metadata key: the highest block whose logs are in the log index (the index is complete up to there).
LOG_INDEX_HEAD = "log_index_head"

_EIP838_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_ABSENT = object()  # read-cache marker: the key is known not to exist


# --------------------------------------------------------------------------------------------------------
# Key-value store
# --------------------------------------------------------------------------------------------------------


class SqliteKeyValueStore(BaseDB):
    """py-evm's key-value database, kept in an SQLite file and written one whole block at a time.

    Writes and deletes go to an in-memory buffer; :meth:`commit` writes the buffer in a single SQLite
    transaction. Committed values are also kept in a bounded read cache: py-evm reads the same trie nodes
    over and over (about 50 lookups per simple transaction), and a dict hit is ~30x cheaper than an SQLite
    query. Not thread-safe by itself: the embedded chain serialises all access with one lock.
    """

    #: Committed entries kept in memory; trie nodes are ~100-500 bytes, so this stays in the tens of MB.
    READ_CACHE_ENTRIES = 100_000

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is exactly one transaction.
        # check_same_thread=False: waitress worker threads take turns under the chain lock.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # The log index (see LogIndex): which blocks hold a log with a given address or topic.
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS log_blocks (k BLOB NOT NULL, block INTEGER NOT NULL, "
            "PRIMARY KEY (k, block)) WITHOUT ROWID"
        )
        # key -> value, or None for "deleted since the last commit"
        self._pending: dict[bytes, bytes | None] = {}
        self._pending_meta: dict[str, str] = {}
        self._pending_log_blocks: set[tuple[bytes, int]] = set()
        # committed key -> value, or _ABSENT for a key known not to exist; insertion-ordered for eviction
        self._cache: dict[bytes, bytes | object] = {}

    # -- py-evm's DatabaseAPI ---------------------------------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:
                raise KeyError(key)
            return value
        cached = self._cache.get(key)
        if cached is None:
            row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            cached = _ABSENT if row is None else cast(bytes, row[0])
            self._remember(key, cached)
        if cached is _ABSENT:
            raise KeyError(key)
        return cast(bytes, cached)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = None

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    # -- durability -------------------------------------------------------------------------------------

    def get_meta(self, name: str) -> str | None:
        """A committed metadata value (chain id, faucet address, ...), or None."""
        if name in self._pending_meta:
            return self._pending_meta[name]
        row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else cast(str, row[0])

    def set_meta(self, name: str, value: str) -> None:
        """Record a metadata value; written with the next :meth:`commit`."""
        self._pending_meta[name] = value

    def add_log_blocks(self, rows: set[tuple[bytes, int]]) -> None:
        """Record (index key, block number) pairs of the log index; written with the next :meth:`commit`."""
        self._pending_log_blocks |= rows

    def log_blocks(
        self, keys: Sequence[bytes], lower: int, upper: int, among: set[int] | None = None
    ) -> set[int]:
        """The numbers of the blocks from ``lower`` to ``upper`` (and in ``among``, when given) that hold a log
        under any of ``keys``. A short ``among`` is checked block by block, so a lookup that follows a
        selective one never reads a long run of the index."""
        pending = {(key, block) for key, block in self._pending_log_blocks if key in keys}
        if among is not None and len(among) <= 256:
            query = "SELECT 1 FROM log_blocks WHERE k = ? AND block = ?"
            return {
                block
                for block in among
                if lower <= block <= upper
                and any((key, block) in pending or self._conn.execute(query, (key, block)).fetchone() for key in keys)
            }
        found = {block for _key, block in pending if lower <= block <= upper}
        for key in keys:
            found.update(
                row[0]
                for row in self._conn.execute(
                    "SELECT block FROM log_blocks WHERE k = ? AND block BETWEEN ? AND ?", (key, lower, upper)
                )
            )
        return found if among is None else found & among

    @property
    def has_pending(self) -> bool:
        return bool(self._pending or self._pending_meta or self._pending_log_blocks)

    def commit(self) -> None:
        """Write every buffered change in one transaction and wait for it to reach the disk."""
        if not self.has_pending:
            return
        upserts = [(k, v) for k, v in self._pending.items() if v is not None]
        deletes = [(k,) for k, v in self._pending.items() if v is None]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if upserts:
                conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", upserts)
            if deletes:
                conn.executemany("DELETE FROM kv WHERE k = ?", deletes)
            if self._pending_meta:
                conn.executemany(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", self._pending_meta.items()
                )
            if self._pending_log_blocks:
                conn.executemany("INSERT OR IGNORE INTO log_blocks (k, block) VALUES (?, ?)", self._pending_log_blocks)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        for key, value in self._pending.items():
            self._remember(key, _ABSENT if value is None else value)
        self._pending.clear()
        self._pending_meta.clear()
        self._pending_log_blocks.clear()

    def _remember(self, key: bytes, value: bytes | object) -> None:
        cache = self._cache
        cache.pop(key, None)  # re-insert at the young end
        cache[key] = value
        if len(cache) > self.READ_CACHE_ENTRIES:
            # Drop the oldest quarter in one go: cheaper than exact LRU bookkeeping on every read.
            for old_key in list(itertools.islice(cache, self.READ_CACHE_ENTRIES // 4)):
                del cache[old_key]

    def close(self) -> None:
        """Close the file, dropping uncommitted writes (they belong to no mined block)."""
        self._pending.clear()
        self._pending_meta.clear()
        self._pending_log_blocks.clear()
        self._cache.clear()
        self._conn.close()


class DurableAtomicDB(AtomicDB):
    """py-evm's ``AtomicDB`` over a :class:`SqliteKeyValueStore`, exposing the store's commit.

    py-evm's atomic batches apply to the wrapped store's buffer; the store's own commit is what makes a
    whole block durable at once.
    """

    def __init__(self, store: SqliteKeyValueStore) -> None:
        super().__init__(store)
        self.store = store

    def commit(self) -> None:
        self.store.commit()


# --------------------------------------------------------------------------------------------------------
# Chain
# --------------------------------------------------------------------------------------------------------


class DurableTesterChain(MiningChain):
    """eth-tester's tester chain (same VM, constant gas limit), committing to disk after every mined block."""

    chain_id = CHAIN_ID
    # eth-tester's PyEVMBackend default: a post-merge Prague chain from genesis. Paris bytecode runs on it.
    vm_configuration = ((0, PragueVM),)

    def __init__(self, base_db: AtomicDatabaseAPI, header: BlockHeaderAPI | None = None) -> None:
        if not isinstance(base_db, DurableAtomicDB):
            raise TypeError("DurableTesterChain needs a DurableAtomicDB")
        super().__init__(base_db, header)
        self._durable_db = base_db

    def create_header_from_parent(
        self, parent_header: BlockHeaderAPI, **header_params: Any
    ) -> BlockHeaderAPI:
        # Keep the gas limit constant, as eth-tester's chain does (no 1/1024 drift per block).
        return super().create_header_from_parent(
            parent_header, **assoc(header_params, "gas_limit", parent_header.gas_limit)
        )

    def get_transaction_builder(self) -> Any:
        return self.get_vm().get_transaction_builder()

    def apply_transaction(
        self, transaction: SignedTransactionAPI
    ) -> tuple[BlockAPI, ReceiptAPI, ComputationAPI]:
        # py-evm stamps the pending header when it is created, i.e. right after the previous block was
        # mined, which may be hours before the next transaction arrives. Re-stamp the still-empty pending
        # block so block timestamps tell when a transaction was accepted. Never backwards: the timestamp
        # stays above the parent's and above any time set by time travel.
        if self.header.gas_used == 0:
            parent = self.chaindb.get_block_header_by_hash(self.header.parent_hash)
            fresh = max(self.header.timestamp, new_timestamp_from_parent(parent))
            if fresh != self.header.timestamp:
                self.header = self.header.copy(timestamp=fresh)
        return super().apply_transaction(transaction)

    def mine_block_extended(self, *args: Any, **kwargs: Any) -> BlockAndMetaWitness:
        result = super().mine_block_extended(*args, **kwargs)
        self.index_logs()
        self._durable_db.commit()
        return result

    def mine_all(self, transactions: Sequence[SignedTransactionAPI], *args: Any, **kwargs: Any) -> Any:
        result = super().mine_all(transactions, *args, **kwargs)
        self.index_logs()
        self._durable_db.commit()
        return result

    # -- the log index ---------------------------------------------------------------------------------

    @property
    def log_index_head(self) -> int:
        """The highest block whose logs are in the log index; -1 before genesis is indexed."""
        recorded = self._durable_db.store.get_meta(LOG_INDEX_HEAD)
        return -1 if recorded is None else int(recorded)

    def index_logs(self) -> None:
        """Add the canonical blocks mined since the last indexed one to the log index.

        Buffered like every other write: the rows and the new index head reach the disk with the commit that
        makes the block itself durable, so the file never holds a block the index has not seen. A block whose
        header bloom is empty holds no log and costs one header read. On a chain written before the index
        existed, the first open indexes every block once (``_open_chain``).
        """
        store = self._durable_db.store
        start = self.log_index_head + 1
        head = self.chaindb.get_canonical_head().block_number
        if head < start:
            return
        rows: set[tuple[bytes, int]] = set()
        for number in range(start, head + 1):
            if self.chaindb.get_canonical_block_header_by_number(number).bloom == 0:
                continue
            block = self.get_canonical_block_by_number(number)
            for receipt in block.get_receipts(self.chaindb):
                for log in receipt.logs:
                    rows.add((_ANY_LOG_KEY, number))
                    rows.add((_address_key(log.address), number))
                    for position, topic in enumerate(log.topics):
                        rows.add((_topic_key(position, topic.to_bytes(32, "big")), number))
        store.add_log_blocks(rows)
        store.set_meta(LOG_INDEX_HEAD, str(head))

    def blocks_with_logs(self, lower: int, upper: int, addresses: Any, topics: Any) -> list[int]:
        """The numbers, ascending, of the blocks from ``lower`` to ``upper`` that may hold a log matching the
        normalised filter: every block that does, perhaps a few that do not (the caller matches each log).

        Read from the log index, so the cost follows the blocks found, not the length of the range. The
        filter's most selective parts are looked up first (a lot id topic before an event signature, both
        before the address) and the others checked only on the blocks found so far. Blocks above the index
        head (none, unless the index is behind) are found by their header blooms."""
        indexed = min(upper, self.log_index_head)
        found: list[int] = []
        if lower <= indexed:
            store = self._durable_db.store
            candidates: set[int] | None = None
            for keys in _index_keys(addresses, topics):
                candidates = store.log_blocks(keys, lower, indexed, among=candidates)
                if not candidates:
                    break
            found = sorted(candidates or ())
        for number in range(max(lower, indexed + 1), upper + 1):
            header = self.get_canonical_block_header_by_number(number)
            if _bloom_may_match(header.bloom, addresses, topics):
                found.append(number)
        return found


class _RevertWithData(Exception):
    """An EVM revert, carrying the raw revert data (custom error selector + ABI-encoded args).

    Deliberately not an eth-tester ``TransactionFailed``: web3's tester glue turns those into a string and
    the revert data is lost. The provider turns this into the JSON-RPC error a real node sends.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(encode_hex(data))
        self.data = data


class _VMFailure(Exception):
    """A call failed for a reason other than REVERT (out of gas, invalid opcode, ...)."""


class DurableBackend(PyEVMBackend):
    """eth-tester's py-evm backend over an already-built durable chain.

    Differences from ``PyEVMBackend``: it holds no keys (every transaction is signed by its sender and sent
    raw), finds transactions through py-evm's tx-hash index instead of scanning every block (the stock
    lookup is O(chain length) per receipt), keeps revert data, and refuses snapshots and resets.
    """

    def __init__(self, chain: DurableTesterChain) -> None:
        # PyEVMBackend.__init__ would build a fresh in-memory genesis chain; we bring our own.
        self.account_keys: tuple[Any, ...] = ()
        self.chain = chain

    # -- refused: they would rewind or replace a durable ledger ----------------------------------------

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the embedded chain is durable; delete its folder to start over")

    def take_snapshot(self) -> Any:
        raise NotImplementedError("snapshots are not supported on the durable embedded chain")

    def revert_to_snapshot(self, snapshot: Any) -> None:
        raise NotImplementedError("snapshots are not supported on the durable embedded chain")

    # -- indexed transaction lookups -------------------------------------------------------------------

    def _find_transaction(self, transaction_hash: bytes) -> tuple[BlockAPI, SignedTransactionAPI, int]:
        pending = self.chain.get_block()
        for index, transaction in enumerate(pending.transactions):
            if transaction.hash == transaction_hash:
                return pending, transaction, index
        try:
            block_number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
        except EVMTransactionNotFound:
            raise TransactionNotFound(
                f"No transaction found for transaction hash: {encode_hex(transaction_hash)}"
            ) from None
        block = self.chain.get_canonical_block_by_number(block_number)
        transaction = block.transactions[index]
        if transaction.hash != transaction_hash:  # pragma: no cover -- index and block disagree
            raise TransactionNotFound(f"transaction index is inconsistent for {encode_hex(transaction_hash)}")
        return block, transaction, index

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._find_transaction(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._find_transaction(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(
            block, receipts, transaction, index, is_pending, self.chain.get_vm()
        )

    # -- calls that keep the revert data ---------------------------------------------------------------

    def call(self, transaction: Any, block_number: Any = "latest") -> Any:
        """``eth_call`` that keeps the revert data and, like geth, needs no funds when no fee is given.

        ``PyEVMBackend.call`` turns the VM error into ``TransactionFailed(str(error))``, so the revert bytes
        would survive only as a Python repr; here the error object itself is kept. It also prices an
        unpriced call at 1 gwei and checks that the sender can pay for all the block's gas, so a read-only
        call from an empty account (or from no account: the zero address) fails. geth runs such a call at
        gas price 0; here the call pays exactly the base fee with money credited just for the call inside
        the discarded state snapshot, so the sender's balance as the contract sees it is unchanged.
        """
        defaulted = dict(transaction)
        if "gas" not in defaulted:
            defaulted["gas"] = self._max_available_gas()
        vm = _get_vm_for_block_number(self.chain, block_number)
        state = vm.state
        unpriced = not any(name in transaction for name in (*DYNAMIC_FEE_TRANSACTION_PARAMS, "gas_price"))
        if unpriced:
            defaulted["max_fee_per_gas"] = state.base_fee
            defaulted["max_priority_fee_per_gas"] = 0
        unsigned = self._get_normalized_and_unsigned_evm_transaction(defaulted, block_number)
        spoofed = SpoofTransaction(unsigned, from_=transaction["from"])
        snapshot = state.snapshot()
        try:
            if unpriced:
                state.delta_balance(transaction["from"], defaulted["gas"] * state.base_fee)
            computation = state.apply_transaction(spoofed)
        finally:
            state.revert(snapshot)
        if computation.is_error:
            raise _translate_vm_error(computation.error)
        return computation.output

    def estimate_gas(self, transaction: Any, block_number: Any = "latest") -> Any:
        """``eth_estimateGas`` that keeps the revert data and, for an unpriced transaction, needs no funds.

        py-evm estimates in a state whose base fee is 0; pricing an unpriced estimate at 0 (eth-tester would
        say 1 gwei) makes it independent of the sender's balance, as on geth.
        """
        if not any(name in transaction for name in (*DYNAMIC_FEE_TRANSACTION_PARAMS, "gas_price")):
            transaction = {**transaction, "max_fee_per_gas": 0, "max_priority_fee_per_gas": 0}
        try:
            return super().estimate_gas(transaction, block_number)
        except TransactionFailed as exc:
            # PyEVMBackend.estimate_gas raises TransactionFailed(error) from error: the cause is the VM error.
            if isinstance(exc.__cause__, VMError):
                raise _translate_vm_error(exc.__cause__) from exc
            raise


def _translate_vm_error(error: VMError) -> Exception:
    if isinstance(error, EVMRevert):
        data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
        return _RevertWithData(data)
    return _VMFailure(str(error) or type(error).__name__)


class DurableTester(EthereumTester):
    """``EthereumTester`` with an ``eth_getLogs`` whose cost follows the blocks that hold matching logs.

    The stock ``get_logs`` serialises and validates every block in the range, then looks up and serialises
    each transaction's receipt: ~5 ms per block, so a re-index of a long-lived durable chain took minutes.
    This one reads only the blocks the log index names (``DurableTesterChain.blocks_with_logs``: no header of
    a block without a matching address or topic is read), and builds log entries straight from
    py-evm's receipts with eth-tester's own serialiser, matcher and normaliser, so results are identical
    (per-transaction ``logIndex`` included, as eth-tester's receipts number them). One deliberate
    difference: block tags are resolved to numbers first, so ``fromBlock: "earliest"`` means block 0 as on
    any node (stock eth-tester's matcher takes "earliest" to mean "pending" and returns nothing).
    """

    backend: DurableBackend

    def get_logs(
        self, from_block: Any = None, to_block: Any = None, address: Any = None, topics: Any = None
    ) -> tuple[Any, ...]:
        self.validator.validate_inbound_filter_params(
            from_block=from_block, to_block=to_block, address=address, topics=topics
        )
        raw_from, raw_to, raw_address, raw_topics = self.normalizer.normalize_inbound_filter_params(
            from_block=from_block, to_block=to_block, address=address, topics=topics
        )
        lower = raw_from if isinstance(raw_from, int) else self._block_number(raw_from)
        upper = raw_to if isinstance(raw_to, int) else self._block_number(raw_to)
        chain = self.backend.chain
        upper = min(upper, chain.get_canonical_head().block_number)
        raw_topics = _materialised(raw_topics)

        found = []
        for number in chain.blocks_with_logs(lower, upper, raw_address, raw_topics):
            block = chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(chain.chaindb)
            for tx_index, (transaction, receipt) in enumerate(zip(block.transactions, receipts, strict=True)):
                for log_index, log in enumerate(receipt.logs):
                    entry = serialize_log(block, transaction, tx_index, log, log_index, False)
                    if check_if_log_matches(entry, lower, upper, raw_address, raw_topics):
                        found.append(self.normalizer.normalize_outbound_log_entry(entry))
        return tuple(found)

    def _block_number(self, block_id: str | None) -> int:
        return int(self.get_block_by_number(block_id or "latest")["number"])

    def contract_logs(
        self, address: bytes, lower: int, upper: int | None, topics: Sequence[bytes | None]
    ) -> list[dict[str, Any]]:
        """The logs of the contract at ``address`` from block ``lower`` to ``upper`` (None: the head) whose
        topics start with ``topics`` (None: any value there): the entries `get_logs` finds for that filter, in
        the same order and with the same per-transaction ``logIndex``, as plain values (``topics`` a list of
        32-byte words, ``data``, ``transactionHash`` bytes; ``blockNumber``, ``logIndex`` numbers).

        eth-tester's serialiser and normaliser, then web3's formatters, cost about 10 ms a log here: a lot of
        1,000 events has 1,000 logs to read when its verification must name the event that differs. These
        entries are built straight from py-evm's receipts of the blocks the log index names."""
        chain = self.backend.chain
        head = chain.get_canonical_head().block_number
        upper = head if upper is None else min(upper, head)
        wanted = tuple(topics)
        found: list[dict[str, Any]] = []
        if lower > upper:
            return found
        for number in chain.blocks_with_logs(lower, upper, address, wanted):
            block = chain.get_canonical_block_by_number(number)
            receipts = block.get_receipts(chain.chaindb)
            for transaction, receipt in zip(block.transactions, receipts, strict=True):
                for log_index, log in enumerate(receipt.logs):
                    if log.address != address or len(log.topics) < len(wanted):
                        continue
                    words = [topic.to_bytes(32, "big") for topic in log.topics]
                    if all(want is None or want == word for want, word in zip(wanted, words, strict=False)):
                        found.append(
                            {
                                "topics": words,
                                "data": bytes(log.data),
                                "transactionHash": transaction.hash,
                                "blockNumber": number,
                                "logIndex": log_index,
                            }
                        )
        return found


_ANY_LOG_KEY = b"*"  # log index key of "a block with at least one log"


def _address_key(address: bytes) -> bytes:
    return b"a" + address


def _topic_key(position: int, topic: bytes) -> bytes:
    return b"t" + bytes([position]) + topic


def _materialised(topics: Any) -> Any:
    """The normalised topics with each list of alternatives as a tuple (eth-tester hands them over as
    generators, which could be read only once)."""
    if topics is None:
        return None
    return tuple(
        position if position is None or isinstance(position, bytes | bytearray) else tuple(position)
        for position in topics
    )


def _index_keys(addresses: Any, topics: Any) -> list[list[bytes]]:
    """The log index lookups a normalised filter needs, most selective first: a block may hold a matching log
    only if it holds, for each lookup, a log under at least one of its keys. Topics after the first (indexed
    event arguments, such as a lot id) come first, then the first topic (the event signature), then the
    address; a filter that constrains nothing needs every block with a log."""
    lookups: list[tuple[int, list[bytes]]] = []
    for position, option in enumerate(topics or ()):
        if option is None:
            continue
        options = option if isinstance(option, tuple | list) else (option,)
        if any(o is None for o in options):
            continue  # a wildcard among the alternatives
        lookups.append((0 if position else 1, [_topic_key(position, bytes(o)) for o in options]))
    if addresses is not None:
        candidates = addresses if isinstance(addresses, tuple | list) else (addresses,)
        lookups.append((2, [_address_key(bytes(a)) for a in candidates]))
    ordered = [keys for _rank, keys in sorted(lookups, key=lambda item: item[0])]
    return ordered or [[_ANY_LOG_KEY]]


def _bloom_may_match(bloom: int, addresses: Any, topics: Any) -> bool:
    """False only when the block's bloom proves no log can match the (normalised) filter."""
    in_bloom = BloomFilter(bloom).__contains__
    if addresses is not None:
        candidates = addresses if isinstance(addresses, tuple | list) else (addresses,)
        if not any(in_bloom(a) for a in candidates):
            return False
    for position in topics or ():
        if position is None:
            continue
        options = position if isinstance(position, tuple | list) else (position,)
        if any(option is None for option in options):
            continue  # a wildcard among the alternatives
        if not any(in_bloom(option) for option in options):
            return False
    return True


# --------------------------------------------------------------------------------------------------------
# Provider
# --------------------------------------------------------------------------------------------------------


def _api_endpoints() -> dict[str, dict[str, Any]]:
    """eth-tester's endpoint table, adjusted for a durable chain with our own chain id."""
    # One level of copying: the leaves are cytoolz callables, which cannot be deep-copied (nor need to be).
    endpoints = {namespace: dict(table) for namespace, table in API_ENDPOINTS.items()}
    endpoints["eth"]["chainId"] = static_return(CHAIN_ID)
    endpoints["net"]["version"] = static_return(str(CHAIN_ID))
    for name in ("revert", "snapshot"):
        endpoints["evm"][name] = not_implemented
    return endpoints


class SerializedTesterProvider(EthereumTesterProvider):
    """``EthereumTesterProvider`` that serialises requests and answers failures as a JSON-RPC node does.

    eth-tester, py-evm and the SQLite connection are not thread-safe, and waitress serves with threads, so
    every request holds one lock. Reverts come back as ``{"code": 3, "message": "execution reverted",
    "data": "0x..."}`` and rejected raw transactions as ``{"code": -32000, "message": ...}``, the shapes geth
    and anvil use, so web3 raises the same exceptions (``ContractCustomError`` with ``.data``, ...) in both
    chain modes.
    """

    def __init__(self, tester: EthereumTester, state_dir: Path) -> None:
        super().__init__(tester, api_endpoints=_api_endpoints())
        self.lock = threading.RLock()
        self.state_dir = state_dir
        self.closed = False
        self.failure: BaseException | None = None

    def _check_open(self) -> None:
        if self.closed:
            raise ChainUnavailable(f"the embedded chain in {self.state_dir} is closed")
        if self.failure is not None:
            raise ChainUnavailable(
                f"the embedded chain in {self.state_dir} could not write to disk ({self.failure}); "
                "restart to continue from the last saved block"
            )

    def contract_logs(
        self, address: str, from_block: int, to_block: int | None, topics: Sequence[bytes | None]
    ) -> list[dict[str, Any]]:
        """``eth_getLogs`` for one contract's logs, read straight from the chain (`DurableTester.contract_logs`)
        under the same lock as every request: what the ledger adapter reads a lot's history with."""
        with self.lock:
            self._check_open()
            tester = cast(DurableTester, self.ethereum_tester)
            return tester.contract_logs(bytes.fromhex(address.removeprefix("0x")), from_block, to_block, topics)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self.lock:
            self._check_open()
            if method in _CALL_METHODS:
                params = _default_sender(params)
            try:
                return super().make_request(method, params)
            except _RevertWithData as exc:
                return self._error(3, _revert_message(exc.data), encode_hex(exc.data))
            except _VMFailure as exc:
                return self._error(-32000, str(exc))
            except (EthValidationError, TesterValidationError) as exc:
                # What a node answers for a transaction or call it will not run (bad nonce, no funds, ...).
                if method == "eth_sendRawTransaction" or method in _CALL_METHODS:
                    return self._error(-32000, _node_wording(str(exc)))
                raise
            except sqlite3.Error as exc:
                # A failed commit leaves the in-memory chain ahead of the disk. Stop answering rather than
                # acknowledge work that a restart would forget.
                self.failure = exc
                raise ChainUnavailable(
                    f"the embedded chain in {self.state_dir} could not write to disk ({exc})"
                ) from exc

    def is_connected(self, show_traceback: bool = False) -> bool:  # type: ignore[override]
        return not self.closed and self.failure is None

    def _error(self, code: int, message: str, data: str | None = None) -> RPCResponse:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        request_id = repr(self._current_request_id)
        self._current_request_id += 1
        return cast(RPCResponse, {"id": request_id, "jsonrpc": "2.0", "error": error})


_CALL_METHODS = frozenset({"eth_call", "eth_estimateGas", "eth_createAccessList"})
_ZERO_ADDRESS = "0x" + "00" * 20


def _default_sender(params: Any) -> Any:
    """Let a call without ``from`` run as the zero address, as geth and anvil do.

    web3's tester middleware fills ``from`` with the node's first account, and this node holds none (keys
    live with their organisations), so read-only contract calls would otherwise fail validation.
    """
    if params and isinstance(params[0], dict) and not params[0].get("from"):
        return [{**params[0], "from": _ZERO_ADDRESS}, *params[1:]]
    return params


_NONCE_MISMATCH = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")


def _node_wording(message: str) -> str:
    """py-evm's rejection text, led by the words geth and anvil use, so callers can match either mode.

    ("nonce too low" in particular: resending a transaction that was already mined says exactly that.)
    """
    nonce = _NONCE_MISMATCH.search(message)
    if nonce:
        expected, got = int(nonce.group(1)), int(nonce.group(2))
        return f"nonce too {'low' if got < expected else 'high'}: next nonce {expected}, tx nonce {got}"
    if "cannot afford txn gas" in message or "enough balance" in message:
        return f"insufficient funds for gas * price + value ({message})"
    if "lower than block's base fee" in message:
        return f"max fee per gas less than block base fee ({message})"
    if "exceeds gas limit" in message:
        return f"exceeds block gas limit ({message})"
    return message


def _revert_message(data: bytes) -> str:
    """geth's wording: "execution reverted", plus the reason when the data is a plain ``Error(string)``."""
    if data[:4] == _EIP838_ERROR_SELECTOR:
        try:
            (reason,) = abi.decode(["string"], data[4:])
        except DecodingError:
            return "execution reverted"
        return f"execution reverted: {reason}"
    return "execution reverted"


# --------------------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------------------


@dataclass
class EmbeddedChain:
    """An open embedded chain. Only one per folder at a time (an exclusive lock file guards it)."""

    w3: Web3
    faucet_key: str = field(repr=False)  # test ether only, but keys stay out of logs all the same
    state_dir: Path
    _provider: SerializedTesterProvider = field(repr=False)
    _store: SqliteKeyValueStore = field(repr=False)
    _lock_fd: int | None = field(repr=False)

    @property
    def faucet_address(self) -> str:
        return cast(str, Account.from_key(self.faucet_key).address)

    @property
    def lock(self) -> threading.RLock:
        """The lock every request holds; take it to make several requests one atomic step."""
        return self._provider.lock

    def close(self) -> None:
        """Close the database and release the folder. Idempotent; later requests raise ChainUnavailable."""
        with self._provider.lock:
            if self._provider.closed:
                return
            self._provider.closed = True
            try:
                self._store.close()
            finally:
                if self._lock_fd is not None:
                    os.close(self._lock_fd)  # closing the descriptor releases the flock
                    self._lock_fd = None

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_embedded(state_dir: Path) -> EmbeddedChain:
    """Open (or create on first use) the durable embedded chain kept in ``state_dir``.

    First open: a faucet key is generated and saved (mode 0600), and a genesis block is built whose state
    holds only the faucet's balance. Later opens continue from the canonical head; genesis is never rebuilt.
    Raises ``ChainUnavailable`` when another process holds the folder, or when the folder's faucet key does
    not belong to its chain.
    """
    state_dir = Path(state_dir)
    # Readable by the owner only, like the rest of the instance folder: the chain state and the faucet key.
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = _acquire_folder_lock(state_dir)
    try:
        # created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode
        os.close(os.open(state_dir / DB_FILE, os.O_RDWR | os.O_CREAT, 0o600))
        store = SqliteKeyValueStore(state_dir / DB_FILE)
        try:
            chain, faucet_key = _open_chain(store, state_dir)
        except BaseException:
            store.close()
            raise
    except BaseException:
        os.close(lock_fd)
        raise

    backend = DurableBackend(chain)
    tester = DurableTester(backend=backend, auto_mine_transactions=True)
    provider = SerializedTesterProvider(tester, state_dir)
    restore_recursion_limit()  # in case building the chain imported another part of py-evm lazily
    return EmbeddedChain(
        w3=Web3(provider),
        faucet_key=faucet_key,
        state_dir=state_dir,
        _provider=provider,
        _store=store,
        _lock_fd=lock_fd,
    )


def _open_chain(store: SqliteKeyValueStore, state_dir: Path) -> tuple[DurableTesterChain, str]:
    """The chain at its canonical head and the faucet key; genesis (and the key) only if there is no chain."""
    db = DurableAtomicDB(store)
    try:
        ChainDB(db).get_canonical_head()
    except CanonicalHeadNotFound:
        faucet_key = _load_or_create_faucet_key(state_dir)
        return _create_genesis(db, Account.from_key(faucet_key).address), faucet_key

    recorded_chain_id = store.get_meta("chain_id")
    if recorded_chain_id != str(CHAIN_ID):
        raise ChainUnavailable(
            f"the embedded chain in {state_dir} has chain id {recorded_chain_id}, expected {CHAIN_ID}"
        )
    key_file = state_dir / FAUCET_KEY_FILE
    recorded_faucet = store.get_meta("faucet_address")
    if not key_file.exists():
        # Never mint a new key for an existing chain: only the original one holds the genesis funds.
        raise ChainUnavailable(f"{key_file} is missing; restore the faucet key of {recorded_faucet}")
    faucet_key = _load_or_create_faucet_key(state_dir)
    faucet_address = Account.from_key(faucet_key).address
    if recorded_faucet != faucet_address:
        raise ChainUnavailable(
            f"{key_file} holds the key of {faucet_address}, but this chain's faucet is "
            f"{recorded_faucet}; restore the original key file"
        )
    chain = DurableTesterChain(db)
    if chain.log_index_head < chain.header.block_number - 1:
        # A chain written before the log index existed: index its blocks once, in one transaction.
        chain.index_logs()
        db.commit()
    return chain, faucet_key


def _create_genesis(db: DurableAtomicDB, faucet_address: str) -> DurableTesterChain:
    genesis_params = get_default_genesis_params(overrides={"gas_limit": BLOCK_GAS_LIMIT})
    genesis_state = {
        to_canonical_address(faucet_address): {
            "balance": FAUCET_BALANCE_WEI,
            "nonce": 0,
            "code": b"",
            "storage": {},
        }
    }
    chain = cast(DurableTesterChain, DurableTesterChain.from_genesis(db, genesis_params, genesis_state))
    db.store.set_meta("schema_version", SCHEMA_VERSION)
    db.store.set_meta("chain_id", str(CHAIN_ID))
    db.store.set_meta("faucet_address", faucet_address)
    chain.index_logs()
    db.commit()  # genesis, head pointer and metadata land together or not at all
    return chain


def _acquire_folder_lock(state_dir: Path) -> int:
    """Take the folder's exclusive lock, or raise ChainUnavailable naming the process that holds it.

    ``flock`` (not ``lockf``) so that a second open inside the same process is refused too; the kernel drops
    the lock when the process dies, so a crash never leaves a stale lock behind.
    """
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)
        if holder == str(os.getpid()):
            raise ChainUnavailable(
                f"the embedded chain in {state_dir} is already open in this process (pid {holder})"
            ) from None
        raise ChainUnavailable(
            f"the embedded chain in {state_dir} is in use by another process (pid {holder}); "
            "stop it first, or point LOTLINE_CHAIN_URL at a node that several processes can share"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def read_faucet_key(state_dir: Path) -> str:
    """The faucet's key of the chain in ``state_dir``, for a process the chain is held for by another
    (``chain.holder``); ChainUnavailable if the chain has not been made yet."""
    if not (Path(state_dir) / FAUCET_KEY_FILE).exists():
        raise ChainUnavailable(f"the embedded chain in {state_dir} has not been opened yet")
    return _load_or_create_faucet_key(Path(state_dir))


def _load_or_create_faucet_key(state_dir: Path) -> str:
    """The faucet's private key (0x-hex), created on first use and saved readable by the owner only."""
    path = state_dir / FAUCET_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        try:
            Account.from_key(key)
        except (ValueError, TypeError) as exc:
            raise ChainUnavailable(f"{path} does not hold a valid private key") from exc
        return key

    key = "0x" + secrets.token_hex(32)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (key + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(state_dir)  # the key must be on disk before a genesis that funds it is
    return key


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
