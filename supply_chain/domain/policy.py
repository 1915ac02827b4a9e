"""The rulebook: who may do what to a lot, in which status — written once, read by every layer.

``RULES`` holds one ``Rule`` per action. Each rule names the roles that may act (``grants``: a role set and
the actor's relation to the lot), the lot statuses in which the action is allowed, and the contract function
that enforces the same rule on chain. ``decide`` evaluates a rule for one actor and one lot and answers with a
``Verdict``: allowed, or the refusal with its stable error code, the contract error that matches it, the HTTP
family (Forbidden / Conflict / ...) and a message.

The order of the checks is part of the rule and the same in the contract: **roles, then the actor's relation
to the lot (custodian, pending custodian, creator), then the lot's status**. So a refusal names the same
reason whichever path (web form, API, EPCIS capture, CLI, or the contract itself) meets it first;
``tests/contracts/test_policy_parity.py`` runs every action x status x role x relation against the real
contract and fails when the two disagree.

Facts about a record (quantities, places, times, product-bound fields, plausibility limits) are the other half
of the rulebook: ``supply_chain/domain/invariants.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .errors import Conflict, Forbidden, InvalidInput, LotlineError, NotFound
from .kinds import LotStatus


class Status(StrEnum):
    """A lot's status as every layer names it: the contract's statuses in lower case, plus ``pending`` (its
    creation is stored but not mined yet). Models, indexer, services, API and pages all use these values."""

    PENDING = "pending"
    ACTIVE = "active"
    IN_TRANSIT = "in_transit"
    HELD = "held"
    RECALLED = "recalled"
    CLOSED = "closed"

    @classmethod
    def of_chain(cls, status: LotStatus) -> Status | None:
        """The status a contract status stands for (None for a lot the chain does not know)."""
        return None if status is LotStatus.NONE else cls(status.name.lower())

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class Role(StrEnum):
    """Organisation roles; on chain each is an AccessControl role (``admin`` is DEFAULT_ADMIN_ROLE)."""

    ADMIN = "admin"
    REGULATOR = "regulator"
    INSPECTOR = "inspector"
    PRODUCER = "producer"
    PROCESSOR = "processor"
    DISTRIBUTOR = "distributor"
    RETAILER = "retailer"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)
GRANTABLE_ROLES: tuple[str, ...] = tuple(r.value for r in Role if r is not Role.ADMIN)

# The role sets. Everything that asks "may this organisation ..." reads one of these.
CREATOR_ROLES: frozenset[str] = frozenset({Role.PRODUCER, Role.PROCESSOR})
"""May create lots (harvest, pack, land, transform) — and recall the lots they created."""
HANDLER_ROLES: frozenset[str] = frozenset({Role.PRODUCER, Role.PROCESSOR, Role.DISTRIBUTOR, Role.RETAILER})
"""May hold lots and record on them."""
RECEIVING_ROLES: frozenset[str] = frozenset({Role.PROCESSOR, Role.DISTRIBUTOR, Role.RETAILER})
"""May be offered a lot (the recipient of a shipment)."""
OVERSIGHT_ROLES: frozenset[str] = frozenset({Role.INSPECTOR, Role.REGULATOR})
"""See every lot; may hold and recall any lot."""
INSPECTOR_ROLES: frozenset[str] = frozenset({Role.INSPECTOR})
ONBOARDING_ROLES: frozenset[str] = frozenset({Role.REGULATOR, Role.ADMIN})
"""May onboard, change roles of, suspend and reinstate organisations."""
TRACE_ROLES: frozenset[str] = frozenset(r.value for r in Role if r is not Role.ADMIN)
"""May ask for a trace (every member of the network)."""
SUPPLY_STAGES: tuple[str, ...] = tuple(
    r.value for r in (Role.PRODUCER, Role.PROCESSOR, Role.DISTRIBUTOR, Role.RETAILER)
)
"""The stages of the chain, farm to shop, in order. A site's kind on the supervision map is its organisation's
first role in this order (an organisation holding none of them is "other": a lab, the authority)."""
SUPERVISION_ROLES: frozenset[str] = frozenset({Role.REGULATOR})
"""See the supervision map (every site, shipment, hold, recall, failed inspection and excursion at once) and
export a whole trace (trace CSV, FSMA 204 spreadsheet of every lot reached)."""

OTHER_STAGE = "other"


def stage_of(roles: Iterable[str]) -> str:
    """The supply stage of an organisation with these roles (``SUPPLY_STAGES``), else ``OTHER_STAGE``."""
    held = set(roles)
    return next((stage for stage in SUPPLY_STAGES if stage in held), OTHER_STAGE)


COLD_CHAIN_RANGE_C: tuple[Decimal, Decimal] = (Decimal(0), Decimal(5))
"""Cold-chain readings outside this range (degrees Celsius, bounds allowed) are an excursion on the
supervision map: fresh-cut leafy greens are kept at 5 °C (41 °F) or colder and not frozen."""


class Party(StrEnum):
    """What the actor must be to the lot."""

    ANYONE = "anyone"
    CUSTODIAN = "custodian"
    PENDING_CUSTODIAN = "pending_custodian"
    CREATOR = "creator"


class Action(StrEnum):
    """Everything that can be done to a lot."""

    CREATE = "create"
    USE_AS_INPUT = "use_as_input"
    RECORD = "record"
    SHIP = "ship"
    ACCEPT = "accept"
    REJECT = "reject"
    CANCEL = "cancel"
    INSPECT = "inspect"
    HOLD = "hold"
    RELEASE = "release"
    RECALL = "recall"
    END_RECALL = "end_recall"
    CLOSE = "close"
    ANCHOR = "anchor"
    PRINT_LABELS = "print_labels"


@dataclass(frozen=True)
class Grant:
    """One way to be allowed: hold one of ``roles`` and be ``party`` to the lot."""

    roles: frozenset[str]
    party: Party = Party.ANYONE


@dataclass(frozen=True)
class Rule:
    """One action's rule. ``statuses`` empty means the lot does not exist yet (creation)."""

    action: Action
    verb: str  # for messages: "cannot <verb> lot X"
    grants: tuple[Grant, ...]
    statuses: frozenset[Status]
    function: str | None  # the contract function that enforces it; None: enforced by the app alone
    refuse_recall_affected: bool = False  # also refused when an ancestor is recalled (reach not yet on chain)
    description: str = ""

    @property
    def roles(self) -> frozenset[str]:
        """Every role that may take this action through some grant."""
        return frozenset().union(*(g.roles for g in self.grants))


_ALL_LIVE = frozenset({Status.ACTIVE, Status.IN_TRANSIT, Status.HELD, Status.CLOSED})
_S = Status


def _rule(
    action: Action,
    verb: str,
    grants: Iterable[Grant],
    statuses: Iterable[Status],
    function: str | None,
    description: str,
    refuse_recall_affected: bool = False,
) -> Rule:
    return Rule(action, verb, tuple(grants), frozenset(statuses), function, refuse_recall_affected, description)


RULES: dict[Action, Rule] = {
    rule.action: rule
    for rule in (
        _rule(
            Action.CREATE,
            "create",
            [Grant(CREATOR_ROLES)],
            [],
            "createLot",
            "start a lot (harvest, initial packing, first land-based receiving) under a GTIN of one's own "
            "company prefix",
        ),
        _rule(
            Action.USE_AS_INPUT,
            "use",
            [Grant(CREATOR_ROLES, Party.CUSTODIAN)],
            [_S.ACTIVE],
            "createLot",
            "make a new lot from lots one holds (transformation)",
            refuse_recall_affected=True,
        ),
        _rule(
            Action.RECORD,
            "record events on",
            [Grant(HANDLER_ROLES, Party.CUSTODIAN)],
            [_S.ACTIVE, _S.HELD],
            "recordEvent",
            "cooling, packing, observations on a lot one holds; a hold stops movement, not record keeping",
        ),
        _rule(
            Action.SHIP,
            "ship",
            [Grant(HANDLER_ROLES, Party.CUSTODIAN)],
            [_S.ACTIVE],
            "offerCustody",
            "offer a lot one holds to a processor, distributor or retailer (the shipping event)",
            refuse_recall_affected=True,
        ),
        _rule(
            Action.ACCEPT,
            "accept",
            [Grant(HANDLER_ROLES, Party.PENDING_CUSTODIAN)],
            [_S.IN_TRANSIT],
            "acceptCustody",
            "receive a lot offered to oneself (the receiving event)",
            refuse_recall_affected=True,
        ),
        _rule(
            Action.REJECT,
            "refuse",
            [Grant(HANDLER_ROLES, Party.PENDING_CUSTODIAN)],
            [_S.IN_TRANSIT],
            "rejectCustody",
            "refuse a lot offered to oneself; it stays with the sender",
        ),
        _rule(
            Action.CANCEL,
            "cancel the offer of",
            [Grant(HANDLER_ROLES, Party.CUSTODIAN)],
            [_S.IN_TRANSIT],
            "cancelCustodyOffer",
            "withdraw one's own pending offer",
        ),
        _rule(
            Action.INSPECT,
            "inspect",
            [Grant(INSPECTOR_ROLES)],
            [_S.ACTIVE, _S.HELD],
            "inspect",
            "record an inspection or lab result; a fail puts an active lot on hold",
        ),
        _rule(
            Action.HOLD,
            "hold",
            [Grant(OVERSIGHT_ROLES)],
            [_S.ACTIVE],
            "hold",
            "stop a lot from moving or being used until released",
        ),
        _rule(
            Action.RELEASE,
            "release",
            [Grant(INSPECTOR_ROLES)],
            [_S.HELD],
            "release",
            "lift a hold",
        ),
        _rule(
            Action.RECALL,
            "recall",
            [Grant(OVERSIGHT_ROLES), Grant(CREATOR_ROLES, Party.CREATOR)],
            _ALL_LIVE,
            "recall",
            "recall a lot and, in the same action, every lot made from it; a closed lot can be recalled (its "
            "food may be in homes)",
        ),
        _rule(
            Action.END_RECALL,
            "end the recall of",
            [Grant(OVERSIGHT_ROLES), Grant(CREATOR_ROLES, Party.CREATOR)],
            [_S.RECALLED],
            "endRecall",
            "end (terminate) the recall issued on a lot, once: the recall action is complete; the lot stays "
            "recalled (its food is not made safe) and a recall that reached it from an input is ended on that "
            "input",
        ),
        _rule(
            Action.CLOSE,
            "close",
            [Grant(HANDLER_ROLES, Party.CUSTODIAN)],
            [_S.ACTIVE, _S.HELD],
            "close",
            "end a lot (sold out, consumed, destroyed); only a recall may follow",
        ),
        _rule(
            Action.ANCHOR,
            "add readings to",
            [Grant(HANDLER_ROLES, Party.CUSTODIAN)],
            [_S.ACTIVE, _S.HELD, _S.IN_TRANSIT],
            "anchorReadings",
            "anchor cold-chain readings by their Merkle root (while in transit the sender still holds the lot; "
            "the receiver anchors once it has accepted: an offer it never asked for gives it no say)",
        ),
        _rule(
            Action.PRINT_LABELS,
            "print labels for",
            [Grant(HANDLER_ROLES, Party.CUSTODIAN), Grant(CREATOR_ROLES, Party.CREATOR)],
            [_S.ACTIVE, _S.HELD],
            None,
            "print shelf labels of a lot one holds or made",
            refuse_recall_affected=True,
        ),
    )
}

assert set(RULES) == set(Action), "every action needs a rule"
del _S

MAX_RECALL_BATCH = 50
"""At most this many downstream lots are recalled per transaction; a larger forward trace takes several."""

MAX_IMPORT_ROWS = 10_000
"""Most rows (critical tracking events) one bulk import file may hold."""
MAX_IMPORT_BYTES = 5 * 1024 * 1024
"""Largest bulk import file (CSV or XLSX), below the app's request limit so the refusal names the file."""


# ------------------------------------------------------------------ the recall lifecycle (the regulator's desk)

RECALL_DESK_ROLES: frozenset[str] = frozenset({Role.REGULATOR})
"""May draft, review, issue, update, remind about and terminate recalls (the recall lifecycle pages). The
lifecycle issues through the RECALL rule (a regulator is one of its roles), so the chain checks the same."""


class RecallStage(StrEnum):
    """Where a recall is in its lifecycle: draft -> review -> issued (updates) -> terminated; a draft or a
    recall under review may be discarded instead."""

    DRAFT = "draft"
    REVIEW = "review"
    ISSUED = "issued"
    TERMINATED = "terminated"
    DISCARDED = "discarded"

    @property
    def label(self) -> str:
        return {"review": "in review"}.get(self.value, self.value)


RECALL_EDITABLE: frozenset[RecallStage] = frozenset({RecallStage.DRAFT, RecallStage.REVIEW})
"""A draft may be edited (back to draft), sent to review, or discarded in these stages."""
RECALL_ISSUABLE: frozenset[RecallStage] = frozenset({RecallStage.REVIEW})
"""Issued only from review: the regulator has seen the affected lots and holders first."""
RECALL_OPEN: frozenset[RecallStage] = frozenset({RecallStage.ISSUED})
"""Updates, reminders, acknowledgements and termination are taken while the recall is issued."""


class RecallDepth(StrEnum):
    """How far down the distribution chain the recall reaches (FDA Regulatory Procedures Manual 7-5)."""

    WHOLESALE = "wholesale"
    RETAIL = "retail"
    CONSUMER = "consumer"


@dataclass(frozen=True)
class EffectivenessLevel:
    """An FDA effectiveness-check level (21 CFR 7.42(b)(3)): the share of the consignees to be checked."""

    code: str
    share: str
    meaning: str


EFFECTIVENESS_LEVELS: dict[str, EffectivenessLevel] = {
    level.code: level
    for level in (
        EffectivenessLevel("A", "100%", "every consignee is checked"),
        EffectivenessLevel("B", "between 10% and 100%", "a share above level C is checked"),
        EffectivenessLevel("C", "10%", "one consignee in ten is checked"),
        EffectivenessLevel("D", "2%", "one consignee in fifty is checked"),
        EffectivenessLevel("E", "none", "no effectiveness check"),
    )
}

EFFECTIVENESS_LEVEL_BY: dict[tuple[str, RecallDepth], str] = {
    ("I", RecallDepth.CONSUMER): "A",
    ("I", RecallDepth.RETAIL): "A",
    ("I", RecallDepth.WHOLESALE): "A",
    ("II", RecallDepth.CONSUMER): "B",
    ("II", RecallDepth.RETAIL): "B",
    ("II", RecallDepth.WHOLESALE): "C",
    ("III", RecallDepth.CONSUMER): "D",
    ("III", RecallDepth.RETAIL): "D",
    ("III", RecallDepth.WHOLESALE): "E",
}
"""The level the regulator sets by class and depth (FDA assigns it case by case; this is the project's default:
class I always A, class II B (C when it stops at wholesale), class III D (E at wholesale))."""

EFFECTIVENESS_B_SHARE = 50
"""The share (percent) of holders checked at level B, the one level FDA gives as a range."""


def effectiveness_level(recall_class: str, depth: str | None) -> EffectivenessLevel:
    """The effectiveness-check level of a recall of this class and depth (consumer depth when unknown)."""
    return EFFECTIVENESS_LEVELS[EFFECTIVENESS_LEVEL_BY[(recall_class, RecallDepth(depth or RecallDepth.CONSUMER))]]


def effectiveness_target(level: EffectivenessLevel) -> int:
    """The share of holders (percent) whose answer the level asks for."""
    return {"A": 100, "B": EFFECTIVENESS_B_SHARE, "C": 10, "D": 2, "E": 0}[level.code]


# ------------------------------------------------------------------ verdicts


@dataclass(frozen=True)
class Verdict:
    """The rulebook's answer. When refused: ``code`` (stable, in API answers), ``chain_error`` (the contract's
    custom error for the same refusal; None for refusals the app alone makes) and ``error`` (the family)."""

    allowed: bool
    code: str = ""
    chain_error: str | None = None
    error: type[LotlineError] | None = None
    message: str = ""
    field: str | None = None

    def raise_if_refused(self) -> None:
        if not self.allowed:
            assert self.error is not None
            raise self.error(self.message, code=self.code, field=self.field)


ALLOWED = Verdict(True)


@dataclass(frozen=True)
class Subject:
    """What the rulebook needs to know of the actor and the lot (plain values, no store rows)."""

    actor_roles: frozenset[str]
    status: Status | None  # None: the lot does not exist
    is_custodian: bool = False
    is_pending_custodian: bool = False
    is_creator: bool = False
    recall_affected: bool = False  # an ancestor is recalled
    recall_from_input: bool = False  # recalled because an input was (its recall started at another lot)
    recall_ended: bool = False  # the recall issued on it is ended (or its end is on its way)
    actor: str = "the organisation"
    lot: str = "the lot"


def _party_holds(party: Party, s: Subject) -> bool:
    match party:
        case Party.ANYONE:
            return True
        case Party.CUSTODIAN:
            return s.is_custodian
        case Party.PENDING_CUSTODIAN:
            return s.is_pending_custodian
        case Party.CREATOR:
            return s.is_creator
    raise AssertionError(party)  # pragma: no cover


_PARTY_REFUSAL = {
    Party.CUSTODIAN: ("not_custodian", "LotNotCustodian", "it is held by another organisation"),
    Party.PENDING_CUSTODIAN: ("not_offered", "NotPendingCustodian", "it is not offered to it"),
    Party.CREATOR: ("not_authorized_to_recall", "NotAuthorizedToRecall", "only an inspector, a regulator or the "
                    "lot's creator can"),
}


def status_refusal(rule: Rule, status: Status, lot: str = "the lot") -> Verdict:
    """The refusal for a lot in ``status`` that ``rule`` does not allow (the contract's `_requireStatus`)."""
    if rule.statuses == {Status.IN_TRANSIT}:
        code, chain_error, why = "lot_not_in_transit", "LotNotInTransit", "it is not in transit"
    elif rule.statuses == {Status.HELD}:
        code, chain_error, why = "lot_not_held", "LotNotHeld", "it is not on hold"
    elif rule.statuses == {Status.RECALLED}:
        code, chain_error, why = "lot_not_recalled", "LotNotRecalled", "it is not recalled"
    elif status is Status.IN_TRANSIT:
        code, chain_error, why = "lot_in_transit", "LotInTransit", "it is in transit"
    else:
        code, chain_error, why = f"lot_{status.value}", "LotUnavailable", f"it is {status.label}"
    if rule.action is Action.USE_AS_INPUT:
        code, chain_error = "input_unavailable", "InputUnavailable"
    return Verdict(False, code, chain_error, Conflict, f"cannot {rule.verb} lot {lot}: {why}")


def decide(action: Action, subject: Subject) -> Verdict:
    """The rulebook's verdict on ``action`` by this actor on this lot: roles, then relation, then status."""
    return decide_rule(RULES[action], subject)


def decide_rule(rule: Rule, subject: Subject) -> Verdict:
    """``decide`` for a given rule (a rule without statuses asks about the roles alone)."""
    s = subject
    action = rule.action
    if rule.statuses and s.status is None:
        return Verdict(False, "unknown_lot", "LotNotFound", NotFound, f"no lot {s.lot}")
    if not rule.roles & s.actor_roles:
        names = ", ".join(sorted(rule.roles))
        return Verdict(
            False,
            "wrong_role",
            "AccountLacksRoles",
            Forbidden,
            f"{s.actor} cannot {rule.verb} lots: it needs one of the roles {names}",
        )
    grants = [g for g in rule.grants if g.roles & s.actor_roles]
    if not rule.statuses:  # a new lot, or a question about the roles alone
        return ALLOWED
    if not any(_party_holds(g.party, s) for g in grants):
        # Name the relation of the first grant the actor has the role for (the contract checks that one).
        code, chain_error, why = _PARTY_REFUSAL[grants[0].party]
        if action is Action.ACCEPT and s.is_custodian and s.status is Status.ACTIVE:
            # A second receipt (a double click, a retried upload) is not a stranger's attempt: say so plainly.
            # (Only an active lot: one in transit, held or recalled may still be on its way to someone else.)
            return Verdict(
                False,
                "already_received",
                chain_error,
                Conflict,
                f"lot {s.lot} is already received by you: {s.actor} holds it, nothing more to receive",
            )
        return Verdict(False, code, chain_error, Forbidden, f"{s.actor} cannot {rule.verb} lot {s.lot}: {why}")
    if rule.statuses and s.status not in rule.statuses:
        assert s.status is not None
        if s.status is Status.PENDING:
            return Verdict(
                False, "lot_pending", None, Conflict, f"cannot {rule.verb} lot {s.lot}: its creation is not mined yet"
            )
        return status_refusal(rule, s.status, s.lot)
    if action is Action.END_RECALL and s.recall_from_input:
        return Verdict(
            False,
            "lot_not_recalled",
            "LotNotRecalled",
            Conflict,
            f"cannot {rule.verb} lot {s.lot}: its recall reached it from an input; end it on the lot it started from",
        )
    if action is Action.END_RECALL and s.recall_ended:
        return Verdict(
            False,
            "recall_already_ended",
            "RecallAlreadyEnded",
            Conflict,
            f"cannot {rule.verb} lot {s.lot}: it is ended already",
        )
    if rule.refuse_recall_affected and s.recall_affected:
        return Verdict(
            False,
            "lot_recall_affected",
            None,
            Conflict,
            f"cannot {rule.verb} lot {s.lot}: it is made from a recalled lot",
        )
    return ALLOWED


def ordered(roles: Iterable[str]) -> tuple[str, ...]:
    """Roles in the rulebook's order (regulator, inspector, producer, ...), for messages and menus."""
    wanted = set(roles)
    return tuple(r for r in ROLES if r in wanted)


def may(action: Action, roles: Iterable[str]) -> bool:
    """Whether an organisation with ``roles`` can take ``action`` on some lot (for menus and route guards)."""
    return bool(RULES[action].roles & set(roles))


# ------------------------------------------------------------------ the contract's errors as the rulebook names them

CHAIN_ERRORS: dict[str, tuple[type[LotlineError], str]] = {
    "LotNotFound": (NotFound, "unknown_lot"),
    "AccountLacksRoles": (Forbidden, "wrong_role"),
    "AccessControlUnauthorizedAccount": (Forbidden, "wrong_role"),
    "AccessControlBadConfirmation": (Forbidden, "forbidden"),
    "LotNotCustodian": (Forbidden, "not_custodian"),
    "NotPendingCustodian": (Forbidden, "not_offered"),
    "NotAuthorizedToRecall": (Forbidden, "not_authorized_to_recall"),
    "GtinNotOwned": (Forbidden, "gtin_not_owned"),
    "RecipientCannotReceive": (InvalidInput, "recipient_cannot_receive"),
    "LotAlreadyExists": (Conflict, "lot_exists"),
    "LotInTransit": (Conflict, "lot_in_transit"),
    "LotNotInTransit": (Conflict, "lot_not_in_transit"),
    "LotNotHeld": (Conflict, "lot_not_held"),
    "LotUnavailable": (Conflict, "lot_unavailable"),  # refined to lot_<status> from the error's status value
    "InputUnavailable": (Conflict, "input_unavailable"),
    "NotDerivedFromRecall": (Conflict, "not_derived_from_recall"),
    "LotNotRecalled": (Conflict, "lot_not_recalled"),
    "RecallAlreadyEnded": (Conflict, "recall_already_ended"),
    "PrefixTaken": (Conflict, "prefix_taken"),
    "EventKindNotAllowed": (InvalidInput, "event_kind_not_allowed"),
    "LengthMismatch": (InvalidInput, "length_mismatch"),
    "EmptyBatch": (InvalidInput, "empty_batch"),
    "DuplicateInput": (InvalidInput, "duplicate_input"),
    "InvalidGtin": (InvalidInput, "invalid_gtin"),
    "InvalidLotCode": (InvalidInput, "invalid_lot_code"),
    "InvalidPrefix": (InvalidInput, "invalid_prefix"),
}
"""Each contract custom error as the project error family and code the rulebook gives the same refusal."""


def chain_error_code(name: str, status: LotStatus | int | None = None) -> tuple[type[LotlineError], str]:
    """The error family and code for a contract error; ``LotUnavailable`` is named by the status it carries."""
    family, code = CHAIN_ERRORS.get(name, (Conflict, "chain_revert"))
    if name == "LotUnavailable" and status is not None:
        named = Status.of_chain(LotStatus(int(status)))
        if named is not None:
            code = f"lot_{named.value}"
    return family, code


# ------------------------------------------------------------------ the table for people


def _words(value: StrEnum) -> str:
    return value.value.replace("_", " ")


def rules_table() -> str:
    """The rulebook as a Markdown table (README and docs/rules.md hold this text; a test compares them)."""
    lines = [
        "| action | who (role, and relation to the lot) | lot status | on chain |",
        "|---|---|---|---|",
    ]
    order = [s for s in Status if s is not Status.PENDING]
    for rule in RULES.values():
        who = " or ".join(
            ", ".join(sorted(g.roles)) + ("" if g.party is Party.ANYONE else f" (the {_words(g.party)})")
            for g in rule.grants
        )
        statuses = ", ".join(s.label for s in order if s in rule.statuses) or "new lot"
        if rule.refuse_recall_affected:
            statuses += "; not made from a recalled lot"
        lines.append(f"| {rule.action.value.replace('_', ' ')} | {who} | {statuses} | {rule.function or 'app only'} |")
    return "\n".join(lines) + "\n"


RECALL_ACK_HOURS = 48
"""How long a notified holder has to acknowledge a recall notice before its answer counts as late in its
credit record (from the moment the recall was issued)."""
