"""Event schemas: one envelope, one module per family. Importing this registers every type."""

from shared.events.account import Balances, ExecutionReport
from shared.events.control import BotCommand, Command, CommandOutcome, LogRecord, Outcome, ParametersChanged
from shared.events.envelope import PAYLOAD_TYPES, Envelope, Payload, make_event, now_ms
from shared.events.execution import (
    STATE_MEANINGS,
    BotStateChanged,
    ExecutorAlert,
    OrderUpdate,
    PositionClosed,
    PositionOpened,
    PositionSnapshot,
)
from shared.events.market import Kline, MarketStatus, Ticker
from shared.events.signals import Condition, Decision, Signal
from shared.trading.vocabulary import BotState

__all__ = [
    "PAYLOAD_TYPES",
    "STATE_MEANINGS",
    "Balances",
    "BotCommand",
    "BotState",
    "BotStateChanged",
    "Command",
    "CommandOutcome",
    "Condition",
    "Decision",
    "Envelope",
    "ExecutionReport",
    "ExecutorAlert",
    "Kline",
    "LogRecord",
    "MarketStatus",
    "OrderUpdate",
    "Outcome",
    "ParametersChanged",
    "Payload",
    "PositionClosed",
    "PositionOpened",
    "PositionSnapshot",
    "Signal",
    "Ticker",
    "make_event",
    "now_ms",
]
