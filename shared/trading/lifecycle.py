"""A long position's life in numbers: what a final entry opens, what final exits close, what is
still held, which exit id comes next, and how a decided exit is paced when it must be sent again.

Pure: the callers read the ledger and the clock and pass the values in. The executor decides
with these functions; a backtest that keeps a ledger of fills can reuse them unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from shared.parameters import StrategyParameters
from shared.trading import ids
from shared.trading.ledger import FillTotals, carried_dust
from shared.trading.protection import protection_levels, realised_return_pct
from shared.trading.sizing import SymbolFilters, sellable_quantity
from shared.trading.stops import initial_levels
from shared.trading.vocabulary import OrderStatus

ZERO = Decimal(0)
MIN_RETRY_BASE_S = 0.05
MAX_BACKOFF_DOUBLINGS = 16


@dataclass(frozen=True)
class DecidedExit:
    """An exit once decided: its reason (an ``ExitReason`` value), the candle it is recorded in
    and the event that decided it. It keeps these whatever sends it again."""

    reason: str
    candle_open_ms: int | None
    source_event_id: str


@dataclass(frozen=True)
class Opened:
    """What a final entry with fills opens: average price, credited base, cost, levels, fill time."""

    entry_price: Decimal
    quantity: Decimal
    quote_spent: Decimal
    stop_loss: Decimal
    take_profit: Decimal
    entry_time_ms: int
    # STOP_MODE=atr without a usable ATR: the percentage stop was set instead (and is told).
    percent_fallback: bool = False


@dataclass(frozen=True)
class Closed:
    """What final exits that sold all but dust close (amounts in quote, ``dust_out`` in base)."""

    exit_price: Decimal
    sold: Decimal
    quote_received: Decimal
    return_pct: Decimal
    exit_time_ms: int
    remaining: Decimal

    @property
    def dust_out(self) -> Decimal:
        """Base below one step the exit left: the bot's dust, sold by the next exit."""
        return max(self.remaining, ZERO)


@dataclass(frozen=True)
class Reopened:
    """Final exits that sold nothing, or left more than dust: the position is held again."""

    sold: Decimal


def held_quantity(quantity: Decimal, dust_in: Decimal, exit_statuses: Iterable[str], sold: Decimal) -> Decimal:
    """Base the position still holds: its quantity plus the dust it carries, less what its exits sold."""
    return quantity + carried_dust(dust_in, exit_statuses) - sold


def open_from_entry(
    totals: FillTotals,
    fallback_time_ms: int,
    params: StrategyParameters,
    tick_size: Decimal,
    atr: Decimal | None = None,
) -> Opened | None:
    """The position a final entry order opens from its fills; None when nothing filled (it failed).

    Levels come from the actual average fill price (``stops.initial_levels``, with ``atr`` the
    entry candle's ATR in the atr mode); the entry time is the last fill's exchange time
    (``fallback_time_ms`` when the fills carry none). An atr stop that cannot be set (no ATR, or
    one reaching below zero) leaves the percentage stop, never no stop.
    """
    if totals.quantity <= ZERO:
        return None
    entry_price = totals.average_price
    assert entry_price is not None
    fallback = False
    try:
        stop_loss, take_profit = initial_levels(entry_price, params, tick_size, atr)
    except ValueError:
        stop_loss, take_profit = protection_levels(entry_price, params, tick_size)
        fallback = True
    return Opened(
        entry_price=entry_price,
        quantity=totals.credited_base,
        quote_spent=totals.spent_quote,
        stop_loss=stop_loss,
        take_profit=take_profit,
        entry_time_ms=totals.last_time_ms or fallback_time_ms,
        percent_fallback=fallback,
    )


def close_from_exits(
    *,
    quantity: Decimal,
    dust_in: Decimal,
    quote_spent: Decimal,
    exit_statuses: Sequence[str],
    exit_totals: FillTotals,
    filters: SymbolFilters,
    mark: Decimal | None,
    fallback_time_ms: int,
) -> Closed | Reopened:
    """What the position's final exit orders did: closed (what is left is below one step, the
    bot's dust) or reopened (nothing sold, or a sellable rest is left, to be sold next)."""
    remaining = held_quantity(quantity, dust_in, exit_statuses, exit_totals.quantity)
    leftover = sellable_quantity(remaining, filters, mark)
    if exit_totals.quantity <= ZERO or not leftover.dust:
        return Reopened(exit_totals.quantity)
    exit_price = exit_totals.average_price
    assert exit_price is not None
    received = exit_totals.received_quote
    return Closed(
        exit_price=exit_price,
        sold=exit_totals.quantity,
        quote_received=received,
        return_pct=realised_return_pct(quote_spent, received),
        exit_time_ms=exit_totals.last_time_ms or fallback_time_ms,
        remaining=remaining,
    )


def next_exit_id(entry_client_order_id: str, exits: Sequence[tuple[str, str]]) -> str:
    """The id of the position's next exit order, from its exits so far as (client id, status):
    a refused last exit never existed and is sent again under its id; else the next ``XS<n>-``."""
    if exits and exits[-1][1] == OrderStatus.REJECTED:
        return exits[-1][0]
    return ids.exit_client_order_id(entry_client_order_id, len(exits) + 1)


def exit_retry_delay(refusals: int, query_delay_s: float, exit_retry_s: float, blocked_for_s: float) -> float:
    """Seconds until a decided exit refused ``refusals`` times in a row is sent again: the query
    delay doubling per refusal up to ``exit_retry_s``, never before the exchange's Retry-After ends."""
    base = max(query_delay_s, MIN_RETRY_BASE_S)
    backoff = min(exit_retry_s, base * 2.0 ** min(refusals - 1, MAX_BACKOFF_DOUBLINGS))
    return max(backoff, blocked_for_s)
