"""``POST /api/v3/order/cancelReplace``: cancel an order and place a new one in one step of the
matching engine (rest-api.md, "Cancel an Existing Order and Send a New Order").

* The new order's parameters and filters are checked first: a request that fails them changes
  nothing and is answered like ``POST /api/v3/order`` would be (-1013, -1102, ...).
* The cancel comes next. Cancelling a leg of an order list cancels the whole list (its legs'
  CANCELED execution reports and the ``listStatus`` ALL_DONE event, as ``DELETE
  /api/v3/orderList`` sends them); the ``cancelResponse`` is then the list's cancel answer
  (``orderListId``, ``contingencyType``, ``orderReports``...), as ``order.cancel`` of the
  WebSocket API answers the cancel of a leg.
* ``STOP_ON_FAILURE``: a failed cancel places nothing (-2022, HTTP 400, ``newOrderResult:
  NOT_ATTEMPTED``). ``ALLOW_FAILURE``: the new order is tried anyway.
* The new order is placed as ``POST /api/v3/order`` places it (it may use the balance the
  cancel just released). A cancel that succeeded with a new order that failed (e.g. a stop that
  would trigger immediately, -2010) answers -2021 with HTTP 409; both failing answers -2022.

Nothing of the walk runs between the cancel and the placement: the request is one synchronous
step of the simulator, as it is one step of Binance's matching engine. The unfilled order count
grows by one in every case that got past the filters (a new order not attempted included).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import errors
from .filters import parse_order
from .params import Params
from .rest import Route

if TYPE_CHECKING:
    from .app import Simulator

MODES = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
CANCEL_RESTRICTIONS = {"ONLY_NEW": "NEW", "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}
SUCCESS, FAILURE, NOT_ATTEMPTED = "SUCCESS", "FAILURE", "NOT_ATTEMPTED"


def cancel_replace(sim: Simulator, params: Params) -> object:
    """Cancel ``cancelOrderId`` / ``cancelOrigClientOrderId`` and place the order described by the
    other parameters, in one step."""
    client_id = params.get("newClientOrderId")
    if client_id is not None:
        sim.engine.received_client_ids.append(client_id)
    mode = params.require("cancelReplaceMode")
    if mode not in MODES:
        raise errors.invalid_value("cancelReplaceMode")
    restriction = params.get("cancelRestrictions")
    if restriction is not None and restriction not in CANCEL_RESTRICTIONS:
        raise errors.ApiError(-1145, "Invalid cancelRestrictions")
    cancel_order_id, cancel_client_id = params.long("cancelOrderId"), params.get("cancelOrigClientOrderId")
    if cancel_order_id is None and cancel_client_id is None:
        raise errors.either_mandatory("cancelOrderId", "cancelOrigClientOrderId")
    sim.sync_market()
    symbol = params.get("symbol")
    average = sim.market.avg_price(symbol)[0] if symbol in sim.specs else None
    request, resp_type = parse_order(params, sim.specs, average)  # filters before anything happens
    cancel_id = params.client_id("cancelNewClientOrderId") or sim.engine.new_client_id()
    now = sim.exchange_time()
    try:
        cancel_body, cancelled = _cancel(sim, request.symbol, params, restriction, cancel_id, now), True
    except errors.ApiError as e:
        cancel_body, cancelled = e.body(), False
    if not cancelled and mode == "STOP_ON_FAILURE":
        raise _answer(-2022, FAILURE, NOT_ATTEMPTED, cancel_body, None)
    try:
        order, fills = sim.engine.place(request, sim.market.price(request.symbol), now)
        new_body, placed = order.response(resp_type, now, fills), True
    except errors.ApiError as e:
        new_body, placed = e.body(), False
    if cancelled and placed:
        return {
            "cancelResult": SUCCESS,
            "newOrderResult": SUCCESS,
            "cancelResponse": cancel_body,
            "newOrderResponse": new_body,
        }
    if not cancelled and not placed:
        raise _answer(-2022, FAILURE, FAILURE, cancel_body, new_body)
    # one of the two succeeded: -2021 with HTTP 409
    results = (SUCCESS, FAILURE) if cancelled else (FAILURE, SUCCESS)
    raise _answer(-2021, *results, cancel_body, new_body, status=409)


def _cancel(sim: Simulator, symbol: str, params: Params, restriction: str | None, cancel_id: str, now: int) -> object:
    """Cancel the order (its whole list when it is a leg of one); the cancel's answer."""
    order = sim.engine.find(symbol, params.long("cancelOrderId"), params.get("cancelOrigClientOrderId"))
    if order is None or not order.is_open:
        raise errors.unknown_order()
    if restriction is not None and order.status != CANCEL_RESTRICTIONS[restriction]:
        raise errors.ApiError(-2011, "Order was not canceled due to cancel restrictions.")
    if order.order_list_id == -1:
        sim.engine.cancel(order, cancel_id, now)
        return order.cancel_response(cancel_id, now)
    order_list = sim.engine.lists[order.order_list_id]
    legs = sim.engine.cancel_list(order_list, cancel_id, now)
    return order_list.response(sim.engine.orders, [leg.cancel_response(cancel_id, now) for leg in legs])


def _answer(
    code: int, cancel_result: str, new_result: str, cancel_body: object, new_body: object, status: int = 400
) -> errors.ApiError:
    message = "Order cancel-replace failed." if code == -2022 else "Order cancel-replace partially failed."
    data = {
        "cancelResult": cancel_result,
        "newOrderResult": new_result,
        "cancelResponse": cancel_body,
        "newOrderResponse": new_body,
    }
    return errors.ApiError(code, message, status=status, data=data)


ROUTES = [Route("POST", "order/cancelReplace", cancel_replace, 1, signed=True, order=True)]
