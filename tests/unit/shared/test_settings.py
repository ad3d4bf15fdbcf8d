"""Settings fail at start with a message naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.parameters import StrategyParameters
from shared.settings import ParameterSettings, ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[3]


def test_invalid_timeframe_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TIMEFRAME", "7m")
    with pytest.raises(SystemExit) as exit_info:
        load_settings(ServiceSettings, _env_file=None)
    assert exit_info.value.code == 2
    assert "TIMEFRAME: must be one of" in capsys.readouterr().err


def test_inconsistent_parameters_name_the_parameter(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EMA_SHORT_PERIOD", "30")
    with pytest.raises(SystemExit):
        load_settings(ParameterSettings, _env_file=None)
    assert "EMA_SHORT_PERIOD: must be smaller than EMA_LONG_PERIOD" in capsys.readouterr().err


def test_every_parameter_is_read_from_the_variable_of_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # A value for each parameter that differs from its default and keeps the set consistent.
    values = {name: str(value) for name, value in StrategyParameters().model_dump().items()}
    changed = {
        "RISK_PER_TRADE": "0.02",
        "CAPITAL_ALLOCATION": "0.5",
        "STOP_LOSS_PERCENTAGE": "0.03",
        "TAKE_PROFIT_PERCENTAGE": "0.06",
        "STOP_MODE": "atr",
        "STOP_ATR_PERIOD": "10",
        "ATR_STOP_MULTIPLIER": "3",
        "TRAILING_STOP_PERCENTAGE": "0.01",
        "TRAILING_STOP_ATR_MULTIPLIER": "2.5",
        "TRAILING_ACTIVATION_PERCENTAGE": "0.005",
        "BREAK_EVEN_AT_PERCENTAGE": "0.015",
        "ENTRY_ORDER": "limit_maker",
        "ENTRY_LIMIT_OFFSET_PERCENTAGE": "0.001",
        "ENTRY_LIMIT_TIMEOUT_CANDLES": "3",
        "ENTRY_LIMIT_FALLBACK": "true",
        "EMA_SHORT_PERIOD": "8",
        "EMA_LONG_PERIOD": "20",
        "EMA_FILTER_PERIOD": "40",
        "RSI_PERIOD": "12",
        "RSI_OVERBOUGHT": "70",
        "RSI_OVERSOLD": "30",
        "VOLUME_AVG_PERIOD": "15",
        "USE_EMA_FILTER": "false",
        "USE_VOLUME_CONFIRMATION": "true",
    }
    assert set(changed) == set(values)
    for name, value in changed.items():
        monkeypatch.setenv(name, value)
    parameters = ParameterSettings(_env_file=None).initial_parameters()
    assert parameters == StrategyParameters.model_validate(changed)
    assert all(getattr(parameters, name) != getattr(StrategyParameters(), name) for name in changed)


def test_live_mode_refuses_to_start_without_confirmation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BINANCE_ENV", "live")
    with pytest.raises(SystemExit):
        load_settings(ServiceSettings, _env_file=None)
    assert "LIVE_TRADING_CONFIRMED" in capsys.readouterr().err
    monkeypatch.setenv("LIVE_TRADING_CONFIRMED", "I_UNDERSTAND_THE_RISK")
    assert load_settings(ServiceSettings, _env_file=None).binance_env == "live"


def test_symbols_list_overrides_symbol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBOLS", "btcusdt, ethusdt")
    assert load_settings(ServiceSettings, _env_file=None).symbols == ["BTCUSDT", "ETHUSDT"]


def test_testnet_without_keys_is_refused() -> None:
    settings = ServiceSettings(BINANCE_ENV="testnet", _env_file=None)
    with pytest.raises(ValueError, match="BINANCE_API_KEY"):
        settings.binance_credentials()


def test_service_exits_with_the_variable_name_before_connecting() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "from shared.runner import run_service; from shared.settings import ServiceSettings;"
                "run_service('x', ServiceSettings, None)"
            ),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "RSI_PERIOD": "1", "TIMEFRAME": "9x", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TIMEFRAME" in result.stderr and "Traceback" not in result.stderr
