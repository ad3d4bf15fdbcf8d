"""The live events as the panels use them: numbers in the symbol's precision, order and trade
rows from the ledger, position snapshots, and a ``profit`` summary after each opened or closed
trade, so the page does not refetch the REST routes on every event.
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal, InvalidOperation
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError

from services.api.ledger_view import LedgerView
from services.api.relay import Relayed
from services.api.routes.status import position_view
from shared import streams
from shared.codec import dumps
from shared.precision import pct
from shared.store import queries

logger = logging.getLogger(__name__)
TRADE_EVENTS = frozenset({"position_opened", "position_closed"})
KLINE_PRICES = ("open", "high", "low", "close")


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


class EventView:
    """``Hub.format`` and ``Hub.transform`` of the dashboard's event stream."""

    def __init__(self, redis: Redis, ledger: LedgerView) -> None:
        self.redis = redis
        self.ledger = ledger

    def format(self, item: Relayed) -> Relayed:
        """Prices, quantities and amounts of price, candle and order events in the symbol's precision."""
        data = item.data
        symbol = str(data.get("symbol") or "")
        if not symbol or item.event not in ("price", "candle", "orders", "signal"):
            return item
        f = self.ledger.precisions.of(symbol)
        body = dict(data)
        if item.event == "price":
            body["price"] = f.price(_decimal(data.get("price")))
        elif item.event == "candle":
            for key in KLINE_PRICES:
                body[key] = f.price(_decimal(data.get(key)))
            body["volume"] = f.quantity(_decimal(data.get("volume")))
        elif item.event == "signal":
            body["price"] = f.price(_decimal(data.get("price")))
        elif data.get("type") == "order_update":
            for key in ("quantity", "executed_quantity"):
                body[key] = f.quantity(_decimal(data.get(key)))
            body["quote_quantity"] = f.quote(_decimal(data.get("quote_quantity")))
            body["average_price"] = f.price(_decimal(data.get("average_price")))
        elif data.get("type") in TRADE_EVENTS:
            for key in ("entry_price", "exit_price", "stop_loss", "take_profit"):
                if key in data:
                    body[key] = f.price(_decimal(data.get(key)))
            for key in ("quote_spent", "quote_received"):
                if key in data:
                    body[key] = f.quote(_decimal(data.get(key)))
            body["quantity"] = f.quantity(_decimal(data.get("quantity")))
            if "return_pct" in data:
                body["return_pct"] = pct(_decimal(data.get("return_pct")))
            if "dust_out" in data:
                body["dust_out"] = f.dust(_decimal(data.get("dust_out")))
        return dataclasses.replace(item, data=body)

    async def transform(self, item: Relayed) -> list[Relayed]:
        """Join executor events with their ledger rows; follow a trade event with the new profit."""
        kind = item.data.get("type")
        await self.ledger.precisions.refresh()  # every few seconds at most: ``format`` reads them
        if item.event == "position":
            return [self._position(item)]
        if item.event != "orders":
            return [item]
        data = dict(item.data)
        try:
            if kind == "order_update":
                order = await queries.order_with_position(self.ledger.engine, str(data.get("client_order_id")))
                if order is not None:
                    data["order"] = self.ledger.order_row(order)
                return [dataclasses.replace(item, data=data)]
            if kind in TRADE_EVENTS:
                trade = await self._trade(data)
                if trade is not None:
                    data["trade"] = trade
                profit = await self.ledger.profit()
                return [dataclasses.replace(item, data=data), Relayed("profit", {**profit, "type": "profit"}, None)]
        except SQLAlchemyError as e:  # the ledger is not readable yet: the event goes out as it is
            logger.debug("ledger not joined: %s", e.__class__.__name__)
        return [dataclasses.replace(item, data=data)]

    async def _trade(self, data: dict[str, Any]) -> dict[str, Any] | None:
        position_id = data.get("position_id")
        if position_id is None:
            return None
        rows = await queries.trades_with_orders(self.ledger.engine, position_ids=[int(position_id)])
        if not rows:
            return None
        position, orders = rows[0]
        price = _decimal(await self.redis.hget(streams.MARKET_LAST_PRICE, position.symbol))
        return self.ledger.trade_row(self.ledger.trade_of(position, orders), price)

    def _position(self, item: Relayed) -> Relayed:
        data = item.data
        symbol = str(data.get("symbol") or "")
        raw = dumps({**data, "entry_market_time_ms": data.get("entry_time_ms")})
        view = position_view(raw, None, self.ledger.precisions.of(symbol))
        body = (
            view.model_dump()
            if view is not None
            else {
                "symbol": symbol,
                "status": "FLAT",
                "trade_id": None,
                "entry_price": None,
                "quantity": None,
                "dust_quantity": None,
                "entry_time_ms": None,
                "stop_loss": None,
                "take_profit": None,
                "unrealised_quote": None,
                "unrealised_pct": None,
            }
        )
        return dataclasses.replace(
            item,
            data={
                **body,
                "type": data.get("type"),
                "source": data.get("source"),
                "ts_ms": data.get("ts_ms"),
                "stream": data.get("stream"),
            },
        )
