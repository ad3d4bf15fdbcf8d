"""Report naming: a stable key per parameter set, and where the latest report is."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from backtest.storage import latest_report_path, report_key, report_paths, write_atomic
from shared.parameters import StrategyParameters, validate_parameters


def test_key_is_stable_across_processes_and_spellings() -> None:
    key = report_key(StrategyParameters())
    assert len(key) == 16 and int(key, 16) >= 0
    code = (
        "from backtest.storage import report_key; from shared.parameters import StrategyParameters as P; "
        "print(report_key(P()))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == key
    same = validate_parameters({"RISK_PER_TRADE": "0.010", "RSI_OVERBOUGHT": "75", "USE_EMA_FILTER": "true"})
    assert report_key(same) == key


def test_key_changes_with_any_parameter() -> None:
    base = StrategyParameters()
    keys = {
        report_key(base),
        report_key(base.model_copy(update={"RISK_PER_TRADE": Decimal("0.02")})),
        report_key(base.model_copy(update={"USE_VOLUME_CONFIRMATION": True})),
        report_key(base.model_copy(update={"RSI_OVERSOLD": 30.0})),
    }
    assert len(keys) == 4


def test_latest_report_path(tmp_path: Path) -> None:
    params = StrategyParameters()
    assert latest_report_path(tmp_path, params) is None
    html, json_path = report_paths(tmp_path, params)
    assert (html.parent, html.suffix, json_path.suffix) == (tmp_path, ".html", ".json")
    write_atomic(html, b"<html></html>")
    assert latest_report_path(tmp_path, params) == html
    assert [p.name for p in tmp_path.iterdir()] == [html.name]  # no temporary file left behind
