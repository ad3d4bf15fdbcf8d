"""One trade as the profit read model sees it, and what a set of trades still holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from shared.trading.vocabulary import PositionStatus

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CLOSED = PositionStatus.CLOSED
ACTIVE = frozenset({PositionStatus.OPEN, PositionStatus.CLOSING})


class PeriodUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@dataclass(frozen=True)
class TradeRecord:
    """One position as the ledger has it (quantities in base, money in quote, times market time).

    ``quantity`` is the base the entry credited (after commission taken in base),
    ``sold_quantity`` what the exit orders sold (position and carried-in dust), ``dust_in`` the
    bot's dust of earlier exits sold with this one, ``dust_out`` what this exit left.
    ``entry_fee_quote``/``exit_fee_quote`` are the commissions valued in the quote asset.
    """

    id: int
    symbol: str
    status: str
    entry_time_ms: int | None
    exit_time_ms: int | None
    entry_price: Decimal | None
    exit_price: Decimal | None
    quantity: Decimal
    sold_quantity: Decimal
    quote_spent: Decimal
    quote_received: Decimal | None
    entry_fee_quote: Decimal = ZERO
    exit_fee_quote: Decimal = ZERO
    dust_in: Decimal = ZERO
    dust_out: Decimal = ZERO

    @property
    def closed(self) -> bool:
        return self.status == CLOSED

    @property
    def fees_quote(self) -> Decimal:
        return self.entry_fee_quote + self.exit_fee_quote

    @property
    def profit_quote(self) -> Decimal | None:
        """Realised P&L after fees; None while the trade is not closed."""
        if not self.closed or self.quote_received is None:
            return None
        return self.quote_received - self.quote_spent

    @property
    def profit_pct(self) -> Decimal | None:
        """Realised P&L in % of the quote spent."""
        profit = self.profit_quote
        if profit is None or self.quote_spent <= ZERO:
            return None
        return profit / self.quote_spent * HUNDRED

    @property
    def duration_ms(self) -> int | None:
        if self.entry_time_ms is None or self.exit_time_ms is None:
            return None
        return self.exit_time_ms - self.entry_time_ms

    def unrealised_quote(self, price: Decimal | None) -> Decimal | None:
        """Mark-to-market of an open trade at ``price``: held base x price + quote already received - spent."""
        if self.status not in ACTIVE or price is None:
            return None
        return self.position_held * price + (self.quote_received or ZERO) - self.quote_spent

    @property
    def position_held(self) -> Decimal:
        """Base of the position itself still held (an exit sells the position first, then the dust)."""
        return max(self.quantity - self.sold_quantity, ZERO)

    @property
    def dust_held(self) -> Decimal:
        """The bot's dust still held by an active trade (carried in, not yet sold)."""
        return max(self.quantity + self.dust_in - self.sold_quantity, ZERO) - self.position_held

    def unrealised_pct(self, price: Decimal | None) -> Decimal | None:
        value = self.unrealised_quote(price)
        if value is None or self.quote_spent <= ZERO:
            return None
        return value / self.quote_spent * HUNDRED


def order_fee_quote(commission_base: Decimal, commission_quote: Decimal, average_price: Decimal | None) -> Decimal:
    """An order's commissions in the quote asset: base commission at the order's average fill price."""
    return commission_quote + (commission_base * average_price if average_price is not None else ZERO)


@dataclass(frozen=True)
class TradeRef:
    id: int
    profit_quote: Decimal
    profit_pct: Decimal | None


def closed_in_order(trades: Iterable[TradeRecord]) -> list[TradeRecord]:
    """The closed trades with their proceeds known, in the order they closed."""
    closed = [t for t in trades if t.closed and t.quote_received is not None]
    return sorted(closed, key=lambda t: (t.exit_time_ms or 0, t.id))


def bot_dust(trades: Iterable[TradeRecord]) -> Decimal:
    """The bot's base dust of one symbol now: carried into the active trade, else left by the last exit."""
    ordered = sorted(trades, key=lambda t: t.id)
    for trade in reversed(ordered):
        if trade.status in ACTIVE or trade.status == PositionStatus.OPENING:
            return trade.dust_held
        if trade.closed:
            return trade.dust_out
    return ZERO
