"""The profit read model: what the trader reads about results, computed once from ledger rows.

Pure functions over ``TradeRecord`` rows (one per position, built from the executor's ledger by
the api, or from the backtester's trades): realised and unrealised P&L, fees in the quote asset,
win rate, profit factor, expectancy, durations, drawdown of the realised equity, best and worst
trade, the bot's fee dust, the equity curve and the per-period breakdown. Money stays ``Decimal``
until it is formatted (``shared.precision``). Times are market time (epoch ms).

Realised P&L of a trade is what it did to the quote balance: ``quote_received - quote_spent``
(both after commissions). The base dust an exit leaves (below one step) is the bot's and is
sold with the next exit of the symbol, so it is realised there; until then it is valued at the
last price as ``dust_quote``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from shared.precision import Precision, pct
from shared.trading.vocabulary import PositionStatus

ZERO = Decimal(0)
HUNDRED = Decimal(100)
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
        return self.status == PositionStatus.CLOSED

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


def _closed_in_order(trades: Iterable[TradeRecord]) -> list[TradeRecord]:
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
    closed = _closed_in_order(trades)
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
    unrealised = sum((u for u in (t.unrealised_quote(last_prices.get(t.symbol)) for t in active) if u is not None), ZERO)
    fees = sum((t.fees_quote for t in trades), ZERO)
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
    drawdown = realised_drawdown(profits_q, starting_equity)
    refs = [TradeRef(t.id, t.profit_quote, t.profit_pct) for t in closed if t.profit_quote is not None]
    best = max(refs, key=lambda r: (r.profit_quote, -r.id)) if refs else None
    worst = min(refs, key=lambda r: (r.profit_quote, r.id)) if refs else None
    count = len(closed)
    return Figures(
        trades=count,
        wins=wins,
        losses=count - wins,
        open_trades=len(active),
        realised_quote=realised,
        realised_pct=(realised / starting_equity * HUNDRED if starting_equity is not None and starting_equity > ZERO
                      else realised / spent * HUNDRED if spent > ZERO else None),
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
        equity_quote=None if starting_equity is None or not with_equity else starting_equity + realised + unrealised + dust_quote,
    )


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
    per_symbol = {s: figures(rows, last_prices, starting_equity, single_symbol=True, with_equity=len(by_symbol) == 1)
                  for s, rows in sorted(by_symbol.items())}
    return Summary(figures(trades, last_prices, starting_equity, single_symbol=len(by_symbol) == 1), per_symbol)


def starting_equity_from(equity_now: Decimal, summary_total: Figures) -> Decimal:
    """The equity before the first trade, when only today's account equity is known."""
    return equity_now - summary_total.realised_quote - summary_total.unrealised_quote - summary_total.dust_quote


@dataclass(frozen=True)
class Period:
    start_ms: int
    end_ms: int
    label: str
    trades: int
    wins: int
    realised_quote: Decimal
    fees_quote: Decimal
    realised_pct: Decimal | None


def period_bounds(time_ms: int, unit: PeriodUnit) -> tuple[int, int, str]:
    """UTC start and end (exclusive, epoch ms) and label of the period containing ``time_ms``."""
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit is PeriodUnit.DAY:
        start, end, label = day, day + timedelta(days=1), day.strftime("%Y-%m-%d")
    elif unit is PeriodUnit.WEEK:
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        end, label = start + timedelta(days=7), f"{year}-W{week:02d}"
    else:
        start = day.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        label = start.strftime("%Y-%m")
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000), label


def periods(trades: Iterable[TradeRecord], unit: PeriodUnit) -> list[Period]:
    """Closed trades grouped by the UTC period of their exit (market time), oldest first."""
    groups: dict[tuple[int, int, str], list[TradeRecord]] = {}
    for trade in _closed_in_order(trades):
        groups.setdefault(period_bounds(trade.exit_time_ms or 0, unit), []).append(trade)
    result = []
    for (start, end, label), rows in sorted(groups.items()):
        profits = [t.profit_quote or ZERO for t in rows]
        spent = sum((t.quote_spent for t in rows), ZERO)
        realised = sum(profits, ZERO)
        result.append(Period(start, end, label, len(rows), sum(1 for p in profits if p > ZERO), realised,
                             sum((t.fees_quote for t in rows), ZERO), realised / spent * HUNDRED if spent > ZERO else None))
    return result


@dataclass(frozen=True)
class EquityPoint:
    time_ms: int
    trade_id: int | None
    realised_quote: Decimal
    equity_quote: Decimal
    drawdown_quote: Decimal
    drawdown_pct: Decimal | None


def equity_curve(
    trades: Sequence[TradeRecord],
    starting_equity: Decimal,
    *,
    now_ms: int | None = None,
    open_value_quote: Decimal = ZERO,
) -> list[EquityPoint]:
    """Starting equity + cumulative realised P&L after each closed trade, with its drawdown;
    then, at ``now_ms``, the open position and dust (``open_value_quote``) added."""
    points = []
    equity = peak = starting_equity
    realised = ZERO
    for trade in _closed_in_order(trades):
        profit = trade.profit_quote or ZERO
        realised += profit
        equity += profit
        peak = max(peak, equity)
        points.append(EquityPoint(trade.exit_time_ms or 0, trade.id, realised, equity, peak - equity,
                                  (peak - equity) / peak * HUNDRED if peak > ZERO else None))
    if now_ms is not None:
        last = equity + open_value_quote
        top = max(peak, last)
        points.append(EquityPoint(now_ms, None, realised, last, top - last,
                                  (top - last) / top * HUNDRED if top > ZERO else None))
    return points


# -- text form (API and backtest JSON) ---------------------------------------------------------


def figures_dict(f: Figures, precision: Precision) -> dict[str, object]:
    """``Figures`` as JSON: quote money with the quote asset's decimals, % and ratios with 2."""
    q = precision.quote

    def ref(r: TradeRef | None) -> dict[str, object] | None:
        return None if r is None else {"id": r.id, "profit_quote": q(r.profit_quote), "profit_pct": pct(r.profit_pct)}

    return {
        "trades": f.trades, "wins": f.wins, "losses": f.losses, "open_trades": f.open_trades,
        "realised_quote": q(f.realised_quote), "realised_pct": pct(f.realised_pct),
        "unrealised_quote": q(f.unrealised_quote), "fees_quote": q(f.fees_quote),
        "dust_quote": q(f.dust_quote), "dust_quantity": precision.dust(f.dust_quantity),
        "win_rate_pct": pct(f.win_rate_pct), "profit_factor": pct(f.profit_factor),
        "expectancy_quote": q(f.expectancy_quote), "expectancy_pct": pct(f.expectancy_pct),
        "avg_duration_ms": f.avg_duration_ms, "max_duration_ms": f.max_duration_ms,
        "max_drawdown_quote": q(f.max_drawdown_quote), "max_drawdown_pct": pct(f.max_drawdown_pct),
        "best_trade": ref(f.best_trade), "worst_trade": ref(f.worst_trade),
        "gross_profit_quote": q(f.gross_profit_quote), "gross_loss_quote": q(f.gross_loss_quote),
        "starting_equity_quote": q(f.starting_equity_quote), "equity_quote": q(f.equity_quote),
    }


def summary_dict(summary: Summary, precisions: Mapping[str, Precision], quote_asset: str) -> dict[str, object]:
    """``Summary`` as JSON (``{"quote_asset","total","symbols"}``)."""
    fallback = Precision("", "", quote_asset)
    total_precision = next(iter(precisions.values()), fallback) if len(precisions) == 1 else fallback
    return {
        "quote_asset": quote_asset,
        "total": figures_dict(summary.total, total_precision),
        "symbols": {s: figures_dict(f, precisions.get(s, fallback)) for s, f in summary.symbols.items()},
    }


def period_dict(p: Period, precision: Precision) -> dict[str, object]:
    return {"start_ms": p.start_ms, "end_ms": p.end_ms, "label": p.label, "trades": p.trades, "wins": p.wins,
            "realised_quote": precision.quote(p.realised_quote), "fees_quote": precision.quote(p.fees_quote),
            "realised_pct": pct(p.realised_pct)}


def equity_point_dict(p: EquityPoint, precision: Precision) -> dict[str, object]:
    return {"time_ms": p.time_ms, "trade_id": p.trade_id, "realised_quote": precision.quote(p.realised_quote),
            "equity_quote": precision.quote(p.equity_quote), "drawdown_quote": precision.quote(p.drawdown_quote),
            "drawdown_pct": pct(p.drawdown_pct)}
