"""Events survive the trip through flat Redis fields, and bad entries are named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.codec import DecodeError, decode, encode
from shared.events import Condition, Decision, ExecutionReport, Kline, MarketStatus, make_event
from shared.parameters import ParameterError, StrategyParameters, validate_parameters


def test_every_field_is_text_and_nested_values_are_json() -> None:
    event = make_event(
        Decision(
            symbol="BTCUSDT",
            interval="1m",
            candle_open_time_ms=1,
            close=Decimal("1.50"),
            warm=True,
            entry=False,
            exit=False,
            conditions=[Condition(name="ema_cross_up", passed=False, value=1.0, threshold=2.0)],
            indicators={"rsi": 40.0},
            parameters_version=3,
        ),
        "strategy",
    )
    fields = encode(event)
    assert all(isinstance(value, str) for value in fields.values())
    assert fields["close"] == "1.50" and fields["warm"] == "true"
    assert fields["conditions"].startswith('[{"name":"ema_cross_up"')
    assert decode(fields) == event


def test_decimal_precision_is_kept_exactly() -> None:
    kline = Kline(
        symbol="DOGEUSDT",
        interval="1m",
        open_time_ms=0,
        close_time_ms=59_999,
        open=Decimal("0.07039"),
        high=Decimal("0.07040"),
        low=Decimal("0.07001"),
        close=Decimal("0.07002"),
        volume=Decimal("123456.7"),
        closed=True,
    )
    decoded = decode(encode(make_event(kline, "market_data"))).payload
    assert decoded.low == Decimal("0.07001") and str(decoded.high) == "0.07040"


def test_optional_none_round_trips() -> None:
    event = make_event(MarketStatus(state="connected"), "market_data")
    assert encode(event)["symbol"] == ""
    assert decode(encode(event)).payload.symbol is None


def test_missing_field_is_named() -> None:
    fields = encode(make_event(MarketStatus(state="connected"), "m"))
    fields["type"] = ExecutionReport.TYPE
    with pytest.raises(DecodeError, match="client_order_id"):
        decode(fields)


def test_parameter_set_is_validated_as_a_whole() -> None:
    with pytest.raises(ParameterError) as error:
        validate_parameters({"EMA_SHORT_PERIOD": 25, "STOP_LOSS_PERCENTAGE": "0.06", "RSI_OVERSOLD": 80})
    fields = {field for field, _ in error.value.problems}
    assert fields == {"EMA_SHORT_PERIOD", "STOP_LOSS_PERCENTAGE", "RSI_OVERSOLD"}


def test_unknown_and_malformed_parameters_are_named() -> None:
    with pytest.raises(ParameterError) as error:
        validate_parameters({"EMA_SHORT": 5, "RSI_PERIOD": "abc"})
    # Every problem at once: the unknown name and the malformed value.
    assert [field for field, _ in error.value.problems] == ["EMA_SHORT", "RSI_PERIOD"]
    with pytest.raises(ParameterError) as error:
        validate_parameters({"RSI_PERIOD": "abc"})
    assert error.value.problems[0][0] == "RSI_PERIOD"


def test_defaults_are_the_original_ones() -> None:
    p = StrategyParameters()
    assert (p.EMA_SHORT_PERIOD, p.EMA_LONG_PERIOD, p.EMA_FILTER_PERIOD, p.RSI_PERIOD) == (9, 21, 50, 14)
    assert (p.RSI_OVERBOUGHT, p.RSI_OVERSOLD, p.VOLUME_AVG_PERIOD) == (75, 25, 20)
    assert (Decimal("0.02"), Decimal("0.05")) == (p.STOP_LOSS_PERCENTAGE, p.TAKE_PROFIT_PERCENTAGE)
    assert p.USE_EMA_FILTER and not p.USE_VOLUME_CONFIRMATION
