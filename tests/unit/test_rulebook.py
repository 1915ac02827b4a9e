"""The rulebook is the one place where role sets, allowed statuses and their documentation are written."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from supply_chain.domain import policy
from supply_chain.domain.errors import Conflict, Forbidden, NotFound
from supply_chain.domain.policy import Action, Status, Subject, decide

ROOT = Path(__file__).resolve().parents[2]
ROLE_NAMES = set(policy.ROLES)
STATUS_NAMES = {s.value for s in Status}


def _literal_sets(tree: ast.AST) -> list[tuple[int, set[str]]]:
    """Every tuple, list or set literal whose items are all string constants."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(values) == len(node.elts):
                out.append((node.lineno, set(values)))
    return out


def test_no_role_set_or_status_list_is_written_outside_the_rulebook() -> None:
    offenders = []
    for path in [*ROOT.joinpath("supply_chain").rglob("*.py"), *ROOT.joinpath("app").rglob("*.py")]:
        if path.name in ("policy.py", "demo.py") or "migrations" in path.parts:
            continue  # demo.py assigns roles to the demo's organisations: data, not a rule
        for line, values in _literal_sets(ast.parse(path.read_text(), str(path))):
            if len(values & ROLE_NAMES) >= 2 or len(values & STATUS_NAMES) >= 2 and values <= STATUS_NAMES:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {sorted(values)}")
    assert not offenders, "write these with the rulebook's sets (supply_chain/domain/policy.py):\n" + "\n".join(
        offenders
    )


def test_readme_and_docs_show_the_rulebook_table() -> None:
    table = policy.rules_table()
    for doc in ("README.md", "docs/rules.md"):
        assert table in ROOT.joinpath(doc).read_text(), f"{doc}: paste policy.rules_table() (python -m ...)"


def _subject(**kw: object) -> Subject:
    base = {"actor_roles": frozenset({"processor"}), "status": Status.ACTIVE, "actor": "Packer", "lot": "L1"}
    return Subject(**(base | kw))  # type: ignore[arg-type]


def test_checks_run_roles_then_relation_then_status() -> None:
    stranger = decide(Action.SHIP, _subject(actor_roles=frozenset(), status=Status.RECALLED))
    assert stranger.code == "wrong_role" and stranger.error is Forbidden
    not_mine = decide(Action.SHIP, _subject(status=Status.RECALLED))
    assert not_mine.code == "not_custodian" and not_mine.chain_error == "LotNotCustodian"
    recalled = decide(Action.SHIP, _subject(status=Status.RECALLED, is_custodian=True))
    assert recalled.code == "lot_recalled" and recalled.error is Conflict
    assert decide(Action.SHIP, _subject(is_custodian=True)).allowed


@pytest.mark.parametrize(
    ("action", "kw", "code"),
    [
        (Action.ACCEPT, {"status": Status.ACTIVE}, "not_offered"),
        (Action.ACCEPT, {"status": Status.ACTIVE, "is_custodian": True}, "already_received"),
        (Action.ACCEPT, {"status": Status.IN_TRANSIT, "is_custodian": True}, "not_offered"),  # the sender
        (Action.ACCEPT, {"status": Status.RECALLED, "is_custodian": True}, "not_offered"),  # recalled on its way
        (Action.CANCEL, {"is_custodian": True}, "lot_not_in_transit"),
        (Action.RELEASE, {"actor_roles": frozenset({"inspector"})}, "lot_not_held"),
        (Action.RECORD, {"is_custodian": True, "status": Status.IN_TRANSIT}, "lot_in_transit"),
        (Action.RECALL, {"is_creator": False}, "not_authorized_to_recall"),
        (Action.USE_AS_INPUT, {"is_custodian": True, "status": Status.HELD}, "input_unavailable"),
        (Action.SHIP, {"is_custodian": True, "recall_affected": True}, "lot_recall_affected"),
        (Action.PRINT_LABELS, {"is_creator": True, "status": Status.RECALLED}, "lot_recalled"),
    ],
)
def test_refusals_carry_stable_codes(action: Action, kw: dict[str, object], code: str) -> None:
    assert decide(action, _subject(**kw)).code == code


def test_receiving_twice_says_so() -> None:
    again = decide(Action.ACCEPT, _subject(is_custodian=True))
    assert "already received by you" in again.message
    assert again.error is Conflict and again.chain_error == "NotPendingCustodian"  # the contract's error stays


def test_unknown_lot_is_not_found_and_revoked_creator_cannot_recall() -> None:
    assert decide(Action.RECORD, _subject(status=None)).error is NotFound
    revoked = decide(Action.RECALL, _subject(actor_roles=frozenset(), is_creator=True, status=Status.CLOSED))
    assert revoked.code == "wrong_role"
    assert decide(Action.RECALL, _subject(is_creator=True, status=Status.CLOSED)).allowed


def test_chain_errors_map_to_the_rulebook_codes() -> None:
    from supply_chain.domain.kinds import LotStatus

    assert policy.chain_error_code("LotUnavailable", LotStatus.HELD) == (Conflict, "lot_held")
    assert policy.chain_error_code("NotPendingCustodian") == (Forbidden, "not_offered")
    for rule in policy.RULES.values():
        for status in Status:
            if status is Status.PENDING or status in rule.statuses or not rule.statuses:
                continue
            refusal = policy.status_refusal(rule, status)
            family, code = policy.chain_error_code(
                refusal.chain_error or "", LotStatus[status.name] if refusal.chain_error == "LotUnavailable" else None
            )
            assert (family, code) == (refusal.error, refusal.code), (rule.action, status)


@pytest.mark.parametrize(
    ("kw", "code", "chain_error"),
    [
        ({"status": Status.ACTIVE}, "lot_not_recalled", "LotNotRecalled"),
        ({"status": Status.IN_TRANSIT}, "lot_not_recalled", "LotNotRecalled"),
        ({"status": Status.CLOSED}, "lot_not_recalled", "LotNotRecalled"),
        ({"recall_from_input": True}, "lot_not_recalled", "LotNotRecalled"),
        ({"recall_ended": True}, "recall_already_ended", "RecallAlreadyEnded"),
        ({"actor_roles": frozenset({"retailer"})}, "wrong_role", "AccountLacksRoles"),
        ({"actor_roles": frozenset({"producer"})}, "not_authorized_to_recall", "NotAuthorizedToRecall"),
    ],
)
def test_ending_a_recall_needs_a_recaller_and_a_lot_recalled_directly_and_not_ended(
    kw: dict[str, object], code: str, chain_error: str
) -> None:
    regulator = {"actor_roles": frozenset({"regulator"}), "status": Status.RECALLED}
    verdict = decide(Action.END_RECALL, _subject(**(regulator | kw)))
    assert (verdict.allowed, verdict.code, verdict.chain_error) == (False, code, chain_error)
    assert decide(Action.END_RECALL, _subject(**regulator)).allowed
    creator = {"actor_roles": frozenset({"producer"}), "status": Status.RECALLED, "is_creator": True}
    assert decide(Action.END_RECALL, _subject(**creator)).allowed
    assert policy.chain_error_code("RecallAlreadyEnded") == (Conflict, "recall_already_ended")
