"""Settings of a backtest run and the ``KEY=VALUE`` parameter string of the command line.

The parameter string mixes the strategy parameters (validated exactly as the live services do,
by ``validate_parameters``) with backtest-only settings: ``FEE`` (commission per side, a
fraction), ``BALANCE`` (starting quote balance) and the symbol filters ``TICK_SIZE``,
``STEP_SIZE``, ``MIN_QTY`` and ``MIN_NOTIONAL``. With ``--strategy`` other than ema_cross_rsi, the
names of that strategy's own parameter model go to it (``strategy_run_parameters``); the risk
settings (``RISK_PER_TRADE``, ``STOP_LOSS_PERCENTAGE``...) stay in the strategy parameter set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from shared.parameters import ParameterError, StrategyParameters, validate_parameters
from shared.trading.breaker import BreakerLimits
from shared.trading.sizing import SymbolFilters
from shared.trading.strategies import DEFAULT_STRATEGY, Strategy

DEFAULT_FEE = Decimal("0.001")
DEFAULT_BALANCE = Decimal("10000")


def _filters(symbol: str, tick: str, step: str, min_qty: str, min_notional: str = "5") -> SymbolFilters:
    return SymbolFilters(
        symbol=symbol,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(min_qty),
        max_qty=Decimal("9000000"),
        min_notional=Decimal(min_notional),
    )


# Binance spot values for the symbols of the public candle set; any other symbol gets BTCUSDT's
# values unless TICK_SIZE / STEP_SIZE / MIN_QTY / MIN_NOTIONAL say otherwise.
KNOWN_FILTERS = {
    "BTCUSDT": _filters("BTCUSDT", "0.01", "0.00001", "0.00001"),
    "ETHUSDT": _filters("ETHUSDT", "0.01", "0.0001", "0.0001"),
    "DOGEUSDT": _filters("DOGEUSDT", "0.00001", "1", "1"),
}


def default_filters(symbol: str | None) -> SymbolFilters:
    """Filters of ``symbol`` from ``KNOWN_FILTERS``, else BTCUSDT's tick 0.01, step 0.00001, minNotional 5."""
    known = KNOWN_FILTERS.get((symbol or "").upper())
    if known is not None:
        return known
    return replace(KNOWN_FILTERS["BTCUSDT"], symbol=symbol or "")


@dataclass(frozen=True)
class BacktestConfig:
    """Exchange and account settings of a run.

    ``fee`` is the commission per side as a fraction (0.001 = 0.1 %, Binance's default taker
    rate): on a buy it is taken from the base bought, on a sell from the quote received.
    ``balance`` is the starting quote balance. ``filters`` None means ``default_filters(symbol)``.
    """

    fee: Decimal = DEFAULT_FEE
    balance: Decimal = DEFAULT_BALANCE
    filters: SymbolFilters | None = None
    symbol: str | None = None
    interval: str | None = None
    # The account circuit breaker the executor applies (shared.trading.breaker); off by default.
    breaker: BreakerLimits = field(default_factory=BreakerLimits)

    def resolved_filters(self, symbol: str | None = None) -> SymbolFilters:
        """The filters in force for this run."""
        return self.filters if self.filters is not None else default_filters(self.symbol or symbol)


BACKTEST_KEYS = ("FEE", "BALANCE", "TICK_SIZE", "STEP_SIZE", "MIN_QTY", "MIN_NOTIONAL")
_FILTER_FIELDS = {
    "TICK_SIZE": "tick_size",
    "STEP_SIZE": "step_size",
    "MIN_QTY": "min_qty",
    "MIN_NOTIONAL": "min_notional",
}


def split_assignments(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """``"A=1 B=2"`` (spaces or commas between) -> ``({"A": "1", "B": "2"}, problems)``.

    Names are upper-cased; a token without ``=`` or a name given twice is a ``(token, reason)`` problem.
    """
    values: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        name, sep, value = token.partition("=")
        if not sep or not name or not value:
            problems.append((token, "expected NAME=VALUE"))
        elif name.upper() in values:
            problems.append((name.upper(), "given twice"))
        else:
            values[name.upper()] = value
    return values, problems


def _setting(name: str, text: str, *, positive: bool, below_one: bool = False) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ParameterError([(name, f"not a number: {text!r}")]) from None
    if not value.is_finite() or value < 0 or (positive and value == 0) or (below_one and value >= 1):
        bound = "between 0 (inclusive) and 1 (exclusive)" if below_one else "positive" if positive else "zero or more"
        raise ParameterError([(name, f"must be {bound}, got {text}")])
    return value


def parse_run_settings(
    text: str, *, symbol: str | None = None, balance: Decimal | None = None
) -> tuple[StrategyParameters, BacktestConfig]:
    """Parse a ``KEY=VALUE`` string into validated strategy parameters and a ``BacktestConfig``.

    ``balance`` is the ``--balance`` option; giving BALANCE in the string as well is an error.
    Raises ``ParameterError`` naming every bad parameter.
    """
    values, problems = split_assignments(text)
    settings = {name: values.pop(name) for name in BACKTEST_KEYS if name in values}
    parsed: dict[str, Decimal] = {}
    for name, raw in settings.items():
        try:
            parsed[name] = _setting(
                name, raw, positive=name in ("BALANCE", "TICK_SIZE", "STEP_SIZE"), below_one=name == "FEE"
            )
        except ParameterError as e:
            problems.extend(e.problems)
    if balance is not None and "BALANCE" in settings:
        problems.append(("BALANCE", "given both in the parameters and as --balance"))
    if balance is not None and balance <= 0:
        problems.append(("BALANCE", f"must be positive, got {balance}"))
    try:
        params = validate_parameters(values)
    except ParameterError as e:
        problems = e.problems + problems
    if problems:
        raise ParameterError(problems)
    filters = default_filters(symbol)
    changes: dict[str, Any] = {_FILTER_FIELDS[name]: parsed[name] for name in _FILTER_FIELDS if name in parsed}
    if "STEP_SIZE" in parsed and "MIN_QTY" not in parsed:
        changes["min_qty"] = parsed["STEP_SIZE"]
    config = BacktestConfig(
        fee=parsed.get("FEE", DEFAULT_FEE),
        balance=parsed.get("BALANCE", balance if balance is not None else DEFAULT_BALANCE),
        filters=replace(filters, **changes),
        symbol=symbol,
    )
    return params, config


def strategy_run_parameters(text: str, strategy: Strategy) -> tuple[str, Any]:
    """Take ``strategy``'s own parameters out of a ``KEY=VALUE`` string: ``(the rest, its parameters)``.

    For ema_cross_rsi the rest is the whole string and its parameters come from
    ``parse_run_settings``'s set (returned as None here). Raises ``ParameterError`` naming the field.
    """
    if strategy.name == DEFAULT_STRATEGY:
        return text, None
    values, problems = split_assignments(text)
    own = {name: values.pop(name) for name in list(values) if name in strategy.Parameters.model_fields}
    try:
        parameters = strategy.parameters(own)
    except ParameterError as e:
        problems = e.problems + problems
    if problems:
        raise ParameterError(problems)
    return " ".join(f"{name}={value}" for name, value in values.items()), parameters
