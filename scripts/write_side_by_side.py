"""Time a single write on two (or more) embedded instances alternately, each side in a fresh process.

    PYTHONPATH=. python scripts/write_side_by_side.py HOME_A HOME_B [--writes 15] [--rounds 4] [--json FILE]

Each HOME is a Lotline home folder of the demo scenario (for example the demo's own, or the instances
``scripts/chain_growth_bench.py`` leaves in ``WORK/grown`` at its largest size and ``WORK/grown-N`` at its first).
For each round, each HOME is copied to a temporary folder and, in a process of its own, caught up, then
``--writes`` single observations are recorded on ``chain_growth_bench.WRITE_LOT`` through ``lots.record_event``
(two more first, untimed). The median of each side and round is printed, then the median of the rounds.
Alternating the sides in one run is what makes their ratio mean something on a shared machine; nothing here is a
test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def one(home: Path, writes: int) -> dict[str, float | int]:
    from chain_growth_bench import _packer_and_lots, timed_writes

    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up

    work = Path(tempfile.mkdtemp(prefix="lotline-side-")) / "home"
    shutil.copytree(home, work)
    runtime = Runtime(Settings.from_env(env={}, home=work))
    try:
        catch_up(runtime)
        blocks = runtime.chain.w3.eth.block_number
        with runtime.ctx() as ctx:
            packer, lot, site = _packer_and_lots(ctx)
            timed_writes(ctx, packer, lot, site, 2)  # untimed: the first writes of a process warm its caches
            samples = timed_writes(ctx, packer, lot, site, writes)
            median = round(statistics.median(samples) * 1000, 1)
            return {"blocks": blocks, "median_ms": median, "lot_events": lot.event_count}
    finally:
        runtime.close()
        shutil.rmtree(work.parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("homes", nargs="+", type=Path)
    parser.add_argument("--writes", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write each side's round medians and blocks as JSON")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.homes[0], args.writes)))
        return
    medians: dict[Path, list[float]] = {home: [] for home in args.homes}
    shape: dict[Path, dict[str, int]] = {}
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
            shape[home] = {"blocks": figures["blocks"], "lot_events": figures["lot_events"]}
            print(
                f"round {round_}: {home} ({figures['blocks']:,} blocks, lot of {figures['lot_events']} events): "
                f"{figures['median_ms']} ms",
                flush=True,
            )
    for home, values in medians.items():
        print(f"{home}: median of the rounds {statistics.median(values):.1f} ms")
    if args.json:
        sides = [
            {"home": str(home), **shape[home], "round_medians_ms": values, "median_ms": statistics.median(values)}
            for home, values in medians.items()
        ]
        args.json.write_text(json.dumps({"writes": args.writes, "rounds": args.rounds, "sides": sides}, indent=2))


if __name__ == "__main__":
    main()
