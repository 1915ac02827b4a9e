"""Copy the browser files the app serves from node_modules into app/static/vendor/ (commit the result).

The running app never needs node_modules: the supervision map's Leaflet (JS, CSS, images) and its offline base
map - the Natural Earth country outlines that npm's world-atlas ships as TopoJSON, converted to GeoJSON here by
npm's topojson-client - are committed under app/static/vendor/. tests/integration/test_vendored_assets.py checks
that the committed files are exactly what this script makes from the pinned packages.

    python scripts/vendor_assets.py            # write app/static/vendor/
    python scripts/vendor_assets.py --check    # exit 1 and name the files that differ
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "app" / "static" / "vendor"

COPIED: dict[str, str] = {
    "leaflet/leaflet.js": "leaflet/dist/leaflet.js",
    "leaflet/leaflet.css": "leaflet/dist/leaflet.css",
    "leaflet/images/layers.png": "leaflet/dist/images/layers.png",
    "leaflet/images/layers-2x.png": "leaflet/dist/images/layers-2x.png",
    "leaflet/images/marker-icon.png": "leaflet/dist/images/marker-icon.png",
    "leaflet/images/marker-icon-2x.png": "leaflet/dist/images/marker-icon-2x.png",
    "leaflet/images/marker-shadow.png": "leaflet/dist/images/marker-shadow.png",
    "leaflet/LICENSE": "leaflet/LICENSE",
    "world-atlas/LICENSE": "world-atlas/LICENSE",
}
"""Vendored path -> path under node_modules, copied byte for byte."""

OUTLINES = "world-atlas/countries-50m.geojson"
OUTLINE_SOURCE = "world-atlas/countries-50m.json"
OUTLINE_DECIMALS = 2
"""Coordinates rounded to 0.01 degree (about a kilometre), repeated points dropped: the 1:50m outlines in
about 1.5 MB instead of 3 MB, with no visible change at the zoom levels a regional map uses."""

# topojson-client's own conversion; the rounding is done in the same pass so the output is byte-stable.
_CONVERT_JS = r"""
const topojson = require("topojson-client");
const topo = require(process.argv[1]);
const scale = 10 ** Number(process.argv[2]);
const round = (x) => Math.round(x * scale) / scale;
const ring = (points) => {
  const out = [];
  for (const p of points) {
    const q = [round(p[0]), round(p[1])];
    const last = out[out.length - 1];
    if (!last || last[0] !== q[0] || last[1] !== q[1]) out.push(q);
  }
  return out;
};
const walk = (c, depth) => (depth === 0 ? ring(c) : c.map((x) => walk(x, depth - 1)));
const collection = topojson.feature(topo, topo.objects.countries);
const features = collection.features
  .filter((f) => f.geometry)
  .map((f) => ({
    type: "Feature",
    id: f.id,
    properties: { name: f.properties.name },
    geometry: {
      type: f.geometry.type,
      coordinates: walk(f.geometry.coordinates, f.geometry.type === "Polygon" ? 1 : 2),
    },
  }));
process.stdout.write(JSON.stringify({ type: "FeatureCollection", features }) + "\n");
"""


def build() -> dict[str, bytes]:
    """Every vendored file's path (under app/static/vendor/) and its bytes, made from node_modules."""
    if not NODE_MODULES.is_dir():
        raise RuntimeError(f"{NODE_MODULES} is missing: run `npm ci` first")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is not on PATH: install Node.js and run `npm ci`")
    out = {target: (NODE_MODULES / source).read_bytes() for target, source in COPIED.items()}
    converted = subprocess.run(
        [node, "-e", _CONVERT_JS, str(NODE_MODULES / OUTLINE_SOURCE), str(OUTLINE_DECIMALS)],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    out[OUTLINES] = converted.stdout
    return out


def differences(files: dict[str, bytes]) -> list[str]:
    """Vendored paths whose committed bytes differ from ``files`` (missing ones included)."""
    return [
        path for path, data in files.items() if not (VENDOR / path).is_file() or (VENDOR / path).read_bytes() != data
    ]


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = differences(files)
        for path in stale:
            print(f"differs from node_modules: app/static/vendor/{path}")
        return 1 if stale else 0
    for path, data in files.items():
        target = VENDOR / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"wrote {target.relative_to(ROOT)} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
