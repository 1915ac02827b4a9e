"""Measure a 10,000-reading upload through the API and the verification of a 1,000-event lot (issue 11).

    PYTHONPATH=. python scripts/readings_bench.py [--readings 10000] [--runs 3] [--events 1000]
        [--profile readings|verify] [--json out.json]

A fresh embedded instance: one producer with a write token and one lot. The sensor row posts ``--readings``
readings (one a second, temperatures with one decimal, every other one with a humidity) to
``POST /api/v1/lots/{gtin}/{lot}/readings`` through Flask's test client, ``--runs`` times on the same lot, and
reports the median (readings per second). The verify row tops the lot up to ``--events`` events (100 per
transaction) and times ``verify_lot`` on it (median of ``--runs`` + 2 after the first; then once more with
the process's memo of data hashes emptied, as after a start). With ``--profile`` one more run of the row
named goes under cProfile and the top of its profile is printed. Nothing here is a test: the numbers
depend on the machine.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots, orgs, tokens
from supply_chain.services import verify as verify_module
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up
from supply_chain.services.verify import verify_lot


def _with_check(body: str) -> str:
    return body + str(gs1_check_digit(body))


def _readings(first: datetime, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(count):
        reading: dict[str, Any] = {
            "taken_at": (first + timedelta(seconds=i)).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "temperature_c": f"{2 + (i % 40) / 10:.1f}",
        }
        if i % 2:
            reading["humidity"] = 80 + i % 15
        out.append(reading)
    return out


def _profiled(fn: Any) -> None:
    profile = cProfile.Profile()
    profile.enable()
    fn()
    profile.disable()
    pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(70)
    pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(30)


def run(readings: int, runs: int, events: int, profile: str | None, progress: Any = print) -> dict[str, Any]:
    from app import create_app

    home = Path(tempfile.mkdtemp(prefix="lotline-readings-bench-"))
    settings = Settings.from_env(env={}, home=home, secret_key="bench-secret", public_url="https://bench.test")
    runtime = Runtime(settings)
    out: dict[str, Any] = {"readings": readings, "events": events}
    try:
        catch_up(runtime)
        with runtime.ctx() as ctx:
            regulator = orgs.onboard(ctx, None, "Bench Regulator", ["regulator", "admin"])
            farm = orgs.onboard(ctx, regulator, "Bench Farm", ["producer"], "0790001")
            gln = _with_check("079000100001")
            orgs.register_location(ctx, farm, gln, "Bench field", "1 Bench Road", None, None, "farm")
            gtin = orgs.register_product(ctx, farm, _with_check("0079000100001"), "Bench greens", "test", True).gtin
            _, token = tokens.create(ctx, farm, "bench write", "write")
            farm_id = farm.id
            ctx.session.commit()
        app = create_app({"RUNTIME": runtime, "TESTING": True})
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        made = client.post(
            "/api/v1/lots",
            headers=headers,
            json={
                "gtin": gtin,
                "lot_code": "BENCH-1",
                "kind": "harvesting",
                "quantity": "100",
                "unit": "kg",
                "payload": {"location_gln": gln, "harvest_date": "2025-05-01", "commodity": "romaine lettuce"},
            },
        )
        assert made.status_code == 201, made.get_json()
        path = f"/api/v1/lots/{gtin}/BENCH-1/readings"
        start = datetime.now(UTC) - timedelta(days=5)
        calls = [0]

        bodies = [
            json.dumps(
                {"sensor_id": "BENCH-LOGGER", "readings": _readings(start + timedelta(seconds=n * readings), readings)}
            )
            for n in range(runs + 1)
        ]

        def upload() -> None:
            body = bodies[calls[0]]
            calls[0] += 1
            response = client.post(path, headers=headers, data=body, content_type="application/json")
            assert response.status_code == 201, response.get_json()

        samples = []
        for n in range(runs):
            began = time.perf_counter()
            upload()
            samples.append(time.perf_counter() - began)
            progress(f"upload {n + 1}: {samples[-1]:.2f} s")
        out["upload_s"] = samples
        out["upload_median_s"] = statistics.median(samples)
        out["readings_per_s"] = readings / out["upload_median_s"]
        progress(f"{readings:,} readings: median {out['upload_median_s']:.2f} s, {out['readings_per_s']:,.0f}/s")
        if profile == "readings":
            _profiled(upload)

        with runtime.ctx() as ctx:
            from supply_chain.store.models import Lot, Organisation

            farm = ctx.session.get(Organisation, farm_id)
            lot = lots.get_lot(ctx, gtin, "BENCH-1")
            batch = [(EventKind.OBSERVATION, {"note": "bench", "date": "2026-11-26", "location_gln": gln})] * 100
            while len(lot.events) < events:
                lots.record_events(ctx, farm, lot, batch[: min(100, events - len(lot.events))])
            ctx.session.commit()
            lot_id = lot.id
        with runtime.ctx() as ctx:
            lot = ctx.session.get(Lot, lot_id)
            count = len(lot.events)
            verify_samples = []
            for _ in range(runs + 2):
                began = time.perf_counter()
                result = verify_lot(ctx, lot, save=False)
                verify_samples.append(time.perf_counter() - began)
                assert result.state == "verified", result.detail
            # a process that has not verified these events yet (after a start): the memo of data hashes emptied
            verify_module._RECOMPUTED.clear()
            began = time.perf_counter()
            assert verify_lot(ctx, lot, save=False).state == "verified"
            out["verify_cold_s"] = time.perf_counter() - began
            if profile == "verify":
                _profiled(lambda: verify_lot(ctx, lot, save=False))
        out["verify_events"] = count
        out["verify_first_s"] = verify_samples[0]
        out["verify_s"] = verify_samples[1:]
        out["verify_median_s"] = statistics.median(verify_samples[1:])
        progress(
            f"verify a lot of {count:,} events: first {verify_samples[0] * 1000:.0f} ms, "
            f"then median {out['verify_median_s'] * 1000:.0f} ms; with no memo {out['verify_cold_s'] * 1000:.0f} ms"
        )
    finally:
        runtime.close()
    out["load_average"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=1_000)
    parser.add_argument("--profile", choices=("readings", "verify"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.readings, args.runs, args.events, args.profile)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
