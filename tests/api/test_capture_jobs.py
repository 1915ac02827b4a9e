"""EPCIS capture jobs (issue 9 item 3): a large document is answered 202 with a job and written in batches
while other requests are served; an interrupted job resumes and writes every event exactly once; a
document that no longer fits when its turn comes fails with nothing written; a job is its organisation's
only."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from supply_chain.services import lots as lot_service
from supply_chain.services.epcis import jobs
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import CaptureJob, Event, Lot, PendingTransaction
from tests.api.conftest import Member, new_code
from tests.api.test_epcis import _dl, _doc, _loc

JOB_TIMEOUT = 600  # seconds: a bound for a stuck worker on a busy machine, not a performance assertion


def _creations(member: Member, codes: list[str]) -> dict[str, Any]:
    """A document commissioning one new lot per code (one Lotline write each)."""
    return _doc(
        *(
            {
                "type": "ObjectEvent",
                "eventID": f"urn:lotline:test:{i}:{code}",
                "action": "ADD",
                "bizStep": "commissioning",
                "eventTime": "2025-06-01T08:00:00Z",
                "eventTimeZoneOffset": "+00:00",
                "readPoint": _loc(member.gln),
                "quantityList": [{"epcClass": _dl(member.gtin, code), "quantity": 10, "uom": "KGM"}],
            }
            for i, code in enumerate(codes)
        )
    )


def _post(client, member: Member, document: dict[str, Any], **headers: str):  # noqa: ANN202
    return client.post("/api/v1/epcis/capture", json=document, headers=member.headers(**headers))


def _job(client, member: Member, job_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/epcis/capture/{job_id}", headers=member.headers("read"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _stored(runtime: Any, codes: list[str]) -> list[Lot]:
    with runtime.ctx() as ctx:
        return list(ctx.session.scalars(select(Lot).where(Lot.lot_code.in_(codes))))


def _assert_each_event_written_once(runtime: Any, member: Member, codes: list[str]) -> None:
    """Every lot exists once with exactly one (confirmed) Lotline event, the one its EPCIS event asked for,
    and verifies against the chain."""
    with runtime.ctx() as ctx:
        lots = list(ctx.session.scalars(select(Lot).where(Lot.gtin == member.gtin, Lot.lot_code.in_(codes))))
        assert sorted(lot.lot_code for lot in lots) == sorted(codes)
        events = list(ctx.session.scalars(select(Event).where(Event.lot_id.in_([lot.id for lot in lots]))))
        assert Counter(e.lot_id for e in events) == {lot.id: 1 for lot in lots}
        assert {e.status for e in events} == {"confirmed"}
        by_lot = {e.lot_id: e.payload["epcis_event_id"] for e in events}
        assert all(by_lot[lot.id].endswith(lot.lot_code) for lot in lots)
        assert ctx.session.scalar(select(func.count()).select_from(PendingTransaction)) == 0
        for lot in lots:
            result = verify_lot(ctx, lot)
            assert result.state == "verified", (lot.lot_code, result.detail)


@pytest.fixture
def worker(app: Any, api_runtime: Any) -> Iterator[jobs.CaptureWorker]:
    """The background worker ``lotline serve`` starts, in small batches so a test sees many of them."""
    thread = jobs.CaptureWorker(api_runtime, poll_seconds=0.2, batch_calls=10)
    app.extensions["lotline_capture_worker"] = thread
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
        thread.join(JOB_TIMEOUT)
        app.extensions.pop("lotline_capture_worker", None)


def test_a_large_capture_answers_202_and_is_written_in_batches_while_other_requests_are_served(
    client, api_runtime, network, worker
) -> None:
    producer = network["producer"]
    shown = new_code("JOBPAGE")  # a lot whose consumer page is read while the job runs
    assert (
        client.post(
            "/api/v1/lots",
            json={
                "gtin": producer.gtin,
                "lot_code": shown,
                "kind": "harvesting",
                "quantity": "5",
                "payload": {"location_gln": producer.gln, "harvest_date": "2025-06-01", "commodity": "x"},
            },
            headers=producer.headers(),
        ).status_code
        == 201
    )
    codes = [new_code("JOB") for _ in range(240)]

    response = _post(client, producer, _creations(producer, codes))
    assert response.status_code == 202, response.get_json()
    accepted = response.get_json()
    assert response.headers["Location"] == accepted["href"] == f"/api/v1/epcis/capture/{accepted['id']}"
    assert accepted["status"] in ("queued", "running")
    assert accepted["events_total"] == accepted["writes_total"] == 240

    rounds = []  # (job status before, after) around reads of other resources
    deadline = time.monotonic() + JOB_TIMEOUT
    while (before := _job(client, producer, accepted["id"]))["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, before
        page = client.get(f"/01/{producer.gtin}/10/{shown}")
        health = client.get("/healthz")
        me = client.get("/api/v1/me", headers=producer.headers("read"))
        lot = client.get(f"/api/v1/lots/{producer.gtin}/{shown}", headers=producer.headers("read"))
        assert (page.status_code, health.status_code, me.status_code, lot.status_code) == (200, 200, 200, 200)
        after = _job(client, producer, accepted["id"])
        rounds.append((before["status"], before["writes_done"], after["status"], after["writes_done"]))
        assert after["writes_done"] >= before["writes_done"]  # progress only moves forward
        time.sleep(0.05)
    # requests were answered in the middle of the job, between its batches
    assert any(b == a == "running" and 0 < done < 240 for b, done, a, _ in rounds), rounds

    job = _job(client, producer, accepted["id"])
    assert job["status"] == "done", job
    assert job["events_written"] == job["writes_done"] == 240 and job["error"] is None
    assert job["batches_done"] == len(job["transactions"]) == 24  # 10 calls per batch, one transaction each
    assert [e["status"] for e in job["events"]] == ["captured"] * 240
    assert [e["lotline_events"][0]["lot_code"] for e in job["events"]] == codes
    assert [lot["lot_code"] for lot in job["lots_created"]] == codes
    first = job["lots_created"][0]
    assert client.get(first["href"], headers=producer.headers("read")).status_code == 200
    assert first["digital_link"].endswith(f"/01/{producer.gtin}/10/{codes[0]}")
    _assert_each_event_written_once(api_runtime, producer, codes)


class _Crash(BaseException):
    """The process dies (not an error the worker handles)."""


def test_an_interrupted_job_resumes_from_the_first_unwritten_event_and_writes_each_event_once(
    client, api_runtime, network, monkeypatch
) -> None:
    producer = network["producer"]
    codes = [new_code("RES") for _ in range(100)]
    response = _post(client, producer, _creations(producer, codes))
    assert response.status_code == 202 and response.get_json()["status"] == "queued"  # no worker runs here
    job_id = response.get_json()["id"]

    # 1. an unexpected error after two batches: the job goes back to the queue, saying how far it got
    def fail_after_two(batches: int) -> None:
        if batches == 2:
            raise RuntimeError("disk full")

    assert jobs.run_pending(api_runtime, batch_calls=20, after_batch=fail_after_two)[job_id] == "queued"
    job = _job(client, producer, job_id)
    assert (job["status"], job["events_written"], job["batches_done"]) == ("queued", 40, 2)
    assert "interrupted after 2 batch(es)" in job["error"]["message"] and "disk full" in job["error"]["message"]
    assert [e["status"] for e in job["events"]] == ["captured"] * 40 + ["accepted"] * 60
    assert len(_stored(api_runtime, codes)) == 40

    # 2. the process dies in the third batch after its rows and signed transaction were stored, before sending
    real_submit = api_runtime.ledger.submit

    def die_once(prepared: Any) -> Any:
        monkeypatch.setattr(api_runtime.ledger, "submit", real_submit)
        raise _Crash

    monkeypatch.setattr(api_runtime.ledger, "submit", die_once)
    with pytest.raises(_Crash):
        jobs.run_pending(api_runtime, batch_calls=20)
    with api_runtime.ctx() as ctx:
        assert ctx.session.get(CaptureJob, job_id).status == "running"  # left by the dead process
        pending = ctx.session.scalar(select(func.count()).select_from(PendingTransaction))
        assert pending == 1
    assert len(_stored(api_runtime, codes)) == 60  # the third batch's lots, pending
    assert jobs.run_pending(api_runtime, batch_calls=20) == {}  # its lease has not passed: nobody takes it

    # 3. the lease passes; the next worker settles the pending transaction and carries on from event 60
    with api_runtime.ctx() as ctx:
        ctx.session.execute(
            update(CaptureJob)
            .where(CaptureJob.id == job_id)
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    sent = []
    monkeypatch.setattr(
        api_runtime.ledger, "submit", lambda prepared: sent.append(prepared.function) or real_submit(prepared)
    )
    assert jobs.run_pending(api_runtime, batch_calls=20)[job_id] == "done"
    # batches 4 and 5 only (batch 3 was resent as stored, nothing sent twice), then the job's EPCIS anchor
    assert sent == ["multicall", "multicall", "anchor"]
    job = _job(client, producer, job_id)
    assert (job["status"], job["events_written"], job["writes_done"], job["error"]) == ("done", 100, 100, None)
    assert [e["status"] for e in job["events"]] == ["captured"] * 100
    _assert_each_event_written_once(api_runtime, producer, codes)


def test_a_queued_document_that_no_longer_fits_fails_whole_with_nothing_written(client, api_runtime, network) -> None:
    producer = network["producer"]
    codes = [new_code("STALE") for _ in range(45)]
    response = _post(client, producer, _creations(producer, codes))
    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    job_id = response.get_json()["id"]
    with api_runtime.ctx() as ctx:  # meanwhile the dashboard creates one of its lots
        org = ctx.session.merge(producer.org)
        lot_service.create_lot(
            ctx,
            org,
            producer.gtin,
            codes[30],
            1,
            {"location_gln": producer.gln, "harvest_date": "2025-06-01", "commodity": "x"},
            "5",
            "kg",
        )
    assert jobs.run_pending(api_runtime)[job_id] == "failed"
    job = _job(client, producer, job_id)
    assert job["status"] == "failed" and job["events_written"] == 0 and job["transactions"] == []
    refused = job["events"][30]
    assert refused["status"] == "rejected" and refused["code"] == "lot_exists", refused
    assert job["error"]["error"] == "epcis_rejected" and "nothing was recorded" in job["error"]["message"]
    assert [lot.lot_code for lot in _stored(api_runtime, codes)] == [codes[30]]  # only the dashboard's


def test_the_same_document_or_key_sent_again_is_answered_with_its_job(client, api_runtime, network) -> None:
    producer = network["producer"]
    document = _creations(producer, [new_code("DUP") for _ in range(45)])
    first = _post(client, producer, document, **{"Idempotency-Key": "capture-dup-1"})
    assert first.status_code == 202
    again = _post(client, producer, document)  # the same document while its job waits: the same job
    assert again.status_code == 202 and again.get_json()["id"] == first.get_json()["id"]
    replay = _post(client, producer, document, **{"Idempotency-Key": "capture-dup-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["Location"] == first.headers["Location"]
    assert jobs.run_pending(api_runtime)[first.get_json()["id"]] == "done"
    late = _post(client, producer, document)  # written now: every event is recognised as already captured
    assert late.status_code == 202 and {e["status"] for e in late.get_json()["events"]} == {"duplicate"}
    assert late.get_json()["writes_total"] == 0


def test_a_capture_job_is_visible_to_its_organisation_only(client, network) -> None:
    producer, processor = network["producer"], network["processor"]
    response = _post(client, producer, _creations(producer, [new_code("MINE")]))
    assert response.status_code == 202 and response.get_json()["status"] == "done"
    href = response.headers["Location"]
    assert client.get(href, headers=producer.headers("read")).status_code == 200
    foreign = client.get(href, headers=processor.headers("read"))
    assert foreign.status_code == 404 and foreign.get_json()["error"] == "unknown_capture_job"
    assert client.get(href).status_code == 401
    mine = client.get("/api/v1/epcis/capture?limit=200", headers=producer.headers("read")).get_json()
    theirs = client.get("/api/v1/epcis/capture?limit=200", headers=processor.headers("read")).get_json()
    assert response.get_json()["id"] in [j["id"] for j in mine["items"]]
    assert response.get_json()["id"] not in [j["id"] for j in theirs["items"]]
    assert "events" not in mine["items"][0]  # the list is a summary


def test_finished_jobs_drop_their_documents_after_the_retention_period(client, api_runtime, network) -> None:
    from datetime import UTC, datetime, timedelta

    from supply_chain.store.models import CaptureJob

    producer = network["producer"]
    response = _post(client, producer, _creations(producer, [new_code("PRUNE")]))
    assert response.status_code == 202 and response.get_json()["status"] == "done"
    job_id = response.get_json()["id"]
    with api_runtime.ctx() as ctx:
        assert jobs.prune(ctx, timedelta(days=30)) == 0  # finished just now: kept
        job = ctx.session.get(CaptureJob, job_id)
        job.finished_at = datetime.now(UTC) - timedelta(days=31)
        ctx.session.commit()
        assert jobs.prune(ctx, timedelta(days=30)) >= 1
        ctx.session.commit()
        assert jobs.prune(ctx, timedelta(days=30)) == 0  # pruned once
        ctx.session.expire_all()
        job = ctx.session.get(CaptureJob, job_id)
        assert job.document == jobs.PRUNED and job.plan is None and job.status == "done"
    # the job still answers with its counts and per-event results
    kept = client.get(response.headers["Location"], headers=producer.headers("read")).get_json()
    assert kept["status"] == "done" and kept["events"][0]["status"] == "captured"


def test_a_batch_the_chain_refuses_names_the_refused_event_and_writes_nothing_of_the_batch(
    client, api_runtime, network, monkeypatch
) -> None:
    """Job batches go to the chain without a pre-flight call (they were rehearsed): when the chain refuses
    one (here: one of its lots was created on chain by another writer after the job's own bulk check), the
    refused event in the middle of the batch is named, and nothing of the batch is stored or on chain."""
    from supply_chain.chain.ledger import Ledger
    from supply_chain.domain.hashing import hex32
    from supply_chain.domain.identifiers import lot_id
    from supply_chain.domain.kinds import EventKind
    from supply_chain.services.orgs import signer

    producer = network["producer"]
    codes = [new_code("RACE") for _ in range(45)]
    response = _post(client, producer, _creations(producer, codes))
    assert response.status_code == 202 and response.get_json()["status"] == "queued"
    job_id = response.get_json()["id"]
    with api_runtime.ctx() as ctx:  # another writer creates lot 30 on chain, behind the store's back
        org = ctx.session.merge(producer.org)
        ctx.ledger.create_lot(signer(ctx, org), producer.gtin, codes[30], [], EventKind.HARVESTING, "0x" + "11" * 32)
        block = ctx.ledger.block_number()
    # ... after the job's bulk look-up said none of its lots exist
    monkeypatch.setattr(Ledger, "existing_lots", lambda self, ids, chunk=200: set())

    assert jobs.run_pending(api_runtime, batch_calls=40)[job_id] == "failed"
    job = _job(client, producer, job_id)
    assert job["status"] == "failed" and job["events_written"] == 0 and job["transactions"] == []
    refused = job["events"][30]
    assert refused["status"] == "rejected" and refused["code"] == "lot_exists", refused
    assert refused["field"] == "epcisBody.eventList[30]", refused
    assert [e["status"] for e in job["events"][:30]] == ["accepted"] * 30  # not written, not blamed
    assert _stored(api_runtime, codes) == []
    with api_runtime.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(PendingTransaction)) == 0
        on_chain = [code for code in codes if Ledger.get_lot(ctx.ledger, hex32(lot_id(producer.gtin, code))).exists]
        assert on_chain == [codes[30]]  # only the other writer's lot: the batch was applied all or nothing
        assert ctx.ledger.block_number() <= block + 1  # at most the refused batch's own (reverted) block
