"""Prices and SELL signals against the position: every branch of ``core.ticks``."""

from __future__ import annotations

from decimal import Decimal

from services.executor.core import effects as fx
from services.executor.core.state import ExitState
from services.executor.core.ticks import EntryTimes, MarketView, Tick, before_entry, on_sell_signal, on_tick
from shared.events import Signal
from shared.trading.lifecycle import DecidedExit
from shared.trading.protection import ExitReason
from tests.unit.executor.facts import position

D = Decimal
MINUTE = 60_000
AFTER = EntryTimes(fill_ms=1_000)


def tick(price: str, ts: int = 2 * MINUTE + 5) -> Tick:
    return Tick("tick-1", D(price), ts)


def test_a_late_tick_moves_the_market_clock_but_not_the_price() -> None:
    view = MarketView().with_tick(D("100"), 5_000).with_tick(D("90"), 4_000)
    assert (view.last_price, view.last_tick_market_ms, view.market_time_ms) == (D("100"), 5_000, 5_000)
    assert MarketView(market_time_ms=9_000).with_tick(D("1"), 4_000).market_time_ms == 9_000


def test_before_the_entry_is_by_the_exchange_time_of_its_fill_alone() -> None:
    assert before_entry(AFTER, 1_000) and before_entry(AFTER, 999)
    assert not before_entry(AFTER, 1_001)
    assert not before_entry(EntryTimes(), 0)


def test_a_stop_loss_crossed_exits_in_the_candle_of_the_tick() -> None:
    [request] = on_tick(position(), ExitState(), AFTER, tick("97999"), interval_ms=MINUTE, since_settle_s=0)
    assert request == fx.RequestExit(
        ExitReason.STOP_LOSS, 2 * MINUTE, "tick-1", D("97999"), market_time_ms=2 * MINUTE + 5
    )
    [request] = on_tick(position(), ExitState(), AFTER, tick("104000"), interval_ms=MINUTE, since_settle_s=0)
    assert isinstance(request, fx.RequestExit) and request.reason is ExitReason.TAKE_PROFIT


def test_a_price_between_the_levels_or_from_before_the_entry_does_nothing() -> None:
    assert on_tick(position(), ExitState(), AFTER, tick("100000"), interval_ms=MINUTE, since_settle_s=0) == ()
    old = tick("90000", ts=1_000)
    assert on_tick(position(), ExitState(), AFTER, old, interval_ms=MINUTE, since_settle_s=0) == ()
    assert on_tick(position(stop_loss=None), ExitState(), AFTER, tick("1"), interval_ms=MINUTE, since_settle_s=0) == ()
    assert on_tick(None, ExitState(), AFTER, tick("1"), interval_ms=MINUTE, since_settle_s=0) == ()


def test_any_price_sends_a_decided_exit_with_its_own_reason() -> None:
    decided = ExitState(pending=DecidedExit("stop_loss", 60_000, "tick-0"))
    [request] = on_tick(position(), decided, AFTER, tick("100000", ts=10), interval_ms=MINUTE, since_settle_s=0)
    assert request == fx.RequestExit(ExitReason.STOP_LOSS, 60_000, "tick-0", D("100000"))


def test_a_price_settles_an_order_under_way_at_most_every_two_seconds() -> None:
    for status in ("OPENING", "CLOSING"):
        assert on_tick(
            position(status=status), ExitState(), AFTER, tick("1"), interval_ms=MINUTE, since_settle_s=2.0
        ) == (fx.SettleNow(),)
        assert (
            on_tick(position(status=status), ExitState(), AFTER, tick("1"), interval_ms=MINUTE, since_settle_s=1.9)
            == ()
        )


def signal(candle_open_ms: int) -> Signal:
    return Signal(
        symbol="BTCUSDT",
        side="SELL",
        reason="ema_cross_down",
        price=D("99000"),
        interval="1m",
        candle_open_time_ms=candle_open_ms,
        indicators={},
        parameters_version=0,
    )


def test_a_sell_signal_exits_in_its_candle_unless_the_candle_closed_before_the_entry() -> None:
    [request] = on_sell_signal(signal(MINUTE), "signal-1", AFTER, MINUTE)
    assert request == fx.RequestExit(
        ExitReason.SIGNAL, MINUTE, "signal-1", D("99000"), explicit=True, market_time_ms=2 * MINUTE
    )
    ignored = on_sell_signal(signal(0), "signal-0", EntryTimes(fill_ms=MINUTE), MINUTE)
    assert [type(e).__name__ for e in ignored] == ["Alert", "Note"]


def test_with_the_stop_on_the_exchange_a_tick_triggers_the_take_profit_alone() -> None:
    # After a moved stop replaced the OCO by a single stop order: the exchange sells at the stop,
    # the bot at the take-profit that no order holds any more.
    below = on_tick(
        position(), ExitState(), AFTER, tick("97999"), interval_ms=MINUTE, since_settle_s=0, stop_on_exchange=True
    )
    assert below == ()
    [request] = on_tick(
        position(), ExitState(), AFTER, tick("104000"), interval_ms=MINUTE, since_settle_s=0, stop_on_exchange=True
    )
    assert isinstance(request, fx.RequestExit) and request.reason is ExitReason.TAKE_PROFIT
