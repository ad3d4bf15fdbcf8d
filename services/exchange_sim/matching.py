"""The matching engine of the single simulated account (pure: no I/O, times passed in).

Taker orders sweep a synthetic book: ``DEPTH_LEVELS`` price levels one tick apart from the
current price (moved by the seeded slippage), each holding ``depth_quote / DEPTH_LEVELS`` of quote
notional. What the book cannot fill EXPIREs (``INSUFFICIENT_LIQUIDITY``), as Binance does. Resting
LIMIT orders fill completely, as maker, at their own price once the walk reaches it.
Events for the user-data stream collect in ``outbox``.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import errors
from .account import Balances, commission
from .decimals import ceil_to_step, floor_to_step, q8
from .orders import Fill, Order, execution_report
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


def sweep(
    side: str, start: Decimal, tick: Decimal, step: Decimal, level_quote: Decimal,
    qty: Decimal | None, quote: Decimal | None, limit: Decimal | None,
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
    """Orders, trades and balances of the account; every change queues user-data events."""

    def __init__(self, specs: dict[str, SymbolSpec], balances: Balances, depth_quote: Decimal,
                 slippage_bps: Decimal, seed: int) -> None:
        self.specs, self.balances = specs, balances
        self.level_quote = depth_quote / DEPTH_LEVELS
        self.slippage = slippage_bps / 10_000
        self._rng = random.Random(seed)
        self._ids = random.Random(seed + 1)
        self.orders: dict[int, Order] = {}
        self.trades: list[Fill] = []
        self._open: dict[str, dict[int, Order]] = {s: {} for s in specs}
        self._by_client: dict[tuple[str, str], int] = {}
        self.next_order_id = self.next_trade_id = self.next_exec_id = 1
        self.received_client_ids: list[str] = []
        self.update_time = 0
        self.outbox: list[dict[str, object]] = []

    def drain(self) -> list[dict[str, object]]:
        """Take the queued user-data events."""
        events, self.outbox = self.outbox, []
        return events

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        groups = [self._open[symbol]] if symbol else list(self._open.values())
        return sorted((o for g in groups for o in g.values()), key=lambda o: o.order_id)

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

    def place(self, req: OrderRequest, market_price: Decimal, now: int) -> tuple[Order, list[Fill]]:
        """Execute a new order against the market; raise ApiError when the engine rejects it."""
        spec = self.specs[req.symbol]
        client_id = req.client_order_id or self.new_client_id()
        if any(o.client_order_id == client_id for o in self.open_orders()):
            raise errors.order_rejected(errors.DUPLICATE_ORDER)
        if req.type != "MARKET" and len(self._open[req.symbol]) >= spec.max_num_orders:
            raise errors.filter_failure("MAX_NUM_ORDERS")
        is_buy = req.side == "BUY"
        order = Order(
            symbol=req.symbol, order_id=self.next_order_id, client_order_id=client_id, side=req.side,
            type=req.type, time_in_force=req.time_in_force or "GTC", price=req.price or ZERO,
            orig_qty=req.quantity or ZERO, orig_quote_qty=req.quote_qty or ZERO, time=now, update_time=now,
        )
        self.next_order_id += 1
        crossing = req.type == "MARKET" or (
            req.price is not None and (req.price >= market_price if is_buy else req.price <= market_price))
        plan, exhausted = self._plan(req, spec, market_price) if crossing else ([], False)
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
        self.orders[order.order_id] = order
        self._by_client[(order.symbol, client_id)] = order.order_id
        if req.type != "MARKET":
            order.lock_asset = spec.quote if is_buy else spec.base
            order.locked = q8(order.price * order.orig_qty) if is_buy else order.orig_qty
            self.balances.lock(order.lock_asset, order.locked)
            self._open[order.symbol][order.order_id] = order
        resting = order.type != "MARKET" and order.time_in_force == "GTC"
        self._report(order, "NEW", now, working=resting)
        fills = [self._fill(order, price, qty, now, maker=False) for price, qty in plan]
        if order.type == "MARKET":
            if order.remaining > 0 or (req.quote_qty is not None and exhausted) or not fills:
                self._expire(order, "INSUFFICIENT_LIQUIDITY", now)
        elif order.is_open and order.time_in_force in ("IOC", "FOK"):
            reason = "UNFILLED_IOC_QUANTITY_EXPIRED" if order.time_in_force == "IOC" else "UNFILLED_FOK_ORDER_EXPIRED"
            self._expire(order, reason, now)
        self._position(spec, now)
        return order, fills

    def cancel(self, order: Order, cancel_client_id: str, now: int) -> None:
        """Cancel an open order and release what it still locks."""
        if not order.is_open:
            raise errors.unknown_order()
        self._close(order, "CANCELED", now)
        self._report(order, "CANCELED", now, cancel_client_id=cancel_client_id)
        self._position(self.specs[order.symbol], now)

    def new_client_id(self) -> str:
        """A 22-character id like the ones Binance generates."""
        return "".join(self._ids.choices(string.ascii_letters + string.digits, k=22))

    def on_price(self, symbol: str, price: Decimal, now: int) -> bool:
        """Fill the resting orders the walk price reached; True if anything filled."""
        hit = [o for o in self._open[symbol].values()
               if (o.side == "BUY" and price <= o.price) or (o.side == "SELL" and price >= o.price)]
        for order in sorted(hit, key=lambda o: o.order_id):
            self._fill(order, order.price, order.remaining, now, maker=True)
        if hit:
            self._position(self.specs[symbol], now)
        return bool(hit)

    def _plan(self, req: OrderRequest, spec: SymbolSpec, market: Decimal) -> tuple[list[tuple[Decimal, Decimal]], bool]:
        is_buy = req.side == "BUY"
        move = market * self.slippage * Decimal(self._rng.random()) if self.slippage else ZERO
        start = ceil_to_step(market + move, spec.tick_size) if is_buy else floor_to_step(market - move, spec.tick_size)
        limit = req.price if req.type != "MARKET" else None
        return sweep(req.side, start, spec.tick_size, spec.step_size, self.level_quote,
                     req.quantity, req.quote_qty if req.quantity is None else None, limit)

    def _affordable(self, req: OrderRequest, spec: SymbolSpec, order: Order, plan: list[tuple[Decimal, Decimal]]) -> bool:
        if req.side == "BUY":
            need = sum((q8(p * q) for p, q in plan), ZERO) if req.type == "MARKET" else q8(order.price * order.orig_qty)
            return self.balances.free_of(spec.quote) >= need
        need = order.orig_qty if req.type != "MARKET" or req.quantity is not None else sum((q for _, q in plan), ZERO)
        return self.balances.free_of(spec.base) >= need

    def _fill(self, order: Order, price: Decimal, qty: Decimal, now: int, maker: bool) -> Fill:
        spec = self.specs[order.symbol]
        is_buy = order.side == "BUY"
        quote_qty = q8(price * qty)
        fee = commission(order.side, qty, quote_qty)
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
        fill = Fill(self.next_trade_id, order.symbol, order.order_id, is_buy, price, qty, quote_qty, fee,
                    spec.base if is_buy else spec.quote, now, maker)
        self.next_trade_id += 1
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
        resting = order.is_open and order.type != "MARKET" and order.time_in_force == "GTC"
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

    def _reject(self, order: Order, reason: str, now: int) -> None:
        order.status = "REJECTED"
        self._report(order, "REJECTED", now, reject_reason=reason)

    def _report(self, order: Order, exec_type: str, now: int, **extra: Any) -> None:
        self.outbox.append(execution_report(order, exec_type, now, self.next_exec_id, **extra))
        self.next_exec_id += 1

    def _position(self, spec: SymbolSpec, now: int) -> None:
        self.update_time = now
        self.outbox.append(self.balances.position_event([spec.base, spec.quote], now))

    def to_state(self) -> dict[str, object]:
        """Everything needed to rebuild the engine after a restart (JSON-able)."""
        return {
            "balances": self.balances.to_state(),
            "orders": [o.to_state() for o in sorted(self.orders.values(), key=lambda o: o.order_id)],
            "next_order_id": self.next_order_id, "next_trade_id": self.next_trade_id,
            "next_exec_id": self.next_exec_id, "received_client_ids": self.received_client_ids,
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
        self.trades.sort(key=lambda f: f.trade_id)
        self.next_order_id = int(data["next_order_id"])
        self.next_trade_id = int(data["next_trade_id"])
        self.next_exec_id = int(data["next_exec_id"])
        self.received_client_ids = list(data["received_client_ids"])
        self.update_time = int(data["update_time"])
