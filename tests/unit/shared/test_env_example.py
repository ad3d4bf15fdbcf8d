"""The `.env` that `make run` creates from `.env.example` starts every service as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from services.api.config import ApiSettings
from services.exchange_sim.config import SimSettings
from services.executor.config import ExecutorSettings
from services.market_data.config import MarketDataSettings
from services.notifier.config import NotifierSettings
from services.strategy.config import StrategySettings

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / ".env.example"


@pytest.mark.parametrize(
    "settings_cls", [MarketDataSettings, StrategySettings, ExecutorSettings, NotifierSettings, ApiSettings, SimSettings]
)
def test_every_service_accepts_the_example_file(settings_cls: type, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dotenv_values(EXAMPLE):
        monkeypatch.delenv(name, raising=False)
    settings = settings_cls(_env_file=EXAMPLE)
    assert settings is not None


def test_example_file_means_paper_trading_on_the_bundled_candles(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dotenv_values(EXAMPLE):
        monkeypatch.delenv(name, raising=False)
    sim = SimSettings(_env_file=EXAMPLE)
    assert [path.name for path in sim.data_paths] == [
        "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz",
        "ETHUSDT_1m_2025-05-20_2025-05-27.csv.gz",
    ]
    executor = ExecutorSettings(_env_file=EXAMPLE)
    assert executor.binance_env == "sim" and executor.binance_credentials() == ("sim-key", "sim-secret")
    assert ApiSettings(_env_file=EXAMPLE).dashboard_password is None  # generated at first start


def test_every_variable_the_services_read_is_in_the_example() -> None:
    documented = set(dotenv_values(EXAMPLE)) | {
        line.lstrip("# ").split("=", 1)[0]
        for line in EXAMPLE.read_text().splitlines()
        if line.startswith("# ") and "=" in line
    }
    read = set()
    for settings_cls in (MarketDataSettings, StrategySettings, ExecutorSettings, NotifierSettings, ApiSettings):
        read |= {field.alias or name.upper() for name, field in settings_cls.model_fields.items()}
    read |= {f"EXCHANGE_SIM_{name.upper()}" for name in SimSettings.model_fields}
    assert read - documented == set()
