"""LIMIT_MAKER entries: the price below the bid, the deadline in market time, when the resting
order is cancelled and when a MARKET buy replaces it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from shared.parameters import StrategyParameters
from shared.trading.ids import (
    entry_client_order_id,
    exit_client_order_id,
    fallback_client_order_id,
    is_bot_id,
    is_fallback_id,
    protection_ids,
)
from shared.trading.limit_entry import (
    CancelReason,
    cancel_reason,
    deadline_ms,
    falls_back,
    filled_in_candle,
    is_would_match,
    limit_price,
)

MINUTE = 60_000
PARAMS = StrategyParameters(ENTRY_ORDER="limit_maker", ENTRY_LIMIT_TIMEOUT_CANDLES=2, STOP_LOSS_PERCENTAGE=D("0.02"))


@pytest.mark.parametrize(
    ("bid", "offset", "tick", "price"),
    [
        ("100000.00", "0", "0.01", "100000.00"),  # at the bid
        ("100000.00", "0.001", "0.01", "99900.00"),
        ("100.37", "0.0015", "0.05", "100.20"),  # 100.219... rounded down to the tick
        ("0.00001234", "0.5", "0.00000001", "0.00000617"),
        ("0.00000002", "0.9", "0.00000001", "0.00000001"),  # never 0: one tick
    ],
)
def test_the_price_is_below_the_bid_on_the_tick(bid: str, offset: str, tick: str, price: str) -> None:
    got = limit_price(D(bid), D(offset), D(tick))
    assert got == D(price) and got <= D(bid) and got % D(tick) == 0


def test_a_bid_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="best bid"):
        limit_price(D(0), D(0), D("0.01"))


def test_the_deadline_is_the_close_of_the_last_candle_it_rests_for() -> None:
    # The signal candle opens at 0 and closes at 1 min; two more candles: cancelled at 3 min.
    assert deadline_ms(0, MINUTE, 2) == 3 * MINUTE


def test_it_is_cancelled_at_the_deadline_on_the_market_clock_only() -> None:
    kwargs = {"deadline": 3 * MINUTE, "price": D(100), "executed": D(0), "average_price": None, "params": PARAMS}
    assert cancel_reason(market_ms=3 * MINUTE - 1, **kwargs) is None  # type: ignore[arg-type]
    assert cancel_reason(market_ms=None, **kwargs) is None  # type: ignore[arg-type]
    assert cancel_reason(market_ms=3 * MINUTE, **kwargs) is CancelReason.TIMEOUT  # type: ignore[arg-type]


def test_a_partly_filled_entry_is_cancelled_once_the_price_reaches_the_stop_of_what_filled() -> None:
    def reason(price: str, executed: str = "0.1") -> CancelReason | None:
        return cancel_reason(
            market_ms=MINUTE,
            deadline=3 * MINUTE,
            price=D(price),
            executed=D(executed),
            average_price=D(100),
            params=PARAMS,
        )

    assert reason("98.01") is None
    assert reason("98") is CancelReason.STOP_REACHED  # 100 less 2 %
    assert reason("90", executed="0") is None  # nothing filled: nothing to protect


def test_only_a_timeout_with_nothing_filled_falls_back_and_only_when_asked() -> None:
    on = PARAMS.model_copy(update={"ENTRY_LIMIT_FALLBACK": True})
    assert falls_back(CancelReason.TIMEOUT, D(0), on)
    assert not falls_back(CancelReason.TIMEOUT, D(0), PARAMS)
    assert not falls_back(CancelReason.TIMEOUT, D("0.001"), on)
    assert not falls_back(CancelReason.CLOSE, D(0), on)


def test_would_match_is_the_2010_text_of_a_limit_maker_only() -> None:
    assert is_would_match(-2010, "order: -2010 Order would immediately match and take.")
    assert not is_would_match(-2010, "Account has insufficient balance for requested action.")
    assert not is_would_match(-1013, "Order would immediately match and take.")


def test_the_backtest_fills_when_the_low_reaches_the_limit() -> None:
    assert filled_in_candle(D("99.9"), D("99.9")) and not filled_in_candle(D("99.91"), D("99.9"))


def test_the_fallback_id_derives_from_the_entry_and_names_its_own_exits() -> None:
    entry = entry_client_order_id("BTCUSDT", 1747699200000)
    fallback = fallback_client_order_id(entry)
    assert fallback == "EM-BTCUSDT-1747699200000" and is_fallback_id(fallback) and is_bot_id(fallback)
    assert not is_fallback_id(entry)
    assert exit_client_order_id(fallback) == exit_client_order_id(entry)
    assert protection_ids(fallback) == protection_ids(entry)


def test_the_parameters_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="ENTRY_LIMIT_TIMEOUT_CANDLES"):
        StrategyParameters(ENTRY_LIMIT_TIMEOUT_CANDLES=0)
    with pytest.raises(ValueError, match="ENTRY_LIMIT_OFFSET_PERCENTAGE"):
        StrategyParameters(ENTRY_LIMIT_OFFSET_PERCENTAGE=D(1))
    with pytest.raises(ValueError, match="ENTRY_ORDER"):
        StrategyParameters(ENTRY_ORDER="limit")
