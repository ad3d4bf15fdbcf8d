"""Binance's wire format -> shared events, on recorded payloads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from services.market_data import binance_wire as wire
from shared.backoff import Backoff

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "binance"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_closed_kline_from_combined_stream() -> None:
    kline = wire.kline(wire.unwrap(load("kline_closed.json")))
    assert kline.closed is True
    assert (kline.symbol, kline.interval, kline.open_time_ms, kline.close_time_ms) == (
        "BTCUSDT",
        "1m",
        1747699200000,
        1747699259999,
    )
    assert kline.close == Decimal("105554.32000000") and kline.trades == 101


def test_partial_fill_execution_report_keeps_last_and_cumulative_amounts() -> None:
    report = wire.execution_report(load("execution_report_trade.json"))
    assert report.execution_type == "TRADE" and report.status == "PARTIALLY_FILLED"
    assert report.last_quantity == Decimal("0.004") and report.cumulative_quantity == Decimal("0.004")
    assert report.commission == Decimal("0.000004") and report.commission_asset == "BTC"
    assert report.trade_id == 77


def test_in_band_error_becomes_an_exception() -> None:
    with pytest.raises(wire.StreamError, match="BinanceWebsocketQueueOverflow"):
        wire.unwrap({"e": "error", "type": "BinanceWebsocketQueueOverflow", "m": "queue full"})


def test_rest_kline_row() -> None:
    row = [1747699200000, "1.0", "2.0", "0.5", "1.5", "10", 1747699259999, "15", 7, "5", "7.5", "0"]
    kline = wire.rest_kline("ETHUSDT", "1m", row)
    assert kline.closed and kline.high == Decimal("2.0") and kline.quote_volume == Decimal("15")


def test_account_snapshot_keeps_only_non_zero_balances() -> None:
    snapshot = wire.account_snapshot(
        {"balances": [{"asset": "USDT", "free": "10.5", "locked": "0"}, {"asset": "BNB", "free": "0", "locked": "0"}]}
    )
    assert snapshot.full and snapshot.balances == {"USDT": {"free": Decimal("10.5"), "locked": Decimal("0")}}


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    backoff = Backoff(base_s=1, cap_s=8)
    windows = [backoff.next_delay() for _ in range(6)]
    assert all(0.5 <= w <= 1 for w in windows[:1])
    assert all(4 <= w <= 8 for w in windows[3:])
    backoff.reset()
    assert backoff.next_delay() <= 1
