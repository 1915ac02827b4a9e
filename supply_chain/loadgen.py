"""A small HTTP load generator for `lotline bench`: ``clients`` keep-alive connections, each sending one GET after
another for a fixed time, run in its own process so it does not share the server's interpreter.

``python -m supply_chain.loadgen URL --clients 32 --seconds 10 [--warmup 1] [--header 'Name: value']`` prints one
JSON object: completed requests, requests per second, the median and 95th percentile latency (ms), and the
count of answers by status. Plain HTTP/1.1 over asyncio streams: light enough that 32 clients cost the machine
far less than the server they load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit


async def _client(
    host: str, port: int, request: bytes, warm_until: float, stop_at: float, out: list[float], statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip().lower()
            if fields.get("transfer-encoding") == "chunked":
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            elif int(fields.get("content-length", "0")):
                await reader.readexactly(int(fields["content-length"]))
            close = fields.get("connection") == "close"
            done = time.perf_counter()
            if start >= warm_until:
                out.append(done - start)
                statuses[status] += 1
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _run(url: str, clients: int, seconds: float, warmup: float, headers: list[str]) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode("latin-1")
    now = time.perf_counter()
    warm_until, stop_at = now + warmup, now + warmup + seconds
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    runs = (_client(host, port, request, warm_until, stop_at, latencies, statuses) for _ in range(clients))
    await asyncio.gather(*runs)
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    return {
        "url": url,
        "clients": clients,
        "seconds": seconds,
        "requests": len(latencies),
        "per_second": round(len(latencies) / seconds, 1),
        "median_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p95_ms": round(p95 * 1000, 2) if p95 is not None else None,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(_run(args.url, args.clients, args.seconds, args.warmup, args.header))))


if __name__ == "__main__":
    main()
