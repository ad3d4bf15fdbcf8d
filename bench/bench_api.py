"""Benchmark of the dashboard api under load (a script that prints a table; nothing is asserted).

A speed-60 replay runs through simulator -> market_data -> strategy -> executor -> api, 100
event-stream clients stay connected to ``/api/events`` and read everything, and each route is
requested at a steady 200 requests per second (open loop: a request is sent on schedule
whether or not the previous ones have answered, and its latency counts from its scheduled
time, so a stalled server shows up in p99). ``/api/session`` (one Redis EXISTS, no work) is the
baseline measured in the same run. Routes are measured in alternating rounds, so a drift of the
machine hits them alike.

    .venv/bin/python bench/bench_api.py [--seconds 20] [--rounds 3] [--rate 200] [--clients 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx

from tests.support.stack import Stack, prepare_data, start_stack

BUNDLED = REPO / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
ROUTES = [
    ("/api/session", "baseline: /api/session (one Redis EXISTS)"),
    ("/api/status", "/api/status"),
    ("/api/profit", "/api/profit"),
    ("/api/candles?limit=500", "/api/candles?limit=500"),
]
# Short EMAs make the strategy trade often, so the ledger grows during the run.
BUSY = {"EMA_SHORT_PERIOD": "3", "EMA_LONG_PERIOD": "8", "USE_EMA_FILTER": "false",
        "STOP_LOSS_PERCENTAGE": "0.002", "TAKE_PROFIT_PERCENTAGE": "0.004", "SIGNAL_MAX_LAG_CANDLES": "12"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def sse_client(url: str, cookies: httpx.Cookies, counts: list[int], index: int, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(cookies=cookies, timeout=httpx.Timeout(None)) as client:
        while not stop.is_set():
            try:
                async with client.stream("GET", f"{url}/api/events") as response:
                    async for line in response.aiter_lines():
                        if line.startswith("event:"):
                            counts[index] += 1
                        if stop.is_set():
                            return
            except httpx.HTTPError:
                await asyncio.sleep(0.5)


async def measure(client: httpx.AsyncClient, path: str, seconds: float, rate: float) -> tuple[list[float], int]:
    """Open-loop load: request i is due at start + i / rate; latency counts from that moment."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(due: float) -> None:
        nonlocal errors
        try:
            response = await client.get(path)
            if response.status_code != 200:
                errors += 1
                return
        except httpx.HTTPError:
            errors += 1
            return
        latencies.append((time.perf_counter() - due) * 1000)

    tasks = []
    for i in range(int(seconds * rate)):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies, errors


async def run(stack: Stack, seconds: float, rounds: int, rate: float, clients: int) -> None:
    url = stack.api_url
    async with httpx.AsyncClient(base_url=url, timeout=60) as login:
        response = await login.post("/api/login", json={"password": stack.password})
        response.raise_for_status()
        cookies = login.cookies
    stop = asyncio.Event()
    counts = [0] * clients
    readers = [asyncio.create_task(sse_client(url, cookies, counts, i, stop)) for i in range(clients)]
    await asyncio.sleep(3)
    results: dict[str, list[float]] = {path: [] for path, _ in ROUTES}
    errors: dict[str, int] = {path: 0 for path, _ in ROUTES}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=30, limits=limits) as client:
        for path, _ in ROUTES:  # warm every route (first candle load, first ledger read)
            (await client.get(path, timeout=120)).raise_for_status()
        for round_ in range(rounds):
            for path, _ in ROUTES:
                latencies, failed = await measure(client, path, seconds, rate)
                results[path] += latencies
                errors[path] += failed
                print(f"round {round_ + 1} {path}: p50 {percentile(latencies, 0.5):.2f} ms, "
                      f"p99 {percentile(latencies, 0.99):.2f} ms", file=sys.stderr)
    connected = sum(1 for c in counts if c > 0)
    events = sum(counts)
    stop.set()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    print(f"\n{clients} event-stream clients ({connected} received events, {events} events in total), "
          f"{rate:g} requests/s per route, {rounds} rounds of {seconds:g} s, speed-60 replay\n")
    print("| route | requests | errors | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for path, label in ROUTES:
        values = results[path]
        print(f"| {label} | {len(values)} | {errors[path]} | {statistics.median(values):.2f} | "
              f"{percentile(values, 0.99):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="seconds per route per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--clients", type=int, default=100, help="connected event-stream clients")
    args = parser.parse_args()
    rows = int(args.seconds * args.rounds * len(ROUTES) + 300)  # one candle a second at speed 60
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        path = Path(folder)
        data = [prepare_data(path, BUNDLED, "BTCUSDT", 0, 1000 + rows)]
        stack = start_stack(path / "stack", data=data, symbols=["BTCUSDT"], speed=60, history=1000, extra_env=BUSY)
        try:
            stack.start("api")
            stack.wait_http(f"{stack.api_url}/api/health", timeout=90)
            time.sleep(10)  # services connected, history back-filled
            asyncio.run(run(stack, args.seconds, args.rounds, args.rate, args.clients))
        finally:
            stack.stop_all()


if __name__ == "__main__":
    main()
