"""Benchmarks of the trading pipeline at market scale (a script that prints tables; nothing is asserted).

    .venv/bin/python bench/bench_pipeline.py [--symbols 1,100,500] [--cpu-seconds 60] \
        [--latency-seconds 60] [--warmup-timeout 900] [--json FILE] [--baseline-checkout /work/main]

One run measures, on the same machine and redis-server build:

* ``baseline``: a bare Redis three-hop chain (XADD -> XREADGROUP -> XADD ... three times), the
  bus's minimum for market_data -> strategy -> executor, p50/p99 in ms;
* ``compute``: the strategy's own work per closed candle in this process (the incremental
  indicators of the default strategy over a full window, then its rules), p99 in ms;
* ``cpu``: per symbol count, the whole bot as real processes against the simulator at Binance's
  cadence (speed 1: a mini ticker about every second, a kline update every 2 s per symbol; the
  symbols are ``EXCHANGE_SIM_SCALE_SYMBOLS`` re-based copies of the BTCUSDT and ETHUSDT files):
  ``warmup_s`` from the start of the processes until every symbol has its 60 back-filled candles
  and every consumer group's real backlog (``shared.backlog``) is zero (``-``: not within
  ``--warmup-timeout``), then CPU % of one core and RSS per process over the steady state,
  Redis' ``used_memory`` at its end (``redis_used_mb``), then ``restart_s``: strategy and
  executor SIGKILLed and started again (their imports done before the kill, as
  ``Stack.restart`` does) until the fresh processes hold every symbol's lease and every
  consumer group's real backlog is zero again;
* with ``--baseline-checkout``, each ``cpu`` row also for the services of that checkout (only
  read: e.g. main's, started just before this one's, the row's ``run`` being the folder's name);
* ``latency``: closed kline received by market_data -> order request received by the exchange,
  p50/p99: at 1 symbol from a fast replay (speed 240, so that many orders are sampled), at the
  other symbol counts from the orders of the steady state above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from redis import Redis as SyncRedis
from redis.asyncio import Redis

from bench.bench_backtest import machine
from shared import streams
from shared.backlog import backlogs
from shared.bus import entry_time_ms
from shared.candles import shared_data_dir
from shared.codec import decode
from shared.events import Signal
from shared.strategy_loader import load_registry
from shared.trading.strategies.track import IndicatorTrack
from shared.trading.vocabulary import Side
from tests.support.redis_server import start_redis
from tests.support.stack import Stack, prepare_data, start_stack

SHARED = shared_data_dir()
BUNDLED = REPO / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
SOURCES = ("BTCUSDT", "ETHUSDT")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
PROCESSES = ("market_data", "strategy", "executor")
WARMUP_CANDLES = 60
ORDER_GRACE_S = 20  # after the steady state, for the orders of its last closes
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


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sim_state(stack: Stack) -> dict:
    with urllib.request.urlopen(f"{stack.sim_url}/_sim/state", timeout=30) as response:
        return json.loads(response.read())


def order_latencies(
    stack: Stack, symbols: list[str], since_ms: int = 0, until_ms: int | None = None
) -> list[tuple[float, float | None]]:
    """kline received by market_data (its ts_init, wall clock) -> entry order received by the
    simulator (its wall-clock receipt; the order's own ``time`` is the replay's market time), for
    the klines received between ``since_ms`` and ``until_ms``; beside each, the part until the
    strategy published the BUY signal (its entry's time on the signal stream; None when trimmed)."""
    client = stack.client()
    received: dict[tuple[str, int], int] = {}
    for symbol in symbols:
        entries: Any = client.xrange(streams.kline_stream(symbol))
        for _, fields in entries:
            received[(symbol, int(fields["open_time_ms"]))] = int(fields["ts_init_ms"])
    published: dict[tuple[str, int], int] = {}
    signals: Any = client.xrange(streams.SIGNALS)
    for entry_id, fields in signals:
        signal = decode(fields).payload
        if isinstance(signal, Signal) and signal.side == Side.BUY:
            published[(signal.symbol, signal.candle_open_time_ms)] = entry_time_ms(entry_id)
    latencies: list[tuple[float, float | None]] = []
    # (a simulator older than its wall-clock receipts gives no sample)
    for client_id, wall in sim_state(stack).get("received_wall_ms", {}).items():
        if client_id.startswith("EB-"):
            symbol, open_ms = client_id[3:].rsplit("-", 1)
            kline = received.get((symbol, int(open_ms)))
            if kline is not None and since_ms <= kline <= (until_ms or kline):
                signal_ms = published.get((symbol, int(open_ms)))
                latencies.append((wall - kline, None if signal_ms is None else signal_ms - kline))
    return latencies


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


def compute_times(closes: int = 2000, window: int = 1000) -> list[float]:
    """Wall ms of the default strategy's work per closed candle: indicators, then its rules."""
    from shared.candles import load_candles

    strategy = load_registry().get("ema_cross_rsi")
    params = strategy.parameters()
    frame = load_candles(BUNDLED).iloc[: window + closes]
    candles = [
        (int(r.open_time), float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume))
        for r in frame.itertuples()
    ]
    track = IndicatorTrack.over(candles[: window - 1], strategy.indicators(params), window)
    times = []
    for candle in candles[window - 1 :]:
        start = time.perf_counter()
        track.add(*candle)
        previous, current = track.pair(candle[0])  # type: ignore[misc]
        strategy.evaluate(previous, current, params)
        times.append((time.perf_counter() - start) * 1e3)
    return times[1:]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB / 1024


def consumed(symbols: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for symbol in symbols:
        pairs += [
            (streams.kline_stream(symbol), streams.GROUP_STRATEGY),
            (streams.ticker_stream(symbol), streams.GROUP_EXECUTOR),
        ]
    return pairs


async def real_backlog(url: str, symbols: list[str]) -> tuple[int, int, int, int]:
    """(groups found, entries behind, entries pending, symbols with their warm-up candles) over
    the kline and ticker groups."""
    redis = Redis.from_url(url, decode_responses=True)
    try:
        found = []
        pairs = consumed(symbols)
        for start in range(0, len(pairs), 200):
            found += await backlogs(redis, pairs[start : start + 200])
        async with redis.pipeline(transaction=False) as pipe:
            for symbol in symbols:
                pipe.xlen(streams.kline_stream(symbol))
            lengths = await pipe.execute()
    finally:
        await redis.aclose()
    filled = sum(1 for length in lengths if length >= WARMUP_CANDLES)
    return len(found), sum(b.entries for b in found), sum(b.pending for b in found), filled


def leases_held(url: str, symbols: list[str], owners: dict[str, str]) -> bool:
    """Whether ``owners`` (service -> instance) hold the lease of every symbol."""
    redis = SyncRedis.from_url(url, decode_responses=True)
    try:
        for service, instance in owners.items():
            values = redis.mget([streams.lease_key(service, symbol) for symbol in symbols])
            if any(value != instance for value in values):
                return False
        return True
    finally:
        redis.close()


def source_files(folder: Path) -> list[Path]:
    """The first 3,000 candles of each source: a quick start, two days of replay at speed 1."""
    return [
        prepare_data(folder, SHARED / f"{symbol}_1m_2025-05-20_2025-08-18.csv.gz", symbol, 0, 3000)
        for symbol in SOURCES
    ]


def served_symbols(stack: Stack) -> list[str]:
    """The simulator's symbols (its re-based names), from exchangeInfo."""
    with urllib.request.urlopen(f"{stack.sim_url}/api/v3/exchangeInfo", timeout=30) as response:
        return [entry["symbol"] for entry in json.loads(response.read())["symbols"]]


def cpu_run(
    folder: Path,
    count: int,
    seconds: float,
    warmup_timeout: float,
    weight_limit: int,
    run: str = "this",
    root: Path = REPO,
) -> dict[str, Any]:
    started = time.monotonic()
    stack = start_stack(
        folder / f"cpu{count}-{run}",
        root=root,
        data=source_files(folder),
        symbols=[],
        services=(),
        speed=1,
        history=60,
        extra_env={
            **BUSY_STRATEGY,
            "WARMUP_CANDLES": str(WARMUP_CANDLES),
            "EXCHANGE_SIM_SCALE_SYMBOLS": str(count),
            "EXCHANGE_SIM_BALANCES": "USDT=100000000",
            "EXCHANGE_SIM_WEIGHT_LIMIT": str(weight_limit),
            # A baseline checkout is only read: no bytecode is written into it.
            **({"PYTHONDONTWRITEBYTECODE": "1"} if root != REPO else {}),
        },
    )
    row: dict[str, Any] = {"run": run, "symbols": count}
    try:
        symbols = served_symbols(stack)
        for name in PROCESSES:
            stack.start(name, {"SYMBOLS": ",".join(symbols)})

        def warmed_up() -> bool:
            groups, behind, pending, filled = asyncio.run(real_backlog(stack.redis_url, symbols))
            return groups == 2 * count and behind == 0 and pending == 0 and filled == count

        # The first moment all is caught up counts: a check after it may meet the next candle's entries.
        deadline = started + warmup_timeout
        warm = False
        while not warm and time.monotonic() <= deadline:
            warm = warmed_up()
            if not warm:
                time.sleep(1)
        row["warmup_s"] = round(time.monotonic() - started, 1) if warm else None
        print(f"{run} {count} symbols: warm-up {row['warmup_s']} s", file=sys.stderr, flush=True)
        pids = {name: stack.processes[name][0].process.pid for name in ("exchange_sim", *PROCESSES)}
        pids["redis"] = stack.redis.process.pid
        before = {name: proc_cpu_s(pid) for name, pid in pids.items()}
        since_ms = int(time.time() * 1000)
        time.sleep(seconds)
        for name, pid in pids.items():
            row[f"{name}_pct"] = round((proc_cpu_s(pid) - before[name]) / seconds * 100, 1)
            row[f"{name}_rss_mb"] = round(proc_rss_mb(pid), 1)
        row["bot_total_pct"] = round(sum(row[f"{name}_pct"] for name in PROCESSES), 1)
        row["bot_rss_mb"] = round(sum(row[f"{name}_rss_mb"] for name in PROCESSES), 1)
        _, behind, pending, _ = asyncio.run(real_backlog(stack.redis_url, symbols))
        row["backlog_after"], row["pending_after"] = behind, pending
        row["redis_used_mb"] = round(int(stack.client().info("memory")["used_memory"]) / 2**20, 1)
        # The orders of the window's last closes may still be on their way: wait for them.
        until_ms = int(time.time() * 1000)
        time.sleep(ORDER_GRACE_S)
        row["latencies"] = order_latencies(stack, symbols, since_ms, until_ms)
        row["restart_s"] = restart_time(stack, symbols, warmup_timeout) if warm else None
        print(f"{run} {count} symbols: restart {row['restart_s']} s", file=sys.stderr, flush=True)
        row["load_average"] = round(os.getloadavg()[0], 1)
        return row
    finally:
        stack.stop_all()


def restart_time(stack: Stack, symbols: list[str], timeout: float) -> float | None:
    """Seconds from SIGKILLing strategy and executor (fresh processes waiting, imports done) until
    the fresh ones hold every lease and every group's real backlog is zero again."""
    every = {"SYMBOLS": ",".join(symbols)}
    fresh = {
        name: stack.start(name, every, held=stack.folder / f"{name}-held-restart") for name in ("strategy", "executor")
    }
    for name in fresh:
        held = stack.folder / f"{name}-held-restart"
        stack.wait_for(lambda held=held: held.exists(), 180, f"a fresh {name} to import its modules")
    for name in fresh:
        stack.kill(name, 0)
    started = time.monotonic()
    for process in fresh.values():
        assert process.process.stdin is not None
        process.process.stdin.write(b"run\n")
        process.process.stdin.close()
    owners = {name: process.instance for name, process in fresh.items()}
    while time.monotonic() - started < timeout:
        if leases_held(stack.redis_url, symbols, owners):
            groups, behind, pending, _ = asyncio.run(real_backlog(stack.redis_url, symbols))
            if groups == 2 * len(symbols) and behind == 0 and pending == 0:
                return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def fast_latencies(folder: Path, seconds: float) -> list[tuple[float, float | None]]:
    data = prepare_data(folder, BUNDLED, "BTCUSDT", 0, 5000)
    stack = start_stack(
        folder / "latency", data=[data], symbols=["BTCUSDT"], speed=240, history=100, extra_env=BUSY_STRATEGY
    )
    try:
        time.sleep(seconds)
        return order_latencies(stack, ["BTCUSDT"])
    finally:
        stack.stop_all()


def latency_row(label: str, samples: list[tuple[float, float | None]], baseline: dict[str, Any]) -> dict[str, Any]:
    """One latency line: the whole kline -> order, and its part until the signal was published."""
    totals = [total for total, _ in samples]
    to_signal = [part for _, part in samples if part is not None]
    return {
        "symbols": label,
        "samples": len(samples),
        "pipeline_p50_ms": ms(percentile(totals, 0.5)),
        "pipeline_p99_ms": ms(percentile(totals, 0.99)),
        "pipeline_max_ms": ms(max(totals)) if totals else None,
        "signal_p50_ms": ms(percentile(to_signal, 0.5)),
        "signal_p99_ms": ms(percentile(to_signal, 0.99)),
        **baseline,
    }


def ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def show(value: object, width: int) -> str:
    text = "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)
    return text.rjust(width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", default="1,100,500", help="comma-separated symbol counts")
    parser.add_argument("--cpu-seconds", type=float, default=60)
    parser.add_argument("--latency-seconds", type=float, default=60)
    parser.add_argument("--warmup-timeout", type=float, default=900)
    parser.add_argument("--json", type=Path, help="also write the tables here")
    parser.add_argument(
        "--sim-weight-limit",
        type=int,
        default=6000,
        help="the simulator's request weight per minute (Binance's 6,000 by default; raise it to measure "
        "the steady state of a bot whose start-up exceeds it)",
    )
    parser.add_argument(
        "--baseline-checkout",
        type=Path,
        help="also run each symbol count with the services of this checkout (read only; e.g. main's), "
        "just before this one's, as the baseline row",
    )
    args = parser.parse_args()
    counts = [int(part) for part in args.symbols.split(",") if part.strip()]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; command: {' '.join(sys.argv)}")
    print(f"simulator request weight limit: {args.sim_weight_limit}/min")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = start_redis(folder / "baseline")
        try:
            chain = asyncio.run(three_hop_chain(server.url, 1000, 200))
        finally:
            server.stop()
        compute = compute_times()
        baseline = {
            "baseline_p50_ms": ms(percentile(chain, 0.5)),
            "baseline_p99_ms": ms(percentile(chain, 0.99)),
            "compute_p99_ms": ms(percentile(compute, 0.99)),
        }
        runs = [("this", REPO)]
        if args.baseline_checkout is not None:
            runs.insert(0, (args.baseline_checkout.resolve().name, args.baseline_checkout.resolve()))
        cpu_rows = [
            cpu_run(folder, count, args.cpu_seconds, args.warmup_timeout, args.sim_weight_limit, run, root)
            for count in counts
            for run, root in runs
        ]
        latency_rows = []
        if 1 in counts:
            samples = fast_latencies(folder, args.latency_seconds)
            latency_rows.append(("1 (speed 240)", samples))
        latency_rows += [(f"{r['run']} {r['symbols']} (speed 1)", r.pop("latencies")) for r in cpu_rows]
    latency = [latency_row(label, samples, baseline) for label, samples in latency_rows]
    print(f"\ncpu: % of one core over {args.cpu_seconds:g} s steady state at Binance's cadence; RSS in MB")
    columns = [
        "run",
        "symbols",
        "warmup_s",
        "restart_s",
        "bot_total_pct",
        *(f"{n}_pct" for n in PROCESSES),
        "redis_pct",
    ]
    columns += ["exchange_sim_pct", "bot_rss_mb", *(f"{n}_rss_mb" for n in PROCESSES), "redis_rss_mb"]
    columns += ["redis_used_mb", "backlog_after", "pending_after", "load_average"]
    print(" ".join(c.rjust(max(9, len(c))) for c in columns))
    for row in cpu_rows:
        print(" ".join(show(row.get(c), max(9, len(c))) for c in columns))
    print("\nlatency: closed kline received by market_data -> order request received by the exchange (ms)")
    columns = ["symbols", "samples", "pipeline_p50_ms", "pipeline_p99_ms", "pipeline_max_ms"]
    columns += ["signal_p50_ms", "signal_p99_ms", "baseline_p50_ms", "baseline_p99_ms", "compute_p99_ms"]
    print(" ".join(c.rjust(max(14, len(c))) for c in columns))
    for line in latency:
        print(" ".join(show(line.get(c), max(14, len(c))) for c in columns))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "cpu": cpu_rows, "latency": latency}, indent=2))


if __name__ == "__main__":
    main()
