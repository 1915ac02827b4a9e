"""Browser tests: the real server (``lotline serve``) on a free loopback port, seeded with ``lotline demo``, driven
by Playwright through Debian's Chromium.

Without ``/usr/bin/chromium`` or the ``playwright`` package the tests skip; the suite-wide conftest turns that
skip into a failure on CI, where ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DEMO_PASSWORD = "lotline-demo"
SEED_TIMEOUT = 120  # seconds; the demo takes about 15 s on two cores
START_TIMEOUT = 45
STOP_TIMEOUT = 10


@dataclass(frozen=True)
class LiveServer:
    url: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(home: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    # A self-contained instance: embedded chain and SQLite in the temporary home, whatever the shell has set.
    for name in ("LOTLINE_DATABASE_URL", "LOTLINE_CHAIN_URL", "LOTLINE_WORKERS"):
        env.pop(name, None)
    # LOTLINE_TEST_SERVE_WORKERS=N serves the demo with N processes (the first holding the embedded chain for
    # the others): the same journeys through the multi-process server. Unset: one process, as `make run`.
    if os.environ.get("LOTLINE_TEST_SERVE_WORKERS"):
        env["LOTLINE_WORKERS"] = os.environ["LOTLINE_TEST_SERVE_WORKERS"]
    env.update(
        {
            "LOTLINE_HOME": str(home),
            "LOTLINE_SECRET_KEY": "browser-tests-" + os.urandom(16).hex(),
            "LOTLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LOTLINE_WEBHOOK_ALLOW_PRIVATE": "1",  # webhooks to the tests' receivers on loopback
            "LOTLINE_DELIVERY_POLL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lotline serve exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.25)
    raise RuntimeError(
        f"lotline serve did not answer /healthz within {START_TIMEOUT} s ({last}):\n{log.read_text(errors='replace')}"
    )


def _wait_verified(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for the start-up verification pass (in the background, after the first answers; with several
    workers, after worker 0 has opened the chain): the tests read "Verified journey" where the demo has one."""
    page = url + "/01/00614144000033/10/FC-MIX-001"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with urllib.request.urlopen(page, timeout=10) as response:
            if "Pending verification" not in response.read().decode():
                return
        if process.poll() is not None:
            break
        time.sleep(0.25)
    raise RuntimeError(
        f"the demo's lots were not verified within {START_TIMEOUT} s of start:\n{log.read_text(errors='replace')}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the server closes its chain and database on SIGTERM
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        pytest.skip(f"playwright for Python is not installed ({err})")
    manager = sync_playwright()
    api = manager.start()
    try:
        yield api
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def browser(playwright_api: Any) -> Iterator[Any]:
    """Debian's Chromium, headless (Playwright's own browser downloads are never used)."""
    chromium = playwright_api.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="session")
def live_server(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``lotline demo`` then ``lotline serve`` in subprocesses, on a free loopback port, shared by the session.

    Depends on ``browser`` so that a machine without Chromium skips before spending time on seeding. The demo
    runs first and exits: the embedded chain is opened by one process at a time."""
    with demo_server(tmp_path_factory) as server:
        yield server


@contextlib.contextmanager
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A freshly seeded demo served on a free port, stopped on exit. A test module that needs the demo as
    seeded (not as the session's earlier walks left it: a lot recalled, a hold lifted) overrides
    ``live_server`` with a module-scoped fixture built on this."""
    home = tmp_path_factory.mktemp("lotline-home")
    port = _free_port()
    env = _server_env(home, port)
    seeded = subprocess.run(
        [sys.executable, "-m", "supply_chain.cli", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT,
        check=False,
    )
    if seeded.returncode != 0:
        pytest.fail(f"lotline demo failed ({seeded.returncode}):\n{seeded.stdout}\n{seeded.stderr}")
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "supply_chain.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", home, log, process)
    try:
        _wait_healthy(server.url, process, log)
        _wait_verified(server.url, process, log)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the run leaves its screenshots (``test-artifacts/`` is gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def docs_screenshots() -> Path:
    return ROOT / "docs" / "screenshots"


def copy_screenshot(source: Path, target: Path) -> None:
    """Refresh a README screenshot, only when asked (`LOTLINE_UPDATE_DOC_SCREENSHOTS=1`): a test run should
    not rewrite tracked files."""
    if os.environ.get("LOTLINE_UPDATE_DOC_SCREENSHOTS") != "1":
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
