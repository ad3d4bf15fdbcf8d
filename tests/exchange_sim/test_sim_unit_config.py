"""Configuration, persistence and rate-limit windows."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from services.exchange_sim import state
from services.exchange_sim.config import ConfigError, load_settings
from services.exchange_sim.ratelimit import FixedWindow, RateLimiter


def test_defaults_serve_the_bundled_week(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("EXCHANGE_SIM_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert [p.name for p in settings.data_paths] == [
        "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz",
        "ETHUSDT_1m_2025-05-20_2025-05-27.csv.gz",
    ]
    assert all(p.is_file() for p in settings.data_paths)
    assert (settings.host, settings.port, settings.speed, settings.history) == ("127.0.0.1", 9100, 1.0, 500)
    assert (settings.weight_limit, settings.order_limit_10s, settings.ping_interval) == (6000, 100, 20.0)
    assert settings.starting_balances == {"USDT": Decimal(10000)} and settings.state_file is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EXCHANGE_SIM_BALANCES", "USDT:100"),
        ("EXCHANGE_SIM_BALANCES", "USDT=-1"),
        ("EXCHANGE_SIM_SPEED", "0"),
        ("EXCHANGE_SIM_SPEED", "fast"),
        ("EXCHANGE_SIM_DATA", "/nonexistent.csv"),
        ("EXCHANGE_SIM_PORT", "70000"),
        ("EXCHANGE_SIM_SLIPPAGE_BPS", "-3"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(name + ":")


def test_balances_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_SIM_BALANCES", "usdt=10000.5, BTC=0")
    assert load_settings().starting_balances == {"USDT": Decimal("10000.5"), "BTC": Decimal(0)}


def test_state_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    state.save(path, {"anchor_ms": 5, "engine": {"x": 1}})
    assert state.load(path) == {"version": state.VERSION, "anchor_ms": 5, "engine": {"x": 1}}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]
    path.write_text(json.dumps({"version": 999}))
    with pytest.raises(ValueError, match="unsupported state version 999"):
        state.load(path)
    assert state.load(tmp_path / "missing.json") is None


def test_fixed_windows_align_to_the_clock() -> None:
    window = FixedWindow(60_000)
    assert window.add(5, 120_000) == 5 and window.add(5, 179_999) == 10
    assert window.retry_after(179_000) == 1 and window.retry_after(120_500) == 60
    assert window.add(1, 180_000) == 1  # a new minute starts from zero
    limiter = RateLimiter(weight_limit=100, order_limit_10s=2)
    assert limiter.record_order(10_000) == (1, 1) and not limiter.orders_full(10_001)
    assert limiter.record_order(19_999) == (2, 2) and limiter.orders_full(19_999)
    assert not limiter.orders_full(20_000)
