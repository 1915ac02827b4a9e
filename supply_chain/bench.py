"""`lotline bench`: measured medians for the hot paths, side by side in one run, on a throw-away instance.

Rows: a single event per transaction, 100 events in one transaction (per event), 10,000 sensor readings in one
upload (per reading), verifying a lot of 6 and of 1,000 events, a backward and a forward trace, an EPCIS capture
job of 400 events (per event), and the consumer page (HTML and JSON, built each time and from the scan page cache,
served by the Flask app in process). Every row is the median of repeated runs; the machine is shared and noisy,
so compare ratios within one run.

Then the load figures (``load``): `lotline serve` started on the same instance, once with the scan page cache
off (``LOTLINE_SCAN_PAGE_CACHE=0``, the page built on every request as before the cache) and once with it on;
against each, 32 clients from another process (``supply_chain.loadgen``) load ``/healthz``, the scan page of
the demo salad mix and of a lot made from 50 ingredient lots (built here through the services), one after the
other. Each page's rate is also given as a share of ``/healthz`` on the same server in the same run.

``run_workers`` (``lotline bench --workers 1,2,4``): the same load figures, cache on, against `lotline serve
--workers N` for each N on PostgreSQL and anvil, the machine's load average noted before and after.
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
class LoadRow:
    server: str
    target: str
    figures: dict[str, Any]
    healthz_per_second: float | None = None

    @property
    def share(self) -> float | None:
        if not self.healthz_per_second:
            return None
        return self.figures["per_second"] / self.healthz_per_second

    def as_dict(self) -> dict[str, Any]:
        share = self.share
        return {"server": self.server, "target": self.target, "share_of_healthz": share and round(share, 3)} | (
            self.figures
        )


@dataclass
class Results:
    rows: list[Row]
    meta: dict[str, Any]
    load: list[LoadRow] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"Lotline benchmark — {self.meta['when']} — chain: {self.meta['chain']}, db: {self.meta['db']}",
        ]
        if "load_average" in self.meta:
            lines.append(f"load average (1, 5, 15 min) {self.meta['load_average']}, {self.meta['machine']}")
        for size, build in self.meta.get("builds", {}).items():
            lines.append(f"data set of {size} events: " + ", ".join(f"{k} {v}" for k, v in build.items()))
        if self.rows:
            lines += ["", "| what | median | per second | runs |", "|---|---:|---:|---:|"]
        for row in self.rows:
            d = row.as_dict()
            lines.append(f"| {row.name} | {d['median_ms']:.2f} ms {row.unit} | {d['per_second']} | {d['runs']} |")
        if self.load:
            lines += [
                "",
                "Load: clients from another process against `lotline serve`, "
                f"{self.load[0].figures['seconds']:g} s each",
                "",
                "| server | what | clients | requests/s | share of /healthz | median | p95 | answers |",
                "|---|---|---:|---:|---:|---:|---:|---|",
            ]
            for load in self.load:
                f = load.figures
                share = "" if load.share is None else f"{load.share:.0%}"
                answers = ", ".join(f"{n}× {code}" for code, n in f["statuses"].items())
                lines.append(
                    f"| {load.server} | {load.target} | {f['clients']} | {f['per_second']} | {share} "
                    f"| {f['median_ms']} ms "
                    f"| {f['p95_ms']} ms | {answers} |"
                )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "rows": [r.as_dict() for r in self.rows], "load": [r.as_dict() for r in self.load]}


def _time(fn: Callable[[], Any], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def run(quick: bool = False, progress: Callable[[str], None] = lambda _m: None, load: bool = True) -> Results:
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
            progress(f"{READINGS:,} sensor readings in one upload")
            rows.append(
                Row(
                    f"anchor {READINGS:,} sensor readings (1 transaction)",
                    "per reading",
                    _time(_readings(ctx, packer, lot), 3),
                    per=READINGS,
                )
            )
            while len(lot.events) < LONG_LOT:
                lots.record_events(ctx, packer, lot, batch)
            ctx.session.commit()
            long_lot = (lot.id, len(lot.events))
            progress(f"verifying a lot of {len(lot.events):,} events")
            rows.append(
                Row(
                    f"verify a lot of {len(lot.events):,} events (reads the chain)",
                    "per lot",
                    _time(lambda: verify_lot(ctx, lot, save=False), max(3, runs // 3)),
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
            progress(f"a lot made from {INGREDIENTS} ingredient lots")
            wide = _wide_lot(ctx, orgs_by_key)
            progress(f"an EPCIS capture job of {CAPTURE_EVENTS} events")
            rows.append(
                Row(
                    f"EPCIS capture job, {CAPTURE_EVENTS} new lots (batches of 40 calls)",
                    "per event",
                    [_capture_job(runtime, orgs_by_key)],
                    per=CAPTURE_EVENTS,
                )
            )
        progress("consumer page")
        from app.public.page_cache import PageCache

        app = create_app({"TESTING": True, "RUNTIME": runtime})
        client = app.test_client()
        url = "/01/00614144000033/10/FC-MIX-001"
        wide_url = f"/01/{wide[0]}/10/{wide[1]}"
        as_json = {"Accept": "application/json"}
        for cached in (False, True):
            app.extensions["scan_page_cache"] = PageCache(512 if cached else 0)
            how = "from the cache" if cached else "built each time"
            assert client.get(url).status_code == client.get(wide_url).status_code == 200
            rows.append(Row(f"consumer page HTML, {how}", "per request", _time(lambda: client.get(url), runs * 2)))
            rows.append(
                Row(f"consumer page JSON, {how}", "per request", _time(lambda: client.get(url, headers=as_json), runs))
            )
            rows.append(
                Row(
                    f"consumer page HTML of the {INGREDIENTS}-ingredient lot, {how}",
                    "per request",
                    _time(lambda: client.get(wide_url), runs),
                )
            )
        progress(f"the lot page of a lot of {long_lot[1]:,} events")
        packer_client = _signed_in(app.test_client(), "packer@demo.lotline")
        long_page = f"/lots/{long_lot[0]}"
        assert packer_client.get(long_page).status_code == 200
        rows.append(
            Row(
                f"lot page (signed in) of a lot of {long_lot[1]:,} events, its latest steps",
                "per request",
                _time(lambda: packer_client.get(long_page), runs),
            )
        )
    finally:
        runtime.close()
    load_rows: list[LoadRow] = []
    if load:
        pages = {
            "scan page, demo salad mix": url,
            f"scan page, {INGREDIENTS}-ingredient lot": wide_url,
        }
        load_rows = _load(home, pages, seconds=3.0 if quick else 10.0, progress=progress)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": settings.chain_mode,
        "db": settings.database_url.split(":")[0],
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "quick": quick,
    }
    return Results(rows, meta, load_rows)


def _signed_in(client: Any, email: str) -> Any:
    """``client`` signed in as the demo user ``email``."""
    import re

    from supply_chain.services.demo import DEMO_PASSWORD

    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, "no sign-in form"
    answer = client.post("/login", data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token.group(1)})
    assert answer.status_code == 302, answer.status_code
    return client


INGREDIENTS = 50
LOAD_CLIENTS = 32
READINGS = 10_000
"""Readings per upload in the sensor row (issue 11's "10,000 per upload")."""
LONG_LOT = 1_000
"""Events of the lot whose verification is timed (issue 11's "1,000-event lot")."""
CAPTURE_EVENTS = 400
"""Events of the timed capture job (10 batches of 40 calls)."""


def _readings(ctx: Any, org: Any, lot: Any) -> Callable[[], Any]:
    """Each call anchors ``READINGS`` new readings (one a second, after the previous call's) on ``lot``."""
    from datetime import UTC, datetime, timedelta

    from supply_chain.services import lots

    start = datetime.now(UTC) - timedelta(days=2)
    calls = [0]

    def upload() -> Any:
        first = start + timedelta(seconds=calls[0] * READINGS)
        calls[0] += 1
        readings = [
            {
                "taken_at": (first + timedelta(seconds=i)).isoformat(timespec="seconds"),
                "temperature_c": f"{2 + (i % 40) / 10:.1f}",
            }
            for i in range(READINGS)
        ]
        return lots.anchor_readings(ctx, org, lot, readings, sensor_id="BENCH-LOGGER")

    return upload


def commissioning_document(gtin: str, gln: str, count: int, *, name: str, lot: str, day: str) -> dict[str, Any]:
    """An EPCIS 2.0 document of ``count`` ObjectEvents commissioning new lots of ``gtin`` at ``gln`` (event IDs
    ``{name}:{i}``, lot codes ``lot.format(i)``), the shape the capture benchmarks write."""
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": f"{day}T12:00:00Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventID": f"{name}:{i}",
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "eventTime": f"{day}T08:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "readPoint": {"id": f"https://id.gs1.org/414/{gln}"},
                    "quantityList": [
                        {"epcClass": f"https://id.gs1.org/01/{gtin}/10/{lot.format(i)}", "quantity": 10, "uom": "KGM"}
                    ],
                }
                for i in range(count)
            ]
        },
    }


def _capture_job(runtime: Any, o: dict[str, Any]) -> float:
    """Seconds to write a queued EPCIS capture job commissioning ``CAPTURE_EVENTS`` new lots of the demo farm
    (the job's run only: batches, transactions, receipts, re-verification; its check at submission is not
    counted)."""
    from supply_chain.services.epcis import jobs
    from supply_chain.store.models import Organisation

    with runtime.ctx() as ctx:
        farm = ctx.session.get(Organisation, o["farm_a"].id)
        gln = farm.locations[0].gln
        gtin = next(p for p in farm.products if p.commodity == "romaine lettuce").gtin
        document = commissioning_document(
            gtin, gln, CAPTURE_EVENTS, name="urn:lotline:bench:capture", lot="BC-{:05d}", day="2026-11-20"
        )
        job, _ = jobs.submit(ctx, farm, document, inline_calls=0)
        job_id = job.id
    start = time.perf_counter()
    outcome = jobs.run_pending(runtime)
    seconds = time.perf_counter() - start
    if outcome.get(job_id) != "done":
        raise RuntimeError(f"the bench's capture job ended {outcome.get(job_id)}")
    return seconds


def _wide_lot(ctx: Any, o: dict[str, Any]) -> tuple[str, str]:
    """A salad mix made from ``INGREDIENTS`` farm lots, each harvested, shipped and received (three events
    each) before the transformation: the shape of the issue's 50-ingredient lot. Returns its GTIN and lot code."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from supply_chain.domain.kinds import EventKind
    from supply_chain.services import lots
    from supply_chain.services.lots import NewLot
    from supply_chain.store.models import Lot, Organisation, Product

    session = ctx.session
    farm, processor = session.get(Organisation, o["farm_a"].id), session.get(Organisation, o["processor"].id)
    farm_site, plant = farm.locations[0].gln, processor.locations[0].gln
    romaine = next(p for p in farm.products if p.commodity == "romaine lettuce")
    mix = session.scalars(select(Product).where(Product.organisation_id == processor.id)).first()
    day = {n: (datetime.now(UTC).date() - timedelta(days=n)).isoformat() for n in range(6)}
    inputs: list[tuple[Lot, str]] = []
    for n in range(1, INGREDIENTS + 1):
        lot = lots.create_lot(
            ctx,
            farm,
            romaine.gtin,
            f"BW-ROM-{n:03d}",
            EventKind.HARVESTING,
            {"location_gln": farm_site, "harvest_date": day[5], "commodity": "romaine lettuce", "field_name": f"F{n}"},
            "20",
            "kg",
        )
        doc = {"reference_document_type": "bill of lading", "reference_document_number": f"BOL-BW-{n:03d}"}
        where = {"from_gln": farm_site, "to_gln": plant}
        lots.offer_custody(ctx, farm, lot, processor, where | {"ship_date": day[4]} | doc)
        lots.accept_custody(ctx, processor, lot, where | {"receive_date": day[3]} | doc)
        inputs.append((lot, "20"))
    (wide,) = lots.transform(
        ctx, processor, [NewLot(mix.gtin, "BW-MIX-050", str(20 * INGREDIENTS), "kg", inputs)], plant, day[2]
    )
    ctx.session.commit()
    return wide.gtin, wide.lot_code


def _load(home: Path, pages: dict[str, str], seconds: float, progress: Callable[[str], None]) -> list[LoadRow]:
    """`lotline serve` on ``home``, with the scan page cache off and then on; against each, ``/healthz`` and
    every page of ``pages`` loaded in turn by ``LOAD_CLIENTS`` clients in another process."""
    servers = [
        ("cache off (as before)", {"LOTLINE_SCAN_PAGE_CACHE": "0"}, ()),
        ("cache on", {"LOTLINE_SCAN_PAGE_CACHE": "512"}, ()),
    ]
    return _load_servers(home, {}, servers, pages, seconds, progress)


def _load_servers(
    home: Path,
    env: dict[str, str],
    servers: list[tuple[str, dict[str, str], tuple[str, ...]]],
    pages: dict[str, str],
    seconds: float,
    progress: Callable[[str], None],
    settled: Callable[[], bool] | None = None,
    warmup: float = 1.0,
    clients: tuple[int, ...] = (LOAD_CLIENTS,),
    settle_timeout: float = 600.0,
) -> list[LoadRow]:
    """For each of ``servers`` (label, extra environment, extra `serve` options): `lotline serve` on ``home``
    with ``env``, then ``/healthz`` and every page of ``pages`` loaded in turn by ``clients`` clients (each count
    of it in turn; ``LOAD_CLIENTS``) in another process; each page's rate is taken with the ``/healthz`` of the
    same server and client count. With ``settled``, the
    loads wait until it answers True (e.g. the start-up verification pass is over, so that it no longer moves
    the pages' cache keys), and each page is asked for a few times first (the caches of several processes)."""
    import json
    import os
    import subprocess
    import sys

    from supply_chain.chain.devnode import free_port

    out: list[LoadRow] = []
    for server, extra, args in servers:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        full = (
            {k: v for k, v in os.environ.items() if not k.startswith("LOTLINE_")}
            | {"LOTLINE_HOME": str(home), "LOTLINE_PUBLIC_URL": base, "PYTHONUNBUFFERED": "1"}
            | env
            | extra
        )
        progress(f"lotline serve, {server}")
        with (home / f"serve-{port}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "supply_chain.cli", "serve", "--port", str(port), *args],
                env=full,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _await_verified(base, pages.values(), process, timeout=max(300.0, settle_timeout))
            if settled is not None:
                _await(settled, process, settle_timeout)
                _prime(base, pages.values())
            for count in clients:
                healthz: float | None = None
                for target, path in ({"/healthz": "/healthz"} | pages).items():
                    progress(f"  {count} client{'s' if count > 1 else ''}: {target}")
                    done = subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "supply_chain.loadgen",
                            base + path,
                            "--clients",
                            str(count),
                            "--seconds",
                            str(seconds),
                            "--warmup",
                            str(warmup),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    figures = json.loads(done.stdout)
                    if path == "/healthz":
                        healthz = figures["per_second"]
                    out.append(LoadRow(server, target, figures, None if path == "/healthz" else healthz))
                    progress(
                        f"    {figures['per_second']} requests/s, median {figures['median_ms']} ms, "
                        f"p95 {figures['p95_ms']} ms"
                    )
        finally:
            process.terminate()
            process.wait(timeout=120)
    return out


WORKER_COUNTS = (1, 2, 4)


def run_workers(
    counts: tuple[int, ...] = WORKER_COUNTS,
    postgres_url: str | None = None,
    quick: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> Results:
    """The load figures with 1, 2 and 4 server processes (``lotline serve --workers N``). With ``postgres_url``:
    on PostgreSQL (a throw-away schema of it, dropped after) and a JSON-RPC chain, anvil (npm
    ``@foundry-rs/anvil``) started here. Without: on the defaults, the embedded chain and SQLite in a new
    instance folder (the first worker holds the chain for the others). The demo scenario and the 50-ingredient
    lot are seeded through the services. Against each server, once its start-up verification pass is over and
    each page was asked for a few times, 32 clients load ``/healthz`` and the two scan pages (cache on, the
    default), one after the other, after 3 s of warm-up."""
    import os
    import platform
    from contextlib import ExitStack
    from datetime import UTC, datetime

    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from supply_chain.chain.devnode import ANVIL_BINARY, start_anvil, stop
    from supply_chain.domain.errors import InvalidInput
    from supply_chain.services import orgs
    from supply_chain.services.demo import seed
    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.store.db import make_engine, normalise_url, postgres_schema

    on_postgres = postgres_url is not None
    if on_postgres and not normalise_url(postgres_url or "").startswith("postgresql"):
        raise InvalidInput(
            "the workers figures run on PostgreSQL with --postgres URL (or LOTLINE_BENCH_POSTGRES_URL; a schema of "
            "its own is made in it and dropped after), or on the defaults (embedded chain, SQLite) without it",
            field="--postgres",
        )
    if on_postgres and not ANVIL_BINARY.is_file():
        raise InvalidInput("the workers figures need anvil: run npm ci (npm @foundry-rs/anvil)", field="--workers")
    started_load = _load_average()
    home = Path(tempfile.mkdtemp(prefix="lotline-bench-workers-"))
    load_rows: list[LoadRow] = []
    with ExitStack() as cleanup:
        env: dict[str, str] = {}
        if on_postgres:
            db_url = cleanup.enter_context(postgres_schema(postgres_url or "", prefix="lotline_bench"))
            chain_url, node = start_anvil(home / "anvil.log")
            cleanup.callback(stop, node)
            env = {"LOTLINE_DATABASE_URL": db_url, "LOTLINE_CHAIN_URL": chain_url}
        runtime = Runtime(Settings.from_env(env=env, home=home))
        where = "PostgreSQL and anvil" if on_postgres else "the embedded chain and SQLite"
        try:
            with runtime.ctx() as ctx:
                orgs.deploy(ctx)
            progress(f"seeding the demo scenario on {where}")
            orgs_by_key = seed(runtime)
            progress(f"a lot made from {INGREDIENTS} ingredient lots")
            with runtime.ctx() as ctx:
                wide = _wide_lot(ctx, orgs_by_key)
        finally:
            runtime.close()
        pages = {
            "scan page, demo salad mix": "/01/00614144000033/10/FC-MIX-001",
            f"scan page, {INGREDIENTS}-ingredient lot": f"/01/{wide[0]}/10/{wide[1]}",
        }
        servers = [
            (f"{n} worker{'s' if n > 1 else ''}", {"LOTLINE_SCAN_PAGE_CACHE": "512"}, ("--workers", str(n)))
            for n in counts
        ]
        engine = make_engine(Settings.from_env(env=env, home=home).database_url, poolclass=NullPool)

        def verified_all() -> bool:
            with engine.connect() as connection:
                return not connection.scalar(text("SELECT count(*) FROM lots WHERE verification_state IS NULL"))

        try:
            load_rows = _load_servers(
                home, env, servers, pages, 3.0 if quick else 10.0, progress, settled=verified_all, warmup=3.0
            )
        finally:
            engine.dispose()
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": "rpc (anvil)" if on_postgres else "embedded",
        "db": "postgresql" if on_postgres else "sqlite",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": f"{started_load} at the start, {_load_average()} at the end",
        "quick": quick,
    }
    return Results([], meta, load_rows)


SCALE_SETTLE_SECONDS = 120.0
"""How long the scale figures wait for the server's start-up verification pass before loading it anyway (at
~5 lots/s, a pass over 10,000 lots takes half an hour; the rows say how many lots it had left)."""
SCALE_CLIENTS = (1, 32)
"""Client counts of the scale figures: one client (latency as the store grows) and 32 (the issue's load)."""


def run_scale(
    sizes: tuple[int, ...],
    postgres_url: str | None = None,
    counts: tuple[int, ...] = (1,),
    quick: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
    cache: Path | None = None,
    settle: float | None = None,
) -> Results:
    """The load figures on the anvil-anchored scale data sets (``supply_chain.scale``) of ``sizes`` events:
    each built, or taken from the cache, then served from a copy (SQLite, or re-loaded into a schema of
    ``postgres_url`` as well) with anvil on its state. Against each server (``--workers N`` for each of
    ``counts`` on PostgreSQL; one process on SQLite), once the start-up verification pass has vouched for every
    lot, 1 and then 32 clients load ``/healthz``, the scan page of a typical transformed lot, of the lot 11
    generations deep and of the lot made from 50 ingredients, each in turn. ``settle`` is the longest wait for
    that pass, in seconds (``SCALE_SETTLE_SECONDS`` if not given; none with ``quick``)."""
    import os
    import platform
    import shutil
    from datetime import UTC, datetime

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.pool import NullPool

    from supply_chain.chain.devnode import ANVIL_BINARY
    from supply_chain.domain.errors import InvalidInput
    from supply_chain.scale import DEFAULT_CACHE, Params, ensure, load
    from supply_chain.store.db import make_engine, normalise_url

    if not ANVIL_BINARY.is_file():
        raise InvalidInput("the scale figures need anvil: run npm ci (npm @foundry-rs/anvil)", field="--scale")
    if postgres_url and not normalise_url(postgres_url).startswith("postgresql"):
        raise InvalidInput("--postgres must be a PostgreSQL URL", field="--postgres")
    started_load = _load_average()
    budget = 0.0 if quick else SCALE_SETTLE_SECONDS if settle is None else settle
    builds: dict[str, Any] = {}
    load_rows: list[LoadRow] = []
    for size in sizes:
        built = ensure(Params(size), cache or DEFAULT_CACHE, progress)
        builds[f"{size:,}"] = {
            k: built.info[k] for k in ("lot_count", "event_count", "transactions", "last_block", "seconds")
        }
        pages = {
            "scan page, typical transformed lot": built.path("typical"),
            f"scan page, lot of depth {built.info['params']['depth']}": built.path("deep"),
            f"scan page, {built.info['params']['ingredients']}-ingredient lot": built.path("wide"),
        }
        databases = [("SQLite", None)] + ([("PostgreSQL", postgres_url)] if postgres_url else [])
        for db_name, db_url in databases:
            work = Path(tempfile.mkdtemp(prefix=f"lotline-scale-{size}-"))
            with load(built, work / "home", db_url, progress) as env:
                engine = make_engine(
                    env.get("LOTLINE_DATABASE_URL") or f"sqlite:///{work / 'home' / 'lotline.db'}", poolclass=NullPool
                )

                waited: dict[str, Any] = {}

                def settled(engine: Any = engine, waited: dict[str, Any] = waited) -> bool:
                    """The start-up verification pass is over, or ``SCALE_SETTLE_SECONDS`` went by since the
                    server's pages answered (the measurement then runs alongside the rest of the pass)."""
                    started = waited.setdefault("since", time.monotonic())
                    try:
                        with engine.connect() as connection:
                            left = connection.scalar(text("SELECT count(*) FROM lots WHERE verification_state IS NULL"))
                    except OperationalError:  # SQLite: the pass holds the write lock a store session begins with
                        return time.monotonic() - started > budget
                    waited["unchecked"] = int(left or 0)
                    return not left or time.monotonic() - started > budget

                workers = counts if db_url else (1,)
                servers = [
                    (
                        f"{db_name}, {size:,} events, {n} worker{'s' if n > 1 else ''}",
                        {"LOTLINE_SCAN_PAGE_CACHE": "512"},
                        ("--workers", str(n)),
                    )
                    for n in workers
                ]
                try:
                    load_rows += _load_servers(
                        work / "home",
                        env,
                        servers,
                        pages,
                        3.0 if quick else 10.0,
                        progress,
                        settled=settled,
                        warmup=2.0,
                        clients=SCALE_CLIENTS,
                        settle_timeout=budget + 600.0,
                    )
                finally:
                    engine.dispose()
                builds[f"{size:,}"][f"{db_name}: lots not yet verified when the load began"] = waited.get("unchecked")
            shutil.rmtree(work, ignore_errors=True)  # (a copy of the data set, ~0.8 GB at 1M; kept if a load failed)
    meta = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": "rpc (anvil, state of the scale build)",
        "db": "sqlite" + (", postgresql" if postgres_url else ""),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": f"{started_load} at the start, {_load_average()} at the end",
        "quick": quick,
        "settle_seconds": budget,
        "builds": builds,
    }
    return Results([], meta, load_rows)


def _await(condition: Callable[[], bool], process: Any, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise RuntimeError(f"lotline serve exited {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server's start-up verification did not finish in {timeout:g} s")
        time.sleep(1.0)


def _prime(base: str, paths: Any, times: int = 8) -> None:
    """Ask for each page (HTML) ``times`` times on new connections, so that most processes have it cached."""
    import urllib.request

    for path in paths:
        for _ in range(times):
            with urllib.request.urlopen(base + path, timeout=120) as response:
                response.read()


def _load_average() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _await_verified(base: str, paths: Any, process: Any, timeout: float = 300.0) -> None:
    """Wait until the server answers and its start-up verification pass has checked the pages' lots (until
    then their pages say "pending" and change as the pass goes)."""
    import json
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    waiting = list(paths)
    while waiting:
        if process.poll() is not None:
            raise RuntimeError(f"lotline serve exited {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not verify {waiting} in {timeout:g} s")
        try:
            request = urllib.request.Request(base + waiting[0], headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as response:
                if json.loads(response.read())["state"] != "pending":
                    waiting.pop(0)
                    continue
        except (urllib.error.URLError, OSError):  # not listening yet, or still starting (timed out)
            pass
        time.sleep(0.5)
