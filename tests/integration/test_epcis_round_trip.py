"""Round trip (issue 10, Done-when): the demo's ``--ancestors`` export of the salad-mix lot, captured whole by a
second Lotline instance on the same chain (its own database and keys; on the embedded chain the same chain
object), every event matched to the chain's record and verified there, nothing written on chain again in
the name of the organisations that signed it."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from supply_chain.chain.connect import fund
from supply_chain.services import lots as lot_service
from supply_chain.services import orgs
from supply_chain.services.epcis import chainmatch, export, jobs, repository
from supply_chain.services.epcis.capture import CaptureRejected
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.store.models import ChainDeployment, EpcisEvent, Event, Lot, Organisation
from tests.integration.conftest import make_runtime

MIX = ("00614144000033", "FC-MIX-001")


@pytest.fixture(scope="module")
def instances(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Instance A with the demo; instance B on its own SQLite database over A's chain, with one organisation
    of its own (a regulator's office reviewing the lot) and nothing else."""
    from supply_chain.services.demo import seed

    a = make_runtime(tmp_path_factory.mktemp("a-home"), module_db_url)
    b = None
    try:
        seed(a)
        with a.ctx() as ctx:
            deployment = ctx.session.scalars(select(ChainDeployment)).one()
            document = export.export_lot(ctx, lot_service.get_lot(ctx, *MIX), ancestors=True)
            address, chain_id, block = deployment.address, deployment.chain_id, deployment.block_number
        home = tmp_path_factory.mktemp("b-home")
        b = Runtime(Settings.from_env(env={}, home=home, database_url=f"sqlite:///{home / 'b.db'}", secret_key="b"))
        b._chain = a.chain  # the same chain: one embedded chain, two stores
        with b.ctx() as ctx:
            ctx.session.add(
                ChainDeployment(chain_id=chain_id, contract_name="LotLedger", address=address, block_number=block)
            )
        with b.ctx() as ctx:
            org, account = orgs._new_org(ctx, "Harbour Food Safety Office", ["regulator"], None)
            ctx.session.add(org)
            ctx.session.flush()
            fund(b.chain, account.address, orgs.FUNDING_WEI)
            org_id = org.id
        # what `lotline export epcis --ancestors --out FILE` writes, read back as a partner reads a file
        yield {"a": a, "b": b, "org_id": org_id, "document": json.loads(json.dumps(document))}
    finally:
        if b is not None:
            b._chain = None  # A closes the chain it opened
            b.close()
        a.close()


def _capture(runtime: Any, org_id: int, document: dict[str, Any]) -> dict[str, Any]:
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, org_id)
        job, _ = jobs.submit(ctx, org, document)
        inline = jobs.runs_inline(job)
        ctx.session.commit()
        job_id = job.id
    if not inline:
        with runtime.ctx() as ctx:
            inline = jobs.claim(ctx, job_id)
    if inline:
        assert jobs.run_job(runtime, job_id, replan=False) == "done"
    with runtime.ctx() as ctx:
        return jobs.describe(ctx, jobs.get(ctx, ctx.session.get(Organisation, org_id), job_id))


def test_the_salad_mix_ancestors_export_is_captured_whole_by_a_second_instance_and_every_event_verifies(
    instances: dict[str, Any],
) -> None:
    a, b, org_id, document = instances["a"], instances["b"], instances["org_id"], instances["document"]
    events = document["epcisBody"]["eventList"]
    with a.ctx() as ctx:
        lots = {f"{lot.gtin}/{lot.lot_code}" for lot in ctx.session.scalars(select(Lot))}
        signers = {o.chain_address: o.name for o in ctx.session.scalars(select(Organisation))}
        a_events = ctx.session.scalar(select(func.count()).select_from(Event))
    assert len(events) >= 10  # harvests, coolings, shipments, receivings, the transformation, ...
    block_before = a.chain.w3.eth.block_number

    job = _capture(b, org_id, document)

    assert job["status"] == "done"
    assert [e["status"] for e in job["events"]] == ["stored"] * len(events)
    assert {e["code"] for e in job["events"]} == {"known_on_chain"}, job["events"]
    seen_lots = set()
    for event, result in zip(events, job["events"], strict=True):
        who = result["attributedTo"]
        # attributed to the organisation that signed it on chain, never to the capturer
        assert who["source"] == "chain" and who["address"] in signers
        assert who["address"] != orgs_address(b, org_id)
        assert who["seq"] == event["lotline:seq"] and who["txHash"] == event["lotline:txHash"]
        assert "verified against the chain" in result["reason"]
        seen_lots.add(who["lot"])
    assert seen_lots <= lots and f"{MIX[0]}/{MIX[1]}" in seen_lots and len(seen_lots) >= 3
    # one anchor transaction of the capturer (its Merkle root): no lot event was signed again
    assert b.chain.w3.eth.block_number == block_before + 1
    with b.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Event)) == 0
        rows = list(ctx.session.scalars(select(EpcisEvent).order_by(EpcisEvent.position)))
        assert [r.note for r in rows] == ["known_on_chain"] * len(events)
        assert all(r.attribution and r.attribution["source"] == "chain" for r in rows)
        org = ctx.session.get(Organisation, org_id)
        proof = repository.proof(ctx, org, rows[0].event_id)
        assert proof["verified"] is True and proof["attributedTo"]["address"] in signers
        # every event verified against the chain in B
        rechecked = chainmatch.verify_known(ctx)
    assert [r.state for r in rechecked] == ["verified"] * len(events)
    with a.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Event)) == a_events  # A untouched

    # `lotline verify --all` in B reports every captured event verified, and exits 0
    from supply_chain import cli

    runner = CliRunner()
    original = cli._runtime
    cli._runtime = lambda: _Borrowed(b)  # type: ignore[assignment]
    try:
        outcome = runner.invoke(cli.main, ["verify", "--all"])
    finally:
        cli._runtime = original  # type: ignore[assignment]
    assert outcome.exit_code == 0, outcome.output
    assert f"{len(events)} captured events known on chain checked, {len(events)} verified" in outcome.output

    # captured again: every event a duplicate, nothing stored twice
    again = _capture(b, org_id, document)
    assert {e["status"] for e in again["events"]} == {"duplicate"}


def test_an_export_edited_after_it_left_the_first_instance_is_refused_naming_the_event(
    instances: dict[str, Any],
) -> None:
    b, org_id = instances["b"], instances["org_id"]
    document = copy.deepcopy(instances["document"])
    events = document["epcisBody"]["eventList"]
    for event in events:
        event["eventID"] = event["eventID"] + "-edited"  # not a duplicate of the first capture
    target = next(i for i, e in enumerate(events) if e["lotline:cte"] == "shipping")
    events[target]["lotline:kde"]["quantity"] = "1"
    with b.ctx() as ctx, pytest.raises(CaptureRejected) as refused:
        jobs.submit(ctx, ctx.session.get(Organisation, org_id), document)
    result = refused.value.details["events"][target]
    assert result["status"] == "rejected" and result["code"] == "chain_mismatch"
    assert result["field"] == f"epcisBody.eventList[{target}].lotline:kde"
    assert "quantity" in result["reason"]


def test_a_stored_event_edited_behind_the_store_is_found_by_verification(instances: dict[str, Any]) -> None:
    b = instances["b"]
    with b.ctx() as ctx:
        row = ctx.session.scalars(select(EpcisEvent).where(EpcisEvent.note == "known_on_chain")).first()
        assert row is not None
        body = dict(row.body)
        body["lotline:payloadHash"] = "0x" + "11" * 32
        row.body = body
        ctx.session.flush()
        found = [r for r in chainmatch.verify_known(ctx) if r.event_id == row.event_id]
        ctx.session.rollback()
    assert [r.state for r in found] == ["tampered"]


def orgs_address(runtime: Any, org_id: int) -> str:
    with runtime.ctx() as ctx:
        return ctx.session.get(Organisation, org_id).chain_address


class _Borrowed:
    """B's runtime lent to the CLI, which closes what it is given."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def close(self) -> None:
        pass
