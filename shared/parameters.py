"""The strategy and risk parameters, validated as one set.

Field names are the user's vocabulary from the original description (``EMA_SHORT_PERIOD``...),
so the same names appear in the environment, the API and the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shared.trading.vocabulary import EntryOrder, StopMode

PERCENT_FIELDS = ("RISK_PER_TRADE", "STOP_LOSS_PERCENTAGE", "TAKE_PROFIT_PERCENTAGE")
PERIOD_FIELDS = (
    "EMA_SHORT_PERIOD",
    "EMA_LONG_PERIOD",
    "EMA_FILTER_PERIOD",
    "RSI_PERIOD",
    "VOLUME_AVG_PERIOD",
)
# Stop rules that are off at 0: a fraction in [0, 1).
OPTIONAL_PERCENT_FIELDS = ("TRAILING_STOP_PERCENTAGE", "BREAK_EVEN_AT_PERCENTAGE", "TRAILING_ACTIVATION_PERCENTAGE")

# The dashboard form's label of each field: errors name both, so the trader finds the input.
LABELS = {
    "RISK_PER_TRADE": "Risk per trade",
    "CAPITAL_ALLOCATION": "Capital allocation",
    "STOP_LOSS_PERCENTAGE": "Stop-loss distance",
    "TAKE_PROFIT_PERCENTAGE": "Take-profit distance",
    "STOP_MODE": "Stop-loss measured as",
    "STOP_ATR_PERIOD": "ATR period",
    "ATR_STOP_MULTIPLIER": "ATR stop multiplier",
    "TRAILING_STOP_PERCENTAGE": "Trailing stop distance",
    "TRAILING_STOP_ATR_MULTIPLIER": "ATR trailing distance",
    "TRAILING_ACTIVATION_PERCENTAGE": "Trailing starts after a rise of",
    "BREAK_EVEN_AT_PERCENTAGE": "Break-even after a rise of",
    "ENTRY_ORDER": "Entry order",
    "ENTRY_LIMIT_OFFSET_PERCENTAGE": "Limit entry below the best bid by",
    "ENTRY_LIMIT_TIMEOUT_CANDLES": "Limit entry rests for",
    "ENTRY_LIMIT_FALLBACK": "Buy at market when the limit entry times out unfilled",
    "EMA_SHORT_PERIOD": "EMA short period",
    "EMA_LONG_PERIOD": "EMA long period",
    "EMA_FILTER_PERIOD": "EMA filter period",
    "RSI_PERIOD": "RSI period",
    "VOLUME_AVG_PERIOD": "Volume average period",
    "RSI_OVERBOUGHT": "RSI overbought",
    "RSI_OVERSOLD": "RSI oversold",
    "USE_EMA_FILTER": "Use the EMA trend filter",
    "USE_VOLUME_CONFIRMATION": "Require volume confirmation",
}

# Valid but dangerous: a change that makes one of these true needs an explicit confirmation.
MAX_SAFE_RISK = Decimal("0.05")
MIN_SAFE_STOP_LOSS = Decimal("0.002")
MAX_SAFE_RISK_AT_FULL_ALLOCATION = Decimal("0.02")


class StrategyParameters(BaseModel):
    """Indicator periods, entry filters and risk settings; defaults are the original ones.

    Fractions are plain ratios: ``STOP_LOSS_PERCENTAGE=0.02`` means 2 %.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    RISK_PER_TRADE: Decimal = Field(
        Decimal("0.01"), description="share of the allocated capital risked per trade (0-1)"
    )
    CAPITAL_ALLOCATION: Decimal = Field(
        Decimal("1.0"), description="share of the free quote balance the bot may use (0-1]"
    )
    STOP_LOSS_PERCENTAGE: Decimal = Field(Decimal("0.02"), description="stop-loss distance below entry (0-1)")
    TAKE_PROFIT_PERCENTAGE: Decimal = Field(Decimal("0.05"), description="take-profit distance above entry (0-1)")
    STOP_MODE: StopMode = Field(
        StopMode.PERCENT, description="initial stop: STOP_LOSS_PERCENTAGE below entry, or ATR_STOP_MULTIPLIER x ATR"
    )
    STOP_ATR_PERIOD: int = Field(14, description="ATR period of the atr stop mode, candles")
    ATR_STOP_MULTIPLIER: Decimal = Field(Decimal(2), description="stop distance in ATRs below entry (> 0)")
    TRAILING_STOP_PERCENTAGE: Decimal = Field(
        Decimal(0), description="stop trails this fraction below the highest close (0 = off, [0-1))"
    )
    TRAILING_STOP_ATR_MULTIPLIER: Decimal = Field(
        Decimal(0), description="stop trails this many ATR(STOP_ATR_PERIOD) below each close (0 = off, >= 0)"
    )
    TRAILING_ACTIVATION_PERCENTAGE: Decimal = Field(
        Decimal(0), description="trailing starts once a close is this fraction above the entry (0 = at once, [0-1))"
    )
    BREAK_EVEN_AT_PERCENTAGE: Decimal = Field(
        Decimal(0), description="stop moves to the entry once a close is this fraction above it (0 = off, [0-1))"
    )
    ENTRY_ORDER: EntryOrder = Field(
        EntryOrder.MARKET, description="entry as a MARKET order, or a LIMIT_MAKER resting below the best bid"
    )
    ENTRY_LIMIT_OFFSET_PERCENTAGE: Decimal = Field(
        Decimal(0), description="limit_maker: the price this fraction below the best bid (0 = at the bid, [0-1))"
    )
    ENTRY_LIMIT_TIMEOUT_CANDLES: int = Field(
        1, description="limit_maker: candles it rests after the signal candle before it is cancelled (>= 1)"
    )
    ENTRY_LIMIT_FALLBACK: bool = Field(False, description="limit_maker: buy at market when it timed out unfilled")
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
        problems = consistency_problems(dict(self))
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


def consistency_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Range and cross-field rules over the fields of ``values`` that parsed (others are skipped)."""
    problems: list[tuple[str, str]] = []
    has = values.__contains__
    for name in PERIOD_FIELDS:
        if has(name) and values[name] < 2:
            problems.append((name, "must be at least 2"))
    for name in PERCENT_FIELDS:
        if has(name) and not Decimal(0) < values[name] < Decimal(1):
            problems.append((name, "must be between 0 and 1 (exclusive), e.g. 0.02 for 2%"))
    for name in OPTIONAL_PERCENT_FIELDS:
        if has(name) and not Decimal(0) <= values[name] < Decimal(1):
            problems.append((name, "must be at least 0 (off) and below 1, e.g. 0.01 for 1%"))
    if has("ENTRY_LIMIT_OFFSET_PERCENTAGE") and not Decimal(0) <= values["ENTRY_LIMIT_OFFSET_PERCENTAGE"] < Decimal(1):
        problems.append(("ENTRY_LIMIT_OFFSET_PERCENTAGE", "must be at least 0 (at the bid) and below 1, e.g. 0.001"))
    if has("ENTRY_LIMIT_TIMEOUT_CANDLES") and values["ENTRY_LIMIT_TIMEOUT_CANDLES"] < 1:
        problems.append(("ENTRY_LIMIT_TIMEOUT_CANDLES", "must be at least 1"))
    if has("STOP_ATR_PERIOD") and values["STOP_ATR_PERIOD"] < 2:
        problems.append(("STOP_ATR_PERIOD", "must be at least 2"))
    if has("ATR_STOP_MULTIPLIER") and not values["ATR_STOP_MULTIPLIER"] > 0:
        problems.append(("ATR_STOP_MULTIPLIER", "must be greater than 0"))
    if has("TRAILING_STOP_ATR_MULTIPLIER") and values["TRAILING_STOP_ATR_MULTIPLIER"] < 0:
        problems.append(("TRAILING_STOP_ATR_MULTIPLIER", "must be at least 0 (off)"))
    if has("CAPITAL_ALLOCATION") and not Decimal(0) < values["CAPITAL_ALLOCATION"] <= Decimal(1):
        problems.append(("CAPITAL_ALLOCATION", "must be greater than 0 and at most 1"))
    if has("EMA_SHORT_PERIOD") and has("EMA_LONG_PERIOD") and values["EMA_SHORT_PERIOD"] >= values["EMA_LONG_PERIOD"]:
        problems.append(("EMA_SHORT_PERIOD", "must be smaller than EMA_LONG_PERIOD"))
    if (
        has("RSI_OVERSOLD")
        and has("RSI_OVERBOUGHT")
        and not 0 < values["RSI_OVERSOLD"] < values["RSI_OVERBOUGHT"] < 100
    ):
        problems.append(("RSI_OVERSOLD", "must satisfy 0 < RSI_OVERSOLD < RSI_OVERBOUGHT < 100"))
    if (
        has("STOP_LOSS_PERCENTAGE")
        and has("TAKE_PROFIT_PERCENTAGE")
        and values["STOP_LOSS_PERCENTAGE"] >= values["TAKE_PROFIT_PERCENTAGE"]
    ):
        problems.append(("STOP_LOSS_PERCENTAGE", "must be smaller than TAKE_PROFIT_PERCENTAGE"))
    return problems


@dataclass(frozen=True)
class History:
    """How many closed candles the strategy can ever see: its window, and the back-fill."""

    window_candles: int  # STRATEGY_WINDOW_CANDLES
    backfill_candles: int  # WARMUP_CANDLES

    def problems(self, values: dict[str, Any]) -> list[tuple[str, str]]:
        """A period needing more candles than exist would keep the strategy warming up forever.

        ``values`` are the fields that parsed; a period whose filter is off needs nothing.
        """
        needs = {}
        for name, extra, switch in (
            ("EMA_LONG_PERIOD", 1, None),
            ("RSI_PERIOD", 2, None),
            ("EMA_FILTER_PERIOD", 1, "USE_EMA_FILTER"),
            ("VOLUME_AVG_PERIOD", 1, "USE_VOLUME_CONFIRMATION"),
        ):
            if name in values and (switch is None or values.get(switch, True)):
                needs[name] = values[name] + extra
        if self.window_candles <= self.backfill_candles:
            limit, source = (
                self.window_candles,
                f"the strategy window holds (STRATEGY_WINDOW_CANDLES={self.window_candles})",
            )
        else:
            limit, source = self.backfill_candles, f"the back-fill provides (WARMUP_CANDLES={self.backfill_candles})"
        return [
            (name, f"needs {need} closed candles, more than {source}: the bot would stay warming up and never trade")
            for name, need in needs.items()
            if need > limit
        ]


@dataclass(frozen=True)
class Danger:
    """A valid setting that can lose money fast; ``fields`` are the inputs involved."""

    fields: tuple[str, ...]
    message: str

    def text(self) -> str:
        return f"{', '.join(f'{LABELS[name]} ({name})' for name in self.fields)}: {self.message}"


def dangers(parameters: StrategyParameters) -> list[Danger]:
    """The dangerous-but-valid settings of ``parameters``."""
    found = []
    risk, stop = parameters.RISK_PER_TRADE, parameters.STOP_LOSS_PERCENTAGE
    if risk > MAX_SAFE_RISK:
        found.append(
            Danger(("RISK_PER_TRADE",), f"risking {_pct(risk)} of the capital per trade is above {_pct(MAX_SAFE_RISK)}")
        )
    if stop < MIN_SAFE_STOP_LOSS:
        found.append(
            Danger(
                ("STOP_LOSS_PERCENTAGE",),
                f"a stop-loss {_pct(stop)} below the entry is under {_pct(MIN_SAFE_STOP_LOSS)}: "
                "ordinary noise and fees stop you out",
            )
        )
    if parameters.CAPITAL_ALLOCATION == 1 and risk > MAX_SAFE_RISK_AT_FULL_ALLOCATION:
        found.append(
            Danger(
                ("CAPITAL_ALLOCATION", "RISK_PER_TRADE"),
                f"the whole balance allocated with {_pct(risk)} risk per trade "
                f"(above {_pct(MAX_SAFE_RISK_AT_FULL_ALLOCATION)})",
            )
        )
    return found


def unconfirmed_dangers(new: StrategyParameters, current: StrategyParameters) -> list[Danger]:
    """Dangers of ``new`` that involve a field this change sets to a new value."""
    changed = {name for name in StrategyParameters.model_fields if getattr(new, name) != getattr(current, name)}
    return [danger for danger in dangers(new) if changed.intersection(danger.fields)]


def _pct(value: Decimal) -> str:
    return f"{(value * 100).normalize():f} %"


class ParameterError(ValueError):
    """One or more parameters are invalid; ``problems`` lists ``(field, reason)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))


class DangerousParameters(ValueError):
    """A valid change that needs the trader's explicit confirmation."""

    def __init__(self, found: list[Danger]) -> None:
        self.dangers = found
        super().__init__("; ".join(danger.text() for danger in found))


_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _adapter(name: str) -> TypeAdapter[Any]:
    if name not in _ADAPTERS:
        annotation = StrategyParameters.model_fields[name].annotation
        if annotation is None:
            raise TypeError(f"parameter {name} has no type")
        _ADAPTERS[name] = TypeAdapter(annotation)
    return _ADAPTERS[name]


def validate_parameters(
    values: dict[str, Any], base: StrategyParameters | None = None, history: History | None = None
) -> StrategyParameters:
    """Merge ``values`` over ``base`` and validate the whole set (against ``history`` when given).

    Raises ``ParameterError`` naming every offending field at once (unknown names, malformed
    values, ranges, cross-field rules, periods longer than the history); nothing is returned
    half-applied.
    """
    merged = (base or StrategyParameters()).model_dump()
    problems = [(name, "unknown parameter") for name in sorted(set(values) - set(merged))]
    merged.update({name: value for name, value in values.items() if name in merged})
    parsed: dict[str, Any] = {}
    for name, value in merged.items():
        try:
            parsed[name] = _adapter(name).validate_python(value)
        except ValidationError as e:
            problems.append((name, e.errors()[0]["msg"]))
    problems += consistency_problems(parsed)
    if history is not None:
        problems += history.problems(parsed)
    if problems:
        raise ParameterError(problems)
    return StrategyParameters.model_validate(parsed)
