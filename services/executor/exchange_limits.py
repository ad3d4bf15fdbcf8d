"""The exchange calls of LIMIT_MAKER entries (``ENTRY_ORDER=limit_maker``): the best bid they
are priced from, the order, its cancel; and the account's maker / taker commission rates.
``Exchange`` inherits them: they go through its rate-limit gate and error mapping (``_call``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from binance import AsyncClient

from services.executor.errors import RetryLater
from shared.trading.sizing import format_decimal

# Every order carries this recvWindow: a request the exchange has not accepted within it (after
# its timestamp) never executes, which bounds how long a sent order can still appear.
ORDER_RECV_WINDOW_MS = 5000


@dataclass(frozen=True)
class CommissionRates:
    """The account's fee rates (fractions) from ``commissionRates`` of ``GET /api/v3/account``:
    a resting LIMIT_MAKER pays ``maker``, a MARKET order ``taker``."""

    maker: Decimal
    taker: Decimal

    @classmethod
    def from_account(cls, body: Mapping[str, Any]) -> CommissionRates | None:
        rates = body.get("commissionRates")
        if not isinstance(rates, Mapping):
            return None
        try:
            return cls(Decimal(str(rates["maker"])), Decimal(str(rates["taker"])))
        except (KeyError, ArithmeticError):
            return None


class LimitMakerCalls:
    """Best bid, LIMIT_MAKER order and cancel, on ``Exchange``'s client and gate."""

    client: AsyncClient
    _call: Callable[..., Awaitable[Any]]
    commission_rates: CommissionRates | None = None  # from the last account read (``balances``)

    async def best_bid(self, symbol: str) -> Decimal:
        """The best bid of ``symbol``: ``GET /api/v3/ticker/bookTicker``, weight 2."""
        body = await self._call("bookTicker", lambda: self.client.get_orderbook_ticker(symbol=symbol))
        try:
            bid = Decimal(str(body["bidPrice"]))
        except (KeyError, TypeError, ArithmeticError):
            raise RetryLater(f"bookTicker: no bid price for {symbol}") from None
        if bid <= 0:
            raise RetryLater(f"bookTicker: no bid for {symbol}")
        return bid

    async def place_limit_maker_order(
        self, symbol: str, side: str, quantity: Decimal, price: Decimal, client_order_id: str, *, wait: bool = True
    ) -> dict[str, Any]:
        """``POST /api/v3/order`` LIMIT_MAKER with ``newOrderRespType=FULL`` under
        ``client_order_id``: it rests on the book, or is refused with -2010 if it would take."""
        params = {
            "symbol": symbol,
            "side": side,
            "type": "LIMIT_MAKER",
            "quantity": format_decimal(quantity),
            "price": format_decimal(price),
            "newClientOrderId": client_order_id,
            "newOrderRespType": "FULL",
            "recvWindow": ORDER_RECV_WINDOW_MS,
        }
        return await self._call("order", lambda: self.client.create_order(**params), order=True, wait=wait)

    async def cancel_order(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """``DELETE /api/v3/order`` by client order id: the order CANCELED with what it executed
        (-2011 when it is no longer open: filled, or cancelled already)."""
        params = {"symbol": symbol, "origClientOrderId": client_order_id, "recvWindow": ORDER_RECV_WINDOW_MS}
        return await self._call("cancel order", lambda: self.client.cancel_order(**params), order=True)
