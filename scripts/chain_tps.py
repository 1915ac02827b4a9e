"""Measure LotLedger write throughput on the embedded chain and on anvil, through the app's Ledger adapter.

Two numbers per chain:

* single events: N ``recordEvent`` transactions one after another (each waits for its receipt, as a web
  request does); the median latency and the transactions per second over the whole run;
* bulk events: one ``recordEvents`` transaction carrying B events, repeated R times; the median duration
  and the events per second it gives.

The embedded chain is measured twice: with the gas estimate (a binary search that re-runs the call) and with
``fixed_gas`` (one ``eth_call`` for the revert check, then a fixed gas limit). Anvil uses the estimate.

    python scripts/chain_tps.py                 # N=50, B=100, R=5, prints a markdown table
    python scripts/chain_tps.py --json out.json # also writes the numbers
    python scripts/chain_tps.py --skip-anvil    # embedded only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
from eth_account import Account

from supply_chain.chain.connect import ChainConnection, connect, fund
from supply_chain.chain.ledger import Ledger
from supply_chain.domain.identifiers import lot_id as lot_id_of
from supply_chain.domain.kinds import EventKind

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ANVIL_BINARY = PROJECT_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
FIXED_GAS = 10_000_000
ANVIL_ARGS = [str(ANVIL_BINARY), "--host", "127.0.0.1", "--chain-id", "31337", "--silent"]


@dataclass
class Row:
    chain: str
    gas: str
    single_n: int
    single_median_ms: float
    single_tx_per_s: float
    bulk_events: int
    bulk_repeats: int
    bulk_median_ms: float
    bulk_events_per_s: float
    bulk_gas_per_event: int


def measure(conn: ChainConnection, label: str, gas: str, n: int, batch: int, repeat: int) -> Row:
    """Deploy a fresh LotLedger, give a fresh producer a lot, and time its writes."""
    admin, producer = Account.create(), Account.create()
    for account in (admin, producer):
        fund(conn, account.address, 10 * 10**18)
    deployed, _block = Ledger.deploy(conn.w3, admin, admin.address)
    ledger = Ledger(conn.w3, deployed.address, fixed_gas=FIXED_GAS if gas == "fixed" else None)
    ledger.grant_role(admin, "producer", producer.address)
    ledger.register_company_prefix(admin, "9506000", producer.address)
    code = "BENCH" + secrets.token_hex(4)
    lot_id = lot_id_of("09506000134352", code)
    ledger.create_lot(producer, "09506000134352", code, [], EventKind.HARVESTING, secrets.token_bytes(32))

    latencies = []
    started = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        ledger.record_event(producer, lot_id, EventKind.OBSERVATION, secrets.token_bytes(32))
        latencies.append(time.perf_counter() - t0)
    single_total = time.perf_counter() - started

    durations, gas_used = [], []
    for _ in range(repeat):
        hashes = [secrets.token_bytes(32) for _ in range(batch)]
        t0 = time.perf_counter()
        result = ledger.record_events(producer, lot_id, [EventKind.OBSERVATION] * batch, hashes)
        durations.append(time.perf_counter() - t0)
        assert len(result.recorded()) == batch
        gas_used.append(result.gas_used)

    expected = 1 + n + batch * repeat
    count = ledger.get_lot(lot_id).event_count
    if count != expected:
        raise SystemExit(f"{label}: the lot has {count} events, expected {expected}")
    bulk_median = statistics.median(durations)
    return Row(
        chain=label,
        gas=gas,
        single_n=n,
        single_median_ms=round(statistics.median(latencies) * 1000, 1),
        single_tx_per_s=round(n / single_total, 1),
        bulk_events=batch,
        bulk_repeats=repeat,
        bulk_median_ms=round(bulk_median * 1000, 1),
        bulk_events_per_s=round(batch / bulk_median, 1),
        bulk_gas_per_event=round(statistics.median(gas_used) / batch),
    )


# ------------------------------------------------------------------------------------------- anvil


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_anvil(log: Path, timeout: float = 30.0) -> Iterator[str]:
    """Run anvil from node_modules on a free loopback port for the duration of the block."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ANVIL_ARGS + ["--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"anvil did not start on {url}: {log.read_text(errors='replace')[-2000:]}")
            try:
                probe = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
                requests.post(url, json=probe, timeout=1).json()
                break
            except (requests.ConnectionError, requests.Timeout, ValueError):
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# ------------------------------------------------------------------------------------------- output


def table(rows: list[Row]) -> str:
    lines = [
        "| chain | gas limit | recordEvent median latency | recordEvent tx/s "
        "| recordEvents(B) median | events/s in bulk | gas per bulk event |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.chain} | {r.gas} | {r.single_median_ms:.1f} ms | {r.single_tx_per_s:.1f} "
            f"| {r.bulk_median_ms:.1f} ms (B={r.bulk_events}) | {r.bulk_events_per_s:.0f} "
            f"| {r.bulk_gas_per_event} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=50, help="single recordEvent transactions (default 50)")
    parser.add_argument("--batch", type=int, default=100, help="events per recordEvents call (default 100)")
    parser.add_argument("--repeat", type=int, default=5, help="recordEvents calls to time (default 5)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--skip-anvil", action="store_true", help="measure the embedded chain only")
    args = parser.parse_args(argv)
    if min(args.n, args.batch, args.repeat) < 1:
        parser.error("--n, --batch and --repeat must be at least 1")

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="lotline-tps-") as tmp:
        home = Path(tmp)
        conn = connect(home / "embedded", None)
        try:
            rows.append(measure(conn, "embedded", "estimate", args.n, args.batch, args.repeat))
            rows.append(measure(conn, "embedded", "fixed", args.n, args.batch, args.repeat))
        finally:
            conn.close()
        if args.skip_anvil:
            pass
        elif not ANVIL_BINARY.is_file():
            print(f"anvil not installed ({ANVIL_BINARY}): run npm ci, or pass --skip-anvil", file=sys.stderr)
            return 2
        else:
            with running_anvil(home / "anvil.log") as url:
                anvil = connect(home / "anvil", url, timeout=30.0)
                try:
                    rows.append(measure(anvil, "anvil", "estimate", args.n, args.batch, args.repeat))
                finally:
                    anvil.close()

    print(table(rows))
    if args.json:
        report = {
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "system": platform.platform(),
            },
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "fixed_gas": FIXED_GAS,
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
