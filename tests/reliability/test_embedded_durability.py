"""The embedded chain keeps what it acknowledged: across clean restarts and kill -9, one process at a time.

Also covers the connection layer's failure behaviour (a dead node is a quick ``ChainUnavailable``) and that
reverts carry their data the way a JSON-RPC node sends them, so the ledger decodes custom errors in both
modes. The contract used here is hand-assembled bytecode (no compiler in-process):

    calldata word v == 0  ->  revert Nope(42)
    otherwise             ->  sstore(0, v); emit Stored(v)   (LOG1, topic keccak("Stored(uint256)"), data v)
"""

from __future__ import annotations

import http.server
import os
import selectors
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from supply_chain.chain.connect import ChainConnection, connect, fund
from supply_chain.chain.embedded import CHAIN_ID, EmbeddedChain, open_embedded
from supply_chain.domain.errors import ChainUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]

STORED_TOPIC = keccak(text="Stored(uint256)")
NOPE_SELECTOR = keccak(text="Nope(uint256)")[:4]
NOPE_42 = NOPE_SELECTOR + (42).to_bytes(32, "big")


def runtime_code() -> bytes:
    """Runtime bytecode of the test contract (see the module docstring)."""
    head = bytes.fromhex("60003580")  # PUSH1 0, CALLDATALOAD, DUP1          -> [v, v]
    revert = (
        bytes.fromhex("63") + NOPE_SELECTOR + bytes.fromhex("60e01b" "600052")  # mem[0:4] = selector
        + bytes.fromhex("602a" "600452")  # mem[4:36] = 42
        + bytes.fromhex("6024" "6000" "fd")  # REVERT(0, 36)
    )  # fmt: skip
    ok_dest = len(head) + 3 + len(revert)
    jump = bytes([0x60, ok_dest, 0x57])  # PUSH1 ok, JUMPI                     -> [v]
    ok = (
        bytes.fromhex("5b" "80" "6000" "55")  # JUMPDEST, DUP1, PUSH1 0, SSTORE  -> [v]
        + bytes.fromhex("6000" "52")  # mem[0:32] = v
        + bytes.fromhex("7f") + STORED_TOPIC + bytes.fromhex("6020" "6000" "a1" "00")  # LOG1(0, 32, t); STOP
    )  # fmt: skip
    return head + jump + revert + ok


def init_code() -> bytes:
    """Creation code: copy the runtime after this 11-byte prefix into memory and return it."""
    runtime = runtime_code()
    prefix = bytes([0x60, len(runtime), 0x80, 0x60, 11, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3])
    return prefix + runtime


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def send(w3: Web3, sender: LocalAccount, to: str | None, *, value: int = 0, data: bytes = b"") -> HexBytes:
    """Sign locally and send raw, EIP-1559, explicit gas: the way Lotline sends every transaction."""
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(sender.address),
        "value": value,
        "data": data,
        "gas": 300_000 if data else 21_000,
        "maxFeePerGas": 2 * base_fee + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    if to is not None:
        tx["to"] = to
    return w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)


def mined(w3: Web3, tx_hash: HexBytes) -> Any:
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1, receipt
    return receipt


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[EmbeddedChain]:
    opened = open_embedded(tmp_path / "chain")
    try:
        yield opened
    finally:
        opened.close()


def _state_of(w3: Web3, contract: str, accounts: list[str], tx_hashes: list[HexBytes]) -> dict[str, Any]:
    """Everything a restart must not change, read through the public JSON-RPC surface."""
    logs = w3.eth.get_logs(
        {"fromBlock": 0, "toBlock": "latest", "address": contract, "topics": ["0x" + STORED_TOPIC.hex()]}
    )
    return {
        "block_number": w3.eth.block_number,
        "head": dict(w3.eth.get_block("latest")),
        "genesis_hash": w3.eth.get_block(0)["hash"],
        "code": w3.eth.get_code(contract),
        "slot0": w3.eth.get_storage_at(contract, 0),
        "balances": {a: w3.eth.get_balance(a) for a in accounts},
        "nonces": {a: w3.eth.get_transaction_count(a) for a in accounts},
        "logs": [dict(entry) for entry in logs],
        "receipts": [dict(w3.eth.get_transaction_receipt(h)) for h in tx_hashes],
    }


# ------------------------------------------------------------------------------------------------------
# (a) clean close and reopen
# ------------------------------------------------------------------------------------------------------


def test_reopen_keeps_blocks_code_storage_balances_and_logs(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    first = open_embedded(state_dir)
    w3 = first.w3
    faucet = Account.from_key(first.faucet_key)
    alice = Account.create()
    hashes = [send(w3, faucet, alice.address, value=(i + 1) * 10**18) for i in range(3)]
    deploy = mined(w3, send(w3, faucet, None, data=init_code()))
    contract = deploy["contractAddress"]
    hashes.append(deploy["transactionHash"])
    hashes += [mined(w3, send(w3, faucet, contract, data=word(v)))["transactionHash"] for v in (7, 9)]
    hashes.append(mined(w3, send(w3, alice, faucet.address, value=10**17))["transactionHash"])

    accounts = [faucet.address, alice.address]
    before = _state_of(w3, contract, accounts, hashes)
    assert before["block_number"] == 7  # one block per transaction, on top of genesis
    assert before["code"] == runtime_code()
    assert before["slot0"] == word(9)
    assert [HexBytes(log["data"]) for log in before["logs"]] == [word(7), word(9)]
    first.close()

    second = open_embedded(state_dir)
    try:
        after = _state_of(second.w3, contract, accounts, hashes)
        assert after == before
        assert second.faucet_key == first.faucet_key

        # The chain goes on where it stopped: next block, next nonce, time never goes backwards.
        receipt = mined(second.w3, send(second.w3, faucet, contract, data=word(11)))
        assert receipt["blockNumber"] == before["block_number"] + 1
        assert second.w3.eth.get_block("latest")["timestamp"] > before["head"]["timestamp"]
        assert second.w3.eth.get_storage_at(contract, 0) == word(11)
    finally:
        second.close()


def test_a_block_is_stamped_when_its_transaction_arrives(chain: EmbeddedChain) -> None:
    """py-evm stamps the next block as soon as the previous one is mined; a quiet spell must not make
    the next transaction's block look older than the transaction. (Not "<= now" either: timestamps rise
    by at least a second per block, so a burst of blocks runs ahead of the clock, as on any automining node.)
    """
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    genesis_time = w3.eth.get_block(0)["timestamp"]
    time.sleep(2.2)
    sent_at = int(time.time())
    mined(w3, send(w3, faucet, faucet.address, value=1))
    stamped = w3.eth.get_block("latest")["timestamp"]
    assert stamped >= sent_at >= genesis_time + 2


def test_genesis_funds_only_a_fresh_faucet_whose_key_is_private(chain: EmbeddedChain) -> None:
    w3 = chain.w3
    key_file = chain.state_dir / "faucet.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == chain.faucet_key
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.eth.get_block("latest")["gasLimit"] == 30_000_000
    assert w3.eth.get_balance(chain.faucet_address) > 10**24
    assert w3.eth.accounts == []  # the node holds no keys: everything is signed by its sender
    # eth-tester's well-known default accounts (private keys 1, 2, ...) hold nothing here.
    for i in (1, 2, 3):
        public_default = Account.from_key(i.to_bytes(32, "big")).address
        assert w3.eth.get_balance(public_default) == 0
    other = open_embedded(chain.state_dir.parent / "other")
    try:
        assert other.faucet_key != chain.faucet_key  # fresh keys per installation
    finally:
        other.close()


def test_reverts_carry_custom_error_data_and_log_filters_work(chain: EmbeddedChain) -> None:
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    contract = mined(w3, send(w3, faucet, None, data=init_code()))["contractAddress"]
    mined(w3, send(w3, faucet, contract, data=word(5)))

    # eth_call without "from" (how contract reads are made) runs, as on geth and anvil.
    assert w3.eth.call({"to": contract, "data": word(6)}) == b""
    pauper = Account.create().address  # an account with nothing: reads and estimates still work
    assert w3.eth.call({"from": pauper, "to": contract, "data": word(6)}) == b""
    assert 21_000 < w3.eth.estimate_gas({"from": pauper, "to": contract, "data": word(6)}) < 100_000
    with pytest.raises(ContractCustomError) as call_error:
        w3.eth.call({"to": contract, "data": word(0)})
    assert HexBytes(call_error.value.data) == NOPE_42
    with pytest.raises(ContractCustomError) as estimate_error:
        w3.eth.estimate_gas({"from": faucet.address, "to": contract, "data": word(0)})
    assert HexBytes(estimate_error.value.data) == NOPE_42

    # A reverting transaction is mined with status 0 and changes nothing.
    failed = w3.eth.wait_for_transaction_receipt(send(w3, faucet, contract, data=word(0)))
    assert failed["status"] == 0
    assert w3.eth.get_storage_at(contract, 0) == word(5)

    # A rejected raw transaction is a JSON-RPC error, as from a node, not an eth-tester exception.
    stale = faucet.sign_transaction(
        {"type": 2, "chainId": CHAIN_ID, "nonce": 0, "to": contract, "value": 0, "gas": 21_000,
         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    )  # fmt: skip
    with pytest.raises(Web3RPCError, match="nonce too low"):
        w3.eth.send_raw_transaction(stale.raw_transaction)
    pauper_tx = Account.create().sign_transaction(
        {"type": 2, "chainId": CHAIN_ID, "nonce": 0, "to": contract, "value": 0, "gas": 21_000,
         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    )  # fmt: skip
    with pytest.raises(Web3RPCError, match="insufficient funds"):
        w3.eth.send_raw_transaction(pauper_tx.raw_transaction)

    logs = w3.eth.get_logs({"fromBlock": 0, "address": contract, "topics": ["0x" + STORED_TOPIC.hex()]})
    assert [HexBytes(log["data"]) for log in logs] == [word(5)]
    assert w3.eth.get_logs({"fromBlock": 0, "address": contract, "topics": ["0x" + "11" * 32]}) == []
    assert w3.eth.get_logs({"fromBlock": 0, "address": faucet.address}) == []


def test_get_logs_agrees_with_the_receipts(chain: EmbeddedChain) -> None:
    """eth_getLogs (the embedded chain's own, bloom-skipping implementation) returns exactly receipt logs."""
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    first = mined(w3, send(w3, faucet, None, data=init_code()))["contractAddress"]
    second = mined(w3, send(w3, faucet, None, data=init_code()))["contractAddress"]
    receipts = []
    for i in range(1, 16):
        receipts.append(mined(w3, send(w3, faucet, first if i % 3 else second, data=word(i))))
        if i % 4 == 0:
            receipts.append(mined(w3, send(w3, faucet, faucet.address, value=1)))  # a block without logs
    topic = "0x" + STORED_TOPIC.hex()

    def key(log: Any) -> tuple[Any, ...]:
        return (log["blockNumber"], HexBytes(log["transactionHash"]), log["logIndex"], log["address"],
                [HexBytes(t) for t in log["topics"]], HexBytes(log["data"]))  # fmt: skip

    def expected(addresses: set[str] | None, lo: int, hi: int) -> list[Any]:
        return [
            key(log)
            for r in receipts
            for log in r["logs"]
            if (addresses is None or log["address"] in addresses) and lo <= log["blockNumber"] <= hi
        ]

    head = w3.eth.block_number
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"fromBlock": 0}, expected(None, 0, head)),
        ({"fromBlock": "earliest", "toBlock": "latest"}, expected(None, 0, head)),
        ({"fromBlock": 5, "toBlock": 12}, expected(None, 5, 12)),
        ({"fromBlock": 0, "address": first}, expected({first}, 0, head)),
        ({"fromBlock": 0, "address": [first, second]}, expected({first, second}, 0, head)),
        ({"fromBlock": 0, "address": second, "topics": [topic]}, expected({second}, 0, head)),
        ({"fromBlock": 0, "topics": [[topic, "0x" + "22" * 32]]}, expected(None, 0, head)),
        ({"fromBlock": 0, "topics": ["0x" + "22" * 32]}, []),
        ({"fromBlock": 0, "address": faucet.address}, []),
        ({"fromBlock": head, "toBlock": head}, expected(None, head, head)),
    ]
    for flt, want in cases:
        got = [key(log) for log in w3.eth.get_logs(flt)]
        assert got == want, flt
    assert len(cases[0][1]) == 15


def test_requests_from_many_threads_are_serialised(chain: EmbeddedChain) -> None:
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    senders = [Account.create() for _ in range(4)]
    for sender in senders:
        mined(w3, send(w3, faucet, sender.address, value=10**18))
    start_block = w3.eth.block_number
    errors: list[BaseException] = []

    def work(sender: LocalAccount) -> None:
        try:
            for _ in range(5):
                mined(w3, send(w3, sender, faucet.address, value=1))
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert w3.eth.block_number == start_block + 20
    assert all(w3.eth.get_transaction_count(s.address) == 5 for s in senders)


# ------------------------------------------------------------------------------------------------------
# (b) kill -9 right after an acknowledgement
# ------------------------------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from eth_account import Account
    from supply_chain.chain.embedded import open_embedded

    chain = open_embedded(Path(sys.argv[1]))
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    to = sys.argv[2]
    nonce = w3.eth.get_transaction_count(faucet.address)
    print("ready", w3.eth.block_number, flush=True)
    while True:
        base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
        tx = {"type": 2, "chainId": w3.eth.chain_id, "nonce": nonce, "to": to, "value": 1,
              "gas": 21000, "maxFeePerGas": 2 * base_fee + 10**9, "maxPriorityFeePerGas": 10**9}
        tx_hash = w3.eth.send_raw_transaction(faucet.sign_transaction(tx).raw_transaction)
        # the acknowledgement: from here on the caller may tell a user "recorded"
        print("ack", tx_hash.to_0x_hex(), flush=True)
        nonce += 1
    """
)


def _child_env() -> dict[str, str]:
    """The environment for a child Python that must import this checkout's ``supply_chain``."""
    paths = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def _run_writer_and_kill(state_dir: Path, to: str, acks_before_kill: int) -> tuple[int, list[str]]:
    """Run a writer, SIGKILL it right after its n-th acknowledgement; returns (start block, acked hashes)."""
    env = _child_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(state_dir), to],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: list[str] = []
    start_block = -1
    selector = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    try:
        while len(acked) < acks_before_kill:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                pytest.fail(f"writer gave no acknowledgement in time; got {len(acked)}")
            line = proc.stdout.readline()
            if not line:
                proc.wait(timeout=10)
                pytest.fail(f"writer died (exit {proc.returncode}): {proc.stderr.read()}")
            kind, value = line.split()
            if kind == "ready":
                start_block = int(value)
            else:
                acked.append(value)
        proc.send_signal(signal.SIGKILL)  # immediately: the writer is already busy with the next one
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return start_block, acked


@pytest.mark.slow
def test_acknowledged_transactions_survive_sigkill(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    to = Account.create().address
    all_acked: list[str] = []
    last_block = 0
    for round_no, acks in enumerate((6, 9, 4)):
        start_block, acked = _run_writer_and_kill(state_dir, to, acks)
        # The next writer found every block the previous one acknowledged (genesis on the first run).
        assert start_block >= last_block, (
            f"round {round_no}: chain went back from {last_block} to {start_block}"
        )
        all_acked += acked
        last_block = start_block + len(acked)

    reopened = open_embedded(state_dir)  # the killed writer's lock is gone with its process
    try:
        w3 = reopened.w3
        for tx_hash in all_acked:
            receipt = w3.eth.get_transaction_receipt(tx_hash)  # raises TransactionNotFound if lost
            assert receipt["status"] == 1
        assert w3.eth.block_number >= last_block >= len(all_acked)
        # Every acknowledged transfer of 1 wei is in the balance; at most the unacknowledged one in flight
        # when the writer died may have landed too.
        assert len(all_acked) <= w3.eth.get_balance(to) <= len(all_acked) + 3
    finally:
        reopened.close()


def test_a_failed_disk_write_acknowledges_nothing_and_stops_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "chain"
    chain = open_embedded(state_dir)
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    kept = mined(w3, send(w3, faucet, faucet.address, value=1))

    def disk_full() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(chain._store, "commit", disk_full)
    with pytest.raises(ChainUnavailable, match="could not write to disk"):
        send(w3, faucet, faucet.address, value=2)
    # Fail-stop: the in-memory chain is ahead of the disk now, so it answers nothing at all.
    with pytest.raises(ChainUnavailable, match="restart"):
        w3.eth.block_number  # noqa: B018
    assert not w3.is_connected()
    chain.close()

    reopened = open_embedded(state_dir)
    try:
        assert reopened.w3.eth.block_number == kept["blockNumber"]
        assert reopened.w3.eth.get_transaction_count(faucet.address) == 1
    finally:
        reopened.close()


# ------------------------------------------------------------------------------------------------------
# (c) one process per folder
# ------------------------------------------------------------------------------------------------------


def test_second_open_of_the_same_folder_is_refused(chain: EmbeddedChain) -> None:
    with pytest.raises(ChainUnavailable) as same_process:
        open_embedded(chain.state_dir)
    assert str(chain.state_dir) in same_process.value.message
    assert str(os.getpid()) in same_process.value.message

    probe = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from supply_chain.chain.embedded import open_embedded
        from supply_chain.domain.errors import ChainUnavailable
        try:
            open_embedded(Path(sys.argv[1]))
        except ChainUnavailable as exc:
            print(exc.message)
            sys.exit(3)
        """
    )
    env = _child_env()
    result = subprocess.run(
        [sys.executable, "-c", probe, str(chain.state_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 3, result.stderr
    assert str(chain.state_dir) in result.stdout
    assert f"pid {os.getpid()}" in result.stdout

    # The holder still works, and once it lets go the folder opens again.
    assert chain.w3.eth.block_number == 0
    chain.close()
    with pytest.raises(ChainUnavailable, match="closed"):
        chain.w3.eth.block_number  # noqa: B018
    again = open_embedded(chain.state_dir)
    again.close()


def test_a_missing_or_foreign_faucet_key_is_refused(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    open_embedded(state_dir).close()
    key_file = state_dir / "faucet.key"
    original = key_file.read_text()

    key_file.write_text(Account.create().key.to_0x_hex())
    with pytest.raises(ChainUnavailable, match="faucet"):
        open_embedded(state_dir)

    key_file.unlink()
    with pytest.raises(ChainUnavailable, match="missing"):
        open_embedded(state_dir)
    assert not key_file.exists()  # no new key is minted for an existing chain

    key_file.write_text(original)
    open_embedded(state_dir).close()


# ------------------------------------------------------------------------------------------------------
# (d) connect()
# ------------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connect_to_a_closed_port_fails_fast_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(ChainUnavailable) as caught:
        connect(tmp_path, url, timeout=5)
    assert time.monotonic() - started < 3
    assert url in caught.value.message
    assert caught.value.status == 503
    assert not (tmp_path / "chain").exists()  # RPC mode never touches the embedded chain


class _NotANode(http.server.BaseHTTPRequestHandler):
    """A web server on the node's address: either silent (hangs) or answering HTML."""

    silent = False

    def do_POST(self) -> None:  # noqa: N802 -- http.server's naming
        if self.silent:
            time.sleep(3)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>not a node</html>")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("silent", [True, False], ids=["silent", "html"])
def test_connect_to_something_that_is_not_a_node(tmp_path: Path, silent: bool) -> None:
    handler = type("Handler", (_NotANode,), {"silent": silent})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/rpc"
        started = time.monotonic()
        with pytest.raises(ChainUnavailable) as caught:
            connect(tmp_path, url + "?apikey=s3cret", timeout=0.5)
        assert time.monotonic() - started < 2.5  # one timeout, no retry storm
        assert url in caught.value.message
        assert "s3cret" not in caught.value.message  # query strings may carry credentials
        assert ("within 0.5 s" if silent else "JSON-RPC") in caught.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_connect_embedded_and_fund(tmp_path: Path) -> None:
    with connect(tmp_path) as conn:
        assert conn.mode == "embedded" and conn.url is None and conn.faucet_key
        assert conn.faucet_key not in repr(conn)
        newcomer = Account.create().address
        fund(conn, newcomer, 2 * 10**18)
        fund(conn, newcomer, 10**18)
        assert conn.w3.eth.get_balance(newcomer) == 3 * 10**18
    with pytest.raises(ChainUnavailable):
        conn.w3.eth.block_number  # noqa: B018
    with connect(tmp_path) as again:  # same home: same chain
        assert again.w3.eth.get_balance(newcomer) == 3 * 10**18


# ------------------------------------------------------------------------------------------------------
# anvil: the same contract behaves the same over JSON-RPC
# ------------------------------------------------------------------------------------------------------


@pytest.fixture
def anvil_url() -> Iterator[str]:
    binary = shutil.which("anvil") or str(REPO_ROOT / "node_modules" / ".bin" / "anvil")
    if not Path(binary).exists():
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("anvil not installed (npm ci installs it)", pytrace=False)
        pytest.skip("anvil not installed (npm ci)")
    port = _closed_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--host", "127.0.0.1", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("anvil did not start")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.anvil
def test_rpc_mode_against_anvil_matches_embedded(tmp_path: Path, anvil_url: str) -> None:
    conn: ChainConnection = connect(tmp_path, anvil_url, timeout=5)
    try:
        assert conn.mode == "rpc" and conn.url == anvil_url
        sender = Account.create()
        fund(conn, sender.address, 10**18)  # anvil_setBalance
        w3 = conn.w3
        assert w3.eth.get_balance(sender.address) == 10**18
        contract = mined(w3, send(w3, sender, None, data=init_code()))["contractAddress"]
        mined(w3, send(w3, sender, contract, data=word(3)))
        assert w3.eth.get_storage_at(contract, 0) == word(3)
        with pytest.raises(ContractCustomError) as caught:
            w3.eth.call({"to": contract, "data": word(0)})
        assert HexBytes(caught.value.data) == NOPE_42
        assert isinstance(caught.value, ContractLogicError)
        logs = w3.eth.get_logs({"fromBlock": 0, "address": contract, "topics": ["0x" + STORED_TOPIC.hex()]})
        assert [HexBytes(log["data"]) for log in logs] == [word(3)]
    finally:
        conn.close()


# anvil's first development account: public test ether on a throwaway node, used here as "a funded faucet".
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@pytest.mark.anvil
def test_fund_on_a_node_that_is_not_anvil(
    tmp_path: Path, anvil_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The faucet-key and no-funds branches of fund(), on anvil made to look like any other node."""
    import supply_chain.chain.connect as connect_module

    monkeypatch.setattr(
        connect_module, "_client_version", lambda w3: "Geth/v1.14.0-stable/linux-amd64/go1.22"
    )

    monkeypatch.setenv("LOTLINE_FAUCET_KEY", ANVIL_DEV_KEY)
    with connect(tmp_path, anvil_url, timeout=5) as conn:
        assert conn.faucet_key == ANVIL_DEV_KEY and ANVIL_DEV_KEY not in repr(conn)
        funded = Account.create().address
        fund(conn, funded, 10**18)  # a signed transfer from the faucet
        assert conn.w3.eth.get_balance(funded) == 10**18

    monkeypatch.delenv("LOTLINE_FAUCET_KEY")
    with connect(tmp_path, anvil_url, timeout=5) as conn:
        assert conn.faucet_key is None
        fund(conn, funded, 10**17)  # already holds that much: nothing to do
        pauper = Account.create().address
        with pytest.raises(ChainUnavailable, match=f"account {pauper} has no funds.*LOTLINE_FAUCET_KEY"):
            fund(conn, pauper, 10**17)


# ------------------------------------------------------------------------------------------------------
# the log index: a lot's logs without reading every block
# ------------------------------------------------------------------------------------------------------


def _log_index_chain(chain: EmbeddedChain) -> tuple[list[str], list[HexBytes]]:
    """Two logging contracts and a run of blocks: with logs of either contract, without logs (a transfer) and
    empty (mined in bulk); each Stored log carries its value as data."""
    w3 = chain.w3
    faucet = Account.from_key(chain.faucet_key)
    evm = w3.provider.ethereum_tester.backend.chain  # type: ignore[attr-defined]
    contracts = [mined(w3, send(w3, faucet, None, data=init_code()))["contractAddress"] for _ in range(2)]
    txs = []
    for i in range(1, 13):
        txs.append(send(w3, faucet, contracts[i % 2], data=word(i % 5 + 1)))
        if i % 4 == 0:
            mined(w3, send(w3, faucet, faucet.address, value=1))  # a block with a transaction but no log
        for _ in range(i):
            evm.mine_block()  # empty blocks, as a long-lived chain has
    return contracts, txs


def _every_filter(w3: Web3, contracts: list[str]) -> list[dict[str, Any]]:
    head = w3.eth.block_number
    topic = "0x" + STORED_TOPIC.hex()
    return [
        {"fromBlock": 0, "toBlock": head},
        {"fromBlock": 7, "toBlock": head - 20},
        {"fromBlock": 0, "toBlock": head, "address": contracts[0]},
        {"fromBlock": 0, "toBlock": head, "address": contracts},
        {"fromBlock": 0, "toBlock": head, "topics": [topic]},
        {"fromBlock": 0, "toBlock": head, "address": contracts[1], "topics": [[topic, "0x" + "22" * 32]]},
        {"fromBlock": 0, "toBlock": head, "topics": [None]},
        {"fromBlock": 0, "toBlock": head, "topics": ["0x" + "22" * 32]},
        {"fromBlock": 0, "toBlock": head, "address": Account.create().address},
        {"fromBlock": head, "toBlock": head},
    ]


def _stock_logs(chain: EmbeddedChain, flt: dict[str, Any]) -> list[Any]:
    """What eth-tester's own get_logs (every block read, every receipt looked up) answers for ``flt``."""
    from eth_tester import EthereumTester

    tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    return list(
        EthereumTester.get_logs(
            tester, from_block=flt["fromBlock"], to_block=flt["toBlock"], address=flt.get("address"),
            topics=flt.get("topics"),
        )
    )  # fmt: skip


def test_indexed_get_logs_returns_what_eth_testers_own_get_logs_returns_before_and_after_a_restart(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "chain"
    with open_embedded(state_dir) as chain:
        contracts, _txs = _log_index_chain(chain)
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        before = {}
        for n, flt in enumerate(_every_filter(chain.w3, contracts)):
            ours = tester.get_logs(
                from_block=flt["fromBlock"], to_block=flt["toBlock"], address=flt.get("address"),
                topics=flt.get("topics"),
            )  # fmt: skip
            assert list(ours) == _stock_logs(chain, flt), flt
            before[n] = list(ours)
        assert len(before[0]) == 12 and len(before[1]) < 12
    with open_embedded(state_dir) as chain:
        assert chain.w3.provider.ethereum_tester.backend.chain.log_index_head == chain.w3.eth.block_number  # type: ignore[attr-defined]
        tester = chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
        for n, flt in enumerate(_every_filter(chain.w3, contracts)):
            ours = tester.get_logs(
                from_block=flt["fromBlock"], to_block=flt["toBlock"], address=flt.get("address"),
                topics=flt.get("topics"),
            )  # fmt: skip
            assert list(ours) == before[n], flt


def test_a_lots_logs_are_found_without_reading_every_block(
    chain: EmbeddedChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter on an indexed topic reads the blocks that hold it, not every header since block 0."""
    w3 = chain.w3
    contracts, _txs = _log_index_chain(chain)
    evm = w3.provider.ethereum_tester.backend.chain  # type: ignore[attr-defined]
    assert w3.eth.block_number > 90
    read: list[int] = []
    for name in ("get_canonical_block_header_by_number", "get_canonical_block_by_number"):
        real = getattr(evm, name)

        def counting(number: int, real: Any = real) -> Any:
            read.append(number)
            return real(number)

        monkeypatch.setattr(evm, name, counting)
    value_topic = "0x" + word(3).hex()  # no log here has a second topic: the index answers without a block read
    logs = w3.eth.get_logs({"fromBlock": 0, "address": contracts[0]})
    assert [int.from_bytes(bytes(log["data"]), "big") for log in logs] == [i % 5 + 1 for i in range(2, 13, 2)]
    assert len(set(read)) <= len(logs) + 1, sorted(set(read))
    read.clear()
    assert w3.eth.get_logs({"fromBlock": 0, "topics": [None, value_topic]}) == []
    assert len(set(read)) <= 1


def test_a_chain_written_before_the_log_index_is_indexed_when_opened(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    with open_embedded(state_dir) as chain:
        contracts, _txs = _log_index_chain(chain)
        flt = {"fromBlock": 0, "address": contracts[1]}
        want = [dict(log) for log in chain.w3.eth.get_logs(flt)]
    with sqlite3.connect(state_dir / "chain.sqlite3") as db:  # as a chain from before the index would be
        db.execute("DROP TABLE log_blocks")
        db.execute("DELETE FROM meta WHERE name = 'log_index_head'")
    with open_embedded(state_dir) as chain:
        assert chain.w3.provider.ethereum_tester.backend.chain.log_index_head == chain.w3.eth.block_number  # type: ignore[attr-defined]
        assert [dict(log) for log in chain.w3.eth.get_logs(flt)] == want and len(want) == 6
