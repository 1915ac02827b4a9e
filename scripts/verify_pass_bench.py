"""The start-up/scheduled verification pass, measured on a scale data set (`scripts/scale_store.py`).

    PYTHONPATH=$PWD python scripts/verify_pass_bench.py ~/.cache/lotline/scale/20000-<key> 500

Verifies the first N lots of the data set (on a copy, with anvil started on its state) in batches of 5, as
`startup.verify_everything` does, three times each way, alternating in one process: "before" asks the chain
once per lot (`getLot`) and loads each lot's rows lazily, as the pass did before 2026-12-01; "after" is the
pass as it is now (one `get_lots` call per batch, the lots' rows loaded for the batch). Prints the seconds of
each round, the medians and lots per second.
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from supply_chain import scale
from supply_chain.services import startup
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Lot


def before(runtime: Runtime, ids: list[int], batch: int = 5) -> None:
    for start in range(0, len(ids), batch):
        with runtime.ctx() as ctx:
            for lot in ctx.session.scalars(select(Lot).where(Lot.id.in_(ids[start : start + batch])).order_by(Lot.id)):
                verify_lot(ctx, lot)


def after(runtime: Runtime, ids: list[int], batch: int = 5) -> None:
    startup.verify_ids(runtime, ids, batch)


def main(folder: Path, count: int) -> None:
    built = scale.Built(folder, json.loads((folder / "scale.json").read_text()))
    with (
        tempfile.TemporaryDirectory(prefix="lotline-verify-pass-") as work,
        scale.load(built, Path(work) / "home") as env,
    ):
        runtime = Runtime(Settings.from_env(env=env))
        try:
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
        finally:
            runtime.close()
    for name, runs in seconds.items():
        median = statistics.median(runs)
        print(f"{name}: rounds {[round(x, 2) for x in runs]} s, median {median:.2f} s, {len(ids) / median:.1f} lots/s")
    print("verification states:", sorted(states))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: verify_pass_bench.py DATA_SET_FOLDER LOT_COUNT")
    main(Path(sys.argv[1]).expanduser(), int(sys.argv[2]))
