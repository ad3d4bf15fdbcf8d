"""Client order ids: deterministic, valid for Binance, one exit id per position."""

from __future__ import annotations

import pytest

from shared.trading.ids import (
    CLIENT_ORDER_ID,
    ClientOrderIdError,
    entry_client_order_id,
    exit_client_order_id,
    is_bot_id,
    is_exit_id,
)

OPEN = 1_747_699_200_000


def test_entry_id_is_readable_and_deterministic() -> None:
    assert entry_client_order_id("BTCUSDT", OPEN) == "EB-BTCUSDT-1747699200000"
    assert entry_client_order_id("btcusdt", OPEN, "BUY") == entry_client_order_id("BTCUSDT", OPEN, "BUY")


def test_entry_id_differs_by_symbol_candle_and_side() -> None:
    ids = {
        entry_client_order_id("BTCUSDT", OPEN),
        entry_client_order_id("ETHUSDT", OPEN),
        entry_client_order_id("BTCUSDT", OPEN + 60_000),
        entry_client_order_id("BTCUSDT", OPEN, "SELL"),
    }
    assert len(ids) == 4


def test_exit_id_derives_from_the_entry_id_only() -> None:
    entry = entry_client_order_id("BTCUSDT", OPEN)
    assert exit_client_order_id(entry) == "XS-BTCUSDT-1747699200000"
    assert exit_client_order_id(entry, 2) == "XS2-BTCUSDT-1747699200000"
    assert exit_client_order_id(entry) == exit_client_order_id(entry, 1)


@pytest.mark.parametrize("symbol", ["BTCUSDT", "ABCDEFGHIJKLMNOPQRST", "1000SATSUSDT", "A" * 17, "A" * 18])
def test_every_id_matches_binance_rules(symbol: str) -> None:
    entry = entry_client_order_id(symbol, 9_999_999_999_999)
    assert CLIENT_ORDER_ID.match(entry) and len(entry) <= 34
    for attempt in (1, 2, 9, 99):
        value = exit_client_order_id(entry, attempt)
        assert CLIENT_ORDER_ID.match(value) and len(value) <= 36
        # The simulator and the exchange's stricter legacy rule: letters, digits, - and _ only.
        assert value.replace("-", "").replace("_", "").isalnum()


def test_long_symbols_are_hashed_and_stay_distinct() -> None:
    first = entry_client_order_id("ABCDEFGHIJKLMNOPQRST", OPEN)
    second = entry_client_order_id("ABCDEFGHIJKLMNOPQRSU", OPEN)
    assert first != second and "ABCDEFGHIJ" not in first


def test_classification() -> None:
    entry = entry_client_order_id("BTCUSDT", OPEN)
    assert is_bot_id(entry) and not is_exit_id(entry)
    assert is_exit_id(exit_client_order_id(entry)) and is_exit_id(exit_client_order_id(entry, 3))
    assert is_bot_id(exit_client_order_id(entry, 3))
    assert not is_bot_id("x-HNA2TXFJ0123456789abcdef012345") and not is_bot_id("manual-1")


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (entry_client_order_id, ("BTCUSDT", OPEN, "HOLD")),
        (entry_client_order_id, ("BTC/USDT", OPEN)),
        (entry_client_order_id, ("BTCUSDT", -1)),
        (exit_client_order_id, ("manual-1",)),
        (exit_client_order_id, ("EB-BTCUSDT-1", 0)),
    ],
)
def test_invalid_inputs_are_refused(call, args) -> None:
    with pytest.raises(ClientOrderIdError):
        call(*args)
