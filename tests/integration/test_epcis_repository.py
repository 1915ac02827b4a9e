"""The EPCIS event repository on both databases (SQLite and PostgreSQL's JSONB, which keeps neither key order
nor number spelling): every official example stored, served back equal and proved into its anchored root;
duplicates across documents; queries by time, step and identifier."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supply_chain.services import orgs
from supply_chain.services.epcis import jobs, repository
from supply_chain.services.epcis.identity import hash_ids
from supply_chain.store.models import Organisation
from tests.integration.conftest import make_runtime

SHARED = Path(__file__).resolve().parents[3] / "shared" / "epcis"
if not SHARED.exists():
    SHARED = Path("/work/shared/epcis")
EXAMPLES = sorted(
    p
    for p in (SHARED / "examples").iterdir()
    if p.name != "object_event_all_possible_fields.jsonld"  # schema-invalid (ilmd with OBSERVE)
    and "WithDigitalLink" not in p.name  # the same events as their URN twins: duplicates
)


@pytest.fixture(scope="module")
def rt(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    runtime = make_runtime(tmp_path_factory.mktemp("repo-home"), module_db_url)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def captured(rt: Any) -> dict[str, Any]:
    """Every example captured by one organisation, through capture jobs, as the API does."""
    with rt.ctx() as ctx:
        regulator = orgs.onboard(ctx, None, "Regulator", ["regulator", "admin"])
        org_id = orgs.onboard(ctx, regulator, "Receiver", ["processor"]).id
        ctx.session.commit()
    documents = {}
    for path in EXAMPLES:
        document = json.loads(path.read_text())
        with rt.ctx() as ctx:
            org = ctx.session.get(Organisation, org_id)
            job, _ = jobs.submit(ctx, org, document)
            ctx.session.commit()
            job_id = job.id
        with rt.ctx() as ctx:
            jobs.claim(ctx, job_id)
        assert jobs.run_job(rt, job_id, replan=False) == "done"
        documents[path.name] = (job_id, document)
    return {"org_id": org_id, "documents": documents}


def test_every_example_is_served_back_equal_and_proves_into_its_anchored_root(rt: Any, captured: dict) -> None:
    with rt.ctx() as ctx:
        org = ctx.session.get(Organisation, captured["org_id"])
        for name, (_job_id, document) in captured["documents"].items():
            for event in document["epcisBody"]["eventList"]:
                hash_id = hash_ids({**document, "epcisBody": {"eventList": [event]}})[0]
                rows, _ = repository.query(ctx, org, repository.Query(event_ids=[hash_id]))
                assert [{k: v for k, v in repository.exported(r).items() if k != "recordTime"} for r in rows] == [
                    event
                ], name
                proof = repository.proof(ctx, org, hash_id)
                assert proof["verified"] is True, (name, proof)


def test_the_same_documents_again_are_all_duplicates(rt: Any, captured: dict) -> None:
    with rt.ctx() as ctx:
        for _job_id, document in captured["documents"].values():
            identities = repository.identify(ctx, document)
            assert all(i.duplicate_of and "capture job" in i.duplicate_of for i in identities)


TRANSFORMATION = "Example_9.6.4-TransformationEvent.jsonld"
TRANSFORMATION_ALL = "transformation_event_all_possible_fields.jsonld"
SENSOR_2_3 = {"SensorDataExample2.jsonld", "SensorDataExample3.jsonld"}


def _q(**args: str) -> repository.Query:
    return repository.parse_query({k: [v] for k, v in args.items()})


@pytest.mark.parametrize(
    ("query", "files"),
    [
        (repository.Query(event_types=["AggregationEvent"]), {"Example_9.6.3-AggregationEvent.jsonld"}),
        (
            repository.Query(biz_steps=["receiving"]),
            {
                "Example_9.6.1-ObjectEvent.jsonld",
                "Example_9.6.2-ObjectEvent.jsonld",
                "Example_9.6.3-AggregationEvent.jsonld",
            },
        ),
        (
            repository.Query(match_epc=["https://id.gs1.org/01/10614141073464/21/2017"]),  # SGTIN ...2017
            {"Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld"},
        ),
        # the parameters of the second round (docs/epcis.md, conformance), parsed as the API parses them
        (_q(EQ_bizTransaction_po="http://transaction.acme.com/po/12345678"), {"Example_9.6.1-ObjectEvent.jsonld"}),
        (_q(EQ_bizTransaction_desadv="http://transaction.acme.com/po/12345678"), set()),
        (_q(WD_readPoint="urn:epc:id:sgln:0614141.07346.0"), {"Example_9.6.1-ObjectEvent.jsonld"}),  # .1234 in it
        (_q(EQ_readPoint="urn:epc:id:sgln:0614141.07346.0"), set()),
        (_q(WD_bizLocation="https://id.gs1.org/414/0012345111112"), {"Example_9.6.1-ObjectEvent.jsonld"}),
        (_q(EQ_source_possessing_party="urn:epc:id:sgln:4012345.00001.0"), {"Example_9.6.2-ObjectEvent.jsonld"}),
        (_q(MATCH_inputEPC="urn:epc:id:sgtin:4012345.011122.25"), {TRANSFORMATION, TRANSFORMATION_ALL}),
        (_q(MATCH_epc="urn:epc:id:sgtin:4012345.011122.25"), set()),
        (
            _q(MATCH_inputEPCClass="urn:epc:class:lgtin:4012345.011111.4444"),
            {TRANSFORMATION, TRANSFORMATION_ALL},
        ),
        (_q(orderBy="eventTime", orderDirection="ASC", eventCountLimit="1"), {"Example_9.6.1-ObjectEvent.jsonld"}),
        # the third round: patterns, transformation ID, persistent disposition, quantities, sensor reports
        (
            _q(MATCH_epc="urn:epc:idpat:sgtin:0614141.107346.*"),
            {"Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.3-AggregationEvent.jsonld"},
        ),
        (_q(MATCH_inputEPCClass="urn:epc:idpat:sgtin:4012345.011111.*"), {TRANSFORMATION, TRANSFORMATION_ALL}),
        (_q(MATCH_outputEPCClass="urn:epc:idpat:sgtin:4012345.*.*"), {TRANSFORMATION_ALL}),
        (_q(EQ_transformationID="urn:epc:id:gdti:0614141.12345.400"), {TRANSFORMATION_ALL}),
        (_q(EQ_persistentDisposition_set="completeness_verified"), {TRANSFORMATION_ALL}),
        (
            _q(GE_quantity="200"),  # 200 KGM in quantityList, 220 of a class pattern in inputQuantityList
            {
                "Example_9.6.2-ObjectEvent.jsonld",
                "Example_9.6.3-AggregationEvent.jsonld",
                TRANSFORMATION,
                TRANSFORMATION_ALL,
            },
        ),
        (_q(EQ_quantity_KGM="10"), {TRANSFORMATION, TRANSFORMATION_ALL}),
        (_q(EQ_quantity_KGM="30"), set()),  # 30 of a lot without a unit
        (_q(EQ_type="Temperature", GE_value_CEL="26.1"), {"SensorDataExample1.jsonld"}),
        (_q(EQ_type="Temperature", GE_maxValue_CEL="13"), {*SENSOR_2_3, TRANSFORMATION_ALL}),  # gs1:Temperature
        (_q(EQ_type="AbsoluteHumidity", GE_maxValue_A93="70"), {"SensorDataExample3.jsonld"}),
        (_q(GE_time="2019-04-02T13:30:00Z", LT_time="2019-04-02T13:40:00Z"), {"SensorDataExample1.jsonld"}),
        (_q(EQ_bizRules="https://example.com/253/4012345000054987"), {"SensorDataExample2.jsonld", TRANSFORMATION_ALL}),
    ],
)
def test_queries_find_the_examples_events(rt: Any, captured: dict, query: Any, files: set[str]) -> None:
    with rt.ctx() as ctx:
        org = ctx.session.get(Organisation, captured["org_id"])
        rows, _ = repository.query(ctx, org, query)
        jobs_of = {job_id: name for name, (job_id, _doc) in captured["documents"].items()}
        assert {jobs_of[r.capture_job_id] for r in rows} == files


def test_ordered_pages_and_listings_on_both_databases(rt: Any, captured: dict) -> None:
    """Paging by eventTime (the token carries the last time and id) visits every event once, newest first;
    a listing pages by value in the database's order."""
    with rt.ctx() as ctx:
        org = ctx.session.get(Organisation, captured["org_id"])
        everything, _ = repository.query(ctx, org, repository.Query(per_page=500))
        seen, token = [], None
        while True:
            args = {"orderBy": ["eventTime"], "perPage": ["2"]} | ({"nextPageToken": [token]} if token else {})
            rows, token = repository.query(ctx, org, repository.parse_query(args))
            seen += rows
            if token is None:
                break
        assert sorted(r.id for r in seen) == sorted(r.id for r in everything)
        times = [r.event_time for r in seen]
        assert times == sorted(times, reverse=True) and len(everything) > 4
        listed, token = [], None
        while True:
            values, token = repository.listing(ctx, org, "epcs", 3, token)
            listed += values
            if token is None:
                break
        assert listed == sorted(set(listed)) and "https://id.gs1.org/01/10614141073464/21/2017" in listed


def test_a_lots_export_finds_its_captured_events_and_a_serial_its_lot(rt: Any) -> None:
    """On both databases: the lot export answers the stored events a capture job applied (by job and
    position), and a serial an event ties to a lot (ILMD lot number) maps to that lot."""
    from supply_chain.domain.identifiers import gs1_check_digit
    from supply_chain.services import lots as lot_service
    from supply_chain.services.epcis import export, serials

    def check(body: str) -> str:
        return body + str(gs1_check_digit(body))

    prefix = "0952011"
    gtin, gln = check("0" + prefix + "00001"), check(prefix + "00001")
    with rt.ctx() as ctx:
        admin = orgs.onboard(ctx, None, "Serial Regulator", ["regulator", "admin"])
        farm = orgs.onboard(ctx, admin, "Serial Farm", ["producer"], prefix)
        orgs.register_product(ctx, farm, gtin, "Pears", unit="kg")
        orgs.register_location(ctx, farm, gln, "Orchard")
        ctx.session.commit()
        farm_id = farm.id
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": "2025-06-01T06:30:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "readPoint": {"id": f"https://id.gs1.org/414/{gln}"},
            "bizLocation": {"id": f"https://id.gs1.org/414/{gln}"},
            "quantityList": [{"epcClass": f"https://id.gs1.org/01/{gtin}/10/PEAR-1", "quantity": 5, "uom": "KGM"}],
            "bizTransactionList": [
                {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0952011000015:PO-1"},
                {"type": "inv", "bizTransaction": "urn:epcglobal:cbv:bt:0952011000015:INV-1"},
            ],
        },
        {
            "type": "ObjectEvent",
            "eventTime": "2025-06-01T07:00:00Z",
            "eventTimeZoneOffset": "+00:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "epcList": [f"https://id.gs1.org/01/{gtin}/21/SN-7"],
            "ilmd": {"cbvmda:lotNumber": "PEAR-1"},
        },
    ]
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2025-06-01T12:00:00Z",
        "epcisBody": {"eventList": events},
    }
    with rt.ctx() as ctx:
        job, _ = jobs.submit(ctx, ctx.session.get(Organisation, farm_id), document)
        ctx.session.commit()
        job_id = job.id
    with rt.ctx() as ctx:
        jobs.claim(ctx, job_id)
    assert jobs.run_job(rt, job_id, replan=False) == "done"
    with rt.ctx() as ctx:
        lot = lot_service.get_lot(ctx, gtin, "PEAR-1")
        exported = export.export_lot(ctx, lot, viewer=ctx.session.get(Organisation, farm_id))
        assert [{k: v for k, v in e.items() if k != "recordTime"} for e in exported["epcisBody"]["eventList"]] == [
            events[0]
        ]
        found = serials.lot_of(ctx, gtin, "SN-7")
        assert found is not None and found.id == lot.id
        assert serials.lot_of(ctx, gtin, "SN-8") is None
