"""The matching engine of the single simulated account (pure: no I/O, times passed in).

Taker orders sweep a synthetic book: ``DEPTH_LEVELS`` price levels one tick apart from the
current price (moved by the seeded slippage), each holding ``depth_quote / DEPTH_LEVELS`` of quote
notional. What the book cannot fill EXPIREs (``INSUFFICIENT_LIQUIDITY``), as Binance does. Resting
LIMIT orders fill completely, as maker, at their own price once the walk reaches it.

Stop orders (STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT) wait off the book until
a walk step reaches their stop price. The walk is taken as continuous between steps, so a trade
at the stop price happened: the triggered order executes as if the market stood at the stop
price (MARKET kinds sweep the book from there, LIMIT kinds take it up to their limit and rest the
rest). An OCO's legs share one balance lock; when one leg starts working (a stop triggers, or
the limit leg fills) the other EXPIREs with ``OCO_TRIGGER``. Events for the user-data stream
collect in ``outbox``.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import errors
from .account import Balances, Fees, commission
from .decimals import ceil_to_step, floor_to_step, q8
from .orderlists import OrderList
from .orders import MARKET_STOPS, Fill, Order, execution_report, stop_reached
from .symbols import SymbolSpec

DEPTH_LEVELS = 10
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated order (filters already passed)."""

    symbol: str
    side: str
    type: str
    time_in_force: str | None
    quantity: Decimal | None
    quote_qty: Decimal | None
    price: Decimal | None
    client_order_id: str | None
    stop_price: Decimal | None = None


def sweep(
    side: str,
    start: Decimal,
    tick: Decimal,
    step: Decimal,
    level_quote: Decimal,
    qty: Decimal | None,
    quote: Decimal | None,
    limit: Decimal | None,
) -> tuple[list[tuple[Decimal, Decimal]], bool]:
    """Fills ``(price, qty)`` taking the book level by level; True when the book ran out."""
    fills: list[tuple[Decimal, Decimal]] = []
    direction = 1 if side == "BUY" else -1
    capacity = floor_to_step(level_quote / start, step) if start > 0 else ZERO  # equal-sized levels
    for level in range(DEPTH_LEVELS):
        price = start + direction * level * tick
        if price <= 0 or (limit is not None and (price - limit) * direction > 0):
            return fills, False
        if qty is not None:
            take = min(qty, capacity)
            qty -= take
        else:
            assert quote is not None
            take = min(capacity, floor_to_step(quote / price, step))
            quote -= q8(price * take)
        if take > 0:
            fills.append((price, take))
        if (qty is not None and qty == 0) or (quote is not None and take < capacity):
            return fills, False
    return fills, True


class Engine:
    """Orders, order lists, trades and balances of the account; every change queues user-data events."""

    def __init__(
        self,
        specs: dict[str, SymbolSpec],
        balances: Balances,
        depth_quote: Decimal,
        slippage_bps: Decimal,
        seed: int,
        fees: Fees | None = None,
        maker_fill_quote: Decimal = ZERO,
    ) -> None:
        self.specs, self.balances = specs, balances
        self.level_quote = depth_quote / DEPTH_LEVELS
        self.slippage = slippage_bps / 10_000
        self.fees = fees or Fees()
        self.maker_fill_quote = maker_fill_quote  # > 0: what a resting order fills per walk step
        self._rng = random.Random(seed)
        self._ids = random.Random(seed + 1)
        self.orders: dict[int, Order] = {}
        self.lists: dict[int, OrderList] = {}
        self.trades: list[Fill] = []
        self._open: dict[str, dict[int, Order]] = {s: {} for s in specs}
        self._by_client: dict[tuple[str, str], int] = {}
        self.next_order_id = self.next_trade_id = self.next_exec_id = 1
        self.next_list_id = 0
        self.received_client_ids: list[str] = []
        self.update_time = 0
        self.outbox: list[dict[str, object]] = []
        self.first_fills = 0  # orders that traded for the first time, not yet taken off the order count

    def take_first_fills(self) -> int:
        """How many orders traded for the first time since the last call."""
        count, self.first_fills = self.first_fills, 0
        return count

    def drain(self) -> list[dict[str, object]]:
        """Take the queued user-data events."""
        events, self.outbox = self.outbox, []
        return events

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        groups = [self._open[symbol]] if symbol else list(self._open.values())
        return sorted((o for g in groups for o in g.values()), key=lambda o: o.order_id)

    def open_lists(self) -> list[OrderList]:
        return [ol for ol in sorted(self.lists.values(), key=lambda x: x.order_list_id) if ol.is_open]

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order | None:
        """Look an order up by id (checked against ``client_id`` if both are given) or client id."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.symbol != symbol:
                return None
            if client_id is not None and order.client_order_id != client_id:
                raise errors.client_id_mismatch()
            return order
        found = self._by_client.get((symbol, client_id or ""))
        return self.orders.get(found) if found is not None else None

    def find_list(self, list_id: int | None, client_id: str | None) -> OrderList | None:
        """An order list by id (checked against ``client_id`` if both are given) or by client id
        (the newest list with it)."""
        if list_id is not None:
            found = self.lists.get(list_id)
            if found is not None and client_id is not None and found.list_client_order_id != client_id:
                raise errors.ApiError(-2011, "Order list client ID is not correct for this order list ID.")
            return found
        matches = [ol for ol in self.lists.values() if ol.list_client_order_id == client_id]
        return max(matches, key=lambda ol: ol.order_list_id) if matches else None

    # ---- placing -----------------------------------------------------------------------------

    def place(self, req: OrderRequest, market_price: Decimal, now: int) -> tuple[Order, list[Fill]]:
        """Execute a new order against the market; raise ApiError when the engine rejects it."""
        spec = self.specs[req.symbol]
        client_id = req.client_order_id or self.new_client_id()
        self._check_client_ids([client_id])
        self._check_room(spec, [req])
        order = self._new_order(req, client_id, now)
        if order.is_stop:
            if stop_reached(order.side, order.type, order.stop_price, market_price):
                self._reject(order, "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY", now)
                raise errors.order_rejected(errors.WOULD_TRIGGER)
            if not self._affordable(req, spec, order, []):
                self._reject(order, "INSUFFICIENT_BALANCES", now)
                raise errors.order_rejected(errors.INSUFFICIENT_BALANCE)
            self._store(order)
            self._lock(order, spec, self._lock_amount(order))
            self._report(order, "NEW", now, working=False)
            self._position(spec, now)
            return order, []
        is_buy = req.side == "BUY"
        # The book's best bid is the walk price and its best ask one tick above (book.py): a BUY
        # at the walk price rests at the bid, a SELL there takes the bid.
        crossing = req.type == "MARKET" or (
            req.price is not None and (req.price > market_price if is_buy else req.price <= market_price)
        )
        plan, exhausted = (
            self._plan(
                req.side,
                req.type,
                req.price,
                req.quantity,
                req.quote_qty if req.quantity is None else None,
                spec,
                market_price,
            )
            if crossing
            else ([], False)
        )
        if req.type == "LIMIT_MAKER" and crossing:
            self._reject(order, "WOULD_MATCH_IMMEDIATELY", now)
            raise errors.order_rejected(errors.WOULD_MATCH)
        filled = sum((q for _, q in plan), ZERO)
        if req.type == "MARKET" and req.quote_qty is not None:
            order.orig_qty = filled
        if req.time_in_force == "FOK" and filled < order.orig_qty:
            plan = []
        if not self._affordable(req, spec, order, plan):
            self._reject(order, "INSUFFICIENT_BALANCES", now)
            raise errors.order_rejected(errors.INSUFFICIENT_BALANCE)
        self._store(order)
        if req.type != "MARKET":
            self._lock(order, spec, self._lock_amount(order))
        resting = order.type != "MARKET" and order.time_in_force == "GTC"
        self._report(order, "NEW", now, working=resting)
        fills = [self._fill(order, price, qty, now, maker=False) for price, qty in plan]
        if order.type == "MARKET":
            if order.remaining > 0 or (req.quote_qty is not None and exhausted) or not fills:
                self._expire(order, "INSUFFICIENT_LIQUIDITY", now)
        elif order.is_open and order.time_in_force in ("IOC", "FOK"):
            self._expire_unfilled(order, now)
        self._position(spec, now)
        return order, fills

    def place_oco(
        self, list_client_id: str | None, below: OrderRequest, above: OrderRequest, market_price: Decimal, now: int
    ) -> OrderList:
        """Place an OCO pair (prices already checked against each other and the last price)."""
        spec = self.specs[below.symbol]
        list_id = list_client_id or self.new_client_id()
        if any(ol.list_client_order_id == list_id for ol in self.open_lists()):
            raise errors.order_rejected(errors.DUPLICATE_ORDER)
        ids = [below.client_order_id or self.new_client_id(), above.client_order_id or self.new_client_id()]
        if ids[0] == ids[1]:
            raise errors.order_rejected(errors.DUPLICATE_ORDER)
        self._check_client_ids(ids)
        self._check_room(spec, [below, above])
        legs = [self._new_order(req, cid, now, self.next_list_id) for req, cid in zip((below, above), ids, strict=True)]
        for leg in legs:
            if leg.is_stop and stop_reached(leg.side, leg.type, leg.stop_price, market_price):
                raise errors.order_rejected(errors.BAD_OCO_PRICES)
        need = max(self._lock_amount(leg) for leg in legs)
        asset = spec.quote if below.side == "BUY" else spec.base
        if self.balances.free_of(asset) < need:
            for leg in legs:
                self._reject(leg, "INSUFFICIENT_BALANCES", now)
            raise errors.order_rejected(errors.INSUFFICIENT_BALANCE)
        order_list = OrderList(
            self.next_list_id, list_id, spec.symbol, [leg.order_id for leg in legs], now, lock_asset=asset, locked=need
        )
        self.next_list_id += 1
        self.lists[order_list.order_list_id] = order_list
        self.balances.lock(asset, need)
        for leg in legs:
            self._store(leg)
            self._report(leg, "NEW", now, working=leg.working)
        self._list_status(order_list, now)
        self._position(spec, now)
        return order_list

    def _new_order(self, req: OrderRequest, client_id: str, now: int, list_id: int = -1) -> Order:
        order = Order(
            symbol=req.symbol,
            order_id=self.next_order_id,
            client_order_id=client_id,
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force or "GTC",
            price=req.price or ZERO,
            orig_qty=req.quantity or ZERO,
            orig_quote_qty=req.quote_qty or ZERO,
            time=now,
            update_time=now,
            stop_price=req.stop_price or ZERO,
            order_list_id=list_id,
        )
        order.working_time = -1 if order.is_stop else now
        self.next_order_id += 1
        return order

    def _check_client_ids(self, client_ids: list[str]) -> None:
        if any(o.client_order_id in client_ids for o in self.open_orders()):
            raise errors.order_rejected(errors.DUPLICATE_ORDER)

    def _check_room(self, spec: SymbolSpec, requests: list[OrderRequest]) -> None:
        """MAX_NUM_ORDERS and MAX_NUM_ALGO_ORDERS, counting the new orders."""
        resting = [r for r in requests if r.type != "MARKET"]
        open_now = self._open[spec.symbol].values()
        if resting and len(open_now) + len(resting) > spec.max_num_orders:
            raise errors.filter_failure("MAX_NUM_ORDERS")
        algo = [r for r in requests if r.stop_price is not None]
        if algo and sum(1 for o in open_now if o.is_stop) + len(algo) > spec.max_num_algo_orders:
            raise errors.filter_failure("MAX_NUM_ALGO_ORDERS")

    def _store(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self._by_client[(order.symbol, order.client_order_id)] = order.order_id
        if order.type != "MARKET":
            self._open[order.symbol][order.order_id] = order

    def _lock_amount(self, order: Order) -> Decimal:
        """What a resting order locks: its quantity of base (SELL), or its notional at its limit
        price (or stop price, for a stop that becomes MARKET) in quote (BUY)."""
        if order.side == "SELL":
            return order.orig_qty
        return q8((order.stop_price if order.type in MARKET_STOPS else order.price) * order.orig_qty)

    def _lock(self, order: Order, spec: SymbolSpec, amount: Decimal) -> None:
        order.lock_asset = spec.quote if order.side == "BUY" else spec.base
        order.locked = amount
        self.balances.lock(order.lock_asset, amount)

    # ---- cancelling --------------------------------------------------------------------------

    def cancel(self, order: Order, cancel_client_id: str, now: int) -> None:
        """Cancel an open order and release what it still locks; a leg cancels its whole list."""
        if not order.is_open:
            raise errors.unknown_order()
        if order.order_list_id != -1:
            self.cancel_list(self.lists[order.order_list_id], cancel_client_id, now)
            return
        self._close(order, "CANCELED", now)
        self._report(order, "CANCELED", now, cancel_client_id=cancel_client_id)
        self._position(self.specs[order.symbol], now)

    def cancel_list(self, order_list: OrderList, cancel_client_id: str, now: int) -> list[Order]:
        """Cancel every open order of a list; returns the orders of the list."""
        if not order_list.is_open:
            raise errors.unknown_order()
        legs = [self.orders[i] for i in order_list.order_ids]
        for leg in legs:
            if leg.is_open:
                self._close(leg, "CANCELED", now)
                self._report(leg, "CANCELED", now, cancel_client_id=cancel_client_id)
        self._settle_list(order_list, now)
        self._position(self.specs[order_list.symbol], now)
        return legs

    def new_client_id(self) -> str:
        """A 22-character id like the ones Binance generates."""
        return "".join(self._ids.choices(string.ascii_letters + string.digits, k=22))

    # ---- the walk ----------------------------------------------------------------------------

    def on_price(self, symbol: str, price: Decimal, now: int) -> bool:
        """Fill the resting orders the walk price reached and fire the stops it reached; True if
        anything happened."""
        hit = [o for o in self._open[symbol].values() if self._reached(o, price)]
        for order in sorted(hit, key=lambda o: o.order_id):
            if not order.is_open:
                continue  # the other leg of its OCO went first at this step
            if order.working:
                self._activate(order, now)
                self._fill(order, order.price, self._maker_quantity(order), now, maker=True)
            else:
                self._trigger(order, now)
            self._after_leg(order, now)
        if hit:
            self._position(self.specs[symbol], now)
        return bool(hit)

    def _maker_quantity(self, order: Order) -> Decimal:
        """What a resting order fills at one walk step that reaches it: all of it, or with
        ``maker_fill_quote`` at most that much quote (whole steps, at least one step)."""
        if self.maker_fill_quote <= ZERO:
            return order.remaining
        step = self.specs[order.symbol].step_size
        return min(order.remaining, max(step, floor_to_step(self.maker_fill_quote / order.price, step)))

    @staticmethod
    def _reached(order: Order, price: Decimal) -> bool:
        if not order.working:
            return stop_reached(order.side, order.type, order.stop_price, price)
        return price <= order.price if order.side == "BUY" else price >= order.price

    def _trigger(self, order: Order, now: int) -> None:
        """A stop fired: it works from now on, executing as if the market stood at its stop price."""
        spec = self.specs[order.symbol]
        self._activate(order, now)
        order.working_time = now
        as_market = order.type in MARKET_STOPS
        self._report(order, "NEW", now, working=not as_market)
        market = order.stop_price
        if as_market:
            self.balances.unlock(order.lock_asset, order.locked)  # a MARKET order pays from free funds
            order.locked, order.lock_asset = ZERO, ""
            plan, _ = self._plan(order.side, "MARKET", None, order.remaining, None, spec, market)
            cost = sum((q8(p * q) for p, q in plan), ZERO)
            pay, need = (spec.quote, cost) if order.side == "BUY" else (spec.base, order.remaining)
            if self.balances.free_of(pay) < need:
                self._expire(order, "REJECTED", now)
                return
            for fill_price, qty in plan:
                self._fill(order, fill_price, qty, now, maker=False)
            if order.is_open:
                self._expire(order, "INSUFFICIENT_LIQUIDITY", now)
            return
        crossing = order.price >= market if order.side == "BUY" else order.price <= market
        plan = self._plan(order.side, "LIMIT", order.price, order.remaining, None, spec, market)[0] if crossing else []
        if order.time_in_force == "FOK" and sum((q for _, q in plan), ZERO) < order.remaining:
            plan = []
        for fill_price, qty in plan:
            self._fill(order, fill_price, qty, now, maker=False)
        if order.is_open and order.time_in_force in ("IOC", "FOK"):
            self._expire_unfilled(order, now)

    def _activate(self, order: Order, now: int) -> None:
        """The first time a leg of an OCO starts working, the other leg EXPIREs and the list's
        lock moves to this leg."""
        if order.order_list_id == -1:
            return
        order_list = self.lists[order.order_list_id]
        if not order_list.locked:
            return
        for other in (self.orders[i] for i in order_list.order_ids if i != order.order_id):
            if other.is_open:
                other.expiry_reason = "OCO_TRIGGER"
                self._close(other, "EXPIRED", now)
                self._report(other, "EXPIRED", now)
        order.lock_asset, order.locked = order_list.lock_asset, order_list.locked
        order_list.locked = ZERO

    def _after_leg(self, order: Order, now: int) -> None:
        if order.order_list_id != -1:
            self._settle_list(self.lists[order.order_list_id], now)

    def _settle_list(self, order_list: OrderList, now: int) -> None:
        """Release what the list still locks once no leg is open, and send ``listStatus``."""
        if not order_list.is_open:
            return
        order_list.transaction_time = now
        if not any(self.orders[i].is_open for i in order_list.order_ids):
            if order_list.locked:
                self.balances.unlock(order_list.lock_asset, order_list.locked)
                order_list.locked = ZERO
            order_list.finish(now)
        self._list_status(order_list, now)

    def _list_status(self, order_list: OrderList, now: int) -> None:
        self.outbox.append(order_list.status_event(self.orders, now))

    # ---- execution ---------------------------------------------------------------------------

    def _plan(
        self,
        side: str,
        order_type: str,
        limit_price: Decimal | None,
        qty: Decimal | None,
        quote: Decimal | None,
        spec: SymbolSpec,
        market: Decimal,
    ) -> tuple[list[tuple[Decimal, Decimal]], bool]:
        is_buy = side == "BUY"
        move = market * self.slippage * Decimal(self._rng.random()) if self.slippage else ZERO
        start = ceil_to_step(market + move, spec.tick_size) if is_buy else floor_to_step(market - move, spec.tick_size)
        limit = limit_price if order_type != "MARKET" else None
        return sweep(side, start, spec.tick_size, spec.step_size, self.level_quote, qty, quote, limit)

    def _affordable(
        self, req: OrderRequest, spec: SymbolSpec, order: Order, plan: list[tuple[Decimal, Decimal]]
    ) -> bool:
        if req.side == "BUY":
            need = sum((q8(p * q) for p, q in plan), ZERO) if req.type == "MARKET" else self._lock_amount(order)
            return self.balances.free_of(spec.quote) >= need
        need = order.orig_qty if req.type != "MARKET" or req.quantity is not None else sum((q for _, q in plan), ZERO)
        return self.balances.free_of(spec.base) >= need

    def _fill(self, order: Order, price: Decimal, qty: Decimal, now: int, maker: bool) -> Fill:
        spec = self.specs[order.symbol]
        is_buy = order.side == "BUY"
        quote_qty = q8(price * qty)
        fee = commission(order.side, qty, quote_qty, self.fees.maker if maker else self.fees.taker)
        if order.lock_asset:
            complete = order.executed_qty + qty == order.orig_qty
            part = order.locked if complete else min(order.locked, q8(order.price * qty) if is_buy else qty)
            self.balances.unlock(order.lock_asset, part)
            order.locked -= part
        if is_buy:
            self.balances.debit(spec.quote, quote_qty)
            self.balances.credit(spec.base, qty - fee)
        else:
            self.balances.debit(spec.base, qty)
            self.balances.credit(spec.quote, quote_qty - fee)
        fill = Fill(
            self.next_trade_id,
            order.symbol,
            order.order_id,
            is_buy,
            price,
            qty,
            quote_qty,
            fee,
            spec.base if is_buy else spec.quote,
            now,
            maker,
            order.order_list_id,
        )
        self.next_trade_id += 1
        if order.executed_qty == 0:
            self.first_fills += 1
        order.executed_qty += qty
        order.cumm_quote += quote_qty
        order.fills.append(fill)
        order.update_time = self.update_time = now
        self.trades.append(fill)
        if order.remaining == 0:
            order.status = "FILLED"
            self._open[order.symbol].pop(order.order_id, None)
        else:
            order.status = "PARTIALLY_FILLED"
        resting = order.is_open and order.as_executed != "MARKET" and order.time_in_force == "GTC"
        self._report(order, "TRADE", now, fill=fill, working=resting)
        return fill

    def _close(self, order: Order, status: str, now: int) -> None:
        if order.locked:
            self.balances.unlock(order.lock_asset, order.locked)
            order.locked = ZERO
        order.status = status
        order.update_time = self.update_time = now
        self._open[order.symbol].pop(order.order_id, None)

    def _expire(self, order: Order, reason: str, now: int) -> None:
        order.expiry_reason = reason
        self._close(order, "EXPIRED", now)
        self._report(order, "EXPIRED", now)

    def _expire_unfilled(self, order: Order, now: int) -> None:
        reason = "UNFILLED_IOC_QUANTITY_EXPIRED" if order.time_in_force == "IOC" else "UNFILLED_FOK_ORDER_EXPIRED"
        self._expire(order, reason, now)

    def _reject(self, order: Order, reason: str, now: int) -> None:
        order.status = "REJECTED"
        self._report(order, "REJECTED", now, reject_reason=reason)

    def _report(self, order: Order, exec_type: str, now: int, **extra: Any) -> None:
        self.outbox.append(execution_report(order, exec_type, now, self.next_exec_id, **extra))
        self.next_exec_id += 1

    def _position(self, spec: SymbolSpec, now: int) -> None:
        self.update_time = now
        self.outbox.append(self.balances.position_event([spec.base, spec.quote], now))

    # ---- persistence -------------------------------------------------------------------------

    def to_state(self) -> dict[str, object]:
        """Everything needed to rebuild the engine after a restart (JSON-able)."""
        return {
            "balances": self.balances.to_state(),
            "orders": [o.to_state() for o in sorted(self.orders.values(), key=lambda o: o.order_id)],
            "order_lists": [ol.to_state() for ol in sorted(self.lists.values(), key=lambda x: x.order_list_id)],
            "next_order_id": self.next_order_id,
            "next_trade_id": self.next_trade_id,
            "next_exec_id": self.next_exec_id,
            "next_list_id": self.next_list_id,
            "received_client_ids": self.received_client_ids,
            "update_time": self.update_time,
        }

    def load_state(self, data: dict[str, Any]) -> None:
        """Restore what ``to_state`` saved (read back from JSON)."""
        self.balances = Balances.from_state(data["balances"])
        for raw in data["orders"]:
            order = Order.from_state(raw)
            self.orders[order.order_id] = order
            self._by_client[(order.symbol, order.client_order_id)] = order.order_id
            if order.is_open:
                self._open.setdefault(order.symbol, {})[order.order_id] = order
            self.trades.extend(order.fills)
        for raw in data.get("order_lists", []):
            order_list = OrderList.from_state(raw)
            self.lists[order_list.order_list_id] = order_list
        self.trades.sort(key=lambda f: f.trade_id)
        self.next_order_id = int(data["next_order_id"])
        self.next_trade_id = int(data["next_trade_id"])
        self.next_exec_id = int(data["next_exec_id"])
        self.next_list_id = int(data.get("next_list_id", 0))
        self.received_client_ids = list(data["received_client_ids"])
        self.update_time = int(data["update_time"])
