"""What a trial is scored on: the metrics of one backtest and the objectives built from them.

Every figure is computed from the equity at each UTC day's last close (as the backtester's
``sharpe_daily``), annualised over 365 days. A figure that is undefined (no trade, no variance,
no loss) scores as stated per objective, so that a study never sees NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from backtest.metrics import DAY_MS, DAYS_PER_YEAR

# A profit factor with no losing trade is capped here rather than infinite.
PROFIT_FACTOR_CAP = 100.0


class Objective(StrEnum):
    SHARPE = "sharpe"
    SORTINO = "sortino"
    CALMAR = "calmar"
    RETURN = "return"
    PROFIT_FACTOR = "profit_factor"


def day_ends(open_time: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Index of each UTC day's last candle."""
    day = open_time // DAY_MS
    ends: npt.NDArray[np.int64] = np.append(np.flatnonzero(np.diff(day)), len(day) - 1)
    return ends


def daily_returns(
    open_time: npt.NDArray[np.int64],
    equity: npt.NDArray[np.float64],
    starting_balance: float,
    ends: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.float64]:
    """Return of the equity from one UTC day's last close to the next (the first from the starting
    balance); ``ends`` is ``day_ends(open_time)`` when already known."""
    if len(equity) == 0:
        return np.empty(0)
    closes = equity[day_ends(open_time) if ends is None else ends]
    previous = np.concatenate(([starting_balance], closes[:-1]))
    returns: npt.NDArray[np.float64] = closes / previous - 1.0
    return returns


@dataclass(frozen=True)
class Metrics:
    """Scores of one run (ratios annualised; percentages as in the backtest summary)."""

    sharpe: float
    sortino: float
    calmar: float
    total_return_pct: float
    profit_factor: float
    max_drawdown_pct: float
    trades: int

    def value(self, objective: Objective) -> float:
        return {
            Objective.SHARPE: self.sharpe,
            Objective.SORTINO: self.sortino,
            Objective.CALMAR: self.calmar,
            Objective.RETURN: self.total_return_pct,
            Objective.PROFIT_FACTOR: self.profit_factor,
        }[objective]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def max_drawdown_pct(curve: npt.NDArray[np.float64], starting_balance: float) -> float:
    """Deepest fall below the running peak (negative percent, 0 when the curve never falls)."""
    if len(curve) == 0:
        return 0.0
    peak = np.maximum.accumulate(np.concatenate(([starting_balance], curve)))[1:]
    return float((curve / peak - 1.0).min() * 100.0)


def metrics_of(
    returns: npt.NDArray[np.float64],
    *,
    total_return_pct: float,
    max_drawdown_pct: float,
    gross_profit: float,
    gross_loss: float,
    trades: int,
) -> Metrics:
    """The scores of a run from its daily returns and trade totals; undefined ratios score 0."""
    scale = math.sqrt(DAYS_PER_YEAR)
    mean = float(returns.mean()) if len(returns) else 0.0
    spread = float(np.std(returns, ddof=1)) if len(returns) > 1 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if len(returns) else 0.0
    growth = 1.0 + total_return_pct / 100.0
    years = max(len(returns), 1) / DAYS_PER_YEAR
    annual = growth ** (1.0 / years) - 1.0 if growth > 0 else -1.0
    # No losing trade: capped if it won, 0 when nothing traded.
    factor = gross_profit / gross_loss if gross_loss > 0 else PROFIT_FACTOR_CAP if gross_profit > 0 else 0.0
    return Metrics(
        sharpe=mean / spread * scale if spread > 0 else 0.0,
        sortino=mean / downside * scale if downside > 0 else 0.0,
        calmar=annual / (-max_drawdown_pct / 100.0) if max_drawdown_pct < 0 else 0.0,
        total_return_pct=total_return_pct,
        profit_factor=min(factor, PROFIT_FACTOR_CAP),
        max_drawdown_pct=max_drawdown_pct,
        trades=trades,
    )


@dataclass(frozen=True)
class Constraints:
    """A trial is feasible with at least ``min_trades`` trades and a drawdown no deeper than ``max_drawdown_pct``."""

    min_trades: int = 0
    max_drawdown_pct: float | None = None

    def violations(self, metrics: Metrics) -> list[float]:
        """Optuna's convention: each value <= 0 when satisfied, its size when not."""
        limit = self.max_drawdown_pct
        return [
            float(self.min_trades - metrics.trades),
            0.0 if limit is None else float(-metrics.max_drawdown_pct - limit),
        ]
