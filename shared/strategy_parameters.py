"""A strategy's parameters from ``KEY=VALUE`` text (``STRATEGY_PARAMS``, the backtester's ``--params``)."""

from __future__ import annotations

from typing import Any

from shared.parameters import ParameterError, StrategyParameters
from shared.trading.strategies import DEFAULT_STRATEGY
from shared.trading.strategies.base import Strategy


def split_pairs(text: str) -> dict[str, str]:
    """``"A=1 B=2"`` (spaces or commas between) -> ``{"A": "1", "B": "2"}``; ``ParameterError`` on a bad token."""
    values: dict[str, str] = {}
    problems = []
    for token in text.replace(",", " ").split():
        name, sep, value = token.partition("=")
        if not sep or not name or not value:
            problems.append((token, "expected NAME=VALUE"))
        else:
            values[name.upper()] = value
    if problems:
        raise ParameterError(problems)
    return values


def strategy_parameters(strategy: Strategy, text: str, base: StrategyParameters) -> Any:
    """ema_cross_rsi reads its parameters from ``base`` (the parameter set; ``text`` must be empty);
    another strategy validates ``text`` with its own model."""
    if strategy.name == DEFAULT_STRATEGY:
        if text.strip():
            reason = "ema_cross_rsi takes its parameters from EMA_SHORT_PERIOD... and the dashboard, not from here"
            raise ParameterError([("STRATEGY_PARAMS", reason)])
        return base
    return strategy.parameters(split_pairs(text))
