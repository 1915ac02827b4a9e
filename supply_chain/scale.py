"""A reproducible scale data set anchored on anvil: N events over N/10 lots, every one on chain, cached
(``scripts/scale_store.py``, ``lotline bench --scale``).

Unlike ``scripts/plan_store.py`` (copied rows, nothing on chain), every lot and event made here is written to
anvil through the Ledger adapter's bulk calls: ``createLot`` and ``recordEvents`` calls batched with the
contract's ``multicall``, about ``--batch-events`` events per transaction. The store's rows are bulk-inserted
with what the chain's logs say of them (sequence number, head hash after, transaction, block, log index), so
``lotline verify`` of any lot answers verified. Organisations, products and sites go through the services
(keys, roles and company prefixes on chain as in any installation). The build is a pipeline (encoder
processes, several transactions in flight, rows inserted by a thread of their own): see ``_anchor_and_store``.

Shapes (issue 11): farm lots -> packed lots (a transformation of two farm lots) -> transformed lots (three
packed lots), spread over eight grower-packer organisations (each holds its own lots, so no custody moves);
and three lots the load figures name:

- the *deep* lot: a chain of ``--depth`` (11) transformations above a farm lot, so its backward trace has 11
  generations of ancestors;
- the *wide* lot: a transformation of ``--ingredients`` (50) farm lots;
- the *farm* lot with ``--descendants`` (1,010) lots made from it: ten packed lots, each the input of a
  hundred transformed lots.

Each lot has about N / lots events (its creation, cooling, initial packing, observations).

The result is cached under ``--cache`` (default ``~/.cache/lotline/scale``) in a folder keyed by the
parameters and the version of this script, the contract and the store's models: the instance folder (the
SQLite store, the key-encryption key), anvil's dumped state and ``scale.json`` (the named lots, counts and
the time of each phase). A second run with the same key reuses it. ``load`` starts anvil on that state and
gives a copy of the store (SQLite) or a re-load into a PostgreSQL schema of its own.

    python scripts/scale_store.py --events 100000            # build (or reuse) and print scale.json
    python scripts/scale_store.py --events 20000 --verify 5  # and verify five lots against the chain

``lotline bench --scale 20000,100000`` builds (or reuses) the data sets and runs the load figures on them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from supply_chain.domain.hashing import payload_hash
from supply_chain.domain.identifiers import gtin_check_digit, lot_id
from supply_chain.domain.kinds import EventKind
from supply_chain.domain.policy import CREATOR_ROLES

PROJECT_ROOT = Path(__file__).resolve().parents[1]

DEPTH = 11
INGREDIENTS = 50
DESCENDANTS = 1_010
ORGS = 8
BATCH_EVENTS = 1_000
"""Events per transaction (one multicall of createLot and recordEvents calls)."""
TX_GAS = 400_000_000
ANVIL_GAS_LIMIT = 2_000_000_000
"""anvil's block gas limit: large enough for a transaction of ``BATCH_EVENTS`` events (a lot's creation
costs ~150k gas, an appended event ~15k)."""
START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
DEFAULT_CACHE = Path(os.environ.get("LOTLINE_SCALE_CACHE") or Path.home() / ".cache" / "lotline" / "scale")

# What the lots' events carry (the demo's lettuce, as the services store it); location fields get the org's site.
PAYLOADS: dict[EventKind, dict[str, str]] = {
    EventKind.HARVESTING: {
        "commodity": "romaine lettuce",
        "quantity": "1200",
        "unit": "kg",
        "harvest_date": "2026-03-02",
        "location_gln": "",
        "field_name": "North block 4",
        "container": "bins",
    },
    EventKind.COOLING: {
        "cooling_date": "2026-03-02",
        "location_gln": "",
        "quantity": "1200",
        "unit": "kg",
        "temperature_c": "2",
    },
    EventKind.INITIAL_PACKING: {
        "pack_date": "2026-03-03",
        "location_gln": "",
        "quantity": "1150",
        "unit": "kg",
        "packaging": "cartons",
    },
    EventKind.OBSERVATION: {"observation_date": "2026-03-03", "location_gln": "", "notes": "temperature log ok"},
    EventKind.TRANSFORMATION: {"transformation_date": "2026-03-03", "location_gln": "", "recipe": "salad mix"},
}
AFTER_CREATION = (EventKind.COOLING, EventKind.INITIAL_PACKING)


# ------------------------------------------------------------------------------------------- the plan


@dataclass
class PlannedLot:
    org: int
    """Index of the owning organisation (0..ORGS-1)."""
    tier: int
    """0 farm lot, 1 packed lot, 2 transformed lot (products differ by tier)."""
    code: str
    inputs: list[int]
    """Plan indexes of the input lots (always earlier lots of the same organisation)."""
    events: int


@dataclass
class Plan:
    lots: list[PlannedLot]
    farm: int
    deep: int
    wide: int
    typical: int

    @property
    def events(self) -> int:
        return sum(lot.events for lot in self.lots)


def make_plan(
    events: int,
    lots: int | None = None,
    *,
    depth: int = DEPTH,
    ingredients: int = INGREDIENTS,
    descendants: int = DESCENDANTS,
    seed: int = 11,
) -> Plan:
    """The lots (in creation order, inputs first) and how many events each has; deterministic for a seed."""
    rng = random.Random(seed)
    out: list[PlannedLot] = []

    def add(org: int, tier: int, inputs: list[int]) -> int:
        out.append(PlannedLot(org, tier, f"S{len(out):07d}", inputs, 1))
        return len(out) - 1

    # The farm lot with `descendants` lots made from it: `packed` packed lots (it and another farm lot each),
    # and the rest transformed lots made of one of those and a packed lot of unrelated farm lots.
    farm = add(0, 0, [])
    packed = max(1, min(10, descendants // 101))
    derived = [add(0, 1, [farm, add(0, 0, [])]) for _ in range(packed)]
    others = [add(0, 1, [add(0, 0, []), add(0, 0, [])]) for _ in range(min(10, descendants))]
    for k in range(descendants - packed):
        add(0, 2, [derived[k % packed], others[k % len(others)]])
    # The deep lot: `depth` transformations in a row above a farm lot.
    deep = add(0, 0, [])
    for _ in range(depth):
        deep = add(0, 2, [deep])
    # The wide lot: a transformation of `ingredients` farm lots.
    wide = add(0, 2, [add(0, 0, []) for _ in range(ingredients)])

    total = max(lots if lots is not None else events // 10, len(out))
    by_org: dict[tuple[int, int], list[int]] = {}
    typical = None
    for g in range(total - len(out)):
        org = g % ORGS
        slot = (g // ORGS) % 10
        tier = 0 if slot < 6 else 1 if slot < 9 else 2
        pool = by_org.get((org, tier - 1), []) if tier else []
        need = 2 if tier == 1 else 3
        if tier and len(pool) < need * 3:
            tier = 0  # too few earlier lots of the tier below in this organisation: a farm lot instead
        inputs = rng.sample(pool[-200:], need) if tier else []
        index = len(out)
        out.append(PlannedLot(org, tier, f"G{index:07d}", inputs, 1))
        by_org.setdefault((org, tier), []).append(index)
        if tier == 2 and typical is None:
            typical = index
    # Spread the events: every lot at least its creation, the rest evenly.
    extra = max(0, events - len(out))
    base, rest = divmod(extra, len(out))
    for i, lot in enumerate(out):
        lot.events = 1 + base + (1 if i < rest else 0)
    return Plan(out, farm, deep, wide, typical if typical is not None else derived[0])


def kinds_of(lot: PlannedLot) -> list[EventKind]:
    first = EventKind.TRANSFORMATION if lot.inputs else EventKind.HARVESTING
    rest = [AFTER_CREATION[i] if i < len(AFTER_CREATION) else EventKind.OBSERVATION for i in range(lot.events - 1)]
    return [first, *rest]


def payload_of(kind: EventKind, seq: int, gln: str, code: str) -> dict[str, str]:
    payload = {k: (gln if k.endswith("_gln") else v) for k, v in PAYLOADS[kind].items()}
    if kind is EventKind.OBSERVATION:
        payload["notes"] = f"check {seq} of {code}: temperature log ok"
    return payload


# ------------------------------------------------------------------------------------------- the cache


DATA_VERSION = 1
"""Moved by hand whenever what this module builds changes (the plan, the payloads, the rows), so caches of
the old data are not reused; the contract, the store's models and migrations and the hashing are versioned by
their content below."""


def version() -> str:
    """What a cached data set depends on besides its parameters: this module's data version, the contract,
    the store's models and migrations, the payload hashing."""
    digest = hashlib.sha256(str(DATA_VERSION).encode())
    for path in (
        PROJECT_ROOT / "supply_chain" / "chain" / "artifacts" / "LotLedger.json",
        PROJECT_ROOT / "supply_chain" / "store" / "models.py",
        PROJECT_ROOT / "supply_chain" / "domain" / "hashing.py",
    ):
        digest.update(path.read_bytes())
    for path in sorted((PROJECT_ROOT / "supply_chain" / "store" / "migrations" / "versions").glob("*.py")):
        digest.update(path.name.encode())
    return digest.hexdigest()[:16]


@dataclass
class Params:
    events: int
    lots: int | None = None
    depth: int = DEPTH
    ingredients: int = INGREDIENTS
    descendants: int = DESCENDANTS
    batch_events: int = BATCH_EVENTS

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True) + version()
        return f"{self.events}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class Built:
    """A cached data set: where it is and what is in it (``scale.json``)."""

    folder: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.folder / "home"

    @property
    def state(self) -> Path:
        return self.folder / "anvil-state.json"

    def label(self, name: str) -> tuple[str, str]:
        gtin, code = self.info["lots"][name]
        return gtin, code

    def path(self, name: str) -> str:
        gtin, code = self.label(name)
        return f"/01/{gtin}/10/{code}"


DUMP_SECONDS = 1800.0
"""How long anvil may take to write its state when stopped. A 5-second wait, then a kill, cut the 1M data set's
state off at a third of its length (anvil held 14 GB; the cache then looked whole)."""


def complete_dump(path: Path) -> bool:
    """The anvil state file is there and its JSON object is closed (a cut-off file ends inside a string)."""
    if not path.is_file() or path.stat().st_size < 2:
        return False
    with path.open("rb") as file:
        file.seek(-min(64, path.stat().st_size), os.SEEK_END)
        return file.read().rstrip().endswith(b"}")


def ensure(params: Params, cache: Path = DEFAULT_CACHE, progress: Callable[[str], None] = lambda _m: None) -> Built:
    """The data set for ``params``: from the cache when built before with the same key, else built now."""
    folder = cache / params.key()
    done = folder / "scale.json"
    if done.is_file() and complete_dump(folder / "anvil-state.json"):
        progress(f"reusing the cached data set {folder}")
        return Built(folder, json.loads(done.read_text()))
    if done.is_file():
        progress(f"the cached data set {folder} has a cut-off anvil state: building it again")
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished build
    folder.mkdir(parents=True)
    info = build(params, folder, progress)
    done.write_text(json.dumps(info, indent=2) + "\n")
    return Built(folder, json.loads(done.read_text()))


# ------------------------------------------------------------------------------------------- building


class Phases:
    """Seconds spent in each phase, wall clock and this thread's CPU (phases run in two threads at once, and
    on a shared machine the difference between the two is the time the process waited for a core)."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if name not in self.seconds:
            self.progress(name)
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            self.cpu[name] = self.cpu.get(name, 0.0) + time.thread_time() - start_cpu


def _gtin(org: int, item: int) -> str:
    body = f"0{9520000 + org:07d}{item:05d}"
    return body + str(gtin_check_digit(body))


def build(params: Params, folder: Path, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the data set into ``folder`` (an empty folder): anvil with its state dumped there on exit, the
    instance folder ``home`` with a SQLite store."""
    from supply_chain.chain.devnode import start_anvil, stop
    from supply_chain.services import orgs
    from supply_chain.services.runtime import Runtime, Settings

    phases = Phases(progress)
    started, started_cpu = time.perf_counter(), time.process_time()
    with phases("plan"):
        plan = make_plan(
            params.events,
            params.lots,
            depth=params.depth,
            ingredients=params.ingredients,
            descendants=params.descendants,
        )
    home = folder / "home"
    home.mkdir()
    url, node = start_anvil(
        folder / "anvil.log",
        # --prune-history: the build reads only the latest state. Without it anvil keeps every block's state
        # and spills them to ~/.foundry/anvil/tmp (about 40 GB by 800k events, never removed after a kill).
        extra=(
            "--gas-limit", str(ANVIL_GAS_LIMIT), "--prune-history", "--dump-state", str(folder / "anvil-state.json"),
        ),  # fmt: skip
    )
    try:
        runtime = Runtime(Settings.from_env(env={"LOTLINE_CHAIN_URL": url}, home=home))
        try:
            with phases("organisations, products and sites (services)"):
                with runtime.ctx() as ctx:
                    orgs.deploy(ctx)
                with runtime.ctx() as ctx:
                    made = []
                    for n in range(ORGS):
                        prefix = f"{9520000 + n:07d}"
                        org = orgs.onboard(ctx, None, f"Scale grower-packer {n}", sorted(CREATOR_ROLES), prefix)
                        products = [
                            orgs.register_product(ctx, org, _gtin(n, item), name, "leafy greens", True)
                            for item, name in ((1, "Romaine hearts"), (2, "Romaine cartons"), (3, "Salad mix"))
                        ]
                        gln = f"{prefix}00001"
                        gln += str(gtin_check_digit(gln))
                        site = orgs.register_location(ctx, org, gln, f"Farm and plant {n}", kind="farm")
                        made.append(
                            (
                                org.id,
                                org.chain_address,
                                [p.id for p in products],
                                [p.gtin for p in products],
                                site.id,
                                gln,
                            )
                        )
                    signers = {n: orgs.signer(ctx, ctx.session.get(type(org), made[n][0])) for n in range(ORGS)}
                    deployment_block = ctx.ledger.block_number()
            counts = _anchor_and_store(runtime, plan, made, signers, params.batch_events, phases)
        finally:
            runtime.close()
    finally:
        with phases("anvil state dumped"):
            stop(node, timeout=DUMP_SECONDS)  # anvil writes its state as it exits: a minute or more at 1M events
    if not complete_dump(folder / "anvil-state.json"):
        raise RuntimeError(f"anvil's state dump {folder / 'anvil-state.json'} is missing or cut off")
    labels = {
        name: [_gtin(plan.lots[i].org, plan.lots[i].tier + 1), plan.lots[i].code]
        for name, i in (("farm", plan.farm), ("deep", plan.deep), ("wide", plan.wide), ("typical", plan.typical))
    }
    return {
        "params": asdict(params),
        "version": version(),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "lots": labels,
        "lot_count": len(plan.lots),
        "event_count": plan.events,
        "deployment_block": deployment_block,
        **counts,
        "seconds": {k: round(v, 1) for k, v in phases.seconds.items()}
        | {"total": round(time.perf_counter() - started, 1)},
        "cpu_seconds": {k: round(v, 1) for k, v in phases.cpu.items()}
        | {"total (this process)": round(time.process_time() - started_cpu, 1)},
    }


def _anchor_and_store(
    runtime: Any, plan: Plan, made: list[Any], signers: dict[int, Any], batch_events: int, phases: Phases
) -> dict[str, Any]:
    """Send every lot's calls (a multicall per ~``batch_events`` events, organisations in turn) and insert the
    rows with the sequence numbers, heads, transactions, blocks and log indexes of the chain's logs.

    A pipeline: ``ENCODERS`` processes hash the payloads and encode the calls of the next transactions; this
    thread signs and sends each while anvil runs the ``IN_FLIGHT`` sent before it (each organisation's in nonce
    order, so a lot's inputs, always earlier lots of the same organisation, are on chain before the lot is
    made), reads the oldest one's logs once more than that are out and checks each is the event planned; a
    thread of its own inserts the rows of the ones read before."""
    from supply_chain.chain.ledger import Ledger
    from supply_chain.services.indexer import CURSOR
    from supply_chain.store.db import refresh_statistics
    from supply_chain.store.models import IndexerCursor

    ledger = Ledger(runtime.ledger.w3, runtime.ledger.address, fixed_gas=TX_GAS, receipt_timeout=600)
    chain_ids = ["0x" + lot_id(_gtin(lot.org, lot.tier + 1), lot.code).hex() for lot in plan.lots]
    # Each organisation's lots in transactions of about batch_events events; then the organisations in turn.
    batches: dict[int, list[list[int]]] = {}
    for index, lot in enumerate(plan.lots):
        org_batches = batches.setdefault(lot.org, [[]])
        if sum(plan.lots[i].events for i in org_batches[-1]) + lot.events > batch_events and org_batches[-1]:
            org_batches.append([])
        org_batches[-1].append(index)
    order: list[tuple[int, list[int]]] = []
    for round_ in range(max(len(b) for b in batches.values())):
        order += [(org, b[round_]) for org, b in sorted(batches.items()) if round_ < len(b)]

    rows = _RowWriter(runtime.engine, phases)
    in_flight: deque[tuple[Any, int, list[int], list[tuple[int, int, EventKind, dict[str, str], str]]]] = deque()
    state = {"txs": 0, "event_id": 0, "last_block": 0}

    def take_oldest() -> None:
        prepared, org, indexes, planned = in_flight.popleft()
        with phases("waiting for anvil (receipts)"):
            result = ledger.wait_bulk(prepared)
        with phases("logs checked, rows made"):
            state["txs"] += 1
            state["last_block"] = max(state["last_block"], result.block_number)
            state["event_id"] = _rows_of(
                result, plan, made[org], chain_ids, indexes, planned, state["txs"], state["event_id"], rows
            )

    # Hashing payloads and ABI-encoding calls is most of this process's work: other processes do it, a few
    # transactions ahead of the one sent (on a shared machine they also get cores this process would not).
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    statics = [(m[3], m[5]) for m in made]
    workers = max(1, min(ENCODERS, os.cpu_count() or 1))
    encoding: deque[tuple[int, list[int], Future[tuple[str, list[Any]]]]] = deque()
    upcoming = iter(order)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_encoder_start,
        initargs=(plan, statics, ledger.address),
    )
    # Each organisation's nonces counted here and the fees of the start kept for the run, so signing a
    # transaction asks anvil nothing (on a loaded machine each round trip to the node costs more than its work;
    # the base fee only falls, blocks being far below their gas target).
    nonces = {org: ledger.account_nonce(signer.address) for org, signer in signers.items()}
    fees = ledger.fees()
    rows.start()
    try:
        try:
            while True:
                while len(encoding) < 2 * workers + 2 and (item := next(upcoming, None)) is not None:
                    encoding.append((item[0], item[1], pool.submit(_encode_batch, item[0], item[1])))
                if not encoding:
                    break
                org, indexes, future = encoding.popleft()
                with phases("payloads hashed, calls encoded (waiting for the encoders)"):
                    data, planned = future.result()
                with phases("chain: signed, sent"):
                    prepared = ledger.prepare(
                        signers[org], "multicall", (), check=False, data=data, nonce=nonces[org], fees=fees
                    )
                    nonces[org] += 1
                    ledger.send(prepared)
                in_flight.append((prepared, org, indexes, planned))
                if len(in_flight) > IN_FLIGHT:
                    take_oldest()
            while in_flight:
                take_oldest()
        finally:
            pool.shutdown(cancel_futures=True)
    finally:
        with phases("waiting for the last rows' inserts"):
            rows.finish()
    with phases("rows inserted (bulk)"), runtime.ctx() as ctx:
        cursor = ctx.session.get(IndexerCursor, CURSOR)
        if cursor is None:
            ctx.session.add(IndexerCursor(name=CURSOR, last_block=state["last_block"]))
        else:
            cursor.last_block = state["last_block"]
    with phases("statistics"):
        refresh_statistics(runtime.engine)
    return {"transactions": state["txs"], "last_block": state["last_block"]}


IN_FLIGHT = 4
"""Transactions sent and not yet read back: enough that anvil always has the next one while this process
encodes, few enough that a refusal stops the build soon."""

ENCODERS = 2
"""Processes hashing payloads and encoding calls (at most one per core)."""

_ENCODER: dict[str, Any] = {}


def _encoder_start(plan: Plan, statics: list[tuple[list[str], str]], address: str) -> None:
    """An encoder process: the plan, each organisation's GTINs and GLN, the contract's call encoding."""
    from web3 import Web3

    from supply_chain.chain.ledger import Ledger

    _ENCODER.update(
        plan=plan,
        statics=statics,
        chain_ids=["0x" + lot_id(_gtin(lot.org, lot.tier + 1), lot.code).hex() for lot in plan.lots],
        ledger=Ledger(Web3(), address),  # no node: only its call encoding is used
        hashes={},
    )


def _encode_batch(org: int, indexes: list[int]) -> tuple[str, list[tuple[int, int, EventKind, dict[str, str], str]]]:
    """The call data of one transaction (a multicall of ``createLot`` and ``recordEvents`` for the lots
    ``indexes`` of organisation ``org``) and the events it records, in order: (lot index, sequence number,
    kind, payload, payload hash)."""
    from supply_chain.chain.ledger import Call

    plan: Plan = _ENCODER["plan"]
    chain_ids: list[str] = _ENCODER["chain_ids"]
    hashes: dict[str, str] = _ENCODER["hashes"]
    ledger = _ENCODER["ledger"]
    gtins, gln = _ENCODER["statics"][org]
    calls, planned = [], []
    for index in indexes:
        lot = plan.lots[index]
        kinds = kinds_of(lot)
        payloads = [payload_of(k, s, gln, lot.code) for s, k in enumerate(kinds, start=1)]
        data = []
        for payload in payloads:
            text = json.dumps(payload, sort_keys=True)
            if text not in hashes:
                hashes[text] = "0x" + payload_hash(payload).hex()
            data.append(hashes[text])
        inputs = [chain_ids[i] for i in lot.inputs]
        calls.append(Call.create_lot(gtins[lot.tier], lot.code, inputs, kinds[0], data[0]))
        if len(kinds) > 1:
            calls.append(Call.record_events(chain_ids[index], kinds[1:], data[1:]))
        planned += [(index, seq, k, p, h) for seq, (k, p, h) in enumerate(zip(kinds, payloads, data, strict=True), 1)]
    encoded = [ledger.encode_call(fn, args) for fn, args in calls]
    return "0x" + ledger.encode_call("multicall", [encoded]).hex(), planned


LOT_COLUMNS = (
    "id", "gtin", "lot_code", "lot_id", "product_id", "creator_org_id", "custodian_org_id", "status", "quantity",
    "unit", "initial_quantity", "created_at", "harvest_date", "origin_location_id", "event_count", "head_hash",
)  # fmt: skip
EDGE_COLUMNS = ("output_lot_id", "input_lot_id", "quantity", "unit")
EVENT_COLUMNS = (
    "id", "lot_id", "seq", "kind", "actor_org_id", "actor_address", "payload", "payload_hash", "hash_scheme",
    "visibility", "status", "tx_hash", "block_number", "log_index", "head_after", "occurred_at", "recorded_at",
    "confirmed_at", "batch_id",
)  # fmt: skip


def _rows_of(
    result: Any,
    plan: Plan,
    org: tuple[Any, ...],
    chain_ids: list[str],
    indexes: list[int],
    planned: list[tuple[int, int, EventKind, dict[str, str], str]],
    tx_number: int,
    event_id: int,
    rows: _RowWriter,
) -> int:
    """Check a mined transaction's logs are the events planned, one by one, and hand its rows (lots, inputs,
    events) to ``rows``; returns the last event id used."""
    org_id, address, product_ids, gtins, site_id, _gln = org
    recorded = result.recorded
    if len(recorded) != len(planned):
        raise RuntimeError(f"transaction {result.tx_hash}: {len(recorded)} events logged, {len(planned)} sent")
    when = START + timedelta(minutes=tx_number)
    batch_id = result.tx_hash[2:34]
    heads: dict[int, str] = {}
    events = []
    for (index, seq, kind, payload, data_hash), log in zip(planned, recorded, strict=True):
        if log.lot_id != chain_ids[index] or log.seq != seq or log.data_hash != data_hash or log.kind != kind:
            raise RuntimeError(f"log {log.log_index} of {result.tx_hash} is not the event planned there")
        event_id += 1
        heads[index] = log.head
        occurred = when - timedelta(hours=12) + timedelta(hours=seq)
        events.append(
            (
                event_id, index + 1, seq, kind, org_id, address, payload, data_hash, 1, {}, "confirmed",
                result.tx_hash, result.block_number, log.log_index, log.head, occurred, when, when, batch_id,
            )
        )  # fmt: skip
    lots, edges = [], []
    for index in indexes:
        lot = plan.lots[index]
        lots.append(
            (
                index + 1, gtins[lot.tier], lot.code, chain_ids[index], product_ids[lot.tier], org_id, org_id,
                "active", Decimal("1000"), "kg", Decimal("1000"), when,
                None if lot.inputs else date(2026, 3, 2), site_id, lot.events, heads[index],
            )
        )  # fmt: skip
        edges += [(index + 1, i + 1, Decimal("10"), "kg") for i in lot.inputs]
    rows.put(lots, edges, events)
    return event_id


class _RowWriter:
    """Inserts rows in a thread of its own, in the order given, about ``CHUNK`` events a transaction, with the
    driver's ``executemany`` (`supply_chain.store.db.insert_rows`). An insert that fails stops the build at
    the next ``put`` or at ``finish``."""

    CHUNK = 5_000

    def __init__(self, engine: Any, phases: Phases) -> None:
        import queue
        import threading

        self.engine = engine
        self.phases = phases
        self.queue: queue.Queue[tuple[list[Any], list[Any], list[Any]] | None] = queue.Queue(maxsize=8)
        self.thread = threading.Thread(target=self._run, name="scale-rows", daemon=True)
        self.error: BaseException | None = None
        self.pending: tuple[list[Any], list[Any], list[Any]] = ([], [], [])

    def start(self) -> None:
        self.thread.start()

    def put(self, lots: list[Any], edges: list[Any], events: list[Any]) -> None:
        for held, new in zip(self.pending, (lots, edges, events), strict=True):
            held += new
        if len(self.pending[2]) >= self.CHUNK:
            self._hand_over()

    def _hand_over(self) -> None:
        import queue

        item, self.pending = self.pending, ([], [], [])
        while True:
            if self.error is not None:
                raise RuntimeError("inserting the rows failed") from self.error
            try:
                self.queue.put(item, timeout=1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Insert what is left and wait for every insert (also after a failure elsewhere: the thread stops)."""
        import queue

        if self.thread.is_alive() and self.error is None and any(self.pending):
            self._hand_over()
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=1)
                break
            except queue.Full:
                continue
        self.thread.join()
        if self.error is not None:
            raise RuntimeError("inserting the rows failed") from self.error

    def _run(self) -> None:
        from supply_chain.store.db import insert_rows
        from supply_chain.store.models import Event, Lot, LotInput

        try:
            while (item := self.queue.get()) is not None:
                lots, edges, events = item
                with self.phases("rows inserted (bulk, alongside)"), self.engine.begin() as connection:
                    insert_rows(connection, Lot.__table__, LOT_COLUMNS, lots)
                    insert_rows(connection, LotInput.__table__, EDGE_COLUMNS, edges)
                    insert_rows(connection, Event.__table__, EVENT_COLUMNS, events)
        except BaseException as exc:  # noqa: BLE001 -- handed to the building thread
            self.error = exc


# ------------------------------------------------------------------------------------------- using it


@contextmanager
def load(
    built: Built, work: Path, postgres_url: str | None = None, progress: Callable[[str], None] = lambda _m: None
) -> Iterator[dict[str, str]]:
    """A running copy of a built data set: anvil started on its dumped state (the cache is not written back),
    the instance folder copied to ``work`` and, with ``postgres_url``, the store re-loaded into a schema of its
    own there (dropped after). Yields the ``LOTLINE_*`` environment for processes that use it."""
    from supply_chain.chain.devnode import start_anvil, stop

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(built.home, work)
    url, node = start_anvil(
        work / "anvil.log", extra=("--gas-limit", str(ANVIL_GAS_LIMIT), "--load-state", str(built.state))
    )
    try:
        env = {"LOTLINE_HOME": str(work), "LOTLINE_CHAIN_URL": url}
        if postgres_url is None:
            yield env
            return
        with postgres_copy(work, postgres_url, progress) as db_url:
            yield env | {"LOTLINE_DATABASE_URL": db_url}
    finally:
        stop(node)


@contextmanager
def postgres_copy(home: Path, postgres_url: str, progress: Callable[[str], None]) -> Iterator[str]:
    """The SQLite store of ``home`` re-loaded into a new schema of ``postgres_url`` (migrated, then every table
    copied in chunks, sequences moved past the copied ids, analysed); dropped on exit."""
    from sqlalchemy import func, select, text
    from sqlalchemy.pool import NullPool

    from supply_chain.store.db import make_engine, migrate, postgres_schema, refresh_statistics
    from supply_chain.store.models import Base

    with postgres_schema(postgres_url, prefix="lotline_scale") as db_url:
        source = make_engine(f"sqlite:///{home / 'lotline.db'}", poolclass=NullPool)
        target = make_engine(db_url, poolclass=NullPool)
        try:
            started = time.perf_counter()
            migrate(target)
            with source.connect() as reading, target.begin() as writing:
                for table in Base.metadata.sorted_tables:
                    writing.execute(table.delete())
                for table in Base.metadata.sorted_tables:
                    result = reading.execution_options(stream_results=True).execute(select(table))
                    while rows := result.mappings().fetchmany(20_000):
                        writing.execute(table.insert(), [dict(r) for r in rows])
                    if "id" in table.c and isinstance(table.c.id.type.python_type, type):
                        top = writing.scalar(select(func.max(table.c.id)))
                        sequence = writing.scalar(text(f"SELECT pg_get_serial_sequence('{table.name}', 'id')"))
                        if top and sequence:
                            writing.execute(text(f"SELECT setval('{sequence}', {int(top)})"))
            refresh_statistics(target)
            progress(f"store re-loaded into a PostgreSQL schema of its own in {time.perf_counter() - started:.0f} s")
            yield db_url
        finally:
            source.dispose()
            target.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in all (default 100000)")
    parser.add_argument("--lots", type=int, help="lots in all (default events / 10)")
    parser.add_argument("--depth", type=int, default=DEPTH, help="generations above the deep lot (default 11)")
    parser.add_argument("--ingredients", type=int, default=INGREDIENTS, help="inputs of the wide lot (default 50)")
    parser.add_argument(
        "--descendants", type=int, default=DESCENDANTS, help="lots made from the farm lot (default 1010)"
    )
    parser.add_argument("--batch-events", type=int, default=BATCH_EVENTS, help="events per transaction")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"cache folder (default {DEFAULT_CACHE})")
    parser.add_argument("--verify", type=int, default=0, metavar="K", help="then verify the named lots and K more")
    args = parser.parse_args(argv)
    if args.events < 1 or args.depth < 1 or args.ingredients < 1 or args.descendants < 1 or args.batch_events < 1:
        parser.error("--events, --depth, --ingredients, --descendants and --batch-events must be at least 1")
    params = Params(args.events, args.lots, args.depth, args.ingredients, args.descendants, args.batch_events)
    built = ensure(params, args.cache, progress=lambda m: print(f"  {m}", file=sys.stderr))
    print(json.dumps(built.info, indent=2))
    if args.verify:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="lotline-scale-") as tmp, load(built, Path(tmp) / "home") as env:
            for state, label in verify_some(env, built, args.verify):
                print(f"{label}: {state}")
    return 0


def verify_some(env: dict[str, str], built: Built, extra: int) -> list[tuple[str, str]]:
    """Verify the named lots and ``extra`` lots spread over the store against the chain (in process)."""
    from sqlalchemy import func, select

    from supply_chain.services.runtime import Runtime, Settings
    from supply_chain.services.verify import verify_lot
    from supply_chain.store.models import Lot

    runtime = Runtime(Settings.from_env(env=env))
    out = []
    try:
        with runtime.ctx() as ctx:
            count = ctx.session.scalar(select(func.count()).select_from(Lot)) or 0
            ids = {1 + (k * count) // max(extra, 1) for k in range(extra)}
            chosen = list(ctx.session.scalars(select(Lot).where(Lot.id.in_(ids))))
            for name in ("farm", "deep", "wide", "typical"):
                gtin, code = built.label(name)
                chosen.append(ctx.session.scalars(select(Lot).where(Lot.gtin == gtin, Lot.lot_code == code)).one())
            for lot in chosen:
                out.append((verify_lot(ctx, lot, save=False).state, f"{lot.gtin}/{lot.lot_code}"))
    finally:
        runtime.close()
    return out


if __name__ == "__main__":
    sys.exit(main())
