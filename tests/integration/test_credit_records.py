"""Credit records from the store and the chain: the demo's organisations (the romaine recall reached the salad
maker through an ingredient: one recall reached, none of its own), and a lot whose record was altered in SQL
grading its maker D."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from supply_chain.services import credit
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot, Organisation

pytestmark = pytest.mark.slow


def _org(ctx: Any, name: str) -> Organisation:
    return ctx.session.scalars(select(Organisation).where(Organisation.name == name)).one()


def test_the_salad_maker_shows_the_romaine_recall_as_reached_through_an_ingredient(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        record = credit.record(ctx, _org(ctx, "FreshCut Salads"))
        totals = record["totals"]
        assert (totals["lots_created"], totals["lots_received"]) == (2, 2)
        assert (totals["recalls_caused"], totals["recalls_reached"]) == (0, 1)
        (reached,) = record["recalls_reached"]
        assert (
            reached["source"]["lot_code"] == "GV-ROM-2611A" and reached["source"]["organisation"] == "Green Valley Farm"
        )
        assert reached["recall_class"] == "I" and reached["reason"] == "Listeria monocytogenes found in a retail sample"
        assert {lot["lot_code"]: lot["how"] for lot in reached["lots"]} == {
            "GV-ROM-2611A": "held",  # the romaine lot itself, in its plant
            "FC-MIX-001": "made from it",
            "FC-MIX-002": "made from it",
        }
        assert record["grade"]["letter"] == "A"  # the recall was the farm's lot, not its own
        line = credit.summary(ctx, _org(ctx, "FreshCut Salads"))["summary"]
        assert line.endswith("0 recalls of its own lots; 1 recall reached it through an ingredient or stock")


def test_the_farm_whose_lot_was_recalled_is_graded_c_and_told_why(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        record = credit.record(ctx, _org(ctx, "Green Valley Farm"))
        totals = record["totals"]
        assert totals["lots_created"] == 2
        assert (totals["inspections_passed"], totals["inspections_failed"], totals["holds"]) == (0, 1, 1)
        assert (totals["recalls_caused"], totals["recalls_caused_class_i"], totals["recalls_reached"]) == (1, 1, 0)
        assert record["grade"]["letter"] == "C"
        assert [(r["grade"], r["term"]) for r in record["grade"]["reasons"]] == [
            ("C", "recalls_caused"),
            ("B", "recalls_caused"),
            ("B", "inspections_failed"),
        ]
        assert record["grade"]["explanation"] == (
            "C because 1 or more class I recalls (serious harm likely) started from its own lots."
        )
        assert [r["lot"]["lot_code"] for r in record["recalls_caused"]] == ["GV-ROM-2611A"]


def test_shops_and_the_lab_in_the_demo(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        shop = credit.record(ctx, _org(ctx, "Corner Market"))
        assert shop["totals"]["lots_received"] == 1 and shop["totals"]["recalls_reached"] == 1
        assert shop["recalls_reached"][0]["lots"] == [
            {
                "gtin": "00614144000033",
                "lot_code": "FC-MIX-001",
                "product": "Garden salad mix 250 g",
                "digital_link": shop["recalls_reached"][0]["lots"][0]["digital_link"],
                "how": "held",
            }
        ]
        assert shop["grade"]["letter"] == "A"
        spinach = credit.record(ctx, _org(ctx, "Sunrise Fields"))
        assert spinach["totals"]["inspections_passed"] == 1 and spinach["grade"]["letter"] == "A"
        lab = credit.record(ctx, _org(ctx, "AgriCert Labs"))
        assert lab["grade"]["letter"] is None and lab["grade"]["explanation"].startswith("Not graded")


def test_a_lot_whose_record_was_altered_is_a_verification_failure_of_its_maker(network: Any) -> None:
    with network.runtime.ctx() as ctx:
        before = credit.record(ctx, network.org("farm", ctx))
        assert before["grade"]["letter"] == "A" and before["totals"]["lots_tampered"] == 0
        event = ctx.session.scalars(select(Event).where(Event.lot_id == network.lot_pk)).first()
        payload = dict(event.payload) | {"commodity": "something else"}
    with network.runtime.engine.begin() as conn:
        conn.execute(update(Event.__table__).where(Event.__table__.c.id == event.id).values(payload=payload))
    with network.runtime.ctx() as ctx:
        assert verify_lot(ctx, ctx.session.get(Lot, network.lot_pk)).state == "tampered"
        ctx.session.commit()
        after = credit.record(ctx, network.org("farm", ctx))
        assert after["totals"]["lots_tampered"] == 1
        assert after["grade"]["letter"] == "D"
        assert after["grade"]["reasons"][0]["term"] == "lots_tampered"
        month = next(m for m in after["months"] if m["lots_tampered"])
        assert month["recorded"] and month["month"] == after["window"]["to"]


def test_recall_acknowledgements_count_on_time_and_late_against_the_deadline(demo_runtime: Any) -> None:
    from datetime import timedelta

    from supply_chain.domain import policy
    from supply_chain.store.models import Recall, RecallAcknowledgement

    with demo_runtime.ctx() as ctx:
        grocer, plant = _org(ctx, "City Grocer"), _org(ctx, "FreshCut Salads")
        # the demo's City Grocer acknowledged the romaine recall at once; the others are still within their time
        assert credit.record(ctx, grocer)["totals"]["acks_on_time"] == 1
        assert credit.record(ctx, grocer)["acknowledgements_tracked"] is True
        totals = credit.record(ctx, plant)["totals"]
        assert (totals["acks_on_time"], totals["acks_late"]) == (0, 0)
        # once the deadline has passed, the unanswered notice counts late (and the quick answer stays on time)
        recall = ctx.session.scalars(select(Recall)).one()
        shift = timedelta(hours=policy.RECALL_ACK_HOURS + 1)
        recall.issued_at -= shift
        for ack in ctx.session.scalars(
            select(RecallAcknowledgement).where(RecallAcknowledgement.recall_id == recall.id)
        ):
            ack.acknowledged_at -= shift
        ctx.session.flush()
        try:
            assert credit.record(ctx, plant)["totals"]["acks_late"] == 1
            assert credit.record(ctx, grocer)["totals"]["acks_on_time"] == 1
        finally:
            ctx.session.rollback()
