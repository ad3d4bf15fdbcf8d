"""The search space: the parameters the user names, with bounds from the strategy's model or given.

``--space "EMA_SHORT_PERIOD=5:30 STOP_LOSS_PERCENTAGE=0.005:0.05 USE_EMA_FILTER"``: a bare name
takes its bounds from the parameter model's JSON schema (``ge``/``le``/``gt``/``lt``, and its
step from ``multiple_of`` when the model declares one); a name
with ``LOW:HIGH`` (or ``LOW:HIGH:STEP``) takes those. Integers are searched as integers, a
boolean as one of both values, everything else as a float; the names of the risk set
(``StrategyParameters``: stop-loss, take-profit, sizing) can be searched with any strategy.

``--sampler grid`` tries every point of the same space once (``grid``): an integer every STEP
(default 1) from LOW to HIGH, a boolean both values, a float every STEP (a float without a step
has no grid, and the error names it).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from pydantic import BaseModel

from shared.parameters import ParameterError, StrategyParameters

# A float bound given as gt/lt moves inside by this much so the bound itself is never sampled.
OPEN_MARGIN = 1e-6


class Suggester(Protocol):
    """The part of ``optuna.Trial`` a space needs."""

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1) -> int: ...
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None) -> float: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Dimension:
    """One searched parameter; ``kind`` is ``int``, ``float`` or ``bool``."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    step: float | None = None

    def suggest(self, trial: Suggester) -> Any:
        if self.kind == "bool":
            return trial.suggest_categorical(self.name, [False, True])
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, step=self.step)

    def grid_values(self) -> list[Any]:
        """Every value ``suggest`` can give, in order; ``ParameterError`` for a float without a step."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if not self.step:
            raise ParameterError([(self.name, "a float needs a step for --sampler grid: NAME=LOW:HIGH:STEP")])
        # In decimal, so that 0.005 + 2 x 0.005 is 0.015 and not 0.015000000000000001.
        low, step = Decimal(repr(self.low)), Decimal(repr(self.step))
        count = math.floor((Decimal(repr(self.high)) - low) / step) + 1
        return [float(low + i * step) for i in range(count)]


def grid(dims: list[Dimension]) -> dict[str, list[Any]]:
    """The grid of ``dims`` by name (``optuna.samplers.GridSampler``'s search space); ``ParameterError``
    names every float without a step."""
    values: dict[str, list[Any]] = {}
    problems: list[tuple[str, str]] = []
    for d in dims:
        try:
            values[d.name] = d.grid_values()
        except ParameterError as e:
            problems.extend(e.problems)
    if problems:
        raise ParameterError(problems)
    return values


def grid_size(dims: list[Dimension]) -> int:
    """How many points ``grid(dims)`` has."""
    return math.prod(len(v) for v in grid(dims).values())


def grid_points(dims: list[Dimension]) -> list[dict[str, Any]]:
    """Every point of ``grid(dims)`` as parameter values (for checking and comparing)."""
    values = grid(dims)
    return [dict(zip(values, point, strict=True)) for point in itertools.product(*values.values())]


def field_kind(prop: dict[str, Any]) -> str:
    types = {prop.get("type")} | {option.get("type") for option in prop.get("anyOf", [])}
    if "boolean" in types:
        return "bool"
    if types == {"integer"}:
        return "int"
    return "float"


def schema_bounds(name: str, prop: dict[str, Any], kind: str) -> tuple[float, float]:
    low = prop.get("minimum", prop.get("exclusiveMinimum"))
    high = prop.get("maximum", prop.get("exclusiveMaximum"))
    if low is None or high is None:
        raise ParameterError([(name, "has no bounds in the parameter model: give them as NAME=LOW:HIGH")])
    shift = 1 if kind == "int" else OPEN_MARGIN * max(abs(float(high) - float(low)), 1.0)
    low = float(low) + (shift if "exclusiveMinimum" in prop and "minimum" not in prop else 0)
    high = float(high) - (shift if "exclusiveMaximum" in prop and "maximum" not in prop else 0)
    return low, high


def on_step(low: float, high: float, step: float | None) -> float:
    """``high`` lowered to the last whole step from ``low`` (what Optuna does, with a warning)."""
    if not step:
        return high
    first, size = Decimal(repr(low)), Decimal(repr(step))
    return float(first + math.floor((Decimal(repr(high)) - first) / size) * size)


def _properties(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    properties: dict[str, dict[str, Any]] = model.model_json_schema().get("properties", {})
    return properties


def parse_space(text: str, model: type[BaseModel]) -> list[Dimension]:
    """The dimensions of ``text`` over ``model`` and the risk set; ``ParameterError`` names each bad entry."""
    properties = {**_properties(StrategyParameters), **_properties(model)}
    dims: list[Dimension] = []
    problems: list[tuple[str, str]] = []
    for token in [t for t in re.split(r"[\s,]+", text.strip()) if t]:
        name, _, bounds = token.partition("=")
        name = name.upper()
        prop = properties.get(name)
        if prop is None:
            problems.append((name, "is not a parameter of this strategy or of the risk settings"))
            continue
        kind = field_kind(prop)
        try:
            if kind == "bool":
                dims.append(Dimension(name, kind))
                continue
            if bounds:
                parts = [float(p) for p in bounds.split(":")]
                if len(parts) not in (2, 3):
                    raise ValueError
                low, high, step = parts[0], parts[1], parts[2] if len(parts) == 3 else None
            else:  # the model's bounds, and its step when it declares one (multiple_of)
                (low, high), step = schema_bounds(name, prop, kind), prop.get("multipleOf")
        except ParameterError as e:
            problems.extend(e.problems)
            continue
        except ValueError:
            problems.append((name, f"bounds must be LOW:HIGH or LOW:HIGH:STEP, got {bounds!r}"))
            continue
        if not low < high:
            problems.append((name, f"the low bound {low:g} must be below the high bound {high:g}"))
            continue
        dims.append(Dimension(name, kind, low, on_step(low, high, step), step))
    if len({d.name for d in dims}) != len(dims):
        problems.append(("space", "a parameter is named twice"))
    if not dims and not problems:
        problems.append(("space", "name at least one parameter to search"))
    if problems:
        raise ParameterError(problems)
    return dims


def assignment_text(values: dict[str, Any]) -> str:
    """``{"A": 1, "B": True}`` -> ``"A=1 B=true"``: the ``--params`` form the backtester validates."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return f"{value:.10g}"
        return str(value)

    return " ".join(f"{name}={text(value)}" for name, value in values.items())
