"""The recall lifecycle: draft -> review -> issued (updates) -> terminated; holders notified and answering.

A regulator drafts a recall (lot, class, depth, reason, instructions to holders, public notice or not,
contact), may edit or discard it, sends it to review (the page shows every affected lot and holder), and
issues it by typing the lot code: issuing is the on-chain ``lots.recall`` (the lot and its whole forward
trace). Updates may follow; termination (with its reason) ends the recall. Every step is a ``RecallStep``.

Holders: every organisation the affected product reached (creator, each organisation that received custody,
the current and pending custodian of each affected lot), except the issuer. Each is notified at issue, at
every update and at termination (``notifications.notify``), and acknowledges with what it did.

Termination is recorded on chain: a RECALL_ENDED event on the recalled lot (the contract's ``endRecall``),
planned and anchored like any other event, so verification covers it; the lot stays recalled. See
docs/recalls.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import or_, select

from supply_chain.domain import policy
from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.lineage import format_quantity, parse_recall_class
from supply_chain.domain.policy import RecallDepth, RecallStage
from supply_chain.domain.text import check_text
from supply_chain.services import language, notifications
from supply_chain.services import lots as lot_service
from supply_chain.services.runtime import Ctx
from supply_chain.services.writes import execute
from supply_chain.store.models import (
    Event,
    Lot,
    Notification,
    Organisation,
    Recall,
    RecallAcknowledgement,
    RecallDraft,
    RecallStep,
    User,
)
from supply_chain.store.queries import descendants

MAX_TEXT = 4000
QUANTITY_FIELDS = (
    "quantity_removed",
    "quantity_destroyed",
    "quantity_returned",
    "quantity_in_stock",
    "quantity_forwarded",
)


def notice_path(recall: Recall) -> str:
    """Where a holder reads the recall notice and acknowledges (the link of every recall notification)."""
    return f"/notifications/recalls/{recall.id}"


# ------------------------------------------------------------------ who may


def require_desk(actor: Organisation) -> None:
    """Only the recall desk's roles (``policy.RECALL_DESK_ROLES``) run the lifecycle."""
    if not policy.RECALL_DESK_ROLES & set(actor.roles):
        names = ", ".join(policy.ordered(policy.RECALL_DESK_ROLES))
        raise Forbidden(f"{actor.name} cannot manage recalls: it needs one of the roles {names}", code="wrong_role")


# ------------------------------------------------------------------ drafts


def _text(value: str | None, name: str, *, required: bool = True, multiline: bool = True) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput(f"{name}: required", field=name, code="required")
        return None
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"{name}: at most {MAX_TEXT} characters", field=name, code="too_long")
    return check_text(text, name, multiline=multiline)


def _depth(value: object) -> str:
    try:
        return RecallDepth(str(value or "").strip().lower()).value
    except ValueError:
        names = ", ".join(d.value for d in RecallDepth)
        raise InvalidInput(f"depth: must be one of {names}", field="depth", code="invalid_depth") from None


def _notice_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """The checked fields of a draft from a form or a call: every refusal names its field."""
    return {
        "recall_class": parse_recall_class(values.get("recall_class") or "").value,
        "depth": _depth(values.get("depth")),
        "reason": _text(values.get("reason"), "reason"),
        "instructions": _text(values.get("instructions"), "instructions"),
        "public_notice": _flag(values.get("public_notice")),
        "contact": _text(values.get("contact"), "contact", required=False, multiline=False),
    }


def notice_problems(values: Mapping[str, Any]) -> list[InvalidInput]:
    """Every field of a recall notice that ``_notice_fields`` would refuse, not only the first (a form shows
    them all at once)."""
    problems = []
    for name in ("recall_class", "depth", "reason", "instructions", "public_notice", "contact"):
        try:
            _notice_fields({**_ACCEPTABLE_NOTICE, name: values.get(name)})
        except InvalidInput as err:
            problems.append(err)
    return problems


_ACCEPTABLE_NOTICE = {
    "recall_class": "I",
    "depth": RecallDepth.CONSUMER.value,
    "reason": "x",
    "instructions": "x",
    "public_notice": "yes",
}
"""A notice every check accepts: ``notice_problems`` puts one field of the user's into it at a time."""


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("yes", "on", "true", "1"):
        return True
    if text in ("no", "off", "false", "0", ""):
        return False
    raise InvalidInput("public_notice: must be yes or no", field="public_notice", code="invalid_choice")


def _step(
    ctx: Ctx,
    kind: str,
    actor: Organisation,
    user: User | None,
    *,
    draft: RecallDraft | None = None,
    recall: Recall | None = None,
    text: str | None = None,
) -> RecallStep:
    step = RecallStep(
        draft_id=draft.id if draft else None,
        recall_id=recall.id if recall else None,
        kind=kind,
        text=text,
        actor_org_id=actor.id,
        actor_user_id=user.id if user else None,
        at=datetime.now(UTC),
    )
    ctx.session.add(step)
    return step


def create_draft(ctx: Ctx, actor: Organisation, user: User | None, lot: Lot, values: Mapping[str, Any]) -> RecallDraft:
    """A new draft recall of ``lot`` (nothing on chain yet)."""
    require_desk(actor)
    lot_service.check(ctx, policy.Action.RECALL, actor, lot)  # a lot that cannot be recalled is said now
    draft = RecallDraft(lot=lot, created_by_org_id=actor.id, stage=RecallStage.DRAFT, **_notice_fields(values))
    ctx.session.add(draft)
    ctx.session.flush()
    _step(ctx, "drafted", actor, user, draft=draft)
    return draft


def get_draft(ctx: Ctx, draft_id: int) -> RecallDraft:
    draft = ctx.session.get(RecallDraft, draft_id)
    if draft is None:
        raise NotFound(f"no recall draft {draft_id}", code="unknown_recall_draft")
    return draft


def _editable(draft: RecallDraft, verb: str) -> None:
    if RecallStage(draft.stage) not in policy.RECALL_EDITABLE:
        raise Conflict(
            f"cannot {verb} the recall draft of lot {draft.lot.lot_code}: it is {RecallStage(draft.stage).label}",
            code=f"recall_{draft.stage}",
        )


def edit_draft(
    ctx: Ctx, actor: Organisation, user: User | None, draft: RecallDraft, values: Mapping[str, Any]
) -> RecallDraft:
    """Change a draft (one in review goes back to draft: it must be reviewed again)."""
    require_desk(actor)
    _editable(draft, "edit")
    for name, value in _notice_fields(values).items():
        setattr(draft, name, value)
    draft.stage = RecallStage.DRAFT
    draft.updated_at = datetime.now(UTC)
    _step(ctx, "edited", actor, user, draft=draft)
    return draft


def submit_for_review(ctx: Ctx, actor: Organisation, user: User | None, draft: RecallDraft) -> RecallDraft:
    require_desk(actor)
    _editable(draft, "review")
    draft.stage = RecallStage.REVIEW
    draft.updated_at = datetime.now(UTC)
    _step(ctx, "reviewed", actor, user, draft=draft)
    return draft


def discard_draft(ctx: Ctx, actor: Organisation, user: User | None, draft: RecallDraft) -> RecallDraft:
    require_desk(actor)
    _editable(draft, "discard")
    draft.stage = RecallStage.DISCARDED
    draft.updated_at = datetime.now(UTC)
    _step(ctx, "discarded", actor, user, draft=draft)
    return draft


def issue(ctx: Ctx, actor: Organisation, user: User | None, draft: RecallDraft, confirm_lot_code: str | None) -> Recall:
    """Issue a reviewed draft: the typed lot code must be the lot's, exactly; then the on-chain recall of the
    lot and its forward trace, and every holder is notified."""
    require_desk(actor)
    stage = RecallStage(draft.stage)
    if stage is RecallStage.ISSUED:
        raise Conflict(f"the recall of lot {draft.lot.lot_code} is already issued", code="recall_issued")
    if stage not in policy.RECALL_ISSUABLE:
        raise Conflict(
            f"cannot issue the recall of lot {draft.lot.lot_code}: it is {stage.label}; send it to review first",
            code=f"recall_{stage.value}",
        )
    if (confirm_lot_code or "").strip() != draft.lot.lot_code:
        raise InvalidInput(
            f"confirm_lot_code: type the lot code {draft.lot.lot_code} exactly to issue the recall",
            field="confirm_lot_code",
            code="confirmation_mismatch",
        )
    recall = _issue_on_chain(
        ctx,
        actor,
        draft.lot,
        reason=draft.reason,
        recall_class=draft.recall_class,
        instructions=draft.instructions,
        contact=draft.contact,
        depth=draft.depth,
        public_notice=draft.public_notice,
    )
    draft.stage = RecallStage.ISSUED
    draft.recall = recall
    draft.updated_at = datetime.now(UTC)
    for old in ctx.session.scalars(select(RecallStep).where(RecallStep.draft_id == draft.id)):
        old.recall_id = recall.id
    _announce_issue(ctx, actor, user, recall, draft)
    return recall


def issue_now(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    reason: str,
    recall_class: str,
    instructions: str,
    when: str | None = None,
    contact: str | None = None,
    *,
    depth: str | None = None,
    user: User | None = None,
) -> Event:
    """The API's and CLI's one-step recall (any role the RECALL rule allows): issued at once, holders
    notified as for a reviewed draft. Returns the recall event."""
    recall = _issue_on_chain(
        ctx,
        actor,
        lot,
        reason=reason,
        recall_class=recall_class,
        instructions=instructions,
        contact=contact,
        depth=_depth(depth) if depth else None,
        public_notice=True,
        when=when,
    )
    _announce_issue(ctx, actor, user, recall, None)
    return recall.event


def _issue_on_chain(
    ctx: Ctx,
    actor: Organisation,
    lot: Lot,
    *,
    reason: str,
    recall_class: str,
    instructions: str,
    contact: str | None,
    depth: str | None,
    public_notice: bool,
    when: str | None = None,
) -> Recall:
    event = lot_service.recall(ctx, actor, lot, reason, recall_class, instructions, when, contact)
    recall = ctx.session.scalars(select(Recall).where(Recall.event_id == event.id)).one()
    recall.depth = depth
    recall.public_notice = public_notice
    recall.contact = event.payload.get("contact")
    ctx.session.flush()
    return recall


def _announce_issue(
    ctx: Ctx, actor: Organisation, user: User | None, recall: Recall, draft: RecallDraft | None
) -> None:
    lot = recall.lot
    progress = lot_service.recall_progress(ctx, lot)
    _step(
        ctx,
        "issued",
        actor,
        user,
        draft=draft,
        recall=recall,
        text=f"recalled on chain with {progress['recalled']} of {progress['downstream']} lots made from it",
    )
    _notify_holders(ctx, recall, notifications.TOPIC_RECALL_ISSUED, lambda _: issue_notice(_, recall))


def issue_notice(_: language.Gettext, recall: Recall) -> tuple[str, str]:
    """The subject and text telling a holder of a recall, in the language of ``_``."""
    lot = recall.lot
    names = {"cls": recall.recall_class, "product": lot.product.name, "lot": lot.lot_code}
    subject = _("Class %(cls)s recall: %(product)s lot %(lot)s", **names)
    lines = [
        _(
            "%(issuer)s recalls %(product)s lot %(lot)s (GTIN %(gtin)s) and every lot made from it.",
            issuer=recall.issuer.name,
            gtin=lot.gtin,
            **names,
        ),
        _("Reason: %(reason)s", reason=recall.reason),
        _("What to do: %(text)s", text=recall.instructions or ""),
    ]
    if recall.contact:
        lines.append(_("Contact: %(contact)s", contact=recall.contact))
    lines.append(_("Please acknowledge and report what you did with the product."))
    return subject, " ".join(lines[:2]) + "\n" + "\n".join(lines[2:])


# ------------------------------------------------------------------ issued recalls


def get_recall(ctx: Ctx, recall_id: int) -> Recall:
    recall = ctx.session.get(Recall, recall_id)
    if recall is None:
        raise NotFound(f"no recall {recall_id}", code="unknown_recall")
    return recall


def _open(recall: Recall, verb: str) -> None:
    if RecallStage(recall.stage) not in policy.RECALL_OPEN:
        raise Conflict(
            f"cannot {verb} the recall of lot {recall.lot.lot_code}: it is {recall.stage}",
            code=f"recall_{recall.stage}",
        )


def add_update(ctx: Ctx, actor: Organisation, user: User | None, recall: Recall, text: str | None) -> RecallStep:
    """An update to an issued recall (new facts, wider instructions); every holder is told."""
    require_desk(actor)
    _open(recall, "update")
    body = _text(text, "text")
    assert body is not None
    step = _step(ctx, "update", actor, user, recall=recall, text=body)
    lot = recall.lot
    _notify_holders(
        ctx,
        recall,
        notifications.TOPIC_RECALL_UPDATE,
        lambda _: (
            _("Update to the recall of %(product)s lot %(lot)s", product=lot.product.name, lot=lot.lot_code),
            body,
        ),
    )
    return step


def terminate(ctx: Ctx, actor: Organisation, user: User | None, recall: Recall, reason: str | None) -> Recall:
    """End a recall (the product is removed or corrected): a RECALL_ENDED event on the recalled lot, on chain
    (``lots.end_recall``; the lot stays recalled). ``termination_hash`` is that event's anchored data hash."""
    require_desk(actor)
    _open(recall, "terminate")
    why = _text(reason, "reason")
    assert why is not None
    check = effectiveness(ctx, recall)
    summary = (
        f"{check.answered} of {check.notified} notified holders answered ({check.share}%, level "
        f"{check.level.code} asks {check.target}%); accounted for {check.accounted_text or 'nothing'} of "
        f"{check.reached_text or 'nothing'}"
    )
    event, call = lot_service.plan_end_recall(
        ctx, actor, recall.lot, why, recall_class=recall.recall_class, effectiveness=summary
    )
    # Committed with the pending event, before the transaction is sent (writes.execute): a crash after the
    # send leaves a terminated recall whose end the next start confirms, never an end on chain the row lacks.
    recall.terminated_at = datetime.now(UTC)
    recall.terminated_by_org_id = actor.id
    recall.termination_reason = event.payload["reason"]
    recall.termination_hash = event.payload_hash
    execute(ctx, actor, [call], [event])
    _step(ctx, "terminated", actor, user, recall=recall, text=why)
    lot = recall.lot
    _notify_holders(
        ctx,
        recall,
        notifications.TOPIC_RECALL_TERMINATED,
        lambda _: (
            _("Recall of %(product)s lot %(lot)s terminated", product=lot.product.name, lot=lot.lot_code),
            _("%(org)s has terminated the recall.", org=actor.name) + " " + _("Reason: %(reason)s", reason=why),
        ),
    )
    return recall


def history(ctx: Ctx, recall: Recall | None = None, draft: RecallDraft | None = None) -> list[RecallStep]:
    """Every step of a recall (with its draft's), oldest first."""
    clauses = []
    if recall is not None:
        clauses.append(RecallStep.recall_id == recall.id)
        draft = draft or recall.draft
    if draft is not None:
        clauses.append(RecallStep.draft_id == draft.id)
    return list(ctx.session.scalars(select(RecallStep).where(or_(*clauses)).order_by(RecallStep.at, RecallStep.id)))


def drafts(ctx: Ctx) -> list[RecallDraft]:
    """Drafts and recalls in review, newest first."""
    stages = [s.value for s in policy.RECALL_EDITABLE]
    return list(
        ctx.session.scalars(select(RecallDraft).where(RecallDraft.stage.in_(stages)).order_by(RecallDraft.id.desc()))
    )


# ------------------------------------------------------------------ affected lots and holders


@dataclass
class Holder:
    """An organisation the affected product reached: the lots, what it holds now, the quantity to account
    for (per unit)."""

    org: Organisation
    lots: list[Lot] = field(default_factory=list)
    holds_now: list[Lot] = field(default_factory=list)
    reached: dict[str, Decimal] = field(default_factory=dict)

    @property
    def reached_text(self) -> str:
        return quantities_text(self.reached)


def quantities_text(by_unit: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{format_quantity(q) if q else '0'} {u}" for u, q in sorted(by_unit.items())) or "0"


def affected_lots(ctx: Ctx, lot: Lot) -> list[Lot]:
    """The lot and every lot made from it (its forward trace), in trace order."""
    ids = [lot.id] + [pk for pk, _ in descendants(ctx.session, lot.id)]
    by_id = {x.id: x for x in ctx.session.scalars(select(Lot).where(Lot.id.in_(ids)))}
    return [by_id[i] for i in ids if i in by_id]


def holders(ctx: Ctx, lot: Lot, exclude: Organisation | None = None) -> list[Holder]:
    """Every organisation the lot's forward trace reached: each lot's creator, every organisation that
    received it (confirmed receiving events), its custodian and pending custodian. Quantities: each lot's
    ``Lot.quantity`` (what is left of it after transformations consumed part), once per organisation that
    held it."""
    lots = affected_lots(ctx, lot)
    received: dict[int, set[int]] = {}
    if lots:
        rows = ctx.session.execute(
            select(Event.lot_id, Event.actor_org_id).where(
                Event.lot_id.in_([x.id for x in lots]),
                Event.kind == EventKind.RECEIVING,
                Event.status == "confirmed",
            )
        )
        for lot_pk, org_id in rows:
            received.setdefault(lot_pk, set()).add(org_id)
    out: dict[int, Holder] = {}
    orgs = {o.id: o for o in ctx.session.scalars(select(Organisation))}
    for item in lots:
        ids = {item.creator_org_id, item.custodian_org_id, *received.get(item.id, set())}
        if item.pending_custodian_org_id:
            ids.add(item.pending_custodian_org_id)
        for org_id in sorted(ids):
            if exclude is not None and org_id == exclude.id:
                continue
            holder = out.setdefault(org_id, Holder(orgs[org_id]))
            holder.lots.append(item)
            holder.reached[item.unit] = holder.reached.get(item.unit, Decimal(0)) + Decimal(item.quantity)
            if item.custodian_org_id == org_id:
                holder.holds_now.append(item)
    return sorted(out.values(), key=lambda h: (h.org.name.lower(), h.org.id))


def _notify_holders(
    ctx: Ctx, recall: Recall, topic: str, compose: Callable[[language.Gettext], tuple[str, str]]
) -> list[Notification]:
    """One notification per holder (the issuer excluded) through ``notifications.notify``, its subject and text
    composed in the holder's language (``language.org_language``)."""
    out = []
    for h in holders(ctx, recall.lot, exclude=recall.issuer):
        subject, text = compose(language.gettext_for(language.org_language(h.org)))
        out.append(
            notifications.notify(
                ctx, h.org, topic=topic, subject=subject, text=text, link=notice_path(recall), recall_id=recall.id
            )
        )
    return out


def notified_org_ids(ctx: Ctx, recall: Recall) -> set[int]:
    """The organisations told of the recall at issue: the ones asked to acknowledge."""
    return set(
        ctx.session.scalars(
            select(Notification.organisation_id).where(
                Notification.recall_id == recall.id, Notification.topic == notifications.TOPIC_RECALL_ISSUED
            )
        )
    )


def recalls_for(ctx: Ctx, org: Organisation) -> list[Recall]:
    """The recalls ``org`` was notified of, newest first."""
    ids = select(Notification.recall_id).where(
        Notification.organisation_id == org.id, Notification.topic == notifications.TOPIC_RECALL_ISSUED
    )
    return list(ctx.session.scalars(select(Recall).where(Recall.id.in_(ids)).order_by(Recall.id.desc())))


@dataclass
class Notice:
    """A recall as a holder's dashboard shows it: the recall, the holder's lots it reaches, answered or not."""

    recall: Recall
    lots: list[Lot]
    acknowledged: bool


def notices_for(ctx: Ctx, org: Organisation) -> list[Notice]:
    """The recalls ``org`` was notified of, open ones first, with the affected lots it held."""
    out = []
    for recall in recalls_for(ctx, org):
        mine = next((h for h in holders(ctx, recall.lot) if h.org.id == org.id), None)
        out.append(Notice(recall, mine.lots if mine else [], acknowledgement_of(ctx, recall, org) is not None))
    return sorted(out, key=lambda n: n.recall.terminated_at is not None)


def can_read_notice(ctx: Ctx, org: Organisation, recall: Recall) -> bool:
    return org.id in notified_org_ids(ctx, recall) or bool(policy.OVERSIGHT_ROLES & set(org.roles))


# ------------------------------------------------------------------ acknowledgements


def acknowledgement_of(ctx: Ctx, recall: Recall, org: Organisation) -> RecallAcknowledgement | None:
    return ctx.session.scalars(
        select(RecallAcknowledgement).where(
            RecallAcknowledgement.recall_id == recall.id, RecallAcknowledgement.organisation_id == org.id
        )
    ).first()


def _amount(values: Mapping[str, Any], name: str) -> Decimal:
    raw = str(values.get(name) or "").strip()
    if not raw:
        return Decimal(0)
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise InvalidInput(f"{name}: must be a number, e.g. 12.5", field=name, code="invalid_quantity") from None
    if not number.is_finite() or number < 0:
        raise InvalidInput(f"{name}: must be zero or more", field=name, code="invalid_quantity")
    if number >= Decimal(10) ** 12 or number != number.quantize(Decimal("0.000001")):
        raise InvalidInput(
            f"{name}: at most 12 digits before the point and 6 after", field=name, code="invalid_quantity"
        )
    return number


def acknowledge(
    ctx: Ctx, org: Organisation, user: User | None, recall: Recall, values: Mapping[str, Any]
) -> RecallAcknowledgement:
    """A notified holder's answer: quantities removed, destroyed, returned, still in stock and forwarded (to
    whom), in one unit of the lots that reached it, with a note."""
    if org.id not in notified_org_ids(ctx, recall):
        raise Forbidden(
            f"{org.name} cannot acknowledge the recall of lot {recall.lot.lot_code}: it was not notified of it",
            code="not_notified",
        )
    _open(recall, "acknowledge")
    if acknowledgement_of(ctx, recall, org) is not None:
        raise Conflict(f"{org.name} has already acknowledged this recall", code="already_acknowledged")
    mine = next((h for h in holders(ctx, recall.lot) if h.org.id == org.id), None)
    units = sorted(mine.reached) if mine else []
    unit = str(values.get("unit") or (units[0] if units else "")).strip()
    if units and unit not in units:
        raise InvalidInput(f"unit: must be {' or '.join(units)}", field="unit", code="invalid_unit")
    amounts = {name: _amount(values, name) for name in QUANTITY_FIELDS}
    forwarded_to = _text(values.get("forwarded_to"), "forwarded_to", required=False, multiline=False)
    if amounts["quantity_forwarded"] > 0 and not forwarded_to:
        raise InvalidInput(
            "forwarded_to: name who received the forwarded quantity", field="forwarded_to", code="required"
        )
    if not any(amounts.values()):
        raise InvalidInput(
            "quantity_removed: report at least one quantity (removed, destroyed, returned, in stock or "
            "forwarded), 0 everywhere says nothing",
            field="quantity_removed",
            code="required",
        )
    row = RecallAcknowledgement(
        recall_id=recall.id,
        organisation_id=org.id,
        user_id=user.id if user else None,
        unit=unit or "kg",
        forwarded_to=forwarded_to,
        note=_text(values.get("note"), "note", required=False),
        **amounts,
    )
    ctx.session.add(row)
    ctx.session.flush()
    return row


@dataclass
class Effectiveness:
    """Per recall: how many notified holders answered, and the quantity accounted for against the quantity
    that reached them; the effectiveness-check level with its target share."""

    level: policy.EffectivenessLevel
    target: int
    holders: list[Holder]
    acknowledged: dict[int, RecallAcknowledgement]
    reached: dict[str, Decimal]
    accounted: dict[str, Decimal]

    @property
    def notified(self) -> int:
        return len(self.holders)

    @property
    def answered(self) -> int:
        return len(self.acknowledged)

    @property
    def share(self) -> int:
        return round(100 * self.answered / self.notified) if self.notified else 100

    @property
    def missing(self) -> list[Holder]:
        return [h for h in self.holders if h.org.id not in self.acknowledged]

    @property
    def meets_level(self) -> bool:
        return self.share >= self.target

    @property
    def reached_text(self) -> str:
        return quantities_text(self.reached)

    @property
    def accounted_text(self) -> str:
        return quantities_text(self.accounted)

    @property
    def accounted_share(self) -> int:
        total = sum(self.reached.values(), Decimal(0))
        done = sum(self.accounted.values(), Decimal(0))
        return round(100 * done / total) if total else 100


def effectiveness(ctx: Ctx, recall: Recall) -> Effectiveness:
    notified = notified_org_ids(ctx, recall)
    people = [h for h in holders(ctx, recall.lot) if h.org.id in notified]
    acks = {
        a.organisation_id: a
        for a in ctx.session.scalars(select(RecallAcknowledgement).where(RecallAcknowledgement.recall_id == recall.id))
    }
    reached: dict[str, Decimal] = {}
    accounted: dict[str, Decimal] = {}
    for h in people:
        for unit, qty in h.reached.items():
            reached[unit] = reached.get(unit, Decimal(0)) + qty
        if (a := acks.get(h.org.id)) is not None:
            accounted[a.unit] = accounted.get(a.unit, Decimal(0)) + a.accounted
    level = policy.effectiveness_level(recall.recall_class, recall.depth)
    return Effectiveness(level, policy.effectiveness_target(level), people, acks, reached, accounted)


def remind(ctx: Ctx, actor: Organisation, user: User | None, recall: Recall) -> list[Organisation]:
    """Notify again every notified holder that has not acknowledged; returns them."""
    require_desk(actor)
    _open(recall, "send reminders about")
    late = effectiveness(ctx, recall).missing
    lot = recall.lot
    for h in late:
        _ = language.gettext_for(language.org_language(h.org))
        notifications.notify(
            ctx,
            h.org,
            topic=notifications.TOPIC_RECALL_REMINDER,
            subject=_(
                "Reminder: acknowledge the recall of %(product)s lot %(lot)s",
                product=lot.product.name,
                lot=lot.lot_code,
            ),
            text=_(
                "%(issuer)s has not yet received your answer to the class %(cls)s recall of lot %(lot)s. "
                "Please report what you did with the product.",
                issuer=recall.issuer.name,
                cls=recall.recall_class,
                lot=lot.lot_code,
            ),
            link=notice_path(recall),
            recall_id=recall.id,
        )
    if late:
        _step(ctx, "reminder", actor, user, recall=recall, text="reminded: " + ", ".join(h.org.name for h in late))
    return [h.org for h in late]


def open_recalls(ctx: Ctx) -> Sequence[Recall]:
    """Issued recalls not terminated, oldest first (what ``lotline recalls remind`` walks)."""
    return list(ctx.session.scalars(select(Recall).where(Recall.terminated_at.is_(None)).order_by(Recall.id)))
