"""Measure a large EPCIS capture job on a fresh embedded instance (docs/reliability.md, "Large EPCIS captures").

    PYTHONPATH=. python scripts/capture_job_bench.py --events 10000 [--anvil] [--batch-calls 40] [--json out.json]

A producer commissions ``--events`` new lots in one document. Measured: the synchronous check at submission
(schema, plan, rehearsal: the write lock is held), the job's run (batches, the longest batch), and, while the
job runs, how long a concurrent writer waits for the database (a thread opening a write transaction every
0.2 s, as an API request does). Finally every lot is counted and the job's report compared with the store.
With ``--anvil`` the chain is a fresh anvil node (JSON-RPC) instead of the embedded one.
Nothing here is a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from supply_chain.bench import commissioning_document
from supply_chain.chain.devnode import start_anvil
from supply_chain.chain.devnode import stop as stop_node
from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.services import orgs
from supply_chain.services.epcis import jobs
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up
from supply_chain.store.models import CaptureJob, Event, Lot, Organisation


def _with_check(body: str) -> str:
    return body + str(gs1_check_digit(body))


@dataclass
class Producer:
    """What ``producer_instance`` yields: the instance, its producer, the product's GTIN, the field's GLN."""

    runtime: Runtime
    farm: Organisation
    gtin: str
    gln: str


@contextmanager
def producer_instance(anvil: bool = False, prefix: str = "lotline-capture-bench-") -> Iterator[Producer]:
    """A fresh instance (embedded chain, or with ``anvil`` a fresh anvil node) with one producer, its field and
    its product; closed and its node stopped on exit."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    node = None
    chain_url = None
    if anvil:
        chain_url, node = start_anvil(home / "anvil.log")
    settings = Settings.from_env(
        env={}, home=home, secret_key="bench-secret", public_url="https://bench.test", chain_url=chain_url
    )
    runtime = Runtime(settings)
    try:
        if anvil:
            with runtime.ctx() as ctx:
                orgs.deploy(ctx)
        catch_up(runtime)
        with runtime.ctx() as ctx:
            regulator = orgs.onboard(ctx, None, "Bench Regulator", ["regulator", "admin"])
            farm = orgs.onboard(ctx, regulator, "Bench Farm", ["producer"], "0790001")
            gln = _with_check("079000100001")
            orgs.register_location(ctx, farm, gln, "Bench field", "1 Bench Road", None, None, "farm")
            gtin = orgs.register_product(ctx, farm, _with_check("0079000100001"), "Bench greens", "test", True).gtin
        yield Producer(runtime, farm, gtin, gln)
    finally:
        runtime.close()
        if node is not None:
            stop_node(node)


def run(events: int, batch_calls: int, progress: Any = print, anvil: bool = False) -> dict[str, Any]:
    with producer_instance(anvil) as made:
        runtime, farm, gtin, gln = made.runtime, made.farm, made.gtin, made.gln
        document = commissioning_document(
            gtin, gln, events, name="urn:lotline:bench", lot="BENCH-{:06d}", day="2025-06-01"
        )

        started = time.perf_counter()
        with runtime.ctx() as ctx:
            job, _ = jobs.submit(ctx, ctx.session.merge(farm), document, inline_calls=0)
            job_id = job.id
        submit_s = time.perf_counter() - started
        progress(f"submitted {events} events: checked and planned in {submit_s:.1f} s (job {job_id})")

        waits: list[float] = []
        stop = threading.Event()

        def other_writer() -> None:
            while not stop.wait(0.2):
                begun = time.perf_counter()
                with runtime.ctx() as ctx:
                    ctx.session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: waits for the write lock
                waits.append(time.perf_counter() - begun)

        batch_times: list[float] = []
        last = [time.perf_counter()]

        def after_batch(done: int) -> None:
            now = time.perf_counter()
            batch_times.append(now - last[0])
            last[0] = now
            if done % 25 == 0:
                progress(f"  {done} batches")

        probe = threading.Thread(target=other_writer, daemon=True)
        probe.start()
        started = time.perf_counter()
        last[0] = started
        outcome = jobs.run_pending(runtime, batch_calls=batch_calls, after_batch=after_batch)
        run_s = time.perf_counter() - started
        stop.set()
        probe.join()

        with runtime.ctx() as ctx:
            job = ctx.session.get(CaptureJob, job_id)
            lots = ctx.session.scalar(select(func.count()).select_from(Lot).where(Lot.gtin == gtin))
            confirmed = ctx.session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.status == "confirmed", Event.actor_org_id == farm.id)
            )
            result = {
                "chain": "anvil" if anvil else "embedded",
                "events": events,
                "batch_calls": batch_calls,
                "status": outcome.get(job_id),
                "submit_seconds": round(submit_s, 1),
                "run_seconds": round(run_s, 1),
                "events_per_second": round(events / run_s, 1),
                "batches": job.batches_done,
                "batch_seconds_median": round(statistics.median(batch_times), 2) if batch_times else None,
                "batch_seconds_max": round(max(batch_times), 2) if batch_times else None,
                "other_writer_wait_median_ms": round(statistics.median(waits) * 1000, 1) if waits else None,
                "other_writer_wait_max_ms": round(max(waits) * 1000, 1) if waits else None,
                "other_writer_requests": len(waits),
                "events_written": job.events_written,
                "lots_stored": lots,
                "confirmed_events": confirmed,
            }
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batch-calls", type=int, default=jobs.BATCH_CALLS)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--anvil", action="store_true", help="a fresh anvil node instead of the embedded chain")
    args = parser.parse_args()
    result = run(
        args.events, args.batch_calls, progress=lambda m: print(m, file=sys.stderr, flush=True), anvil=args.anvil
    )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["status"] == "done" and result["lots_stored"] == result["events_written"] == args.events
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
