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
import sys
import time
from pathlib import Path

from supply_chain.chain.ledger import Call
from supply_chain.domain.kinds import EventKind
from supply_chain.services import orgs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capture_job_bench import producer_instance  # noqa: E402  (a script beside this one)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--anvil", action="store_true")
    args = parser.parse_args()
    with producer_instance(args.anvil, prefix="lotline-gas-rate-") as made:
        with made.runtime.ctx() as ctx:
            account = orgs.signer(ctx, ctx.session.merge(made.farm))
        gtin = made.gtin
        ledger = made.runtime.ledger
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


if __name__ == "__main__":
    main()
