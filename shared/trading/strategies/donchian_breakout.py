"""``donchian_breakout``: a Donchian channel breakout with an ATR volatility floor (turtle style), long only.

Entry on closed candle i: ``close[i] > highest high of the ENTRY_PERIOD candles before i``
(the channel of candle i-1) and ``ATR(ATR_PERIOD)[i] / close[i] >= MIN_ATR_RATIO`` (enough
movement to pay the fees). Exit signal: ``close[i] < lowest low of the EXIT_PERIOD candles
before i``. No signal while an indicator warms up.
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


class DonchianParameters(StrategyModel):
    ENTRY_PERIOD: int = parameter(
        20,
        label="Breakout channel",
        unit="candles",
        help="buy when the close breaks above the highest high of this many candles",
        ge=2,
        le=5000,
        live_safe=False,
    )
    EXIT_PERIOD: int = parameter(
        10,
        label="Exit channel",
        unit="candles",
        help="exit signal when the close falls below the lowest low of this many candles",
        ge=2,
        le=5000,
        live_safe=False,
    )
    ATR_PERIOD: int = parameter(
        14, label="ATR period", unit="candles", help="Wilder average true range period", ge=2, le=500, live_safe=False
    )
    MIN_ATR_RATIO: float = parameter(
        0.0005,
        label="Minimum ATR / close",
        unit="ratio",
        help="no entry while the ATR is below this share of the price (0.0005 = 0.05 %)",
        ge=0,
        lt=1,
    )

    @model_validator(mode="after")
    def _exit_not_longer(self) -> DonchianParameters:
        if self.EXIT_PERIOD > self.ENTRY_PERIOD:
            raise ValueError("EXIT_PERIOD must not be longer than ENTRY_PERIOD")
        return self


class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    description = (
        "Buy when the close breaks above the highest high of the previous 20 candles while the ATR is at "
        "least 0.05 % of the price; exit signal below the lowest low of the previous 10 candles."
    )
    Parameters = DonchianParameters
    entry_reason = "channel_breakout"
    exit_reason = "channel_breakdown"

    def indicators(self, params: DonchianParameters) -> tuple[IndicatorSpec, ...]:
        return (
            IndicatorSpec("channel_high", IndicatorKind.HIGHEST, params.ENTRY_PERIOD),
            IndicatorSpec("channel_low", IndicatorKind.LOWEST, params.EXIT_PERIOD),
            IndicatorSpec("atr", IndicatorKind.ATR, params.ATR_PERIOD),
        )

    def evaluate(self, previous: Row, current: Row, params: DonchianParameters) -> Evaluation:
        missing = self.missing(previous, current, params)
        if missing:
            return Evaluation.warming(missing)
        atr_ratio = current.atr / current.close
        entry = (
            Check("close_above_channel", current.close > previous.channel_high, current.close, previous.channel_high),
            Check("atr_ratio_above_minimum", atr_ratio >= params.MIN_ATR_RATIO, atr_ratio, params.MIN_ATR_RATIO),
        )
        exit_ = (
            Check("close_below_channel", current.close < previous.channel_low, current.close, previous.channel_low),
        )
        return Evaluation.of(entry, exit_)

    def signal_arrays(
        self,
        columns: Mapping[str, npt.NDArray[np.float64]],
        candles: Mapping[str, npt.NDArray[np.float64]],
        params: DonchianParameters,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        close = np.asarray(candles["close"], dtype=np.float64)
        n = len(close)
        entry, exit_ = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        if n < 2:
            return entry, exit_
        warm = known_on_both(columns, self.required(params), n)
        high, low = np.asarray(columns["channel_high"]), np.asarray(columns["channel_low"])
        now = close[1:]
        entry[1:] = warm & (now > high[:-1]) & (np.asarray(columns["atr"])[1:] / now >= params.MIN_ATR_RATIO)
        exit_[1:] = warm & (now < low[:-1])
        return entry, exit_
