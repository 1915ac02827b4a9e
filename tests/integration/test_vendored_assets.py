"""The browser files the app serves from app/static/vendor/ (Leaflet, the world-atlas country outlines as
GeoJSON) are exactly what scripts/vendor_assets.py makes from the pinned npm packages, so the running app
needs neither node_modules nor the network, and an upgrade in package.json cannot leave stale copies."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import vendor_assets  # noqa: E402

sys.path.remove(str(ROOT / "scripts"))


def _node_or_skip() -> None:
    reason = None
    if shutil.which("node") is None:
        reason = "node is not on PATH: install Node.js and run npm ci"
    elif not (ROOT / "node_modules" / "leaflet" / "package.json").is_file():
        reason = "node_modules has no leaflet: run npm ci"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def test_vendored_files_equal_what_the_script_makes_from_node_modules() -> None:
    _node_or_skip()
    built = vendor_assets.build()
    assert vendor_assets.differences(built) == [], "run: python scripts/vendor_assets.py"
    committed = {p.relative_to(vendor_assets.VENDOR).as_posix() for p in vendor_assets.VENDOR.rglob("*") if p.is_file()}
    assert committed == set(built), "app/static/vendor/ holds files the script does not make"


def test_vendored_versions_are_the_ones_package_json_pins() -> None:
    pins = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    leaflet = (vendor_assets.VENDOR / "leaflet" / "leaflet.js").read_text()[:200]
    assert f"Leaflet {pins['leaflet']}" in leaflet
    assert {"world-atlas", "topojson-client"} <= set(pins)


def test_outlines_are_geojson_countries() -> None:
    data = json.loads((vendor_assets.VENDOR / vendor_assets.OUTLINES).read_text())
    assert data["type"] == "FeatureCollection"
    names = {f["properties"]["name"] for f in data["features"]}
    assert {"United States of America", "Mexico", "Canada"} <= names
    assert {f["geometry"]["type"] for f in data["features"]} <= {"Polygon", "MultiPolygon"}
