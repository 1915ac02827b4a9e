"""Organisations' credit records: each organisation's compliance record month by month, and its grade.

The figures come from chain-anchored (confirmed) events and the lot state verification compares with the
chain, never from rows SQL alone can change: a failed event or a pending write counts for nothing.

- lots created (not pending), lots received (confirmed receiving events it recorded);
- inspections of its lots passed / failed / conditional, and holds placed on its lots (hold events and
  failed inspections, which hold the lot on chain);
- recalls it caused: recalls whose source lot it created (with how many were class I);
- recalls that reached it: recalls started from another organisation's lot that reached a lot it made (through
  an ingredient) or a lot it held, counted once per recall, in the month it first reached it;
- verification failures: its lots whose record last failed verification (tampered) or that the ledger does not
  know (unverifiable), in the month that was found;
- recall acknowledgements on time / late (``acknowledgements``, against ``policy.RECALL_ACK_HOURS``).

The grade is the domain's rule (``domain.credit.grade``) over the last ``WINDOW_MONTHS`` months.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import aliased

from supply_chain.domain import credit as rule
from supply_chain.domain import policy
from supply_chain.domain.credit import CreditTerms
from supply_chain.domain.identifiers import digital_link
from supply_chain.domain.kinds import EventKind
from supply_chain.services import notifications
from supply_chain.services.runtime import Ctx
from supply_chain.store.models import (
    Event,
    Inspection,
    Lot,
    Notification,
    Organisation,
    Product,
    Recall,
    RecallAcknowledgement,
    confirmed_events,
)

FAILURE_STATES = ("tampered", "unverifiable")
INSPECTION_TERMS = {
    "pass": "inspections_passed",
    "fail": "inspections_failed",
    "conditional": "inspections_conditional",
}


def month_of(moment: datetime | date) -> str:
    """``YYYY-MM`` of a moment (UTC) or a date."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def window(as_of: date, months: int = rule.WINDOW_MONTHS) -> list[str]:
    """The ``months`` calendar months ending with ``as_of``'s, oldest first."""
    out = []
    year, month = as_of.year, as_of.month
    for _ in range(months):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def _start(month: str) -> datetime:
    year, number = month.split("-")
    return datetime(int(year), int(number), 1, tzinfo=UTC)


# ------------------------------------------------------------------ acknowledgements


@dataclass(frozen=True)
class Acknowledgements:
    """Recall acknowledgements per month: (on time, late). ``tracked`` False: the figures mean nothing yet."""

    tracked: bool
    by_month: dict[str, tuple[int, int]] = field(default_factory=dict)


def acknowledgements(ctx: Ctx, org: Organisation, since: datetime | None) -> Acknowledgements:
    """The organisation's recall acknowledgements, on time and late, per month of the recall notice.

    A notice counts once its recall was issued: acknowledged within ``policy.RECALL_ACK_HOURS`` is on time;
    acknowledged later, or not at all once that time has passed, is late. A notice still inside its time and
    unanswered is not counted yet."""
    deadline = timedelta(hours=policy.RECALL_ACK_HOURS)
    notified = select(Notification.recall_id).where(
        Notification.organisation_id == org.id,
        Notification.topic == notifications.TOPIC_RECALL_ISSUED,
        Notification.recall_id.is_not(None),
    )
    query = select(Recall).where(Recall.id.in_(notified))
    if since is not None:
        query = query.where(Recall.issued_at >= since)
    answered = {
        a.recall_id: _aware(a.acknowledged_at)
        for a in ctx.session.scalars(
            select(RecallAcknowledgement).where(
                RecallAcknowledgement.organisation_id == org.id, RecallAcknowledgement.recall_id.in_(notified)
            )
        )
    }
    now = datetime.now(UTC)
    by_month: dict[str, tuple[int, int]] = {}
    for recall in ctx.session.scalars(query):
        issued = _aware(recall.issued_at)
        when = answered.get(recall.id)
        if when is None and now - issued <= deadline:
            continue
        on_time = when is not None and when - issued <= deadline
        month = issued.strftime("%Y-%m")
        done, late = by_month.get(month, (0, 0))
        by_month[month] = (done + 1, late) if on_time else (done, late + 1)
    return Acknowledgements(tracked=True, by_month=by_month)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------ the figures


@dataclass
class _Figures:
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    caused: list[dict[str, Any]] = field(default_factory=list)
    reached: list[dict[str, Any]] = field(default_factory=list)
    acks: Acknowledgements = field(default_factory=lambda: Acknowledgements(False))

    def terms(self, month: str) -> CreditTerms:
        c = self.counts.get(month, Counter())
        on_time, late = self.acks.by_month.get(month, (0, 0))
        return CreditTerms(
            lots_created=c["lots_created"],
            lots_received=c["lots_received"],
            inspections_passed=c["inspections_passed"],
            inspections_failed=c["inspections_failed"],
            inspections_conditional=c["inspections_conditional"],
            holds=c["holds"],
            recalls_caused=c["recalls_caused"],
            recalls_caused_class_i=c["recalls_caused_class_i"],
            recalls_reached=c["recalls_reached"],
            lots_tampered=c["lots_tampered"],
            lots_unverifiable=c["lots_unverifiable"],
            acks_on_time=on_time if self.acks.tracked else None,
            acks_late=late if self.acks.tracked else None,
        )

    def total(self, months: list[str] | None = None) -> CreditTerms:
        keys = months if months is not None else sorted(self.counts)
        out = CreditTerms(acks_on_time=0 if self.acks.tracked else None, acks_late=0 if self.acks.tracked else None)
        for month in keys:
            out = out + self.terms(month)
        return out


def _figures(ctx: Ctx, org: Organisation, since: datetime | None) -> _Figures:
    """Every figure of the record from ``since`` (None: all time), bucketed by month."""
    s = ctx.session
    fig = _Figures()
    counts = fig.counts
    confirmed = confirmed_events()

    def after(column: Any) -> Any:
        return column >= since if since is not None else True

    for (created,) in s.execute(
        select(Lot.created_at).where(Lot.creator_org_id == org.id, Lot.status != "pending", after(Lot.created_at))
    ):
        counts[month_of(created)]["lots_created"] += 1
    for (moment,) in s.execute(
        select(Event.occurred_at).where(
            Event.actor_org_id == org.id, Event.kind == EventKind.RECEIVING, confirmed, after(Event.occurred_at)
        )
    ):
        counts[month_of(moment)]["lots_received"] += 1
    for outcome, moment in s.execute(
        select(Inspection.outcome, Event.occurred_at)
        .join(Event, Inspection.event_id == Event.id)
        .join(Lot, Inspection.lot_id == Lot.id)
        .where(Lot.creator_org_id == org.id, confirmed, after(Event.occurred_at))
    ):
        counts[month_of(moment)][INSPECTION_TERMS[outcome]] += 1
        if outcome == "fail":
            counts[month_of(moment)]["holds"] += 1  # a failed inspection holds the lot on chain
    for (moment,) in s.execute(
        select(Event.occurred_at)
        .join(Lot, Event.lot_id == Lot.id)
        .where(Lot.creator_org_id == org.id, Event.kind == EventKind.HOLD, confirmed, after(Event.occurred_at))
    ):
        counts[month_of(moment)]["holds"] += 1

    base = ctx.settings.public_url
    for recall, moment, lot, product in s.execute(
        select(Recall, Event.occurred_at, Lot, Product)
        .join(Event, Recall.event_id == Event.id)
        .join(Lot, Recall.lot_id == Lot.id)
        .join(Product, Lot.product_id == Product.id)
        .where(Lot.creator_org_id == org.id, confirmed, after(Event.occurred_at))
        .order_by(Event.occurred_at, Recall.id)
    ):
        month = month_of(moment)
        counts[month]["recalls_caused"] += 1
        counts[month]["recalls_caused_class_i"] += recall.recall_class == "I"
        fig.caused.append(
            {
                "month": month,
                "date": moment.date().isoformat(),
                "recall_class": recall.recall_class,
                "reason": recall.reason,
                "lot": _lot_ref(lot, product, base),
            }
        )

    # Recalls that reached it: a recall event on a lot it made or holds, whose source lot another made.
    source = aliased(Lot)
    source_product = aliased(Product)
    reached: dict[int, dict[str, Any]] = {}
    rows = s.execute(
        select(Event.occurred_at, Lot, Product, source, source_product, Organisation.name)
        .join(Lot, Event.lot_id == Lot.id)
        .join(Product, Lot.product_id == Product.id)
        .join(source, Lot.recall_source_id == source.id)
        .join(source_product, source.product_id == source_product.id)
        .join(Organisation, source.creator_org_id == Organisation.id)
        .where(
            Event.kind == EventKind.RECALL,
            confirmed,
            (Lot.creator_org_id == org.id) | (Lot.custodian_org_id == org.id),
            source.creator_org_id != org.id,
            after(Event.occurred_at),
        )
        .order_by(Event.occurred_at, Event.id)
    ).all()
    for moment, lot, product, src, src_product, src_org in rows:
        entry = reached.get(src.id)
        if entry is None:
            entry = reached[src.id] = {
                "month": month_of(moment),
                "date": moment.date().isoformat(),
                "source": _lot_ref(src, src_product, base) | {"organisation": src_org},
                "lots": [],
            }
            counts[entry["month"]]["recalls_reached"] += 1
        made = lot.creator_org_id == org.id and lot.id != src.id
        held = lot.custodian_org_id == org.id
        how = "made from it and held" if made and held else "made from it" if made else "held"
        entry["lots"].append(_lot_ref(lot, product, base) | {"how": how})
    fig.reached = list(reached.values())
    if reached:  # class and reason of each recall, from its source lot's recall
        by_source = {
            r.lot_id: r
            for r in s.scalars(
                select(Recall)
                .join(Event, Recall.event_id == Event.id)
                .where(Recall.lot_id.in_(list(reached)), confirmed)
                .order_by(Recall.id)
            )
        }
        for src_id, entry in reached.items():
            found = by_source.get(src_id)
            entry["recall_class"] = found.recall_class if found else None
            entry["reason"] = found.reason if found else None

    for state, moment, created in s.execute(
        select(Lot.verification_state, Lot.verified_at, Lot.created_at).where(
            Lot.creator_org_id == org.id,
            Lot.verification_state.in_(FAILURE_STATES),
            after(Lot.verified_at),
        )
    ):
        counts[month_of(moment or created)][f"lots_{state}"] += 1

    fig.acks = acknowledgements(ctx, org, since)
    return fig


def _lot_ref(lot: Lot, product: Product, base: str) -> dict[str, Any]:
    return {
        "gtin": lot.gtin,
        "lot_code": lot.lot_code,
        "product": product.name,
        "digital_link": digital_link(base, lot.gtin, lot.lot_code),
    }


# ------------------------------------------------------------------ what pages and the API show

TERM_LABELS = {
    "lots_created": "Lots created",
    "lots_received": "Lots received",
    "inspections_passed": "Inspections passed",
    "inspections_failed": "Inspections failed",
    "inspections_conditional": "Inspections conditional",
    "holds": "Holds on its lots",
    "recalls_caused": "Recalls of its own lots",
    "recalls_caused_class_i": "of which class I",
    "recalls_reached": "Recalls that reached it (ingredient or stock)",
    "lots_tampered": "Lots tampered",
    "lots_unverifiable": "Lots unverifiable",
    "acks_on_time": "Recall notices acknowledged on time",
    "acks_late": "Recall notices acknowledged late",
}
"""What each term is called on the pages (the API uses the keys)."""

NOT_TRACKED = "not tracked yet"


def _terms_json(terms: CreditTerms) -> dict[str, int | None]:
    return {name: getattr(terms, name) for name in TERM_LABELS}


def _month_json(month: str, terms: CreditTerms) -> dict[str, Any]:
    figures = _terms_json(terms)
    return {"month": month, "recorded": any(figures.values())} | figures


def _grade_json(grade: rule.Grade) -> dict[str, Any]:
    return {
        "letter": grade.letter,
        "explanation": grade.explanation,
        "reasons": [{"grade": r.grade, "term": r.term, "rule": r.words} for r in grade.reasons],
    }


def record(ctx: Ctx, org: Organisation, as_of: date | None = None) -> dict[str, Any]:
    """The organisation's credit record over the grading window: the grade with its reasons, the rule in
    words, the window's totals, every month of it, and the recalls it caused or was reached by."""
    as_of = as_of or datetime.now(UTC).date()
    months = window(as_of)
    fig = _figures(ctx, org, _start(months[0]))
    totals = fig.total(months)
    grade = rule.grade(totals)
    return {
        "organisation": {"id": org.id, "name": org.name, "roles": list(org.roles)},
        "as_of": as_of.isoformat(),
        "window": {"from": months[0], "to": months[-1], "months": len(months)},
        "grade": _grade_json(grade),
        "rule": {
            "grades": rule.rule_text(),
            "otherwise": "A when no threshold is reached",
            "not_counted": rule.NOT_COUNTED,
            "not_graded": rule.NOT_GRADED_RULE,
            "window_months": rule.WINDOW_MONTHS,
        },
        "totals": _terms_json(totals),
        "acknowledgements_tracked": fig.acks.tracked,
        "months": [_month_json(m, fig.terms(m)) for m in months],
        "recalls_caused": fig.caused,
        "recalls_reached": fig.reached,
    }


def grade_letter(ctx: Ctx, org: Organisation, as_of: date | None = None) -> str | None:
    """The organisation's grade over the grading window ("A" to "D"), or None when it is not graded."""
    months = window(as_of or datetime.now(UTC).date())
    fig = _figures(ctx, org, _start(months[0]))
    return rule.grade(fig.total(months)).letter


def summary(ctx: Ctx, org: Organisation) -> dict[str, Any]:
    """The organisation's whole record in one line (all time): the consumer page's compliance line and the
    regulator's list. Recalls of its own lots and recalls that reached it through an ingredient are counted
    apart, so a salad maker whose mix was recalled through a farm's lettuce shows that recall."""
    fig = _figures(ctx, org, None)
    t = fig.total()
    grade = rule.grade(fig.total(window(datetime.now(UTC).date())))
    return {
        "organisation": org.name,
        "lots": t.lots_created,
        "inspections_passed": t.inspections_passed,
        "inspections_failed": t.inspections_failed,
        "inspections_conditional": t.inspections_conditional,
        "holds": t.holds,
        "recalls": t.recalls_caused,
        "recalls_reached": t.recalls_reached,
        "verification_failures": t.lots_tampered + t.lots_unverifiable,
        "grade": grade.letter,
        "grade_explanation": grade.explanation,
        "summary": _summary_text(
            t.lots_created, t.inspections_passed, t.inspections_failed, t.holds, t.recalls_caused, t.recalls_reached
        ),
    }


def line(ctx: Ctx, org: Organisation) -> dict[str, str]:
    """The consumer page's compliance line: ``summary``'s ``organisation`` and ``summary``, the same figures
    counted by the database from indexes (lots by creator and status, confirmed events of the rare kinds,
    inspections, recalls) instead of read row by row, so a scan costs the same however long the maker's
    history is."""
    s = ctx.session
    confirmed = confirmed_events()
    made = Lot.creator_org_id == org.id
    lots_created = s.scalar(select(func.count()).select_from(Lot).where(made, Lot.status != "pending")) or 0
    outcomes = dict(
        s.execute(
            select(Inspection.outcome, func.count())
            .join(Event, Inspection.event_id == Event.id)
            .join(Lot, Inspection.lot_id == Lot.id)
            .where(made, confirmed)
            .group_by(Inspection.outcome)
        ).all()
    )
    holds = s.scalar(
        select(func.count()).select_from(Event).join(Lot, Event.lot_id == Lot.id)
        .where(Event.kind == EventKind.HOLD, confirmed, made)
    ) or 0
    caused = s.scalar(
        select(func.count()).select_from(Recall)
        .join(Event, Recall.event_id == Event.id)
        .join(Lot, Recall.lot_id == Lot.id)
        .where(made, confirmed)
    ) or 0
    source = aliased(Lot)
    reached = s.scalar(
        select(func.count(distinct(source.id)))
        .select_from(Event)
        .join(Lot, Event.lot_id == Lot.id)
        .join(source, Lot.recall_source_id == source.id)
        .where(
            Event.kind == EventKind.RECALL,
            confirmed,
            made | (Lot.custodian_org_id == org.id),
            source.creator_org_id != org.id,
        )
    ) or 0
    failed = outcomes.get("fail", 0)
    return {
        "organisation": org.name,
        "summary": _summary_text(lots_created, outcomes.get("pass", 0), failed, holds + failed, caused, reached),
    }


def _summary_text(lots: int, passed: int, failed: int, holds: int, recalls: int, reached: int) -> str:
    return (
        f"{_count(lots, 'lot')}; inspections: {passed} passed, {failed} failed; {_count(holds, 'hold')}; "
        f"{_count(recalls, 'recall')} of its own lots; "
        f"{_count(reached, 'recall')} reached it through an ingredient or stock"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
