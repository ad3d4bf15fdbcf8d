"""``python -m backtest`` in a subprocess, as ``make backtest`` runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from backtest.cli import main
from backtest.storage import report_key
from shared.parameters import StrategyParameters

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backtest", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_writes_json_and_report(sample_file: Path, tmp_path: Path) -> None:
    out_json, out_html = tmp_path / "out.json", tmp_path / "out.html"
    done = run_cli("--data", str(sample_file), "--params", "", "--json", str(out_json), "--report", str(out_html))
    assert done.returncode == 0, done.stderr
    document = json.loads(out_json.read_text())
    summary, trades = document["summary"], document["trades"]
    assert summary["candles"] == 10080 and summary["trades"] == len(trades) > 10
    assert summary["symbol"] == "BTCUSDT" and summary["data_file"] == sample_file.name
    assert trades[0]["exit_reason"] in {"signal", "stop_loss", "take_profit", "end"}
    assert trades[0]["entry_time"] < trades[0]["exit_time"]
    page = out_html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "http" not in page
    assert "Total return" in done.stdout and "wrote" in done.stdout and "entry (UTC)" in done.stdout


def test_parameters_reach_the_run(sample_file: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "out.json"
    done = run_cli(
        "--data",
        str(sample_file),
        "--params",
        "EMA_SHORT_PERIOD=12 FEE=0.00075 USE_EMA_FILTER=false",
        "--balance",
        "500",
        "--json",
        str(out_json),
        "--trades",
        "0",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    summary = json.loads(out_json.read_text())["summary"]
    assert summary["parameters"]["EMA_SHORT_PERIOD"] == 12 and summary["parameters"]["USE_EMA_FILTER"] is False
    assert summary["settings"]["FEE"] == "0.00075" and summary["starting_balance"] == 500.0


def test_bad_parameter_exits_2_naming_it_and_writes_nothing(sample_file: Path, tmp_path: Path) -> None:
    done = run_cli(
        "--data",
        str(sample_file),
        "--params",
        "EMA_SHORT_PERIOD=30",
        "--json",
        str(tmp_path / "o.json"),
        "--report",
        str(tmp_path / "o.html"),
        "--report-dir",
        str(tmp_path / "reports"),
    )
    assert done.returncode == 2
    assert "EMA_SHORT_PERIOD" in done.stderr and "EMA_LONG_PERIOD" in done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ("RSI_PERIOD=abc", "RSI_PERIOD"),
        ("FEE=1.5", "FEE"),
        ("BALANCE=-3", "BALANCE"),
        ("NOT_A_PARAMETER=1", "NOT_A_PARAMETER"),
        ("STOP_LOSS_PERCENTAGE", "STOP_LOSS_PERCENTAGE"),
        ("TAKE_PROFIT_PERCENTAGE=0.01", "STOP_LOSS_PERCENTAGE"),
    ],
)
def test_each_bad_parameter_is_named(
    sample_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], params: str, named: str
) -> None:
    status = main(["--data", str(sample_file), "--params", params, "--json", str(tmp_path / "o.json")])
    assert status == 2 and f"parameter {named}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_or_badly_named_data_exits_2(tmp_path: Path) -> None:
    assert run_cli("--data", str(tmp_path / "BTCUSDT_1m_x.csv.gz")).returncode == 2
    odd = tmp_path / "candles.csv"
    odd.write_text("open_time,open,high,low,close,volume\n")
    done = run_cli("--data", str(odd))
    assert done.returncode == 2 and "BTCUSDT_1m" in done.stderr


def test_report_dir_uses_the_parameter_key(sample_file: Path, tmp_path: Path) -> None:
    done = run_cli("--data", str(sample_file), "--params", "RSI_PERIOD=10", "--report-dir", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    key = report_key(StrategyParameters(RSI_PERIOD=10))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}.html", f"{key}.json"]


def test_a_strategy_and_its_own_parameters_reach_the_run(sample_file: Path, tmp_path: Path) -> None:
    out_json, reports = tmp_path / "out.json", tmp_path / "reports"
    done = run_cli(
        "--data",
        str(sample_file),
        "--strategy",
        "rsi2_reversion",
        "--report-dir",
        str(reports),
        "--params",
        "ENTRY_RSI=5 TREND_PERIOD=100 STOP_LOSS_PERCENTAGE=0.01",
        "--json",
        str(out_json),
        "--trades",
        "0",
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(out_json.read_text())["summary"]
    assert summary["strategy"] == "rsi2_reversion" and summary["warmup_candles"] == 101
    assert summary["strategy_parameters"] == {"RSI_PERIOD": 2, "ENTRY_RSI": 5.0, "TREND_PERIOD": 100, "EXIT_PERIOD": 5}
    assert summary["parameters"]["STOP_LOSS_PERCENTAGE"] == "0.01" and summary["trades"] > 0
    assert "rsi2_reversion" in done.stdout
    # Its report is kept apart from the default strategy's report of the same parameter set.
    (page,) = reports.glob("*.html")
    assert page.stem != report_key(StrategyParameters(STOP_LOSS_PERCENTAGE="0.01"))
    assert "rsi2_reversion" in page.read_text() and "TREND_PERIOD" in page.read_text()


def test_an_unknown_strategy_or_a_bad_strategy_parameter_exits_2(sample_file: Path, tmp_path: Path) -> None:
    done = run_cli("--data", str(sample_file), "--strategy", "nope")
    assert done.returncode == 2 and "unknown strategy 'nope'" in done.stderr
    done = run_cli("--data", str(sample_file), "--strategy", "donchian_breakout", "--params", "ENTRY_PERIOD=1")
    assert done.returncode == 2 and "ENTRY_PERIOD" in done.stderr
    (tmp_path / "broken.py").write_text("def broken(:\n")
    done = run_cli("--data", str(sample_file), "--strategy-path", str(tmp_path))
    assert done.returncode == 2 and "broken.py:1: SyntaxError" in done.stderr


def test_the_circuit_breaker_options_apply_the_executors_breaker(sample_file: Path, tmp_path: Path) -> None:
    free, tight = tmp_path / "free.json", tmp_path / "tight.json"
    assert main(["--data", str(sample_file), "--params", "", "--json", str(free), "--quiet"]) == 0
    as_option = ["--breaker-max-losing-streak", "2", "--json", str(tight), "--quiet"]
    assert main(["--data", str(sample_file), "--params", "BREAKER_DAILY_LOSS_PCT=0.05", *as_option]) == 0
    free_run, tight_run = json.loads(free.read_text()), json.loads(tight.read_text())
    settings = tight_run["summary"]["settings"]
    assert settings["BREAKER_DAILY_LOSS_PCT"] == "0.05" and settings["BREAKER_MAX_LOSING_STREAK"] == "2"
    assert "BREAKER_DAILY_LOSS_PCT" not in free_run["summary"]["settings"]
    assert 0 < tight_run["summary"]["trades"] < free_run["summary"]["trades"]
    assert tight_run["summary"]["skipped_entries"] > free_run["summary"]["skipped_entries"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ("BREAKER_DAILY_LOSS_PCT=0", "BREAKER_DAILY_LOSS_PCT"),
        ("BREAKER_MAX_DRAWDOWN_PCT=abc", "BREAKER_MAX_DRAWDOWN_PCT"),
        ("BREAKER_MAX_LOSING_STREAK=1.5", "BREAKER_MAX_LOSING_STREAK"),
    ],
)
def test_a_bad_breaker_limit_exits_2_naming_it(
    sample_file: Path, tmp_path: Path, params: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.json"
    assert main(["--data", str(sample_file), "--params", params, "--json", str(out), "--quiet"]) == 2
    assert f"parameter {named}:" in capsys.readouterr().err
    assert not out.exists()
