"""What the strategy publishes: signals and the decision record of every closed candle."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from shared.events.envelope import Payload
from shared.trading.vocabulary import Side


class Signal(Payload):
    """An entry (BUY) or exit (SELL) signal on the close of one candle."""

    TYPE = "signal"
    VERSION = 2
    SINCE: ClassVar[dict[str, int]] = {"strategy": 2}

    symbol: str
    side: Side
    reason: str
    price: Decimal
    interval: str
    candle_open_time_ms: int
    indicators: dict[str, float | None]
    parameters_version: int
    # The strategy that decided (its symbol's), and parameters_version is that symbol's set version.
    strategy: str = ""


class Condition(Payload):
    """One rule condition on one candle: passed or not, with the value and its threshold."""

    name: str
    passed: bool
    value: float | None = None
    threshold: float | None = None


class Decision(Payload):
    """Why the strategy did or did not signal on a closed candle."""

    TYPE = "decision"
    VERSION = 2
    SINCE: ClassVar[dict[str, int]] = {"strategy": 2}

    symbol: str
    interval: str
    candle_open_time_ms: int
    close: Decimal
    warm: bool
    entry: bool
    exit: bool
    conditions: list[Condition]
    indicators: dict[str, Any]
    parameters_version: int
    # Set by the executor when it did not act on the candle's signal: why ("skipped: entry pending").
    note: str = ""
    strategy: str = ""
