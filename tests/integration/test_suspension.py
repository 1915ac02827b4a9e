"""Suspending an organisation (issue 8): its roles revoked on chain in one transaction, its writes refused by the
app and by the contract, its users kept out and its API tokens refused; reinstating restores exactly its roles."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from supply_chain.domain.errors import Conflict, Forbidden, InvalidInput, LotlineError
from supply_chain.domain.hashing import keccak256
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots, orgs, sessions, tokens
from supply_chain.store.models import Event, Lot, Organisation, User, UserSession

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
REASON = "Falsified cooling records found at audit 2026-114"


def _harvest(ctx: Any, net: Any, code: str) -> Lot:
    return lots.create_lot(
        ctx,
        net.org("farm", ctx),
        net.greens,
        code,
        EventKind.HARVESTING,
        {"location_gln": net.farm_site, "harvest_date": "2026-11-25", "commodity": "greens"},
        "10",
        "kg",
    )


def _state(runtime: Any, key_or_id: Any, net: Any) -> tuple[Any, ...]:
    """Everything a refused suspension or reinstatement must leave alone: the organisation's columns, its roles
    on chain, the rows of lots and events, and the block number."""
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, net.ids[key_or_id])
        return (
            list(org.roles),
            org.suspended_at,
            org.suspended_reason,
            org.suspended_roles,
            ctx.session.scalar(
                select(func.count()).select_from(UserSession).join(User).where(User.organisation_id == org.id)
            ),
            [r for r in ("producer", "processor", "distributor") if ctx.ledger.has_role(r, org.chain_address)],
            ctx.session.scalar(select(func.count()).select_from(Lot)),
            ctx.session.scalar(select(func.count()).select_from(Event)),
            ctx.ledger.block_number(),
        )


def test_suspension_revokes_every_role_on_chain_refuses_writes_and_reinstatement_restores_exactly_them(
    network: Any,
) -> None:
    rt = network.runtime
    with rt.ctx() as ctx:
        farm = network.org("farm", ctx)
        orgs.set_roles(ctx, network.org("regulator", ctx), farm, ["producer", "distributor"])
    with rt.ctx() as ctx:
        farm, regulator = network.org("farm", ctx), network.org("regulator", ctx)
        block = ctx.ledger.block_number()
        orgs.suspend(ctx, regulator, farm, f"  {REASON} ")
        assert ctx.ledger.block_number() == block + 1, "every role is revoked in one transaction"
        assert not ctx.ledger.has_role("producer", farm.chain_address)
        assert not ctx.ledger.has_role("distributor", farm.chain_address)
        assert farm.roles == [] and farm.suspended_roles == ["distributor", "producer"]
        assert farm.suspended_reason == REASON and farm.suspended_by_id == regulator.id
        assert farm.suspended_at is not None

    before = _state(rt, "farm", network)
    with rt.ctx() as ctx:
        farm = network.org("farm", ctx)
        with pytest.raises(Forbidden):  # the app refuses before anything is signed
            _harvest(ctx, network, "SUSP-1")
    with rt.ctx() as ctx:
        farm, lot = network.org("farm", ctx), ctx.session.get(Lot, network.lot_pk)
        # ... and the contract refuses the suspended key itself, whatever path reaches it
        with pytest.raises(Forbidden) as refused:
            ctx.ledger.record_event(orgs.signer(ctx, farm), lot.lot_id, EventKind.COOLING, keccak256(b"cooling"))
        assert getattr(refused.value, "chain_error", None), "refused by the contract (a decoded custom error)"
    assert _state(rt, "farm", network) == before, "a refused write leaves no row and mines no block"

    with rt.ctx() as ctx:
        farm = network.org("farm", ctx)
        block = ctx.ledger.block_number()
        orgs.reinstate(ctx, network.org("regulator", ctx), farm)
        assert ctx.ledger.block_number() == block + 1
        assert ctx.ledger.has_role("producer", farm.chain_address)
        assert ctx.ledger.has_role("distributor", farm.chain_address)
        assert farm.roles == ["distributor", "producer"]
        assert (farm.suspended_at, farm.suspended_reason, farm.suspended_roles) == (None, None, None)
    with rt.ctx() as ctx:
        assert _harvest(ctx, network, "SUSP-2").status == "active", "writes work again after reinstatement"


def test_suspended_users_cannot_sign_in_and_its_tokens_are_refused_until_reinstated(network: Any) -> None:
    """Also shows that a regulator without the ledger's admin role may suspend (the operator signs)."""
    rt = network.runtime
    with rt.ctx() as ctx:
        inspectorate = orgs.onboard(ctx, None, "Second Regulator", ["regulator"])
        user = orgs.add_user(ctx, network.org("farm", ctx), "farmer@example.org", "Farmer", PASSWORD)
        _, token = tokens.create(ctx, network.org("farm", ctx), "ERP", "write")
        signed_in = sessions.start(ctx, orgs.authenticate(ctx, "farmer@example.org", PASSWORD))
        assert sessions.user_for(ctx, signed_in) is user
        inspectorate_id, user_id = inspectorate.id, user.id
    with rt.ctx() as ctx:
        farm = network.org("farm", ctx)
        orgs.suspend(ctx, ctx.session.get(Organisation, inspectorate_id), farm, REASON)
        assert not ctx.ledger.has_role("producer", farm.chain_address)
        assert farm.suspended_by.name == "Second Regulator"
    with rt.ctx() as ctx:
        with pytest.raises(Forbidden) as refused:
            orgs.authenticate(ctx, "farmer@example.org", PASSWORD)
        assert refused.value.code == "organisation_suspended"
        day = network.org("farm", ctx).suspended_at.strftime("%Y-%m-%d")
        assert refused.value.message == f"Farm is suspended by the regulator since {day}: {REASON}"
        with pytest.raises(Forbidden) as wrong:  # a wrong password learns nothing about the suspension
            orgs.authenticate(ctx, "farmer@example.org", "wrong password!")
        assert wrong.value.code == "bad_credentials"
        with pytest.raises(Forbidden) as api:
            tokens.token_for(ctx, token)
        assert api.value.code == "organisation_suspended" and REASON in api.value.message
        assert sessions.user_for(ctx, signed_in) is None, "suspension deleted the session"
        assert sessions.count(ctx, ctx.session.get(type(user), user_id)) == 0
    with rt.ctx() as ctx:
        orgs.reinstate(ctx, ctx.session.get(Organisation, inspectorate_id), network.org("farm", ctx))
    with rt.ctx() as ctx:
        again = orgs.authenticate(ctx, "farmer@example.org", PASSWORD)
        assert tokens.token_for(ctx, token).organisation.name == "Farm", "the token works again"
        assert sessions.user_for(ctx, signed_in) is None, "the session from before stays signed out"
        assert sessions.user_for(ctx, sessions.start(ctx, again)) is again


def test_suspension_refusals_change_nothing(network: Any) -> None:
    rt = network.runtime
    cases: list[tuple[str, str, str | None, type[LotlineError], str]] = [
        ("farm2", "farm", REASON, Forbidden, "wrong_role"),  # a producer cannot suspend
        ("inspector", "farm", REASON, Forbidden, "wrong_role"),
        ("regulator", "regulator", REASON, Forbidden, "cannot_suspend_self"),
        ("regulator", "farm", "   ", InvalidInput, "invalid_input"),
        ("regulator", "farm", None, InvalidInput, "invalid_input"),
    ]
    for actor, subject, reason, error, code in cases:
        before = _state(rt, subject, network)
        with rt.ctx() as ctx, pytest.raises(error) as refused:
            orgs.suspend(ctx, network.org(actor, ctx), network.org(subject, ctx), reason)  # type: ignore[arg-type]
        assert refused.value.code == code, (actor, subject, reason)
        if error is InvalidInput:
            assert refused.value.field == "reason"
        assert _state(rt, subject, network) == before, (actor, subject, reason)

    with rt.ctx() as ctx, pytest.raises(Forbidden) as operator:
        orgs.suspend(ctx, network.org("regulator", ctx), orgs.operator(ctx), REASON)
    assert operator.value.code == "cannot_suspend_admin"

    with rt.ctx() as ctx, pytest.raises(Conflict) as active:
        orgs.reinstate(ctx, network.org("regulator", ctx), network.org("farm", ctx))
    assert active.value.code == "not_suspended"

    with rt.ctx() as ctx:
        orgs.suspend(ctx, network.org("regulator", ctx), network.org("farm", ctx), REASON)
    suspended = _state(rt, "farm", network)
    with rt.ctx() as ctx, pytest.raises(Conflict) as twice:
        orgs.suspend(ctx, network.org("regulator", ctx), network.org("farm", ctx), "again")
    assert twice.value.code == "already_suspended" and twice.value.status == 409
    with rt.ctx() as ctx, pytest.raises(Conflict) as roles:  # roles come back only by reinstatement
        orgs.set_roles(ctx, network.org("regulator", ctx), network.org("farm", ctx), ["producer"])
    assert roles.value.code == "organisation_suspended"
    with rt.ctx() as ctx, pytest.raises(Forbidden) as producer:
        orgs.reinstate(ctx, network.org("farm2", ctx), network.org("farm", ctx))
    assert producer.value.code == "wrong_role"
    assert _state(rt, "farm", network) == suspended
