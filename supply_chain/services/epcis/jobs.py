"""EPCIS capture jobs: a document is checked and planned when it is sent, then written in bounded batches.

``submit`` validates the document and plans and rehearses every write (``capture.plan_capture``), exactly as
a synchronous capture does, so a refused document is refused at once with a result per event and nothing
written. An accepted document is stored as a ``CaptureJob`` with its plan frozen as JSON (its steps).

``run_job`` writes the steps in batches of at most ``BATCH_CALLS`` contract calls: each batch is one unit of
work (its rows, one multicall transaction, its receipt applied, the job's progress) and the database's write
lock is free between batches, so other requests are served while a large document is written. Every Lotline
event a step writes carries the idempotency key ``epcis-job:{job}:{event index}:{step}:{n}``: after a crash
(or any interruption) the job is resumed from the first step that has no event yet - pending transactions
are settled first, written steps are never sent again, so a resumed capture never meets its own lots as
``lot_exists``.

Before a queued job's first batch its plan is made again on the state of that moment if the store's lots
have changed since it was planned (``store_mark``): a document that no longer fits fails with a result per
event and nothing written. A refusal by the chain in a later batch (the state moved while the job ran)
fails the job with the exact report: events written (``captured``), the refused one (``rejected``, with
the reason), the rest not written (``accepted``).

Who runs jobs: ``CaptureWorker`` (a thread of ``lotline serve``), ``lotline jobs run``, or the request itself
for a document that fits in one batch (``runs_inline``). Jobs are claimed with a lease renewed after every
batch; a running job whose lease has passed (its process died) is taken over by the next worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, and_, cast, func, or_, select, update
from sqlalchemy.orm import defer, object_session, selectinload

from supply_chain.domain.errors import ChainUnavailable, Conflict, InvalidInput, LotlineError, NotFound
from supply_chain.domain.identifiers import lot_id
from supply_chain.services import imports, indexer
from supply_chain.services.epcis import adopt, named, repository, vocabulary
from supply_chain.services.epcis.capture import (
    MAX_CALLS_PER_TRANSACTION,
    CapturePlan,
    CaptureRejected,
    Step,
    Writer,
    new_lot_ids,
    plan_capture,
    written,
)
from supply_chain.services.runtime import Ctx, Runtime
from supply_chain.store.models import CaptureJob, EpcisEvent, Event, Organisation

log = logging.getLogger(__name__)

BATCH_CALLS = MAX_CALLS_PER_TRANSACTION
"""Contract calls per batch: one multicall transaction (a transformation's outputs are never split)."""
LEASE = timedelta(minutes=2)
"""How long a running job is presumed to have a live worker after its last batch."""
MAX_ATTEMPTS = 3
"""Runs interrupted by an unexpected error before the job is failed (a crash is not counted: it is resumed)."""
PAUSE_SECONDS = 0.01
"""A breath between batches, so requests waiting for the write lock get it before the next batch."""

KEY_PREFIX = "epcis-job"

PLANNERS: dict[str, Callable[[Ctx, Organisation, Any], CapturePlan]] = {
    "epcis": plan_capture,
    "import": imports.plan_import,
}
"""How a job's document is checked and planned, by the job's source: an EPCIS 2.0 document, or the rows of a
bulk import file (``services.imports``). Both plan to the same steps, written by the same batches."""
REJECTIONS: tuple[type[LotlineError], ...] = (CaptureRejected, imports.ImportRejected)
"""The refusals that carry a result per event (or row)."""


# ------------------------------------------------------------------ keys


def _prefix(job_id: int) -> str:
    return f"{KEY_PREFIX}:{job_id}:"


def step_key(job_id: int) -> Callable[[Step, int], str]:
    """The idempotency key of the ``n``-th Lotline event of a step of job ``job_id``."""
    return lambda step, n: f"{_prefix(job_id)}{step.index}:{step.number}:{n}"


def _parse(key: str) -> tuple[int, int]:
    """(EPCIS event index, step number) of a job's event key."""
    _, _, index, number, _ = key.split(":")
    return int(index), int(number)


def job_events(ctx: Ctx, job_id: int) -> list[Event]:
    """Every Lotline event job ``job_id`` wrote (failed attempts left out), in step order. The keys share a
    prefix, so this is a range scan of the events' unique key index."""
    prefix = _prefix(job_id)
    statement = (
        select(Event)
        .where(Event.idempotency_key >= prefix, Event.idempotency_key < prefix[:-1] + ";")
        .options(selectinload(Event.lot))
    )
    return sorted(
        (e for e in ctx.session.scalars(statement) if e.status != "failed"),
        key=lambda e: (_parse(e.idempotency_key or "")[1], e.idempotency_key),
    )


def store_mark(ctx: Ctx) -> list[int]:
    """A mark of the lots' state in the store: every change a plan depends on (a lot created, an event
    recorded, a transaction confirmed or failed) moves the events' highest id, their count or the count of
    confirmed ones. A queued job whose mark still holds when it starts need not be planned again."""
    row = ctx.session.execute(
        select(func.max(Event.id), func.count(Event.id), func.count(Event.id).filter(Event.status == "confirmed"))
    ).one()
    return [int(value or 0) for value in row]


def document_hash(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ------------------------------------------------------------------ submitting


def runs_inline(job: CaptureJob) -> bool:
    """Whether the request that submitted ``job`` writes it itself: it was claimed at submission because its
    writes fit in one batch (one transaction, as an ordinary write)."""
    return job.status == "running" and job.batches_done == 0 and job.writes_total <= BATCH_CALLS


def submit(
    ctx: Ctx,
    org: Organisation,
    document: object,
    *,
    source: str = "epcis",
    idempotency_key: str | None = None,
    inline_calls: int = BATCH_CALLS,
    prepared: dict[str, Any] | None = None,
) -> tuple[CaptureJob, bool]:
    """Check and plan ``document`` for ``org`` and store it as a capture job (not committed). Returns the job
    and whether it is an earlier one: the same document while its job is queued or running, or the same
    ``idempotency_key``.

    A plan of at most ``inline_calls`` contract calls is claimed at once (status running) for the caller to
    write (``runs_inline``); a larger one is queued for a worker. ``source`` names the document's kind
    (``PLANNERS``: ``epcis`` or ``import``). ``prepared`` (``prepared_plan`` of a dry run of the same
    document) is used instead of planning again when the store's mark has not moved since. Raises
    InvalidInput (schema) or CaptureRejected / ImportRejected (422, a result per event or row): nothing is
    stored then.
    """
    digest = document_hash(document)
    earlier = ctx.session.scalars(
        select(CaptureJob)
        .where(
            CaptureJob.organisation_id == org.id,
            CaptureJob.source == source,
            or_(
                and_(CaptureJob.document_sha256 == digest, CaptureJob.status.in_(("queued", "running"))),
                and_(CaptureJob.idempotency_key.is_not(None), CaptureJob.idempotency_key == idempotency_key),
            ),
        )
        .order_by(CaptureJob.id.desc())
    ).first()
    if earlier is not None:
        return earlier, True
    mark = store_mark(ctx)
    if prepared is not None and prepared.get("mark") == mark:
        steps = [Step.from_json(step) for step in prepared["steps"]]
        results = list(prepared["results"])
    else:
        plan = PLANNERS[source](ctx, org, document)
        steps, results = plan.steps, [r.to_dict() for r in plan.results]
    calls = sum(step.calls for step in steps)
    now = datetime.now(UTC)
    job = CaptureJob(
        organisation_id=org.id,
        source=source,
        status="queued",
        document=document,
        document_sha256=digest,
        idempotency_key=idempotency_key,
        events_total=len(results),
        writes_total=calls,
        results=_base_results(results, steps),
        plan={"steps": [s.to_json() for s in steps], "mark": mark},
        transactions=[],
        created_at=now,
        updated_at=now,
    )
    if calls <= inline_calls:
        job.status, job.lease_until, job.started_at = "running", now + LEASE, now
    ctx.session.add(job)
    ctx.session.flush()
    if source == "epcis":  # an imported spreadsheet is not an EPCIS document: the repository keeps no copy of it
        repository.store(ctx, job, document, job.results)  # type: ignore[arg-type] # validated by plan_capture
    return job, False


class EventExists(Conflict):
    """Raised when a single captured event (``submit_event``) is already in the repository (the REST binding's
    ``ResourceAlreadyExistsException``, 409)."""

    code = "epcis_event_exists"
    details = {"type": "epcisException:ResourceAlreadyExistsException"}


SINGLE_EVENT_PATH = "epcisBody.eventList[0]"


def _within_event(field: str | None) -> str | None:
    """A field path of the one-event document, as a path within the event."""
    if field is None or not field.startswith(SINGLE_EVENT_PATH):
        return field
    return field[len(SINGLE_EVENT_PATH) :].lstrip(".") or "(event)"


def submit_event(
    ctx: Ctx, org: Organisation, event: object, *, idempotency_key: str | None = None
) -> tuple[CaptureJob, bool]:
    """Submit one event (the REST binding's ``POST /events``) as a document holding only it, through
    ``submit``: the same checks, plan and capture job as ``/capture``. Its ``@context`` (GS1's if it names
    none) becomes the document's. A refusal names the field within the event (``bizStep``, not
    ``epcisBody.eventList[0].bizStep``); an event already captured is ``EventExists`` and nothing is stored."""
    if not isinstance(event, dict):
        raise InvalidInput("an EPCIS event must be a JSON object", field="(event)", code="epcis_schema_invalid")
    body = dict(event)
    context = body.pop("@context", None) or [vocabulary.EPCIS_CONTEXT]
    document = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "epcisBody": {"eventList": [body]},
    }
    try:
        job, earlier = submit(ctx, org, document, idempotency_key=idempotency_key)
    except InvalidInput as exc:  # a schema refusal (400) or a rule's (CaptureRejected, 422, its one result)
        exc.field = _within_event(exc.field)
        exc.message = exc.message.replace(SINGLE_EVENT_PATH + ".", "").replace(SINGLE_EVENT_PATH, "(event)")
        for result in (getattr(exc, "details", None) or {}).get("events", []):
            result["field"] = _within_event(result.get("field"))
        raise
    result = (job.results or [{}])[0]
    if not earlier and result.get("status") == "duplicate":
        raise EventExists(f"eventID: {result.get('reason', 'already captured')}", field="eventID")
    return job, earlier


def prepared_plan(ctx: Ctx, plan: CapturePlan) -> dict[str, Any]:
    """A plan just made (a dry run), frozen with the store's mark: ``submit(prepared=...)`` takes it instead of
    planning again while the mark still holds (no lot changed since), as a queued job does (``_resume``)."""
    return {
        "steps": [s.to_json() for s in plan.steps],
        "results": [r.to_dict() for r in plan.results],
        "mark": store_mark(ctx),
    }


def _base_results(results: list[dict[str, Any]], steps: list[Step]) -> list[dict[str, Any]]:
    by_index: dict[int, list[Step]] = defaultdict(list)
    for step in steps:
        by_index[step.index].append(step)
    return [_base_result(r, by_index.get(r["index"], [])) for r in results]


def _base_result(result: dict[str, Any], steps: list[Step]) -> dict[str, Any]:
    """What is stored per event: its result without writes, how many Lotline events it writes (``calls``)
    and the lots it creates (``creates``); ``steps`` may be all the plan's or the event's own."""
    mine = [s for s in steps if s.index == result["index"]]
    creates = [list(s.key) for s in mine if s.action == "create" and s.key] + [
        list(o["key"]) for s in mine if s.action == "transform" for o in s.outputs
    ]
    return {k: v for k, v in result.items() if k != "lotline_events"} | {
        "calls": sum(s.calls for s in mine),
        "creates": creates,
    }


# ------------------------------------------------------------------ reading


def get(ctx: Ctx, org: Organisation, job_id: int, source: str = "epcis") -> CaptureJob:
    """Job ``job_id`` if ``org`` sent it from ``source``; NotFound otherwise (another organisation's job does
    not exist, nor is an import an EPCIS capture)."""
    job = ctx.session.get(CaptureJob, job_id)
    if job is None or job.organisation_id != org.id or job.source != source:
        what = "import" if source == "import" else "capture job"
        raise NotFound(f"no {what} {job_id} of {org.name}", field="job_id", code=f"unknown_{what.replace(' ', '_')}")
    return job


def describe(ctx: Ctx, job: CaptureJob, *, events: bool = True) -> dict[str, Any]:
    """The job as the API shows it: status, counts, error and, with ``events``, the result of every EPCIS
    event with the Lotline events it wrote (and so the lots it created)."""
    data: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "events_total": job.events_total,
        "events_written": job.events_written,
        "writes_total": job.writes_total,
        "writes_done": job.writes_done,
        "batches_done": job.batches_done,
        "transactions": list(job.transactions or []),
        "error": (
            {"error": job.error_code, "message": job.error_message, "field": job.error_field}
            if job.error_message
            else None
        ),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if not events:
        return data
    by_event: dict[int, list[Event]] = defaultdict(list)
    for event in job_events(ctx, job.id):
        by_event[_parse(event.idempotency_key or "")[0]].append(event)
    results = []
    created = []
    for stored in job.results or []:
        result = {k: v for k, v in stored.items() if k not in ("calls", "creates")}
        writes = by_event.get(stored["index"], [])
        result["lotline_events"] = [written(e) for e in writes]
        if result["status"] == "accepted" and writes and len(writes) >= stored.get("calls", 1):
            result["status"] = "captured"
            created += [{"gtin": gtin, "lot_code": code} for gtin, code in stored.get("creates", [])]
        results.append(result)
    data["events"] = results
    data["lots_created"] = created
    return data


# ------------------------------------------------------------------ running


@dataclass
class _Progress:
    steps: list[Step]
    first: int  # the first step not written
    transactions: list[str]

    def counts(self) -> dict[str, int]:
        done = self.steps[: self.first]
        last_of: dict[int, int] = {}
        for position, step in enumerate(self.steps):
            last_of[step.index] = position
        return {
            "writes_done": sum(s.calls for s in done),
            "events_written": sum(1 for position in last_of.values() if position < self.first),
        }


class _Stopped(Exception):
    """The worker was asked to stop between batches; the job goes back to the queue."""


def run_job(
    runtime: Runtime,
    job_id: int,
    *,
    batch_calls: int = BATCH_CALLS,
    replan: bool = True,
    stop: Callable[[], bool] = lambda: False,
    after_batch: Callable[[int], None] | None = None,
) -> str:
    """Write job ``job_id`` (claimed by the caller) batch by batch until it is done; returns its status.

    ``replan``: plan the document again first when the job has written nothing yet (it may have waited while
    the state moved). ``stop`` is asked between batches (true: the job is queued again, to be resumed).
    ``after_batch`` is called with the number of batches done after each one (tests interrupt a job there).
    Refusals fail the job with a report; an unreachable chain or an unexpected error queues it again (after
    ``MAX_ATTEMPTS`` unexpected errors it fails); a BaseException (a crash) leaves it running until its lease
    passes.
    """
    try:
        progress = _resume(runtime, job_id, replan)
        if progress is None:
            return "failed"
        while progress.first < len(progress.steps):
            if stop():
                raise _Stopped
            _write_batch(runtime, job_id, progress, batch_calls)
            if after_batch is not None:
                after_batch(_batches(runtime, job_id))
            time.sleep(PAUSE_SECONDS)
        with runtime.ctx() as ctx:
            job = ctx.session.get(CaptureJob, job_id)
            assert job is not None
            job.status, job.lease_until, job.finished_at = "done", None, datetime.now(UTC)
            job.error_code = job.error_message = job.error_field = None
            repository.settle(ctx, job)
            # stream subscriptions: the newly captured events their queries select, delivered after the commit
            named.on_captured(ctx, job_id, vocabulary.CONTEXT)
            # the lots of events the chain already held (a Lotline export) become lots here, in the same unit
            adopt.adopt(ctx, job_id)
        _anchor(runtime, job_id)
        return "done"
    except _Stopped:
        _requeue(runtime, job_id, None)
        return "queued"
    except ChainUnavailable as exc:
        _requeue(runtime, job_id, exc, count=False)
        return "queued"
    except LotlineError as exc:
        _fail(runtime, job_id, exc)
        return "failed"
    except Exception as exc:  # noqa: BLE001 - recorded on the job; retried, then failed
        log.exception("capture job %s interrupted", job_id)
        return _requeue(runtime, job_id, exc)


_PROGRESS_ONLY = (defer(CaptureJob.document), defer(CaptureJob.plan), defer(CaptureJob.results))
"""How a batch reads its job: without the document, the plan and the results, which it does not use (10,000
events are megabytes of JSON, read and parsed again for every batch: the run grew with the square of the size)."""


def _batches(runtime: Runtime, job_id: int) -> int:
    with runtime.ctx() as ctx:
        job = ctx.session.get(CaptureJob, job_id, options=_PROGRESS_ONLY)
        return job.batches_done if job is not None else 0


def _resume(runtime: Runtime, job_id: int, replan: bool) -> _Progress | None:
    """The job's steps and the first one not written, after settling its pending transactions; the plan made
    again first when nothing is written yet and ``replan``. None when the new plan refused the document."""
    with runtime.ctx() as ctx:
        job = ctx.session.get(CaptureJob, job_id)
        assert job is not None
        events = job_events(ctx, job_id)
        if any(e.status == "pending" and e.tx_hash not in runtime.in_flight for e in events):
            indexer.reconcile_pending(ctx)  # a crash between sending and applying: confirmed, resent or failed
            ctx.session.commit()
            events = job_events(ctx, job_id)
        if not events and replan and (job.plan or {}).get("mark") != store_mark(ctx):
            try:
                if job.source == "epcis":  # its own events, stored by an earlier pass, are not duplicates
                    plan = plan_capture(ctx, job.organisation, job.document, exclude_job=job.id)
                else:
                    plan = PLANNERS[job.source](ctx, job.organisation, job.document)
            except REJECTIONS as exc:
                job.results = [_base_result(r.to_dict(), []) for r in exc.results]  # the new plan's verdicts
                _set_failed(job, exc)
                return None
            except LotlineError as exc:
                if isinstance(exc, ChainUnavailable):
                    raise
                _set_failed(job, exc)
                return None
            job.plan = {"steps": [s.to_json() for s in plan.steps], "mark": store_mark(ctx)}
            job.writes_total = plan.calls
            job.results = _base_results([r.to_dict() for r in plan.results], plan.steps)
        steps = [Step.from_json(s) for s in (job.plan or {}).get("steps", [])]
        done = {_parse(e.idempotency_key or "")[1] for e in events}
        first = next((i for i, s in enumerate(steps) if s.number not in done), len(steps))
        progress = _Progress(steps, first, list(job.transactions or []))
        counts = progress.counts()
        job.writes_done, job.events_written = counts["writes_done"], counts["events_written"]
        job.lease_until = datetime.now(UTC) + LEASE
        return progress


def _write_batch(runtime: Runtime, job_id: int, progress: _Progress, batch_calls: int) -> None:
    """Write the next batch of steps (one unit of work) and record the job's progress."""
    batch: list[Step] = []
    calls = 0
    for step in progress.steps[progress.first :]:
        if batch and calls + step.calls > batch_calls:
            break
        batch.append(step)
        calls += step.calls
    with runtime.ctx() as ctx:
        job = ctx.session.get(CaptureJob, job_id, options=_PROGRESS_ONLY)
        assert job is not None
        key = step_key(job_id)
        # a failed attempt of a step (its transaction never mined) gives its key up to the new attempt
        keys = [key(step, n) for step in batch for n in range(step.calls)]
        ctx.session.execute(
            update(Event).where(Event.idempotency_key.in_(keys), Event.status == "failed").values(idempotency_key=None)
        )
        # The steps were planned and rehearsed (every new lot found absent on chain then, in bulk): each batch
        # runs on the chain once, with no pre-flight call and no second look-up of its new lots (on the embedded
        # chain each is an EVM run of ``getLot``). A refusal (the state moved while the job ran, another writer
        # created one of its lots) applies nothing of the batch, fails its rows and names the refused step.
        absent = set(new_lot_ids(batch))
        writer = Writer(ctx, job.organisation, key=key, absent=absent, check=False)
        current = batch[0]
        try:
            for step in batch:
                current = step
                writer.write(step)
            current = batch[0]  # refused when sent, traced to no one call: the transaction carries the whole batch
            writer.flush()
        except LotlineError as exc:
            if not isinstance(exc, ChainUnavailable):
                # the refused call found by bisection, else the step acting on the lot the chain named
                index = getattr(exc, "index", None)
                if index is None:
                    index = (_refused_step(batch, exc) or current).index
                if job.source == "epcis":
                    exc.field = exc.field or f"epcisBody.eventList[{index}]"
                exc.index = index  # type: ignore[attr-defined]
            raise
        progress.first += len(batch)
        progress.transactions += writer.transactions
        job = ctx.session.get(CaptureJob, job_id)  # execute committed: read it again
        assert job is not None
        counts = progress.counts()
        job.writes_done, job.events_written = counts["writes_done"], counts["events_written"]
        job.batches_done += 1
        job.transactions = list(progress.transactions)
        job.lease_until = datetime.now(UTC) + LEASE
        job.updated_at = datetime.now(UTC)


def _refused_step(batch: list[Step], exc: LotlineError) -> Step | None:
    """The first step of ``batch`` acting on the lot the chain refused (its custom error names the lot), so
    the refusal of a whole batch's transaction is reported on the event or row that caused it."""
    refused = str((getattr(exc, "chain_args", None) or {}).get("lotId") or "").lower()
    if not refused:
        return None
    for step in batch:
        keys = [step.key] if step.key else []
        keys += [o["key"] for o in step.outputs] + [k for o in step.outputs for k, _q in o.get("inputs", [])]
        if any("0x" + lot_id(*key).hex() == refused for key in keys):
            return step
    return None


def _set_failed(job: CaptureJob, exc: LotlineError) -> None:
    job.status, job.lease_until, job.finished_at = "failed", None, datetime.now(UTC)
    job.error_code, job.error_message, job.error_field = exc.code, exc.message, exc.field
    session = object_session(job)
    if session is not None:
        session.execute(update(EpcisEvent).where(EpcisEvent.capture_job_id == job.id).values(state="failed"))


def _anchor(runtime: Runtime, job_id: int) -> None:
    """Anchor a done job's events on chain; an unreachable chain leaves the anchor pending (sent later by
    ``anchor_pending``, at the start of the next pass of jobs)."""
    try:
        with runtime.ctx() as ctx:
            repository.anchor(ctx, job_id)
    except LotlineError as exc:  # the job is done whatever becomes of its anchor; it is retried later
        log.warning("capture job %s: anchor left pending: %s", job_id, exc.message)


def _fail(runtime: Runtime, job_id: int, exc: LotlineError) -> None:
    """A refusal while writing: the job fails; the refused event is reported with the reason."""
    with runtime.ctx() as ctx:
        job = ctx.session.get(CaptureJob, job_id)
        assert job is not None
        index = getattr(exc, "index", None)
        if index is not None:
            refused = {"status": "rejected", "code": exc.code, "reason": exc.message, "field": exc.field}
            if job.source == "import":  # a row is named by its number and the column, as at planning
                refused["column"] = imports.refusal_column(job.document, index, exc)
            job.results = [r | refused if r["index"] == index else r for r in job.results]
        _set_failed(job, exc)


def _requeue(runtime: Runtime, job_id: int, exc: BaseException | None, *, count: bool = True) -> str:
    """Put an interrupted job back in the queue (resumed by the next pass), recording why; after
    ``MAX_ATTEMPTS`` unexpected errors it fails instead."""
    with runtime.ctx() as ctx:
        job = ctx.session.get(CaptureJob, job_id)
        assert job is not None
        job.status, job.lease_until = "queued", None
        if exc is None:
            return "queued"
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        job.error_code = getattr(exc, "code", None) or "interrupted"
        job.error_message = f"interrupted after {job.batches_done} batch(es), will be resumed: {message}"
        job.error_field = None
        if count:
            job.attempts += 1
            if job.attempts >= MAX_ATTEMPTS:
                job.status, job.finished_at = "failed", datetime.now(UTC)
                repository.settle(ctx, job)
                job.error_message = f"failed after {job.attempts} interrupted attempts: {message}"
        return job.status


# ------------------------------------------------------------------ claiming and the worker


def claim(ctx: Ctx, job_id: int) -> bool:
    """Take job ``job_id`` if it is queued, or running with a lease that has passed (its worker died)."""
    now = datetime.now(UTC)
    result = ctx.session.execute(
        update(CaptureJob)
        .where(
            CaptureJob.id == job_id,
            or_(
                CaptureJob.status == "queued",
                and_(CaptureJob.status == "running", CaptureJob.lease_until < now),
            ),
        )
        .values(status="running", lease_until=now + LEASE, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False
    job = ctx.session.get(CaptureJob, job_id)
    assert job is not None
    ctx.session.refresh(job)
    if job.started_at is None:
        job.started_at = now
    return True


def runnable(ctx: Ctx) -> list[int]:
    """Jobs a worker may take now, oldest first."""
    now = datetime.now(UTC)
    return list(
        ctx.session.scalars(
            select(CaptureJob.id)
            .where(
                or_(
                    CaptureJob.status == "queued",
                    and_(CaptureJob.status == "running", CaptureJob.lease_until < now),
                )
            )
            .order_by(CaptureJob.id)
        )
    )


def run_pending(
    runtime: Runtime,
    *,
    stop: Callable[[], bool] = lambda: False,
    batch_calls: int = BATCH_CALLS,
    after_batch: Callable[[int], None] | None = None,
) -> dict[int, str]:
    """Run every job that may be taken now, one after the other; returns each one's status."""
    outcome: dict[int, str] = {}
    try:
        with runtime.ctx() as ctx:
            repository.anchor_pending(ctx)
    except LotlineError as exc:
        log.warning("EPCIS anchors wait: %s", exc.message)
    while not stop():
        with runtime.ctx() as ctx:
            ids = [i for i in runnable(ctx) if i not in outcome]
        if not ids:
            break
        with runtime.ctx() as ctx:
            taken = claim(ctx, ids[0])
        if not taken:
            outcome[ids[0]] = "taken"  # another worker has it
            continue
        outcome[ids[0]] = run_job(runtime, ids[0], batch_calls=batch_calls, stop=stop, after_batch=after_batch)
    return outcome


PRUNED = {"pruned": True}
KEEP_DOCUMENTS = timedelta(days=30)
"""How long a finished (done or failed) job keeps the document it was sent and its frozen plan. The job row
(status, counts, per-event results) stays; the events it wrote carry their own payloads."""


def prune(ctx: Ctx, older_than: timedelta = KEEP_DOCUMENTS) -> int:
    """Drop the documents and plans of jobs finished more than ``older_than`` ago; returns how many. A pruned
    job's document reads ``{"pruned": true}``; its SHA-256 still answers "have you seen this document"."""
    cutoff = datetime.now(UTC) - older_than
    done = ctx.session.execute(
        update(CaptureJob)
        .where(
            CaptureJob.status.in_(("done", "failed")),
            CaptureJob.finished_at.is_not(None),
            CaptureJob.finished_at < cutoff,
            func.length(cast(CaptureJob.document, Text)) > len(json.dumps(PRUNED)),  # not pruned already
        )
        .values(document=PRUNED, plan=None)
    )
    return int(done.rowcount or 0)


class CaptureWorker(threading.Thread):
    """While the server runs: write queued capture jobs (and take over those a dead process left), woken by
    a new job (``wake``) or every ``poll_seconds`` (jobs queued by another process)."""

    def __init__(self, runtime: Runtime, poll_seconds: float = 5.0, *, batch_calls: int = BATCH_CALLS) -> None:
        super().__init__(name="lotline-capture-jobs", daemon=True)
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.batch_calls = batch_calls
        self._wake = threading.Event()
        self._stop_event = threading.Event()
        self.idle = threading.Event()
        """Set while the worker waits with nothing to do (tests wait on it)."""

    def wake(self) -> None:
        self._wake.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.idle.clear()
            try:
                run_pending(self.runtime, stop=self._stop_event.is_set, batch_calls=self.batch_calls)
            except ChainUnavailable as exc:
                log.warning("capture jobs wait, chain unavailable: %s", exc.message)
            except Exception:  # noqa: BLE001 - a background loop logs and carries on
                log.exception("capture job pass failed")
            if not self._wake.is_set():
                self.idle.set()
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def stop(self) -> None:
        """Finish the batch in progress, put its job back in the queue, and end."""
        self._stop_event.set()
        self._wake.set()
