"""How the api comes out of a load burst (standalone script, not a test).

Starts a private redis-server and ``python -m services.api`` twice: with its limits
(``API_MAX_CONCURRENCY``, ``SSE_MAX_CLIENTS`` at their defaults) and, as the baseline of the same
run, with the limits raised out of reach. Each time: 100 SSE clients stay connected, then
``--connections`` clients hammer ``GET /api/status`` for ``--seconds`` and give up on any answer
slower than 2 s (as a browser's user would), then everything stops at once. Reported: answers
by status during the burst, latency of the 200s, and how long after the burst's end a fresh
request is answered.

    .venv/bin/python bench/bench_api_burst.py [--seconds 10] [--connections 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared import signing
from tests.support.ports import free_port
from tests.support.redis_server import start_redis

SSE_CLIENTS = 100


def start_api(redis_url: str, folder: Path, password: str, limits: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("API_", "SSE_", "DASHBOARD_"))}
    env.update(
        PYTHONPATH=str(REPO),
        REDIS_URL=redis_url,
        API_PORT=str(port),
        DASHBOARD_PASSWORD=password,
        DATABASE_URL=f"sqlite:///{folder / 'ledger.sqlite3'}",
        SYMBOLS="BTCUSDT",
        LOG_LEVEL="WARNING",
        BUS_SIGNING_KEY=signing.new_key(),
    )  # the api refuses to start without the bus key
    if not limits:
        env.update(API_MAX_CONCURRENCY="1000000", SSE_MAX_CLIENTS="1000000")
    log = folder / f"api-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.api"], cwd=folder, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code in (200, 503):
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"the api did not start:\n{log.read_text(errors='replace')[-2000:]}")


async def hold_stream(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    try:
        async with client.stream("GET", "/api/events") as response:
            async for _ in response.aiter_bytes():
                if stop.is_set():
                    return
    except httpx.HTTPError:
        return


async def hammer(client: httpx.AsyncClient, until: float, statuses: Counter[str], latencies: list[float]) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            response = await client.get("/api/status")
        except httpx.TimeoutException:
            statuses["gave up (2 s)"] += 1
            continue
        except httpx.HTTPError:
            statuses["connection error"] += 1
            await asyncio.sleep(0.05)
            continue
        statuses[str(response.status_code)] += 1
        if response.status_code == 200:
            latencies.append(time.monotonic() - started)
        elif response.status_code == 503:
            await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 10)


async def run(url: str, password: str, seconds: float, connections: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as client:
        cookies = dict((await client.post("/api/login", json={"password": password})).cookies)
    stop = asyncio.Event()
    # One pool per kind of client: one connection per stream, one per hammering client.
    sse = httpx.AsyncClient(
        base_url=url, cookies=cookies, timeout=None, limits=httpx.Limits(max_connections=SSE_CLIENTS)
    )
    load = httpx.AsyncClient(
        base_url=url,
        cookies=cookies,
        timeout=2.0,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )
    streams = [asyncio.create_task(hold_stream(sse, stop)) for _ in range(SSE_CLIENTS)]
    await asyncio.sleep(1.0)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    until = time.monotonic() + seconds
    workers = [asyncio.create_task(hammer(load, until, statuses, latencies)) for _ in range(connections)]
    await asyncio.wait(workers, timeout=seconds + 5)
    for task in workers:
        task.cancel()
    stop.set()
    for task in streams:
        task.cancel()
    await asyncio.gather(*workers, *streams, return_exceptions=True)
    await load.aclose()
    await sse.aclose()
    ended = time.monotonic()
    recovered = None
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60) as probe:
        while time.monotonic() - ended < 60:
            try:
                if (await probe.get("/api/status")).status_code == 200:
                    recovered = time.monotonic() - ended
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    latencies.sort()
    return {
        "statuses": dict(statuses),
        "p50": statistics.median(latencies) * 1000 if latencies else None,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else None,
        "recovered": recovered,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=400)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(tmp)
        redis_server = start_redis(folder / "redis")
        password = secrets.token_urlsafe(16)
        try:
            for label, limits in (("limits raised out of reach (baseline)", False), ("default limits", True)):
                process, url = start_api(redis_server.url, folder, password, limits)
                try:
                    rows.append((label, asyncio.run(run(url, password, args.seconds, args.connections))))
                finally:
                    process.terminate()
                    process.wait(15)
        finally:
            redis_server.stop()
    print(
        f"\n{args.connections} clients on GET /api/status for {args.seconds:.0f} s, "
        f"{SSE_CLIENTS} SSE clients connected\n"
    )
    print("| api | answers during the burst | p50 ms (200s) | p99 ms (200s) | first 200 after the burst |")
    print("|---|---|---|---|---|")
    for label, row in rows:
        answers = ", ".join(f"{count} × {status}" for status, count in sorted(row["statuses"].items()))
        p50 = "—" if row["p50"] is None else f"{row['p50']:.0f}"
        p99 = "—" if row["p99"] is None else f"{row['p99']:.0f}"
        recovered = "not within 60 s" if row["recovered"] is None else f"{row['recovered'] * 1000:.0f} ms"
        print(f"| {label} | {answers} | {p50} | {p99} | {recovered} |")


if __name__ == "__main__":
    main()
