"""The account circuit breaker: stop new entries when realised losses run away.

Three limits, each off when unset: the day's realised loss in % of the equity the UTC day
started with, the drawdown in % from the realised-equity peak, and consecutive losing trades.
``advance`` is the one decision, used by the executor after each closed position and by the
backtester after each simulated one: the state, the market time and (optionally) the trade
that just closed give the new state and the limit it tripped. Days are UTC days of market
time (candle or exchange event times), so a replay at any speed trips and resets as at 1x.

A tripped daily limit clears at the next UTC market day; the drawdown and the losing streak
stay tripped until an operator resets them (``operator_reset``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from shared.trading.vocabulary import BreakerLimit

DAY_MS = 86_400_000
HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class BreakerLimits:
    """The limits in force; None is off."""

    daily_loss_pct: Decimal | None = None
    max_drawdown_pct: Decimal | None = None
    max_losing_streak: int | None = None

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.daily_loss_pct, self.max_drawdown_pct, self.max_losing_streak))


@dataclass(frozen=True)
class Trip:
    """A limit reached: which one, its figures (text, exact decimals), and when (market ms)."""

    limit: BreakerLimit
    at_ms: int
    figures: Mapping[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str:
        """The alert code (the notifier files codes starting with ``breaker`` as breaker news)."""
        return f"breaker_{self.limit}"

    @property
    def refusal(self) -> str:
        """Why an entry is refused while this trip holds."""
        shown = ", ".join(f"{k} {v}" for k, v in self.figures.items())
        return f"circuit breaker tripped on {self.limit} ({shown})"

    @property
    def message(self) -> str:
        shown = ", ".join(f"{k} {v}" for k, v in self.figures.items())
        return f"circuit breaker tripped on {self.limit}: {shown}; new entries are paused, exits continue"


@dataclass(frozen=True)
class BreakerState:
    """Realised equity and its peak, the UTC market day and its starting equity, the streak."""

    day_start_ms: int | None = None
    day_start_equity: Decimal | None = None
    equity: Decimal | None = None
    peak_equity: Decimal | None = None
    losing_streak: int = 0
    tripped: Trip | None = None


@dataclass(frozen=True)
class ClosedTrade:
    """A closed position: its realised profit (quote, after fees) and when it closed (market ms).

    ``equity_before`` is the account's equity before this trade; it starts the realised equity
    when the state has none yet (the first trade the breaker sees) and is ignored otherwise.
    """

    profit: Decimal
    closed_ms: int
    equity_before: Decimal | None = None


@dataclass(frozen=True)
class BreakerStep:
    state: BreakerState
    tripped: Trip | None = None  # tripped by this step
    cleared: Trip | None = None  # a daily trip this step's new market day cleared


def account_equity(
    balances: Mapping[str, tuple[Decimal, Decimal]], quote_asset: str, prices: Mapping[str, Decimal | None]
) -> Decimal:
    """The whole equity the limits are measured on, as the profit figures count it: the quote
    balance (free and locked) plus each traded base asset (``prices``: asset -> last price in the
    quote asset; one without a price yet counts nothing)."""

    def held(asset: str) -> Decimal:
        free, locked = balances.get(asset, (ZERO, ZERO))
        return free + locked

    equity = held(quote_asset)
    for asset, price in prices.items():
        if price is not None and asset != quote_asset:
            equity += held(asset) * price
    return equity


def day_of(market_ms: int) -> int:
    """Start (ms) of the UTC day holding ``market_ms``."""
    return market_ms - market_ms % DAY_MS


def advance(
    state: BreakerState, limits: BreakerLimits, market_ms: int, trade: ClosedTrade | None = None
) -> BreakerStep:
    """The breaker after market time reached ``market_ms`` and ``trade`` (if any) closed.

    A new UTC market day starts the day's equity afresh and clears a tripped daily limit; the
    trade moves the realised equity, its peak and the losing streak; then, unless a limit is
    already tripped, each limit is checked in turn and the first one reached trips.
    """
    cleared = None
    day = day_of(market_ms)
    if state.day_start_ms is None or day > state.day_start_ms:
        if state.tripped is not None and state.tripped.limit == BreakerLimit.DAILY_LOSS:
            cleared = state.tripped
            state = replace(state, tripped=None)
        state = replace(state, day_start_ms=day, day_start_equity=state.equity)
    if trade is None:
        return BreakerStep(state, cleared=cleared)
    before = state.equity if state.equity is not None else trade.equity_before
    equity = None if before is None else before + trade.profit
    state = replace(
        state,
        equity=equity,
        day_start_equity=state.day_start_equity if state.day_start_equity is not None else before,
        peak_equity=_max(state.peak_equity, before, equity),
        losing_streak=state.losing_streak + 1 if trade.profit < ZERO else 0,
    )
    if state.tripped is not None or not limits.enabled:
        return BreakerStep(state, cleared=cleared)
    trip = _trip(state, limits, market_ms)
    return BreakerStep(replace(state, tripped=trip) if trip else state, tripped=trip, cleared=cleared)


def operator_reset(state: BreakerState) -> BreakerState:
    """The state after an operator reset: nothing tripped, and every limit measured afresh from
    now (the day's equity and the peak are the present equity, the streak is zero)."""
    return replace(state, tripped=None, losing_streak=0, day_start_equity=state.equity, peak_equity=state.equity)


def _trip(state: BreakerState, limits: BreakerLimits, market_ms: int) -> Trip | None:
    equity, start, peak = state.equity, state.day_start_equity, state.peak_equity
    if limits.daily_loss_pct is not None and equity is not None and start is not None and start > ZERO:
        loss = start - equity
        pct = loss / start * HUNDRED
        if loss > ZERO and pct >= limits.daily_loss_pct:
            figures = {
                "loss": _text(loss),
                "loss_pct": _pct(pct),
                "limit_pct": _text(limits.daily_loss_pct),
                "day_start_equity": _text(start),
                "equity": _text(equity),
            }
            return Trip(BreakerLimit.DAILY_LOSS, market_ms, figures)
    if limits.max_drawdown_pct is not None and equity is not None and peak is not None and peak > ZERO:
        pct = (peak - equity) / peak * HUNDRED
        if equity < peak and pct >= limits.max_drawdown_pct:
            figures = {
                "drawdown_pct": _pct(pct),
                "limit_pct": _text(limits.max_drawdown_pct),
                "peak_equity": _text(peak),
                "equity": _text(equity),
            }
            return Trip(BreakerLimit.DRAWDOWN, market_ms, figures)
    if limits.max_losing_streak is not None and state.losing_streak >= limits.max_losing_streak:
        figures = {"losing_trades": str(state.losing_streak), "limit": str(limits.max_losing_streak)}
        return Trip(BreakerLimit.LOSING_STREAK, market_ms, figures)
    return None


def _max(*values: Decimal | None) -> Decimal | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _pct(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")), "f")


# -- stored form (JSON-ready, money as text) ---------------------------------------------------


def state_dict(state: BreakerState) -> dict[str, Any]:
    """``state`` as JSON-ready values (decimals as text)."""
    trip = state.tripped
    return {
        "day_start_ms": state.day_start_ms,
        "day_start_equity": _opt(state.day_start_equity),
        "equity": _opt(state.equity),
        "peak_equity": _opt(state.peak_equity),
        "losing_streak": state.losing_streak,
        "tripped": None
        if trip is None
        else {"limit": str(trip.limit), "at_ms": trip.at_ms, "figures": dict(trip.figures)},
    }


def state_from(data: Mapping[str, Any] | None) -> BreakerState:
    """The state ``state_dict`` wrote (an empty state for None)."""
    if not data:
        return BreakerState()
    trip = data.get("tripped")
    return BreakerState(
        day_start_ms=data.get("day_start_ms"),
        day_start_equity=_dec(data.get("day_start_equity")),
        equity=_dec(data.get("equity")),
        peak_equity=_dec(data.get("peak_equity")),
        losing_streak=int(data.get("losing_streak") or 0),
        tripped=None
        if not trip
        else Trip(BreakerLimit(trip["limit"]), int(trip["at_ms"]), dict(trip.get("figures") or {})),
    )


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else _text(value)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))
