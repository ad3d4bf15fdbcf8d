"""The strategy's candle window: bounded, ordered, no duplicates."""

from __future__ import annotations

from decimal import Decimal

from services.strategy.window import CandleWindow
from shared.events import Kline


def kline(open_time: int, close: str = "1") -> Kline:
    price = Decimal(close)
    return Kline(
        symbol="BTCUSDT",
        interval="1m",
        open_time_ms=open_time,
        close_time_ms=open_time + 59_999,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=Decimal(1),
        closed=True,
    )


def test_duplicates_and_older_candles_are_ignored() -> None:
    window = CandleWindow(10)
    assert window.add(kline(60_000))
    assert not window.add(kline(60_000))
    assert not window.add(kline(0))
    assert window.add(kline(120_000, "2"))
    assert list(window.frame()["close"]) == [1.0, 2.0]


def test_window_keeps_only_the_newest_candles() -> None:
    window = CandleWindow(3)
    for i in range(5):
        window.add(kline(i * 60_000, str(i + 1)))
    frame = window.frame()
    assert list(frame["open_time"]) == [120_000, 180_000, 240_000]
