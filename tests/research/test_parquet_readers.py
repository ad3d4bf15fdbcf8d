"""The backtester and the simulator read the Parquet store a download wrote: the same candles, the
same trades, the same klines as the CSV.gz files the simulator served them from."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backtest import run_backtest
from shared.candles import load_candles
from shared.parameters import StrategyParameters
from tests.support.downloads import (
    MIN,
    REPO_ROOT,
    Row,
    download_env,
    first_open_time,
    iso_arg,
    reference_klines,
    run_download,
)
from tests.support.simulator import BUNDLED_DATA, SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration
HISTORY = 2500


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorProcess, Path]]:
    """A simulator on the bundled CSV.gz files and the store a download from it wrote."""
    folder = tmp_path_factory.mktemp("readers")
    with start_simulator(folder / "sim", speed=1, history=HISTORY) as sim:
        start = first_open_time(sim, "BTCUSDT")
        out = folder / "store"
        outcome = run_download(
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--start",
            iso_arg(start),
            "--end",
            iso_arg(start + HISTORY * MIN),
            "--out",
            str(out),
            env=download_env(sim),
        )
        assert outcome.code == 0, outcome.stderr
        yield sim, out


def csv_of(symbol: str) -> Path:
    return next(p for p in BUNDLED_DATA if p.name.startswith(symbol))


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ETHUSDT"])
def test_the_backtester_reads_the_same_candles_and_makes_the_same_trades(
    downloaded: tuple[SimulatorProcess, Path], symbol: str
) -> None:
    _, out = downloaded
    stored = load_candles(out / f"symbol={symbol}" / "interval=1m")
    original = load_candles(csv_of(symbol)).iloc[:HISTORY].reset_index(drop=True)
    assert (stored.attrs["symbol"], stored.attrs["interval"], len(stored)) == (symbol, "1m", HISTORY)
    for name in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(stored[name].to_numpy(), original[name].to_numpy()), name
    shift = int(stored["open_time"].iloc[0] - original["open_time"].iloc[0])  # the simulator's re-basing
    assert shift % MIN == 0 and np.array_equal(stored["open_time"].to_numpy() - shift, original["open_time"].to_numpy())

    params = StrategyParameters()
    ours, theirs = run_backtest(stored, params), run_backtest(original, params)
    assert len(ours.trades) == len(theirs.trades) > 0
    for a, b in zip(ours.trades, theirs.trades, strict=True):
        assert a.entry_time - shift == b.entry_time and a.exit_time - shift == b.exit_time
        assert a._replace(entry_time=0, exit_time=0) == b._replace(entry_time=0, exit_time=0)


def test_the_backtest_command_takes_a_parquet_folder(downloaded: tuple[SimulatorProcess, Path], tmp_path: Path) -> None:
    _, out = downloaded
    result = tmp_path / "result.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "backtest",
            "--data",
            str(out / "symbol=BTCUSDT" / "interval=1m"),
            "--json",
            str(result),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(result.read_text())["summary"]
    expected = run_backtest(load_candles(csv_of("BTCUSDT")).iloc[:HISTORY], StrategyParameters())
    assert (summary["candles"], summary["trades"], summary["data_file"]) == (
        HISTORY,
        len(expected.trades),
        "symbol=BTCUSDT/interval=1m",
    )
    assert summary["total_return_pct"] == pytest.approx(expected.summary["total_return_pct"], abs=0)


def exchange_info(sim: SimulatorProcess, symbol: str) -> object:
    with urllib.request.urlopen(f"{sim.base_url}/api/v3/exchangeInfo?symbol={symbol}", timeout=10) as response:
        return json.loads(response.read())["symbols"]


def shifted(rows: list[Row]) -> list[Row]:
    """Klines with open and close times counted from the first open time."""
    first = rows[0][0]
    return [(r[0] - first, *r[1:6], r[6] - first, *r[7:]) for r in rows]


async def test_the_simulator_replays_the_parquet_store_as_it_replayed_the_csv(
    downloaded: tuple[SimulatorProcess, Path], tmp_path: Path
) -> None:
    sim, out = downloaded
    folders = [out / f"symbol={s}" / "interval=1m" for s in ("BTCUSDT", "ETHUSDT")]
    # One candle fewer in the past: the last stored one is forming when the second simulator starts.
    with start_simulator(tmp_path, data=folders, speed=1, history=HISTORY - 1) as replay:
        for symbol in ("BTCUSDT", "ETHUSDT"):
            start_a, start_b = first_open_time(sim, symbol), first_open_time(replay, symbol)
            from_csv = await reference_klines(sim, symbol, start_a, start_a + (HISTORY - 1) * MIN)
            from_store = await reference_klines(replay, symbol, start_b, start_b + (HISTORY - 1) * MIN)
            assert len(from_store) == HISTORY - 1
            assert shifted(from_store) == shifted(from_csv)  # prices, volumes, derived fields
            assert exchange_info(sim, symbol) == exchange_info(replay, symbol)  # the same filters from the same prices
