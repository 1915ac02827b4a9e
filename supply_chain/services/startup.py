"""Bringing the store level with the chain when a process starts (and on demand)."""

from __future__ import annotations

import logging
import threading
import time

from supply_chain.domain.errors import ChainUnavailable
from supply_chain.services import indexer, orgs
from supply_chain.services.runtime import Runtime
from supply_chain.services.verify import verify_all

log = logging.getLogger(__name__)


def catch_up(runtime: Runtime, *, tolerate_outage: bool = False) -> dict[str, int]:
    """Settle pending writes (confirm, resend or fail them), then index every log since the cursor.

    With `tolerate_outage`, an unreachable chain is logged and the pending rows stay for the next try
    (the web app starts anyway and answers 503 on writes); otherwise ChainUnavailable propagates.
    """
    try:
        if runtime.settings.chain_mode == "embedded":
            with runtime.ctx() as ctx:
                orgs.deploy(ctx)  # once per installation; the embedded chain is this installation's own
        with runtime.ctx() as ctx:
            counts = indexer.reconcile_pending(ctx)
        with runtime.ctx() as ctx:
            report = indexer.sync(ctx)
        counts["indexed"] = report.applied
        return counts
    except ChainUnavailable as exc:
        if not tolerate_outage:
            raise
        log.warning("chain unavailable at start-up; pending writes stay pending: %s", exc.message)
        return {}


class Maintenance(threading.Thread):
    """While the server runs: index new chain logs (writes from other app instances or nodes, and pending
    writes settled) every `sync_seconds`, and verify every lot again every `verify_seconds`, so pages that
    read the stored verification state are re-checked on a schedule as well as after each write."""

    def __init__(self, runtime: Runtime, sync_seconds: float = 30.0, verify_seconds: float = 600.0) -> None:
        super().__init__(name="lotline-maintenance", daemon=True)
        self.runtime = runtime
        self.sync_seconds = sync_seconds
        self.verify_seconds = verify_seconds
        self._stop_event = threading.Event()

    def run(self) -> None:
        next_verify = time.monotonic() + self.verify_seconds
        while not self._stop_event.wait(self.sync_seconds):
            try:
                catch_up(self.runtime)
                if time.monotonic() >= next_verify:
                    with self.runtime.ctx() as ctx:
                        results = verify_all(ctx)
                    bad = [r for r in results if r.state in ("tampered", "unverifiable")]
                    for r in bad:
                        log.error("lot %s %s is %s: %s", r.lot.gtin, r.lot.lot_code, r.state, r.detail)
                    log.info("scheduled verification: %d lots, %d with findings", len(results), len(bad))
                    next_verify = time.monotonic() + self.verify_seconds
            except ChainUnavailable as exc:
                log.warning("maintenance skipped, chain unavailable: %s", exc.message)
            except Exception:  # noqa: BLE001 - a background loop logs and carries on
                log.exception("maintenance pass failed")

    def stop(self) -> None:
        self._stop_event.set()
