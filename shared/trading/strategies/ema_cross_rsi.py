"""``ema_cross_rsi``: the original strategy (default), rules in ``shared.trading.rules``.

Its parameter model is ``StrategyParameters`` itself (periods, filters and the risk settings),
so the stored, audited and live-changeable parameter set is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.parameters import StrategyParameters
from shared.trading import rules
from shared.trading.incremental import IndicatorSpec
from shared.trading.indicators import ATR_PERIOD, compute_indicators
from shared.trading.rules import Evaluation
from shared.trading.strategies.base import Row, Strategy
from shared.trading.vocabulary import IndicatorKind


class EmaCrossRsi(Strategy):
    name = "ema_cross_rsi"
    description = (
        "Buy when the short EMA crosses above the long EMA with RSI below overbought (optionally above a "
        "trend EMA and on above-average volume); exit signal on the opposite cross with RSI above oversold."
    )
    Parameters = StrategyParameters
    entry_reason = "ema_cross_up"
    exit_reason = "ema_cross_down"

    def indicators(self, params: StrategyParameters) -> tuple[IndicatorSpec, ...]:
        return (
            IndicatorSpec("ema_short", IndicatorKind.EMA, params.EMA_SHORT_PERIOD),
            IndicatorSpec("ema_long", IndicatorKind.EMA, params.EMA_LONG_PERIOD),
            IndicatorSpec("ema_filter", IndicatorKind.EMA, params.EMA_FILTER_PERIOD),
            IndicatorSpec("rsi", IndicatorKind.RSI, params.RSI_PERIOD),
            IndicatorSpec("volume_avg", IndicatorKind.SMA, params.VOLUME_AVG_PERIOD, source="volume"),
            IndicatorSpec("atr", IndicatorKind.ATR, ATR_PERIOD),  # display only
        )

    def required(self, params: StrategyParameters) -> tuple[str, ...]:
        return rules.required_indicators(params)

    def warmup_candles(self, params: StrategyParameters) -> int:
        return params.warmup_candles()

    def evaluate(self, previous: Row, current: Row, params: StrategyParameters) -> Evaluation:
        return rules.evaluate(previous, current, params)  # type: ignore[arg-type]

    def signal_arrays(
        self,
        columns: Mapping[str, npt.NDArray[np.float64]],
        candles: Mapping[str, npt.NDArray[np.float64]],
        params: StrategyParameters,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        return rules.signal_arrays(columns, candles["close"], candles["volume"], params)

    def compute(self, frame: pd.DataFrame, params: StrategyParameters) -> pd.DataFrame:
        return compute_indicators(frame, params, with_atr=False)
