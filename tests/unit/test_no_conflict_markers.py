"""No tracked text file keeps the markers a half-resolved merge leaves behind."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$", re.MULTILINE)
TEXT = (".py", ".md", ".html", ".js", ".css", ".toml", ".cfg", ".ini", ".sol", ".yml", ".yaml", ".json", ".txt", ".po")


def test_no_file_keeps_merge_conflict_markers() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    found = []
    for name in listed:
        if not name.endswith(TEXT):
            continue
        path = ROOT / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in MARKER.finditer(text)]
    assert not found, f"merge conflict markers left in: {found[:20]}"
