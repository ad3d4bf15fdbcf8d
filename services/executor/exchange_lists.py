"""The exchange calls of the OCO protecting a position (``PROTECTION=exchange``): placing the
order list and cancelling it, and the single stop that replaces its stop leg when the stop moves
(``order/cancelReplace``, or a plain placement when nothing rests). ``Exchange`` inherits them:
they go through its rate-limit gate and error mapping (``_call``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from binance import AsyncClient

from services.executor.core.guard import OcoOrder
from services.executor.exchange_limits import ORDER_RECV_WINDOW_MS
from shared.trading.sizing import format_decimal


class OrderListCalls:
    """OCO placement and cancel, on ``Exchange``'s client and gate."""

    client: AsyncClient
    _call: Callable[..., Awaitable[Any]]

    async def place_oco(self, symbol: str, oco: OcoOrder) -> dict[str, Any]:
        """``POST /api/v3/orderList/oco`` SELL: ``oco.stop_type`` below, LIMIT_MAKER above."""
        params: dict[str, Any] = {
            "symbol": symbol,
            "side": "SELL",
            "quantity": format_decimal(oco.quantity),
            "listClientOrderId": oco.list_client_order_id,
            "aboveType": "LIMIT_MAKER",
            "abovePrice": format_decimal(oco.take_profit),
            "aboveClientOrderId": oco.take_profit_client_order_id,
            "belowType": oco.stop_type,
            "belowStopPrice": format_decimal(oco.stop_price),
            "belowClientOrderId": oco.stop_client_order_id,
            "newOrderRespType": "FULL",
            "recvWindow": ORDER_RECV_WINDOW_MS,
        }
        if oco.stop_limit_price is not None:
            params["belowPrice"] = format_decimal(oco.stop_limit_price)
            params["belowTimeInForce"] = "GTC"
        return await self._call(
            "orderList/oco",
            lambda: self.client.create_oco_order(**params),
            order=True,
        )

    async def cancel_order_list(self, symbol: str, list_client_order_id: str) -> dict[str, Any]:
        """``DELETE /api/v3/orderList`` by list client id: both legs CANCELED (-2011 when it is
        no longer open, e.g. a leg filled)."""
        params = {"symbol": symbol, "listClientOrderId": list_client_order_id}
        return await self._call("cancel orderList", lambda: self.client.v3_delete_order_list(**params), order=True)

    async def place_stop_order(self, symbol: str, stop: OcoOrder) -> dict[str, Any]:
        """``POST /api/v3/order``: the stop leg of ``stop`` as a single SELL (nothing rests)."""
        params = {**_stop_params(symbol, stop), "newClientOrderId": stop.stop_client_order_id}
        return await self._call("order", lambda: self.client.create_order(**params), order=True)

    async def cancel_replace_stop(self, symbol: str, resting_client_order_id: str, stop: OcoOrder) -> dict[str, Any]:
        """``POST /api/v3/order/cancelReplace`` with ``STOP_ON_FAILURE``: the resting stop (a leg
        cancels its whole list) is cancelled and the stop leg of ``stop`` placed as a single order
        in one step of the matching engine. A failed cancel places nothing (-2022); a new order that
        failed after the cancel answers -2021 (HTTP 409): nothing rests then."""
        params = {
            **_stop_params(symbol, stop),
            "cancelReplaceMode": "STOP_ON_FAILURE",
            "cancelOrigClientOrderId": resting_client_order_id,
            "newClientOrderId": stop.stop_client_order_id,
        }
        return await self._call("order/cancelReplace", lambda: self.client.cancel_replace_order(**params), order=True)


def _stop_params(symbol: str, stop: OcoOrder) -> dict[str, Any]:
    params: dict[str, Any] = {
        "symbol": symbol,
        "side": "SELL",
        "type": stop.stop_type,
        "quantity": format_decimal(stop.quantity),
        "stopPrice": format_decimal(stop.stop_price),
        "newOrderRespType": "FULL",
        "recvWindow": ORDER_RECV_WINDOW_MS,
    }
    if stop.stop_limit_price is not None:
        params["price"] = format_decimal(stop.stop_limit_price)
        params["timeInForce"] = "GTC"
    return params
