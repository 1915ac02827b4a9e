"""`lotline bench`: measured medians for the hot paths, side by side in one run, on a throw-away instance.

Rows: a single event per transaction, 100 events in one transaction (per event), verifying a lot, a
backward and a forward trace, and the consumer page (HTML, served by the Flask app in process). Every row
is the median of repeated runs; the machine is shared and noisy, so compare ratios within one run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    per: int = 1

    @property
    def median(self) -> float:
        return statistics.median(self.samples) / self.per

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "median_ms": round(self.median * 1000, 3),
            "per_second": round(1 / self.median, 1) if self.median else None,
            "runs": len(self.samples),
        }


@dataclass
class Results:
    rows: list[Row]
    meta: dict[str, Any]

    def markdown(self) -> str:
        lines = [
            f"Lotline benchmark — {self.meta['when']} — chain: {self.meta['chain']}, db: {self.meta['db']}",
            "",
            "| what | median | per second | runs |",
            "|---|---:|---:|---:|",
        ]
        for row in self.rows:
            d = row.as_dict()
            lines.append(f"| {row.name} | {d['median_ms']:.2f} ms {row.unit} | {d['per_second']} | {d['runs']} |")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "rows": [r.as_dict() for r in self.rows]}


def _time(fn: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def run(quick: bool = False, progress: Callable[[str], None] = lambda _m: None) -> Results:
    import platform
    from datetime import UTC, datetime

    from app import create_app
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.demo import seed
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.trace import trace
    from supply_chain.services.verify import verify_lot

    runs = 5 if quick else 30
    home = Path(tempfile.mkdtemp(prefix="lotline-bench-"))
    settings = Settings.from_env(env={}, home=home)
    runtime = Runtime(settings)
    rows: list[Row] = []
    try:
        progress("seeding the demo scenario")
        orgs_by_key = seed(runtime)
        packer_id = orgs_by_key["packer"].id
        with runtime.ctx() as ctx:
            from supply_chain.store.models import Organisation

            packer = ctx.session.get(Organisation, packer_id)
            lot = lots.get_lot(ctx, "00614141000012", "GV-ROM-2611C")
            # the held lot stays with the packer, who may still record events on it
            site = packer.locations[0].gln
            payload = {"note": "bench", "date": "2026-11-26", "location_gln": site}

            progress("single events, one transaction each")
            rows.append(
                Row(
                    "record 1 event (1 transaction)",
                    "per event",
                    _time(lambda: lots.record_event(ctx, packer, lot, EventKind.OBSERVATION, payload), runs),
                )
            )
            progress("100 events in one transaction")
            batch = [(EventKind.OBSERVATION, payload)] * 100
            rows.append(
                Row(
                    "record 100 events (1 transaction)",
                    "per event",
                    _time(lambda: lots.record_events(ctx, packer, lot, batch), max(3, runs // 5)),
                    per=100,
                )
            )
            mix = lots.get_lot(ctx, "00614144000033", "FC-MIX-001")
            farm = lots.get_lot(ctx, "00614141000012", "GV-ROM-2611A")
            progress("verification and trace")
            rows.append(
                Row(
                    "verify a lot (6 events, reads the chain)",
                    "per lot",
                    _time(lambda: verify_lot(ctx, mix, save=False), runs),
                )
            )
            rows.append(
                Row(
                    "trace backward (salad mix -> farms)", "per trace", _time(lambda: trace(ctx, mix, "backward"), runs)
                )
            )
            rows.append(
                Row("trace forward (farm -> shops)", "per trace", _time(lambda: trace(ctx, farm, "forward"), runs))
            )
        progress("consumer page")
        app = create_app({"TESTING": True, "RUNTIME": runtime})
        client = app.test_client()
        url = "/01/00614144000033/10/FC-MIX-001"
        assert client.get(url).status_code == 200
        rows.append(
            Row("consumer page HTML (reads the index)", "per request", _time(lambda: client.get(url), runs * 2))
        )
        rows.append(
            Row(
                "consumer page JSON",
                "per request",
                _time(lambda: client.get(url, headers={"Accept": "application/json"}), runs * 2),
            )
        )
    finally:
        runtime.close()
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": settings.chain_mode,
        "db": settings.database_url.split(":")[0],
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "quick": quick,
    }
    return Results(rows, meta)
