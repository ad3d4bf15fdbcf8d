"""The ledger as the trader reads it: trades, orders and fills in market time, profit figures,
every number in its symbol's precision.

Nothing is computed here that the read model (``shared.trading.profit``) does not define; this module
gathers its inputs (ledger rows, last prices, balances, symbol filters) and formats its output.
Ledger rows are read again only when the ledger changed (``queries.ledger_version``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api.config import ApiSettings
from shared import streams
from shared.codec import loads
from shared.precision import Precision, pct, short_pct, split_symbol
from shared.store import queries
from shared.store.models import Fill, Order, Position
from shared.trading import profit
from shared.trading.profit import PeriodUnit, TradeRecord
from shared.trading.vocabulary import PositionStatus

PRECISION_REFRESH_S = 5.0
VERSION_CHECK_S = 1.0
LEDGER_EVENTS = frozenset({"order_update", "position_opened", "position_closed", "position_snapshot"})
ZERO = Decimal(0)


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


class Precisions:
    """Symbol filters published by the executor (``market:symbols``), re-read every few seconds."""

    def __init__(self, redis: Redis, symbols: Sequence[str]) -> None:
        self.redis = redis
        self.symbols = list(symbols)
        self._known: dict[str, Precision] = {}
        self._fallback: dict[str, Precision] = {}
        self._read_at = float("-inf")
        self.version = 0  # counts the reads of the filters (what is formatted with them may change)

    def of(self, symbol: str) -> Precision:
        known = self._known.get(symbol)
        if known is not None:
            return known
        fallback = self._fallback.get(symbol)
        if fallback is None:
            fallback = self._fallback[symbol] = Precision(symbol, *split_symbol(symbol))
        return fallback

    def known(self, symbol: str) -> Precision | None:
        return self._known.get(symbol)

    def apply(self, raw: Sequence[str | bytes | None]) -> None:
        """Take the ``market:symbols`` values of ``self.symbols`` (read by the caller's pipeline)."""
        for symbol, text in zip(self.symbols, raw, strict=True):
            body = loads(text)
            if isinstance(body, dict):
                self._known[symbol] = Precision.from_dict({**body, "symbol": symbol})
        self._read_at = time.monotonic()
        self.version += 1

    @property
    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= PRECISION_REFRESH_S or len(self._known) < len(self.symbols)

    async def refresh(self) -> None:
        if self.stale:
            self.apply(await self.redis.hmget(streams.SYMBOL_INFO, self.symbols))

    @property
    def quote_asset(self) -> str:
        return self.of(self.symbols[0]).quote_asset if self.symbols else "USDT"


@dataclass(frozen=True)
class LedgerTrade:
    position: Position
    orders: list[Order]
    record: TradeRecord


@dataclass(frozen=True)
class Market:
    """What the figures need besides the ledger: last prices, the account's equity, the market clock."""

    prices: dict[str, Decimal | None]
    equity_now: Decimal | None
    market_time_ms: int | None


class LedgerView:
    """Reads and formats the ledger for the profit, trade and order routes and the live events."""

    def __init__(self, redis: Redis, engine: AsyncEngine, settings: ApiSettings, precisions: Precisions) -> None:
        self.redis = redis
        self.engine = engine
        self.settings = settings
        self.precisions = precisions
        self._version: tuple[int, ...] | None = None
        self._trades: list[LedgerTrade] = []
        self._summary_key: tuple[Any, ...] | None = None
        self._summary: dict[str, Any] | None = None
        self._dirty = True
        self._checked_at = float("-inf")

    # -- inputs ----------------------------------------------------------------------------

    def observe(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """An executor event about an order or a position means the ledger changed (hub observer)."""
        if stream == streams.EXECUTOR_EVENTS and fields.get("type") in LEDGER_EVENTS:
            self._dirty = True

    async def trades(self) -> list[LedgerTrade]:
        """Every non-failed position with its orders, re-read only when the ledger changed.

        Whether it changed is asked of the database when an executor event said so, and at
        least every ``VERSION_CHECK_S`` (a change the events did not announce).
        """
        if not self._dirty and self._version is not None and time.monotonic() - self._checked_at < VERSION_CHECK_S:
            return self._trades
        self._dirty = False
        self._checked_at = time.monotonic()
        version = await queries.ledger_version(self.engine)
        if version != self._version:
            rows = await queries.trades_with_orders(self.engine)
            self._trades = [LedgerTrade(p, o, queries.trade_record(p, o)) for p, o in rows]
            self._version = version
        return self._trades

    async def market(self) -> Market:
        symbols = self.settings.symbols
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(streams.MARKET_LAST_PRICE, symbols)
            pipe.hgetall(streams.ACCOUNT_SNAPSHOT)
            pipe.hmget(streams.MARKET_CLOCK, symbols)
            if self.precisions.stale:
                pipe.hmget(streams.SYMBOL_INFO, symbols)
            replies = await pipe.execute()
        if len(replies) == 4:
            self.precisions.apply(replies[3])
        raw_prices, snapshot, clocks = replies[:3]
        prices = {symbol: _decimal(value) for symbol, value in zip(symbols, raw_prices, strict=True)}
        clock = max((int(float(c)) for c in clocks if c), default=None)
        return Market(prices, self._equity(snapshot, prices), clock)

    def _equity(self, snapshot: dict[str, str], prices: dict[str, Decimal | None]) -> Decimal | None:
        """Quote balance plus each traded base asset at its last price; None before a snapshot."""
        if not snapshot:
            return None

        def held(asset: str) -> Decimal:
            body = loads(snapshot.get(asset)) or {}
            return (_decimal(body.get("free")) or ZERO) + (_decimal(body.get("locked")) or ZERO)

        equity = held(self.precisions.quote_asset)
        for symbol, price in prices.items():
            if price is not None:
                equity += held(self.precisions.of(symbol).base_asset) * price
        return equity

    # -- profit ----------------------------------------------------------------------------

    async def profit(self, symbol: str | None = None) -> dict[str, Any]:
        """The ``/api/profit`` answer (all symbols, or one)."""
        trades = await self.trades()
        market = await self.market()
        key = (self._version, symbol, tuple(sorted(market.prices.items())), market.equity_now, market.market_time_ms)
        if key == self._summary_key and self._summary is not None:
            return self._summary
        symbols = [symbol] if symbol else self.settings.symbols
        records = [t.record for t in trades if t.record.symbol in symbols]
        starting = self._starting_equity(records, market)
        summary = profit.summarise(records, market.prices, starting, symbols)
        body = profit.summary_dict(summary, {s: self.precisions.of(s) for s in symbols}, self.precisions.quote_asset)
        body["market_time_ms"] = market.market_time_ms
        self._summary_key, self._summary = key, body
        return body

    def _starting_equity(self, records: list[TradeRecord], market: Market) -> Decimal | None:
        if market.equity_now is None:
            return None
        everything = [t.record for t in self._trades]
        total = profit.figures(everything, market.prices)
        return profit.starting_equity_from(market.equity_now, total)

    async def periods(self, unit: PeriodUnit, symbol: str | None, limit: int) -> dict[str, Any]:
        records = [t.record for t in await self.trades() if symbol is None or t.record.symbol == symbol]
        precision = self.precisions.of(symbol) if symbol else Precision("", "", self.precisions.quote_asset)
        rows = profit.periods(records, unit)[-limit:]
        return {
            "unit": unit.value,
            "time_zone": "UTC",
            "quote_asset": precision.quote_asset,
            "periods": [profit.period_dict(p, precision) for p in rows],
        }

    async def equity(self, symbol: str | None, limit: int) -> dict[str, Any]:
        trades = await self.trades()
        market = await self.market()
        records = [t.record for t in trades if symbol is None or t.record.symbol == symbol]
        starting = self._starting_equity(records, market)
        precision = self.precisions.of(symbol) if symbol else Precision("", "", self.precisions.quote_asset)
        if symbol is not None:
            starting = ZERO if starting is None else starting
        open_value = ZERO
        now = profit.figures(records, market.prices)
        open_value = now.unrealised_quote + now.dust_quote
        points = profit.equity_curve(
            records, starting or ZERO, now_ms=market.market_time_ms, open_value_quote=open_value
        )
        return {
            "quote_asset": precision.quote_asset,
            "starting_equity_quote": precision.quote(starting),
            "points": [profit.equity_point_dict(p, precision) for p in points[-limit:]],
        }

    # -- rows --------------------------------------------------------------------------------

    def trade_row(self, trade: LedgerTrade, price: Decimal | None = None) -> dict[str, Any]:
        p, r = trade.position, trade.record
        f = self.precisions.of(p.symbol)
        indicators = loads(p.entry_indicators) if p.entry_indicators else None
        row = {
            "id": p.id,
            "symbol": p.symbol,
            "status": p.status,
            "entry_time_ms": r.entry_time_ms,
            "exit_time_ms": r.exit_time_ms,
            "entry_exchange_ms": p.entry_time_ms,
            "exit_exchange_ms": p.exit_time_ms if p.status == PositionStatus.CLOSED else None,
            "entry_price": f.price(p.entry_price),
            "exit_price": f.price(p.exit_price) if p.status == PositionStatus.CLOSED else None,
            "quantity": f.quantity(p.quantity),
            "sold_quantity": f.quantity(r.sold_quantity),
            "quote_spent": f.quote(p.quote_spent),
            "quote_received": f.quote(r.quote_received) if p.status == PositionStatus.CLOSED else None,
            "fees_quote": f.quote(r.fees_quote),
            "profit_quote": f.quote(r.profit_quote),
            "profit_pct": pct(r.profit_pct),
            "exit_reason": p.exit_reason if p.status in (PositionStatus.CLOSED, PositionStatus.CLOSING) else None,
            "return_pct": short_pct(p.return_pct),
            "duration_ms": r.duration_ms,
            "parameters_version": p.parameters_version,
            "strategy": p.strategy,
            "stop_loss": f.price(p.stop_loss),
            "take_profit": f.price(p.take_profit),
            "dust_in": f.dust(r.dust_in),
            "dust_out": f.dust(r.dust_out) if p.status == PositionStatus.CLOSED else None,
            "entry_candle_open_ms": p.entry_candle_open_ms,
            "exit_candle_open_ms": p.exit_candle_open_ms,
            "entry_indicators": indicators if isinstance(indicators, dict) else None,
        }
        if p.status != PositionStatus.CLOSED:
            row["unrealised_quote"] = f.quote(r.unrealised_quote(price))
            row["unrealised_pct"] = pct(r.unrealised_pct(price))
        return row

    def order_row(self, order: Order, position: Position | None = None) -> dict[str, Any]:
        f = self.precisions.of(order.symbol)
        average = order.cumulative_quote / order.executed_quantity if order.executed_quantity else None
        closing = (
            position is not None
            and position.status == PositionStatus.CLOSED
            and position.exit_client_order_id == order.client_order_id
        )
        return {
            "id": order.id,
            "client_order_id": order.client_order_id,
            "trade_id": order.position_id,
            "symbol": order.symbol,
            "side": order.side,
            "order_type": order.order_type,
            "purpose": order.purpose,
            "status": order.status,
            "requested_quantity": f.quantity(order.requested_quantity),
            "executed_quantity": f.quantity(order.executed_quantity),
            "cumulative_quote": f.quote(order.cumulative_quote),
            "average_price": f.price(average),
            "limit_price": f.price(order.limit_price),
            "stop_price": f.price(order.stop_price),
            "best_bid": f.price(order.best_bid),
            "fees_quote": f.quote(profit.order_fee_quote(order.commission_base, order.commission_quote, average)),
            "reason": order.reason,
            "market_time_ms": order.market_time_ms,
            "created_at_ms": order.created_at_ms,
            "updated_at_ms": order.updated_at_ms,
            "return_pct": short_pct(position.return_pct) if closing and position is not None else None,
            "exit_reason": position.exit_reason if closing and position is not None else None,
        }

    def fill_row(self, fill: Fill, order: Order | None, base_asset: str) -> dict[str, Any]:
        f = self.precisions.of(fill.symbol)
        fee = (
            fill.commission * fill.price
            if fill.commission_asset == base_asset
            else (fill.commission if fill.commission_asset == f.quote_asset else None)
        )
        return {
            "trade_id_exchange": fill.trade_id,
            "client_order_id": fill.client_order_id,
            "price": f.price(fill.price),
            "quantity": f.quantity(fill.quantity),
            "quote_quantity": f.quote(fill.quote_quantity),
            "commission": f.dust(fill.commission),
            "commission_asset": fill.commission_asset,
            "fee_quote": f.quote(fee),
            "time_ms": fill.market_time_ms
            if fill.market_time_ms is not None
            else (order.market_time_ms if order else None),
            "exchange_ms": fill.time_ms,
        }

    def trade_of(self, position: Position, orders: list[Order]) -> LedgerTrade:
        return LedgerTrade(position, orders, queries.trade_record(position, orders))
