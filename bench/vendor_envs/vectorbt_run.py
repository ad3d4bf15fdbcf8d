"""The EMA-cross strategy in vectorbt, timed; run by bench/bench_backtest.py inside its own venv.

vectorbt's pins clash with the project's, so it lives in var/bench-envs/vectorbt and this script
only talks JSON: ``--data CSV --reps N --params JSON`` in, one JSON line out.
Indicators are vectorbt's own (EWM moving averages, EWM RSI, rolling volume mean); the rules,
the 2 %/5 % stop-loss/take-profit watched on high/low, and the fee per side are the strategy's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import pandas as pd
import vectorbt as vbt


def run(frame: pd.DataFrame, p: dict) -> tuple[int, float]:
    close, volume = frame["close"], frame["volume"]
    ema_short = vbt.MA.run(close, p["EMA_SHORT_PERIOD"], ewm=True).ma.to_numpy()
    ema_long = vbt.MA.run(close, p["EMA_LONG_PERIOD"], ewm=True).ma.to_numpy()
    ema_filter = vbt.MA.run(close, p["EMA_FILTER_PERIOD"], ewm=True).ma.to_numpy()
    rsi = vbt.RSI.run(close, p["RSI_PERIOD"], ewm=True).rsi.to_numpy()
    volume_avg = vbt.MA.run(volume, p["VOLUME_AVG_PERIOD"]).ma.to_numpy()
    before_short, before_long = np.roll(ema_short, 1), np.roll(ema_long, 1)
    entries = (before_short <= before_long) & (ema_short > ema_long) & (rsi < p["RSI_OVERBOUGHT"])
    if p["USE_EMA_FILTER"]:
        entries &= close.to_numpy() > ema_filter
    if p["USE_VOLUME_CONFIRMATION"]:
        entries &= volume.to_numpy() > volume_avg
    exits = (before_short >= before_long) & (ema_short < ema_long) & (rsi > p["RSI_OVERSOLD"])
    entries[0] = exits[0] = False
    portfolio = vbt.Portfolio.from_signals(
        close, entries, exits, open=frame["open"], high=frame["high"], low=frame["low"],
        sl_stop=float(p["STOP_LOSS_PERCENTAGE"]), tp_stop=float(p["TAKE_PROFIT_PERCENTAGE"]),
        fees=p["FEE"], init_cash=p["BALANCE"], freq="1min",
    )
    return int(portfolio.trades.count()), float(portfolio.total_return())


def sweep(frame: pd.DataFrame, p: dict, pairs: list, chunk: int) -> tuple[float, int]:
    """vectorbt's broadcast sweep of EMA (short, long) pairs, the other rules as in ``run``, in
    column chunks (one 2-D array per chunk); returns the seconds taken and the total trade count."""
    start = time.perf_counter()
    close, volume = frame["close"], frame["volume"]
    rsi = vbt.RSI.run(close, p["RSI_PERIOD"], ewm=True).rsi.to_numpy()[:, None]
    ema_filter = vbt.MA.run(close, p["EMA_FILTER_PERIOD"], ewm=True).ma.to_numpy()[:, None]
    closes = close.to_numpy()[:, None]
    trades = 0
    for at in range(0, len(pairs), chunk):
        part = pairs[at : at + chunk]
        fast = vbt.MA.run(close, [s for s, _ in part], ewm=True).ma.to_numpy()
        slow = vbt.MA.run(close, [l for _, l in part], ewm=True).ma.to_numpy()
        before_fast, before_slow = np.roll(fast, 1, axis=0), np.roll(slow, 1, axis=0)
        entries = (before_fast <= before_slow) & (fast > slow) & (rsi < p["RSI_OVERBOUGHT"])
        if p["USE_EMA_FILTER"]:
            entries &= closes > ema_filter
        exits = (before_fast >= before_slow) & (fast < slow) & (rsi > p["RSI_OVERSOLD"])
        entries[0] = exits[0] = False
        wide = pd.DataFrame(np.repeat(closes, len(part), axis=1), index=frame.index)
        portfolio = vbt.Portfolio.from_signals(
            wide, pd.DataFrame(entries, index=frame.index), pd.DataFrame(exits, index=frame.index),
            open=frame["open"], high=frame["high"], low=frame["low"],
            sl_stop=float(p["STOP_LOSS_PERCENTAGE"]), tp_stop=float(p["TAKE_PROFIT_PERCENTAGE"]),
            fees=p["FEE"], init_cash=p["BALANCE"], freq="1min",
        )
        portfolio.total_return()
        trades += int(portfolio.trades.count().sum())
    return time.perf_counter() - start, trades


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--params", required=True)
    parser.add_argument("--sweep", help="JSON list of [EMA_SHORT_PERIOD, EMA_LONG_PERIOD] pairs: time one broadcast sweep")
    parser.add_argument("--chunk", type=int, default=40, help="columns per broadcast chunk of --sweep")
    parser.add_argument("--serve", action="store_true",
                        help="after the warm-up, time one run per line read on stdin (one JSON line each)")
    args = parser.parse_args()
    params = json.loads(args.params)
    frame = pd.read_csv(args.data)
    trades, _ = run(frame, params)  # compile the numba kernels first
    if args.sweep:
        pairs = json.loads(args.sweep)
        sweep(frame.iloc[:2000], params, pairs[:2], args.chunk)  # compile the 2-D kernels too
        seconds, trades = sweep(frame, params, pairs, args.chunk)
        print(json.dumps({"seconds": seconds, "combos": len(pairs), "trades": trades, "version": vbt.__version__}))
        return
    if args.serve:
        # The caller alternates its own runs with these, so both see the same machine load.
        print(json.dumps({"ready": True, "trades": trades, "version": vbt.__version__}), flush=True)
        for _ in sys.stdin:
            start = time.perf_counter()
            trades, _ = run(frame, params)
            print(json.dumps({"seconds": time.perf_counter() - start, "trades": trades}), flush=True)
        return
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        trades, _ = run(frame, params)
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_s": statistics.median(times), "times": times, "trades": trades,
                      "version": vbt.__version__, "candles": len(frame)}))


if __name__ == "__main__":
    main()
