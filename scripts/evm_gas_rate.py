"""How fast the embedded chain (py-evm) runs the multicall transactions of a capture batch, in gas per second.

    PYTHONPATH=. python scripts/evm_gas_rate.py [--batches 3] [--calls 40] [--anvil]

A fresh instance, one producer; each batch is one multicall of ``--calls`` ``createLot`` calls (new lots, one
harvesting event each), sent and waited for through the app's Ledger as a capture job sends it (no pre-flight
call on the embedded chain). Printed: gas per batch, seconds per batch, gas/s, and what 10,000 such lots cost
at that rate. Nothing here is a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from supply_chain.chain.devnode import start_anvil
from supply_chain.chain.devnode import stop as stop_node
from supply_chain.chain.ledger import Call
from supply_chain.domain.identifiers import gs1_check_digit
from supply_chain.domain.kinds import EventKind
from supply_chain.services import orgs
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.services.startup import catch_up


def _with_check(body: str) -> str:
    return body + str(gs1_check_digit(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--anvil", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="lotline-gas-rate-"))
    node = None
    chain_url = None
    if args.anvil:
        chain_url, node = start_anvil(home / "anvil.log")
    settings = Settings.from_env(
        env={}, home=home, secret_key="bench-secret", public_url="https://bench.test", chain_url=chain_url
    )
    runtime = Runtime(settings)
    try:
        if args.anvil:
            with runtime.ctx() as ctx:
                orgs.deploy(ctx)
        catch_up(runtime)
        with runtime.ctx() as ctx:
            regulator = orgs.onboard(ctx, None, "Gas Regulator", ["regulator", "admin"])
            farm = orgs.onboard(ctx, regulator, "Gas Farm", ["producer"], "0790001")
            gtin = orgs.register_product(ctx, farm, _with_check("0079000100001"), "Gas greens", "test", True).gtin
            account = orgs.signer(ctx, farm)
        ledger = runtime.ledger
        rows = []
        for batch in range(args.batches):
            calls = [
                Call.create_lot(gtin, f"GAS-{batch:03d}-{i:04d}", [], EventKind.HARVESTING, "0x" + f"{i + 1:064x}")
                for i in range(args.calls)
            ]
            started = time.perf_counter()
            prepared = ledger.prepare_multicall(account, calls, check=False)
            result = ledger.submit(prepared)
            seconds = time.perf_counter() - started
            rows.append({"gas": result.gas_used, "seconds": round(seconds, 3)})
        rate = statistics.median(r["gas"] / r["seconds"] for r in rows)
        per_lot = statistics.median(r["gas"] for r in rows) / args.calls
        out = {
            "chain": "anvil" if args.anvil else "embedded",
            "batches": rows,
            "gas_per_lot": round(per_lot),
            "gas_per_second": round(rate),
            "seconds_for_10000_lots": round(10_000 * per_lot / rate, 1),
        }
        print(json.dumps(out, indent=2))
    finally:
        runtime.close()
        if node is not None:
            stop_node(node)


if __name__ == "__main__":
    main()
