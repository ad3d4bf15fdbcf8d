"""An example user strategy: buy when the close crosses above its simple average, exit signal on
the cross back below. Copy this file, rename the class and ``name``, and change the rules.

Every ``*.py`` file of this folder (``STRATEGY_PATH``, default ``strategies/`` at the repo root;
files starting with ``_`` are skipped) is loaded at start by the strategy service, the executor,
the api and the backtester. A file that fails to load stops them at start with the file, the line
and the error. Run it with ``STRATEGY=sma_cross_example STRATEGY_PARAMS="PERIOD=50"``, or
backtest it with ``python -m backtest --strategy sma_cross_example --params "PERIOD=50" --data ...``.
"""

from __future__ import annotations

import numpy as np

from shared.trading.incremental import IndicatorSpec
from shared.trading.rules import Check, Evaluation
from shared.trading.strategies import Row, Strategy, StrategyModel, parameter
from shared.trading.strategies.base import known_on_both
from shared.trading.vocabulary import IndicatorKind


class SmaCrossParameters(StrategyModel):
    """The parameters, with what the dashboard form shows (label, unit, help) and their bounds."""

    PERIOD: int = parameter(
        30, label="Average period", unit="candles", help="simple average of the close", ge=2, le=1000, live_safe=False
    )  # a new period needs the indicators rebuilt


class SmaCrossExample(Strategy):
    name = "sma_cross_example"  # what STRATEGY= and --strategy select
    description = "Buy when the close crosses above its simple average; exit signal when it crosses back below."
    Parameters = SmaCrossParameters
    entry_reason = "close_crossed_above_average"  # the reason of the BUY signal
    exit_reason = "close_crossed_below_average"

    def indicators(self, params: SmaCrossParameters) -> tuple[IndicatorSpec, ...]:
        # Computed by pandas-ta in a backtest and incrementally (O(1) per candle) by the live service.
        return (IndicatorSpec("sma", IndicatorKind.SMA, params.PERIOD),)

    def evaluate(self, previous: Row, current: Row, params: SmaCrossParameters) -> Evaluation:
        # The live rules, one closed candle at a time; each Check is a line of the decision log.
        missing = self.missing(previous, current, params)
        if missing:
            return Evaluation.warming(missing)
        up = Check(
            "close_crossed_above_average",
            previous.close <= previous.sma and current.close > current.sma,
            current.close,
            current.sma,
            previous.close,
            previous.sma,
        )
        down = Check(
            "close_crossed_below_average",
            previous.close >= previous.sma and current.close < current.sma,
            current.close,
            current.sma,
            previous.close,
            previous.sma,
        )
        return Evaluation.of((up,), (down,))

    def signal_arrays(self, columns, candles, params: SmaCrossParameters):  # type: ignore[no-untyped-def]
        # The same rules over whole arrays for the backtester: must flag exactly what evaluate() does.
        close, sma = np.asarray(candles["close"], dtype=float), np.asarray(columns["sma"], dtype=float)
        entry, exit_ = np.zeros(len(close), dtype=bool), np.zeros(len(close), dtype=bool)
        if len(close) < 2:
            return entry, exit_
        warm = known_on_both(columns, self.required(params), len(close))
        entry[1:] = warm & (close[:-1] <= sma[:-1]) & (close[1:] > sma[1:])
        exit_[1:] = warm & (close[:-1] >= sma[:-1]) & (close[1:] < sma[1:])
        return entry, exit_
