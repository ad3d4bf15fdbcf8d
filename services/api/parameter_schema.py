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

from shared.control import current_parameters
from shared.parameters import PERIOD_FIELDS, History, ParameterError, StrategyParameters, validate_parameters

# STRATEGY_WINDOW_CANDLES is at most this (services/strategy/config.py).
MAX_WINDOW_CANDLES = 20_000
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


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {key: schema[key] for key in ("properties", "additionalProperties") if key in schema}


_CHANGE_FIELDS: dict[str, Any] = {
    name: _bounded(name, info.annotation, info.description) for name, info in StrategyParameters.model_fields.items()
}
ParameterChange: type[BaseModel] = create_model(
    "ParameterChange", __config__=ConfigDict(extra="forbid"), **_CHANGE_FIELDS
)


BODY_SCHEMA = _body_schema(ParameterChange)


async def check_bounds(
    redis: Redis, values: dict[str, Any], default: StrategyParameters, history: History | None = None
) -> None:
    """Raise ``ParameterError`` for every field outside the schema, plus the rules the others break.

    The rules (``shared.parameters``) are checked on the fields that are within bounds, merged
    over the set in force, so one answer names every field that needs fixing.
    """
    try:
        ParameterChange.model_validate(values)
        return
    except ValidationError as e:
        problems = [(str(error["loc"][0]) if error["loc"] else "parameters", error["msg"]) for error in e.errors()]
    refused = {field for field, _ in problems}
    within = {name: value for name, value in values.items() if name not in refused}
    _, current = await current_parameters(redis, default)
    try:
        validate_parameters(within, current, history)
    except ParameterError as rules:
        problems += [(field, message) for field, message in rules.problems if field not in refused]
    raise ParameterError(problems)
