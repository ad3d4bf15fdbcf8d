"""The narrow interfaces the executor's shell talks through: the exchange's account and order
endpoints, and the sink of what the executor tells the rest of the system.

``services.executor.exchange.Exchange`` and ``services.executor.notify.Notifier`` are the real
ones; component tests put a scripted exchange in their place.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from services.executor.core.guard import OcoOrder
from services.executor.exchange import SymbolInfo
from shared.events import Outcome, Payload, Signal
from shared.store.models import Position


class ExchangePort(Protocol):
    """What the executor asks of the exchange; errors are ``services.executor.errors`` classes."""

    @property
    def blocked_for_s(self) -> float:
        """Seconds left before the next request may be made (0 when free)."""
        ...

    async def symbol_info(self, symbol: str, refresh: bool = False) -> SymbolInfo: ...

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]: ...

    async def recent_balances(self) -> dict[str, tuple[Decimal, Decimal]]: ...

    async def free_balance(self, asset: str) -> Decimal: ...

    async def query_order(self, symbol: str, client_order_id: str) -> dict[str, Any]: ...

    async def order_trades(self, symbol: str, exchange_order_id: int) -> list[dict[str, Any]]: ...

    async def trades_since(self, symbol: str, from_id: int, limit: int = 1000) -> list[dict[str, Any]]: ...

    async def open_orders(self, symbol: str) -> list[dict[str, Any]]: ...

    async def current_candle_open(self, symbol: str, interval: str) -> int: ...

    async def place_market_order(
        self, symbol: str, side: str, quantity: Decimal, client_order_id: str, *, wait: bool = True
    ) -> dict[str, Any]: ...

    async def best_bid(self, symbol: str) -> Decimal: ...

    async def place_limit_maker_order(
        self, symbol: str, side: str, quantity: Decimal, price: Decimal, client_order_id: str, *, wait: bool = True
    ) -> dict[str, Any]: ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> dict[str, Any]: ...

    async def place_oco(self, symbol: str, oco: OcoOrder) -> dict[str, Any]: ...

    async def cancel_order_list(self, symbol: str, list_client_order_id: str) -> dict[str, Any]: ...

    async def place_stop_order(self, symbol: str, stop: OcoOrder) -> dict[str, Any]: ...

    async def cancel_replace_stop(
        self, symbol: str, resting_client_order_id: str, stop: OcoOrder
    ) -> dict[str, Any]: ...


class EventSink(Protocol):
    """Where events, alerts, answers, decision notes and position snapshots go."""

    async def event(self, payload: Payload, *, event_id: str | None = None, ts_event_ms: int | None = None) -> None: ...

    async def alert(self, level: str, code: str, message: str, symbol: str | None = None) -> None: ...

    async def answer(
        self, command_id: str, command: str, outcome: Outcome, reason: str, symbol: str | None = None
    ) -> None: ...

    async def decision(self, signal: Signal, note: str) -> None: ...

    async def snapshot(
        self, symbol: str, position: Position | None, protection: str | None = None, also: Payload | None = None
    ) -> None: ...

    async def symbol_info(self, info: Any) -> None: ...


class AlertSink(Protocol):
    """Only alerts (reconciliation's summary and findings)."""

    async def alert(self, level: str, code: str, message: str, symbol: str | None = None) -> None: ...
