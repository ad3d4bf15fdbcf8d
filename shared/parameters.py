"""The strategy and risk parameters, validated as one set.

Field names are the user's vocabulary from the original description (``EMA_SHORT_PERIOD``...),
so the same names appear in the environment, the API and the dashboard.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PERCENT_FIELDS = ("RISK_PER_TRADE", "STOP_LOSS_PERCENTAGE", "TAKE_PROFIT_PERCENTAGE")
PERIOD_FIELDS = ("EMA_SHORT_PERIOD", "EMA_LONG_PERIOD", "EMA_FILTER_PERIOD", "RSI_PERIOD", "VOLUME_AVG_PERIOD")


class StrategyParameters(BaseModel):
    """Indicator periods, entry filters and risk settings; defaults are the original ones.

    Fractions are plain ratios: ``STOP_LOSS_PERCENTAGE=0.02`` means 2 %.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    RISK_PER_TRADE: Decimal = Field(Decimal("0.01"), description="share of the allocated capital risked per trade (0-1)")
    CAPITAL_ALLOCATION: Decimal = Field(Decimal("1.0"), description="share of the free quote balance the bot may use (0-1]")
    STOP_LOSS_PERCENTAGE: Decimal = Field(Decimal("0.02"), description="stop-loss distance below entry (0-1)")
    TAKE_PROFIT_PERCENTAGE: Decimal = Field(Decimal("0.05"), description="take-profit distance above entry (0-1)")
    EMA_SHORT_PERIOD: int = Field(9, description="fast EMA period, candles")
    EMA_LONG_PERIOD: int = Field(21, description="slow EMA period, candles")
    EMA_FILTER_PERIOD: int = Field(50, description="trend-filter EMA period, candles")
    RSI_PERIOD: int = Field(14, description="RSI period, candles")
    RSI_OVERBOUGHT: float = Field(75.0, description="no entry at or above this RSI")
    RSI_OVERSOLD: float = Field(25.0, description="no indicator exit at or below this RSI")
    VOLUME_AVG_PERIOD: int = Field(20, description="volume moving-average period, candles")
    USE_EMA_FILTER: bool = Field(True, description="enter only when close > trend-filter EMA")
    USE_VOLUME_CONFIRMATION: bool = Field(False, description="enter only when volume > its average")

    @model_validator(mode="after")
    def _check_consistency(self) -> StrategyParameters:
        problems: list[tuple[str, str]] = []
        for name in PERIOD_FIELDS:
            if getattr(self, name) < 2:
                problems.append((name, "must be at least 2"))
        for name in PERCENT_FIELDS:
            value = getattr(self, name)
            if not Decimal(0) < value < Decimal(1):
                problems.append((name, "must be between 0 and 1 (exclusive), e.g. 0.02 for 2%"))
        if not Decimal(0) < self.CAPITAL_ALLOCATION <= Decimal(1):
            problems.append(("CAPITAL_ALLOCATION", "must be greater than 0 and at most 1"))
        if self.EMA_SHORT_PERIOD >= self.EMA_LONG_PERIOD:
            problems.append(("EMA_SHORT_PERIOD", "must be smaller than EMA_LONG_PERIOD"))
        if not 0 < self.RSI_OVERSOLD < self.RSI_OVERBOUGHT < 100:
            problems.append(("RSI_OVERSOLD", "must satisfy 0 < RSI_OVERSOLD < RSI_OVERBOUGHT < 100"))
        if self.STOP_LOSS_PERCENTAGE >= self.TAKE_PROFIT_PERCENTAGE:
            problems.append(("STOP_LOSS_PERCENTAGE", "must be smaller than TAKE_PROFIT_PERCENTAGE"))
        if problems:
            raise ParameterError(problems)
        return self

    def warmup_candles(self) -> int:
        """Closed candles needed before every enabled indicator has a value on two candles."""
        periods = [self.EMA_LONG_PERIOD, self.RSI_PERIOD + 1]
        if self.USE_EMA_FILTER:
            periods.append(self.EMA_FILTER_PERIOD)
        if self.USE_VOLUME_CONFIRMATION:
            periods.append(self.VOLUME_AVG_PERIOD)
        return max(periods) + 1


class ParameterError(ValueError):
    """One or more parameters are invalid; ``problems`` lists ``(field, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))


def validate_parameters(values: dict[str, Any], base: StrategyParameters | None = None) -> StrategyParameters:
    """Merge ``values`` over ``base`` and validate the whole set.

    Raises ``ParameterError`` naming every offending field; nothing is returned half-applied.
    """
    merged = (base or StrategyParameters()).model_dump()
    unknown = sorted(set(values) - set(merged))
    if unknown:
        raise ParameterError([(name, "unknown parameter") for name in unknown])
    merged.update(values)
    try:
        return StrategyParameters.model_validate(merged)
    except ParameterError:
        raise
    except ValidationError as e:
        problems = []
        for error in e.errors():
            if isinstance(error.get("ctx", {}).get("error"), ParameterError):
                problems.extend(error["ctx"]["error"].problems)
            else:
                field = ".".join(str(part) for part in error["loc"]) or "parameters"
                problems.append((field, error["msg"]))
        raise ParameterError(problems) from e
