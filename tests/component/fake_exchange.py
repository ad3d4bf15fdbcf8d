"""A scripted exchange for component tests: it keeps an order book of what it executed and
answers in Binance's shapes, and each call can be scripted (a fill, a partial fill that expires,
an execution whose answer is lost, a 5xx, a -2010 refusal, a timeout, a ban).

It speaks the executor's ``ExchangePort``: errors are ``services.executor.errors`` classes, as
``services.executor.exchange`` maps Binance's.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.executor.core.guard import OcoOrder
from services.executor.errors import ExchangeError, OrderNotFound, RateLimited, Rejected, UnknownOutcome
from services.executor.exchange import SymbolInfo
from shared.trading.sizing import SymbolFilters, format_decimal
from tests.support.fake_clock import FakeClock

D = Decimal
SYMBOL = "BTCUSDT"
FILTERS = SymbolFilters(
    tick_size=D("0.01"),
    step_size=D("0.00001"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    min_notional=D("5"),
    symbol=SYMBOL,
)
COMMISSION = D("0.001")
ONE = D(1)
PRICE = D("100000")  # of the received asset, as Binance takes it without BNB
MINUTE = 60_000
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT")


@dataclass(frozen=True)
class Execute:
    """An order answer: execute ``part`` of the quantity (1 fills it; less expires the rest) in
    ``trades`` trades; ``answer`` False executes it but the answer is lost (a timeout)."""

    part: Decimal = ONE
    trades: int = 1
    answer: bool = True


FILL = Execute()
LOST = Execute(answer=False)
NOT_SENT = UnknownOutcome("order: timed out (TimeoutError)")  # a timeout whose request never arrived


class FakeExchange:
    """Answers the executor's requests from its script, else as a healthy exchange would."""

    def __init__(self, clock: FakeClock, price: Decimal = PRICE) -> None:
        self.clock = clock
        self.price = price
        self.info = SymbolInfo(SYMBOL, "BTC", "USDT", FILTERS, ORDER_TYPES)
        self.lists: dict[str, dict[str, Any]] = {}  # list client id -> {"open": bool, "legs": [ids]}
        self.free = {"USDT": D("10000"), "BTC": D(0)}
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.calls: list[tuple[str, str]] = []  # (endpoint, client order id or symbol)
        self.fill_time_ms: int | None = None  # the exchange's stamp of the next fills (default: its time)
        self.market_ms: int | None = None  # the exchange's time, ahead of the feed (default: the clock)
        self._script: dict[str, deque[Any]] = defaultdict(deque)
        self.limit_prices: list[Decimal] = []  # the price of each LIMIT_MAKER sent
        self._blocked_until = 0.0
        self._order_ids = itertools.count(101)
        self._trade_ids = itertools.count(5001)

    # -- scripting -------------------------------------------------------------------------

    def then(self, endpoint: str, *answers: Any) -> None:
        """Script the next answers of ``endpoint`` (order, query, trades, account, info): an
        ``ExchangeError`` is raised, an ``Execute`` executes (orders), anything else is returned."""
        self._script[endpoint].extend(answers)

    def sent(self, client_order_id: str | None = None) -> list[str]:
        """Client ids of the order requests made (of one id when given)."""
        return [cid for endpoint, cid in self.calls if endpoint == "order" and client_order_id in (None, cid)]

    def _next(self, endpoint: str) -> Any:
        script = self._script[endpoint]
        answer = script.popleft() if script else None
        if isinstance(answer, RateLimited):
            self._blocked_until = max(self._blocked_until, self.clock.monotonic() + answer.retry_after_s)
        if isinstance(answer, ExchangeError):
            raise answer
        return answer

    @property
    def blocked_for_s(self) -> float:
        return max(0.0, self._blocked_until - self.clock.monotonic())

    # -- reads -------------------------------------------------------------------------------

    async def symbol_info(self, symbol: str, refresh: bool = False) -> SymbolInfo:
        self.calls.append(("info", symbol))
        return self._next("info") or self.info

    async def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        self.calls.append(("account", ""))
        return self._next("account") or {asset: (free, D(0)) for asset, free in self.free.items()}

    async def recent_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return await self.balances()

    async def free_balance(self, asset: str) -> Decimal:
        return (await self.balances()).get(asset, (D(0), D(0)))[0]

    async def query_order(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        self.calls.append(("query", client_order_id))
        scripted = self._next("query")
        if scripted is not None:
            return scripted
        if client_order_id not in self.orders:
            raise OrderNotFound("query order: -2013 Order does not exist.", -2013)
        return {k: v for k, v in self.orders[client_order_id].items() if k not in ("fills", "transactTime")}

    async def order_trades(self, symbol: str, exchange_order_id: int) -> list[dict[str, Any]]:
        self.calls.append(("trades", str(exchange_order_id)))
        return self._next("trades") or [t for t in self.trades if t["orderId"] == exchange_order_id]

    async def trades_since(self, symbol: str, from_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        self.calls.append(("trades", symbol))
        return self._next("trades") or [t for t in self.trades if t["id"] >= from_id][:limit]

    async def open_orders(self, symbol: str) -> list[dict[str, Any]]:
        self.calls.append(("open", symbol))
        return self._next("open") or []

    async def current_candle_open(self, symbol: str, interval: str) -> int:
        """The forming 1m kline's open time at the exchange's time (``market_ms``, else the clock)."""
        assert interval == "1m", interval
        self.calls.append(("klines", symbol))
        scripted = self._next("klines")
        now = self.market_ms if self.market_ms is not None else self.clock.now_ms()
        return int(scripted) if scripted is not None else now // MINUTE * MINUTE

    # -- the order -------------------------------------------------------------------------------

    async def place_market_order(
        self, symbol: str, side: str, quantity: Decimal, client_order_id: str, *, wait: bool = True
    ) -> dict[str, Any]:
        self.calls.append(("order", client_order_id))
        if not wait and self.blocked_for_s > 0:
            raise RateLimited(f"order: no request for another {self.blocked_for_s:.1f}s", None, self.blocked_for_s)
        answer = self._next("order") or FILL
        if client_order_id in self.orders:
            raise ExchangeError("the same client order id was executed twice")  # the test fails loudly
        body = self.execute(side, quantity, client_order_id, answer)
        if not answer.answer:
            raise UnknownOutcome("order: timed out (TimeoutError)")
        return body

    # -- LIMIT_MAKER entries ------------------------------------------------------------------

    async def best_bid(self, symbol: str) -> Decimal:
        """The scripted ``bid`` answers in turn, else ``price``."""
        self.calls.append(("bookTicker", symbol))
        scripted = self._next("bid")
        return D(scripted) if scripted is not None else self.price

    async def place_limit_maker_order(
        self, symbol: str, side: str, quantity: Decimal, price: Decimal, client_order_id: str, *, wait: bool = True
    ) -> dict[str, Any]:
        """A LIMIT_MAKER that rests (NEW), unless ``order`` is scripted with an error."""
        self.calls.append(("order", client_order_id))
        self.limit_prices.append(price)
        if not wait and self.blocked_for_s > 0:
            raise RateLimited(f"order: no request for another {self.blocked_for_s:.1f}s", None, self.blocked_for_s)
        self._next("order")
        if client_order_id in self.orders:
            raise ExchangeError("the same client order id was placed twice")  # the test fails loudly
        now = self.market_ms if self.market_ms is not None else self.clock.now_ms()
        body = {
            "symbol": SYMBOL,
            "orderId": next(self._order_ids),
            "clientOrderId": client_order_id,
            "transactTime": now,
            "updateTime": now,
            "side": side,
            "type": "LIMIT_MAKER",
            "price": format_decimal(price),
            "origQty": format_decimal(quantity),
            "status": "NEW",
            "executedQty": "0",
            "cummulativeQuoteQty": "0",
            "fills": [],
        }
        self.orders[client_order_id] = body
        return body

    async def cancel_order(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """CANCELED with what it executed; -2011 when it is not open."""
        self.calls.append(("cancel", client_order_id))
        self._next("cancel")
        order = self.orders.get(client_order_id)
        if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            raise Rejected("cancel order: -2011 Unknown order sent.", -2011)
        order["status"] = "CANCELED"
        return {**order, "origClientOrderId": client_order_id, "clientOrderId": "cancel-1"}

    # -- order lists (OCO) ------------------------------------------------------------------------

    async def place_oco(self, symbol: str, oco: OcoOrder) -> dict[str, Any]:
        """Rest both legs (``then("oco", LOST)`` rests them and loses the answer)."""
        self.calls.append(("oco", oco.list_client_order_id))
        answer = self._next("oco") or FILL
        if self.lists.get(oco.list_client_order_id, {}).get("open"):
            raise Rejected("orderList/oco: -2010 Duplicate order sent.", -2010)
        legs = [
            (oco.stop_client_order_id, oco.stop_type, oco.stop_price),
            (oco.take_profit_client_order_id, "LIMIT_MAKER", oco.take_profit),
        ]
        for client_id, order_type, price in legs:
            self.orders[client_id] = {
                "symbol": SYMBOL,
                "orderId": next(self._order_ids),
                "clientOrderId": client_id,
                "side": "SELL",
                "type": order_type,
                "price": format_decimal(price),
                "origQty": format_decimal(oco.quantity),
                "status": "NEW",
                "executedQty": "0",
                "cummulativeQuoteQty": "0",
                "updateTime": self.clock.now_ms(),
            }
        self.lists[oco.list_client_order_id] = {"open": True, "legs": [cid for cid, _, _ in legs]}
        if not answer.answer:
            raise UnknownOutcome("orderList/oco: timed out (TimeoutError)")
        return self._list_body(oco.list_client_order_id)

    async def cancel_order_list(self, symbol: str, list_client_order_id: str) -> dict[str, Any]:
        """Cancel an open list; a scripted callable runs first (a leg that fills meanwhile)."""
        self.calls.append(("cancel", list_client_order_id))
        scripted = self._next("cancel")
        if callable(scripted):
            scripted()
        order_list = self.lists.get(list_client_order_id)
        if order_list is None or not order_list["open"]:
            raise Rejected("cancel orderList: -2011 Unknown order sent.", -2011)
        for client_id in order_list["legs"]:
            if self.orders[client_id]["status"] in ("NEW", "PARTIALLY_FILLED"):
                self.orders[client_id]["status"] = "CANCELED"
        order_list["open"] = False
        return self._list_body(list_client_order_id)

    def fill_leg(self, client_order_id: str, part: Decimal = ONE) -> None:
        """The walk reached a leg: it sells ``part`` at its price, the other leg EXPIREs (on the
        first fill of either, as Binance's OCO does)."""
        leg = self.orders[client_order_id]
        order_list = next(ol for ol in self.lists.values() if client_order_id in ol["legs"])
        for other in order_list["legs"]:
            if other != client_order_id:
                self.orders[other]["status"] = "EXPIRED"
        time_ms = self.fill_time_ms if self.fill_time_ms is not None else self.clock.now_ms()
        quantity, price = FILTERS.step_size * (D(leg["origQty"]) * part // FILTERS.step_size), D(leg["price"])
        saved, self.price = self.price, price
        self._trade(leg["orderId"], "SELL", quantity, time_ms)
        self._settle_balances("SELL", quantity, quantity * price)
        self.price = saved
        done = quantity == D(leg["origQty"])
        leg.update(
            status="FILLED" if done else "PARTIALLY_FILLED",
            executedQty=format_decimal(quantity),
            cummulativeQuoteQty=format_decimal(quantity * price),
        )
        order_list["open"] = not done

    def _list_body(self, list_client_order_id: str) -> dict[str, Any]:
        legs = self.lists[list_client_order_id]["legs"]
        return {"listClientOrderId": list_client_order_id, "orderReports": [dict(self.orders[c]) for c in legs]}

    def execute(self, side: str, quantity: Decimal, client_order_id: str, how: Execute = FILL) -> dict[str, Any]:
        """Execute an order as the book would, in ``how.trades`` equal trades at ``price``."""
        now = self.market_ms if self.market_ms is not None else self.clock.now_ms()
        time_ms = self.fill_time_ms if self.fill_time_ms is not None else now
        executed = FILTERS.step_size * (quantity * how.part // FILTERS.step_size)
        order_id = next(self._order_ids)
        fills: list[dict[str, Any]] = []
        for index in range(how.trades):
            part = (
                executed / how.trades if index < how.trades - 1 else executed - sum((D(f["qty"]) for f in fills), D(0))
            )
            fills.append(self._trade(order_id, side, part, time_ms))
        quote = sum((D(f["qty"]) * self.price for f in fills), D(0))
        self._settle_balances(side, executed, quote)
        body = {
            "symbol": SYMBOL,
            "orderId": order_id,
            "clientOrderId": client_order_id,
            "transactTime": time_ms,
            "updateTime": time_ms,
            "side": side,
            "type": "MARKET",
            "origQty": format_decimal(quantity),
            "status": "FILLED" if executed == quantity else "EXPIRED",
            "executedQty": format_decimal(executed),
            "cummulativeQuoteQty": format_decimal(quote),
            "fills": fills,
        }
        self.orders[client_order_id] = body
        return body

    def _trade(self, order_id: int, side: str, quantity: Decimal, time_ms: int) -> dict[str, Any]:
        trade_id = next(self._trade_ids)
        commission = quantity * COMMISSION if side == "BUY" else quantity * self.price * COMMISSION
        asset = "BTC" if side == "BUY" else "USDT"
        self.trades.append(
            {
                "id": trade_id,
                "orderId": order_id,
                "price": format_decimal(self.price),
                "qty": format_decimal(quantity),
                "quoteQty": format_decimal(quantity * self.price),
                "commission": format_decimal(commission),
                "commissionAsset": asset,
                "time": time_ms,
            }
        )
        return {
            "price": format_decimal(self.price),
            "qty": format_decimal(quantity),
            "commission": format_decimal(commission),
            "commissionAsset": asset,
            "tradeId": trade_id,
        }

    def _settle_balances(self, side: str, executed: Decimal, quote: Decimal) -> None:
        if side == "BUY":
            self.free["USDT"] -= quote
            self.free["BTC"] += executed * (1 - COMMISSION)
        else:
            self.free["BTC"] -= executed
            self.free["USDT"] += quote * (1 - COMMISSION)
