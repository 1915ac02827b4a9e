"""How writes, verification and a start behave as the embedded chain grows (issue 11), before and after a change.

One fresh instance (embedded chain, SQLite) is seeded with the demo scenario, then its chain is grown to each
size in ``--sizes``. The chain grows by empty blocks mined in bulk straight through py-evm (many blocks per disk
commit, the cheap part) and, after every ``--every`` of them, one real transaction through the services: an
observation recorded by the farm on a lot of its own (``FILLER_LOT``, a ``LotEventRecorded`` log under that
lot's id), so blocks with logs are spread over the whole chain and the blooms are not all empty. The growing
writes do not go to the lot the measured writes go to (``WRITE_LOT``), whose history stays a few dozen
events: its write rate is about the chain's length alone.

Growing leaves the indexer's cursor where it is (the growing process plays "another process whose writes the
server has not read": its writes apply their own receipts, but its cursor does not follow), except that the
cursor is brought to the head ``start gap`` blocks before each size (a tenth of the size, at most 10,000): a
start at a size then has that many blocks to read, the issue's "first start after 10,000 blocks written outside
the server" at 100,000 blocks.

At each size the instance is closed and copied twice, and each copy is measured in a fresh process, one with
the code of ``--before`` (a git revision, exported with ``git archive``) and one with this checkout's code:

* start: a new ``Runtime`` plus ``catch_up`` (settle pending writes, index the logs since the cursor), and the
  whole process from its start to caught up (imports included);
* write rate: ``--writes`` single observations through ``lots.record_event`` (store pending, transaction,
  receipt, index, re-verify, cursor) on ``WRITE_LOT``, the median; and as many on ``FILLER_LOT``, whose
  history grew with the chain (about one event per ``--every`` blocks): a long chain and a long history;
* verify: ``verify_lot`` of the demo salad mix (6 events; the head-hash path, no logs read), the median of
  ``--runs``; a lot's logs from deployment (``Ledger.logs(lot_id=...)``: what a verification reads when it finds
  a mismatch, and EPCIS chain matching) for the salad mix and for the lot the growing writes went to; and a
  verification that finds an altered payload (one event of the salad mix changed in SQL) and names it.

    PYTHONPATH=$PWD python scripts/chain_growth_bench.py                         # 1k, 10k, 100k vs main
    PYTHONPATH=$PWD python scripts/chain_growth_bench.py --sizes 1000,10000 --json out.json
    PYTHONPATH=$PWD python scripts/chain_growth_bench.py --before ''              # this checkout only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SALAD_MIX = ("00614144000033", "FC-MIX-001")
WRITE_LOT = ("00614141000012", "GV-ROM-2611C")  # the lot `lotline bench` records on: held by the packer
FILLER_LOT = ("00614141000012", "GV-ROM-FILL")  # the growing writes' lot (the farm's): its history grows
MAX_START_GAP = 10_000


# ------------------------------------------------------------------ growing (this checkout's code)


def _packer_and_lots(ctx: Any) -> tuple[Any, Any, str]:
    from sqlalchemy import select

    from supply_chain.services import lots
    from supply_chain.store.models import Organisation

    packer = ctx.session.scalars(select(Organisation).where(Organisation.name == "Coastal Packing Co")).one()
    lot = lots.get_lot(ctx, *WRITE_LOT)
    return packer, lot, packer.locations[0].gln


def timed_writes(ctx: Any, org: Any, lot: Any, site: str, writes: int) -> list[float]:
    """Seconds of each of ``writes`` single observations by ``org`` on ``lot`` at ``site``, each through
    ``lots.record_event`` (store pending, transaction, receipt, index, re-verify, cursor)."""
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots

    samples = []
    for n in range(writes):
        payload = {"note": f"measured write {n}", "date": "2026-12-01", "location_gln": site}
        started = time.perf_counter()
        lots.record_event(ctx, org, lot, EventKind.OBSERVATION, payload)
        samples.append(time.perf_counter() - started)
    return samples


def _filler_lot(ctx: Any) -> tuple[Any, Any, str]:
    """The farm, the lot the growing writes go to (``FILLER_LOT``, created on first use) and the farm's site.
    Not ``WRITE_LOT``: the measured writes then see a chain that grew, not a lot whose history grew with it."""
    from sqlalchemy import select

    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.store.models import Lot, Organisation

    farm = ctx.session.scalars(select(Organisation).where(Organisation.name == "Green Valley Farm")).one()
    site = farm.locations[0].gln
    lot = ctx.session.scalars(select(Lot).where(Lot.gtin == FILLER_LOT[0], Lot.lot_code == FILLER_LOT[1])).first()
    if lot is None:
        harvest = {"location_gln": site, "harvest_date": "2026-11-20", "commodity": "romaine lettuce"}
        lot = lots.create_lot(ctx, farm, *FILLER_LOT, EventKind.HARVESTING, harvest, "500", "kg")
    return farm, lot, site


def _filler_write(runtime: Any, n: int) -> None:
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots

    with runtime.ctx() as ctx:
        farm, lot, site = _filler_lot(ctx)
        payload = {"note": f"growth filler {n}", "date": "2026-12-01", "location_gln": site}
        lots.record_event(ctx, farm, lot, EventKind.OBSERVATION, payload)


def _mine_empty(runtime: Any, count: int) -> None:
    """``count`` empty blocks, committed to disk once (py-evm directly: no transaction, no log)."""
    from eth.chains.base import MiningChain

    evm = runtime.chain.w3.provider.ethereum_tester.backend.chain
    with runtime.chain.w3.provider.lock:
        for _ in range(count):
            MiningChain.mine_block_extended(evm)
        if hasattr(evm, "index_logs"):
            evm.index_logs()
        evm._durable_db.commit()


def _grow(runtime: Any, target: int, every: int, progress: Any) -> int:
    """Grow the chain to ``target`` blocks; returns how many filler writes were made."""
    from supply_chain.services import indexer

    writes = 0
    gap = min(MAX_START_GAP, target // 10)
    synced = False
    while True:
        head = runtime.chain.w3.eth.block_number
        if head >= target:
            return writes
        if not synced and head >= target - gap:
            with runtime.ctx() as ctx:
                indexer.sync(ctx)  # the server's last position: everything after is "written outside"
            synced = True
            continue
        stop = target if synced else target - gap
        step = min(every - 1, stop - head - 1)
        if step > 0:
            _mine_empty(runtime, step)
        _filler_write(runtime, writes)
        writes += 1
        if writes % 100 == 0:
            progress(f"  block {runtime.chain.w3.eth.block_number:,} of {target:,}")


# ------------------------------------------------------------------ measuring (in a fresh process)


def measure(home: Path, writes: int, runs: int) -> dict[str, Any]:
    """Measure one copy of the instance with whatever code is on ``sys.path``; returns the figures."""
    started = time.perf_counter()
    from sqlalchemy import select, update

    from supply_chain.services import lots
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.startup import catch_up
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import ChainDeployment, Event

    imported = time.perf_counter()
    runtime = Runtime(Settings.from_env(env={}, home=home))
    try:
        before_catch_up = time.perf_counter()
        counts = catch_up(runtime)
        caught_up = time.perf_counter()
        out: dict[str, Any] = {
            "blocks": runtime.chain.w3.eth.block_number,
            "imports_s": imported - started,
            "runtime_s": before_catch_up - imported,
            "catch_up_s": caught_up - before_catch_up,
            "to_caught_up_s": caught_up - started,
            "catch_up_counts": counts,
        }
        with runtime.ctx() as ctx:
            packer, lot, site = _packer_and_lots(ctx)
            out["write_median_s"] = statistics.median(timed_writes(ctx, packer, lot, site, writes))
            out["write_per_s"] = 1 / out["write_median_s"]
            out["write_lot_events"] = lot.event_count
            # The same on the lot the growing writes went to: a long history as well as a long chain.
            farm, busy, farm_site = _filler_lot(ctx)
            out["write_busy_median_s"] = statistics.median(timed_writes(ctx, farm, busy, farm_site, writes))
            out["write_busy_per_s"] = 1 / out["write_busy_median_s"]
            out["busy_lot_events"] = busy.event_count
            mix = lots.get_lot(ctx, *SALAD_MIX)
            out["verify_s"] = _median(lambda: verify_lot(ctx, mix, save=False), runs)
            ledger = ctx.ledger
            deployed = ctx.session.scalars(select(ChainDeployment)).first()
            from_block = deployed.block_number if deployed else 0
            found: dict[str, int] = {}

            def lot_logs(key: str, lot_id: str) -> None:
                found[key] = len(ledger.logs(from_block, lot_id=lot_id))

            out["lot_logs_mix_s"] = _median(lambda: lot_logs("mix", mix.lot_id), runs)
            out["lot_logs_busy_s"] = _median(lambda: lot_logs("busy", busy.lot_id), runs)
            out["lot_logs_mix_count"], out["lot_logs_busy_count"] = found["mix"], found["busy"]
            target = sorted(mix.events, key=lambda e: e.seq or 0)[1]
            altered = dict(target.payload) | {"note": "altered by the benchmark"}
            ctx.session.execute(update(Event).where(Event.id == target.id).values(payload=altered))
            ctx.session.commit()
            ctx.session.expire_all()
            mix = lots.get_lot(ctx, *SALAD_MIX)
            verdicts = []
            out["verify_mismatch_s"] = _median(lambda: verdicts.append(verify_lot(ctx, mix, save=False)), runs)
            result = verdicts[-1]
            out["mismatch_verdict"] = f"{result.state}: {result.detail}"
            out["mismatch_names_event"] = result.bad_event_id == target.id
            ctx.session.rollback()
    finally:
        runtime.close()
    return out


def _median(fn: Any, runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _measure_in_process(code: Path, home: Path, writes: int, runs: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    for name in [n for n in env if n.startswith("LOTLINE_")]:
        del env[name]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chain_growth_bench.py"), "--measure", str(home),
         "--writes", str(writes), "--runs", str(runs)],
        env=env, cwd=code, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"measuring {home} with {code} failed:\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process_s"] = time.perf_counter() - started
    return figures


# ------------------------------------------------------------------ the run


def _export(revision: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run(args: argparse.Namespace) -> dict[str, Any]:
    from supply_chain.services import indexer
    from supply_chain.services.demo import seed
    from supply_chain.services.runtime import Runtime, Settings

    work = Path(args.work or tempfile.mkdtemp(prefix="lotline-growth-"))
    codes = {"after": REPO}
    if args.before:
        codes = {"before": _export(args.before, work / "before-code"), "after": REPO}
    home = work / "grown"
    settings = Settings.from_env(env={}, home=home)
    runtime = Runtime(settings)
    indexer.FOLLOW_GAP = 0  # this process's writes leave the cursor alone (see the module docstring)
    results: dict[str, Any] = {"sizes": [], "every": args.every, "writes": args.writes, "runs": args.runs}
    results["load_average_start"] = os.getloadavg()
    try:
        print("seeding the demo scenario", file=sys.stderr)
        seed(runtime)
        for size in args.sizes:
            t = time.perf_counter()
            print(f"growing to {size:,} blocks", file=sys.stderr)
            fillers = _grow(runtime, size, args.every, lambda m: print(m, file=sys.stderr))
            grown_s = time.perf_counter() - t
            runtime.close()
            row: dict[str, Any] = {"size": size, "grow_s": grown_s, "filler_writes": fillers}
            for name, code in codes.items():
                copy = work / f"{size}-{name}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(home, copy)
                print(f"measuring {name} at {size:,} blocks", file=sys.stderr)
                row[name] = _measure_in_process(code, copy, args.writes, args.runs)
                shutil.rmtree(copy, ignore_errors=True)
            if size == args.sizes[0]:  # kept, for a single write timed alternately on both (write_side_by_side.py)
                kept = work / f"grown-{size}"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(home, kept)
            row["load_average"] = os.getloadavg()
            results["sizes"].append(row)
            print(json.dumps(row, default=str), file=sys.stderr)
            if args.json:  # after each size, so a long run's first sizes are kept if it is stopped
                Path(args.json).write_text(json.dumps(results, indent=2, default=str))
            runtime = Runtime(settings)
    finally:
        runtime.close()
    results["load_average_end"] = os.getloadavg()
    return results


def markdown(results: dict[str, Any]) -> str:
    names = [n for n in ("before", "after") if results["sizes"] and n in results["sizes"][0]]
    lines = [
        "| blocks | what | " + " | ".join(names) + (" | after / before |" if len(names) == 2 else " |"),
        "|---|---|" + "---:|" * (len(names) + (1 if len(names) == 2 else 0)),
    ]
    rows = [
        ("write rate (tx/s, median of single events; a lot of a few dozen events)", "write_per_s", "{:.1f}"),
        (
            "write rate on the growing writes' lot (its history grows with the chain), tx/s",
            "write_busy_per_s",
            "{:.1f}",
        ),
        ("verify the salad mix (head path), ms", "verify_s", "ms"),
        ("verify finding an altered payload, ms", "verify_mismatch_s", "ms"),
        ("salad mix's logs from deployment, ms", "lot_logs_mix_s", "ms"),
        ("growing writes' lot's logs from deployment, ms", "lot_logs_busy_s", "ms"),
        ("start: Runtime + catch_up, s", None, "s"),
        ("start: fresh process to caught up, s", "to_caught_up_s", "{:.2f}"),
    ]
    for size in results["sizes"]:
        for label, key, fmt in rows:
            values = []
            for n in names:
                f = size[n]
                value = f["runtime_s"] + f["catch_up_s"] if key is None else f[key]
                values.append(value)
            shown = [f"{v * 1000:.1f}" if fmt == "ms" else f"{v:.2f}" if fmt == "s" else fmt.format(v) for v in values]
            ratio = ""
            if len(values) == 2 and values[0]:
                share = values[1] / values[0]
                ratio = f" | {share:.2f}" if share >= 0.01 else f" | {share:.1g}"
            lines.append(f"| {size['size']:,} | {label} | " + " | ".join(shown) + ratio + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000", help="chain lengths to measure at (blocks)")
    parser.add_argument(
        "--every", type=int, default=100, help="one real write through the services per this many blocks"
    )
    parser.add_argument("--writes", type=int, default=15, help="single-event writes timed at each size")
    parser.add_argument("--runs", type=int, default=3, help="runs of each verification and log read")
    parser.add_argument("--before", default="main", help="git revision measured side by side ('' for none)")
    parser.add_argument("--work", help="folder for the instances (default: a new temporary folder)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(Path(args.measure), args.writes, args.runs), default=str))
        return 0
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    results = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
