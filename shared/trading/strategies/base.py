"""What a strategy is: a name, a parameter model, the indicators it needs, and its rules twice
(one candle at a time for the live service, whole arrays for the backtester).

A strategy is long-only spot: it proposes entries and, optionally, exit signals; the stop-loss
and take-profit stay the executor's (``shared.trading.protection``). ``evaluate`` explains every
condition it checked (``rules.Check``: name, value, threshold) so the decision log reads the same
for every strategy; ``signal_arrays`` must flag exactly the candles ``evaluate`` would (the tests
run both on every candle of the shared data).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.parameters import ParameterError
from shared.trading.incremental import IndicatorSpec
from shared.trading.indicators import vectorised
from shared.trading.rules import Evaluation
from shared.trading.vocabulary import IndicatorKind, OverlayPane

CANDLE_COLUMNS = ("open", "high", "low", "close", "volume")


def parameter(default: Any, *, label: str, help: str, unit: str = "", live_safe: bool = True, **bounds: Any) -> Any:
    """A parameter field: ``label``/``help``/``unit`` for the form, ``live_safe`` False when a change
    needs the indicators rebuilt or a restart; ``bounds`` are pydantic's (``ge``, ``lt``...)."""
    return Field(
        default, title=label, description=help, json_schema_extra={"unit": unit, "live_safe": live_safe}, **bounds
    )


class StrategyModel(BaseModel):
    """Base of a strategy's parameter model: frozen, unknown names refused, defaults checked against their bounds."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Row:
    """One closed candle and the strategy's indicator values on it; ``row.rsi`` reads ``values["rsi"]``."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    values: Mapping[str, float] = field(default_factory=dict)

    def __getattr__(self, name: str) -> float:
        try:
            return float(self.__dict__["values"][name])
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class Overlay:
    """One indicator line the chart draws: its column, its label, and on which pane."""

    column: str
    label: str
    pane: OverlayPane = OverlayPane.PRICE

    def as_dict(self) -> dict[str, str]:
        return {"column": self.column, "label": self.label, "pane": self.pane.value}


# What the chart draws of each indicator kind by default: lines on the price, RSI in its own pane, ATR not at all.
_DEFAULT_PANES = {
    IndicatorKind.EMA: OverlayPane.PRICE,
    IndicatorKind.SMA: OverlayPane.PRICE,
    IndicatorKind.HIGHEST: OverlayPane.PRICE,
    IndicatorKind.LOWEST: OverlayPane.PRICE,
    IndicatorKind.RSI: OverlayPane.OSCILLATOR,
}

_LABELS = {
    IndicatorKind.EMA: "EMA",
    IndicatorKind.SMA: "SMA",
    IndicatorKind.HIGHEST: "High",
    IndicatorKind.LOWEST: "Low",
    IndicatorKind.RSI: "RSI",
}


class Strategy(ABC):
    """Subclass it, set the class attributes and implement the three methods; the parameters
    argument of each method is an instance of ``Parameters``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Parameters: ClassVar[type[BaseModel]]
    entry_reason: ClassVar[str] = "entry"
    exit_reason: ClassVar[str] = "exit"

    @abstractmethod
    def indicators(self, params: Any) -> tuple[IndicatorSpec, ...]:
        """The indicator columns ``evaluate`` and ``signal_arrays`` read."""

    def required(self, params: Any) -> tuple[str, ...]:
        """Columns that must be known on both candles before any signal (default: all)."""
        return tuple(spec.name for spec in self.indicators(params))

    def warmup_candles(self, params: Any) -> int:
        """Closed candles before every required indicator has a value on two candles."""
        needed = {spec.name: spec.first_index for spec in self.indicators(params)}
        return max((needed[name] for name in self.required(params)), default=0) + 2

    def overlays(self, params: Any) -> tuple[Overlay, ...]:
        """The indicator lines the chart draws (default: each price-source indicator on the price
        pane, the RSI on its own pane; volume and ATR columns are not drawn)."""
        return tuple(
            Overlay(spec.name, f"{_LABELS[spec.kind]} {spec.period}", _DEFAULT_PANES[spec.kind])
            for spec in self.indicators(params)
            if spec.kind in _DEFAULT_PANES and spec.source == "close"
        )

    def missing(self, previous: Row, current: Row, params: Any) -> tuple[str, ...]:
        """Required columns still NaN on either candle (warm-up)."""
        return tuple(
            name
            for name in self.required(params)
            if math.isnan(previous.values[name]) or math.isnan(current.values[name])
        )

    @abstractmethod
    def evaluate(self, previous: Row, current: Row, params: Any) -> Evaluation:
        """The decision on closed candle ``current`` (``previous`` is the candle before it)."""

    @abstractmethod
    def signal_arrays(
        self,
        columns: Mapping[str, npt.NDArray[np.float64]],
        candles: Mapping[str, npt.NDArray[np.float64]],
        params: Any,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Entry and exit flags of every candle (candle 0 never signals), as ``evaluate`` decides them."""

    def compute(self, frame: pd.DataFrame, params: Any) -> pd.DataFrame:
        """The indicator columns over a candle frame (vectorised, the backtester's path)."""
        return vectorised(frame, self.indicators(params))

    def parameters(self, values: Mapping[str, Any] | None = None) -> Any:
        """Validate ``values`` (defaults for the rest); ``ParameterError`` names every bad field."""
        try:
            return self.Parameters.model_validate(dict(values or {}))
        except ParameterError:
            raise
        except ValidationError as e:
            raise ParameterError(
                [
                    (".".join(str(p) for p in err["loc"]) or "parameters", err["msg"].removeprefix("Value error, "))
                    for err in e.errors()
                ]
            ) from None

    def schema(self) -> dict[str, Any]:
        """Name, description and the JSON schema of the parameter model (for an API or a form)."""
        return {"name": self.name, "description": self.description, "parameters": self.Parameters.model_json_schema()}


def warm_pair(previous: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Helper for ``signal_arrays``: True where both are known."""
    known: npt.NDArray[np.bool_] = ~np.isnan(previous) & ~np.isnan(current)
    return known


def known_on_both(
    columns: Mapping[str, npt.NDArray[np.float64]], names: tuple[str, ...], n: int
) -> npt.NDArray[np.bool_]:
    """Length ``n - 1`` mask: every named column known on candle i and i-1 (for i >= 1)."""
    known = np.ones(n, dtype=bool)
    for name in names:
        known &= ~np.isnan(np.asarray(columns[name], dtype=np.float64))
    both: npt.NDArray[np.bool_] = known[1:] & known[:-1]
    return both
