"""Strategy service cost per closed candle: incremental indicators against the full recompute
they replaced, and one transaction per round against one per candle, at 1, 100 and 500 symbols,
in the same run.

Usage: ``python bench/bench_strategy.py [--closes N] [--strategy NAME]``.

A real redis-server is started on a free port. For ``S`` symbols whose windows are already full
(1,000 candles of BTCUSDT 1m, the same series under every symbol name), each round is one candle
close: the next closed kline of every symbol is decided one symbol after the other, as the
strategy service does when a close arrives for all of them at once, with the service's own
pieces (the candle window, ``IndicatorTrack``, the strategy's rules, the ``Decision`` record and
``publish_atomically`` into Redis); a benchmark may not import a service, so the few lines of
``StrategyService.handle`` that glue them are repeated here. After one untimed close, measured
per round:

* CPU per closed candle: process time of the round / S;
* kline -> decision latency: wall time from the start of the round until each symbol's decision
  (and signal, if any) is published in Redis (the last symbol of a round waits for all before
  it); p50 and max.

``recompute`` is the first path: the window as a DataFrame, pandas-ta over all its candles, the
last two rows, the rules, the market clock read, and each candle's decision published in its own
transaction. ``incremental`` is the same with the incremental indicators.
``round`` is the current one (``services/strategy/outbox.py``): incremental indicators and the
round's decisions published in one transaction at its end (a signal at once, with what was
queued before it), so a symbol without a signal waits for the whole round. Here a round holds
every symbol's close, the case of a strategy that fell behind at a minute close; live rounds
are often smaller. At 500 symbols (the whole market) only the
two incremental paths run. Nothing is asserted; the table is printed and saved to
``bench/results/bench_strategy.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np
import pandas as pd
from redis.asyncio import Redis

from bench.bench_backtest import machine
from shared import streams
from shared.bus import publish_atomically
from shared.candles import load_candles
from shared.events import Condition, Decision, Signal, make_event
from shared.strategy_loader import load_registry
from shared.trading.rules import Evaluation
from shared.trading.strategies import Row, Strategy
from shared.trading.strategies.track import IndicatorTrack
from shared.trading.vocabulary import Side
from tests.support.redis_server import start_redis

DATA = REPO / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
WINDOW = 1000
MODES = ("recompute", "incremental", "round")
SYMBOL_COUNTS = (1, 100, 500)
MINUTE = 60_000
COLUMNS = ("open", "high", "low", "close", "volume")


def finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def recompute_pair(strategy: Strategy, params: object, window: deque) -> tuple[Row, Row]:
    """The former evaluation: the strategy's vectorised indicators over the whole window."""
    frame = pd.DataFrame(np.array(window, dtype=np.float64), columns=["open_time", *COLUMNS])
    frame["open_time"] = frame["open_time"].astype(np.int64)
    columns = strategy.compute(frame, params)
    rows = [
        Row(
            int(frame["open_time"].iloc[p]),
            *(float(frame[c].iloc[p]) for c in COLUMNS),  # type: ignore[misc, arg-type]  # mypy cannot count a starred generator against the fields
            values={name: float(columns[name].iloc[p]) for name in columns.columns},
        )
        for p in (-2, -1)
    ]
    return rows[0], rows[1]


def outcome(strategy: Strategy, symbol: str, row: Row, evaluation: Evaluation) -> list[Any]:
    """The decision record and signal events, built as ``StrategyService._outcome`` builds them."""
    close, close_time = Decimal(repr(row.close)), row.open_time + MINUTE - 1
    values = {name: finite(value) for name, value in row.values.items()}
    record = Decision(
        symbol=symbol,
        interval="1m",
        candle_open_time_ms=row.open_time,
        close=close,
        warm=evaluation.warm,
        entry=evaluation.entry,
        exit=evaluation.exit,
        conditions=[
            Condition(name=c.name, passed=c.passed, value=finite(c.value), threshold=finite(c.threshold))
            for c in evaluation.conditions
        ],
        indicators={**values, "missing": list(evaluation.missing), "history": False},
        parameters_version=0,
    )
    items = [
        (streams.DECISIONS, make_event(record, "strategy", close_time, event_id=f"decision-{symbol}-{row.open_time}-0"))
    ]
    side = Side.BUY if evaluation.entry else Side.SELL if evaluation.exit else None
    if side is not None:
        signal = Signal(
            symbol=symbol,
            side=side,
            reason=strategy.entry_reason if side is Side.BUY else strategy.exit_reason,
            price=close,
            interval="1m",
            candle_open_time_ms=row.open_time,
            indicators=values,
            parameters_version=0,
        )
        event = make_event(signal, "strategy", close_time, event_id=f"signal-{symbol}-1m-{row.open_time}-{side}")
        items += [(streams.SIGNALS, event), (streams.executor_inbox(symbol), event)]
    return items


async def measure(url: str, mode: str, symbols: int, closes: int, strategy: Strategy) -> dict[str, float]:
    redis = Redis.from_url(url, decode_responses=True)
    await redis.flushall()
    params = strategy.parameters()
    specs = strategy.indicators(params)
    names = [f"SYM{i:03d}USDT" for i in range(symbols)]
    frame = load_candles(DATA).iloc[: WINDOW + closes].reset_index(drop=True)
    candles = [
        (int(r.open_time), float(r.open), float(r.high), float(r.low), float(r.close), float(r.volume))
        for r in frame.itertuples()
    ]
    await redis.hset(streams.MARKET_CLOCK, mapping=dict.fromkeys(names, str(candles[-1][0] + 60_000)))
    windows = {name: deque(candles[: WINDOW - 1], maxlen=WINDOW) for name in names}
    tracks = {name: IndicatorTrack.over(windows[name], specs, WINDOW) for name in names}
    cpu, latencies = [], []
    for index in range(WINDOW - 1, WINDOW + closes):  # the first close untimed: code paths loaded
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        round_latencies: list[float] = []
        queued: list[Any] = []
        waiting = 0  # symbols whose decisions are queued
        for name in names:
            windows[name].append(candles[index])
            if mode == "recompute":
                previous, current = recompute_pair(strategy, params, windows[name])
            else:
                tracks[name].add(*candles[index])
                previous, current = tracks[name].pair(candles[index][0])  # type: ignore[misc]
            # Read as the service reads it, whether the candle is recent (for each candle).
            assert await redis.hget(streams.MARKET_CLOCK, name) is not None
            items = outcome(strategy, name, current, strategy.evaluate(previous, current, params))
            if mode == "round":
                queued += items
                waiting += 1
                if not any(stream == streams.SIGNALS for stream, _ in items):
                    continue  # a signal leaves at once, with what was queued before it
                await publish_atomically(redis, queued)
                round_latencies += [time.perf_counter() - wall_start] * waiting
                queued, waiting = [], 0
                continue
            await publish_atomically(redis, items)
            round_latencies.append(time.perf_counter() - wall_start)
        if mode == "round" and queued:
            await publish_atomically(redis, queued)
            round_latencies += [time.perf_counter() - wall_start] * waiting
        if index >= WINDOW:
            latencies += round_latencies
            cpu.append((time.process_time() - cpu_start) / symbols)
    await redis.aclose()
    return {
        "cpu_per_candle_ms": statistics.median(cpu) * 1e3,
        "latency_p50_ms": statistics.median(latencies) * 1e3,
        "latency_max_ms": max(latencies) * 1e3,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--closes", type=int, default=40, help="candle closes per configuration")
    parser.add_argument("--strategy", default="ema_cross_rsi")
    args = parser.parse_args()
    strategy = load_registry().get(args.strategy)
    with tempfile.TemporaryDirectory() as folder:
        server = start_redis(Path(folder))
        try:
            rows = []
            for symbols in SYMBOL_COUNTS:
                closes = args.closes * 5 if symbols == 1 else args.closes if symbols <= 100 else args.closes // 2
                modes = MODES if symbols <= 100 else MODES[1:]
                # One after the other in one run, so drifts in the machine's speed hit all alike.
                results = {mode: await measure(server.url, mode, symbols, closes, strategy) for mode in modes}
                for mode, figures in results.items():
                    rows.append({"symbols": symbols, "mode": mode, "closes": closes, **figures})
        finally:
            server.stop()
    print(f"machine: {machine()}")
    print(f"strategy {args.strategy}, window {WINDOW} candles")
    print(f"{'symbols':>7}  {'mode':<12} {'CPU/candle ms':>13} {'latency p50 ms':>14} {'latency max ms':>14}")
    for row in rows:
        print(
            f"{row['symbols']:>7}  {row['mode']:<12} {row['cpu_per_candle_ms']:>13.3f} {row['latency_p50_ms']:>14.2f} "
            f"{row['latency_max_ms']:>14.2f}"
        )
    for symbols in SYMBOL_COUNTS:
        found = {r["mode"]: r for r in rows if r["symbols"] == symbols}
        for old_mode, new_mode in (("recompute", "incremental"), ("incremental", "round")):
            if old_mode in found:
                old, new = found[old_mode], found[new_mode]
                print(
                    f"{symbols} symbol(s), {new_mode} against {old_mode}: CPU per candle "
                    f"x{old['cpu_per_candle_ms'] / new['cpu_per_candle_ms']:.1f} less, "
                    f"max latency x{old['latency_max_ms'] / new['latency_max_ms']:.1f} less"
                )
    out = REPO / "bench" / "results" / "bench_strategy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "strategy": args.strategy, "rows": rows}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
