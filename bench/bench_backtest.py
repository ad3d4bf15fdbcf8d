"""Backtest speed in candles per second, beside backtesting.py and vectorbt running the same strategy.

Usage: ``python bench/bench_backtest.py [--data CSV] [--reps N]`` (``make bench`` runs it).
Times the whole ``run_backtest`` call (indicators, signals, simulation, money in Decimal, equity,
summary) on data already loaded, after one warm-up call (numba compiled or loaded from cache).
The fast rows are timed in alternating rounds (ours, signals alone, vectorbt; one run each per
round, each after a garbage collection) so that drifts in the machine's speed hit them alike,
and the medians are reported. Rows:

* ``backtest.run_backtest``: this project;
* ``signals alone (numpy)``: ``compute_indicators`` + ``signal_arrays`` only, the floor of any run;
* ``backtesting.py``: a ``backtesting.Strategy`` computing the same indicators in ``init`` and
  applying the rules in ``next`` (trade_on_close, the same stop-loss/take-profit);
* ``vectorbt``: its own indicators and ``Portfolio.from_signals`` with the same stops and fee, in
  its own venv under ``var/bench-envs/vectorbt`` (its pins clash with the project's), created on
  first use; the row says "unavailable: <reason>" when that is impossible.

Nothing is asserted; the table is printed and saved to ``bench/results/bench_backtest.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars would garble the table

import numpy as np
import pandas as pd

from backtest import run_backtest
from shared.candles import load_candles, shared_data_dir
from shared.parameters import StrategyParameters
from shared.trading.indicators import compute_indicators
from shared.trading.rules import signal_arrays

MAIN_SERIES = "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"
VECTORBT_ENV = REPO / "var" / "bench-envs" / "vectorbt"
VECTORBT_SCRIPT = REPO / "bench" / "vendor_envs" / "vectorbt_run.py"
TARGET = 2_000_000


def median_time(action: Callable[[], object], reps: int) -> float:
    """Median wall time of ``action`` in seconds over ``reps`` calls (after one untimed call)."""
    action()
    return statistics.median(timed(action) for _ in range(reps))


def timed(action: Callable[[], object]) -> float:
    """Wall time of one call of ``action`` in seconds, started after a garbage collection."""
    gc.collect()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def machine() -> str:
    """nproc, CPU model, Python and library versions."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numba
    import pandas_ta

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"nproc {usable}, {model}, {platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, pandas-ta {pandas_ta.version}, numba {numba.__version__}"
    )


def bench_backtesting_py(candles: pd.DataFrame, params: StrategyParameters, reps: int) -> tuple[float, int]:
    """backtesting.py with the same indicators (computed in init) and rules; returns (median s, trades)."""
    from backtesting import Backtest, Strategy

    class EmaCross(Strategy):
        def init(self) -> None:
            frame = pd.DataFrame(
                {
                    "open": self.data.Open,
                    "high": self.data.High,
                    "low": self.data.Low,
                    "close": self.data.Close,
                    "volume": self.data.Volume,
                }
            )
            values = compute_indicators(frame, params, with_atr=False)
            for name in ("ema_short", "ema_long", "ema_filter", "rsi"):
                setattr(self, name, self.I(np.asarray, values[name].to_numpy(), name=name, plot=False))

        def next(self) -> None:
            short, long_, rsi = self.ema_short, self.ema_long, self.rsi[-1]
            if not self.position:
                if (
                    short[-2] <= long_[-2]
                    and short[-1] > long_[-1]
                    and rsi < params.RSI_OVERBOUGHT
                    and self.data.Close[-1] > self.ema_filter[-1]
                ):
                    price = float(self.data.Close[-1])
                    self.buy(
                        size=0.5,
                        sl=price * (1 - float(params.STOP_LOSS_PERCENTAGE)),
                        tp=price * (1 + float(params.TAKE_PROFIT_PERCENTAGE)),
                    )
            elif short[-2] >= long_[-2] and short[-1] < long_[-1] and rsi > params.RSI_OVERSOLD:
                self.position.close()

    data = pd.DataFrame(
        {
            "Open": candles["open"].to_numpy(),
            "High": candles["high"].to_numpy(),
            "Low": candles["low"].to_numpy(),
            "Close": candles["close"].to_numpy(),
            "Volume": candles["volume"].to_numpy(),
        },
        index=pd.to_datetime(candles["open_time"].to_numpy(), unit="ms"),
    )
    engine = Backtest(data, EmaCross, cash=1e12, commission=0.001, trade_on_close=True, finalize_trades=True)
    outcome: dict[str, int] = {}

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome["trades"] = int(engine.run()["# Trades"])

    return median_time(run, reps), outcome["trades"]


def vectorbt_python() -> Path:
    """The interpreter of the vectorbt venv, created with ``pip install vectorbt`` on first use."""
    python = VECTORBT_ENV / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import vectorbt"], capture_output=True).returncode == 0:
        return python
    base = Path(getattr(sys, "_base_executable", sys.executable))  # the interpreter our venv came from
    print(f"creating {VECTORBT_ENV} with {base} and installing vectorbt (once)...", file=sys.stderr)
    steps = [
        [str(base), "-m", "venv", "--clear", str(VECTORBT_ENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "vectorbt"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
            raise RuntimeError(f"{shlex.join(step[:3])}... failed: {lines[-1] if lines else done.returncode}")
    return python


class VectorbtServer:
    """vectorbt in its own venv, warmed up, timing one run per request (``vectorbt_run.py --serve``)."""

    def __init__(self, path: Path, params: StrategyParameters) -> None:
        settings = {**params.model_dump(mode="json"), "FEE": 0.001, "BALANCE": 10000}
        command = [
            str(vectorbt_python()),
            str(VECTORBT_SCRIPT),
            "--data",
            str(path),
            "--serve",
            "--params",
            json.dumps(settings),
        ]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        ready = self._answer()
        self.version, self.trades = ready["version"], ready["trades"]

    def _answer(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            lines = self.process.stderr.read().strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"exit {self.process.wait()}")
        return json.loads(line)

    def run_once(self) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return float(self._answer()["seconds"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir() / MAIN_SERIES)
    parser.add_argument("--reps", type=int, default=15, help="repetitions of the fast rows (backtesting.py: 3)")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"error: {args.data} not found (set SHARED_DATA_DIR or pass --data)", file=sys.stderr)
        return 2
    candles = load_candles(args.data)
    n = len(candles)
    params = StrategyParameters()
    rows: list[dict[str, Any]] = []

    def add(engine: str, seconds: float | None, trades: int | None, reps: int, note: str = "") -> None:
        rows.append(
            {
                "engine": engine,
                "median_s": seconds,
                "candles_per_s": n / seconds if seconds else None,
                "trades": trades,
                "reps": reps,
                "note": note,
            }
        )

    result = run_backtest(candles, params)  # warm-up: numba compile or cache load
    close, volume = candles["close"].to_numpy(), candles["volume"].to_numpy()
    try:
        vectorbt: VectorbtServer | None = VectorbtServer(args.data, params)
        vectorbt_note = "own EWM indicators + Portfolio.from_signals, separate venv"
    except (RuntimeError, OSError, json.JSONDecodeError) as e:
        vectorbt, vectorbt_note = None, f"unavailable: {e}"

    # The machine's speed drifts by tens of percent from one second to the next, so the rows
    # are timed in rounds, one run of each per round, and compared by their medians.
    timings: dict[str, list[float]] = {"ours": [], "signals": [], "vectorbt": []}
    for _ in range(args.reps):
        timings["ours"].append(timed(lambda: run_backtest(candles, params)))
        timings["signals"].append(
            timed(lambda: signal_arrays(compute_indicators(candles, params, with_atr=False), close, volume, params))
        )
        if vectorbt is not None:
            timings["vectorbt"].append(vectorbt.run_once())
    add(
        "backtest.run_backtest",
        statistics.median(timings["ours"]),
        len(result.trades),
        args.reps,
        "indicators + signals + simulation + Decimal money + summary",
    )
    add(
        "signals alone (numpy)",
        statistics.median(timings["signals"]),
        None,
        args.reps,
        "compute_indicators + signal_arrays, no simulation",
    )
    if vectorbt is not None:
        vectorbt.close()
        add(
            f"vectorbt {vectorbt.version}",
            statistics.median(timings["vectorbt"]),
            vectorbt.trades,
            args.reps,
            vectorbt_note,
        )
    else:
        add("vectorbt", None, None, 0, vectorbt_note)

    seconds, trades = bench_backtesting_py(candles, params, reps=3)
    add("backtesting.py", seconds, trades, 3, "same indicators in init, rules in next() (3 runs after the others)")

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {machine()}")
    print(f"data:    {args.data.name}, {n:,} candles, default parameters, median of the repetitions")
    print()
    print(f"| {'engine':<24} | {'median s':>9} | {'candles/s':>12} | {'trades':>6} | {'reps':>4} | note")
    print(f"|{'-' * 26}|{'-' * 11}|{'-' * 14}|{'-' * 8}|{'-' * 6}|{'-' * 40}")
    for row in rows:
        median = "" if row["median_s"] is None else f"{row['median_s']:.4f}"
        speed = "" if row["candles_per_s"] is None else f"{row['candles_per_s'] / 1e6:.2f} M"
        count = "" if row["trades"] is None else str(row["trades"])
        print(f"| {row['engine']:<24} | {median:>9} | {speed:>12} | {count:>6} | {row['reps']:>4} | {row['note']}")
    ours = rows[0]["candles_per_s"]
    print(f"\ntarget >= {TARGET / 1e6:.1f} M candles/s: {'met' if ours >= TARGET else 'NOT met'} ({ours / 1e6:.2f} M)")
    out = REPO / "bench" / "results" / "bench_backtest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "data": args.data.name, "candles": n, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
