"""Ledger facts for the decision core's tests: plain values with the fields the core reads."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.executor.core.finals import Market
from services.executor.core.state import ExitPolicy
from shared.parameters import StrategyParameters
from shared.trading.ledger import FillTotals
from shared.trading.sizing import SymbolFilters

D = Decimal
ENTRY_ID = "EB-BTCUSDT-1747699200000"
EXIT_ID = "XS-BTCUSDT-1747699200000"
FILTERS = SymbolFilters(
    tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"), max_qty=D("9000"), min_notional=D("5")
)
POLICY = ExitPolicy(query_delay_s=1.0, exit_retry_s=10.0)


@dataclass(frozen=True)
class PositionRow:
    id: int
    symbol: str
    status: str
    entry_client_order_id: str
    entry_price: Decimal | None
    quantity: Decimal
    quote_spent: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    entry_time_ms: int | None
    entry_candle_open_ms: int | None
    entry_market_time_ms: int | None
    exit_reason: str | None
    exit_candle_open_ms: int | None
    exit_market_time_ms: int | None
    dust_in: Decimal


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    purpose: str
    status: str
    executed_quantity: Decimal
    cumulative_quote: Decimal
    exchange_order_id: int | None
    signal_event_id: str
    updated_at_ms: int


def position(**changes: Any) -> PositionRow:
    """An OPEN position of 0.01 BTC bought at 100000 (levels 98000 / 104000), with ``changes``."""
    values: dict[str, Any] = {
        "id": 7,
        "symbol": "BTCUSDT",
        "status": "OPEN",
        "entry_client_order_id": ENTRY_ID,
        "entry_price": D("100000"),
        "quantity": D("0.01"),
        "quote_spent": D("1000"),
        "stop_loss": D("98000"),
        "take_profit": D("104000"),
        "entry_time_ms": 1_000,
        "entry_candle_open_ms": 1747699200000,
        "entry_market_time_ms": 1747699260000,
        "exit_reason": None,
        "exit_candle_open_ms": None,
        "exit_market_time_ms": None,
        "dust_in": D(0),
    }
    return PositionRow(**{**values, **changes})


def order(**changes: Any) -> OrderRow:
    """The FILLED entry order of that position, with ``changes``."""
    values: dict[str, Any] = {
        "client_order_id": ENTRY_ID,
        "purpose": "entry",
        "status": "FILLED",
        "executed_quantity": D("0.01"),
        "cumulative_quote": D("1000"),
        "exchange_order_id": 11,
        "signal_event_id": "signal-1",
        "updated_at_ms": 5_000,
    }
    return OrderRow(**{**values, **changes})


def fills(
    quantity: str, quote: str, commission_base: str = "0", commission_quote: str = "0", last: int | None = 2_000
) -> FillTotals:
    return FillTotals(D(quantity), D(quote), D(commission_base), D(commission_quote), last)


def market(now: float = 100.0, blocked_for_s: float = 0.0) -> Market:
    return Market(FILTERS, "BTC", StrategyParameters(), now, blocked_for_s, POLICY)
