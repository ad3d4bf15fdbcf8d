"""User strategies from a folder: listed, validated, backtested; a broken file stops the start naming file and line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from backtest import run_backtest
from services.strategy.config import StrategySettings
from shared.candles import load_candles
from shared.settings import format_settings_error
from shared.strategy_loader import DEFAULT_PATH, StrategyLoadError, load_registry
from shared.trading.strategies import Row

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "strategies" / "sma_cross_example.py"
CANDLES = ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"


def folder_with(tmp_path: Path, text: str, name: str = "mine.py") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_the_default_folder_holds_the_example() -> None:
    assert DEFAULT_PATH == ROOT / "strategies"
    registry = load_registry()
    assert registry.names()[:3] == ["ema_cross_rsi", "rsi2_reversion", "donchian_breakout"]
    assert "sma_cross_example" in registry


def test_a_user_strategy_is_listed_validated_and_backtested(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace('"sma_cross_example"', '"my_cross"')
    registry = load_registry(folder_with(tmp_path, text))
    strategy = registry.get("my_cross")
    assert strategy.schema()["parameters"]["properties"]["PERIOD"]["unit"] == "candles"
    params = strategy.parameters({"PERIOD": "20"})
    assert params.PERIOD == 20
    settings = StrategySettings(
        _env_file=None, STRATEGY="my_cross", STRATEGY_PATH=str(tmp_path), STRATEGY_PARAMS="PERIOD=20"
    )
    assert settings.strategy().name == "my_cross" and settings.strategy_parameters() == params
    candles = load_candles(CANDLES).iloc[:3000]
    result = run_backtest(candles, settings.initial_parameters(), strategy=strategy, strategy_params=params)
    assert result.summary["strategy"] == "my_cross" and result.trades
    # Its vectorised rules flag what its per-candle rules decide.
    columns = strategy.compute(candles.reset_index(drop=True), params)
    arrays = {c: candles[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
    entry, _ = strategy.signal_arrays(columns, arrays, params)
    rows = [
        Row(0, *(arrays[c][i] for c in ("open", "high", "low", "close", "volume")), values={"sma": columns["sma"][i]})
        for i in range(len(candles))
    ]
    assert [strategy.evaluate(rows[i - 1], rows[i], params).entry for i in range(1, len(rows))] == entry[1:].tolist()
    assert np.any(entry)


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "x = 1\n\ndef broken(:\n    pass\n")
    with pytest.raises(StrategyLoadError, match=r"mine\.py:3: SyntaxError"):
        load_registry(folder)
    with pytest.raises(ValidationError) as error:
        StrategySettings(_env_file=None, STRATEGY_PATH=str(folder))
    assert "mine.py:3: SyntaxError" in format_settings_error(error.value)


def test_an_error_at_import_or_in_the_class_names_its_line_and_loads_nothing(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "a_good.py")
    folder_with(tmp_path, "import math\nmath.sqrt(-1)\n", "b_bad.py")
    with pytest.raises(StrategyLoadError, match=r"b_bad\.py:2: ValueError: math domain error"):
        load_registry(tmp_path)
    (tmp_path / "b_bad.py").write_text(
        re.sub(r"parameter\(\s*30,", "parameter(1,", EXAMPLE.read_text().replace('"sma_cross_example"', '"other"'))
    )  # a default below its bound
    with pytest.raises(StrategyLoadError, match=r"b_bad\.py:\d+: ParameterError: PERIOD"):
        load_registry(tmp_path)


def test_a_name_used_twice_or_an_unknown_strategy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StrategyLoadError, match="already exists"):
        load_registry(folder_with(tmp_path, EXAMPLE.read_text().replace('"sma_cross_example"', '"rsi2_reversion"')))
    with pytest.raises(ValidationError, match="unknown strategy 'nope'"):
        StrategySettings(_env_file=None, STRATEGY="nope")
    with pytest.raises(StrategyLoadError, match="not a folder"):
        load_registry(tmp_path / "missing")
    with pytest.raises(ValidationError, match="ENTRY_RSI"):
        StrategySettings(_env_file=None, STRATEGY="rsi2_reversion", STRATEGY_PARAMS="ENTRY_RSI=500")
    with pytest.raises(ValidationError, match="STRATEGY_PARAMS"):
        StrategySettings(_env_file=None, STRATEGY_PARAMS="EMA_SHORT_PERIOD=5")
    with pytest.raises(ValidationError, match="needs 2001 closed candles"):
        StrategySettings(_env_file=None, STRATEGY="rsi2_reversion", STRATEGY_PARAMS="TREND_PERIOD=2000")
