"""``rsi2_reversion``: Connors' RSI(2) mean reversion, long only, with a trend filter.

Entry on closed candle i: ``close[i] > SMA(TREND_PERIOD)[i]`` (only buy dips in an up-trend) and
``RSI(RSI_PERIOD)[i] < ENTRY_RSI`` (a short, sharp dip). Exit signal: ``close[i] > SMA(EXIT_PERIOD)[i]``
(the price is back above its short average). No signal while an indicator warms up.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from pydantic import model_validator

from shared.trading.incremental import IndicatorSpec
from shared.trading.rules import Check, Evaluation
from shared.trading.strategies.base import (
    Row,
    Strategy,
    StrategyModel,
    known_on_both,
    parameter,
)
from shared.trading.vocabulary import IndicatorKind


class Rsi2Parameters(StrategyModel):
    RSI_PERIOD: int = parameter(
        2, label="RSI period", unit="candles", help="price changes the RSI averages", ge=2, le=50, live_safe=False
    )
    ENTRY_RSI: float = parameter(10.0, label="Entry RSI", help="buy when the RSI is below this", gt=0, lt=100)
    TREND_PERIOD: int = parameter(
        200,
        label="Trend average period",
        unit="candles",
        help="buy only while the close is above this simple average",
        ge=2,
        le=5000,
        live_safe=False,
    )
    EXIT_PERIOD: int = parameter(
        5,
        label="Exit average period",
        unit="candles",
        help="exit signal when the close rises above this simple average",
        ge=2,
        le=500,
        live_safe=False,
    )

    @model_validator(mode="after")
    def _exit_shorter_than_trend(self) -> Rsi2Parameters:
        if self.EXIT_PERIOD >= self.TREND_PERIOD:
            raise ValueError("EXIT_PERIOD must be smaller than TREND_PERIOD")
        return self


class Rsi2Reversion(Strategy):
    name = "rsi2_reversion"
    description = (
        "Connors RSI(2): buy a sharp dip (RSI(2) below 10) while the close is above its 200-candle "
        "average; exit signal when the close is back above its 5-candle average."
    )
    Parameters = Rsi2Parameters
    entry_reason = "rsi_dip_in_uptrend"
    exit_reason = "close_above_exit_average"

    def indicators(self, params: Rsi2Parameters) -> tuple[IndicatorSpec, ...]:
        return (
            IndicatorSpec("rsi", IndicatorKind.RSI, params.RSI_PERIOD),
            IndicatorSpec("trend_sma", IndicatorKind.SMA, params.TREND_PERIOD),
            IndicatorSpec("exit_sma", IndicatorKind.SMA, params.EXIT_PERIOD),
        )

    def evaluate(self, previous: Row, current: Row, params: Rsi2Parameters) -> Evaluation:
        missing = self.missing(previous, current, params)
        if missing:
            return Evaluation.warming(missing)
        entry = (
            Check("close_above_trend", current.close > current.trend_sma, current.close, current.trend_sma),
            Check("rsi_below_entry", current.rsi < params.ENTRY_RSI, current.rsi, params.ENTRY_RSI),
        )
        exit_ = (Check("close_above_exit_average", current.close > current.exit_sma, current.close, current.exit_sma),)
        return Evaluation.of(entry, exit_)

    def signal_arrays(
        self,
        columns: Mapping[str, npt.NDArray[np.float64]],
        candles: Mapping[str, npt.NDArray[np.float64]],
        params: Rsi2Parameters,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        close = np.asarray(candles["close"], dtype=np.float64)
        n = len(close)
        entry, exit_ = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        if n < 2:
            return entry, exit_
        warm = known_on_both(columns, self.required(params), n)
        now = close[1:]
        entry[1:] = (
            warm & (now > np.asarray(columns["trend_sma"])[1:]) & (np.asarray(columns["rsi"])[1:] < params.ENTRY_RSI)
        )
        exit_[1:] = warm & (now > np.asarray(columns["exit_sma"])[1:])
        return entry, exit_
