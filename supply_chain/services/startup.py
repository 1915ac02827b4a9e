"""Bringing the store level with the chain when a process starts (and on demand)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from supply_chain.domain.errors import ChainUnavailable
from supply_chain.services import imports, indexer, lots, orgs, verify
from supply_chain.services.epcis import jobs as capture_jobs
from supply_chain.services.runtime import Runtime
from supply_chain.services.verify import Verification
from supply_chain.store.db import refresh_statistics
from supply_chain.store.models import Lot

log = logging.getLogger(__name__)


PENDING_GRACE = timedelta(minutes=2)
"""How old a pending write must be before a running server's maintenance pass settles it (younger ones are
being sent by their writer, in this process or another)."""


def catch_up(
    runtime: Runtime, *, tolerate_outage: bool = False, pending_grace: timedelta | None = None
) -> dict[str, int]:
    """Settle pending writes (confirm, resend or fail them), then index every log since the cursor.

    With `tolerate_outage`, an unreachable chain is logged and the pending rows stay for the next try
    (the web app starts anyway and answers 503 on writes); otherwise ChainUnavailable propagates.
    """
    try:
        if runtime.settings.chain_mode == "embedded":
            with runtime.ctx() as ctx:
                orgs.deploy(ctx)  # once per installation; the embedded chain is this installation's own
        with runtime.ctx() as ctx:
            counts = indexer.reconcile_pending(ctx, pending_grace)
        with runtime.ctx() as ctx:
            report = indexer.sync(ctx)
        counts["indexed"] = report.applied
        with runtime.ctx() as ctx:
            # A recall whose forward trace was cut short (a crash between its batches) is carried on.
            counts["recalled_downstream"] = lots.continue_recalls(ctx)
        return counts
    except ChainUnavailable as exc:
        if not tolerate_outage:
            raise
        log.warning("chain unavailable at start-up; pending writes stay pending: %s", exc.message)
        return {}


# ------------------------------------------------------------------ verification at start and on a schedule

PRUNE_SECONDS = 24 * 3600.0
"""How often the maintenance pass drops the documents of long-finished capture jobs (``jobs.prune``) and the
checked import files nobody imported (``imports.clean_staged``)."""

STATISTICS_SECONDS = 3600.0
"""How often the maintenance pass refreshes the query planner's statistics (``db.refresh_statistics``)."""

VERIFY_BATCH = 200
"""Lots verified per batch. A batch is read and verified in a read-only transaction (on SQLite it neither takes
nor waits for the write lock), with one chain call (``Ledger.get_lots``, up to 200 lots a call) and one query
per kind of row for the whole batch; its results are then written in a transaction of their own, one UPDATE
statement run per lot, so the write lock is held for that statement only, however large the batch."""


def mark_unchecked(runtime: Runtime) -> int:
    """Forget every lot's verification result (``verification_state`` None: pages say "Pending
    verification", never "verified"). Run when a server starts: the store may have been edited while it was
    stopped, so nothing it says is vouched for until verified again. Returns how many lots were marked."""
    with runtime.ctx() as ctx:
        # A bulk UPDATE bypasses the flush hook that moves revisions: move them here (the scan page's cache).
        result = ctx.session.execute(update(Lot).values(verification_state=None, revision=Lot.revision + 1))
        return int(getattr(result, "rowcount", 0) or 0)


def verify_everything(
    runtime: Runtime, batch: int = VERIFY_BATCH, report: Callable[[Verification], None] | None = None
) -> list[Verification]:
    """Verify every lot against the chain, `batch` lots per transaction (each result is committed, and so
    shown, as soon as its batch is done), in creation order; ``report`` is given every result as its batch is
    stored (``lotline verify --all`` prints them). Returns the results with findings (tampered or unverifiable)."""
    with runtime.read_ctx() as ctx:
        ids = list(ctx.session.scalars(select(Lot.id).order_by(Lot.id)))
    bad = verify_ids(runtime, ids, batch, report)
    log.info("verification: %d lots, %d with findings", len(ids), len(bad))
    return bad


def verify_ids(
    runtime: Runtime,
    ids: list[int],
    batch: int = VERIFY_BATCH,
    report: Callable[[Verification], None] | None = None,
) -> list[Verification]:
    """Verify the lots ``ids`` (store keys), `batch` at a time: a batch's lots and the rows verification compares
    are loaded together (``verify.BATCH_LOADS``, ``verify.facts_of``), the chain is asked about them in one call
    (``Ledger.get_lots``), all in one read-only transaction; then the results are stored in one short write
    transaction (``verify.store_results``), so writers never wait on the reading and checking."""
    bad: list[Verification] = []
    for start in range(0, len(ids), batch):
        with runtime.read_ctx() as ctx:
            part = select(Lot).where(Lot.id.in_(ids[start : start + batch])).options(*verify.BATCH_LOADS)
            part = part.order_by(Lot.id)
            lots = list(ctx.session.scalars(part))
            chain = ctx.ledger.get_lots([lot.lot_id for lot in lots]) if len(lots) > 1 else {}  # one call per batch
            facts = verify.facts_of(ctx, lots)
            results = []
            for lot in lots:
                answer = chain.get(lot.lot_id.lower())
                result = verify.verify_lot(ctx, lot, save=False, chain_lot=answer, facts=facts[lot.id])
                results.append((result, lot.revision))
        with runtime.ctx() as ctx:
            verify.store_results(ctx, results)
        for result, _revision in results:
            if report is not None:
                report(result)
            if result.state in ("tampered", "unverifiable"):
                log.error("lot %s %s is %s: %s", result.lot.gtin, result.lot.lot_code, result.state, result.detail)
                bad.append(result)
    return bad


class Maintenance(threading.Thread):
    """While the server runs: index new chain logs (writes from other app instances or nodes, and pending
    writes settled) every `sync_seconds`, and verify every lot again every `verify_seconds`, so pages that
    read the stored verification state are re-checked on a schedule as well as after each write.

    With `verify_at_start` the first verification pass runs at once, before the first wait: `lotline serve`
    marks every lot unchecked (`mark_unchecked`) before it serves and lets this pass vouch for them again."""

    def __init__(
        self,
        runtime: Runtime,
        sync_seconds: float = 30.0,
        verify_seconds: float = 600.0,
        *,
        verify_at_start: bool = False,
        pending_grace: timedelta = PENDING_GRACE,
    ) -> None:
        super().__init__(name="lotline-maintenance", daemon=True)
        self.runtime = runtime
        self.sync_seconds = sync_seconds
        self.verify_seconds = verify_seconds
        self.verify_at_start = verify_at_start
        self.pending_grace = pending_grace
        self.verified = threading.Event()
        """Set when a verification pass has completed (tests and health checks wait on it)."""
        self._stop_event = threading.Event()

    def run(self) -> None:
        next_verify = time.monotonic() + (0.0 if self.verify_at_start else self.verify_seconds)
        next_prune = time.monotonic() + PRUNE_SECONDS
        next_statistics = time.monotonic() + STATISTICS_SECONDS
        first = True
        while first or not self._stop_event.wait(self.sync_seconds):
            try:
                if not first:  # the app caught up when it was created
                    catch_up(self.runtime, pending_grace=self.pending_grace)
                if time.monotonic() >= next_verify:
                    verify_everything(self.runtime)
                    self.verified.set()
                    next_verify = time.monotonic() + self.verify_seconds
                if time.monotonic() >= next_statistics:
                    next_statistics = time.monotonic() + STATISTICS_SECONDS
                    refresh_statistics(self.runtime.engine)  # the store grew: keep the planner's picture of it
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_SECONDS
                    with self.runtime.ctx() as ctx:
                        if pruned := capture_jobs.prune(ctx):
                            log.info("dropped the documents of %d finished capture jobs", pruned)
                        if cleaned := imports.clean_staged(ctx):
                            log.info("removed %d checked import files nobody imported", cleaned)
            except ChainUnavailable as exc:
                log.warning("maintenance skipped, chain unavailable: %s", exc.message)
            except DBAPIError as exc:  # the database is away (or refused a statement): one line, not a trace
                log.warning("maintenance skipped, database error: %s", str(exc.orig).splitlines()[0])
            except Exception:  # noqa: BLE001 - a background loop logs and carries on
                log.exception("maintenance pass failed")
            first = False

    def stop(self) -> None:
        self._stop_event.set()
