"""Settings of a backtest run and the ``KEY=VALUE`` parameter string of the command line.

The parameter string mixes the strategy parameters (validated exactly as the live services do,
by ``validate_parameters``) with backtest-only settings: ``FEE`` (commission per side, a
fraction), ``BALANCE`` (starting quote balance), the symbol filters ``TICK_SIZE``,
``STEP_SIZE``, ``MIN_QTY`` and ``MIN_NOTIONAL``, and who sells at the levels: ``PROTECTION``
(``bot`` or ``exchange``, the executor's variable) with, for the OCO of ``exchange``,
``STOP_LEG`` (``STOP_LOSS`` or ``STOP_LOSS_LIMIT``), ``STOP_LIMIT_OFFSET`` and ``MAKER_FEE`` (also
the commission of a limit entry filled as maker, ``ENTRY_ORDER=limit_maker``); how a resting limit
entry fills along the simulator's walk: ``MAKER_FILL_QUOTE`` (quote per walk step, 0: all at
once) and ``WALK_SUBSTEPS`` (the walk's steps per segment).
With ``--strategy`` other than ema_cross_rsi, the names of that strategy's own parameter model
go to it (``strategy_run_parameters``); the risk settings (``RISK_PER_TRADE``,
``STOP_LOSS_PERCENTAGE``...) stay in the strategy parameter set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from shared.parameters import ParameterError, StrategyParameters, validate_parameters
from shared.trading.breaker import BreakerLimits
from shared.trading.protection import stop_limit_price
from shared.trading.sizing import SymbolFilters
from shared.trading.strategies import DEFAULT_STRATEGY, Strategy
from shared.trading.vocabulary import ProtectionMode

DEFAULT_FEE = Decimal("0.001")
DEFAULT_BALANCE = Decimal("10000")
# The executor's STOP_LIMIT_OFFSET default and bounds (services/executor/config.py).
DEFAULT_STOP_LIMIT_OFFSET = Decimal("0.005")
MAX_STOP_LIMIT_OFFSET = Decimal("0.5")


class StopLeg(StrEnum):
    """The order type of the OCO's stop-loss leg (``PROTECTION=exchange``). The executor places
    ``STOP_LOSS`` (a market sell once triggered) where the symbol lists it, as Binance's spot
    symbols and the simulator do, else ``STOP_LOSS_LIMIT`` (a limit sell at its limit)."""

    STOP_LOSS = "STOP_LOSS"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"


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
    ``protection`` says who sells at the levels: the bot's tick watch (``bot``) or the OCO resting
    on the exchange (``exchange``, ``backtest.oco``), whose ``LIMIT_MAKER`` leg, and a stop leg
    that rested at its limit, pay ``maker_fee`` (None: ``fee``, Binance's default maker rate is
    its taker rate and the simulator charges both alike); its stop leg is ``stop_leg``, a
    ``STOP_LOSS_LIMIT`` with its limit ``stop_limit_offset`` below the stop. A limit entry
    (``ENTRY_ORDER=limit_maker``) filled as maker pays ``maker_fee`` too; it fills along the
    simulator's walk of ``walk_substeps`` steps per segment, at most ``maker_fill_quote`` of
    quote per step (0: completely at the first step that reaches it; ``backtest.limit_entries``).
    """

    fee: Decimal = DEFAULT_FEE
    balance: Decimal = DEFAULT_BALANCE
    filters: SymbolFilters | None = None
    symbol: str | None = None
    interval: str | None = None
    # The account circuit breaker the executor applies (shared.trading.breaker); off by default.
    breaker: BreakerLimits = field(default_factory=BreakerLimits)
    protection: ProtectionMode = ProtectionMode.BOT
    maker_fee: Decimal | None = None
    stop_leg: StopLeg = StopLeg.STOP_LOSS
    stop_limit_offset: Decimal = DEFAULT_STOP_LIMIT_OFFSET
    maker_fill_quote: Decimal = Decimal(0)
    walk_substeps: int = 1

    @property
    def exit_maker_fee(self) -> Decimal:
        """The commission of a resting order's fill (the LIMIT_MAKER leg, a limit entry)."""
        return self.fee if self.maker_fee is None else self.maker_fee

    def stop_limit(self, stop: Decimal, tick_size: Decimal) -> Decimal:
        """The stop leg's limit price (0 for ``STOP_LOSS``, which sells at whatever price there is)."""
        if self.stop_leg is StopLeg.STOP_LOSS:
            return Decimal(0)
        return stop_limit_price(stop, self.stop_limit_offset, tick_size)

    def resolved_filters(self, symbol: str | None = None) -> SymbolFilters:
        """The filters in force for this run."""
        return self.filters if self.filters is not None else default_filters(self.symbol or symbol)


BACKTEST_KEYS = ("FEE", "BALANCE", "TICK_SIZE", "STEP_SIZE", "MIN_QTY", "MIN_NOTIONAL")
# Who sells at the levels, by the executor's variable names, and the OCO's settings.
PROTECTION_KEYS = ("PROTECTION", "STOP_LEG", "STOP_LIMIT_OFFSET", "MAKER_FEE", "MAKER_FILL_QUOTE", "WALK_SUBSTEPS")
# The circuit breaker's limits, by the executor's variable names (README "Circuit breaker").
BREAKER_KEYS = ("BREAKER_DAILY_LOSS_PCT", "BREAKER_MAX_DRAWDOWN_PCT", "BREAKER_MAX_LOSING_STREAK")
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
    limits = _breaker_limits({name: values.pop(name) for name in BREAKER_KEYS if name in values}, problems)
    protection = _protection({name: values.pop(name) for name in PROTECTION_KEYS if name in values}, problems)
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
        breaker=limits,
        **protection,
    )
    return params, config


def _protection(raw: dict[str, str], problems: list[tuple[str, str]]) -> dict[str, Any]:
    """``BacktestConfig`` fields of the ``PROTECTION_KEYS`` given; bad values go to ``problems``."""
    found: dict[str, Any] = {}
    choices = {"PROTECTION": ("protection", ProtectionMode), "STOP_LEG": ("stop_leg", StopLeg)}
    for name, (field_name, kind) in choices.items():
        if name in raw:
            text = raw[name].lower() if kind is ProtectionMode else raw[name].upper()
            if text in {member.value for member in kind}:
                found[field_name] = kind(text)
            else:
                problems.append((name, f"must be one of {', '.join(m.value for m in kind)}, got {raw[name]}"))
    if "MAKER_FEE" in raw:
        try:
            found["maker_fee"] = _setting("MAKER_FEE", raw["MAKER_FEE"], positive=False, below_one=True)
        except ParameterError as e:
            problems.extend(e.problems)
    if "MAKER_FILL_QUOTE" in raw:
        try:
            found["maker_fill_quote"] = _setting("MAKER_FILL_QUOTE", raw["MAKER_FILL_QUOTE"], positive=False)
        except ParameterError as e:
            problems.extend(e.problems)
    if "WALK_SUBSTEPS" in raw:
        text = raw["WALK_SUBSTEPS"]
        if text.isdigit() and 1 <= int(text) <= 1000:
            found["walk_substeps"] = int(text)
        else:
            problems.append(("WALK_SUBSTEPS", f"must be a whole number from 1 to 1000, got {text}"))
    if "STOP_LIMIT_OFFSET" in raw:
        try:
            offset = _setting("STOP_LIMIT_OFFSET", raw["STOP_LIMIT_OFFSET"], positive=True)
        except ParameterError as e:
            problems.extend(e.problems)
        else:
            if offset < MAX_STOP_LIMIT_OFFSET:
                found["stop_limit_offset"] = offset
            else:
                problems.append(("STOP_LIMIT_OFFSET", f"must be below {MAX_STOP_LIMIT_OFFSET}, got {offset}"))
    return found


def _breaker_limits(raw: dict[str, str], problems: list[tuple[str, str]]) -> BreakerLimits:
    """The breaker limits given (each off when absent); bad values are added to ``problems``."""
    found: dict[str, Any] = {}
    for name, text in raw.items():
        streak = name == "BREAKER_MAX_LOSING_STREAK"
        try:
            value: Any = int(text) if streak else Decimal(text)
        except (ValueError, InvalidOperation):
            problems.append((name, f"not {'a whole number' if streak else 'a number'}: {text!r}"))
            continue
        if streak and value < 1:
            problems.append((name, f"must be 1 or more, got {text}"))
        elif not streak and not (value.is_finite() and 0 < value < 100):
            problems.append((name, f"must be a % between 0 and 100 (exclusive), got {text}"))
        else:
            found[name] = value
    return BreakerLimits(
        found.get("BREAKER_DAILY_LOSS_PCT"),
        found.get("BREAKER_MAX_DRAWDOWN_PCT"),
        found.get("BREAKER_MAX_LOSING_STREAK"),
    )


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
