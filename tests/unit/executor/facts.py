"""Ledger facts for the decision core's tests: plain values with the fields the core reads."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
FILTERS = SymbolFilters(tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"), max_qty=D("9000"),
                        min_notional=D("5"))
POLICY = ExitPolicy(query_delay_s=1.0, exit_retry_s=10.0)


@dataclass(frozen=True)
class PositionRow:
    id: int = 7
    symbol: str = "BTCUSDT"
    status: str = "OPEN"
    entry_client_order_id: str = ENTRY_ID
    entry_price: Decimal | None = D("100000")
    quantity: Decimal = D("0.01")
    quote_spent: Decimal = D("1000")
    stop_loss: Decimal | None = D("98000")
    take_profit: Decimal | None = D("104000")
    entry_time_ms: int | None = 1_000
    entry_candle_open_ms: int | None = 1747699200000
    entry_market_time_ms: int | None = 1747699260000
    exit_reason: str | None = None
    exit_candle_open_ms: int | None = None
    exit_market_time_ms: int | None = None
    dust_in: Decimal = D(0)


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str = ENTRY_ID
    purpose: str = "entry"
    status: str = "FILLED"
    executed_quantity: Decimal = D("0.01")
    cumulative_quote: Decimal = D("1000")
    exchange_order_id: int | None = 11
    signal_event_id: str = "signal-1"
    updated_at_ms: int = 5_000


def position(**changes: Any) -> PositionRow:
    return replace(PositionRow(), **changes)


def order(**changes: Any) -> OrderRow:
    return replace(OrderRow(), **changes)


def fills(quantity: str, quote: str, commission_base: str = "0", commission_quote: str = "0", last: int | None = 2_000) -> FillTotals:
    return FillTotals(D(quantity), D(quote), D(commission_base), D(commission_quote), last)


def market(now: float = 100.0, blocked_for_s: float = 0.0) -> Market:
    return Market(FILTERS, "BTC", StrategyParameters(), now, blocked_for_s, POLICY)
