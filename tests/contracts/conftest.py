"""Fixtures for the LotLedger contract tests: one chain per backend per session, a fresh deployment per test.

Every test runs twice, on the embedded chain (eth-tester + py-evm, as the app runs by default) and on anvil
(a real JSON-RPC node, as in development and on consortium networks). Isolation comes from a fresh contract
and fresh keys per test, not from a fresh chain: starting a chain is the slow part.

The eth-tester and anvil default accounts are public keys; they pay for nothing here and never get a role.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import RPCEndpoint

from supply_chain.chain.connect import connect, fund
from supply_chain.chain.devnode import ANVIL_BINARY, start_anvil
from supply_chain.chain.devnode import stop as _stop
from supply_chain.chain.ledger import Ledger, role_id
from supply_chain.domain.errors import LotlineError
from supply_chain.domain.identifiers import gtin_check_digit, lot_id
from supply_chain.domain.kinds import EventKind

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACTOR_BALANCE_WEI = 10 * 10**18
# The app's choice (supply_chain.services.runtime.EMBEDDED_GAS_LIMIT): on the embedded chain one eth_call checks
# for a revert and a fixed gas limit replaces the estimate's binary search; JSON-RPC nodes use the estimate.
EMBEDDED_GAS_LIMIT = 10_000_000

BACKENDS = ["embedded", "anvil"]


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def skip_or_fail(reason: str) -> None:
    """Skip locally when a tool is missing; in CI a missing tool is a broken build, so fail."""
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


# ------------------------------------------------------------------------------------------- chains


@dataclass
class Chain:
    """One running chain, reached through the app's own `connect()`, and a way to give an address gas."""

    name: str
    w3: Web3
    fund: Callable[[str, int], None]
    fixed_gas: int | None

    @contextmanager
    def rewound(self) -> Iterator[None]:
        """On anvil, roll the chain back to where it was when the block ends.

        Anvil mines more slowly as accounts and contracts pile up (measured here: seven role grants took
        0.2 s on a fresh anvil and 1.2 s after 80 test deployments), so a snapshot reverted after each test
        keeps its state small. The embedded chain refuses snapshots by design (a durable ledger never rewinds)
        and showed no such slowdown, so there this does nothing.
        """
        if self.name != "anvil":
            yield
            return
        snapshot = self.w3.manager.request_blocking(RPCEndpoint("evm_snapshot"), [])
        try:
            yield
        finally:
            assert self.w3.manager.request_blocking(RPCEndpoint("evm_revert"), [snapshot]) is True


def _open(home: Path, url: str | None) -> tuple[Chain, Callable[[], None]]:
    conn = connect(home, url, timeout=30.0)
    assert conn.mode == ("rpc" if url else "embedded")
    # embedded: a transfer from the installation's faucet; anvil: anvil_setBalance (no dev account pays)
    chain = Chain(
        name="anvil" if url else "embedded",
        w3=conn.w3,
        fund=lambda address, wei: fund(conn, address, wei),
        fixed_gas=None if url else EMBEDDED_GAS_LIMIT,
    )
    return chain, conn.close




@pytest.fixture(scope="session", params=BACKENDS, ids=BACKENDS)
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """A running chain of each backend, shared by the session (each test deploys its own contract)."""
    home = tmp_path_factory.mktemp(f"{request.param}-home")
    process = None
    url = None
    if request.param == "anvil":
        if not ANVIL_BINARY.is_file():
            skip_or_fail("anvil not installed: run npm ci")
        url, process = start_anvil(home / "anvil.log")
    try:
        opened, close = _open(home, url)
        try:
            yield opened
        finally:
            close()
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------------------------------- actors


@dataclass(frozen=True)
class Actors:
    """Fresh funded accounts, each holding exactly the role its name says (stranger: none)."""

    admin: LocalAccount
    regulator: LocalAccount
    inspector: LocalAccount
    producer: LocalAccount
    producer2: LocalAccount
    processor: LocalAccount
    distributor: LocalAccount
    retailer: LocalAccount
    stranger: LocalAccount


ROLE_OF = {
    "regulator": "regulator",
    "inspector": "inspector",
    "producer": "producer",
    "producer2": "producer",
    "processor": "processor",
    "distributor": "distributor",
    "retailer": "retailer",
}


COMPANY_PREFIX = {"producer": "9506000", "producer2": "9506001", "processor": "9506002"}
"""The GS1 company prefix registered on chain to each lot-creating actor (the digits after the indicator)."""


class LotRef(bytes):
    """A lot id (the 32 bytes the contract keys lots by) that also knows its label."""

    gtin14: str
    lot_code: str

    def __new__(cls, gtin14: str, lot_code: str) -> LotRef:
        ref = super().__new__(cls, lot_id(gtin14, lot_code))
        ref.gtin14, ref.lot_code = gtin14, lot_code
        return ref

    @property
    def label(self) -> tuple[str, str]:
        return self.gtin14, self.lot_code


def gtin_under(prefix: str) -> str:
    """A valid GTIN-14 under a company prefix (indicator 0, item reference 1)."""
    body = "0" + prefix + "1".rjust(12 - len(prefix), "0")
    return body + str(gtin_check_digit(body))


def new_lot_ref(owner: str = "producer") -> LotRef:
    """A fresh label under `owner`'s company prefix (see COMPANY_PREFIX) and its lot id."""
    return LotRef(gtin_under(COMPANY_PREFIX[owner]), "T" + secrets.token_hex(5).upper())


@dataclass
class Deployment:
    """A LotLedger deployed for one test, its actors, and the block it was deployed in."""

    ledger: Ledger
    actors: Actors
    block: int


@pytest.fixture
def deployment(chain: Chain) -> Iterator[Deployment]:
    """Fresh keys for every actor, funded; a fresh LotLedger whose admin is `admin`; each role granted; the
    producers' and the processor's company prefixes registered (COMPANY_PREFIX)."""
    with chain.rewound():
        accounts = {name: Account.create() for name in ("admin", *ROLE_OF, "stranger")}
        for account in accounts.values():
            chain.fund(account.address, ACTOR_BALANCE_WEI)
        admin = accounts["admin"]
        deployed, block = Ledger.deploy(chain.w3, admin, admin.address)
        ledger = Ledger(chain.w3, deployed.address, fixed_gas=chain.fixed_gas)  # as the app builds it
        calls = [("grantRole", [role_id(role), accounts[name].address]) for name, role in ROLE_OF.items()]
        calls += [
            ("registerCompanyPrefix", [prefix, accounts[name].address]) for name, prefix in COMPANY_PREFIX.items()
        ]
        ledger.multicall(admin, calls)
        yield Deployment(ledger=ledger, actors=Actors(**accounts), block=block)


@pytest.fixture
def ledger(deployment: Deployment) -> Ledger:
    """A LotLedger deployed for this test alone."""
    return deployment.ledger


@pytest.fixture
def actors(deployment: Deployment) -> Actors:
    """This test's accounts, one per role (see `Actors`)."""
    return deployment.actors


# ------------------------------------------------------------------------------------------- helpers


@pytest.fixture
def make_lot(ledger: Ledger, actors: Actors) -> Callable[..., bytes]:
    """Create a lot without inputs (harvested by the producer unless told otherwise); return its id."""

    owners = {account.address: name for name, account in vars(actors).items() if name in COMPANY_PREFIX}

    def make(creator: LocalAccount | None = None, kind: EventKind = EventKind.HARVESTING) -> LotRef:
        creator = creator or actors.producer
        ref = new_lot_ref(owners[creator.address])
        ledger.create_lot(creator, *ref.label, [], kind, secrets.token_bytes(32))
        return ref

    return make


@pytest.fixture
def refused(ledger: Ledger) -> Callable[..., LotlineError]:
    """`refused(call, "LotNotCustodian", Forbidden, lots=(lot_id,))` asserts that `call()` is refused with
    that contract error as that project exception, and that nothing was written: no block was mined and
    every lot in `lots` (state and outputs) is exactly as before. Returns the exception for more checks."""

    def check(
        call: Callable[[], Any], error: str, exc_class: type[LotlineError], *, lots: Iterable[bytes] = ()
    ) -> LotlineError:
        before_block = ledger.block_number()
        before = {lot: (ledger.get_lot(lot), ledger.lot_outputs(lot)) for lot in lots}
        with pytest.raises(LotlineError) as info:
            call()
        raised = info.value
        assert type(raised) is exc_class, f"expected {exc_class.__name__}, got {type(raised).__name__}: {raised}"
        assert getattr(raised, "chain_error", None) == error, str(raised)
        assert ledger.block_number() == before_block, "a refused call mined a block"
        for lot, (state, outputs) in before.items():
            assert ledger.get_lot(lot) == state
            assert ledger.lot_outputs(lot) == outputs
        return raised

    return check
