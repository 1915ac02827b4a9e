"""Time a single write on two (or more) embedded instances alternately, each side in a fresh process.

    PYTHONPATH=. python scripts/write_side_by_side.py HOME_A HOME_B [--writes 15] [--rounds 4]

Each HOME is a Lotline home folder of the demo scenario (for example the demo's own, and the instance
``scripts/chain_growth_bench.py`` leaves in ``WORK/grown`` at 100,000 blocks). For each round, each HOME is copied
to a temporary folder and, in a process of its own, caught up, then ``--writes`` single observations are recorded
on ``chain_growth_bench.WRITE_LOT`` through ``lots.record_event`` (two more first, untimed). The median of each
side and round is printed, then the median of the rounds. Alternating the sides in one run is what makes their
ratio mean something on a shared machine; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def one(home: Path, writes: int) -> dict[str, float | int]:
    from chain_growth_bench import _packer_and_lots

    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up

    work = Path(tempfile.mkdtemp(prefix="lotline-side-")) / "home"
    shutil.copytree(home, work)
    try:
        runtime = Runtime(Settings.from_env(env={}, home=work))
        catch_up(runtime)
        blocks = runtime.chain.w3.eth.block_number
        samples = []
        with runtime.ctx() as ctx:
            packer, lot, site = _packer_and_lots(ctx)
            for n in range(writes + 2):
                payload = {"note": f"side by side {n}", "date": "2026-12-01", "location_gln": site}
                started = time.perf_counter()
                lots.record_event(ctx, packer, lot, EventKind.OBSERVATION, payload)
                if n >= 2:
                    samples.append(time.perf_counter() - started)
            median = round(statistics.median(samples) * 1000, 1)
            return {"blocks": blocks, "median_ms": median, "lot_events": lot.event_count}
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("homes", nargs="+", type=Path)
    parser.add_argument("--writes", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.homes[0], args.writes)))
        return
    medians: dict[Path, list[float]] = {home: [] for home in args.homes}
    for round_ in range(1, args.rounds + 1):
        for home in args.homes:
            out = (
                subprocess.run(
                    [sys.executable, __file__, str(home), "--one", "--writes", str(args.writes)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            figures = json.loads(out)
            medians[home].append(figures["median_ms"])
            print(
                f"round {round_}: {home} ({figures['blocks']:,} blocks, lot of {figures['lot_events']} events): "
                f"{figures['median_ms']} ms",
                flush=True,
            )
    for home, values in medians.items():
        print(f"{home}: median of the rounds {statistics.median(values):.1f} ms")


if __name__ == "__main__":
    main()
