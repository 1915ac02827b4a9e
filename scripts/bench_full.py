"""One full benchmark run: every figure of issue 11's table, measured in one run on this machine.

    PYTHONPATH=$PWD python scripts/bench_full.py --postgres postgresql://USER:PW@HOST/DB \\
        [--scale 20000,100000,1000000] [--blocks 1000,10000,100000] [--parts app,workers,...] \\
        [--quick] [--work DIR] [--write docs/benchmarks.md]

Each part runs in a process of its own, one after the other (never two at once), and leaves its figures in
``WORK/<part>.json`` and its output in ``WORK/<part>.log``; a part that fails or runs out of time is written
down as such ("not measured"), and the run goes on. At the end the figures are set against the targets in one
table (``WORK/full-run.md``), and with ``--write`` that table replaces the "Full run" section of the given
markdown file (between the ``full-run`` markers; added at the end the first time).

The parts:

* ``app`` - ``lotline bench`` on the demo scenario (embedded chain, SQLite): writes, bulk writes, readings,
  verification of a 1,000-event lot, the lot page, the scan page, then 32 clients from another process against
  ``lotline serve`` (``/healthz`` and the scan pages, cache off and on);
* ``workers`` - ``lotline bench --workers 1,2,4 [--postgres URL]`` (anvil and PostgreSQL; without a URL the
  embedded chain and SQLite);
* ``scale`` - ``lotline bench --scale SIZES --workers 1,2,4 --postgres URL``: the anchored data sets
  (``scripts/scale_store.py``; built here if not cached), 1 and 32 clients, SQLite and PostgreSQL;
* ``scale-inproc`` - on the largest data set of ``--scale`` that is built: the backward trace of the typical
  lot and of the lot 11 generations deep, the forward trace of the farm lot with 1,010 descendants
  (``services.trace``, in process), and the verification pass (``startup.verify_ids``) over a sample of lots;
* ``growth`` - ``scripts/chain_growth_bench.py --sizes BLOCKS --before ''``: write rate, verification and a
  start as the embedded chain grows (and, as a figure of its own, the write rate on a lot whose history grew
  with it);
* ``write-side`` - ``scripts/write_side_by_side.py``: one write timed alternately on the growth part's instance at
  its first size and at its largest (``WORK/growth/grown-N``, ``WORK/growth/grown``), each side a fresh process,
  4 rounds; the write-rate target is judged on this ratio (the growth part's sizes are measured minutes apart,
  under whatever load each minute brings);
* ``capture`` - ``scripts/capture_job_bench.py --events 10000 --anvil``: an EPCIS capture job of 10,000 events
  on anvil (on the embedded chain py-evm alone takes longer than the target: docs/benchmarks.md, 2026-12-02
  third session); the figure is the check at submission plus the job's run.

Nothing here is timed inside a test; this is the benchmark the README's "Benchmarks" section points to.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PARTS = ("app", "workers", "scale", "scale-inproc", "growth", "write-side", "capture")
START = "<!-- full-run:start -->"
END = "<!-- full-run:end -->"


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _commit() -> str:
    """The commit the parts run (with ``+`` when the tree has changes), so parts run at different times say so."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                               text=True)  # fmt: skip
    except OSError:
        return "?"
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else "?"


def _run_part(name: str, argv: list[str], work: Path, timeout: float) -> dict[str, Any]:
    """Run one part's command; its JSON (``WORK/<name>.json``) is read back if it wrote one."""
    out = work / f"{name}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    record: dict[str, Any] = {
        "command": " ".join(argv),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "load_average_start": _load_average(),
    }
    started = time.monotonic()
    print(f"[{datetime.now(UTC):%H:%M:%S}] {name}: {' '.join(argv)}", file=sys.stderr, flush=True)
    with (work / f"{name}.log").open("w") as log:
        try:
            done = subprocess.run(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            record["exit"] = done.returncode
        except subprocess.TimeoutExpired:
            record["exit"] = f"stopped after {timeout:.0f} s"
    record["seconds"] = round(time.monotonic() - started, 1)
    record["load_average_end"] = _load_average()
    if out.exists():
        try:
            record["figures"] = json.loads(out.read_text())
        except ValueError:
            record["exit"] = f"{record['exit']}; its JSON could not be read"
    print(f"    {name}: exit {record['exit']} in {record['seconds']} s", file=sys.stderr, flush=True)
    return record


# ------------------------------------------------------------------ the in-process part


def scale_inproc(size: int, sample: int, runs: int) -> dict[str, Any]:
    """Traces and the verification pass on a built data set (run in a process of its own)."""
    import tempfile

    from sqlalchemy import select

    from supply_chain import scale
    from supply_chain.services import startup
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.trace import trace
    from supply_chain.store.models import Lot

    built = scale.ensure(scale.Params(size), scale.DEFAULT_CACHE, lambda m: print(m, file=sys.stderr))
    out: dict[str, Any] = {"size": size, "lots": built.info.get("lot_count"), "events": built.info.get("event_count")}
    with tempfile.TemporaryDirectory(prefix="lotline-full-run-") as work, scale.load(built, Path(work) / "home") as env:
        runtime = Runtime(Settings.from_env(env=env))
        try:
            with runtime.ctx() as ctx:

                def lot(name: str) -> Lot:
                    gtin, code = built.label(name)
                    return ctx.session.scalars(select(Lot).where(Lot.gtin == gtin, Lot.lot_code == code)).one()

                for label, name, direction in (
                    ("trace backward, typical lot", "typical", "backward"),
                    ("trace backward, lot of depth 11", "deep", "backward"),
                    ("trace forward, farm lot", "farm", "forward"),
                ):
                    target = lot(name)
                    reached = len(trace(ctx, target, direction)["lots"])  # warm
                    samples = []
                    for _ in range(runs):
                        began = time.perf_counter()
                        trace(ctx, target, direction)
                        samples.append(time.perf_counter() - began)
                    out[label] = _spread(samples) | {"lots_reached": reached}
                    print(f"{label}: {out[label]}", file=sys.stderr, flush=True)
                ids = list(ctx.session.scalars(select(Lot.id).order_by(Lot.id).limit(sample)))
            began = time.perf_counter()
            findings = startup.verify_ids(runtime, ids)  # the results with findings (tampered, unverifiable)
            seconds = time.perf_counter() - began
            with runtime.ctx() as ctx:
                states = list(ctx.session.scalars(select(Lot.verification_state).where(Lot.id.in_(ids))))
            out["verification pass"] = {
                "lots": len(ids),
                "seconds": round(seconds, 2),
                "lots_per_s": round(len(ids) / seconds, 1),
                "minutes_per_100k_lots": round(100_000 / (len(ids) / seconds) / 60, 1),
                "states": {str(s): states.count(s) for s in sorted(set(states), key=str)},
                "findings": len(findings),
            }
            print(f"verification pass: {out['verification pass']}", file=sys.stderr, flush=True)
        finally:
            runtime.close()
    out["load_average"] = _load_average()
    return out


def _spread(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "runs": len(ordered),
    }


# ------------------------------------------------------------------ the table


def _row(figures: dict[str, Any] | None, prefix: str) -> dict[str, Any] | None:
    for row in (figures or {}).get("rows", []):
        if row["name"].startswith(prefix):
            return row
    return None


def _loads(figures: dict[str, Any] | None, server: Callable[[str], bool], target: str, clients: int) -> dict | None:
    for row in (figures or {}).get("load", []):  # LoadRow.as_dict: the load generator's figures, flat
        if server(row["server"]) and row["target"].startswith(target) and row.get("clients") == clients:
            return row
    return None


def _share(row: dict[str, Any] | None) -> str:
    if row is None:
        return "not measured"
    share = "" if row.get("share_of_healthz") is None else f"{row['share_of_healthz']:.0%} of /healthz, "
    return f"{row['per_second']} req/s ({share}p95 {row['p95_ms']} ms)"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "not met")


def table(
    parts: dict[str, dict[str, Any]], scale_sizes: list[int], blocks: list[int]
) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, verdict) for every row of issue 11's table this run measured."""
    rows: list[tuple[str, str, str, str]] = []
    app = parts.get("app", {}).get("figures")
    scale_f = parts.get("scale", {}).get("figures")
    inproc = parts.get("scale-inproc", {}).get("figures")
    growth = parts.get("growth", {}).get("figures")
    capture = parts.get("capture", {}).get("figures")
    side = parts.get("write-side", {}).get("figures")

    page = _loads(app, lambda s: s == "cache on", "scan page, demo salad mix", 32)
    ok = None if page is None else (page.get("share_of_healthz") or 0) >= 0.5 and page["p95_ms"] <= 50
    rows.append(
        ("scan page of the demo salad mix, 32 clients", _share(page), ">= 50% of /healthz, p95 <= 50 ms", _verdict(ok))
    )

    if scale_sizes:
        top = max(scale_sizes)
        for db in ("SQLite", "PostgreSQL"):
            for lot, limit in (("typical transformed lot", 50), ("lot of depth", 50), ("50-ingredient lot", 100)):
                each = []  # every worker count measured: /healthz scales with workers differently from a page
                for workers in ("1 worker", "2 workers", "4 workers"):
                    found = _loads(
                        scale_f, lambda s, db=db, w=workers: s == f"{db}, {top:,} events, {w}", f"scan page, {lot}", 32
                    )
                    if found:
                        each.append((workers, found))
                ok = None
                measured = "not measured"
                if each:
                    ok = any((f.get("share_of_healthz") or 0) >= 0.5 and f["p95_ms"] <= limit for _, f in each)
                    measured = "; ".join(f"{workers}: {_share(f)}" for workers, f in each)
                shown = "lot 11 generations deep" if lot == "lot of depth" else lot  # the page's label ends in N
                rows.append(
                    (f"scan page at {top:,} events ({db}), {shown}, 32 clients", measured,
                     f">= 50% of /healthz, p95 <= {limit} ms", _verdict(ok))
                )  # fmt: skip
            low, high = min(scale_sizes), max(scale_sizes)
            one = [
                _loads(scale_f, lambda s, db=db, n=n: s == f"{db}, {n:,} events, 1 worker", "scan page, typical", 1)
                for n in (low, high)
            ]
            if all(one) and low != high:
                a, b = (r["median_ms"] for r in one)  # type: ignore[index]
                growth_x = b / a if a else float("inf")
                rows.append(
                    (f"scan page, one client, {low:,} -> {high:,} events ({db})", f"{a} -> {b} ms (x{growth_x:.2f})",
                     "<= 2x growth", _verdict(growth_x <= 2))
                )  # fmt: skip
            else:
                rows.append(
                    (
                        f"scan page, one client, growth with the store ({db})",
                        "not measured",
                        "<= 2x growth",
                        _verdict(None),
                    )
                )

    for label, key, limit in (
        ("trace backward of a typical lot", "trace backward, typical lot", 50),
        ("forward trace of the farm lot", "trace forward, farm lot", 200),
    ):
        f = (inproc or {}).get(key)
        if f:
            size = inproc["size"]
            measured = (
                f"at {size:,} events: median {f['median_ms']} ms, p95 {f['p95_ms']} ms ({f['lots_reached']} lots)"
            )
            ok = f["p95_ms"] <= limit if label.startswith("trace backward") else f["median_ms"] <= limit
            rows.append((label, measured, f"{'p95' if limit == 50 else 'median'} <= {limit} ms", _verdict(ok)))
        else:
            rows.append((label, "not measured", f"<= {limit} ms", _verdict(None)))

    verify = _row(app, "verify a lot of 1,")
    rows.append(
        ("verify a lot of 1,000 events (embedded chain)", f"{verify['median_ms']:.1f} ms" if verify else "not measured",
         "<= 100 ms", _verdict(None if verify is None else verify["median_ms"] <= 100))
    )  # fmt: skip

    sizes = {row["size"]: row for row in (growth or {}).get("sizes", [])}
    if blocks and min(blocks) in sizes and max(blocks) in sizes:
        first, last = sizes[min(blocks)]["after"], sizes[max(blocks)]["after"]
        ratio = last["write_per_s"] / first["write_per_s"]
        sides = (side or {}).get("sides") or []
        if len(sides) == 2:  # judged on the alternating measurement; the sequential one is shown beside it
            short, long_ = sides
            alternating = short["median_ms"] / long_["median_ms"]  # rate at the long chain / rate at the short one
            rows.append(
                (f"write rate as the embedded chain grows, {short['blocks']:,} -> {long_['blocks']:,} blocks",
                 f"alternating ({side['rounds']} rounds, fresh processes): {short['median_ms']} vs "
                 f"{long_['median_ms']} ms a write, the long chain at {alternating:.0%} of the short one's rate; "
                 f"sequential, sizes minutes apart: {first['write_per_s']:.2f} -> {last['write_per_s']:.2f} tx/s "
                 f"({ratio:.0%})", "within 20%", _verdict(alternating >= 0.8))
            )  # fmt: skip
        else:
            rows.append(
                (f"write rate as the embedded chain grows, {min(blocks):,} -> {max(blocks):,} blocks",
                 f"{first['write_per_s']:.2f} -> {last['write_per_s']:.2f} tx/s ({ratio:.0%}; sequential, sizes "
                 "minutes apart)", "within 20%", _verdict(ratio >= 0.8))
            )  # fmt: skip
        if "write_busy_per_s" in last:  # the growing writes' own lot: its history grew with the chain
            rows.append(
                (f"write rate on a lot whose history grew with the chain ({last['busy_lot_events']:,} events at "
                 f"{max(blocks):,} blocks)", f"{first['write_busy_per_s']:.2f} -> {last['write_busy_per_s']:.2f} tx/s "
                 f"({last['write_busy_per_s'] / first['write_busy_per_s']:.0%})", "no target of its own", "-")
            )  # fmt: skip
        start = last["runtime_s"] + last["catch_up_s"]
        rows.append(
            (f"start after {min(max(blocks) // 10, 10_000):,} blocks written outside, at {max(blocks):,} blocks",
             f"{start:.2f} s (Runtime + catch_up)", "<= 5 s", _verdict(start <= 5))
        )  # fmt: skip
    else:
        rows.append(("write rate as the embedded chain grows", "not measured", "within 20%", _verdict(None)))

    vp = (inproc or {}).get("verification pass")
    rows.append(
        ("scheduled full verification", f"{vp['lots_per_s']} lots/s = {vp['minutes_per_100k_lots']} min per 100k lots"
         f" ({vp['lots']:,} lots measured)" if vp else "not measured", "a pass over 100k lots in minutes",
         _verdict(None if vp is None else vp["minutes_per_100k_lots"] <= 10))
    )  # fmt: skip

    lot_page = _row(app, "lot page (signed in) of a lot of")
    rows.append(
        ("page of a lot with 1,000 events", f"{lot_page['median_ms']:.1f} ms" if lot_page else "not measured",
         "<= 50 ms", _verdict(None if lot_page is None else lot_page["median_ms"] <= 50))
    )  # fmt: skip

    one, hundred = _row(app, "record 1 event"), _row(app, "record 100 events")
    if one and hundred:
        x = one["median_ms"] / hundred["median_ms"]
        rows.append(
            ("100 events in one transaction vs one each", f"{x:.1f}x cheaper per event ({one['median_ms']:.1f} vs "
             f"{hundred['median_ms']:.2f} ms)", ">= 20x", _verdict(x >= 20))
        )  # fmt: skip
    readings = _row(app, "anchor ")
    if readings:
        rate = readings["per_second"] or 0
        rows.append(
            ("sensor readings, 10,000 per upload", f"{rate:,.0f} readings/s (services, in process)",
             ">= 20,000 readings/s", _verdict(rate >= 20_000))
        )  # fmt: skip
    if capture:
        whole = capture.get("status") == "done" and capture.get("events_written") == capture.get("events")
        total = round((capture.get("submit_seconds") or 0) + capture.get("run_seconds", 1e9), 1)
        rows.append(
            (f"EPCIS capture of {capture.get('events'):,} events", f"{total} s ({capture.get('submit_seconds')} s "
             f"checked at submission + {capture.get('run_seconds')} s written, {capture.get('chain', 'embedded')}), "
             f"{'whole' if whole else 'NOT whole: ' + str(capture.get('status'))}", "<= 60 s, whole",
             _verdict(whole and total <= 60))
        )  # fmt: skip
    else:
        rows.append(("EPCIS capture of 10,000 events", "not measured", "<= 60 s, whole", _verdict(None)))
    return rows


def markdown(record: dict[str, Any]) -> str:
    lines = [
        START,
        (
            f"## Full run ({record['started'][:10]}): issue 11's table in one run"
            if len(record.get("sittings") or []) < 2
            else f"## Full run ({record['started'][:10]}): issue 11's table, every part, in "
            f"{len(record['sittings'])} sittings"
        )
        if set(record["parts"]) == set(PARTS)
        else f"## Full run ({record['started'][:10]}), in part: only {', '.join(record['parts'])} were run",
        "",
        f"`scripts/bench_full.py {record['args']}`, {record['started']} to {record['ended']} UTC; "
        f"{record['machine']}; load average {record['load_average_start']} at the start, "
        f"{record['load_average_end']} at the end. Each part ran alone, one after the other (the part table says when "
        "and on which commit). Figures from "
        "a shared machine: compare within a row. The parts' own tables and JSON are in the run's work folder.",
        "",
        "| what | measured in this run | target | |",
        "|---|---|---|---|",
    ]
    for what, measured, target, verdict in record["table"]:
        lines.append(f"| {what} | {measured} | {target} | {verdict} |")
    lines += [
        "",
        "| part | command | started (UTC), commit | seconds | exit | load average (start, end) |",
        "|---|---|---|---:|---|---|",
    ]
    for name, part in record["parts"].items():
        command = re.sub(r"\S*/(scripts/\S+)", r"\1", part["command"])  # whichever checkout ran it
        command = re.sub(r"\S*/python3?(?=\s)", "python", command)
        command = re.sub(r"postgresql(\+\w+)?://\S+", "URL", command)
        lines.append(
            f"| {name} | `{command}` | {part.get('started', '?')}, {part.get('commit', '?')} | {part['seconds']} | "
            f"{part['exit']} | "
            f"{part['load_average_start']}; {part['load_average_end']} |"
        )
    lines.append(END)
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="PostgreSQL URL for the workers and scale parts (a throw-away schema)")
    parser.add_argument("--scale", default="20000,100000", help="data set sizes in events (1000000 for 1M)")
    parser.add_argument("--blocks", default="1000,10000,100000", help="embedded chain lengths for the growth part")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which parts, of {','.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="shorter loads and fewer repeats (a smoke run)")
    parser.add_argument("--work", type=Path, help="folder for the parts' JSON and logs (default: a new one)")
    parser.add_argument("--write", type=Path, help="put the table into this markdown file (its Full run section)")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds allowed per part")
    parser.add_argument(
        "--settle", type=float, default=1800.0,
        help="seconds the scale part waits for each server's start-up verification pass (lotline bench --settle)",
    )  # fmt: skip
    parser.add_argument(
        "--keep", action="store_true",
        help="keep the parts already recorded in WORK/full-run.json that this run does not run, so one table can be "
             "made of parts run at different times (each part keeps its own times and load average)",
    )  # fmt: skip
    parser.add_argument("--inproc", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inproc:
        figures = scale_inproc(args.inproc, sample=500 if args.quick else 5_000, runs=5 if args.quick else 21)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return 0

    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown part(s) {', '.join(unknown)}; the parts are {', '.join(PARTS)}")
    try:
        sizes = [int(s.replace("_", "")) for s in args.scale.split(",") if s]
        blocks = [int(s.replace("_", "")) for s in args.blocks.split(",") if s]
    except ValueError:
        parser.error("--scale and --blocks are comma-separated whole numbers, e.g. 20000,100000")
    if {"workers", "scale"} & set(parts) and not args.postgres:
        print("no --postgres: the workers and scale parts measure SQLite only", file=sys.stderr)
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / f"lotline-full-run-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    kept: dict[str, Any] = {}
    earlier_sittings: list[str] = []
    earlier_load: str | None = None
    if args.keep and (work / "full-run.json").exists():
        earlier = json.loads((work / "full-run.json").read_text())
        earlier_sittings = earlier.get("sittings") or [earlier.get("args", "")]
        earlier_load = earlier.get("load_average_start")
        kept = {name: part for name, part in earlier.get("parts", {}).items() if name not in parts}
        started = min(earlier.get("started", started), started)
        sizes = sizes if "scale" in parts else earlier.get("sizes", [])
        blocks = blocks if "growth" in parts else earlier.get("blocks", [])
    py = sys.executable
    quick = ["--quick"] if args.quick else []
    postgres = ["--postgres", args.postgres] if args.postgres else []
    commands = {
        "app": [py, "-m", "supply_chain.cli", "bench", *quick, "--json", str(work / "app.json")],
        "workers": [py, "-m", "supply_chain.cli", "bench", *quick, "--workers", "1,2,4", *postgres,
                    "--json", str(work / "workers.json")],
        "scale": [py, "-m", "supply_chain.cli", "bench", *quick, "--scale", ",".join(map(str, sizes)), "--workers",
                  "1,2,4", *postgres, "--settle", str(args.settle), "--json", str(work / "scale.json")],
        "scale-inproc": [py, str(Path(__file__).resolve()), *quick, "--inproc", str(max(sizes)), "--json",
                         str(work / "scale-inproc.json")],
        "growth": [py, str(REPO / "scripts" / "chain_growth_bench.py"), "--sizes", ",".join(map(str, blocks)),
                   "--before", "", "--writes", "5" if args.quick else "15", "--runs", "1" if args.quick else "3",
                   "--work", str(work / "growth"), "--json", str(work / "growth.json")],
        "write-side": [py, str(REPO / "scripts" / "write_side_by_side.py"),
                       str(work / "growth" / f"grown-{blocks[0] if blocks else 1000}"), str(work / "growth" / "grown"),
                       "--writes", "5" if args.quick else "15", "--rounds", "2" if args.quick else "4",
                       "--json", str(work / "write-side.json")],
        "capture": [py, str(REPO / "scripts" / "capture_job_bench.py"), "--events", "1000" if args.quick else "10000",
                    "--anvil", "--json", str(work / "capture.json")],
    }  # fmt: skip
    args_shown = " ".join(a if not a.startswith("postgresql") else "URL" for a in (argv or sys.argv[1:]))
    sittings = ([*earlier_sittings, args_shown] if parts else earlier_sittings) or [args_shown]
    record: dict[str, Any] = {
        "args": "`; `scripts/bench_full.py ".join(sittings),
        "sittings": sittings,
        "started": started,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_start": earlier_load or _load_average(),
        "parts": {},
    }
    for name in PARTS:
        if name in parts:
            record["parts"][name] = _run_part(name, commands[name], work, args.timeout)
        elif name in kept:
            record["parts"][name] = kept[name]
    record["kept"] = [name for name in record["parts"] if name in kept]
    ran = set(record["parts"])
    record["sizes"] = sizes if "scale" in ran else []
    record["blocks"] = blocks if "growth" in ran else []
    record["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
    record["load_average_end"] = _load_average()
    record["table"] = table(record["parts"], record["sizes"], record["blocks"])
    (work / "full-run.json").write_text(json.dumps(record, indent=2, default=str))
    section = markdown(record)
    (work / "full-run.md").write_text(section + "\n")
    print(section)
    if args.write:
        write_section(args.write, section)
        print(f"wrote the Full run section of {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
