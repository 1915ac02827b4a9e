"""Round trip (issue 10, Done-when): the demo's ``--ancestors`` export of the salad-mix lot, captured whole by a
second Lotline instance on the same chain (its own database and keys; on the embedded chain the same chain
object), every event matched to the chain's record and verified there, nothing written on chain again in
the name of the organisations that signed it."""

from __future__ import annotations

import copy
import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from supply_chain.chain.connect import fund
from supply_chain.domain.errors import Forbidden
from supply_chain.services import lots as lot_service
from supply_chain.services import orgs, trace, verify, views
from supply_chain.services.epcis import chainmatch, export, jobs, repository
from supply_chain.services.epcis.capture import CaptureRejected
from supply_chain.services.runtime import Runtime, Settings
from supply_chain.store.models import ChainDeployment, EpcisEvent, Event, Location, Lot, Organisation
from tests.integration.conftest import make_runtime

MIX = ("00614144000033", "FC-MIX-001")
FARM_LOTS = {("00614141000012", "GV-ROM-2611A"), ("00614142000028", "SF-SPN-2611B")}
REVIEWER, PASSWORD = "reviewer@harbour.example", "correct horse battery staple 7"
PROCESSOR, FARM = "FreshCut Salads", "Green Valley Farm"
REPORTED_ID = "urn:uuid:6a1d3c52-0d43-4a8e-9a57-2f1f3b0e7c11"
"""The farm's event the processor's system reported in A (stored as reported there), carried by A's export."""


@pytest.fixture(scope="module")
def instances(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Instance A with the demo on its own SQLite database; instance B on the database under test (SQLite or
    PostgreSQL) over A's chain, with one organisation of its own (a regulator's office reviewing the lot, one
    user) and nothing else."""
    from supply_chain.services.demo import seed

    a_home = tmp_path_factory.mktemp("a-home")
    a = make_runtime(a_home, f"sqlite:///{(a_home / 'a.db').as_posix()}")
    b = None
    try:
        seed(a)
        with a.ctx() as ctx:
            farm_gln = ctx.session.scalars(
                select(Location.gln).where(Location.name == "Green Valley Farm, Field 7")
            ).one()
            processor_id = ctx.session.scalars(select(Organisation.id).where(Organisation.name == PROCESSOR)).one()
        # the processor's system reports the farm's cold-store check of the romaine: the farm's event, reported
        report = _capture(a, processor_id, _farm_report(farm_gln))
        assert [(e["status"], e["code"]) for e in report["events"]] == [("stored", "reported")]
        with a.ctx() as ctx:
            deployment = ctx.session.scalars(select(ChainDeployment)).one()
            document = export.export_lot(ctx, lot_service.get_lot(ctx, *MIX), ancestors=True)
            address, chain_id, block = deployment.address, deployment.chain_id, deployment.block_number
        home = tmp_path_factory.mktemp("b-home")
        b = Runtime(Settings.from_env(env={}, home=home, database_url=module_db_url, secret_key="b"))
        b._chain = a.chain  # the same chain: one embedded chain, two stores
        with b.ctx() as ctx:
            ctx.session.add(
                ChainDeployment(chain_id=chain_id, contract_name="LotLedger", address=address, block_number=block)
            )
        with b.ctx() as ctx:
            org, account = orgs._new_org(ctx, "Harbour Food Safety Office", ["regulator"], None)
            ctx.session.add(org)
            ctx.session.flush()
            fund(b.chain, account.address, orgs.FUNDING_WEI)
            org_id = org.id
            orgs.add_user(ctx, org, REVIEWER, "Food safety reviewer", PASSWORD)
        # what `lotline export epcis --ancestors --out FILE` writes, read back as a partner reads a file
        yield {"a": a, "b": b, "org_id": org_id, "document": json.loads(json.dumps(document))}
    finally:
        if b is not None:
            b._chain = None  # A closes the chain it opened
            b.close()
        a.close()


def _farm_report(farm_gln: str) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-21T12:00:00Z",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventID": REPORTED_ID,
                    "action": "OBSERVE",
                    "bizStep": "storing",
                    "eventTime": "2026-11-18T10:00:00Z",
                    "eventTimeZoneOffset": "+00:00",
                    "readPoint": {"id": f"https://id.gs1.org/414/{farm_gln}"},
                    "bizLocation": {"id": f"https://id.gs1.org/414/{farm_gln}"},
                    "quantityList": [{"epcClass": "https://id.gs1.org/01/00614141000012/10/GV-ROM-2611A"}],
                }
            ]
        },
    }


def _capture(runtime: Any, org_id: int, document: dict[str, Any]) -> dict[str, Any]:
    with runtime.ctx() as ctx:
        org = ctx.session.get(Organisation, org_id)
        job, _ = jobs.submit(ctx, org, document)
        inline = jobs.runs_inline(job)
        ctx.session.commit()
        job_id = job.id
    if not inline:
        with runtime.ctx() as ctx:
            inline = jobs.claim(ctx, job_id)
    if inline:
        assert jobs.run_job(runtime, job_id, replan=False) == "done"
    with runtime.ctx() as ctx:
        return jobs.describe(ctx, jobs.get(ctx, ctx.session.get(Organisation, org_id), job_id))


def test_the_salad_mix_ancestors_export_is_captured_whole_by_a_second_instance_and_every_event_verifies(
    instances: dict[str, Any],
) -> None:
    a, b, org_id, document = instances["a"], instances["b"], instances["org_id"], instances["document"]
    everything = document["epcisBody"]["eventList"]
    # A's export carries the processor's report of the farm's event, marked as such
    reports = [e for e in everything if "lotline:reported" in e]
    assert [e["eventID"] for e in reports] == [REPORTED_ID]
    assert reports[0]["lotline:reported"]["party"] == FARM and reports[0]["lotline:reported"]["reportedBy"] == PROCESSOR
    events = [e for e in everything if "lotline:reported" not in e]
    # its header names the sites the events name and their organisations: what the consumer page shows
    vocabularies = {
        v["type"]: v["vocabularyElementList"] for v in document["epcisHeader"]["epcisMasterData"]["vocabularyList"]
    }
    site = next(
        e
        for e in vocabularies["urn:epcglobal:epcis:vtype:BusinessLocation"]
        if {"id": "urn:epcglobal:cbv:mda#name", "attribute": "Green Valley Farm, Field 7"} in e["attributes"]
    )
    assert {x["id"].rpartition(":")[2].rpartition("#")[2]: x["attribute"] for x in site["attributes"]} == {
        "name": "Green Valley Farm, Field 7",
        "streetAddressOne": "1200 River Rd, Salinas, CA",
        "latitude": "36.6777",
        "longitude": "-121.6555",
        "siteKind": "farm",
        "organisation": FARM,
        "chainAddress": signers_of(a)[FARM],
    }
    assert {p["attributes"][0]["attribute"] for p in vocabularies["urn:epcglobal:epcis:vtype:Party"]} >= {
        FARM,
        PROCESSOR,
    }
    with a.ctx() as ctx:
        lots = {f"{lot.gtin}/{lot.lot_code}" for lot in ctx.session.scalars(select(Lot))}
        signers = {o.chain_address: o.name for o in ctx.session.scalars(select(Organisation))}
        a_events = ctx.session.scalar(select(func.count()).select_from(Event))
    assert len(events) >= 10  # harvests, coolings, shipments, receivings, the transformation, ...
    block_before = a.chain.w3.eth.block_number
    capturer = orgs_address(b, org_id)

    job = _capture(b, org_id, document)

    assert job["status"] == "done"
    assert [e["status"] for e in job["events"]] == ["stored"] * len(everything)
    codes = ["reported" if "lotline:reported" in e else "known_on_chain" for e in everything]
    assert [e["code"] for e in job["events"]] == codes, job["events"]
    # the report stays the farm's event as the processor reported it: B neither signs nor applies it
    report = next(r for r in job["events"] if r["code"] == "reported")
    assert report["attributedTo"] == {
        "party": FARM,
        "gln": reports[0]["lotline:reported"]["gln"],
        "source": "report",
        "reportedBy": PROCESSOR,
        "capturedBy": "Harbour Food Safety Office",
    }
    seen_lots = set()
    known = [r for r in job["events"] if r["code"] == "known_on_chain"]
    for event, result in zip(events, known, strict=True):
        who = result["attributedTo"]
        # attributed to the organisation that signed it on chain, never to the capturer
        assert who["source"] == "chain" and who["address"] in signers
        assert who["address"] != capturer
        assert who["seq"] == event["lotline:seq"] and who["txHash"] == event["lotline:txHash"]
        assert "verified against the chain" in result["reason"]
        seen_lots.add(who["lot"])
    assert seen_lots <= lots and f"{MIX[0]}/{MIX[1]}" in seen_lots and len(seen_lots) >= 3
    # one anchor transaction of the capturer (its Merkle root): no lot event was signed again
    assert b.chain.w3.eth.block_number == block_before + 1
    with b.ctx() as ctx:
        # the lot model holds each event once, as the chain's signer wrote it (the next test looks closer)
        held = list(ctx.session.scalars(select(Event)))
        assert len(held) == len(events) and {e.status for e in held} == {"confirmed"}
        assert {e.actor_address for e in held} <= set(signers) - {capturer}
        rows = list(ctx.session.scalars(select(EpcisEvent).order_by(EpcisEvent.position)))
        assert [r.note for r in rows] == codes
        assert all(r.attribution and r.attribution["source"] == "chain" for r in rows if r.note == "known_on_chain")
        org = ctx.session.get(Organisation, org_id)
        first_known = next(r for r in rows if r.note == "known_on_chain")
        proof = repository.proof(ctx, org, first_known.event_id)
        assert proof["verified"] is True and proof["attributedTo"]["address"] in signers
        # every event verified against the chain in B
        rechecked = chainmatch.verify_known(ctx)
    assert [r.state for r in rechecked] == ["verified"] * len(events)
    with a.ctx() as ctx:
        assert ctx.session.scalar(select(func.count()).select_from(Event)) == a_events  # A untouched

    # `lotline verify --all` in B reports every captured event verified, and exits 0
    outcome = _cli(b, ["verify", "--all"])
    assert outcome.exit_code == 0, outcome.output
    assert f"{len(events)} captured events known on chain checked, {len(events)} verified" in outcome.output

    # captured again: every event a duplicate, nothing stored twice
    again = _capture(b, org_id, document)
    assert {e["status"] for e in again["events"]} == {"duplicate"}


def _chain_record(runtime: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Per lot of the export: what the chain decides (status, holder, lineage) and each event's place on
    chain, as the instance's store holds them."""
    out = {}
    with runtime.ctx() as ctx:
        for lot in ctx.session.scalars(select(Lot)):
            key = (lot.gtin, lot.lot_code)
            if key != MIX and key not in FARM_LOTS:
                continue
            out[key] = {
                "status": lot.status,
                "creator": lot.creator.chain_address,
                "custodian": lot.custodian.chain_address,
                "head": lot.head_hash,
                "count": lot.event_count,
                "inputs": sorted((e.input_lot.lot_code, str(e.quantity)) for e in lot.inputs),
                "recall_source": lot.recall_source.lot_code if lot.recall_source else None,
                "events": [
                    (e.seq, e.kind.name, e.actor_address, e.payload_hash, e.tx_hash, e.block_number, e.head_after)
                    for e in sorted(lot.events, key=lambda e: e.seq or 0)
                ],
            }
    return out


def test_the_second_instance_holds_the_salad_mix_lots_as_the_chain_says_and_they_verify(
    instances: dict[str, Any],
) -> None:
    """After the capture above, B knows the lots of the export: the lots, their events at their places on
    chain, the lineage, custody and recall as the chain says, its signers as organisations known only from
    the chain; B's verification of the lots says verified."""
    a, b = instances["a"], instances["b"]
    in_b, in_a = _chain_record(b), _chain_record(a)
    assert set(in_b) == {MIX, *FARM_LOTS}
    assert in_b == in_a
    assert in_b[MIX]["inputs"] == [("GV-ROM-2611A", "600.000000"), ("SF-SPN-2611B", "400.000000")]
    assert in_b[MIX]["status"] == "recalled" and in_b[MIX]["recall_source"] == "GV-ROM-2611A"
    with a.ctx() as ctx:
        names_in_a = {o.chain_address: o.name for o in ctx.session.scalars(select(Organisation))}
    with b.ctx() as ctx:
        mix = lot_service.get_lot(ctx, *MIX)
        assert verify.verify_lot(ctx, mix).state == "verified"
        addresses = {e.actor.chain_address for e in mix.events} | {mix.custodian.chain_address}
        # every signer is an organisation B knows only by its address: no key, no user, no role
        signers = {e.actor for e in mix.events} | {mix.custodian}
        assert all(o.known_from_chain and o.encrypted_key == "" and not o.users and not o.roles for o in signers)
        # named, and their sites placed, from the export's header master data (as A names them)
        assert {o.chain_address: o.name for o in signers} == {a: n for a, n in names_in_a.items() if a in addresses}
        farm = lot_service.get_lot(ctx, "00614141000012", "GV-ROM-2611A").creator
        assert farm.known_from_chain and farm.name == FARM
        assert [(loc.name, loc.kind, loc.latitude) for loc in farm.locations] == [
            ("Green Valley Farm, Field 7", "farm", 36.6777)
        ]
        with pytest.raises(Forbidden):
            b.keyring.account(mix.creator)
        # the payloads held are the fields the export showed, each checked with its proof
        shipped = next(e for e in mix.events if e.kind.name == "SHIPPING")
        assert shipped.payload["quantity"] == "1000" and shipped.disclosure["scheme"] == 2
        # B passes the history on: its export shows each event as A's did, with the proof that checks it
        again = export.export_lot(ctx, mix, ancestors=True)["epcisBody"]["eventList"]
        lotline = ("cte", "kde", "payloadHash", "proof", "seq", "txHash")

        def key(e: dict[str, Any]) -> tuple[Any, ...]:
            return tuple(json.dumps(e.get(f"lotline:{k}"), sort_keys=True) for k in lotline)

        assert sorted(map(key, again)) == sorted(map(key, instances["document"]["epcisBody"]["eventList"]))
        # the trace backward reaches the farms' lots through the lineage
        backward = trace.trace(ctx, mix, "backward")
        assert {(i["gtin"], i["lot_code"]) for i in backward["lots"] if i["depth"] > 0} == FARM_LOTS
        romaine = next(i for i in backward["lots"] if i["lot_code"] == "GV-ROM-2611A")
        assert romaine["recalled"] and romaine["creator"] == FARM
        assert "Green Valley Farm, Field 7" in [loc["name"] for loc in romaine["locations"]]
        # the trace map places the farms' and the processor's sites by name, not by bare GLN
        sites = [n for c in views.trace_view(ctx, mix, "backward")["graph"]["columns"] for n in c["sites"]]
        assert "Green Valley Farm, Field 7" in {n["name"] for n in sites}
        assert all(n["name"] != n["gln"] and n["organisation"] for n in sites)
        # the farm's event the processor reported in A is on B's trace, as the processor's report
        assert [(r["event_id"], r["party"], r["reported_by"]) for r in romaine["reported"]] == [
            (REPORTED_ID, FARM, PROCESSOR)
        ]

    # `lotline verify GTIN LOT` in B: verified, exit 0
    outcome = _cli(b, ["verify", *MIX])
    assert outcome.exit_code == 0, outcome.output
    assert "verified" in outcome.output and "tampered" not in outcome.output

    from app import create_app

    client = create_app({"RUNTIME": b, "TESTING": True}).test_client()
    # the consumer page: the journey back to the farms, the recall, the producer known from the chain
    page = client.get(f"/01/{MIX[0]}/10/{MIX[1]}", headers={"Accept": "application/json"})
    assert page.status_code == 200
    view = page.json
    assert view["state"] == "verified" and view["verdict"] == "do_not_eat"
    assert view["recalls"] and view["recalls"][0]["reason"] == "Listeria monocytogenes found in a retail sample"
    assert {(i["gtin"], i["lot_code"]) for i in view["ingredients"]} == FARM_LOTS
    assert len(view["journey"]) >= 20 and view["producer"]["name"] == PROCESSOR
    html = client.get(f"/01/{MIX[0]}/10/{MIX[1]}").get_data(as_text=True)
    assert "Listeria monocytogenes" in html and "Green Valley Farm, Field 7" in html
    # the lot page and the trace page of B's regulator
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True))
    assert token is not None
    signed = client.post("/login", data={"email": REVIEWER, "password": PASSWORD, "csrf_token": token.group(1)})
    assert signed.status_code == 302
    with b.ctx() as ctx:
        mix_id = lot_service.get_lot(ctx, *MIX).id
    lot_page = client.get(f"/lots/{mix_id}")
    assert lot_page.status_code == 200
    text = lot_page.get_data(as_text=True)
    assert "GV-ROM-2611A" in text and PROCESSOR in text
    traced = client.get(f"/admin/lots/{mix_id}/trace?direction=backward")
    assert traced.status_code == 200
    assert all(code in traced.get_data(as_text=True) for _, code in FARM_LOTS)
    assert f"{FARM}'s event, reported by {PROCESSOR}" in html_text(traced)


def test_a_payload_edited_in_the_second_instance_is_found_by_verification(instances: dict[str, Any]) -> None:
    b = instances["b"]
    with b.ctx() as ctx:
        mix = lot_service.get_lot(ctx, *MIX)
        shipped = next(e for e in mix.events if e.kind.name == "SHIPPING")
        seq = shipped.seq
        shipped.payload = shipped.payload | {"quantity": "1"}
        ctx.session.flush()
        found = verify.verify_lot(ctx, mix, save=False)
        state, detail = found.state, found.detail
        ctx.session.rollback()
    assert state == "tampered"
    assert f"event #{seq} (shipping" in detail and "altered" in detail


def test_an_export_edited_after_it_left_the_first_instance_is_refused_naming_the_event(
    instances: dict[str, Any],
) -> None:
    b, org_id = instances["b"], instances["org_id"]
    document = copy.deepcopy(instances["document"])
    events = document["epcisBody"]["eventList"]
    for event in events:
        event["eventID"] = event["eventID"] + "-edited"  # not a duplicate of the first capture
    target = next(i for i, e in enumerate(events) if e.get("lotline:cte") == "shipping")
    events[target]["lotline:kde"]["quantity"] = "1"
    with b.ctx() as ctx, pytest.raises(CaptureRejected) as refused:
        jobs.submit(ctx, ctx.session.get(Organisation, org_id), document)
    result = refused.value.details["events"][target]
    assert result["status"] == "rejected" and result["code"] == "chain_mismatch"
    assert result["field"] == f"epcisBody.eventList[{target}].lotline:kde"
    assert "quantity" in result["reason"]


def test_a_stored_event_edited_behind_the_store_is_found_by_verification(instances: dict[str, Any]) -> None:
    b = instances["b"]
    with b.ctx() as ctx:
        row = ctx.session.scalars(select(EpcisEvent).where(EpcisEvent.note == "known_on_chain")).first()
        assert row is not None
        body = dict(row.body)
        body["lotline:payloadHash"] = "0x" + "11" * 32
        row.body = body
        ctx.session.flush()
        found = [r for r in chainmatch.verify_known(ctx) if r.event_id == row.event_id]
        ctx.session.rollback()
    assert [r.state for r in found] == ["tampered"]


def signers_of(runtime: Any) -> dict[str, str]:
    with runtime.ctx() as ctx:
        return {o.name: o.chain_address for o in ctx.session.scalars(select(Organisation))}


def html_text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def _cli(runtime: Any, args: list[str]) -> Any:
    """Run ``lotline ARGS`` against ``runtime``."""
    from supply_chain import cli

    original = cli._runtime
    cli._runtime = lambda: _Borrowed(runtime)  # type: ignore[assignment]
    try:
        return CliRunner().invoke(cli.main, args)
    finally:
        cli._runtime = original  # type: ignore[assignment]


def orgs_address(runtime: Any, org_id: int) -> str:
    with runtime.ctx() as ctx:
        return ctx.session.get(Organisation, org_id).chain_address


class _Borrowed:
    """B's runtime lent to the CLI, which closes what it is given."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def close(self) -> None:
        pass
