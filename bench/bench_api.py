"""Benchmark of the dashboard api under load (a script that prints tables; nothing is asserted).

A speed-60 replay runs through simulator -> market_data -> strategy -> executor -> api, 100
event-stream clients stay connected to ``/api/events`` and read everything, and each route is
requested at a steady 200 requests per second (open loop: a request is sent on schedule
whether or not the previous ones have answered, and its latency counts from its scheduled
time, so a stalled server shows up in p99). ``/api/session`` (one Redis EXISTS, no work) is the
baseline measured in the same run. Routes are measured in alternating rounds, so a drift of the
machine hits them alike.

The client must cost less than the server, or the benchmark measures the client: the timed
requests and the event-stream readers run in two processes of their own (``http_load``: raw
asyncio streams on uvloop, no client library), both kept on the machine's last core so that at
least one core is left to the server, and each process' CPU seconds are printed beside the
api's. A second table gives each route's capacity: requests per second a few connections get
with no pause between requests (closed loop), with the same event-stream clients connected.

    .venv/bin/python bench/bench_api.py [--seconds 20] [--rounds 3] [--rate 200] [--clients 100]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx

from bench import http_load
from tests.support.stack import Stack, prepare_data, start_stack

BUNDLED = REPO / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
ROUTES = [
    ("/api/session", "baseline: /api/session (one Redis EXISTS)"),
    ("/api/status", "/api/status"),
    ("/api/profit", "/api/profit"),
    ("/api/candles?limit=500", "/api/candles?limit=500"),
]
# Short EMAs make the strategy trade often, so the ledger grows during the run.
BUSY = {
    "EMA_SHORT_PERIOD": "3",
    "EMA_LONG_PERIOD": "8",
    "USE_EMA_FILTER": "false",
    "STOP_LOSS_PERCENTAGE": "0.002",
    "TAKE_PROFIT_PERCENTAGE": "0.004",
    "SIGNAL_MAX_LAG_CANDLES": "12",
}
POOL_CONNECTIONS = 100  # as a browser fleet or a proxy would open at most
CAPACITY_CONNECTIONS = 4


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def client_core() -> int | None:
    """The core the client processes are kept on: the last one, when there are two or more."""
    count = os.cpu_count() or 1
    return count - 1 if count > 1 else None


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def cpu_pressure() -> str:
    """Share of the last minute in which some runnable task had no core (Linux PSI), or "?"."""
    try:
        with open("/proc/pressure/cpu") as handle:
            some = handle.readline().split()
        return next(part.split("=")[1] for part in some if part.startswith("avg60=")) + " %"
    except (OSError, StopIteration, IndexError):
        return "?"


# -- event-stream readers (their own process) ------------------------------------------------


def readers_process(host: str, port: int, cookie: str, clients: int, ready: Any, stop: Any, out: Any) -> None:
    http_load.pin(client_core())

    async def main() -> None:
        halt = asyncio.Event()
        counts = [0] * clients
        tasks = [
            asyncio.create_task(http_load.event_reader(host, port, cookie, "/api/events", counts, i, halt))
            for i in range(clients)
        ]
        ready.set()
        while not stop.is_set():  # noqa: ASYNC110 - a multiprocessing Event cannot be awaited: polled
            await asyncio.sleep(0.2)
        halt.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.put({"events": sum(counts), "connected": sum(1 for c in counts if c > 0)})

    http_load.run(main())


# -- timed requests (their own process) ------------------------------------------------------


def load_process(host: str, port: int, cookie: str, plan: dict[str, Any], pids: dict[str, int], out: Any) -> None:
    http_load.pin(client_core())

    def cpu() -> dict[str, float]:
        sample = {
            "client": http_load.cpu_seconds(),
            "client waiting": http_load.process_wait_seconds(os.getpid()),
            "wall": time.perf_counter(),
        }
        for name, pid in pids.items():
            try:
                sample[name] = http_load.process_cpu_seconds(pid)
                sample[f"{name} waiting"] = http_load.process_wait_seconds(pid)
            except OSError:
                sample[name] = sample[f"{name} waiting"] = float("nan")
        return sample

    def share(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        wall = after["wall"] - before["wall"]
        return {name: (after[name] - before[name]) / wall for name in before if name != "wall"}

    async def main() -> None:
        pool = http_load.Pool(host, port, cookie, POOL_CONNECTIONS)
        for path, _ in ROUTES:  # warm every route (first candle load, first ledger read)
            connection = await pool.acquire()
            await connection.get(path)
            await pool.release(connection)
        results: dict[str, Any] = {path: {"latencies": [], "errors": {}, "cpu": []} for path, _ in ROUTES}
        for round_ in range(plan["rounds"]):
            for path, _ in ROUTES:
                before = cpu()
                latencies, errors = await http_load.open_loop(pool, path, plan["seconds"], plan["rate"])
                results[path]["cpu"].append(share(before, cpu()))
                results[path]["latencies"] += latencies
                for kind, count in errors.items():
                    results[path]["errors"][kind] = results[path]["errors"].get(kind, 0) + count
                print(
                    f"round {round_ + 1} {path}: p50 {percentile(latencies, 0.5):.2f} ms, "
                    f"p99 {percentile(latencies, 0.99):.2f} ms, errors {sum(errors.values())}, "
                    f"load {load_average()}",
                    file=sys.stderr,
                    flush=True,
                )
        pool.close()
        capacity: dict[str, Any] = {}
        for path, _ in ROUTES:
            before = cpu()
            answered, latencies = await http_load.closed_loop(
                host, port, cookie, path, plan["capacity_seconds"], CAPACITY_CONNECTIONS
            )
            used = share(before, cpu())
            capacity[path] = {
                "rate": answered / plan["capacity_seconds"],
                "p50": percentile(latencies, 0.5),
                "api_ms": used["api"] * plan["capacity_seconds"] * 1000 / max(answered, 1),
                "cpu": used,
            }
        out.put({"results": results, "capacity": capacity})

    http_load.run(main())


def mean_share(samples: list[dict[str, float]], name: str) -> float:
    return statistics.fmean(sample[name] for sample in samples) * 100


def run(stack: Stack, seconds: float, rounds: int, rate: float, clients: int, capacity_seconds: float) -> None:
    url = stack.api_url
    host, port = "127.0.0.1", stack.api_port
    response = httpx.post(f"{url}/api/login", json={"password": stack.password}, timeout=60)
    response.raise_for_status()
    cookie = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
    context = multiprocessing.get_context("spawn")
    ready, stop, reader_out, load_out = context.Event(), context.Event(), context.Queue(), context.Queue()
    readers = context.Process(target=readers_process, args=(host, port, cookie, clients, ready, stop, reader_out))
    readers.start()
    ready.wait(60)
    time.sleep(3)
    pids = {"api": stack.processes["api"][0].process.pid, "redis": stack.redis.process.pid, "readers": readers.pid}
    plan = {"seconds": seconds, "rounds": rounds, "rate": rate, "capacity_seconds": capacity_seconds}
    started_load, started_pressure = load_average(), cpu_pressure()
    load = context.Process(target=load_process, args=(host, port, cookie, plan, pids, load_out))
    load.start()
    measured = load_out.get(timeout=seconds * rounds * len(ROUTES) * 4 + capacity_seconds * len(ROUTES) + 600)
    load.join(30)
    ended_load, ended_pressure = load_average(), cpu_pressure()
    stop.set()
    events = reader_out.get(timeout=60)
    readers.join(30)

    print(
        f"\nMachine: {machine()}; load average (1, 5, 15 min) {started_load} at the start, "
        f"{ended_load} at the end; CPU pressure (tasks waiting for a core, last minute) {started_pressure} "
        f"at the start, {ended_pressure} at the end."
    )
    print(
        f"{clients} event-stream clients ({events['connected']} received events, {events['events']} events in "
        f"total), {rate:g} requests/s per route, {rounds} rounds of {seconds:g} s, speed-60 replay. "
        f'Client processes kept on core {client_core()}; CPU in % of one core; "waiting": share of the time '
        f"the process was ready to run but had no core (the machine's other load).\n"
    )
    print(
        "| route | requests | errors | p50 ms | p99 ms | api CPU | api waiting | redis-server CPU | redis waiting "
        "| request client CPU | client waiting | stream readers CPU |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for path, label in ROUTES:
        row = measured["results"][path]
        values, errors, cpu = row["latencies"], row["errors"], row["cpu"]
        failed = sum(errors.values())
        detail = "" if not failed else " (" + ", ".join(f"{n} × {k}" for k, n in sorted(errors.items())) + ")"
        p50 = f"{statistics.median(values):.2f}" if values else "—"
        print(
            f"| {label} | {len(values) + failed} | {failed}{detail} | {p50} | {percentile(values, 0.99):.2f} | "
            f"{mean_share(cpu, 'api'):.0f} % | {mean_share(cpu, 'api waiting'):.0f} % | "
            f"{mean_share(cpu, 'redis'):.0f} % | "
            f"{mean_share(cpu, 'redis waiting'):.0f} % | {mean_share(cpu, 'client'):.0f} % | "
            f"{mean_share(cpu, 'client waiting'):.0f} % | {mean_share(cpu, 'readers'):.0f} % |"
        )
    print(
        f"\nCapacity: {CAPACITY_CONNECTIONS} connections requesting without pause for {capacity_seconds:g} s each, "
        f"the same {clients} event-stream clients connected.\n"
    )
    print("| route | requests/s | p50 ms | api CPU | api waiting | api CPU ms per request | request client CPU |")
    print("|---|---|---|---|---|---|---|")
    for path, label in ROUTES:
        row = measured["capacity"][path]
        print(
            f"| {label} | {row['rate']:.0f} | {row['p50']:.2f} | {row['cpu']['api'] * 100:.0f} % | "
            f"{row['cpu']['api waiting'] * 100:.0f} % | {row['api_ms']:.2f} | {row['cpu']['client'] * 100:.0f} % |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="seconds per route per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--clients", type=int, default=100, help="connected event-stream clients")
    parser.add_argument("--capacity-seconds", type=float, default=5, help="seconds per route of the capacity table")
    args = parser.parse_args()
    total = args.seconds * args.rounds * len(ROUTES) + args.capacity_seconds * len(ROUTES)
    rows = int(total + 600)  # one candle a second at speed 60, with room for a slow start
    with tempfile.TemporaryDirectory(prefix="bench-api-") as folder:
        path = Path(folder)
        data = [prepare_data(path, BUNDLED, "BTCUSDT", 0, 1000 + rows)]
        stack = start_stack(path / "stack", data=data, symbols=["BTCUSDT"], speed=60, history=1000, extra_env=BUSY)
        try:
            stack.start("api")
            stack.wait_http(f"{stack.api_url}/api/health", timeout=90)
            time.sleep(10)  # services connected, history back-filled
            run(stack, args.seconds, args.rounds, args.rate, args.clients, args.capacity_seconds)
        finally:
            stack.stop_all()


if __name__ == "__main__":
    main()
