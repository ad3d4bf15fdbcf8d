"""Event schemas: one envelope, one module per family. Importing this registers every type."""

from shared.events.account import Balances, ExecutionReport
from shared.events.control import BotCommand, LogRecord, ParametersChanged
from shared.events.envelope import PAYLOAD_TYPES, Envelope, Payload, make_event, now_ms
from shared.events.execution import BotStateChanged, ExecutorAlert, OrderUpdate, PositionClosed, PositionOpened, PositionSnapshot
from shared.events.market import Kline, MarketStatus, Ticker
from shared.events.signals import Condition, Decision, Signal

__all__ = [
    "PAYLOAD_TYPES",
    "Balances",
    "BotCommand",
    "BotStateChanged",
    "Condition",
    "Decision",
    "Envelope",
    "ExecutionReport",
    "ExecutorAlert",
    "Kline",
    "LogRecord",
    "MarketStatus",
    "OrderUpdate",
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
