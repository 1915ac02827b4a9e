"""Measure one event per transaction against 100 events in one transaction, through the services (issue 11).

    PYTHONPATH=. python scripts/bulk_events_bench.py [--singles 20] [--batches 7] [--profile] [--json out.json]

A fresh embedded instance seeded with the demo scenario, as ``lotline bench`` makes it: ``--singles`` times
``lots.record_event`` on the packer's lot, then ``--batches`` times ``lots.record_events`` with 100 events (one
transaction each). Reported: the medians, per event, and their ratio ("one each ÷ 100 in one transaction").
With ``--profile`` three more batches of 100 go under cProfile and the top of the profile is printed.
Run it from two checkouts started together to compare code; nothing here is a test.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(singles: int, batches: int, profile: bool, progress: Any = print) -> dict[str, Any]:
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.demo import seed
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.store.models import Organisation

    home = Path(tempfile.mkdtemp(prefix="lotline-bulk-events-bench-"))
    runtime = Runtime(Settings.from_env(env={}, home=home))
    out: dict[str, Any] = {"load_average_start": os.getloadavg()}
    try:
        packer_id = seed(runtime)["packer"].id
        with runtime.ctx() as ctx:
            packer = ctx.session.get(Organisation, packer_id)
            lot = lots.get_lot(ctx, "00614141000012", "GV-ROM-2611C")
            payload = {"note": "bench", "date": "2026-11-26", "location_gln": packer.locations[0].gln}
            one = []
            for _ in range(singles):
                began = time.perf_counter()
                lots.record_event(ctx, packer, lot, EventKind.OBSERVATION, payload)
                one.append(time.perf_counter() - began)
            batch = [(EventKind.OBSERVATION, payload)] * 100
            hundred = []
            for _ in range(batches):
                began = time.perf_counter()
                lots.record_events(ctx, packer, lot, batch)
                hundred.append(time.perf_counter() - began)
            if profile:
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(3):
                    lots.record_events(ctx, packer, lot, batch)
                prof.disable()
                pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(60)
                pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(25)
            assert all(e.status == "confirmed" for e in lot.events)
    finally:
        runtime.close()
    out["one_ms"] = [round(s * 1000, 1) for s in one]
    out["hundred_ms"] = [round(s * 1000, 1) for s in hundred]
    out["one_median_ms"] = statistics.median(one) * 1000
    out["hundred_per_event_ms"] = statistics.median(hundred) * 1000 / 100
    out["ratio"] = out["one_median_ms"] / out["hundred_per_event_ms"]
    out["load_average_end"] = os.getloadavg()
    progress(
        f"one event: {out['one_median_ms']:.1f} ms; 100 in one transaction: {out['hundred_per_event_ms']:.2f} ms "
        f"per event; ratio {out['ratio']:.1f}x (load {out['load_average_start'][0]:.1f} -> "
        f"{out['load_average_end'][0]:.1f})"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.singles, args.batches, args.profile)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
