"""Measure a bulk import of a CSV file on a fresh embedded instance (docs/import.md, docs/benchmarks.md).

    PYTHONPATH=. python scripts/import_bench.py --rows 5000 [--json out.json]

A farm imports ``--rows`` rows: per lot harvesting, cooling, initial packing (on the harvested lot) and shipping
to a processor, so every fourth row creates a lot and the others build on it. Measured: reading the file, the
dry run (every row planned and rehearsed, nothing written), the import's submission (checked again) and its
run (batches written through the services, one multicall transaction each), then every lot verified against
the chain. Nothing here is a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.services import fsma, imports, orgs
from supply_chain.services.epcis import jobs
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot

HEADERS = dict(fsma.COLUMNS)


def _with_check(body: str) -> str:
    return body + str(gs1_check_digit(body))


def rows_for(lots: int, gtin: str, farm_gln: str, to_gln: str, stem: str = "B") -> list[dict[str, str]]:
    """Four CTE rows per lot: harvesting, cooling, initial packing, shipping (in that order, lot by lot)."""
    rows = []
    for i in range(lots):
        code = f"{stem}-{i:06d}"
        base = {"traceability_lot_code": code, "gtin": gtin}
        rows += [
            base
            | {
                "cte": "Harvesting",
                "date": "2026-11-01",
                "quantity": "120",
                "unit": "kg",
                "location_gln": farm_gln,
                "commodity": "romaine lettuce",
                "field_name": f"Block {i % 40}",
            },
            base | {"cte": "Cooling", "date": "2026-11-01", "location_gln": farm_gln},
            base | {"cte": "Initial packing", "date": "2026-11-02", "location_gln": farm_gln},
            base
            | {
                "cte": "Shipping",
                "date": "2026-11-03",
                "ship_from_gln": farm_gln,
                "ship_to_gln": to_gln,
                "reference_document_type": "BOL",
                "reference_document_number": f"BOL-{i:06d}",
            },
        ]
    return rows


def to_csv(rows: list[dict[str, str]]) -> bytes:
    keys = [k for k, _ in fsma.COLUMNS if any(k in r for r in rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([HEADERS[k] for k in keys])
    for row in rows:
        writer.writerow([row.get(k, "") for k in keys])
    return ("\ufeff" + buffer.getvalue()).encode()


def run(rows: int, progress: Any = print) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="lotline-import-bench-"))
    runtime = Runtime(Settings.from_env(env={}, home=home, secret_key="bench-secret", public_url="https://b.test"))
    try:
        catch_up(runtime)
        with runtime.ctx() as ctx:
            regulator = orgs.onboard(ctx, None, "Bench Regulator", ["regulator", "admin"])
            farm = orgs.onboard(ctx, regulator, "Bench Farm", ["producer"], "0790001")
            packer = orgs.onboard(ctx, regulator, "Bench Packer", ["processor"], "0790002")
            farm_gln, packer_gln = _with_check("079000100001"), _with_check("079000200001")
            orgs.register_location(ctx, farm, farm_gln, "Bench field", "1 Bench Road", None, None, "farm")
            orgs.register_location(ctx, packer, packer_gln, "Bench shed", "2 Bench Road", None, None, "other")
            gtin = orgs.register_product(ctx, farm, _with_check("0079000100001"), "Bench greens", "test", True).gtin
            ctx.session.commit()
            farm_id = farm.id
        data = to_csv(rows_for(rows // 4, gtin, farm_gln, packer_gln))
        started = time.perf_counter()
        document = imports.read_file(data, "bench.csv")
        read_s = time.perf_counter() - started
        with runtime.ctx() as ctx:
            org = ctx.session.get(type(farm), farm_id)
            started = time.perf_counter()
            plan = imports.plan_import(ctx, org, document)
            dry_s = time.perf_counter() - started
            ctx.session.rollback()
        progress(f"{len(document['rows'])} rows read in {read_s:.1f} s, dry run {dry_s:.1f} s ({plan.calls} writes)")
        started = time.perf_counter()
        with runtime.ctx() as ctx:
            job, _ = jobs.submit(ctx, ctx.session.get(type(farm), farm_id), document, source="import", inline_calls=0)
            job_id = job.id
        submit_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = jobs.run_pending(runtime)
        run_s = time.perf_counter() - started
        progress(f"import: submitted in {submit_s:.1f} s, written in {run_s:.1f} s: {outcome}")
        started = time.perf_counter()
        with runtime.ctx() as ctx:
            stored = list(ctx.session.scalars(select(Lot).where(Lot.gtin == gtin)))
            states = [verify_lot(ctx, lot, save=False).state for lot in stored]
            confirmed = ctx.session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.status == "confirmed", Event.actor_org_id == farm_id)
            )
        verify_s = time.perf_counter() - started
        events = len(document["rows"])
        return {
            "chain": "embedded",
            "rows": events,
            "status": outcome.get(job_id),
            "read_seconds": round(read_s, 2),
            "dry_run_seconds": round(dry_s, 1),
            "submit_seconds": round(submit_s, 1),
            "run_seconds": round(run_s, 1),
            "events_per_second_run": round(events / run_s, 1),
            "events_per_second_end_to_end": round(events / (read_s + dry_s + submit_s + run_s), 1),
            "lots": len(stored),
            "confirmed_events": confirmed,
            "verified_lots": states.count("verified"),
            "verify_seconds": round(verify_s, 1),
        }
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.rows, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["status"] == "done" and result["confirmed_events"] == result["rows"] == args.rows
    sys.exit(0 if ok and result["verified_lots"] == result["lots"] else 1)


if __name__ == "__main__":
    main()
