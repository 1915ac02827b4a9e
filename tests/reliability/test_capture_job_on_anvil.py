"""A capture job's batches on a real node (anvil): sent without a gas estimate (the node would run each
batch a dozen times to search for its limit; the steps were rehearsed), and a batch the chain refuses anyway
is applied all or nothing, its refused event named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from web3.eth import Eth

from supply_chain.chain.devnode import ANVIL_BINARY, start_anvil, stop

pytestmark = pytest.mark.slow


@pytest.fixture
def farm_on_anvil(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """A fresh anvil node with the ledger deployed, a regulator and a farm with a field and a product."""
    from supply_chain.domain.identifiers import gs1_check_digit
    from supply_chain.services import orgs
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up

    if not ANVIL_BINARY.is_file():
        pytest.skip("anvil not installed: run npm ci")
    url, node = start_anvil(tmp_path / "anvil.log")
    runtime = None
    try:
        settings = Settings.from_env(env={}, home=tmp_path / "home", chain_url=url, secret_key="gas-test")
        runtime = Runtime(settings)
        with runtime.ctx() as ctx:
            orgs.deploy(ctx)
        catch_up(runtime)
        with runtime.ctx() as ctx:
            regulator = orgs.onboard(ctx, None, "Gas Regulator", ["regulator", "admin"])
            farm = orgs.onboard(ctx, regulator, "Gas Farm", ["producer"], "0790002")
            gln = "079000200001" + str(gs1_check_digit("079000200001"))
            orgs.register_location(ctx, farm, gln, "Field", "1 Road", None, None, "farm")
            gtin = orgs.register_product(
                ctx, farm, "0079000200001" + str(gs1_check_digit("0079000200001")), "Greens", "test", True
            ).gtin
        yield SimpleNamespace(runtime=runtime, farm=farm, gtin=gtin, gln=gln)
    finally:
        if runtime is not None:
            runtime.close()
        stop(node)


def test_a_capture_jobs_batches_go_to_anvil_without_a_gas_estimate_and_a_refused_one_writes_nothing(
    farm_on_anvil: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from supply_chain.bench import commissioning_document
    from supply_chain.chain.ledger import Ledger
    from supply_chain.domain.hashing import hex32
    from supply_chain.domain.identifiers import lot_id
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import orgs
    from supply_chain.services.epcis import jobs
    from supply_chain.store.models import CaptureJob, Lot, PendingTransaction

    runtime, farm, gtin, gln = farm_on_anvil.runtime, farm_on_anvil.farm, farm_on_anvil.gtin, farm_on_anvil.gln

    sent: list[str] = []
    prepared_sent: list[Any] = []
    real_send = Ledger._send

    def counting_send(self: Ledger, prepared: Any) -> None:
        sent.append(prepared.function)
        prepared_sent.append(prepared)
        real_send(self, prepared)

    def no_formatted_receipt(*args: object, **kwargs: object) -> None:
        raise AssertionError("web3's receipt asked")

    def no_estimate(*args: object, **kwargs: object) -> int:
        raise AssertionError("eth_estimateGas asked")

    monkeypatch.setattr(Ledger, "_send", counting_send)
    monkeypatch.setattr(Eth, "estimate_gas", no_estimate)
    monkeypatch.setattr(Eth, "wait_for_transaction_receipt", no_formatted_receipt)

    document = commissioning_document(gtin, gln, 3, name="urn:gas:ok", lot="GAS-{:03d}", day="2026-11-20")
    with runtime.ctx() as ctx:
        job, _ = jobs.submit(ctx, ctx.session.merge(farm), document, inline_calls=0)
        first = job.id
    assert jobs.run_pending(runtime, batch_calls=2)[first] == "done"
    # two batches, each sent once, no estimate asked (and the document's anchor, which never had one)
    assert [f for f in sent if f != "anchor"] == ["multicall", "createLot"]
    # ... and their receipts read raw (no web3 receipt asked), giving what web3's receipt gives
    monkeypatch.undo()
    with runtime.ctx() as ctx:
        for prepared in prepared_sent:
            formatted = ctx.ledger._result(runtime.chain.w3.eth.get_transaction_receipt(prepared.tx_hash))
            raw = ctx.ledger._result(ctx.ledger._raw_receipt(prepared))
            assert raw == formatted and (raw.events or prepared.function == "anchor"), prepared.function
    with runtime.ctx() as ctx:
        codes = {lot.lot_code for lot in ctx.session.scalars(select(Lot).where(Lot.gtin == gtin))}
        assert codes == {"GAS-000", "GAS-001", "GAS-002"}

    # a batch the chain refuses: one of its lots created on chain by another writer after the job's checks
    document = commissioning_document(gtin, gln, 3, name="urn:gas:race", lot="RACE-{:03d}", day="2026-11-20")
    with runtime.ctx() as ctx:
        job, _ = jobs.submit(ctx, ctx.session.merge(farm), document, inline_calls=0)
        second = job.id
        org = ctx.session.merge(farm)
        monkeypatch.undo()  # (the other writer's own write is checked as usual)
        ctx.ledger.create_lot(orgs.signer(ctx, org), gtin, "RACE-001", [], EventKind.HARVESTING, "0x" + "11" * 32)
    monkeypatch.setattr(Eth, "estimate_gas", no_estimate)
    monkeypatch.setattr(Ledger, "existing_lots", lambda self, ids, chunk=200: set())
    assert jobs.run_pending(runtime, batch_calls=3)[second] == "failed"
    with runtime.ctx() as ctx:
        job = ctx.session.get(CaptureJob, second)
        assert job.events_written == 0
        refused = job.results[1]
        assert refused["status"] == "rejected" and refused["code"] == "lot_exists", refused
        assert not ctx.session.scalars(select(Lot).where(Lot.lot_code.like("RACE-%"))).all()
        assert not ctx.session.scalars(select(PendingTransaction)).all()  # nothing left half-sent
        on_chain = [
            c for c in ("RACE-000", "RACE-001", "RACE-002") if ctx.ledger.get_lot(hex32(lot_id(gtin, c))).exists
        ]
        assert on_chain == ["RACE-001"]  # the batch applied nothing


def test_a_signer_that_cannot_cover_a_whole_block_of_gas_gets_the_estimate(
    farm_on_anvil: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node refuses a transaction whose sender cannot pay its whole gas limit at the offered fee, so a batch sent
    without a pre-flight asks for the latest block's gas only when the signer's balance covers it; a signer that
    holds less gets the estimate (and its transaction goes through)."""
    from web3 import Web3

    from supply_chain.chain.ledger import Call
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import orgs

    runtime, farm, gtin = farm_on_anvil.runtime, farm_on_anvil.farm, farm_on_anvil.gtin
    with runtime.ctx() as ctx:
        signer = orgs.signer(ctx, farm)
    asked: list[object] = []
    real_estimate = Eth.estimate_gas

    def counting_estimate(self: Eth, *args: object, **kwargs: object) -> int:
        asked.append(args)
        return real_estimate(self, *args, **kwargs)

    monkeypatch.setattr(Eth, "estimate_gas", counting_estimate)
    w3 = runtime.chain.w3
    with runtime.ctx() as ctx:
        ledger = ctx.ledger
        block_limit = ledger.block_gas_limit()
        call = Call.create_lot(gtin, "RICH-1", [], EventKind.HARVESTING, "0x" + "11" * 32)
        rich = ledger.prepare(signer, call.function, call.args, check=False)
        assert ledger.submit(rich).success
        assert asked == [] and w3.eth.get_transaction(rich.tx_hash)["gas"] == block_limit
        # too little to cover a whole block's gas at the offered fee, enough for one createLot
        w3.provider.make_request("anvil_setBalance", [signer.address, hex(Web3.to_wei(0.002, "ether"))])
        call = Call.create_lot(gtin, "POOR-1", [], EventKind.HARVESTING, "0x" + "22" * 32)
        poor = ledger.prepare(signer, call.function, call.args, check=False)
        assert len(asked) == 1
        assert ledger.submit(poor).success
        assert w3.eth.get_transaction(poor.tx_hash)["gas"] < block_limit
