"""The open-data feeds on the demo, on SQLite and PostgreSQL: the demo's recall with the two salad mixes it
reached, and statistics where one grower per commodity means every inspection and lot cell is suppressed."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from supply_chain.services import opendata

pytestmark = pytest.mark.slow


def test_the_demo_recall_is_published_with_the_lots_it_reached(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        feed = opendata.recall_feed(ctx)
        jsonschema.validate(feed, opendata.RECALLS_SCHEMA)
        (recall,) = feed["recalls"]
        assert recall["lot"]["lot_code"] == "GV-ROM-2611A" and recall["recall_class"] == "I"
        assert recall["instructions"].startswith("Do not eat.")
        assert recall["contact"] == "recalls@foodsafety.example"
        assert [lot["lot_code"] for lot in recall["reached_lots"]] == ["FC-MIX-001", "FC-MIX-002"]
        atom = ET.fromstring(opendata.recall_atom(feed, ctx.settings.public_url))
        assert atom.find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}id").text == recall["id"]


def test_demo_statistics_suppress_every_one_grower_cell(demo_runtime: Any) -> None:
    with demo_runtime.ctx() as ctx:
        stats = opendata.statistics(ctx)
    jsonschema.validate(stats, opendata.STATISTICS_SCHEMA)
    tables = stats["tables"]
    assert tables["inspections"]["rows"] == [] and tables["inspections"]["suppressed_cells"] == 2
    assert tables["lots"]["rows"] == [] and tables["lots"]["suppressed_cells"] >= 3
    assert [(r["recall_class"], r["count"]) for r in tables["recalls"]["rows"]] == [("I", 1)]
