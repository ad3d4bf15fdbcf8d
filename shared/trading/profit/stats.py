"""The profit figures of a set of trades: realised and unrealised P&L, fees, win rate, profit
factor, expectancy, durations, drawdown of the realised equity, best and worst trade, dust."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from shared.trading.profit.records import ACTIVE, HUNDRED, ZERO, TradeRecord, TradeRef, bot_dust, closed_in_order


@dataclass(frozen=True)
class Figures:
    """The profit figures of a set of trades (one symbol, or all)."""

    trades: int = 0
    wins: int = 0
    losses: int = 0
    open_trades: int = 0
    realised_quote: Decimal = ZERO
    realised_pct: Decimal | None = None
    unrealised_quote: Decimal = ZERO
    fees_quote: Decimal = ZERO
    dust_quantity: Decimal | None = None  # one symbol only: base units do not add up across symbols
    dust_quote: Decimal = ZERO
    win_rate_pct: Decimal | None = None
    profit_factor: Decimal | None = None
    expectancy_quote: Decimal | None = None
    expectancy_pct: Decimal | None = None
    avg_duration_ms: int | None = None
    max_duration_ms: int | None = None
    max_drawdown_quote: Decimal = ZERO
    max_drawdown_pct: Decimal | None = None
    best_trade: TradeRef | None = None
    worst_trade: TradeRef | None = None
    gross_profit_quote: Decimal = ZERO
    gross_loss_quote: Decimal = ZERO
    starting_equity_quote: Decimal | None = None
    equity_quote: Decimal | None = None


@dataclass(frozen=True)
class Summary:
    total: Figures
    symbols: dict[str, Figures] = field(default_factory=dict)


@dataclass(frozen=True)
class Drawdown:
    quote: Decimal
    pct: Decimal | None


def realised_drawdown(profits: Sequence[Decimal], starting_equity: Decimal | None) -> Drawdown:
    """Largest fall of starting equity + cumulative realised P&L (one point per closed trade).

    The % is of the peak before the fall; without a starting equity only the quote figure exists.
    """
    base = starting_equity if starting_equity is not None else ZERO
    equity = peak = base
    worst = ZERO
    worst_pct: Decimal | None = ZERO if starting_equity is not None else None
    for profit in profits:
        equity += profit
        peak = max(peak, equity)
        fall = peak - equity
        worst = max(worst, fall)
        if starting_equity is not None and peak > ZERO:
            worst_pct = max(worst_pct or ZERO, fall / peak * HUNDRED)
    return Drawdown(worst, worst_pct)


def figures(
    trades: Sequence[TradeRecord],
    last_prices: Mapping[str, Decimal | None],
    starting_equity: Decimal | None = None,
    *,
    single_symbol: bool = False,
    with_equity: bool = True,
) -> Figures:
    """Profit figures of ``trades`` (open ones marked at ``last_prices`` by symbol).

    ``realised_pct`` and the drawdown % are of ``starting_equity`` (the capital the trades were
    made with; for one symbol of several: its contribution); without it, realised % is of the
    quote spent. ``with_equity`` False leaves the equity figures out (one symbol of several).
    """
    closed = closed_in_order(trades)
    profits = [t.profit_quote for t in closed]
    profits_q: list[Decimal] = [p for p in profits if p is not None]
    realised = sum(profits_q, ZERO)
    spent = sum((t.quote_spent for t in closed), ZERO)
    wins = sum(1 for p in profits_q if p > ZERO)
    gross_profit = sum((p for p in profits_q if p > ZERO), ZERO)
    gross_loss = -sum((p for p in profits_q if p < ZERO), ZERO)
    durations = [d for d in (t.duration_ms for t in closed) if d is not None]
    pcts = [p for p in (t.profit_pct for t in closed) if p is not None]
    active = [t for t in trades if t.status in ACTIVE]
    unrealised = sum((u for t in active if (u := t.unrealised_quote(last_prices.get(t.symbol))) is not None), ZERO)
    fees = sum((t.fees_quote for t in trades), ZERO)
    dust_quantity, dust_quote = _dust(trades, last_prices, single_symbol)
    drawdown = realised_drawdown(profits_q, starting_equity)
    best, worst = _best_and_worst(closed)
    count = len(closed)
    return Figures(
        trades=count,
        wins=wins,
        losses=count - wins,
        open_trades=len(active),
        realised_quote=realised,
        realised_pct=_realised_pct(realised, spent, starting_equity),
        unrealised_quote=unrealised,
        fees_quote=fees,
        dust_quantity=dust_quantity,
        dust_quote=dust_quote,
        win_rate_pct=Decimal(wins) / count * HUNDRED if count else None,
        profit_factor=gross_profit / gross_loss if gross_loss > ZERO else None,
        expectancy_quote=realised / count if count else None,
        expectancy_pct=sum(pcts, ZERO) / len(pcts) if pcts else None,
        avg_duration_ms=sum(durations) // len(durations) if durations else None,
        max_duration_ms=max(durations) if durations else None,
        max_drawdown_quote=drawdown.quote,
        max_drawdown_pct=drawdown.pct,
        best_trade=best,
        worst_trade=worst,
        gross_profit_quote=gross_profit,
        gross_loss_quote=gross_loss,
        starting_equity_quote=starting_equity if with_equity else None,
        equity_quote=None
        if starting_equity is None or not with_equity
        else starting_equity + realised + unrealised + dust_quote,
    )


def _dust(
    trades: Sequence[TradeRecord], last_prices: Mapping[str, Decimal | None], single_symbol: bool
) -> tuple[Decimal | None, Decimal]:
    """The bot's dust: its base quantity (one symbol only) and its value at the last prices."""
    by_symbol: dict[str, list[TradeRecord]] = {}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
    dust_quote = ZERO
    dust_quantity: Decimal | None = None
    for symbol, rows in by_symbol.items():
        dust = bot_dust(rows)
        price = last_prices.get(symbol)
        if price is not None:
            dust_quote += dust * price
        if single_symbol:
            dust_quantity = dust
    if single_symbol and dust_quantity is None:
        dust_quantity = ZERO
    return dust_quantity, dust_quote


def _realised_pct(realised: Decimal, spent: Decimal, starting_equity: Decimal | None) -> Decimal | None:
    """Realised P&L in % of the starting equity, else of the quote spent."""
    if starting_equity is not None and starting_equity > ZERO:
        return realised / starting_equity * HUNDRED
    return realised / spent * HUNDRED if spent > ZERO else None


def _best_and_worst(closed: Sequence[TradeRecord]) -> tuple[TradeRef | None, TradeRef | None]:
    refs = [TradeRef(t.id, t.profit_quote, t.profit_pct) for t in closed if t.profit_quote is not None]
    if not refs:
        return None, None
    return max(refs, key=lambda r: (r.profit_quote, -r.id)), min(refs, key=lambda r: (r.profit_quote, r.id))


def summarise(
    trades: Sequence[TradeRecord],
    last_prices: Mapping[str, Decimal | None],
    starting_equity: Decimal | None = None,
    symbols: Sequence[str] = (),
) -> Summary:
    """Figures of every symbol and of all together; ``symbols`` are listed even without trades."""
    by_symbol: dict[str, list[TradeRecord]] = {symbol: [] for symbol in symbols}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
    per_symbol = {
        s: figures(rows, last_prices, starting_equity, single_symbol=True, with_equity=len(by_symbol) == 1)
        for s, rows in sorted(by_symbol.items())
    }
    return Summary(figures(trades, last_prices, starting_equity, single_symbol=len(by_symbol) == 1), per_symbol)


def starting_equity_from(equity_now: Decimal, summary_total: Figures) -> Decimal:
    """The equity before the first trade, when only today's account equity is known."""
    return equity_now - summary_total.realised_quote - summary_total.unrealised_quote - summary_total.dust_quote
