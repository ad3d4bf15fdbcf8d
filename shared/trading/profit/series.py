"""Profit over time: closed trades by calendar period, the equity curve, and the text form of
the figures for the api and the backtest JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.precision import Precision, pct
from shared.trading.profit.records import HUNDRED, ZERO, PeriodUnit, TradeRecord, TradeRef, closed_in_order
from shared.trading.profit.stats import Figures, Summary


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
    for trade in closed_in_order(trades):
        groups.setdefault(period_bounds(trade.exit_time_ms or 0, unit), []).append(trade)
    result = []
    for (start, end, label), rows in sorted(groups.items()):
        profits = [t.profit_quote or ZERO for t in rows]
        spent = sum((t.quote_spent for t in rows), ZERO)
        realised = sum(profits, ZERO)
        result.append(
            Period(
                start,
                end,
                label,
                len(rows),
                sum(1 for p in profits if p > ZERO),
                realised,
                sum((t.fees_quote for t in rows), ZERO),
                realised / spent * HUNDRED if spent > ZERO else None,
            )
        )
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
    for trade in closed_in_order(trades):
        profit = trade.profit_quote or ZERO
        realised += profit
        equity += profit
        peak = max(peak, equity)
        points.append(
            EquityPoint(
                trade.exit_time_ms or 0,
                trade.id,
                realised,
                equity,
                peak - equity,
                (peak - equity) / peak * HUNDRED if peak > ZERO else None,
            )
        )
    if now_ms is not None:
        last = equity + open_value_quote
        top = max(peak, last)
        points.append(
            EquityPoint(now_ms, None, realised, last, top - last, (top - last) / top * HUNDRED if top > ZERO else None)
        )
    return points


# -- text form (API and backtest JSON) ---------------------------------------------------------


def figures_dict(f: Figures, precision: Precision) -> dict[str, object]:
    """``Figures`` as JSON: quote money with the quote asset's decimals, % and ratios with 2."""
    q = precision.quote

    def ref(r: TradeRef | None) -> dict[str, object] | None:
        return None if r is None else {"id": r.id, "profit_quote": q(r.profit_quote), "profit_pct": pct(r.profit_pct)}

    return {
        "trades": f.trades,
        "wins": f.wins,
        "losses": f.losses,
        "open_trades": f.open_trades,
        "realised_quote": q(f.realised_quote),
        "realised_pct": pct(f.realised_pct),
        "unrealised_quote": q(f.unrealised_quote),
        "fees_quote": q(f.fees_quote),
        "dust_quote": q(f.dust_quote),
        "dust_quantity": precision.dust(f.dust_quantity),
        "win_rate_pct": pct(f.win_rate_pct),
        "profit_factor": pct(f.profit_factor),
        "expectancy_quote": q(f.expectancy_quote),
        "expectancy_pct": pct(f.expectancy_pct),
        "avg_duration_ms": f.avg_duration_ms,
        "max_duration_ms": f.max_duration_ms,
        "max_drawdown_quote": q(f.max_drawdown_quote),
        "max_drawdown_pct": pct(f.max_drawdown_pct),
        "best_trade": ref(f.best_trade),
        "worst_trade": ref(f.worst_trade),
        "gross_profit_quote": q(f.gross_profit_quote),
        "gross_loss_quote": q(f.gross_loss_quote),
        "starting_equity_quote": q(f.starting_equity_quote),
        "equity_quote": q(f.equity_quote),
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
    return {
        "start_ms": p.start_ms,
        "end_ms": p.end_ms,
        "label": p.label,
        "trades": p.trades,
        "wins": p.wins,
        "realised_quote": precision.quote(p.realised_quote),
        "fees_quote": precision.quote(p.fees_quote),
        "realised_pct": pct(p.realised_pct),
    }


def equity_point_dict(p: EquityPoint, precision: Precision) -> dict[str, object]:
    return {
        "time_ms": p.time_ms,
        "trade_id": p.trade_id,
        "realised_quote": precision.quote(p.realised_quote),
        "equity_quote": precision.quote(p.equity_quote),
        "drawdown_quote": precision.quote(p.drawdown_quote),
        "drawdown_pct": pct(p.drawdown_pct),
    }
