"""A lot of 1,000 events: its page and its verification, `main` and this checkout side by side (issue 11).

    PYTHONPATH=$PWD python scripts/long_lot_bench.py [--events 1000] [--runs 7] [--before main] [--work DIR]
        [--json out.json]
    PYTHONPATH=$PWD python scripts/long_lot_bench.py --measure HOME --runs 7 [--profile page|verify|tampered|write]

Builds one instance (embedded chain, SQLite, the demo scenario, the packer's lot GV-ROM-2611C topped up to
``--events`` events, 100 per transaction, then verified), copies it twice, and measures one copy with the code
of ``--before`` (exported with ``git archive``) and the other with this checkout, each in a fresh process,
alternating the two sides ``--rounds`` times. Each side measures:

- the lot's page ``/lots/<id>`` signed in as the packer (Flask test client; the first request not counted);
- ``verify_lot`` of the lot (the memo of data hashes warm, then once emptied, as after a start);
- one observation through ``lots.record_event`` on the lot, and on a lot of a few events the farm creates
  (the same chain): what a write costs with a long history and without;
- ``verify_lot`` after one payload of the lot was altered in SQL (reads the lot's logs to name the event).

``--measure`` runs one side in this process (what the driver starts) and prints JSON; with ``--profile`` one
more run of the row named goes under cProfile. The load average is printed with each side. Nothing here is a
test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOT = ("00614141000012", "GV-ROM-2611C")


def build(home: Path, events: int) -> None:
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.demo import seed
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Organisation

    runtime = Runtime(Settings.from_env(env={}, home=home))
    try:
        packer_id = seed(runtime)["packer"].id
        with runtime.ctx() as ctx:
            packer = ctx.session.get(Organisation, packer_id)
            lot = lots.get_lot(ctx, *LOT)
            payload = {"note": "bench", "date": "2026-11-26", "location_gln": packer.locations[0].gln}
            while len(lot.events) < events:
                lots.record_events(
                    ctx, packer, lot, [(EventKind.OBSERVATION, payload)] * min(100, events - len(lot.events))
                )
            ctx.session.commit()
            verify_lot(ctx, lot)
            ctx.session.commit()
    finally:
        runtime.close()


def _profiled(fn: Any) -> None:
    profile = cProfile.Profile()
    profile.enable()
    fn()
    profile.disable()
    pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(60)
    pstats.Stats(profile, stream=sys.stderr).sort_stats("tottime").print_stats(30)


def _timed(fn: Any, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


def measure(home: Path, runs: int, profile: str | None) -> dict[str, Any]:
    from sqlalchemy import select, text

    from app import create_app
    from supply_chain.bench import _signed_in
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services import verify as verify_module
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Organisation

    out: dict[str, Any] = {"load_before": os.getloadavg()}
    runtime = Runtime(Settings.from_env(env={}, home=home))
    try:
        app = create_app({"RUNTIME": runtime, "TESTING": True})
        client = _signed_in(app.test_client(), "packer@demo.lotline")
        with runtime.ctx() as ctx:
            lot = lots.get_lot(ctx, *LOT)
            lot_id, out["events"] = lot.id, len(lot.events)
        url = f"/lots/{lot_id}"
        first = client.get(url)
        assert first.status_code == 200, first.status_code
        out["page_bytes"] = len(first.get_data())

        def page() -> None:
            assert client.get(url).status_code == 200

        out["page_s"] = _timed(page, runs)
        if profile == "page":
            _profiled(page)
        with runtime.ctx() as ctx:
            lot = lots.get_lot(ctx, *LOT)

            def verify() -> None:
                result = verify_lot(ctx, lot, save=False)
                assert result.state == "verified", result.detail

            verify()  # the memo filled, as in a process that verified the lot before
            out["verify_s"] = _timed(verify, runs)
            verify_module._RECOMPUTED.clear()
            out["verify_cold_s"] = _timed(verify, 1)
            if profile == "verify":
                _profiled(verify)
        with runtime.ctx() as ctx:
            # single observations (``lots.record_event``: checks, transaction, receipt, re-verification) on the
            # long lot and on a lot of a few events (created here by the farm), the same chain under both
            packer = ctx.session.scalars(select(Organisation).where(Organisation.name == "Coastal Packing Co")).one()
            farm = ctx.session.scalars(select(Organisation).where(Organisation.name == "Green Valley Farm")).one()
            long_lot, farm_site = lots.get_lot(ctx, *LOT), farm.locations[0].gln
            short_lot = lots.create_lot(
                ctx, farm, LOT[0], "GV-ROM-SHORT", EventKind.HARVESTING,
                {"location_gln": farm_site, "harvest_date": "2026-11-20", "commodity": "romaine lettuce"}, "10", "kg",
            )  # fmt: skip
            count = iter(range(10_000))

            def write(actor: Any, lot: Any, site: str) -> None:
                note = {"note": f"bench write {next(count)}", "date": "2026-11-26", "location_gln": site}
                lots.record_event(ctx, actor, lot, EventKind.OBSERVATION, note)

            site = packer.locations[0].gln
            write(packer, long_lot, site)  # the first write of a process is not counted
            out["write_long_s"] = _timed(lambda: write(packer, long_lot, site), runs)
            out["write_short_s"] = _timed(lambda: write(farm, short_lot, farm_site), runs)
            if profile == "write":
                _profiled(lambda: write(packer, long_lot, site))
        with runtime.ctx() as ctx:
            # one payload altered in SQL (an observation in the middle of the history): the chain is read to name it
            ctx.session.execute(
                text(
                    "UPDATE events SET payload = json_set(payload, '$.note', 'altered') WHERE id = "
                    "(SELECT id FROM events WHERE lot_id = :lot ORDER BY seq LIMIT 1 OFFSET 500)"
                ),
                {"lot": lot_id},
            )
            ctx.session.commit()
            lot = lots.get_lot(ctx, *LOT)

            def tampered() -> None:
                result = verify_lot(ctx, lot, save=False)
                assert result.state == "tampered", result.detail

            out["tampered_s"] = _timed(tampered, runs)
            out["tampered_detail"] = verify_lot(ctx, lot, save=False).detail
            if profile == "tampered":
                _profiled(tampered)
    finally:
        runtime.close()
    out["load_after"] = os.getloadavg()
    return out


def _export(revision: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _side(code: Path, home: Path, runs: int) -> dict[str, Any]:
    env = os.environ | {"PYTHONPATH": str(code)}
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "long_lot_bench.py"), "--measure", str(home), "--runs", str(runs)],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{code}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def drive(events: int, runs: int, rounds: int, before: str, work: Path) -> dict[str, Any]:
    built = work / "built"
    if not (built / "done").exists():
        shutil.rmtree(built, ignore_errors=True)
        built.mkdir(parents=True)
        began = time.perf_counter()
        build(built, events)
        (built / "done").write_text(f"{time.perf_counter() - began:.0f} s\n")
    code = {"before": _export(before, work / "before-code"), "after": REPO}
    sides: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    for n in range(rounds):
        for name in ("before", "after"):
            home = work / f"{name}-{n}"
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(built, home)
            figures = _side(code[name], home, runs)
            sides[name].append(figures)
            shutil.rmtree(home, ignore_errors=True)
            print(
                f"round {n + 1} {name}: page {statistics.median(figures['page_s']) * 1000:.0f} ms, "
                f"verify {statistics.median(figures['verify_s']) * 1000:.0f} ms "
                f"(cold {figures['verify_cold_s'][0] * 1000:.0f} ms), "
                f"tampered {statistics.median(figures['tampered_s']) * 1000:.0f} ms, "
                f"write {statistics.median(figures['write_long_s']) * 1000:.0f} ms "
                f"(short lot {statistics.median(figures['write_short_s']) * 1000:.0f} ms); "
                f"load {figures['load_before'][0]:.1f} -> {figures['load_after'][0]:.1f}",
                flush=True,
            )
    table = []
    for row, key in (
        ("page of the lot (signed in), ms", "page_s"),
        ("verify the lot, memo warm, ms", "verify_s"),
        ("verify the lot, memo emptied, ms", "verify_cold_s"),
        ("verify after one payload was altered, ms", "tampered_s"),
        ("one observation on the lot (record_event), ms", "write_long_s"),
        ("one observation on a lot of a few events, same chain, ms", "write_short_s"),
    ):
        before_ms = statistics.median(s for f in sides["before"] for s in f[key]) * 1000
        after_ms = statistics.median(s for f in sides["after"] for s in f[key]) * 1000
        table.append({"what": row, "before_ms": before_ms, "after_ms": after_ms, "ratio": after_ms / before_ms})
    print("| what | before | after | after / before |\n|---|---:|---:|---:|")
    for r in table:
        print(f"| {r['what']} | {r['before_ms']:.1f} | {r['after_ms']:.1f} | {r['ratio']:.3f} |")
    events_seen = sides["after"][0]["events"]
    sizes = [sides[name][0]["page_bytes"] for name in ("before", "after")]
    print(f"events: {events_seen}; page bytes before {sizes[0]}, after {sizes[1]}")
    return {"table": table, "sides": sides, "events": events_seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", default="main")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--measure", type=Path)
    parser.add_argument("--profile", choices=("page", "verify", "tampered", "write"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs, args.profile)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="lotline-long-lot-"))
    result = drive(args.events, args.runs, args.rounds, args.before, work)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
