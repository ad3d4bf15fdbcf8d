"""Benchmarks of the trading pipeline (a script that prints tables; nothing is asserted).

1. Latency from a closed kline received by market_data to the order request sent by the
   executor (as received by the simulator), p50/p99, beside a raw Redis three-hop
   XADD -> XREADGROUP chain measured in the same run on the same redis-server.
2. CPU per symbol of market_data, strategy and executor with 100 symbols at Binance's cadence
   (speed 1: a miniTicker about every second, kline updates every step), beside 1 symbol.

    .venv/bin/python bench/bench_pipeline.py [--latency-seconds 60] [--cpu-seconds 60] [--symbols 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from redis.asyncio import Redis

from shared import streams
from shared.candles import shared_data_dir
from tests.support.stack import Stack, prepare_data, start_stack

SHARED = shared_data_dir()
BUNDLED = REPO / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
TICKS = os.sysconf("SC_CLK_TCK")
# Short EMAs and wide RSI bounds make the strategy trade often, so many latencies are sampled.
BUSY_STRATEGY = {
    "EMA_SHORT_PERIOD": "2",
    "EMA_LONG_PERIOD": "3",
    "USE_EMA_FILTER": "false",
    "RSI_OVERBOUGHT": "99",
    "RSI_OVERSOLD": "1",
    "STOP_LOSS_PERCENTAGE": "0.01",
    "TAKE_PROFIT_PERCENTAGE": "0.02",
    "SIGNAL_MAX_LAG_CANDLES": "3",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sim_state(stack: Stack) -> dict:
    with urllib.request.urlopen(f"{stack.sim_url}/_sim/state", timeout=10) as response:
        return json.loads(response.read())


def pipeline_latencies(folder: Path, seconds: float) -> tuple[list[float], Stack]:
    data = prepare_data(folder, BUNDLED, "BTCUSDT", 0, 5000)
    stack = start_stack(
        folder / "latency", data=[data], symbols=["BTCUSDT"], speed=240, history=100, extra_env=BUSY_STRATEGY
    )
    time.sleep(seconds)
    client = stack.client()
    entries: Any = client.xrange(streams.kline_stream("BTCUSDT"))
    received = {int(f["open_time_ms"]): int(f["ts_init_ms"]) for _, f in entries}
    latencies = []
    for order in sim_state(stack)["orders"]:
        client_id = order["clientOrderId"]
        if client_id.startswith("EB-"):
            candle = int(client_id.rsplit("-", 1)[1])
            if candle in received:
                latencies.append(order["time"] - received[candle])
    return latencies, stack


async def three_hop_chain(url: str, messages: int, rate_hz: float) -> list[float]:
    """XADD to a; a reader relays to b, another to c, a third reads c: the bus's bare minimum."""
    clients = [Redis.from_url(url, decode_responses=True) for _ in range(4)]
    names = ["bench:hop:a", "bench:hop:b", "bench:hop:c"]
    for name in names:
        await clients[0].delete(name)
        await clients[0].xgroup_create(name, "g", id="$", mkstream=True)
    latencies: list[float] = []
    done = asyncio.Event()

    async def relay(client: Redis, source: str, target: str | None) -> None:
        while not done.is_set():
            reply: Any = await client.xreadgroup("g", "c", {source: ">"}, count=100, block=200)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    await client.xack(source, "g", entry_id)
                    if target is not None:
                        await client.xadd(target, fields)
                    else:
                        latencies.append((time.perf_counter_ns() - int(fields["t"])) / 1e6)
                        if len(latencies) >= messages:
                            done.set()

    tasks = [
        asyncio.create_task(relay(clients[1], names[0], names[1])),
        asyncio.create_task(relay(clients[2], names[1], names[2])),
        asyncio.create_task(relay(clients[3], names[2], None)),
    ]
    for _ in range(messages):
        await clients[0].xadd(names[0], {"t": str(time.perf_counter_ns())})
        await asyncio.sleep(1 / rate_hz)
    await asyncio.wait_for(done.wait(), 30)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        await client.aclose()
    return latencies


def make_symbol_files(folder: Path, count: int) -> tuple[list[Path], list[str]]:
    sources = [SHARED / "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz", SHARED / "ETHUSDT_1m_2025-05-20_2025-08-18.csv.gz"]
    paths, symbols = [], []
    for index in range(count):
        source = sources[index % len(sources)]
        symbol = f"S{index:03d}USDT"
        with gzip.open(source, "rt") as handle:
            header = handle.readline()
            rows = [handle.readline() for _ in range(700)]
        target = folder / f"{symbol}_1m_bench.csv"
        target.write_text(header + "".join(rows))
        paths.append(target)
        symbols.append(symbol)
    return paths, symbols


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def cpu_run(folder: Path, symbols_count: int, seconds: float) -> dict[str, float]:
    paths, symbols = make_symbol_files(folder, symbols_count)
    stack = start_stack(
        folder / f"cpu{symbols_count}",
        data=paths,
        symbols=symbols,
        speed=1,
        history=60,
        extra_env={"WARMUP_CANDLES": "60"},
    )
    try:
        # Start-up, back-fill and the warm-up of every window are not the steady state.
        client = stack.client()

        def warmed_up() -> bool:
            for symbol in symbols:
                stream = streams.kline_stream(symbol)
                groups = client.xinfo_groups(stream) if client.exists(stream) else []
                if not groups or groups[0]["lag"] or groups[0]["pending"]:
                    return False
            return True

        stack.wait_for(warmed_up, 600, "every strategy window to warm up")
        time.sleep(5)
        pids = {
            name: stack.processes[name][0].process.pid
            for name in ("exchange_sim", "market_data", "strategy", "executor")
        }
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        time.sleep(seconds)
        return {name: (cpu_seconds(pid) - before[name]) / seconds * 100 for name, pid in pids.items()}
    finally:
        stack.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--cpu-seconds", type=float, default=60)
    parser.add_argument("--symbols", type=int, default=100)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; command: {' '.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        latencies, stack = pipeline_latencies(folder, args.latency_seconds)
        try:
            chain = asyncio.run(three_hop_chain(stack.redis_url, 1000, 200))
        finally:
            stack.stop_all()
        print("\nLatency, closed kline received by market_data -> order request received by the exchange (ms)")
        print(f"{'path':<58} {'samples':>7} {'p50':>8} {'p99':>8}")
        print(
            f"{'raw Redis: XADD -> XREADGROUP x3 (baseline)':<58} {len(chain):>7} "
            f"{percentile(chain, 0.5):>8.2f} {percentile(chain, 0.99):>8.2f}"
        )
        if latencies:
            print(
                f"{'market_data -> strategy -> executor -> exchange':<58} {len(latencies):>7} "
                f"{percentile(latencies, 0.5):>8.2f} {percentile(latencies, 0.99):>8.2f}"
            )
        else:
            print("market_data -> strategy -> executor: no order in the run (increase --latency-seconds)")
        print(f"(pipeline mean {statistics.mean(latencies):.2f} ms)" if latencies else "")

        rows = [
            (1, cpu_run(folder, 1, args.cpu_seconds)),
            (args.symbols, cpu_run(folder, args.symbols, args.cpu_seconds)),
        ]
        print(f"\nCPU at Binance's cadence (speed 1), % of one core, {args.cpu_seconds:g} s steady state")
        print(
            f"{'symbols':>7} {'exchange_sim':>13} {'market_data':>12} {'strategy':>9} {'executor':>9} "
            f"{'bot total':>10} {'bot per symbol':>15}"
        )
        for count, usage in rows:
            bot = usage["market_data"] + usage["strategy"] + usage["executor"]
            print(
                f"{count:>7} {usage['exchange_sim']:>13.1f} {usage['market_data']:>12.1f} {usage['strategy']:>9.1f} "
                f"{usage['executor']:>9.1f} {bot:>10.1f} {bot / count:>15.3f}"
            )


if __name__ == "__main__":
    main()
