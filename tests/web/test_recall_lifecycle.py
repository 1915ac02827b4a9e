"""The recall lifecycle from the regulator's pages (issue 12): draft -> review -> issue with the typed lot code
-> updates -> terminate; every holder notified in its inbox, holders acknowledge, the effectiveness view and
reminders; each refusal (wrong role, wrong typed code, a non-holder acknowledging, issuing twice, updating a
terminated recall) answers 4xx, names the field or the reason, and writes nothing."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots
from supply_chain.services.lots import NewLot
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import (
    Lot,
    Notification,
    Organisation,
    Recall,
    RecallAcknowledgement,
    RecallDraft,
    RecallStep,
)

REASON = "Salmonella found in romaine from Field 3"
INSTRUCTIONS = "Remove from sale and quarantine; do not ship further."
_codes = itertools.count(1)


def _chain(world: Any) -> dict[str, int]:
    """A farm lot made into a salad mix by the processor, shipped through the carrier to the shop: the
    recall of the farm lot reaches the farm, the processor, the carrier and the shop."""
    n = next(_codes)
    with world.runtime.ctx() as ctx:
        o = {key: ctx.session.get(Organisation, pk) for key, pk in world.org_ids.items()}
        s = world.sites

        def ship(lot: Lot, src: str, dst: str, day: int) -> None:
            doc = {"reference_document_type": "bill of lading", "reference_document_number": f"BOL-RL-{n}"}
            where = {"from_gln": s[src], "to_gln": s[dst]}
            lots.offer_custody(ctx, o[src], lot, o[dst], where | {"ship_date": f"2026-11-{day:02d}"} | doc)
            lots.accept_custody(
                ctx, o[dst], lot, {"from_gln": s[src], "to_gln": s[dst], "receive_date": f"2026-11-{day + 1:02d}"} | doc
            )

        farm = lots.create_lot(
            ctx,
            o["producer"],
            world.gtins["lettuce"],
            f"RL-F{n}",
            EventKind.HARVESTING,
            {"location_gln": s["producer"], "harvest_date": "2026-11-01", "commodity": "lettuce"},
            "100",
            "kg",
        )
        ship(farm, "producer", "processor", 2)
        (mix,) = lots.transform(
            ctx, o["processor"], [NewLot(world.gtins["mix"], f"RL-M{n}", "80", "kg", [(farm, "60")])],
            s["processor"], "2026-11-04",
        )
        ship(mix, "processor", "distributor", 5)
        ship(mix, "distributor", "retailer", 7)
        ctx.session.commit()
        return {"farm": farm.id, "mix": mix.id}


@pytest.fixture(scope="module")
def walk(world: Any) -> dict[str, int]:
    return _chain(world)


def _count(world: Any, model: type) -> int:
    with world.runtime.ctx() as ctx:
        return ctx.session.scalar(select(func.count()).select_from(model)) or 0


def _state(world: Any, counts: Any) -> tuple[Any, ...]:
    """Everything a refused request must leave unchanged: lots, events, block, and the lifecycle's rows."""
    models = (Recall, RecallDraft, RecallStep, Notification, RecallAcknowledgement)
    return (counts(), *(_count(world, m) for m in models))


def _draft_form(csrf: str, **overrides: str) -> dict[str, str]:
    return {
        "recall_class": "I",
        "depth": "retail",
        "reason": REASON,
        "instructions": INSTRUCTIONS,
        "public_notice": "yes",
        "contact": "recalls@test.example",
        "csrf_token": csrf,
    } | overrides


def _draft_id(response: Any) -> int:
    match = re.search(r"/admin/recalls/drafts/(\d+)$", response.headers["Location"])
    assert match, response.headers.get("Location")
    return int(match.group(1))


def _inbox(client: FlaskClient) -> str:
    return client.get("/notifications").get_data(as_text=True)


def test_the_whole_recall_from_draft_to_termination(
    app: Flask, world: Any, walk: dict[str, int], signed_in: Any, csrf: Any, counts: Any
) -> None:
    regulator = signed_in("regulator")
    token = csrf(regulator)
    with world.runtime.ctx() as ctx:
        farm_code = ctx.session.get(Lot, walk["farm"]).lot_code
        mix_code = ctx.session.get(Lot, walk["mix"]).lot_code

    # Draft: nothing on chain.
    blocks = counts()[2]
    response = regulator.post(f"/admin/lots/{walk['farm']}/recall", data=_draft_form(token))
    assert response.status_code == 302
    draft_id = _draft_id(response)
    assert counts()[2] == blocks
    page = regulator.get(f"/admin/recalls/drafts/{draft_id}").get_data(as_text=True)
    assert "Draft: recall of" in page and "Review before issuing" in page

    # Edit the draft, then review: the review page shows the notice, the affected lots and the holders.
    response = regulator.post(
        f"/admin/recalls/drafts/{draft_id}/edit", data=_draft_form(token, recall_class="II", depth="consumer")
    )
    assert response.status_code == 302
    assert regulator.post(f"/admin/recalls/drafts/{draft_id}/review", data={"csrf_token": token}).status_code == 302
    review = regulator.get(f"/admin/recalls/drafts/{draft_id}").get_data(as_text=True)
    assert "Review: recall of" in review and f"Type the lot code <code>{farm_code}</code>" in review
    for text in (farm_code, mix_code, "Test Processor", "Test Carrier", "Test Shop", "Test Farm", REASON, "80 kg"):
        assert text in review, text
    assert "Effectiveness-check level <strong>B</strong>" in review  # class II, consumer depth

    # A wrong typed lot code: 400 naming the field, nothing written anywhere.
    before = _state(world, counts)
    wrong = regulator.post(
        f"/admin/recalls/drafts/{draft_id}/issue", data={"confirm_lot_code": farm_code.lower(), "csrf_token": token}
    )
    assert wrong.status_code == 400
    assert "confirm_lot_code" in wrong.get_data(as_text=True)
    assert _state(world, counts) == before

    # Issue: on chain, every holder notified.
    issued = regulator.post(
        f"/admin/recalls/drafts/{draft_id}/issue", data={"confirm_lot_code": farm_code, "csrf_token": token}
    )
    assert issued.status_code == 302
    recall_id = int(issued.headers["Location"].rsplit("/", 1)[1])
    with world.runtime.ctx() as ctx:
        farm, mix = ctx.session.get(Lot, walk["farm"]), ctx.session.get(Lot, walk["mix"])
        assert farm.status == mix.status == "recalled"
        assert ctx.ledger.get_lot(mix.lot_id).status.name == "RECALLED"
        told = set(
            ctx.session.scalars(
                select(Organisation.name)
                .join(Notification, Notification.organisation_id == Organisation.id)
                .where(Notification.recall_id == recall_id, Notification.topic == "recall.issued")
            )
        )
        assert told == {"Test Farm", "Test Processor", "Test Carrier", "Test Shop"}
        recall = ctx.session.get(Recall, recall_id)
        assert (recall.recall_class, recall.depth, recall.public_notice) == ("II", "consumer", True)
    page = regulator.get(f"/admin/recalls/{recall_id}").get_data(as_text=True)
    for text in ("issued", mix_code, "Test Shop", "80 kg", "drafted", "edited", "reviewed"):
        assert text in page, text

    # Issuing twice: 409, nothing written.
    before = _state(world, counts)
    again = regulator.post(
        f"/admin/recalls/drafts/{draft_id}/issue", data={"confirm_lot_code": farm_code, "csrf_token": token}
    )
    assert again.status_code == 409 and "already issued" in again.get_data(as_text=True)
    assert _state(world, counts) == before

    # The shop: a badge with the unread count, the notice in its inbox, the notice on its dashboard.
    shop = signed_in("retailer")
    inbox = _inbox(shop)
    assert re.search(r'class="count-badge"[^>]*>\d+</span>', inbox)
    assert f"Class II recall: Test lettuce lot {farm_code}" in inbox
    dashboard = shop.get("/dashboard").get_data(as_text=True)
    assert "Recall notice" in dashboard and mix_code in dashboard and REASON in dashboard
    notice = shop.get(f"/notifications/recalls/{recall_id}").get_data(as_text=True)
    assert "Acknowledge recall" in notice and mix_code in notice

    # An update reaches every holder.
    response = regulator.post(
        f"/admin/recalls/{recall_id}/updates", data={"text": "Also bags sold on 6 November.", "csrf_token": token}
    )
    assert response.status_code == 302
    assert "Update to the recall of Test lettuce lot" in _inbox(signed_in("distributor"))

    # Acknowledgements: a bad quantity names its field; then the shop and the carrier answer.
    shop_token = csrf(shop)
    before = _state(world, counts)
    bad = shop.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_removed": "-3", "csrf_token": shop_token},
    )
    assert bad.status_code == 400 and "quantity_removed" in bad.get_data(as_text=True)
    missing_whom = shop.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_forwarded": "5", "csrf_token": shop_token},
    )
    assert missing_whom.status_code == 400 and "forwarded_to" in missing_whom.get_data(as_text=True)
    assert _state(world, counts) == before
    ok = shop.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_removed": "70", "quantity_destroyed": "10", "note": "pulled", "csrf_token": shop_token},
    )
    assert ok.status_code == 302
    twice = shop.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_removed": "70", "csrf_token": shop_token},
    )
    assert twice.status_code == 409
    carrier = signed_in("distributor")
    assert carrier.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_forwarded": "80", "forwarded_to": "Test Shop", "csrf_token": csrf(carrier)},
    ).status_code == 302

    # The effectiveness view: 2 of 4 answered, 160 of the 320 kg that reached them (farm 40, processor
    # 40 + 80, carrier 80, shop 80), who has not answered.
    view = regulator.get(f"/admin/recalls/{recall_id}/effectiveness").get_data(as_text=True)
    assert "50%</strong>holders acknowledged (2 of 4)" in view
    assert "<strong>160 kg</strong> of" in view and "<strong>320 kg</strong> that reached" in view
    not_answered = view.split("Not answered (2)")[1]
    assert "Test Farm" in not_answered and "Test Processor" in not_answered and "Test Shop" not in not_answered

    # A reminder reaches only those who have not answered.
    assert regulator.post(f"/admin/recalls/{recall_id}/remind", data={"csrf_token": token}).status_code == 302
    with world.runtime.ctx() as ctx:
        reminded = set(
            ctx.session.scalars(
                select(Organisation.name)
                .join(Notification, Notification.organisation_id == Organisation.id)
                .where(Notification.recall_id == recall_id, Notification.topic == "recall.reminder")
            )
        )
    assert reminded == {"Test Farm", "Test Processor"}

    # Terminate (a reason is required), then updates are refused.
    empty = regulator.post(f"/admin/recalls/{recall_id}/terminate", data={"reason": " ", "csrf_token": token})
    assert empty.status_code == 400 and 'id="f-reason-error">Reason for termination: ' in empty.get_data(as_text=True)
    done = regulator.post(
        f"/admin/recalls/{recall_id}/terminate", data={"reason": "All product recovered.", "csrf_token": token}
    )
    assert done.status_code == 302
    with world.runtime.ctx() as ctx:
        recall = ctx.session.get(Recall, recall_id)
        assert recall.stage == "terminated" and recall.termination_hash.startswith("0x")
        # The end is on chain: a confirmed RECALL_ENDED event on the recalled lot, whose anchored data hash is
        # the termination hash; the lot (and every lot the recall reached) stays recalled, and the whole record
        # still verifies against the chain.
        farm = ctx.session.get(Lot, walk["farm"])
        (ended,) = [e for e in farm.events if int(e.kind) == EventKind.RECALL_ENDED]
        assert ended.status == "confirmed" and ended.seq == farm.event_count
        assert ended.payload_hash == recall.termination_hash
        assert ended.payload["reason"] == "All product recovered."
        assert ended.payload["recall_class"] == recall.recall_class
        assert ended.actor_address == ctx.session.get(Organisation, world.org_ids["regulator"]).chain_address
        chain_lot = ctx.ledger.get_lot(farm.lot_id)
        assert (chain_lot.event_count, chain_lot.head) == (farm.event_count, farm.head_hash)
        assert ctx.ledger.recall_ended(farm.lot_id) is True
        assert {ctx.session.get(Lot, pk).status for pk in (walk["farm"], walk["mix"])} == {"recalled"}
        assert verify_lot(ctx, farm).state == "verified"
        ctx.session.commit()
    page = regulator.get(f"/admin/recalls/{recall_id}").get_data(as_text=True)
    assert "recall-ended event" in page and "confirmed" in page
    assert "Recall of Test lettuce lot" in _inbox(shop) and "terminated" in _inbox(shop)
    before = _state(world, counts)
    late = regulator.post(f"/admin/recalls/{recall_id}/updates", data={"text": "More.", "csrf_token": token})
    assert late.status_code == 409 and "terminated" in late.get_data(as_text=True)
    processor = signed_in("processor")
    late_ack = processor.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_removed": "1", "csrf_token": csrf(processor)},
    )
    assert late_ack.status_code == 409
    assert _state(world, counts) == before


def test_only_notified_holders_acknowledge(
    app: Flask, world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    lots_ = _chain(world)
    with world.runtime.ctx() as ctx:
        farm = ctx.session.get(Lot, lots_["farm"])
        regulator = ctx.session.get(Organisation, world.org_ids["regulator"])
        from supply_chain.services import recalls

        event = recalls.issue_now(ctx, regulator, farm, REASON, "I", INSTRUCTIONS)  # the API's one-step path
        recall_id = ctx.session.scalars(select(Recall.id).where(Recall.event_id == event.id)).one()
        ctx.session.commit()
    before = _state(world, counts)
    stranger = signed_in("other")  # another farm: the product never reached it
    response = stranger.post(
        f"/notifications/recalls/{recall_id}/acknowledge",
        data={"quantity_removed": "5", "csrf_token": csrf(stranger)},
    )
    assert response.status_code == 403 and "not notified" in response.get_data(as_text=True)
    assert stranger.get(f"/notifications/recalls/{recall_id}").status_code == 404
    assert _state(world, counts) == before
    # The one-step path notified the holders too.
    assert "Class I recall: Test lettuce lot RL-F" in _inbox(signed_in("processor"))


@pytest.mark.parametrize("role", ["producer", "processor", "distributor", "retailer", "inspector"])
def test_only_the_regulator_runs_the_recall_desk(
    app: Flask, world: Any, signed_in: Any, csrf: Any, counts: Any, role: str
) -> None:
    lot_id = world.lot("F2")
    client = signed_in(role)
    token = csrf(client)
    before = _state(world, counts)
    assert client.get(f"/admin/lots/{lot_id}/recall").status_code == 403
    assert client.post(f"/admin/lots/{lot_id}/recall", data=_draft_form(token)).status_code == 403
    for path in ("edit", "review", "discard", "issue"):
        assert client.post(f"/admin/recalls/drafts/1/{path}", data={"csrf_token": token}).status_code == 403
    for path in ("updates", "terminate", "remind"):
        assert client.post(f"/admin/recalls/1/{path}", data={"csrf_token": token}).status_code == 403
    assert client.get("/admin/recalls/1/effectiveness").status_code == 403
    assert _state(world, counts) == before


def test_a_draft_is_validated_edited_and_discarded_without_touching_the_chain(
    app: Flask, world: Any, signed_in: Any, csrf: Any, counts: Any
) -> None:
    regulator = signed_in("regulator")
    token = csrf(regulator)
    lot_id = world.lot("F2")
    before = _state(world, counts)
    bad = regulator.post(f"/admin/lots/{lot_id}/recall", data=_draft_form(token, depth="planet"))
    assert bad.status_code == 400 and 'id="f-depth-error">Depth: must be one of' in bad.get_data(as_text=True)
    no_reason = regulator.post(f"/admin/lots/{lot_id}/recall", data=_draft_form(token, reason=""))
    assert no_reason.status_code == 400 and 'id="f-reason-error">Reason: ' in no_reason.get_data(as_text=True)
    assert _state(world, counts) == before
    draft_id = _draft_id(regulator.post(f"/admin/lots/{lot_id}/recall", data=_draft_form(token)))
    # Issuing a draft that was not reviewed is refused.
    unreviewed = regulator.post(
        f"/admin/recalls/drafts/{draft_id}/issue", data={"confirm_lot_code": "F2", "csrf_token": token}
    )
    assert unreviewed.status_code == 409 and "review" in unreviewed.get_data(as_text=True)
    assert regulator.post(f"/admin/recalls/drafts/{draft_id}/discard", data={"csrf_token": token}).status_code == 302
    again = regulator.post(f"/admin/recalls/drafts/{draft_id}/edit", data=_draft_form(token))
    assert again.status_code == 409 and "discarded" in again.get_data(as_text=True)
    with world.runtime.ctx() as ctx:
        assert ctx.session.get(Lot, lot_id).status == "active"
        kinds = list(ctx.session.scalars(select(RecallStep.kind).where(RecallStep.draft_id == draft_id)))
        assert kinds == ["drafted", "discarded"]
    assert counts()[2] == before[0][2]  # no block mined by the whole draft's life


def test_inbox_marks_read_and_the_badge_counts_unread(app: Flask, world: Any, signed_in: Any, csrf: Any) -> None:
    with world.runtime.ctx() as ctx:
        from supply_chain.services import notifications

        shop = ctx.session.get(Organisation, world.org_ids["inspector"])
        row = notifications.notify(
            ctx, shop, topic="recall.update", subject="A test message", text="Read me.", link="/notifications"
        )
        ctx.session.commit()
        unread = notifications.unread_count(ctx, shop)
    client = signed_in("inspector")
    page = client.get("/notifications").get_data(as_text=True)
    assert f'aria-label="{unread} unread">{unread}</span>' in page and "A test message" in page
    assert client.post(f"/notifications/{row.id}/read", data={"csrf_token": csrf(client)}).status_code == 302
    page = client.get("/notifications").get_data(as_text=True)
    assert re.search(r"read [A-Z][a-z]{2} \d+, 20\d\d", page)  # "read <when>" replaces the "new" badge
    other = signed_in("retailer")
    assert other.post(f"/notifications/{row.id}/read", data={"csrf_token": csrf(other)}).status_code == 404
