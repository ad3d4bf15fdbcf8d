"""Which market streams market_data reads, over how many connections, in which SUBSCRIBE batches."""

from __future__ import annotations

from services.market_data.subscriptions import (
    ARRAY_STREAM,
    MAX_STREAMS_PER_CONNECTION,
    SUBSCRIBE_BATCH,
    SUBSCRIBE_EVERY_S,
    batches,
    connection_plan,
    stream_names,
    uses_array,
)


def test_the_array_is_chosen_past_a_few_symbols_or_when_asked() -> None:
    assert not uses_array(3, "auto", 3) and uses_array(4, "auto", 3)
    assert uses_array(1, "array", 3) and not uses_array(500, "symbol", 3)


def test_per_symbol_tickers_for_few_symbols_the_array_for_many() -> None:
    assert stream_names(["BTCUSDT", "ETHUSDT"], "1m", False) == [
        "btcusdt@miniTicker",
        "btcusdt@kline_1m",
        "ethusdt@miniTicker",
        "ethusdt@kline_1m",
    ]
    names = stream_names([f"S{i}USDT" for i in range(500)], "1m", True)
    assert names[0] == ARRAY_STREAM and len(names) == 501 and not any("@miniTicker" in n for n in names)


def test_connections_hold_at_most_binance_s_1024_streams() -> None:
    names = stream_names([f"S{i}USDT" for i in range(1500)], "1m", True)
    plan = connection_plan(names)
    assert [len(c) for c in plan] == [1024, 477] and [n for c in plan for n in c] == names
    assert max(len(c) for c in plan) <= MAX_STREAMS_PER_CONNECTION
    assert connection_plan(stream_names(["BTCUSDT"], "1m", False)) == [["btcusdt@miniTicker", "btcusdt@kline_1m"]]


def test_subscribe_messages_stay_under_five_a_second() -> None:
    names = [f"s{i}@kline_1m" for i in range(1024)]
    parts = batches(names)
    assert [n for p in parts for n in p] == names and max(len(p) for p in parts) <= SUBSCRIBE_BATCH
    assert 1 / SUBSCRIBE_EVERY_S < 5
