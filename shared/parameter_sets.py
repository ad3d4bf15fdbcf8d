"""A symbol's parameter set: its strategy's own parameters plus the executor's (risk, SL/TP).

``ema_cross_rsi``'s model is ``StrategyParameters`` itself, which already holds both. Any other
strategy gets a model made once from its ``Parameters`` and the executor's fields of
``StrategyParameters`` (every field that is not an ema_cross_rsi rule field), so each symbol's
set is one validated, versioned record whatever its strategy, and the executor reads its sizing
and protection fields from it through ``risk_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError, create_model, model_validator

from shared.parameters import (
    LABELS,
    PERIOD_FIELDS,
    History,
    ParameterError,
    StrategyParameters,
    consistency_problems,
    validate_parameters,
)
from shared.trading.strategies.base import Strategy

# ema_cross_rsi's rule fields; every other field of StrategyParameters is the executor's.
EMA_RULE_FIELDS = (*PERIOD_FIELDS, "RSI_OVERBOUGHT", "RSI_OVERSOLD", "USE_EMA_FILTER", "USE_VOLUME_CONFIRMATION")
# What the form shows of StrategyParameters' fields, which predate ``parameter(...)``.
_UNITS = dict.fromkeys(PERIOD_FIELDS, "candles") | {
    "RISK_PER_TRADE": "fraction",
    "CAPITAL_ALLOCATION": "fraction",
    "STOP_LOSS_PERCENTAGE": "fraction",
    "TAKE_PROFIT_PERCENTAGE": "fraction",
    "STOP_ATR_PERIOD": "candles",
    "ATR_STOP_MULTIPLIER": "× ATR",
    "TRAILING_STOP_PERCENTAGE": "fraction",
    "TRAILING_STOP_ATR_MULTIPLIER": "× ATR",
    "TRAILING_ACTIVATION_PERCENTAGE": "fraction",
    "BREAK_EVEN_AT_PERCENTAGE": "fraction",
    "ENTRY_LIMIT_OFFSET_PERCENTAGE": "fraction",
    "ENTRY_LIMIT_TIMEOUT_CANDLES": "candles",
}
_BOUNDS: dict[str, dict[str, int]] = {name: {"minimum": 2} for name in PERIOD_FIELDS} | {
    "RISK_PER_TRADE": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "CAPITAL_ALLOCATION": {"exclusiveMinimum": 0, "maximum": 1},
    "STOP_LOSS_PERCENTAGE": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "TAKE_PROFIT_PERCENTAGE": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "STOP_ATR_PERIOD": {"minimum": 2},
    "ATR_STOP_MULTIPLIER": {"exclusiveMinimum": 0},
    "TRAILING_STOP_PERCENTAGE": {"minimum": 0, "exclusiveMaximum": 1},
    "TRAILING_STOP_ATR_MULTIPLIER": {"minimum": 0},
    "TRAILING_ACTIVATION_PERCENTAGE": {"minimum": 0, "exclusiveMaximum": 1},
    "BREAK_EVEN_AT_PERCENTAGE": {"minimum": 0, "exclusiveMaximum": 1},
    "ENTRY_LIMIT_OFFSET_PERCENTAGE": {"minimum": 0, "exclusiveMaximum": 1},
    "ENTRY_LIMIT_TIMEOUT_CANDLES": {"minimum": 1},
    "RSI_OVERBOUGHT": {"exclusiveMinimum": 0, "exclusiveMaximum": 100},
    "RSI_OVERSOLD": {"exclusiveMinimum": 0, "exclusiveMaximum": 100},
}


def executor_fields() -> tuple[str, ...]:
    """The fields every symbol's set carries for the executor (sizing, protection)."""
    return tuple(name for name in StrategyParameters.model_fields if name not in EMA_RULE_FIELDS)


def _risk_checks(self: BaseModel) -> BaseModel:
    problems = consistency_problems({name: getattr(self, name) for name in executor_fields()})
    if problems:
        raise ParameterError(problems)
    return self


_MODELS: dict[type[BaseModel], type[BaseModel]] = {}


def set_model(strategy: Strategy) -> type[BaseModel]:
    """The model of a symbol's set under ``strategy`` (a subclass of its ``Parameters``, so its
    rules read it as their own parameters)."""
    own = strategy.Parameters
    if issubclass(own, StrategyParameters):
        return own
    if own not in _MODELS:
        fields: dict[str, Any] = {
            name: (info.annotation, info)
            for name, info in StrategyParameters.model_fields.items()
            if name in executor_fields() and name not in own.model_fields
        }
        _MODELS[own] = create_model(
            f"{own.__name__}Set",
            __base__=own,
            __module__=own.__module__,
            __validators__={"_risk_checks": model_validator(mode="after")(_risk_checks)},  # type: ignore[dict-item]
            **fields,
        )
    return _MODELS[own]


def risk_of(parameters: BaseModel) -> StrategyParameters:
    """The executor's view of a set: its risk and protection fields (ema_cross_rsi's defaults for the rest)."""
    if isinstance(parameters, StrategyParameters):
        return parameters
    return StrategyParameters.model_validate({name: getattr(parameters, name) for name in executor_fields()})


@dataclass(frozen=True)
class SymbolSet:
    """One symbol's strategy, its parameter set and the set's version (0: the start values)."""

    symbol: str
    strategy: str
    version: int
    parameters: Any


def validate_set(
    strategy: Strategy, values: dict[str, Any], base: BaseModel | None = None, history: History | None = None
) -> Any:
    """Merge ``values`` over ``base`` and validate the whole with ``strategy``'s set model.

    Raises ``ParameterError`` naming every offending field (unknown names included, and a
    period longer than the candles the strategy can have); nothing is half-applied."""
    model = set_model(strategy)
    if model is StrategyParameters:
        return validate_parameters(values, base if isinstance(base, StrategyParameters) else None, history)
    merged = (base if isinstance(base, model) else model()).model_dump()
    problems = [(name, "unknown parameter") for name in sorted(set(values) - set(merged))]
    merged.update({name: value for name, value in values.items() if name in merged})
    try:
        parsed = model.model_validate(merged)
    except ParameterError as e:
        raise ParameterError(problems + e.problems) from None
    except ValidationError as e:
        for err in e.errors():
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, ParameterError):  # the executor's cross-field rules, already per field
                problems += cause.problems
            else:
                message = err["msg"].removeprefix("Value error, ")
                problems.append((".".join(str(p) for p in err["loc"]) or _named_field(message, model), message))
        raise ParameterError(problems) from None
    if history is not None:
        problems += warmup_problems(strategy, parsed, history)
    if problems:
        raise ParameterError(problems)
    return parsed


def _named_field(message: str, model: type[BaseModel]) -> str:
    """A cross-field check's field: the model's field its message starts with ("EXIT_PERIOD must be
    smaller than TREND_PERIOD" is EXIT_PERIOD's), else the whole set."""
    first = message.split(" ", 1)[0].strip(":,")
    return first if first in model.model_fields else "parameters"


def warmup_problems(strategy: Strategy, parameters: Any, history: History) -> list[tuple[str, str]]:
    """A warm-up longer than the candles the strategy ever has never ends: name the period causing it."""
    limit = min(history.window_candles, history.backfill_candles)
    need = strategy.warmup_candles(parameters)
    if need <= limit:
        return []
    periods = {spec.period for spec in strategy.indicators(parameters) if spec.first_index + 2 > limit}
    named = [
        name
        for name, info in type(parameters).model_fields.items()
        if info.annotation is int and getattr(parameters, name) in periods
    ]
    reason = (
        f"needs {need} closed candles, more than the {limit} of STRATEGY_WINDOW_CANDLES / WARMUP_CANDLES: "
        "the bot would stay warming up and never trade"
    )
    return [(name, reason) for name in named or ["parameters"]]


def set_schema(strategy: Strategy) -> dict[str, Any]:
    """The JSON schema of ``strategy``'s set: every property with its label (``title``), ``unit``,
    bounds, help (``description``), ``live_safe`` and whether it is the executor's (``group``)."""
    schema = set_model(strategy).model_json_schema()
    own = strategy.Parameters.model_fields
    for name, prop in schema.get("properties", {}).items():
        ref = str(prop.pop("$ref", "")).rsplit("/", 1)[-1]
        if ref:  # a vocabulary (STOP_MODE): its choices inline, for the form's select
            prop.update({key: schema["$defs"][ref][key] for key in ("type", "enum")})
        if (name in StrategyParameters.model_fields and name not in own) or own is StrategyParameters.model_fields:
            prop["title"] = LABELS.get(name, prop.get("title", name))
            prop.setdefault("unit", _UNITS.get(name, ""))
            prop.setdefault("live_safe", name not in PERIOD_FIELDS)
            for key, value in _BOUNDS.get(name, {}).items():
                prop.setdefault(key, value)
        prop["group"] = "risk" if name in executor_fields() else "strategy"
    return schema


def describe(strategy: Strategy) -> dict[str, Any]:
    """What ``GET /api/strategies`` lists of one strategy."""
    return {
        "name": strategy.name,
        "description": strategy.description,
        "parameters": set_schema(strategy),
        "overlays": [overlay.as_dict() for overlay in strategy.overlays(strategy.parameters())],
    }
