"""Summary statistics of a backtest: returns in percent, money in quote units."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from shared.trading.protection import ExitReason

if TYPE_CHECKING:
    from backtest.engine import Trade

DAY_MS = 86_400_000
DAYS_PER_YEAR = 365  # crypto trades every day


def iso_time(epoch_ms: int) -> str:
    """``2025-05-20T00:00:00Z`` for an epoch time in milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def drawdown_pct(equity: npt.NDArray[np.float64], starting_balance: float) -> npt.NDArray[np.float64]:
    """Drawdown at each candle close in percent (0 at a new high, negative below it)."""
    peak: npt.NDArray[np.float64] = np.maximum.accumulate(np.concatenate(([starting_balance], equity)))[1:]
    return (equity / peak - 1.0) * 100.0


def daily_sharpe(
    open_time: npt.NDArray[np.int64], equity: npt.NDArray[np.float64], starting_balance: float
) -> float | None:
    """Annualised Sharpe ratio (risk-free 0) of the daily returns of the equity at each UTC day's last close.

    None when there are fewer than two days or the returns do not vary.
    """
    if len(equity) == 0:
        return None
    day = open_time // DAY_MS
    last = np.append(np.flatnonzero(np.diff(day)), len(day) - 1)
    closes = equity[last]
    previous = np.concatenate(([starting_balance], closes[:-1]))
    returns = closes / previous - 1.0
    if len(returns) < 2:
        return None
    spread = float(np.std(returns, ddof=1))
    if not spread > 0:
        return None
    return float(np.mean(returns)) / spread * math.sqrt(DAYS_PER_YEAR)


class TradeMoney(NamedTuple):
    """Per-trade figures the statistics need, as arrays in trade order (quote units).

    ``spent`` is quantity x entry price (the fee is taken in base, so this is also what was
    bought); ``received`` the quote credited by the exit after its fee; ``held`` the candles from
    entry to exit; ``reasons`` counts the exit reasons.
    """

    spent: npt.NDArray[np.float64]
    received: npt.NDArray[np.float64]
    held: npt.NDArray[np.int64]
    reasons: Counter[ExitReason]


def summarise(
    *,
    trades: Sequence[Trade],
    money: TradeMoney,
    open_time: npt.NDArray[np.int64],
    close: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
    starting_balance: Decimal,
    fee: Decimal,
    skipped_entries: int,
    maker_fee: Decimal | None = None,
    entry_fees: npt.NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Trade and equity statistics (JSON-ready numbers; None where undefined).

    ``max_drawdown_pct`` is negative (peak-to-trough of the equity at candle closes);
    ``exposure_pct`` is the share of candles during which a position was held;
    ``buy_and_hold_return_pct`` buys at the first close and sells at the last one, paying
    ``fee`` on both sides. ``fees_paid`` counts ``maker_fee`` (default ``fee``) for the exits
    that were a resting order's fill (``Trade.maker_exit``), and ``entry_fees`` are the buys' own
    rates when they differ from ``fee`` (limit entries filled as maker), one per trade.
    """
    n = len(close)
    balance = float(starting_balance)
    fee_rate = float(fee)
    spent, received = money.spent, money.received
    pnl = received - spent
    returns = pnl / spent * 100.0 if len(spent) else pnl
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = -float(pnl[pnl < 0].sum())
    wins = int((pnl > 0).sum())
    held = int(money.held.sum())
    final_equity = float(equity[-1]) if n else balance
    keep = 1.0 - fee_rate
    reasons = money.reasons
    maker_rate = fee_rate if maker_fee is None else float(maker_fee)
    maker = np.fromiter((t.maker_exit for t in trades), np.bool_, len(trades))
    exit_rate = np.where(maker, maker_rate, fee_rate)
    buy_rates = fee_rate if entry_fees is None else entry_fees
    fees_paid = float((spent * buy_rates).sum() + (received / (1.0 - exit_rate) * exit_rate).sum())
    return {
        "start_time": int(open_time[0]) if n else None,
        "end_time": int(open_time[-1]) if n else None,
        "start": iso_time(int(open_time[0])) if n else None,
        "end": iso_time(int(open_time[-1])) if n else None,
        "candles": n,
        "starting_balance": balance,
        "final_equity": final_equity,
        "total_return_pct": (final_equity / balance - 1.0) * 100.0,
        "buy_and_hold_return_pct": (keep * keep * float(close[-1]) / float(close[0]) - 1.0) * 100.0 if n else None,
        "trades": len(trades),
        "wins": wins,
        "losses": len(trades) - wins,
        "win_rate_pct": wins / len(trades) * 100.0 if trades else None,
        "profit_factor": gross_profit / gross_loss if gross_loss > 0 else None,
        "avg_trade_return_pct": float(returns.mean()) if trades else None,
        "best_trade_pct": float(returns.max()) if trades else None,
        "worst_trade_pct": float(returns.min()) if trades else None,
        "max_drawdown_pct": float(drawdown_pct(equity, balance).min()) if n else 0.0,
        "exposure_pct": held / n * 100.0 if n else 0.0,
        "sharpe_daily": daily_sharpe(open_time, equity, balance),
        "fees_paid": fees_paid,
        "exit_reasons": {
            reason.value: reasons.get(reason, 0) for reason in ExitReason if reason is not ExitReason.MANUAL
        },
        "skipped_entries": skipped_entries,
    }
