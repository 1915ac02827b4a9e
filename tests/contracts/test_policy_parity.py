"""The rulebook and the contract agree: every action x lot status x role x relation to the lot.

For each lot status (and an unknown lot) a lot is built on the real contract on the embedded chain with a
creator, a custodian and (in transit) a pending custodian. Every actor then asks the contract to take every
action (`Ledger.prepare`: the call is run against the current state, nothing is sent) and the rulebook
(`policy.decide`) is asked the same question. They must agree: allowed by the rulebook exactly when the
contract would mine it, and refused with the contract's custom error that the rulebook names. Each allowed
case is then really mined on a fresh copy of the lot, so "allowed" means mined, not only simulated.

A rule added to the contract and not to the rulebook (or the other way round) fails here.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from supply_chain.chain.ledger import Ledger, role_id
from supply_chain.domain import policy
from supply_chain.domain.errors import LotlineError
from supply_chain.domain.kinds import EventKind, InspectionOutcome
from supply_chain.domain.policy import Action, Status
from tests.contracts.conftest import ACTOR_BALANCE_WEI, Chain, LotRef, _open, gtin_under

# Every actor, with the roles it holds on chain. "revoked" created and holds lots, then lost its roles.
ACTOR_ROLES: dict[str, tuple[str, ...]] = {
    "regulator": ("regulator",),
    "inspector": ("inspector",),
    "producer": ("producer",),  # the creator of every lot below
    "producer2": ("producer",),
    "processor": ("processor",),  # the custodian (after receiving from the producer)
    "distributor": ("distributor",),  # the pending custodian while in transit
    "retailer": ("retailer",),
    "stranger": (),
    "revoked": ("producer",),  # revoked after making and keeping the lot, when that lot keeper is "revoked"
}
PREFIXES = {name: f"95{number:05d}" for number, name in enumerate(ACTOR_ROLES, start=10)}
STATUSES: list[Status | None] = [None, Status.ACTIVE, Status.IN_TRANSIT, Status.HELD, Status.RECALLED, Status.CLOSED]
CHAIN_ACTIONS = [a for a in Action if policy.RULES[a].function is not None]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """The embedded chain (the app's default); the parity is a property of the contract, not of the node."""
    home = tmp_path_factory.mktemp("parity-home")
    chain, close = _open(home, None)
    try:
        yield chain
    finally:
        close()
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class World:
    ledger: Ledger
    admin: LocalAccount
    accounts: dict[str, LocalAccount]
    names: dict[str, str] = field(default_factory=dict)  # address -> actor name

    def ref(self, owner: str) -> LotRef:
        return LotRef(gtin_under(PREFIXES[owner]), "P" + secrets.token_hex(5).upper())


@pytest.fixture(scope="module")
def world(embedded: Chain) -> World:
    accounts = {name: Account.create() for name in ("admin", *ACTOR_ROLES)}
    for account in accounts.values():
        embedded.fund(account.address, ACTOR_BALANCE_WEI)
    admin = accounts.pop("admin")
    deployed, _ = Ledger.deploy(embedded.w3, admin, admin.address)
    ledger = Ledger(embedded.w3, deployed.address, fixed_gas=embedded.fixed_gas)
    calls: list[tuple[str, list[Any]]] = []
    for name, roles in ACTOR_ROLES.items():
        calls += [("grantRole", [role_id(r), accounts[name].address]) for r in roles]
        calls.append(("registerCompanyPrefix", [PREFIXES[name], accounts[name].address]))
    ledger.multicall(admin, calls)
    return World(ledger, admin, accounts, {a.address: n for n, a in accounts.items()})


@dataclass
class Lot:
    """A lot on chain and who is what to it."""

    ref: LotRef
    status: Status | None
    creator: str
    custodian: str
    pending: str | None = None
    recall_from_input: bool = False
    recall_ended: bool = False


def build(world: World, status: Status | None, *, keeper: str = "processor") -> Lot:
    """A lot made by `producer` (or `revoked`), handed to `keeper` (unless the creator keeps it), in `status`."""
    ledger, acc = world.ledger, world.accounts
    creator = "revoked" if keeper == "revoked" else "producer"
    ref = world.ref(creator)
    if keeper == "revoked" and not ledger.has_role("producer", acc["revoked"].address):
        ledger.grant_role(world.admin, "producer", acc["revoked"].address)
    if status is None:
        return Lot(ref, None, creator, creator)
    ledger.create_lot(acc[creator], *ref.label, [], EventKind.HARVESTING, secrets.token_bytes(32))
    if keeper not in (creator, "revoked"):
        ledger.offer_custody(acc[creator], ref, acc[keeper].address, secrets.token_bytes(32))
        ledger.accept_custody(acc[keeper], ref, secrets.token_bytes(32))
    lot = Lot(ref, status, creator, keeper)
    if status is Status.IN_TRANSIT:
        ledger.offer_custody(acc[keeper], ref, acc["distributor"].address, secrets.token_bytes(32))
        lot.pending = "distributor"
    elif status is Status.HELD:
        ledger.hold(acc["inspector"], ref, secrets.token_bytes(32))
    elif status is Status.RECALLED:
        ledger.recall(acc["regulator"], ref, secrets.token_bytes(32))
    elif status is Status.CLOSED:
        ledger.close(acc[keeper], ref, secrets.token_bytes(32))
    if keeper == "revoked":
        ledger.revoke_role(world.admin, "producer", acc["revoked"].address)
    return lot


def call_for(world: World, action: Action, actor: str, lot: Lot) -> tuple[str, list[Any]]:
    """The contract call that takes `action` on `lot` as `actor`."""
    h = secrets.token_bytes(32)
    match action:
        case Action.CREATE:
            return "createLot", Ledger.args_create_lot(*world.ref(actor).label, [], EventKind.HARVESTING, h)
        case Action.USE_AS_INPUT:
            return "createLot", Ledger.args_create_lot(*world.ref(actor).label, [lot.ref], EventKind.TRANSFORMATION, h)
        case Action.RECORD:
            return "recordEvent", [lot.ref, int(EventKind.OBSERVATION), h]
        case Action.SHIP:
            to = world.accounts["retailer" if actor != "retailer" else "distributor"].address
            return "offerCustody", [lot.ref, to, h]
        case Action.INSPECT:
            return "inspect", [lot.ref, int(InspectionOutcome.PASS), h]
        case Action.ANCHOR:
            return "anchorReadings", [lot.ref, secrets.token_bytes(32), 3, h]
    function = policy.RULES[action].function
    assert function is not None
    return function, [lot.ref, h]


def subject(world: World, actor: str, lot: Lot) -> policy.Subject:
    address = world.accounts[actor].address
    return policy.Subject(
        actor_roles=frozenset(r for r in policy.GRANTABLE_ROLES if world.ledger.has_role(r, address)),
        status=lot.status,
        is_custodian=actor == lot.custodian,
        is_pending_custodian=actor == lot.pending,
        is_creator=actor == lot.creator,
        recall_from_input=lot.recall_from_input,
        recall_ended=lot.recall_ended,
    )


def contract_verdict(world: World, action: Action, actor: str, lot: Lot) -> str | None:
    """None when the contract would mine the call; else the name of its custom error."""
    function, args = call_for(world, action, actor, lot)
    try:
        prepared = world.ledger.prepare(world.accounts[actor], function, args)
    except LotlineError as exc:
        return getattr(exc, "chain_error", None) or f"undecoded: {exc}"
    world.ledger.abandon(prepared)
    return None


def cases() -> Iterator[tuple[Action, Status | None, str]]:
    for action in CHAIN_ACTIONS:
        for status in STATUSES:
            if action is Action.CREATE and status is not None:
                continue  # creation is about a lot that does not exist yet
            if action is Action.USE_AS_INPUT and status is None:
                continue  # an unknown input: the creator checks come first on chain (role, GTIN owner)
            for keeper in ("processor", "producer", "revoked"):
                yield action, status, keeper


@pytest.mark.parametrize(("action", "status", "keeper"), list(cases()), ids=lambda v: str(v))
def test_rulebook_and_contract_agree_for_every_actor(world: World, action: Action, status: Status | None, keeper: str):
    lot = build(world, status, keeper=keeper)
    disagreements, allowed = [], []
    for actor in ACTOR_ROLES:
        verdict = policy.decide(action, subject(world, actor, lot))
        chain = contract_verdict(world, action, actor, lot)
        expected = None if verdict.allowed else verdict.chain_error
        if chain != expected:
            disagreements.append(f"{actor}: rulebook {expected or 'allows'}, contract {chain or 'allows'}")
        elif verdict.allowed:
            allowed.append(actor)
    assert not disagreements, f"{action.value} on a {status} lot kept by {keeper}:\n" + "\n".join(disagreements)
    # Allowed means mined: each allowed actor really does it, on a fresh copy of the lot.
    for actor in allowed:
        fresh = build(world, status, keeper=keeper)
        function, args = call_for(world, action, actor, fresh)
        result = world.ledger.transact(world.accounts[actor], function, args)
        assert result.success and result.recorded(), f"{actor} {action.value}: allowed but not mined"


def test_every_chain_action_is_covered_and_every_refusal_is_reached() -> None:
    """The matrix above reaches each action's refusals; an action with no contract function is app-only."""
    assert {policy.RULES[a].function for a in CHAIN_ACTIONS} >= {
        "createLot", "recordEvent", "offerCustody", "acceptCustody", "rejectCustody", "cancelCustodyOffer",
        "inspect", "hold", "release", "recall", "endRecall", "close", "anchorReadings",
    }  # fmt: skip
    assert [a for a in Action if policy.RULES[a].function is None] == [Action.PRINT_LABELS]


def recalled_lot(world: World, how: str) -> Lot:
    """A recalled lot (made by `producer`, kept by `processor`) whose recall is ended (`ended`) or reached it from
    the input it was made from (`from_input`): the two refusals of END_RECALL that the lot's status alone does
    not tell."""
    ledger, acc = world.ledger, world.accounts
    if how == "ended":
        lot = build(world, Status.RECALLED)
        ledger.end_recall(acc["regulator"], lot.ref, secrets.token_bytes(32))
        lot.recall_ended = True
        return lot
    source = build(world, Status.ACTIVE, keeper="producer")
    ref = world.ref("producer")
    ledger.create_lot(acc["producer"], *ref.label, [source.ref], EventKind.TRANSFORMATION, secrets.token_bytes(32))
    ledger.offer_custody(acc["producer"], ref, acc["processor"].address, secrets.token_bytes(32))
    ledger.accept_custody(acc["processor"], ref, secrets.token_bytes(32))
    ledger.recall(acc["regulator"], source.ref, secrets.token_bytes(32))
    ledger.recall_derived(acc["regulator"], source.ref, [ref], [secrets.token_bytes(32)])
    return Lot(ref, Status.RECALLED, "producer", "processor", recall_from_input=True)


@pytest.mark.parametrize("how", ["ended", "from_input"])
def test_rulebook_and_contract_agree_on_ending_a_recall_that_cannot_be_ended(world: World, how: str):
    lot = recalled_lot(world, how)
    disagreements = []
    for actor in ACTOR_ROLES:
        verdict = policy.decide(Action.END_RECALL, subject(world, actor, lot))
        chain = contract_verdict(world, Action.END_RECALL, actor, lot)
        expected = None if verdict.allowed else verdict.chain_error
        if chain != expected:
            disagreements.append(f"{actor}: rulebook {expected or 'allows'}, contract {chain or 'allows'}")
    assert not disagreements, f"end_recall on a lot whose recall is {how}:\n" + "\n".join(disagreements)
    wanted = "RecallAlreadyEnded" if how == "ended" else "LotNotRecalled"
    assert policy.decide(Action.END_RECALL, subject(world, "regulator", lot)).chain_error == wanted
