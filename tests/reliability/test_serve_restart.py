"""`lotline serve`, killed with SIGKILL and started again on the same LOTLINE_HOME, serves the same ledger:
/healthz shows the same contract address and no lower block number."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"LOTLINE_HOME": str(home), "LOTLINE_SECRET_KEY": "restart-test"}
    return subprocess.Popen(
        [sys.executable, "-m", "supply_chain.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _health(port: int, deadline: float) -> dict:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return json.loads(response.read())
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"server did not answer /healthz in time: {last}")


def test_serve_sigkill_serve_keeps_the_contract_address_and_block_height(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()
    first = _serve(home, port)
    try:
        before = _health(port, time.monotonic() + 90)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert before["status"] == "ok" and before["chain"]["mode"] == "embedded"
    address, block = before["chain"]["ledger_address"], before["chain"]["block_number"]
    assert address and address.startswith("0x") and block >= 1

    second = _serve(home, port)
    try:
        after = _health(port, time.monotonic() + 90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert after["status"] == "ok"
    assert after["chain"]["ledger_address"] == address
    assert after["chain"]["block_number"] >= block
