"""Prices and exit signals against the open position: protection on every tick, and the rule
that nothing from before the entry acts on the position.

Old ticks (a backlog after a restart or takeover) are still checked: a level crossed while the
executor was away, after the entry, is a stop that would have filled, so the exit is taken and
recorded in the candle where the level was crossed. A price from before the entry never acts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from services.executor.core.effects import Alert, Effect, Note, RequestExit, SettleNow
from services.executor.core.sending import SETTLE_THROTTLE_S
from services.executor.core.state import ExitState, PositionFacts
from shared.events import Signal
from shared.trading.ledger import candle_open_ms
from shared.trading.protection import ExitReason, exit_reason
from shared.trading.vocabulary import PositionStatus


@dataclass(frozen=True)
class MarketView:
    """The symbol's latest price and the market time of the newest tick seen (exchange ms)."""

    last_price: Decimal | None = None
    last_tick_market_ms: int = 0
    market_time_ms: int | None = None  # the market clock of a manual close

    def with_tick(self, price: Decimal, ts_event_ms: int) -> MarketView:
        """The view after a tick: a late (older) tick moves the market clock, not the price."""
        view = self
        if ts_event_ms >= self.last_tick_market_ms:
            view = replace(view, last_price=price, last_tick_market_ms=ts_event_ms)
        return replace(view, market_time_ms=max(self.market_time_ms or 0, ts_event_ms))


@dataclass(frozen=True)
class EntryTimes:
    """When the open position's entry filled: the exchange's stamp of its last entry fill (ms),
    the clock that also stamps prices and candles (market time, live and in a replay)."""

    fill_ms: int | None = None


def before_entry(times: EntryTimes, market_ms: int) -> bool:
    """Whether an event at market time ``market_ms`` (a price's exchange time, a SELL candle's
    close) is from before the position's entry: no later than the entry fill. Arrival does not
    matter: a backlog read late, after a takeover or a lagging feed, acts from the fill on."""
    return times.fill_ms is not None and market_ms <= times.fill_ms


@dataclass(frozen=True)
class Tick:
    """One price of the symbol: its bus event id and exchange time."""

    event_id: str
    price: Decimal
    ts_event_ms: int


def on_tick(
    position: PositionFacts | None,
    exit_state: ExitState,
    times: EntryTimes,
    tick: Tick,
    *,
    interval_ms: int,
    since_settle_s: float,
    stop_on_exchange: bool = False,
) -> tuple[Effect, ...]:
    """What one price does to the position: settle an order under way (at most every
    ``SETTLE_THROTTLE_S``), send a decided exit, or trigger a stop-loss or take-profit
    (the take-profit alone when ``stop_on_exchange``: a stop order rests on the exchange, which
    sells at it, and the bot watches the take-profit that no order holds any more)."""
    if position is None:
        return ()
    if position.status in (PositionStatus.OPENING, PositionStatus.CLOSING):
        return (SettleNow(),) if since_settle_s >= SETTLE_THROTTLE_S else ()
    if position.status != PositionStatus.OPEN:
        return ()
    decided = exit_state.pending
    if decided is not None:
        return (RequestExit(ExitReason(decided.reason), decided.candle_open_ms, decided.source_event_id, tick.price),)
    if position.stop_loss is None or position.take_profit is None:
        return ()
    if before_entry(times, tick.ts_event_ms):
        return ()  # a price from before the entry: the position did not exist yet
    reason = exit_reason(tick.price, position.stop_loss, position.take_profit)
    if stop_on_exchange and reason == ExitReason.STOP_LOSS:
        reason = None  # the exchange's stop sells it
    if reason is None:
        return ()
    candle = candle_open_ms(tick.ts_event_ms, interval_ms)
    return (RequestExit(reason, candle, tick.event_id, tick.price, market_time_ms=tick.ts_event_ms),)


def on_sell_signal(signal: Signal, event_id: str, times: EntryTimes, interval_ms: int) -> tuple[Effect, ...]:
    """A SELL signal: exit the position, unless its candle closed no later than the entry fill."""
    closed_ms = signal.candle_open_time_ms + interval_ms
    if before_entry(times, closed_ms):
        return (
            Alert(
                "info",
                "exit_ignored",
                f"SELL signal of candle {signal.candle_open_time_ms} is from before the position's entry",
            ),
            Note(signal, "exit ignored: signal from before the entry"),
        )
    return (
        RequestExit(
            ExitReason.SIGNAL,
            signal.candle_open_time_ms,
            event_id,
            signal.price,
            explicit=True,
            market_time_ms=closed_ms,
        ),
    )
