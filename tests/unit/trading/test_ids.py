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
    is_stop_leg_id,
    protection_generation,
    protection_ids,
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


def test_each_generation_of_the_oco_has_its_own_ids_from_the_entry_and_its_number() -> None:
    entry = entry_client_order_id("BTCUSDT", 1747699200000)
    first, second = protection_ids(entry), protection_ids(entry, 2)
    assert (first.list_id, first.stop_loss, first.take_profit) == (
        "PL-BTCUSDT-1747699200000",
        "PS-BTCUSDT-1747699200000",
        "PT-BTCUSDT-1747699200000",
    )
    assert (second.list_id, second.stop_loss, second.generation) == (
        "PL2-BTCUSDT-1747699200000",
        "PS2-BTCUSDT-1747699200000",
        2,
    )
    assert protection_ids(entry, 2) == second  # the same generation always names the same list
    assert [protection_generation(i) for i in (first.stop_loss, second.take_profit, "PL1-X", "XS-X", "PX2-X")] == [
        1,
        2,
        None,
        None,
        None,
    ]
    assert is_stop_leg_id(second.stop_loss) and not is_stop_leg_id(second.take_profit)
    assert is_bot_id(protection_ids(entry, 731).list_id)
    # The longest entry id leaves room for two digits; beyond, the rest is hashed and stays distinct.
    longest = entry_client_order_id("A" * 17, 1747699200000)
    assert len(protection_ids(longest, 99).list_id) == 36
    many = {protection_ids(longest, g).list_id for g in range(100, 5000, 7)}
    assert len(many) == len(range(100, 5000, 7)) and all(CLIENT_ORDER_ID.match(i) for i in many)
    with pytest.raises(ClientOrderIdError):
        protection_ids(entry, 0)
