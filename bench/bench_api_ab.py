"""The dashboard api of this tree against the api of another commit, in the same run (prints tables).

``bench_api.py`` measures one api; on a shared machine its figures move with everyone else's
load, so two runs minutes apart do not compare. Here both apis run at once on the same stack
(one redis-server, one speed-60 replay, one ledger), each with its own ``clients`` event-stream
readers connected the whole time, and the same request client drives them in alternating
rounds: for each round and route, one api then the other (the order swapped every round) at
``rate`` requests/s (open loop, latency from the scheduled send), then each api's capacity
(a few connections without pause) and its CPU per request. Both apis relay the same events to
the same number of readers all along, so the background work is the same for both.

    .venv/bin/python bench/bench_api_ab.py --baseline HEAD~1 [--seconds 8] [--rounds 3] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx

from bench import http_load
from bench.bench_api import (
    BUNDLED,
    BUSY,
    CAPACITY_CONNECTIONS,
    POOL_CONNECTIONS,
    ROUTES,
    client_core,
    cpu_pressure,
    load_average,
    machine,
    percentile,
)
from tests.support.ports import free_port
from tests.support.stack import prepare_data, start_stack


def readers_process(host: str, ports: list[int], cookie: str, clients: int, ready: Any, stop: Any, out: Any) -> None:
    http_load.pin(client_core())

    async def main() -> None:
        halt = asyncio.Event()
        counts = [0] * (clients * len(ports))
        tasks = [
            asyncio.create_task(http_load.event_reader(host, port, cookie, "/api/events", counts, i, halt))
            for i, port in enumerate(port for port in ports for _ in range(clients))
        ]
        ready.set()
        while not stop.is_set():  # noqa: ASYNC110 - a multiprocessing Event cannot be awaited: polled
            await asyncio.sleep(0.2)
        halt.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.put([sum(counts[i * clients : (i + 1) * clients]) for i in range(len(ports))])

    http_load.run(main())


def load_process(host: str, cookie: str, targets: list[tuple[str, int, int]], plan: dict[str, Any], out: Any) -> None:
    """Alternating rounds over ``targets`` (name, port, api pid); puts the per-target results."""
    http_load.pin(client_core())

    def sample(pid: int) -> tuple[float, float, float]:
        return time.perf_counter(), http_load.process_cpu_seconds(pid), http_load.process_wait_seconds(pid)

    async def main() -> None:
        pools = {name: http_load.Pool(host, port, cookie, POOL_CONNECTIONS) for name, port, _ in targets}
        for name, _, _ in targets:
            for path, _ in ROUTES:  # warm every route (first candle load, first ledger read)
                await http_load.fetch(pools[name], path)
        results: dict[str, Any] = {
            name: {path: {"latencies": [], "p99s": [], "errors": 0, "open": [], "capacity": []} for path, _ in ROUTES}
            for name, _, _ in targets
        }
        for round_ in range(plan["rounds"]):
            order = targets if round_ % 2 == 0 else list(reversed(targets))
            for path, _ in ROUTES:
                for name, port, pid in order:
                    row = results[name][path]
                    before = sample(pid)
                    latencies, errors = await http_load.open_loop(pools[name], path, plan["seconds"], plan["rate"])
                    after = sample(pid)
                    row["open"].append((after[1] - before[1], after[2] - before[2], after[0] - before[0]))
                    row["latencies"] += latencies
                    row["p99s"].append(percentile(latencies, 0.99))
                    row["errors"] += sum(errors.values())
                    before = sample(pid)
                    answered, _ = await http_load.closed_loop(
                        host, port, cookie, path, plan["capacity_seconds"], CAPACITY_CONNECTIONS
                    )
                    after = sample(pid)
                    row["capacity"].append((answered, after[1] - before[1], after[0] - before[0]))
                    print(
                        f"round {round_ + 1} {name} {path}: p50 {percentile(latencies, 0.5):.2f} ms, "
                        f"p99 {row['p99s'][-1]:.2f} ms, errors {sum(errors.values())}, "
                        f"capacity {answered / plan['capacity_seconds']:.0f}/s, load {load_average()}",
                        file=sys.stderr,
                        flush=True,
                    )
        for pool in pools.values():
            pool.close()
        out.put(results)

    http_load.run(main())


def summary(row: dict[str, Any], rate: float) -> dict[str, float]:
    requests = sum(open_[2] for open_ in row["open"]) * rate
    answered = sum(c[0] for c in row["capacity"])
    return {
        "p50": statistics.median(row["latencies"]) if row["latencies"] else float("nan"),
        "p99": percentile(row["latencies"], 0.99),
        "open_ms": sum(o[0] for o in row["open"]) * 1000 / max(requests, 1),
        "waiting": sum(o[1] for o in row["open"]) / sum(o[2] for o in row["open"]) * 100,
        "capacity": answered / sum(c[2] for c in row["capacity"]),
        "capacity_ms": sum(c[1] for c in row["capacity"]) * 1000 / max(answered, 1),
    }


def report(names: list[str], results: dict[str, Any], plan: dict[str, Any], loads: tuple[str, ...]) -> None:
    print(
        f"\nMachine: {machine()}; load average (1, 5, 15 min) {loads[0]} → {loads[1]}; CPU pressure "
        f"(last minute) {loads[2]} → {loads[3]}. {plan['rounds']} alternating rounds of {plan['seconds']:g} s "
        f"per route and api at {plan['rate']:g} requests/s, then {plan['capacity_seconds']:g} s of capacity "
        f"({CAPACITY_CONNECTIONS} connections); {plan['clients']} event-stream clients on each api "
        f"(events read: {', '.join(f'{n} {e}' for n, e in zip(names, plan['events'], strict=True))}).\n"
    )
    print(
        "| route | api | p50 ms | p99 ms | p99 by round ms | errors | api CPU ms/request at 200/s "
        "| api waiting | capacity/s | api CPU ms/request at capacity |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path, label in ROUTES:
        for name in names:
            row = results[name][path]
            s = summary(row, plan["rate"])
            rounds = ", ".join(f"{p:.1f}" for p in row["p99s"])
            print(
                f"| {label} | {name} | {s['p50']:.2f} | {s['p99']:.2f} | {rounds} | {row['errors']} | "
                f"{s['open_ms']:.2f} | {s['waiting']:.0f} % | {s['capacity']:.0f} | {s['capacity_ms']:.2f} |"
            )


def checkout(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` exported into ``folder`` (``git archive``: no worktree, no index touched)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD~1", help="the commit to compare with (git ref)")
    parser.add_argument("--seconds", type=float, default=8, help="seconds per route, api and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200, help="requests per second")
    parser.add_argument("--clients", type=int, default=100, help="event-stream clients per api")
    parser.add_argument("--capacity-seconds", type=float, default=3)
    args = parser.parse_args()
    total = (args.seconds + args.capacity_seconds) * args.rounds * len(ROUTES) * 2
    with tempfile.TemporaryDirectory(prefix="bench-api-ab-") as folder:
        path = Path(folder)
        baseline_root = checkout(args.baseline, path / "baseline")
        data = [prepare_data(path, BUNDLED, "BTCUSDT", 0, 1000 + int(total + 600))]
        stack = start_stack(path / "stack", data=data, symbols=["BTCUSDT"], speed=60, history=1000, extra_env=BUSY)
        try:
            ours = stack.start("api")
            base_port = free_port()
            base = stack.start("api", {"API_PORT": str(base_port)}, root=baseline_root)
            for port in (stack.api_port, base_port):
                stack.wait_http(f"http://127.0.0.1:{port}/api/health", timeout=120)
            time.sleep(10)  # services connected, history back-filled
            response = httpx.post(f"{stack.api_url}/api/login", json={"password": stack.password}, timeout=60)
            response.raise_for_status()
            cookie = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
            names = [f"baseline {args.baseline}", "this tree"]
            targets = [(names[0], base_port, base.process.pid), (names[1], stack.api_port, ours.process.pid)]
            context = multiprocessing.get_context("spawn")
            ready, stop, reader_out, load_out = context.Event(), context.Event(), context.Queue(), context.Queue()
            ports = [port for _, port, _ in targets]
            readers = context.Process(
                target=readers_process, args=("127.0.0.1", ports, cookie, args.clients, ready, stop, reader_out)
            )
            readers.start()
            ready.wait(60)
            time.sleep(3)
            plan = {"seconds": args.seconds, "rounds": args.rounds, "rate": args.rate}
            plan |= {"capacity_seconds": args.capacity_seconds, "clients": args.clients}
            started = load_average(), cpu_pressure()
            load = context.Process(target=load_process, args=("127.0.0.1", cookie, targets, plan, load_out))
            load.start()
            results = load_out.get(timeout=total * 4 + 600)
            load.join(30)
            ended = load_average(), cpu_pressure()
            stop.set()
            plan["events"] = reader_out.get(timeout=60)
            readers.join(30)
            report(names, results, plan, (started[0], ended[0], started[1], ended[1]))
        finally:
            stack.stop_all()


if __name__ == "__main__":
    main()
