"""Connecting to the chain: the durable embedded chain by default, or any Ethereum node over JSON-RPC.

Both modes hand back a plain ``Web3`` whose failures look the same: an unreachable or silent node raises
``ChainUnavailable`` naming the URL (never a raw ``requests`` exception), a revert raises web3's
``ContractLogicError``/``ContractCustomError`` carrying the revert data, and a rejected raw transaction
raises ``Web3RPCError``. Transactions are always signed locally and sent raw, so nodes need hold no keys.

``connect`` does not read ``LOTLINE_CHAIN_URL`` itself (the settings layer does and passes it in); it reads
``LOTLINE_FAUCET_KEY``, the key of a funded account used to give new organisation accounts gas on a node
that is neither the embedded chain nor anvil.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import requests
from eth_account import Account
from eth_utils import is_address, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import TimeExhausted, Web3Exception, Web3RPCError
from web3.providers.rpc.utils import ExceptionRetryConfiguration
from web3.types import RPCEndpoint, RPCResponse, TxParams

from supply_chain.chain.embedded import open_embedded, read_faucet_key
from supply_chain.domain.errors import ChainUnavailable, InvalidInput

__all__ = ["ChainConnection", "connect", "fund"]

FAUCET_KEY_ENV = "LOTLINE_FAUCET_KEY"
#: How long fund() waits for its transfer to be mined (QBFT/PoA blocks come every few seconds).
FUND_RECEIPT_TIMEOUT = 60.0
#: A plain value transfer to an externally owned account costs exactly this much gas.
TRANSFER_GAS = 21_000
#: Tip used when a node cannot suggest one (1 gwei, what geth and anvil suggest on an idle chain).
FALLBACK_PRIORITY_FEE = 10**9


@dataclass
class ChainConnection:
    """An open connection to the chain, whichever mode. Close it to release the embedded chain's folder."""

    w3: Web3
    mode: str  # "embedded" or "rpc"
    url: str | None
    # Never shown in reprs or logs: on an RPC node it may be a key holding real value.
    faucet_key: str | None = field(repr=False)
    timeout: float = 10.0
    _close: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    # One faucet transfer at a time, so two onboardings never pick the same faucet nonce.
    _fund_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def close(self) -> None:
        """Release what the connection holds (the embedded chain's files and lock). Idempotent."""
        closer, self._close = self._close, None
        if closer is not None:
            closer()

    def __enter__(self) -> ChainConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(home: Path, chain_url: str | None = None, timeout: float = 10.0) -> ChainConnection:
    """Connect to the chain: embedded under ``home/chain`` when ``chain_url`` is empty, else over JSON-RPC.

    Raises ``ChainUnavailable`` when the node cannot be reached or does not answer within ``timeout``
    seconds (and when the embedded chain is held by another process), ``InvalidInput`` for a URL or faucet
    key that cannot be right.
    """
    if not chain_url and _held_by is not None:
        return _connect_to_holder(Path(home) / "chain", _held_by, timeout)
    if not chain_url:
        chain = open_embedded(Path(home) / "chain")
        return ChainConnection(
            w3=chain.w3,
            mode="embedded",
            url=None,
            faucet_key=chain.faucet_key,
            timeout=timeout,
            _close=chain.close,
        )

    url = _validate_url(chain_url)
    faucet_key = _faucet_key_from_env()
    provider = GuardedHTTPProvider(url, timeout=timeout)
    w3 = Web3(provider)
    try:
        w3.eth.chain_id  # noqa: B018 -- the probe: does something that speaks JSON-RPC answer?
    except ChainUnavailable:
        raise
    except (Web3Exception, ValueError) as exc:
        raise ChainUnavailable(
            f"the chain node at {provider.display_url} did not answer eth_chainId: {exc}"
        ) from exc
    return ChainConnection(w3=w3, mode="rpc", url=url, faucet_key=faucet_key, timeout=timeout)


# ------------------------------------------------------------------ the embedded chain held by another process


@dataclass(frozen=True)
class ChainHolderAddress:
    """Where the process holding this server's embedded chain answers (``chain.holder``), and its secret."""

    url: str
    secret: str = field(repr=False)


_held_by: ChainHolderAddress | None = None

#: How long a request to the holder may take: a big batch is mined while the caller waits (the holder itself
#: gone answers at once: connection refused).
HOLDER_TIMEOUT = 120.0


def use_chain_holder(address: ChainHolderAddress | None) -> None:
    """From now on, ``connect`` without a URL reaches the embedded chain through the process at ``address``
    instead of opening it (a worker of ``lotline serve --workers N`` other than the holder); None: open it."""
    global _held_by
    _held_by = address


def _connect_to_holder(state_dir: Path, address: ChainHolderAddress, timeout: float) -> ChainConnection:
    provider = GuardedHTTPProvider(address.url, timeout=max(timeout, HOLDER_TIMEOUT))
    provider.display_url = "the server process holding the embedded chain"
    provider._request_kwargs["headers"] = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {address.secret}",
    }
    w3 = Web3(provider)
    try:
        w3.eth.chain_id  # noqa: B018 -- is the holder up?
    except ChainUnavailable:
        raise
    except (Web3Exception, ValueError) as exc:
        raise ChainUnavailable(f"the server process holding the embedded chain did not answer: {exc}") from exc
    # The faucet's key is in the chain's folder (this server's own instance folder), written by the holder.
    return ChainConnection(
        w3=w3, mode="embedded", url=None, faucet_key=read_faucet_key(state_dir), timeout=provider.timeout
    )


class GuardedHTTPProvider(HTTPProvider):
    """``HTTPProvider`` whose transport failures surface as ``ChainUnavailable`` naming the node.

    Retries are limited to connection errors, three quick tries: web3's default also retries timeouts
    five times with backoff, which turns one silent node into a minute-long hang of a web request.
    """

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(
            url,
            request_kwargs={"timeout": timeout},
            exception_retry_configuration=ExceptionRetryConfiguration(
                errors=(requests.ConnectionError,), retries=3, backoff_factor=0.1
            ),
        )
        self.timeout = timeout
        self.display_url = display_url(url)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except Exception as exc:
            translated = self._translate(exc, method)
            if translated is None:
                raise
            raise translated from exc

    def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> Any:
        try:
            return super().make_batch_request(batch_requests)
        except Exception as exc:
            translated = self._translate(exc, "a batch request")
            if translated is None:
                raise
            raise translated from exc

    def _translate(self, exc: Exception, method: str) -> ChainUnavailable | None:
        """The ChainUnavailable a transport failure stands for; None for anything else (left as it is)."""
        where = self.display_url if " " in self.display_url else f"the chain node at {self.display_url}"
        if isinstance(exc, requests.Timeout):
            return ChainUnavailable(f"{where} did not answer {method} within {self.timeout:g} s")
        if isinstance(exc, requests.HTTPError):
            status = exc.response.status_code if exc.response is not None else "?"
            return ChainUnavailable(f"{where} refused {method} (HTTP {status})")
        if isinstance(exc, requests.RequestException):
            return ChainUnavailable(f"{where} is unreachable ({_short_reason(exc)})")
        return None

    def decode_rpc_response(self, raw_response: bytes) -> RPCResponse:  # type: ignore[override]
        try:
            return super().decode_rpc_response(raw_response)
        except ValueError as exc:  # not JSON: a proxy's error page, a web server on the wrong port, ...
            raise ChainUnavailable(
                f"the chain node at {self.display_url} did not answer in JSON-RPC"
            ) from exc


def fund(conn: ChainConnection, address: str, wei: int) -> None:
    """Give ``address`` ``wei`` more for gas, by whatever means the chain offers.

    * embedded: a transfer from the genesis faucet;
    * anvil: ``anvil_setBalance`` to the current balance plus ``wei``;
    * a node with ``LOTLINE_FAUCET_KEY`` set: a transfer from that account;
    * a node whose gas price is 0 (a free-gas Besu/QBFT network): nothing is needed;
    * otherwise, if the account already holds ``wei`` (funded by its operator), nothing; else
      ``ChainUnavailable`` telling the operator what to set.

    Returns once the funds are on chain (the transfer is mined), so the caller can transact right away.
    """
    if not isinstance(wei, int) or wei < 0:
        raise InvalidInput(
            f"amount to fund must be a non-negative whole number of wei, got {wei!r}", field="wei"
        )
    if not is_address(address):
        raise InvalidInput(f"{address!r} is not an Ethereum address", field="address")
    address = to_checksum_address(address)
    if wei == 0:
        return
    w3 = conn.w3

    if conn.mode == "embedded":
        _transfer(conn, cast(str, conn.faucet_key), address, wei)
        return
    if "anvil" in _client_version(w3).lower():
        with conn._fund_lock:
            balance = w3.eth.get_balance(address)
            try:
                w3.manager.request_blocking(RPCEndpoint("anvil_setBalance"), [address, hex(balance + wei)])
            except Web3RPCError as exc:
                raise ChainUnavailable(f"anvil at {conn.url} refused anvil_setBalance: {exc}") from exc
        return
    if conn.faucet_key:
        _transfer(conn, conn.faucet_key, address, wei)
        return
    if w3.eth.gas_price == 0:
        return
    if w3.eth.get_balance(address) >= wei:
        return
    raise ChainUnavailable(
        f"account {address} has no funds for gas on the chain node at {display_url(conn.url or '')}; "
        f"set {FAUCET_KEY_ENV} to the private key of a funded account, or fund {address} yourself"
    )


# --------------------------------------------------------------------------------------------------------


def _transfer(conn: ChainConnection, key: str, to: str, wei: int) -> None:
    """Send ``wei`` from ``key``'s account to ``to`` (EIP-1559 where the chain has a base fee) and wait."""
    w3 = conn.w3
    sender = Account.from_key(key)
    with conn._fund_lock:
        tx_hash = None
        for attempt in range(3):
            tx: dict[str, Any] = {
                "chainId": w3.eth.chain_id,
                "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
                "to": to,
                "value": wei,
                "gas": TRANSFER_GAS,
                **_fee_fields(w3),
            }
            signed = sender.sign_transaction(cast(TxParams, tx))
            try:
                tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
                break
            except Web3RPCError as exc:
                # Another process using the same faucet may have taken the nonce: read it again.
                if "nonce" in str(exc).lower() and attempt < 2:
                    continue
                raise ChainUnavailable(
                    f"funding {to} from the faucet {sender.address} failed: {exc}"
                ) from exc
        assert tx_hash is not None
        try:
            receipt = w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=FUND_RECEIPT_TIMEOUT, poll_latency=0.2
            )
        except TimeExhausted as exc:
            raise ChainUnavailable(
                f"funding {to}: transaction {tx_hash.to_0x_hex()} was not mined "
                f"within {FUND_RECEIPT_TIMEOUT:g} s"
            ) from exc
        if receipt["status"] != 1:
            raise ChainUnavailable(f"funding {to}: transaction {tx_hash.to_0x_hex()} failed on chain")


def _fee_fields(w3: Web3) -> dict[str, int]:
    """Fee fields for a transaction that gets mined promptly: EIP-1559 when the chain has a base fee."""
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:  # pre-London chain
        return {"gasPrice": w3.eth.gas_price}
    try:
        tip = int(w3.eth.max_priority_fee)
    except (Web3Exception, ValueError):
        tip = FALLBACK_PRIORITY_FEE
    return {"type": 2, "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * int(base_fee) + tip}


def _client_version(w3: Web3) -> str:
    try:
        return str(w3.client_version)
    except (Web3Exception, ValueError):
        return ""


def _faucet_key_from_env() -> str | None:
    key = os.environ.get(FAUCET_KEY_ENV, "").strip()
    if not key:
        return None
    try:
        Account.from_key(key)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{FAUCET_KEY_ENV} is not a valid private key", field=FAUCET_KEY_ENV) from exc
    return key


def _validate_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"chain URL must be http:// or https:// with a host, got {display_url(url)!r}",
            field="LOTLINE_CHAIN_URL",
        )
    return url.strip()


def display_url(url: str) -> str:
    """The URL without user:password and query string, which may carry credentials (API keys, tokens)."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _short_reason(exc: requests.RequestException) -> str:
    """The innermost cause of a requests failure ("Connection refused"), not urllib3's wall of text."""
    cause: BaseException = exc
    while cause.__context__ is not None and cause.__context__ is not cause:
        cause = cause.__context__
    text = str(cause)
    if "Connection refused" in text or isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text if len(text) <= 200 else text[:197] + "..."
