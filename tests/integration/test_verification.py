"""Tampering with the off-chain store is caught: an altered payload, a deleted event, two events swapped and a
forged event inserted directly in SQL each make verification name the first bad event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, text, update

from supply_chain.domain.errors import Conflict
from supply_chain.domain.kinds import EventKind
from supply_chain.services import lots
from supply_chain.services.verify import BATCH_LOADS, verify_lot
from supply_chain.store.models import Event, Lot, LotInput, Recall

pytestmark = pytest.mark.slow


@pytest.fixture
def history(network: Any) -> Any:
    """The network's lot with four events: harvesting, cooling, initial packing, an observation."""
    with network.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, network.lot_pk)
        lots.record_events(
            ctx,
            network.org("farm", ctx),
            lot,
            [
                (EventKind.COOLING, {"location_gln": network.farm_site, "cooling_date": "2026-11-20"}),
                (EventKind.INITIAL_PACKING, {"location_gln": network.farm_site, "packing_date": "2026-11-21"}),
                (EventKind.OBSERVATION, {"note": "pallets wrapped", "date": "2026-11-21"}),
            ],
        )
        assert verify_lot(ctx, lot).state == "verified"
        network.event_ids = [e.id for e in sorted(lot.events, key=lambda e: e.seq)]
    return network


def _verify(net: Any) -> Any:
    with net.runtime.ctx() as ctx:
        return verify_lot(ctx, ctx.session.get(Lot, net.lot_pk))


def _sql(net: Any, statement: Any) -> None:
    with net.runtime.engine.begin() as conn:
        conn.execute(statement)


def test_changed_payload_field_is_caught_and_named(history: Any) -> None:
    target = history.event_ids[1]
    with history.runtime.ctx() as ctx:
        payload = dict(ctx.session.get(Event, target).payload) | {"cooling_date": "2026-11-19"}
    _sql(history, update(Event.__table__).where(Event.__table__.c.id == target).values(payload=payload))
    result = _verify(history)
    assert result.state == "tampered" and result.bad_event_id == target
    assert "event #2 (cooling" in result.detail and "altered" in result.detail


def test_deleted_event_is_caught(history: Any) -> None:
    _sql(history, delete(Event.__table__).where(Event.__table__.c.id == history.event_ids[1]))
    result = _verify(history)
    assert result.state == "tampered"
    assert "event #2 (kind cooling" in result.detail and "missing" in result.detail


def test_two_reordered_events_are_caught(history: Any) -> None:
    table = Event.__table__
    first, second = history.event_ids[1], history.event_ids[2]
    _sql(history, update(table).where(table.c.id == first).values(seq=99))
    _sql(history, update(table).where(table.c.id == second).values(seq=2))
    _sql(history, update(table).where(table.c.id == first).values(seq=3))
    result = _verify(history)
    assert result.state == "tampered" and result.bad_event_id == second
    assert "out of order" in result.detail


def test_forged_event_inserted_in_sql_is_caught(history: Any) -> None:
    with history.runtime.ctx() as ctx:
        model = ctx.session.get(Event, history.event_ids[-1])
        row = {c.name: getattr(model, c.key) for c in Event.__table__.columns if c.name != "id"}
    row |= {"seq": 5, "payload": {"note": "extra pallet found", "date": "2026-11-22"}, "tx_hash": "0x" + "ab" * 32}
    _sql(history, insert(Event.__table__).values(**row))
    result = _verify(history)
    assert result.state == "tampered" and "event #5" in result.detail and "not on the chain" in result.detail


def test_an_intact_lot_is_verified_from_the_head_alone_and_a_tampered_one_still_reads_its_logs(
    history: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a lot's logs asks the node for a range from deployment (cheap on the embedded chain's log index,
    but a range query all the same), so a full verification of an intact lot must conclude from the contract's
    head hash without them; only a mismatch reads the logs, to name the event that differs."""
    ledger = history.runtime.ledger
    reads: list[Any] = []
    real_logs = ledger.logs

    def counting_logs(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return real_logs(*args, **kwargs)

    monkeypatch.setattr(ledger, "logs", counting_logs)
    result = _verify(history)
    assert result.state == "verified" and result.checked_events == 4
    assert reads == []
    target = history.event_ids[2]
    with history.runtime.ctx() as ctx:
        payload = dict(ctx.session.get(Event, target).payload) | {"packing_date": "2026-11-22"}
    _sql(history, update(Event.__table__).where(Event.__table__.c.id == target).values(payload=payload))
    result = _verify(history)
    assert result.state == "tampered" and result.bad_event_id == target and "altered" in result.detail
    assert len(reads) == 1


def test_cli_verify_all_exits_1_naming_the_lot_and_event_after_an_sql_update(network: Any, tmp_path: Path) -> None:
    from supply_chain.cli import main

    rt = network.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    with rt.ctx() as ctx:
        lot = ctx.session.get(Lot, network.lot_pk)
        event = lot.events[0]
        payload = dict(event.payload) | {"commodity": "spinach"}
        event_id, code = event.id, lot.lot_code
    rt.close()  # the embedded chain is opened by one process at a time; the CLI opens it next
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", "--all"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "verified" in ok.output
    rt.engine.dispose()
    from supply_chain.store.db import make_engine

    engine = make_engine(rt.settings.database_url)
    with engine.begin() as conn:
        conn.execute(update(Event.__table__).where(Event.__table__.c.id == event_id).values(payload=payload))
    engine.dispose()
    bad = runner.invoke(main, ["verify", "--all"], env=env)
    assert bad.exit_code == 1, bad.output
    assert "tampered" in bad.output and code in bad.output and f"id {event_id}" in bad.output
    usage = runner.invoke(main, ["verify"], env=env)
    assert usage.exit_code == 2


def test_cli_verify_all_lets_a_writer_in_while_it_checks(network: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lotline verify --all` reads and checks in read-only transactions and stores each batch's results in a short
    write: while it checks a lot, another connection can write at once (no busy wait) to a lot it has already
    checked. Before, the whole pass ran in one write transaction (SQLite's write lock, PostgreSQL's row locks)."""
    from supply_chain.cli import main
    from supply_chain.services import verify
    from supply_chain.store.db import make_engine

    rt = network.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    url = rt.settings.database_url
    with rt.ctx() as ctx:  # a second lot, so the pass checks one after another
        farm = network.org("farm", ctx)
        place = {"location_gln": network.farm_site, "harvest_date": "2026-11-20", "commodity": "greens"}
        lots.create_lot(ctx, farm, network.greens, "LOT-2", EventKind.HARVESTING, place, "50", "kg")
    rt.close()  # the embedded chain is opened by one process at a time; the CLI opens it next
    rt.engine.dispose()
    probe = make_engine(url)
    real = verify.verify_lot
    seen: list[int] = []
    writes: list[str] = []

    def write_at_once() -> None:
        """Write to the first lot checked, waiting for no lock: the app's writer queue (a file lock beside a SQLite
        database) and SQLite's write lock tried without blocking, PostgreSQL's row lock with a short timeout."""
        if url.startswith("sqlite"):
            import fcntl
            import sqlite3

            database = url.split("///", 1)[1]
            with open(database + ".writer", "a+b") as queue:
                try:
                    fcntl.flock(queue, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    writes.append("waited: the writer queue is held")
                    return
                try:
                    conn = sqlite3.connect(database, timeout=0, isolation_level=None)
                    try:
                        conn.execute("BEGIN IMMEDIATE")
                        conn.execute("UPDATE lots SET revision = 0 WHERE id = ?", (seen[0],))
                        conn.execute("ROLLBACK")
                        writes.append("written")
                    except sqlite3.OperationalError as exc:
                        writes.append(f"waited: {exc}")
                    finally:
                        conn.close()
                finally:
                    fcntl.flock(queue, fcntl.LOCK_UN)
            return
        with probe.connect() as conn:
            conn.exec_driver_sql("SET lock_timeout = '200ms'")
            try:
                conn.execute(update(Lot.__table__).where(Lot.__table__.c.id == seen[0]).values(revision=0))
                writes.append("written")
            except Exception as exc:  # noqa: BLE001 - the lock timeout is what this test looks for
                writes.append(f"waited: {exc}")
            conn.rollback()

    def checking(ctx: Any, lot: Lot, *args: Any, **kwargs: Any) -> Any:
        seen.append(lot.id)
        if len(seen) == 2:  # the first lot has been checked (and, before, saved in the open transaction)
            write_at_once()
        return real(ctx, lot, *args, **kwargs)

    monkeypatch.setattr(verify, "verify_lot", checking)
    try:
        done = CliRunner().invoke(main, ["verify", "--all"], env=env)
    finally:
        probe.dispose()
    assert done.exit_code == 0, done.output
    assert len(seen) >= 2 and writes == ["written"], writes
    assert f"{len(seen)} lots checked, 0 with findings" in done.output


def test_cli_trace_json_reindex_and_bad_input_exit_codes(network: Any) -> None:
    import json

    from supply_chain.cli import main

    rt = network.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    rt.close()
    runner = CliRunner()
    traced = runner.invoke(main, ["trace", network.greens, "LOT-1", "--direction", "forward", "--json"], env=env)
    assert traced.exit_code == 0, traced.output
    assert [i["lot_code"] for i in json.loads(traced.output)["lots"]] == ["LOT-1"]
    bad_gtin = runner.invoke(main, ["trace", "12345678", "LOT-1", "--direction", "forward"], env=env)
    assert bad_gtin.exit_code == 2 and "GTIN" in bad_gtin.output
    unknown = runner.invoke(main, ["trace", network.greens, "NOPE", "--direction", "backward"], env=env)
    assert unknown.exit_code == 2 and "no lot NOPE" in unknown.output
    rebuilt = runner.invoke(main, ["reindex"], env=env)
    assert rebuilt.exit_code == 0 and "1 events applied" in rebuilt.output, rebuilt.output
    for command in (
        ["--help"],
        ["demo", "--help"],
        ["serve", "--help"],
        ["verify", "--help"],
        ["trace", "--help"],
        ["reindex", "--help"],
        ["deploy", "--help"],
        ["bench", "--help"],
        ["export", "--help"],
    ):
        shown = runner.invoke(main, command)
        assert shown.exit_code == 0 and "Usage:" in shown.output, command


# ------------------------------------------------------------------ state, copied rows and files


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _ship(ctx: Any, net: Any, lot: Lot, src: str, dst: str) -> None:
    lots.offer_custody(
        ctx,
        net.org(src, ctx),
        lot,
        net.org(dst, ctx),
        {
            "from_gln": getattr(net, f"{src}_site"),
            "to_gln": getattr(net, f"{dst}_site"),
            "ship_date": "2026-11-21",
            "reference_document_type": "bill of lading",
            "reference_document_number": "BOL-1",
        },
    )


@pytest.fixture
def journey(network: Any) -> Any:
    """LOT-1 shipped to the packer, inspected with a certificate, made into MIX-1, then recalled by the
    regulator (the recall reaching MIX-1 on chain); LOT-2 on its way to the carrier. All verified."""
    from supply_chain.services.lots import NewLot

    net = network
    with net.runtime.ctx() as ctx:
        a = ctx.session.get(Lot, net.lot_pk)
        _ship(ctx, net, a, "farm", "packer")
        lots.accept_custody(
            ctx,
            net.org("packer", ctx),
            a,
            {
                "from_gln": net.farm_site,
                "to_gln": net.packer_site,
                "receive_date": "2026-11-22",
                "reference_document_type": "bill of lading",
                "reference_document_number": "BOL-1",
            },
        )
        lots.inspect(
            ctx,
            net.org("inspector", ctx),
            a,
            "pass",
            {"inspection_date": "2026-11-22", "inspector_name": "Ivy", "standard": "ISO 6579-1"},
            certificate=("certificate.pdf", "application/pdf", PDF),
        )
        outputs = [NewLot(net.mix, "MIX-1", "60", "kg", [(a, "60")])]
        (mix,) = lots.transform(ctx, net.org("packer", ctx), outputs, net.packer_site, "2026-11-23")
        b = lots.create_lot(
            ctx,
            net.org("farm", ctx),
            net.greens,
            "LOT-2",
            EventKind.HARVESTING,
            {"location_gln": net.farm_site, "harvest_date": "2026-11-20", "commodity": "greens"},
            "50",
            "kg",
        )
        _ship(ctx, net, b, "farm", "dist")
        lots.recall(ctx, net.org("regulator", ctx), a, "Listeria monocytogenes", "I", "Do not eat", "2026-11-24")
        assert (a.status, mix.status, b.status) == ("recalled", "recalled", "in_transit")
        for lot in (a, mix, b):
            assert verify_lot(ctx, lot).state == "verified", lot.lot_code
        net.a, net.mix_pk, net.b = a.id, mix.id, b.id
        net.document = a.documents[0].storage_path
        net.codes = {a.id: "LOT-1", mix.id: "MIX-1", b.id: "LOT-2"}
    return net


def _tamper_status(net: Any) -> tuple[int, str]:
    _sql(net, update(Lot.__table__).where(Lot.__table__.c.id == net.a).values(status="active"))
    return net.a, "stored status 'active' differs from the chain's 'recalled'"


def _delete_recalls(net: Any) -> tuple[int, str]:
    _sql(net, text("DELETE FROM recalls"))
    return net.a, "('Listeria monocytogenes') is missing from the stored recalls"


def _tamper_custodian(net: Any) -> tuple[int, str]:
    _sql(net, update(Lot.__table__).where(Lot.__table__.c.id == net.mix_pk).values(custodian_org_id=net.ids["shop"]))
    return net.mix_pk, "stored custodian 'Shop (0x"


def _tamper_pending_custodian(net: Any) -> tuple[int, str]:
    table = Lot.__table__
    _sql(net, update(table).where(table.c.id == net.b).values(pending_custodian_org_id=net.ids["shop"]))
    return net.b, "stored pending custodian 'Shop (0x"


def _delete_lineage(net: Any) -> tuple[int, str]:
    table = LotInput.__table__
    _sql(net, delete(table).where(table.c.output_lot_id == net.mix_pk))
    return net.mix_pk, "stored input lots [] differ from the chain's ["


def _overwrite_certificate(net: Any) -> tuple[int, str]:
    path = Path(net.runtime.settings.home) / net.document
    path.write_bytes(PDF.replace(b"Catalog", b"Catalox"))
    return net.a, "'certificate.pdf': its file " + net.document + " was altered"


def _clear_recall_source(net: Any) -> tuple[int, str]:
    _sql(net, update(Lot.__table__).where(Lot.__table__.c.id == net.mix_pk).values(recall_source_id=None))
    return net.mix_pk, "stored recall source 'none' differs from the chain's '"


TAMPERINGS = {
    "status set active on a recalled lot": _tamper_status,
    "recall source of a derived lot cleared": _clear_recall_source,
    "recalls deleted": _delete_recalls,
    "custodian changed": _tamper_custodian,
    "pending custodian changed": _tamper_pending_custodian,
    "lineage row deleted": _delete_lineage,
    "certificate file overwritten": _overwrite_certificate,
}


def _consumer(net: Any, code: str) -> tuple[str, dict[str, Any]]:
    from app import create_app

    client = create_app({"RUNTIME": net.runtime, "TESTING": True}).test_client()
    gtin = net.mix if code == "MIX-1" else net.greens
    html = client.get(f"/01/{gtin}/10/{code}")
    data = client.get(f"/01/{gtin}/10/{code}", headers={"Accept": "application/json"})
    assert html.status_code == data.status_code == 200
    return html.get_data(as_text=True), data.json


@pytest.mark.parametrize("tamper", list(TAMPERINGS), ids=list(TAMPERINGS))
def test_sql_tampering_with_state_rows_or_files_is_tampered_everywhere(journey: Any, tamper: str) -> None:
    """Each edit behind the chain's back makes verify_lot name it, `lotline verify --all` exit 1, and the
    consumer pages stop saying "Verified" while the recall stays on them."""
    from supply_chain.cli import main

    net = journey
    for code in ("LOT-1", "MIX-1"):  # before: verified, with the recall shown
        html, data = _consumer(net, code)
        assert "Verified journey" in html and data["state"] == "verified"
        assert "Listeria monocytogenes" in html and data["recalls"][0]["reason"] == "Listeria monocytogenes"
    lot_pk, named = TAMPERINGS[tamper](net)

    result = _verify_pk(net, lot_pk)
    assert result.state == "tampered" and named in result.detail, result.detail

    code = net.codes[lot_pk]
    pages = {"LOT-1": ["LOT-1", "MIX-1"], "MIX-1": ["MIX-1"], "LOT-2": ["LOT-2"]}[code]  # the lot and lots made from it
    for page in pages:
        html, data = _consumer(net, page)
        assert "Verified journey" not in html and "Warning: this record was altered" in html, page
        assert data["state"] == "tampered", page
        if page != "LOT-2":  # the recall is still on the page, from the anchored recall events
            assert 'class="recall-banner"' in html and "Listeria monocytogenes" in html, page
            assert [r["reason"] for r in data["recalls"]] == ["Listeria monocytogenes"], page

    rt = net.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    rt.close()  # the embedded chain is opened by one process at a time
    checked = CliRunner().invoke(main, ["verify", "--all"], env=env)
    assert checked.exit_code == 1, checked.output
    line = next(x for x in checked.output.splitlines() if f" {code} " in x)
    assert line.startswith("tampered") and named in line, checked.output


def _verify_pk(net: Any, lot_pk: int) -> Any:
    with net.runtime.ctx() as ctx:
        return verify_lot(ctx, ctx.session.get(Lot, lot_pk))


def test_incremental_reverification_after_a_write_also_compares_state(journey: Any) -> None:
    """A write re-verifies only its new events when the lot was verified before; the lot's state is compared
    too, so a custodian edited in SQL is not vouched for by the next write."""
    net = journey
    table = Lot.__table__
    _sql(net, update(table).where(table.c.id == net.b).values(custodian_org_id=net.ids["farm2"]))
    with net.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, net.b)
        assert lot.verification_state == "verified"  # the baseline that lets reverify check only new events
        lots.reject_custody(ctx, net.org("dist", ctx), lot, "not ordered")  # the pending custodian's one write
    with net.runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, net.b)
        assert lot.event_count == 3
        assert lot.verification_state == "tampered"
        assert "stored custodian 'Farm2 (0x" in lot.verification_detail and "the chain's 'Farm (0x" in (
            lot.verification_detail
        )


def test_certificate_whose_recorded_hash_was_rewritten_to_match_a_swapped_file_is_named(journey: Any) -> None:
    import hashlib

    from supply_chain.store.models import Document

    net = journey
    swapped = PDF.replace(b"Catalog", b"Catalox")
    (Path(net.runtime.settings.home) / net.document).write_bytes(swapped)
    table = Document.__table__
    _sql(net, update(table).values(sha256=hashlib.sha256(swapped).hexdigest()))
    result = _verify_pk(net, net.a)
    assert result.state == "tampered"
    assert "'certificate.pdf': stored SHA-256 " in result.detail
    assert f"differs from the {hashlib.sha256(PDF).hexdigest()} anchored by event #4 (inspection)" in result.detail


def test_missing_certificate_file_is_named(journey: Any) -> None:
    (Path(journey.runtime.settings.home) / journey.document).unlink()
    result = _verify_pk(journey, journey.a)
    assert result.state == "tampered" and f"its file {journey.document} is missing" in result.detail


def test_sync_after_a_restart_does_not_overwrite_a_tampered_state_it_applied_before(journey: Any) -> None:
    """Catching up re-reads logs the writes already applied; their state changes are not applied again, so the
    edit stays for verification to report (and `lotline reindex` repairs it)."""
    from supply_chain.services import indexer
    from supply_chain.services.startup import catch_up

    _tamper_status(journey)
    catch_up(journey.runtime)
    result = _verify_pk(journey, journey.a)
    assert result.state == "tampered" and "stored status 'active'" in result.detail
    with journey.runtime.ctx() as ctx:
        indexer.reindex(ctx)
    assert _verify_pk(journey, journey.a).state == "verified"


def test_serve_shows_no_lot_verified_until_it_is_checked_after_a_start(
    journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lotline serve` after tampering while it was stopped: its first request finds every lot unchecked
    ("Pending verification", never the stale "verified"); the background pass then marks the edited lot
    tampered and the others verified."""
    import threading

    import waitress

    from supply_chain.cli import main
    from supply_chain.services import startup

    net = journey
    _tamper_status(net)  # while the server is stopped
    gate = threading.Event()
    real_verify = startup.verify_everything

    def gated(runtime: Any, batch: int = startup.VERIFY_BATCH) -> Any:
        assert gate.wait(30), "the first request never came"
        return real_verify(runtime, batch)

    monkeypatch.setattr(startup, "verify_everything", gated)
    seen: dict[str, Any] = {}

    def fake_waitress(app: Any, **_options: Any) -> None:
        client = app.test_client()

        def state(gtin: str, code: str) -> tuple[str, str]:
            html = client.get(f"/01/{gtin}/10/{code}").get_data(as_text=True)
            data = client.get(f"/01/{gtin}/10/{code}", headers={"Accept": "application/json"}).json
            return data["state"], html

        seen["before"] = {code: state(gtin, code) for gtin, code in ((net.greens, "LOT-1"), (net.greens, "LOT-2"))}
        gate.set()
        assert app.extensions["lotline_maintenance"].verified.wait(60), "verification pass did not finish"
        seen["after"] = {
            code: state(gtin, code) for gtin, code in ((net.greens, "LOT-1"), (net.mix, "MIX-1"), (net.greens, "LOT-2"))
        }

    monkeypatch.setattr(waitress, "serve", fake_waitress)
    rt = net.runtime
    env = {
        "LOTLINE_HOME": str(rt.settings.home),
        "LOTLINE_DATABASE_URL": rt.settings.database_url,
        "LOTLINE_SECRET_KEY": rt.settings.secret_key,
    }
    rt.close()
    served = CliRunner().invoke(main, ["serve", "--port", "8765"], env=env)
    assert served.exit_code == 0, served.output
    for code, (state, html) in seen["before"].items():
        assert state == "pending" and "Pending verification" in html and "Verified journey" not in html, code
    after = {code: state for code, (state, _html) in seen["after"].items()}
    assert after == {"LOT-1": "tampered", "MIX-1": "tampered", "LOT-2": "verified"}
    assert "Warning: this record was altered" in seen["after"]["LOT-1"][1]


def test_terminated_recall_is_on_chain_verified_shown_and_its_stored_end_checked(journey: Any) -> None:
    """Terminating the recall anchors a RECALL_ENDED event on LOT-1 (the lot stays recalled, MIX-1 too); the
    lot verifies, the consumer page says the recall was ended and still says do not eat; an edit of the stored
    termination reason, or of the termination itself, is found by verification."""
    from supply_chain.services import recalls

    net = journey
    with net.runtime.ctx() as ctx:
        a = ctx.session.get(Lot, net.a)
        (recall,) = a.recalls
        recalls.terminate(ctx, net.org("regulator", ctx), None, recall, "All product recovered and destroyed")
        ctx.session.commit()
        ended = recall.termination_event
        assert ended is not None and ended.status == "confirmed" and ended.payload_hash == recall.termination_hash
        assert ctx.ledger.recall_ended(a.lot_id) and ctx.ledger.get_lot(a.lot_id).event_count == a.event_count
        assert (a.status, ctx.session.get(Lot, net.mix_pk).status) == ("recalled", "recalled")
        assert verify_lot(ctx, a).state == "verified"
        # the rulebook refuses a second end before anything is signed
        with pytest.raises(Conflict) as again:
            lots.plan_end_recall(ctx, net.org("regulator", ctx), a, "again")
        assert again.value.code == "recall_already_ended"
        ctx.session.rollback()
    for code in ("LOT-1", "MIX-1"):
        html, data = _consumer(net, code)
        assert "Verified journey" in html and 'class="recall-banner"' in html, code
        assert "The recall was ended" in html and "All product recovered and destroyed" in html, code
        assert data["recalls"][0]["ended"]["reason"] == "All product recovered and destroyed", code

    _sql(net, update(Recall.__table__).values(termination_reason="Nothing was wrong"))
    result = _verify_pk(net, net.a)
    assert result.state == "tampered" and "stored termination_reason 'Nothing was wrong' differs" in result.detail
    _sql(net, update(Recall.__table__).values(terminated_at=None, termination_reason=None))
    result = _verify_pk(net, net.a)
    assert result.state == "tampered" and "is missing from the stored recalls" in result.detail, result.detail


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the chain's index is what is tested here
def test_a_tampered_lot_on_a_long_chain_is_named_after_a_restart_reading_only_its_own_blocks(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verification that finds a mismatch reads the lot's logs: through the embedded chain's log index, the
    blocks that hold them, however many blocks the chain has (empty ones here, mined in bulk) and after the
    chain was closed and opened again."""
    from supply_chain.services import orgs
    from supply_chain.services.demo import gln, gtin
    from supply_chain.services.runtime import Runtime

    with runtime.ctx() as ctx:
        regulator = orgs.onboard(ctx, None, "Regulator", ["regulator", "admin"])
        farm = orgs.onboard(ctx, regulator, "Farm", ["producer"], "0700001")
        site = orgs.register_location(ctx, farm, gln("0700001", "00001"), "farm site").gln
        product = orgs.register_product(ctx, farm, gtin("0700001", "00001"), "Greens", unit="kg").gtin
        harvest = {"location_gln": site, "harvest_date": "2026-11-20", "commodity": "greens"}
        lot = lots.create_lot(ctx, farm, product, "LOT-1", EventKind.HARVESTING, harvest, "100", "kg")
        cooling = {"location_gln": site, "cooling_date": "2026-11-20"}
        cooled = lots.record_event(ctx, farm, lot, EventKind.COOLING, cooling)
        lot_pk, target = lot.id, cooled.id
    evm = runtime.chain.w3.provider.ethereum_tester.backend.chain
    for _ in range(120):
        evm.mine_block()
    with runtime.ctx() as ctx:
        lot = ctx.session.get(Lot, lot_pk)
        note = {"note": "after a quiet spell", "date": "2026-11-22"}
        lots.record_event(ctx, lot.creator, lot, EventKind.OBSERVATION, note)
        payload = dict(ctx.session.get(Event, target).payload) | {"cooling_date": "2026-11-19"}
        ctx.session.execute(update(Event).where(Event.id == target).values(payload=payload))
    settings = runtime.settings
    runtime.close()
    reopened = Runtime(settings)
    try:
        evm = reopened.chain.w3.provider.ethereum_tester.backend.chain
        read: list[int] = []
        for name in ("get_canonical_block_header_by_number", "get_canonical_block_by_number"):
            real = getattr(evm, name)

            def counting(number: int, real: Any = real) -> Any:
                read.append(number)
                return real(number)

            monkeypatch.setattr(evm, name, counting)
        with reopened.ctx() as ctx:
            result = verify_lot(ctx, ctx.session.get(Lot, lot_pk))
        assert result.state == "tampered" and result.bad_event_id == target
        assert "event #2 (cooling" in result.detail and "altered" in result.detail
        assert reopened.chain.w3.eth.block_number > 120
        assert len(set(read)) <= 5, sorted(set(read))  # the lot's blocks (3 transactions) and the head
    finally:
        reopened.close()


def test_the_verification_pass_reads_the_chain_once_per_batch_and_still_names_each_tampered_lot(
    journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`verify_everything` asks the chain about a batch's lots in one call (`Ledger.get_lots`); each answer
    must go to its own lot: a tampered lot in a batch is still named, the others verified."""
    from supply_chain.chain.ledger import Ledger
    from supply_chain.services.startup import verify_everything

    target = _tamper_status(journey)[0]
    calls = {"get_lot": 0, "get_lots": 0}
    real_get_lot, real_get_lots = Ledger.get_lot, Ledger.get_lots

    def get_lot(self: Ledger, lot_id: Any) -> Any:
        calls["get_lot"] += 1
        return real_get_lot(self, lot_id)

    def get_lots(self: Ledger, lot_ids: Any, chunk: int = 200) -> Any:
        calls["get_lots"] += 1
        return real_get_lots(self, lot_ids, chunk)

    monkeypatch.setattr(Ledger, "get_lot", get_lot)
    monkeypatch.setattr(Ledger, "get_lots", get_lots)
    bad = verify_everything(journey.runtime, batch=2)
    with journey.runtime.ctx() as ctx:
        states = {lot.id: lot.verification_state for lot in ctx.session.scalars(select(Lot))}
    total = len(states)
    assert total == 3  # LOT-1 and MIX-1 in one batch, LOT-2 alone
    assert [result.lot.id for result in bad] == [target]
    assert states[target] == "tampered" and all(s == "verified" for pk, s in states.items() if pk != target)
    assert calls["get_lots"] == total // 2 and calls["get_lot"] == total % 2


def test_the_verification_pass_checks_a_batch_without_the_write_lock_and_stores_its_results_in_one_statement(
    journey: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes never wait on the pass: while a batch is read, asked of the chain and checked, no write lock is
    held (another process takes SQLite's at once; a write in this process goes through), and the results
    are then written in one UPDATE statement. The chain hears one ``eth_call`` for the batch's lots and
    nothing else of web3's request stack (no ``eth_chainId``); the lot written meanwhile keeps that newer
    result instead of being overwritten by the pass's older one."""
    import sqlite3

    from sqlalchemy import event as sa_event

    from supply_chain.chain.ledger import Ledger
    from supply_chain.services import startup
    from supply_chain.services.verify import Verification, store_result

    net = journey
    rt = net.runtime
    url = rt.settings.database_url
    statements: list[tuple[str, int]] = []
    requests: list[str] = []
    held: list[bool] = []
    writing = False
    real_get_lots, provider = Ledger.get_lots, rt.chain.w3.provider
    real_request = provider.make_request

    def get_lots(self: Ledger, lot_ids: Any, chunk: int = 200) -> Any:
        nonlocal writing
        answer = real_get_lots(self, lot_ids, chunk)
        if url.startswith("sqlite"):  # "another process" asks for SQLite's write lock without waiting
            other = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=0)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                held.append(False)
            except sqlite3.OperationalError:
                held.append(True)
            finally:
                other.close()
        writing = True
        with rt.ctx() as ctx:  # a write (and its own verification) lands on a lot of the batch meanwhile
            lot = ctx.session.get(Lot, net.b)
            store_result(ctx, lot, Verification("pending", "a write came in meanwhile", lot))
        writing = False
        return answer

    def make_request(method: Any, params: Any) -> Any:
        requests.append(str(method))
        return real_request(method, params)

    def executed(_conn: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        if not writing:
            statements.append((sql.split()[0].upper(), len(params) if many else 1))

    monkeypatch.setattr(Ledger, "get_lots", get_lots)
    monkeypatch.setattr(provider, "make_request", make_request)
    ids = [net.a, net.mix_pk, net.b]
    with rt.ctx() as ctx:
        ctx.session.execute(update(Lot.__table__).values(verification_state=None))
    sa_event.listen(rt.engine, "before_cursor_execute", executed)
    try:
        bad = startup.verify_ids(rt, ids, batch=3)
    finally:
        sa_event.remove(rt.engine, "before_cursor_execute", executed)
    assert bad == []
    assert held == ([False] if url.startswith("sqlite") else [])
    with rt.ctx() as ctx:
        states = {pk: ctx.session.get(Lot, pk) for pk in ids}
        assert {pk: lot.verification_state for pk, lot in states.items()} == {
            net.a: "verified",
            net.mix_pk: "verified",
            net.b: "pending",
        }
        assert states[net.b].verification_detail == "a write came in meanwhile"
    # getLot of the batch's lots in one call; the two recalled lots' recallSourceOf, one call each
    assert requests.count("eth_call") == 3 and set(requests) == {"eth_call"}, requests
    pass_updates = [n for verb, n in statements if verb == "UPDATE" and n == 3]
    assert pass_updates == [3], statements  # one statement, three lots' results
    selects = [verb for verb, _n in statements if verb == "SELECT"]
    # the lots, their events, and one query per relationship loaded with them: none per lot
    assert len(selects) <= 2 + len(BATCH_LOADS), statements
