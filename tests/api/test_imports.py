"""Bulk import through the API (issue 13, "bulk import"): a CSV or XLSX file of critical tracking events,
checked whole by a dry run, then written as one job in batches; a file with mistakes gives a row-error report
(row and column as in the file) and writes nothing."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from supply_chain.services import fsma
from supply_chain.services import lots as lot_service
from supply_chain.services.epcis import jobs
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import CaptureJob, Event, Lot
from tests.api.conftest import Member, Network, new_code

HEADERS = dict(fsma.COLUMNS)


def csv_file(rows: list[dict[str, str]], *, bom: bool = True, encoding: str = "utf-8") -> bytes:
    """A CSV import file with the columns the rows use (FSMA 204 headers)."""
    keys = [k for k, _ in fsma.COLUMNS if any(k in r for r in rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([HEADERS[k] for k in keys])
    for row in rows:
        writer.writerow([row.get(k, "") for k in keys])
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode(encoding)


def xlsx_file(rows: list[dict[str, Any]]) -> bytes:
    keys = [k for k, _ in fsma.COLUMNS if any(k in r for r in rows)]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([HEADERS[k] for k in keys])
    for row in rows:
        sheet.append([row.get(k) for k in keys])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def harvest(member: Member, code: str, quantity: str = "100", day: str = "2025-06-01") -> dict[str, str]:
    return {
        "cte": "Harvesting",
        "date": day,
        "traceability_lot_code": code,
        "gtin": member.gtin or "",
        "quantity": quantity,
        "unit": "kg",
        "location_gln": member.gln,
    }


def cooling(member: Member, code: str, day: str = "2025-06-01") -> dict[str, str]:
    return {
        "cte": "Cooling",
        "date": day,
        "traceability_lot_code": code,
        "gtin": member.gtin or "",
        "location_gln": member.gln,
    }


def shipping(member: Member, code: str, to: Member, day: str = "2025-06-02") -> dict[str, str]:
    return {
        "cte": "Shipping",
        "date": day,
        "traceability_lot_code": code,
        "gtin": member.gtin or "",
        "ship_from_gln": member.gln,
        "ship_to_gln": to.gln,
        "reference_document_type": "BOL",
        "reference_document_number": f"BOL-{code}",
    }


def post(client: Any, member: Member, data: bytes, *, dry_run: bool, media: str = "text/csv") -> Any:
    return client.post(
        f"/api/v1/imports?dry_run={'true' if dry_run else 'false'}",
        data=data,
        headers=member.headers() | {"Content-Type": media},
    )


def counts(runtime: Any) -> tuple[int, int, int]:
    with runtime.ctx() as ctx:
        return (
            ctx.session.scalar(select(func.count()).select_from(Lot)) or 0,
            ctx.session.scalar(select(func.count()).select_from(Event)) or 0,
            ctx.session.scalar(select(func.count()).select_from(CaptureJob)) or 0,
        )


def test_dry_run_then_import_of_dependent_rows_writes_each_row_once(client: Any, network: Network) -> None:
    producer, processor = network["producer"], network["processor"]
    a, b = new_code("IMP"), new_code("IMP")
    rows = [harvest(producer, a), harvest(producer, b), cooling(producer, a), shipping(producer, a, processor)]
    data = csv_file(rows)
    before = counts(network.runtime)
    dry = post(client, producer, data, dry_run=True)
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json()["rows_total"] == 4 and dry.get_json()["lots_created"] == 2
    assert dry.get_json()["rows_by_cte"] == {"Harvesting": 2, "Cooling": 1, "Shipping": 1}
    assert counts(network.runtime) == before  # a dry run writes nothing
    answer = post(client, producer, data, dry_run=False)
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    assert job["status"] == "done" and job["rows_written"] == 4
    assert [r["row"] for r in job["rows"]] == [2, 3, 4, 5]
    assert {r["status"] for r in job["rows"]} == {"captured"}
    assert sorted(lot["lot_code"] for lot in job["lots_created"]) == sorted([a, b])
    again = client.get(answer.headers["Location"], headers=producer.headers("read"))
    assert again.status_code == 200 and again.get_json()["id"] == job["id"]
    with network.runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == a)).one()
        assert lot.status == "in_transit" and lot.pending_custodian_org_id == processor.org.id
        assert [e.kind.name for e in sorted(lot.events, key=lambda e: e.id)] == ["HARVESTING", "COOLING", "SHIPPING"]
        assert verify_lot(ctx, lot).state == "verified"


def test_a_file_with_mistakes_is_refused_whole_with_a_row_error_report(client: Any, network: Network) -> None:
    producer, processor = network["producer"], network["processor"]
    good, bad_gln = new_code("IMP"), new_code("IMP")
    rows = [
        harvest(producer, good),  # row 2: fine
        harvest(producer, bad_gln) | {"location_gln": "0000000000000"},  # row 3: GLN check digit fine, unknown
        harvest(producer, new_code("IMP"), quantity="-5"),  # row 4: quantity
        cooling(producer, "NEVER-MADE"),  # row 5: unknown lot
        shipping(producer, good, processor) | {"ship_to_gln": ""},  # row 6: ship-to missing
        harvest(producer, new_code("IMP"), day="2025-13-01"),  # row 7: date
        harvest(producer, good),  # row 8: the lot row 2 creates
        {"cte": "Sorting", "date": "2025-06-01", "traceability_lot_code": "X1", "gtin": producer.gtin or ""},  # row 9
    ]
    before = counts(network.runtime)
    for dry_run in (True, False):
        answer = post(client, producer, csv_file(rows), dry_run=dry_run)
        assert answer.status_code == 422, answer.get_json()
        body = answer.get_json()
        assert body["error"] == "import_rejected" and body["rows_total"] == 8
        errors = {e["row"]: e for e in body["errors"]}
        assert sorted(errors) == [3, 4, 5, 6, 7, 8, 9]
        assert errors[3]["column"] == "Location GLN" and "not a registered location" in errors[3]["reason"]
        assert errors[4]["column"] == "Quantity"
        assert errors[5]["column"] == "Traceability lot code" and errors[5]["code"] == "unknown_lot"
        assert errors[6]["column"] == "Ship-to GLN" and errors[6]["code"] == "missing_field"
        assert errors[7]["column"] == "Event date"
        assert errors[8]["code"] == "lot_exists"
        assert errors[9]["column"] == "Critical tracking event" and errors[9]["code"] == "unknown_cte"
        assert not any("payload." in e["reason"] for e in body["errors"])  # the file's words, not internal keys
    assert counts(network.runtime) == before  # nothing written, no job stored


def test_a_row_depending_on_a_refused_row_says_so(client: Any, network: Network) -> None:
    producer, processor = network["producer"], network["processor"]
    code = new_code("IMP")
    rows = [harvest(producer, code, quantity="abc"), shipping(producer, code, processor)]
    body = post(client, producer, csv_file(rows), dry_run=True).get_json()
    assert [(e["row"], e["code"]) for e in body["errors"]] == [(2, "invalid_quantity"), (3, "depends_on_refused_row")]
    assert "row 2" in body["errors"][1]["reason"]


def test_transformation_rows_consume_lots_created_above(client: Any, network: Network) -> None:
    processor = network["processor"]
    a, b, mix = new_code("IMP"), new_code("IMP"), new_code("MIX")
    rows = [
        {"cte": "Initial packing", **{k: v for k, v in harvest(processor, a).items() if k != "cte"}},
        {"cte": "Initial packing", **{k: v for k, v in harvest(processor, b).items() if k != "cte"}},
        {
            "cte": "Transformation",
            "date": "2025-06-03",
            "traceability_lot_code": mix,
            "gtin": processor.gtin or "",
            "quantity": "150",
            "unit": "kg",
            "location_gln": processor.gln,
            "input_lots": f"{processor.gtin}/{a} (60 kg); {processor.gtin}/{b} (90 kg)",
        },
    ]
    answer = post(client, processor, csv_file(rows), dry_run=False)
    assert answer.status_code == 202, answer.get_json()
    with network.runtime.ctx() as ctx:
        made = ctx.session.scalars(select(Lot).where(Lot.lot_code == mix)).one()
        assert sorted((i.input_lot.lot_code, i.quantity) for i in made.inputs) == [(a, 60), (b, 90)]
        left = {lot.lot_code: lot.quantity for lot in ctx.session.scalars(select(Lot).where(Lot.lot_code.in_([a, b])))}
        assert left == {a: 40, b: 10}
        assert verify_lot(ctx, made).state == "verified"
    too_much = [rows[2] | {"traceability_lot_code": new_code("MIX"), "input_lots": f"{processor.gtin}/{a} (41 kg)"}]
    errors = post(client, processor, csv_file(too_much), dry_run=True).get_json()["errors"]
    assert errors[0]["column"] == "Input traceability lot codes (transformation)" and errors[0]["row"] == 2


def test_xlsx_with_numbers_dates_and_chinese_text(client: Any, network: Network) -> None:
    from datetime import date

    producer = network["producer"]
    code = new_code("IMP")
    row: dict[str, Any] = harvest(producer, code) | {
        "gtin": int(producer.gtin or 0),  # typed as a number: leading zeros lost
        "location_gln": int(producer.gln),
        "quantity": 12.5,
        "date": date(2025, 6, 1),
        "commodity": "生菜",  # lettuce
        "field_name": "东区三号田",
    }
    answer = post(client, producer, xlsx_file([row]), dry_run=False, media=fsma.XLSX_CONTENT_TYPE)
    assert answer.status_code == 202, answer.get_json()
    with network.runtime.ctx() as ctx:
        lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == code)).one()
        payload = lot.events[0].payload
        assert payload["field_name"] == "东区三号田" and payload["quantity"] == "12.5"
        assert payload["harvest_date"] == "2025-06-01"


def test_import_in_batches_by_a_worker_and_the_template(client: Any, network: Network, api_runtime: Any) -> None:
    producer = network["producer"]
    codes = [new_code("IMP") for _ in range(12)]
    answer = client.post(
        "/api/v1/imports",
        data={"file": (io.BytesIO(csv_file([harvest(producer, c) for c in codes])), "lots.csv")},
        headers=producer.headers(),
        content_type="multipart/form-data",
    )
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    if job["status"] != "done":  # larger than one batch in production; here the request may write it inline
        jobs.run_pending(api_runtime, batch_calls=5)
    job = client.get(job["href"], headers=producer.headers("read")).get_json()
    assert job["status"] == "done" and job["filename"] == "lots.csv" and job["rows_written"] == 12
    listed = client.get("/api/v1/imports", headers=producer.headers("read")).get_json()["items"]
    assert job["id"] in [j["id"] for j in listed]
    assert client.get(f"/api/v1/epcis/capture/{job['id']}", headers=producer.headers("read")).status_code == 404
    template = client.get("/api/v1/imports/template?format=csv", headers=producer.headers("read"))
    assert template.status_code == 200
    header = next(csv.reader(io.StringIO(template.data.decode("utf-8-sig"))))
    assert header[:4] == ["Critical tracking event", "Event date", "Traceability lot code", "Product GTIN"]
    assert "Recorded by" not in header


def test_a_row_the_record_refuses_mid_job_names_its_row_and_column(
    client: Any, network: Network, api_runtime: Any
) -> None:
    producer, processor, inspector = network["producer"], network["processor"], network["inspector"]
    held = new_code("MID")
    with api_runtime.ctx() as ctx:
        lot_service.create_lot(
            ctx,
            ctx.session.merge(producer.org),
            producer.gtin,
            held,
            1,
            {"location_gln": producer.gln, "harvest_date": "2025-06-01", "commodity": "x"},
            "5",
            "kg",
        )
        ctx.session.commit()
    rows = [harvest(producer, new_code("MID")) for _ in range(45)] + [shipping(producer, held, processor)]
    answer = post(client, producer, csv_file(rows), dry_run=False)
    assert answer.status_code == 202 and answer.get_json()["status"] == "queued", answer.get_json()

    def hold_after_the_first_batch(batches: int) -> None:  # the record moves while the job runs
        if batches == 1:
            with api_runtime.ctx() as ctx:
                lot = ctx.session.scalars(select(Lot).where(Lot.lot_code == held)).one()
                lot_service.hold(ctx, ctx.session.merge(inspector.org), lot, "sampling")
                ctx.session.commit()

    job_id = answer.get_json()["id"]
    assert jobs.run_pending(api_runtime, batch_calls=20, after_batch=hold_after_the_first_batch)[job_id] == "failed"
    job = client.get(f"/api/v1/imports/{job_id}", headers=producer.headers("read")).get_json()
    refused = [r for r in job["rows"] if r["status"] == "rejected"]
    assert [(r["row"], r["column"]) for r in refused] == [(47, "Traceability lot code")], refused
    # the two batches before it are written; its own batch (one transaction) is not, nor anything after it
    assert job["status"] == "failed" and job["rows_written"] == 40


def test_checked_files_nobody_imported_are_removed_by_age_when_an_import_starts(
    client: Any, network: Network, api_runtime: Any
) -> None:
    producer = network["producer"]
    folder = Path(api_runtime.settings.home) / "imports"

    def dry_run_keeps_a_file() -> Path:
        before = set(folder.glob("*.json")) if folder.is_dir() else set()
        assert post(client, producer, csv_file([harvest(producer, new_code("OLD"))]), dry_run=True).status_code == 200
        (kept,) = set(folder.glob("*.json")) - before
        return kept

    abandoned, recent = dry_run_keeps_a_file(), dry_run_keeps_a_file()
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(abandoned, (two_days_ago, two_days_ago))
    # an import without a dry run of its own (nothing is staged meanwhile) clears the abandoned file
    answer = post(client, producer, csv_file([harvest(producer, new_code("NEW"))]), dry_run=False)
    assert answer.status_code == 202
    assert not abandoned.exists()
    assert recent.exists()  # checked today: still waiting for its import


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_file"),
        (b"Critical tracking event,Event date\r\nHarvesting,2025-06-01\r\n", "missing_column"),
        (
            b"Critical tracking event,Event date,Traceability lot code,Product GTIN,Colour\r\nx,y,z,w,v\r\n",
            "unknown_column",
        ),
        (b"Critical tracking event,Event date,Traceability lot code,Product GTIN\r\n", "no_rows"),
    ],
)
def test_files_that_cannot_be_imported_name_the_file(client: Any, network: Network, data: bytes, code: str) -> None:
    before = counts(network.runtime)
    answer = post(client, network["producer"], data, dry_run=False)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"] == code and answer.get_json()["field"] == "file"
    assert counts(network.runtime) == before


def test_an_inspector_cannot_import(client: Any, network: Network) -> None:
    answer = post(client, network["inspector"], csv_file([harvest(network["producer"], "X")]), dry_run=True)
    assert answer.status_code == 403


def test_openapi_documents_the_import_operations(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "text/csv" in paths["/imports"]["post"]["requestBody"]["content"]
    assert {"/imports", "/imports/{job_id}", "/imports/template"} <= set(paths)


def test_an_import_after_its_dry_run_uses_the_checked_plan_unless_the_record_moved(
    client: Any, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = network["producer"]
    planned: list[int] = []
    real = jobs.PLANNERS["import"]

    def counting(ctx: Any, org: Any, document: Any) -> Any:
        planned.append(len(document["rows"]))
        return real(ctx, org, document)

    monkeypatch.setitem(jobs.PLANNERS, "import", counting)
    first = csv_file([harvest(producer, new_code("IMP"))])
    assert post(client, producer, first, dry_run=True).status_code == 200
    assert post(client, producer, first, dry_run=False).get_json()["status"] == "done"
    assert planned == []  # the dry run's plan (imports.plan_import directly), not planned a second time
    second = csv_file([harvest(producer, new_code("IMP")), harvest(producer, new_code("IMP"))])
    assert post(client, producer, second, dry_run=True).status_code == 200
    other = csv_file([harvest(producer, new_code("IMP"))])
    assert post(client, producer, other, dry_run=False).status_code == 202  # the record moves meanwhile
    assert post(client, producer, second, dry_run=False).get_json()["status"] == "done"
    assert planned == [1, 2]  # "other" (no dry run) and "second" (its dry run is out of date) were planned


@pytest.mark.slow
def test_a_5000_row_csv_dry_run_then_import_through_the_api(client: Any, network: Network, api_runtime: Any) -> None:
    producer, processor = network["producer"], network["processor"]
    codes = [new_code("API5K") for _ in range(1250)]
    rows = []
    for code in codes:  # every lot: harvested, cooled, packed, shipped; each row builds on the one before
        rows += [
            harvest(producer, code, day="2025-06-01"),
            cooling(producer, code, day="2025-06-01"),
            {"cte": "Initial packing"} | {k: v for k, v in cooling(producer, code, "2025-06-02").items() if k != "cte"},
            shipping(producer, code, processor, day="2025-06-03"),
        ]
    data = csv_file(rows)
    before = counts(network.runtime)
    dry = post(client, producer, data, dry_run=True)
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json()["rows_total"] == 5000 and dry.get_json()["writes_total"] == 5000
    assert counts(network.runtime) == before
    answer = post(client, producer, data, dry_run=False)
    assert answer.status_code == 202, answer.get_json()
    jobs.run_pending(api_runtime)
    job = client.get(answer.headers["Location"], headers=producer.headers("read")).get_json()
    assert job["status"] == "done" and job["rows_written"] == 5000 and len(job["lots_created"]) == 1250
    assert job["batches_done"] == 5000 // jobs.BATCH_CALLS
    with api_runtime.ctx() as ctx:
        lots = list(ctx.session.scalars(select(Lot).where(Lot.lot_code.in_(codes))))
        assert len(lots) == 1250
        events = list(ctx.session.scalars(select(Event).where(Event.lot_id.in_([lot.id for lot in lots]))))
        assert len(events) == 5000 and {e.status for e in events} == {"confirmed"}
        for lot in lots:
            assert verify_lot(ctx, lot, save=False).state == "verified", lot.lot_code


def test_a_json_operation_refuses_a_body_sent_as_a_file(client: Any, network: Network) -> None:
    """File bodies skip the JSON nesting scan (body_limits), so no JSON operation may parse one."""
    deep = b"[" * 200_000 + b"]" * 200_000
    answer = client.post(
        "/api/v1/lots", data=deep, headers=network["producer"].headers() | {"Content-Type": "text/csv"}
    )
    assert answer.status_code == 415 and answer.get_json()["error"] == "unsupported_media_type"
    assert answer.get_json()["field"] == "Content-Type"
    # the document says so, as it does for an XML body sent to the same operation
    documented = client.get("/api/v1/openapi.json").get_json()["paths"]["/lots"]["post"]["responses"]
    assert "415" in documented
