"""Bringing the store level with the chain when a process starts (and on demand)."""

from __future__ import annotations

import logging

from supply_chain.domain.errors import ChainUnavailable
from supply_chain.services import indexer, orgs
from supply_chain.services.runtime import Runtime

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
