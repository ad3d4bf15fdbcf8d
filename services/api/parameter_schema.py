"""The request body of ``PUT /api/parameters``: every parameter optional, each one bounded.

The bounds are what the schema can say: integers stay within 2 and the largest strategy
window (an indicator period cannot exceed the candles kept), fractions within 0 and 1,
RSI levels within 0 and 100, no infinities, no 64-bit overflows. Rules between fields
(short EMA below long EMA, periods within the configured window, ...) stay in
``shared.parameters`` and answer 422 naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, create_model
from redis.asyncio import Redis

from shared.control import current_set
from shared.parameter_sets import SymbolSet, set_model, validate_set
from shared.parameters import PERIOD_FIELDS, History, ParameterError, StrategyParameters
from shared.trading.strategies import DEFAULT_STRATEGY, Registry, builtin_registry

# STRATEGY_WINDOW_CANDLES is at most this (services/strategy/config.py).
MAX_WINDOW_CANDLES = 2_000
MAX_INT = 2**31 - 1
FRACTION_TEXT = r"^(0?\.[0-9]{1,18}|0(\.[0-9]{0,18})?|1(\.0{0,18})?)$"
Fraction = Annotated[
    Decimal,
    Field(ge=0, le=1, max_digits=30),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "string", "pattern": FRACTION_TEXT}]}
    ),
]


def _bounded(name: str, annotation: Any, description: str | None) -> tuple[Any, Any]:
    # Optional to send, never null: a missing field keeps its value.
    if annotation is int and annotation is not bool:
        low, high = (2, MAX_WINDOW_CANDLES) if name in PERIOD_FIELDS else (0, MAX_INT)
        return int, Field(None, ge=low, le=high, strict=True, description=description)
    if annotation is Decimal:
        return Fraction, Field(None, description=description)
    if annotation is float:
        return float, Field(None, ge=0, le=100, allow_inf_nan=False, description=description)
    return annotation, Field(None, description=description)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``#/$defs/<name>`` reference replaced by its definition (the body is
    embedded in the OpenAPI document, where the model's own ``$defs`` do not resolve)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(defs[ref.removeprefix("#/$defs/")], defs), **_inline(rest, defs)}
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    return {key: _inline(schema[key], defs) for key in ("properties", "additionalProperties") if key in schema}


_CHANGE_FIELDS: dict[str, Any] = {
    name: _bounded(name, info.annotation, info.description) for name, info in StrategyParameters.model_fields.items()
}
ParameterChange: type[BaseModel] = create_model(
    "ParameterChange", __config__=ConfigDict(extra="forbid"), **_CHANGE_FIELDS
)


BODY_SCHEMA = _body_schema(ParameterChange)


async def check_bounds(
    redis: Redis,
    values: dict[str, Any],
    default: StrategyParameters | SymbolSet,
    history: History | None = None,
    registry: Registry | None = None,
) -> None:
    """Raise ``ParameterError`` for every field outside the schema, plus the rules the others break.

    ``default`` is a symbol's start set (validated with its strategy's model) or the shared
    ema_cross_rsi set. The fields ``StrategyParameters`` declares are bounded as above (no
    infinities, no overflows); a strategy's own fields by its model. The rules are checked on
    the fields that are within bounds, merged over the set in force, so one answer names every
    field that needs fixing.
    """
    known = registry or builtin_registry()
    chosen = default if isinstance(default, SymbolSet) else SymbolSet("", DEFAULT_STRATEGY, 0, default)
    current = await current_set(redis, chosen, known)  # its strategy may have been switched since the start
    strategy = known.get(current.strategy)
    own = set_model(strategy).model_fields
    common = {name: value for name, value in values.items() if name in ParameterChange.model_fields and name in own}
    try:
        ParameterChange.model_validate(common)
        problems: list[tuple[str, str]] = []
    except ValidationError as e:
        problems = [(str(error["loc"][0]) if error["loc"] else "parameters", error["msg"]) for error in e.errors()]
    if not problems and set(common) == set(values):
        return
    refused = {field for field, _ in problems}
    within = {name: value for name, value in values.items() if name not in refused}
    try:
        validate_set(strategy, within, current.parameters, history)
    except ParameterError as rules:
        problems += [(field, message) for field, message in rules.problems if field not in refused]
    if problems:
        raise ParameterError(problems)
