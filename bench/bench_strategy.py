"""Strategy service cost per closed candle: incremental indicators against the full recompute
they replaced, at 1 and 100 symbols, in the same run.

Usage: ``python bench/bench_strategy.py [--closes N] [--strategy NAME]``.

A real redis-server is started on a free port; a ``StrategyService`` owns ``S`` symbols whose
windows are already full (1,000 candles of BTCUSDT 1m, the same series under every symbol name),
after one untimed close.
Each round is one candle close: the next closed kline of every symbol is handed to
``StrategyService.handle`` one symbol after the other, as the consumer does when a close arrives
for all of them at once. Measured per round:

* CPU per closed candle: process time of the round / S (decision, event encoding, publication);
* kline -> signal latency: wall time from the start of the round until each symbol's decision and
  signal are published in Redis (the last symbol of a round waits for all before it); p50 and max.

``recompute`` is the former path: the window as a DataFrame, pandas-ta over all its candles,
the last two rows, the rules. ``incremental`` is the current one (``IndicatorTrack``). Both use
the same service code otherwise. Nothing is asserted; the table is printed and saved to
``bench/results/bench_strategy.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from redis.asyncio import Redis

from bench.bench_backtest import machine
from services.strategy.config import StrategySettings
from services.strategy.service import StrategyService
from services.strategy.window import CandleWindow, IndicatorTrack
from shared import streams
from shared.candles import load_candles
from shared.events import Kline, make_event
from shared.trading.strategies import Row
from tests.support.redis_server import start_redis

DATA = REPO / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"
WINDOW = 1000
MINUTE = 60_000


class _Recompute:
    """The former evaluation: the strategy's vectorised indicators over the whole window, per candle."""

    def __init__(self, service: StrategyService, window: CandleWindow) -> None:
        self.service, self.window = service, window

    def pair(self, open_time: int) -> tuple[Row, Row] | None:
        frame = self.window.frame()
        columns = self.service.strategy.compute(frame, self.service.strategy_parameters)
        rows = []
        for position in (-2, -1):
            candle = frame.iloc[position]
            rows.append(Row(int(candle["open_time"]), *(float(candle[c]) for c in ("open", "high", "low", "close", "volume")),
                            values={name: float(columns[name].iloc[position]) for name in columns.columns}))
        return (rows[0], rows[1]) if rows[1].open_time == open_time else None


class RecomputeService(StrategyService):
    def _track(self, symbol: str, window: CandleWindow):  # type: ignore[no-untyped-def, override]
        return _Recompute(self, window)


def klines(symbol: str, frame) -> list[Kline]:  # type: ignore[no-untyped-def]
    return [Kline(symbol=symbol, interval="1m", open_time_ms=int(r.open_time), close_time_ms=int(r.open_time) + MINUTE - 1,
                  open=Decimal(repr(r.open)), high=Decimal(repr(r.high)), low=Decimal(repr(r.low)),
                  close=Decimal(repr(r.close)), volume=Decimal(repr(r.volume)), closed=True)
            for r in frame.itertuples()]


async def measure(url: str, mode: str, symbols: int, closes: int, strategy: str) -> dict[str, float]:
    redis = Redis.from_url(url, decode_responses=True)
    await redis.flushall()
    names = [f"SYM{i:03d}USDT" for i in range(symbols)]
    settings = StrategySettings(REDIS_URL=url, SYMBOLS=",".join(names), STRATEGY=strategy, _env_file=None)
    cls = RecomputeService if mode == "recompute" else StrategyService
    service = cls(settings, redis, "bench")
    frame = load_candles(DATA).iloc[: WINDOW + closes].reset_index(drop=True)
    template = klines("BTCUSDT", frame)
    for name in names:
        window = CandleWindow(settings.window_candles)
        for kline in template[:WINDOW]:
            window.add(kline)
        service.windows[name] = window
        if mode == "incremental":
            service.tracks[name] = IndicatorTrack.over(window, service._specs(), settings.window_candles)
    cpu, latencies = [], []
    for index in range(WINDOW - 1, WINDOW + closes):
        if index == WINDOW - 1:  # one untimed close first: code paths loaded, caches warm
            for name in names:
                service.windows[name]._rows.pop()
                if mode == "incremental":
                    service.tracks[name] = IndicatorTrack.over(service.windows[name], service._specs(),
                                                               settings.window_candles)
        events = [(streams.kline_stream(name), make_event(template[index].model_copy(update={"symbol": name}),
                                                           "market_data", template[index].close_time_ms))
                  for name in names]
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        round_latencies = []
        for stream, event in events:
            await service.handle(stream, event)
            round_latencies.append(time.perf_counter() - wall_start)
        if index >= WINDOW:
            latencies += round_latencies
            cpu.append((time.process_time() - cpu_start) / symbols)
    await redis.aclose()
    return {"cpu_per_candle_ms": statistics.median(cpu) * 1e3,
            "latency_p50_ms": statistics.median(latencies) * 1e3, "latency_max_ms": max(latencies) * 1e3}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--closes", type=int, default=40, help="candle closes per configuration")
    parser.add_argument("--strategy", default="ema_cross_rsi")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = start_redis(Path(folder))
        try:
            rows = []
            for symbols in (1, 100):
                closes = args.closes * 5 if symbols == 1 else args.closes
                # Alternate the modes so drifts in the machine's speed hit both alike.
                results = {mode: await measure(server.url, mode, symbols, closes, args.strategy)
                           for mode in ("recompute", "incremental")}
                for mode, figures in results.items():
                    rows.append({"symbols": symbols, "mode": mode, "closes": closes, **figures})
        finally:
            server.stop()
    print(f"machine: {machine()}")
    print(f"strategy {args.strategy}, window {WINDOW} candles")
    print(f"{'symbols':>7}  {'mode':<12} {'CPU/candle ms':>13} {'latency p50 ms':>14} {'latency max ms':>14}")
    for row in rows:
        print(f"{row['symbols']:>7}  {row['mode']:<12} {row['cpu_per_candle_ms']:>13.3f} {row['latency_p50_ms']:>14.2f} "
              f"{row['latency_max_ms']:>14.2f}")
    for symbols in (1, 100):
        old, new = (next(r for r in rows if r["symbols"] == symbols and r["mode"] == m) for m in ("recompute", "incremental"))
        print(f"{symbols} symbol(s): CPU per candle x{old['cpu_per_candle_ms'] / new['cpu_per_candle_ms']:.1f} less, "
              f"max latency x{old['latency_max_ms'] / new['latency_max_ms']:.1f} less")
    out = REPO / "bench" / "results" / "bench_strategy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "strategy": args.strategy, "rows": rows}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
