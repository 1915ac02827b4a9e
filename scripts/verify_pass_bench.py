"""The start-up/scheduled verification pass, measured on a scale data set (`scripts/scale_store.py`).

    PYTHONPATH=$PWD python scripts/verify_pass_bench.py ~/.cache/lotline/scale/20000-<key> 500|all [POSTGRES_URL]

Verifies the first N lots of the data set (on a copy, with anvil started on its state; with POSTGRES_URL, on a
copy of its store in a schema of its own there) three times each way, alternating in one process:

- "before" is the pass as it was after the first session of 2026-12-01: batches of 5 lots, each in one write
  transaction (on SQLite holding the write lock throughout), one ``getLot`` multicall per batch through web3's
  request stack, each lot's events read by a query of its own and each result flushed through the ORM;
- "after" is `startup.verify_ids` as it is now (read-only batches of ``VERIFY_BATCH``, the chain asked as
  JSON-RPC, the batch's events in one query, the results in one UPDATE per batch).

Prints the seconds of each round, the medians, lots per second and the ratio.

With LOT_COUNT ``all``, runs `startup.verify_everything` once over every lot of the data set, as the first pass
after a start does (no hash recomputed before in this process), and prints its lots per second.
"""

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eth_abi import decode as abi_decode
from sqlalchemy import select

from supply_chain import scale
from supply_chain.chain.ledger import _GET_LOT_SELECTOR, Ledger, _b32, _hex
from supply_chain.services import startup, verify
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Lot


def _web3_get_lots(ledger: Ledger, lot_ids: list[str]) -> dict:
    """``Ledger.get_lots`` as it was: the multicall coded here, sent through web3's ``eth.call``."""
    ids = [_b32(i) for i in lot_ids]
    call = ledger.encode_call("multicall", [[_GET_LOT_SELECTOR + i for i in ids]])
    (results,) = abi_decode(("bytes[]",), ledger.w3.eth.call({"to": ledger.address, "data": "0x" + call.hex()}))
    return {_hex(i).lower(): ledger._chain_lot(i, raw) for i, raw in zip(ids, results, strict=True)}


def before(runtime: Runtime, ids: list[int], batch: int = 5) -> None:
    for start in range(0, len(ids), batch):
        with runtime.ctx() as ctx:
            part = select(Lot).where(Lot.id.in_(ids[start : start + batch]))
            lots = list(ctx.session.scalars(part.options(*verify.BATCH_LOADS).order_by(Lot.id)))
            chain = _web3_get_lots(ctx.ledger, [lot.lot_id for lot in lots])
            for lot in lots:
                verify_lot(ctx, lot, chain_lot=chain[lot.lot_id.lower()])


def after(runtime: Runtime, ids: list[int]) -> None:
    startup.verify_ids(runtime, ids)


@contextmanager
def _running(folder: Path, postgres_url: str | None) -> Iterator[Runtime]:
    """A runtime on a copy of the data set in ``folder`` (anvil on its state; the store re-loaded into a
    throw-away schema of ``postgres_url`` if given), closed and removed after."""
    built = scale.Built(folder, json.loads((folder / "scale.json").read_text()))
    with (
        tempfile.TemporaryDirectory(prefix="lotline-verify-pass-") as work,
        scale.load(built, Path(work) / "home", postgres_url) as env,
    ):
        runtime = Runtime(Settings.from_env(env=env))
        try:
            yield runtime
        finally:
            runtime.close()


def whole(folder: Path, postgres_url: str | None) -> None:
    with _running(folder, postgres_url) as runtime:
        start = time.perf_counter()
        bad = startup.verify_everything(runtime)
        seconds = time.perf_counter() - start
        with runtime.ctx() as ctx:
            states = sorted(set(ctx.session.scalars(select(Lot.verification_state))))
            count = len(list(ctx.session.scalars(select(Lot.id))))
    print(f"whole pass: {count} lots in {seconds:.1f} s, {count / seconds:.1f} lots/s; findings {len(bad)}; {states}")


def main(folder: Path, count: int, postgres_url: str | None) -> None:
    with _running(folder, postgres_url) as runtime:
        with runtime.ctx() as ctx:
            ids = list(ctx.session.scalars(select(Lot.id).order_by(Lot.id).limit(count)))
        before(runtime, ids[:50])  # warm both
        after(runtime, ids[:50])
        seconds: dict[str, list[float]] = {"before": [], "after": []}
        for _round in range(3):
            for name, run in (("before", before), ("after", after)):
                start = time.perf_counter()
                run(runtime, ids)
                seconds[name].append(time.perf_counter() - start)
        with runtime.ctx() as ctx:
            states = set(ctx.session.scalars(select(Lot.verification_state).where(Lot.id.in_(ids))))
    for name, runs in seconds.items():
        median = statistics.median(runs)
        print(f"{name}: rounds {[round(x, 2) for x in runs]} s, median {median:.2f} s, {len(ids) / median:.1f} lots/s")
    ratio = statistics.median(seconds["before"]) / statistics.median(seconds["after"])
    print(f"after/before: {ratio:.1f}x; verification states: {sorted(states)}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: verify_pass_bench.py DATA_SET_FOLDER LOT_COUNT|all [POSTGRES_URL]")
    folder, postgres = Path(sys.argv[1]).expanduser(), sys.argv[3] if len(sys.argv) == 4 else None
    if sys.argv[2] == "all":
        whole(folder, postgres)
    else:
        main(folder, int(sys.argv[2]), postgres)
