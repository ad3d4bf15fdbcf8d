"""Many re-based symbols from a few files: names, distinct price levels, shared candles, served."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from services.exchange_sim.app import Simulator, load_series
from services.exchange_sim.candles import Series
from services.exchange_sim.config import SimSettings
from services.exchange_sim.scale import ScaledSeries, scale_of, scale_series, scaled_symbols


def test_names_follow_the_files_in_turn() -> None:
    assert scaled_symbols(["BTCUSDT", "ETHUSDT"], 4) == ["BTC000USDT", "ETH001USDT", "BTC002USDT", "ETH003USDT"]
    assert scaled_symbols(["BTCUSDT"], 1001)[-1] == "BTC1000USDT"


def test_every_symbol_gets_its_own_price_level(make_csv: Callable[..., Path], candle_rows) -> None:
    source = Series(make_csv("BTCUSDT_1m_a.csv", candle_rows(30)))
    copies = scale_series([source], 500)
    assert len({c.candle(0).open for c in copies}) == 500
    assert len({c.symbol for c in copies}) == 500
    for index in (0, 1, 7, 499):
        copy = copies[index]
        assert isinstance(copy, ScaledSeries)
        original, scaled = source.candle(3), copy.candle(3)
        assert scaled.open_time == original.open_time and scaled.volume == original.volume
        assert abs(scaled.close - original.close * scale_of(index)) <= Decimal(1).scaleb(-copy.price_decimals)
        assert scaled.low <= min(scaled.open, scaled.close) <= max(scaled.open, scaled.close) <= scaled.high
        assert copy.price_decimals <= 8 and len(copy) == len(source)


def test_the_same_setting_gives_the_same_market(make_csv: Callable[..., Path], candle_rows) -> None:
    source = Series(make_csv("ETHUSDT_1m_a.csv", candle_rows(10)))
    first = [s.candle(9) for s in scale_series([source], 20)]
    assert first == [s.candle(9) for s in scale_series([source], 20)]
    assert scale_series([source], 0) == [source]


def test_the_simulator_serves_every_scaled_symbol(make_csv: Callable[..., Path], candle_rows) -> None:
    paths = [make_csv("BTCUSDT_1m_a.csv", candle_rows(50)), make_csv("ETHUSDT_1m_a.csv", candle_rows(50, base=20.0))]
    settings = SimSettings(data=",".join(map(str, paths)), scale_symbols=25, history=10)
    assert [s.symbol for s in load_series(settings)] == scaled_symbols(["BTCUSDT", "ETHUSDT"], 25)
    sim = Simulator(settings)
    assert len(sim.specs) == 25 and sim.specs["ETH003USDT"].base == "ETH003"
    assert sim.specs["BTC002USDT"].tick_size != sim.specs["BTC000USDT"].tick_size
    assert len({sim.market.price(s) for s in sim.specs}) == 25


def test_a_negative_count_names_the_variable() -> None:
    with pytest.raises(ValueError, match="scale_symbols"):
        SimSettings(scale_symbols=-1)
