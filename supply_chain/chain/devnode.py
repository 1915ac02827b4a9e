"""A local development node: anvil from the npm package `@foundry-rs/anvil` (its binary ships in
node_modules), started on a free loopback port. Used by the test suites that need a real JSON-RPC node and
by developers (`LOTLINE_CHAIN_URL=http://127.0.0.1:PORT`)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ANVIL_BINARY = PROJECT_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ANVIL_CHAIN_ID = 31337


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Ask the node to exit; kill it after ``timeout`` seconds (give more to a node that dumps its state)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def start_anvil(
    log: Path,
    binary: Path = ANVIL_BINARY,
    timeout: float = 30.0,
    *,
    port: int | None = None,
    state: Path | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start anvil on a free loopback port (or `port`), its output going to `log`; return its URL once it
    answers eth_chainId. The caller stops it with `stop`. With `state`, the chain (blocks, receipts,
    accounts) is loaded from that file if it exists and written back when anvil is stopped, so a node
    stopped and started again continues the same chain. ``extra`` options go to anvil as given (e.g.
    ``--load-state FILE`` alone, which reads a state without writing it back)."""
    fixed = port
    for _attempt in range(1 if fixed else 3):  # another process may take the port between probing and binding
        port = fixed or free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    str(binary),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--chain-id",
                    str(ANVIL_CHAIN_ID),
                    "--silent",
                    *(["--state", str(state)] if state is not None else []),
                    *extra,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = requests.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=1
                ).json()
            except (requests.ConnectionError, requests.Timeout, ValueError):
                time.sleep(0.05)
                continue
            if int(answer.get("result", "0x0"), 16) == ANVIL_CHAIN_ID:
                return url, process
            break
        stop(process)
        output = log.read_text(errors="replace")
        if fixed or "address already in use" not in output.lower():
            raise RuntimeError(f"anvil did not answer eth_chainId on {url} within {timeout:g} s: {output[-2000:]}")
    raise RuntimeError("anvil could not bind a free port in three attempts")
