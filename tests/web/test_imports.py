"""Bulk import in the browser (issue 13, "bulk import"): /imports, linked from the dashboard, checks a file
(dry run: every row, nothing written), imports it as one job on the capture-job machinery and shows its
progress on a page that reloads itself; a file with mistakes gets a table of rows to correct."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from supply_chain.services.epcis import jobs
from supply_chain.services.verify import verify_lot
from supply_chain.store.models import Event, Lot
from tests.api.test_imports import csv_file


def _rows(world: Any, lots: int, stem: str) -> list[dict[str, str]]:
    """Four CTEs per lot, each building on the row before: harvesting, cooling, initial packing, shipping."""
    farm, shed, lettuce = world.sites["producer"], world.sites["processor"], world.gtins["lettuce"]
    rows = []
    for i in range(lots):
        base = {"traceability_lot_code": f"{stem}-{i:05d}", "gtin": lettuce}
        rows += [
            base
            | {
                "cte": "Harvesting",
                "date": "2026-11-05",
                "quantity": "120",
                "unit": "kg",
                "location_gln": farm,
                "commodity": "romaine lettuce",
            },
            base | {"cte": "Cooling", "date": "2026-11-05", "location_gln": farm},
            base | {"cte": "Initial packing", "date": "2026-11-06", "location_gln": farm},
            base
            | {
                "cte": "Shipping",
                "date": "2026-11-07",
                "ship_from_gln": farm,
                "ship_to_gln": shed,
                "reference_document_type": "BOL",
                "reference_document_number": f"BOL-{stem}-{i}",
            },
        ]
    return rows


def _check(client: Any, csrf: Any, data: bytes, name: str = "records.csv") -> Any:
    import io

    return client.post(
        "/imports/check",
        data={"csrf_token": csrf(client), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def _import(client: Any, csrf: Any, page: str) -> Any:
    token = re.search(r'name="staged" value="([0-9a-f]{64})"', page)
    assert token, "no Import button after a successful check"
    return client.post("/imports", data={"csrf_token": csrf(client), "staged": token[1]})


def test_the_dashboard_links_the_import_page_and_its_templates(client: Any, login: Any) -> None:
    login(client, "producer")
    assert 'href="/imports"' in client.get("/dashboard").get_data(as_text=True)
    page = client.get("/imports").get_data(as_text=True)
    assert "Check the file" in page and "/imports/template.xlsx" in page
    template = client.get("/imports/template.xlsx")
    assert template.status_code == 200 and template.data.startswith(b"PK")


def test_an_inspector_has_no_import_page(client: Any, login: Any) -> None:
    login(client, "inspector")
    assert client.get("/imports").status_code == 403


def test_a_file_with_mistakes_shows_each_row_to_correct_and_writes_nothing(
    client: Any, login: Any, csrf: Any, world: Any, counts: Any
) -> None:
    login(client, "producer")
    rows = _rows(world, 2, "WEB-BAD")
    rows[1]["location_gln"] = "0614141999996"  # row 3: not a registered place
    rows[4]["quantity"] = "lots"  # row 6: the second lot's harvest quantity
    before = counts()
    answer = _check(client, csrf, csv_file(rows))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "Nothing was imported" in page
    table = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td>", page)
    assert ("3", "Location GLN") in table and ("6", "Quantity") in table
    assert ("7", "Traceability lot code") in table  # depends on row 6
    assert 'name="staged"' not in page  # no Import button
    assert counts() == before


def test_a_file_that_cannot_be_read_says_why(client: Any, login: Any, csrf: Any, counts: Any) -> None:
    login(client, "producer")
    before = counts()
    answer = _check(client, csrf, b"Colour,Shape\r\nred,round\r\n")
    assert answer.status_code == 400
    assert "unknown column" in answer.get_data(as_text=True)
    assert counts() == before


def test_a_queued_import_page_reloads_itself_until_done(client: Any, login: Any, csrf: Any, world: Any) -> None:
    login(client, "producer")
    rows = _rows(world, 11, "WEB-Q")  # 44 writes: more than one batch, so it is queued for a worker
    answer = _import(client, csrf, _check(client, csrf, csv_file(rows)).get_data(as_text=True))
    assert answer.status_code == 303
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'http-equiv="refresh"' in page and "Waiting to start" in page
    assert jobs.run_pending(world.runtime, batch_calls=20)
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "Done: every row is recorded" in page
    assert "44 of 44 rows recorded" in page


@pytest.mark.slow
def test_a_5000_row_csv_checked_then_imported_through_the_web(
    client: Any, login: Any, csrf: Any, world: Any, counts: Any
) -> None:
    login(client, "producer")
    data = csv_file(_rows(world, 1250, "WEB5K"))
    before = counts()
    checked = _check(client, csrf, data, "harvest-2026-11.csv")
    page = checked.get_data(as_text=True)
    assert checked.status_code == 200, page[:2000]
    assert "Import 5000 rows" in page and "1250 new lots" in page
    assert counts() == before  # the dry run wrote nothing
    answer = _import(client, csrf, page)
    assert answer.status_code == 303
    jobs.run_pending(world.runtime)
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Done: every row is recorded" in page and "5000 of 5000 rows recorded" in page
    with world.runtime.ctx() as ctx:
        lots = list(ctx.session.scalars(select(Lot).where(Lot.lot_code.like("WEB5K-%"))))
        assert len(lots) == 1250
        events = ctx.session.scalar(
            select(func.count()).select_from(Event).where(Event.lot_id.in_([lot.id for lot in lots]))
        )
        assert events == 5000
        assert {lot.status for lot in lots} == {"in_transit"}
        for lot in lots:
            assert verify_lot(ctx, lot, save=False).state == "verified", lot.lot_code


def test_a_chinese_user_sees_each_row_error_in_chinese(
    make_app: Any, login: Any, csrf: Any, world: Any, counts: Any
) -> None:
    """The dry run's row errors in the user's language: the rule in Chinese; the file's own column headers stay
    as written."""
    from tests.web.test_i18n import _data_values, english_left

    user = make_app().test_client()
    user.set_cookie("lotline_lang", "zh_Hans")
    login(user, "producer")
    rows = _rows(world, 2, "WEB-ZH")
    rows[1]["location_gln"] = "0614141999996"  # row 3: not a registered place
    rows[4]["quantity"] = "lots"  # row 6: not a number
    rows[2]["cte"] = "Packing"  # row 4: not a CTE
    before = counts()
    answer = _check(user, csrf, csv_file(rows))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    table = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", page)
    assert ("3", "Location GLN") in {(r, c) for r, c, _ in table}  # the file's own header
    reasons = dict(((r, reason) for r, _c, reason in table))
    assert reasons["3"] == "GLN 0614141999996 不是已登记的地点"
    assert reasons["6"] == "&#39;lots&#39; 不是十进制数字"
    assert reasons["7"] == "使用了第 6 行的批次，而该行被拒绝"
    assert reasons["4"].startswith("&#39;Packing&#39; 不是关键追踪事件；请填写以下之一：Harvesting, Cooling")
    # what the user typed, and the CTE names the file must use, stay as written
    cte_names = {"Harvesting", "Cooling", "Initial packing", "First land-based receiving", "Shipping", "Receiving"}
    text = " ".join(reasons.values())
    typed = _data_values(world) | cte_names | {"Transformation", "Packing", "lots"}
    assert english_left(f"<p>{text}</p>", typed) == [], table
    assert counts() == before


def test_a_file_that_cannot_be_read_says_why_in_chinese(
    make_app: Any, login: Any, csrf: Any, counts: Any
) -> None:
    user = make_app().test_client()
    user.set_cookie("lotline_lang", "zh_Hans")
    login(user, "producer")
    before = counts()
    answer = _check(user, csrf, b"Colour,Shape\r\nred,round\r\n")
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert "未知的列 &#39;Colour&#39;, &#39;Shape&#39;：列应为 FSMA 204 电子表格的列（请下载模板）" in page
    assert "unknown column" not in page
    assert counts() == before
