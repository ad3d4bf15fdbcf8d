"""The executor's Prometheus families (served by ``shared.metrics``): a line or two at the
places the executor already tells the rest of the system something."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from shared import metrics
from shared.trading.vocabulary import BreakerLimit

ORDERS = Counter(
    "bot_orders_total", "Order state changes the ledger recorded, by purpose and status", ["purpose", "status"]
)
SENDS = Counter("bot_order_sends_total", "MARKET orders sent to the exchange (each attempt)", ["purpose"])
SKIPPED = Counter("bot_entries_skipped_total", "BUY signals not acted on, by reason", ["reason"])
ALERTS = Counter("bot_executor_alerts_total", "Executor alerts, by level and code", ["level", "code"])
FILLS = Counter("bot_fills_total", "Trades (fills) of the bot's orders recorded in the ledger", ["symbol", "side"])
OPEN_POSITIONS = Gauge("bot_open_positions", "1 while the symbol has an active position", ["symbol"])
PROFIT = Counter("bot_realized_profit_quote_total", "Realised profit of winning trades (quote, after fees)", ["symbol"])
LOSS = Counter("bot_realized_loss_quote_total", "Realised loss of losing trades (quote, after fees)", ["symbol"])
CLOSED = Counter("bot_positions_closed_total", "Positions closed, by exit reason", ["symbol", "reason"])
EQUITY = Gauge("bot_equity_quote", "Account equity: quote balance plus traded assets at their last price")
BREAKER_TRIPPED = Gauge("bot_breaker_tripped", "1 while the circuit breaker is tripped on this limit", ["limit"])
BREAKER_EQUITY = Gauge("bot_breaker_equity_quote", "The circuit breaker's realised equity")
SIGNAL_TO_ORDER = Histogram(
    "bot_signal_to_order_seconds",
    "From the append (Redis time) of the bus entry that decided the order (signal, tick, command) to its first send",
    ["purpose"],
    buckets=metrics.LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "bot_exchange_requests_total", "REST calls to the exchange, by endpoint and outcome", ["endpoint", "outcome"]
)
ERRORS = Counter("bot_exchange_errors_total", "Binance error answers, by endpoint and code", ["endpoint", "code"])
WEIGHT = Gauge("bot_exchange_weight_used_1m", "X-MBX-USED-WEIGHT-1M of the exchange's last answer")


def skipped_reason(message: str) -> str:
    """A bounded label from an ``entry_skipped`` message: its reason up to the first figure."""
    reason = message.rpartition("no order sent: ")[2].lower()
    cut = min((i for i, ch in enumerate(reason) if ch.isdigit() or ch in "(:"), default=len(reason))
    return reason[:cut].strip(" ,;=")[:48] or "other"


def alert(level: str, code: str, message: str) -> None:
    ALERTS.labels(level, code).inc()
    if code == "entry_skipped":
        SKIPPED.labels(skipped_reason(message)).inc()


def closed(symbol: str, profit: Decimal, reason: str) -> None:
    (PROFIT if profit >= 0 else LOSS).labels(symbol).inc(float(abs(profit)))
    CLOSED.labels(symbol, reason).inc()


def breaker(state: dict[str, Any] | None) -> None:
    """The breaker gauges from its stored state (``shared.trading.breaker.state_dict``)."""
    state = state or {}
    tripped = (state.get("tripped") or {}).get("limit")
    for limit in BreakerLimit:
        BREAKER_TRIPPED.labels(str(limit)).set(1 if tripped == str(limit) else 0)
    if state.get("equity") is not None:
        BREAKER_EQUITY.set(float(state["equity"]))


def sending(purpose: str, bus_entry_ms: int | None, first: bool) -> None:
    SENDS.labels(purpose).inc()
    if first and bus_entry_ms is not None:
        SIGNAL_TO_ORDER.labels(purpose).observe(max(0.0, time.time() - bus_entry_ms / 1000))


def answered(endpoint: str, outcome: str, response: Any, code: int | None = None) -> None:
    REQUESTS.labels(endpoint, outcome).inc()
    if code is not None:
        ERRORS.labels(endpoint, str(code)).inc()
    headers = getattr(response, "headers", None)
    used = headers.get("X-MBX-USED-WEIGHT-1M") if headers is not None else None
    if used is not None:
        WEIGHT.set(float(used))
