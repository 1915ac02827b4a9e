"""The anchored scale data set (``supply_chain/scale.py``, ``scripts/scale_store.py``) at a small size: every lot
it builds verifies against anvil, it has the shapes the load figures name (a lot 11 generations deep, one of 50
ingredients, a farm lot 1,010 lots are made from), and a second build with the same parameters comes from the
cache. Needs anvil (npm ``@foundry-rs/anvil``; present on CI)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from supply_chain import scale
from supply_chain.chain.devnode import ANVIL_BINARY
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.trace import trace
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot, LotInput

PARAMS = scale.Params(events=1_500, batch_events=600)
"""About 1,100 lots (the three shapes need 1,090), mostly of one event, a few of two."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> scale.Built:
    if not ANVIL_BINARY.is_file():
        pytest.skip("anvil not installed: run npm ci")
    return scale.ensure(PARAMS, tmp_path_factory.mktemp("scale-cache"))


@pytest.fixture(scope="module")
def runtime(built: scale.Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with scale.load(built, tmp_path_factory.mktemp("scale-run") / "home") as env:
        running = Runtime(Settings.from_env(env=env))
        try:
            yield running
        finally:
            running.close()


def _lot(ctx: object, built: scale.Built, name: str) -> Lot:
    gtin, code = built.label(name)
    return ctx.session.scalars(select(Lot).where(Lot.gtin == gtin, Lot.lot_code == code)).one()  # type: ignore[attr-defined]


def test_every_lot_of_the_scale_store_agrees_with_anvil_and_a_sample_verifies(
    built: scale.Built, runtime: Runtime
) -> None:
    with runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Event)) == built.info["event_count"] == 1_500
        edges = selectinload(Lot.inputs).selectinload(LotInput.input_lot)
        lots = list(ctx.session.scalars(select(Lot).options(edges, selectinload(Lot.custodian)).order_by(Lot.id)))
        assert len(lots) == built.info["lot_count"] >= 1_090
        # every lot: what the chain holds (head, count, creator, custodian, inputs) is what the store says
        on_chain = ctx.ledger.get_lots([lot.lot_id for lot in lots])
        for lot, chain_lot in zip(lots, on_chain.values(), strict=True):
            assert (chain_lot.head, chain_lot.event_count, chain_lot.custodian) == (
                lot.head_hash,
                lot.event_count,
                lot.custodian.chain_address,
            ), lot.lot_code
            assert set(chain_lot.inputs) == {edge.input_lot.lot_id for edge in lot.inputs}, lot.lot_code
        # the named lots and a sample of the rest: verified in full (payloads hashed again, head chain recomputed)
        sample = [_lot(ctx, built, name) for name in ("farm", "deep", "wide", "typical")] + lots[::97]
        assert {verify_lot(ctx, lot, save=False).state for lot in sample} == {"verified"}
        # the rows carry what the chain logged: many events per transaction, blocks up to the last one built
        per_tx = ctx.session.execute(select(Event.tx_hash, func.count()).group_by(Event.tx_hash)).all()
        assert len(per_tx) == built.info["transactions"] and max(n for _tx, n in per_tx) > 100
        assert ctx.session.scalar(select(func.max(Event.block_number))) == built.info["last_block"]


def test_the_scale_store_has_the_deep_the_wide_and_the_widely_used_lot(built: scale.Built, runtime: Runtime) -> None:
    with runtime.ctx() as ctx:
        deep = trace(ctx, _lot(ctx, built, "deep"), "backward")
        assert max(item["depth"] for item in deep["lots"]) == scale.DEPTH == 11
        wide = _lot(ctx, built, "wide")
        assert len(wide.inputs) == scale.INGREDIENTS == 50
        farm = trace(ctx, _lot(ctx, built, "farm"), "forward")
        assert len([item for item in farm["lots"] if item["depth"] > 0]) == scale.DESCENDANTS == 1_010
        typical = _lot(ctx, built, "typical")
        assert typical.inputs  # made from other lots (a transformed lot once the store is large enough)


def test_a_second_build_with_the_same_parameters_comes_from_the_cache(
    built: scale.Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build_again(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("built again instead of reusing the cache")

    monkeypatch.setattr(scale, "build", build_again)
    again = scale.ensure(PARAMS, built.folder.parent)
    assert again.folder == built.folder and again.info == built.info
    other = scale.Params(events=PARAMS.events, depth=PARAMS.depth + 1, batch_events=PARAMS.batch_events)
    assert other.key() != PARAMS.key()  # other parameters, another data set
    assert os.path.isfile(built.state)
    assert Path(built.home, "lotline.db").is_file()


def test_a_cached_data_set_whose_anvil_state_was_cut_off_is_built_again(
    built: scale.Built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A kill while anvil wrote its state once left a cut-off file behind a finished-looking cache."""
    assert scale.complete_dump(Path(built.state))
    copy = tmp_path / PARAMS.key()
    shutil.copytree(built.folder, copy)
    state = copy / "anvil-state.json"
    state.write_bytes(Path(built.state).read_bytes()[: os.path.getsize(built.state) // 3])
    assert not scale.complete_dump(state)
    rebuilt: list[Path] = []

    def build_again(_params: object, folder: Path, _progress: object) -> dict[str, object]:
        rebuilt.append(folder)
        (folder / "anvil-state.json").write_text("{}")
        return dict(built.info)

    monkeypatch.setattr(scale, "build", build_again)
    again = scale.ensure(PARAMS, tmp_path)
    assert rebuilt == [copy] and again.folder == copy


def test_bench_scale_refuses_sizes_that_are_not_event_counts() -> None:
    from click.testing import CliRunner

    from supply_chain.cli import main

    shown = CliRunner().invoke(main, ["bench", "--scale", "20000,lots"])
    assert shown.exit_code == 2 and "--scale is a list of event counts" in shown.output, shown.output


def test_bench_settle_goes_with_scale_and_is_a_number_of_seconds() -> None:
    from click.testing import CliRunner

    from supply_chain.cli import main

    alone = CliRunner().invoke(main, ["bench", "--settle", "600"])
    assert alone.exit_code == 2 and "--settle goes with --scale" in alone.output, alone.output
    negative = CliRunner().invoke(main, ["bench", "--scale", "20000", "--settle", "-5"])
    assert negative.exit_code == 2 and "--settle" in negative.output, negative.output
