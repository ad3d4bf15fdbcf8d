"""User data through the WebSocket API (``userDataStream.subscribe.signature``).

python-binance subscribes when the user socket is entered but does not subscribe again after
its WebSocket-API connection is re-established, so this loop leaves and re-enters the socket
on any error, ``eventStreamTerminated`` or failed ping, and reconciles over REST each time:
account balances, then trades missed while unsubscribed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from binance import AsyncClient

from services.market_data import binance_wire as wire
from services.market_data.config import MarketDataSettings
from services.market_data.publisher import Publisher
from shared import streams
from shared.aio import quietly, sleep_or_stop
from shared.backoff import Backoff
from shared.binance_client import close_client, close_socket, open_client, socket_manager
from shared.events import now_ms
from shared.request_weight import WeightBudget

logger = logging.getLogger(__name__)
PING_EVERY_S = 15.0
T = TypeVar("T")


class Resubscribe(Exception):
    """The subscription ended or its connection failed: subscribe again."""


class UserDataFeed:
    """Relays execution reports and balance changes; resubscribes and reconciles on loss."""

    def __init__(self, settings: MarketDataSettings, publisher: Publisher, budget: WeightBudget | None = None) -> None:
        self.settings = settings
        self.publisher = publisher
        self.backoff = Backoff(cap_s=settings.reconnect_max_delay_s)
        self.subscriptions = 0
        self.budget = budget or WeightBudget(settings.request_weight_share)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            client: AsyncClient | None = None
            try:
                client = await open_client(self.settings)
                await self._subscription(client, stop)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure means: subscribe again
                reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                logger.warning("user data stream lost (%s); resubscribe attempt=%d", reason, self.backoff.attempt + 1)
                await quietly(self.publisher.status("user_data_lost", reason, attempt=self.backoff.attempt + 1))
            finally:
                if client is not None:
                    await close_client(client)
            if not stop.is_set():
                await sleep_or_stop(stop, self.backoff.next_delay())

    async def _subscription(self, client: AsyncClient, stop: asyncio.Event) -> None:
        manager = socket_manager(client, self.settings)
        socket = manager.user_socket()
        try:
            await socket.__aenter__()
            self.subscriptions += 1
            logger.info("user data subscribed subscription=%d", self.subscriptions)
            await self.publisher.status("user_data_subscribed", f"subscription {self.subscriptions}")
            await self.reconcile(client)
            last_ping = time.monotonic()
            while not stop.is_set():
                try:
                    message = await asyncio.wait_for(socket.recv(), 1.0)
                except TimeoutError:
                    message = None
                if message is not None:
                    await self.handle(message)
                    self.backoff.reset()
                if time.monotonic() - last_ping > PING_EVERY_S:
                    await asyncio.wait_for(client.ws_ping(), 10)
                    last_ping = time.monotonic()
        finally:
            await close_socket(socket)

    async def handle(self, message: dict[str, Any]) -> None:
        """Relay one user-data event."""
        if message.get("e") == "error":
            raise Resubscribe(f"{message.get('type', 'error')}: {message.get('m', '')}")
        event_type = message.get("e")
        event_time = int(message.get("E") or now_ms())
        if event_type == "eventStreamTerminated":
            raise Resubscribe("subscription terminated by the exchange")
        if event_type == "serverShutdown":
            raise Resubscribe("server shutdown announced")
        if event_type == "executionReport":
            await self.publisher.execution(wire.execution_report(message), event_time)
        elif event_type == "outboundAccountPosition":
            await self.publisher.balances(wire.account_position(message), event_time)

    async def _weighed(
        self, client: AsyncClient, weight: int, request: Callable[..., Awaitable[T]], **params: Any
    ) -> T:
        """One REST read within this service's request-weight share (queued until it fits)."""
        await self.budget.spend(weight)
        try:
            return await request(**params)
        finally:
            self.budget.observe_response(getattr(client, "response", None))

    async def reconcile(self, client: AsyncClient) -> None:
        """Balances snapshot, then fills missed since the last trade seen per symbol, every read
        within this service's request-weight share (at market scale the catch-up spreads over
        several minute windows instead of taking the IP past the exchange's limit)."""
        account = await self._weighed(client, 20, client.get_account)
        await self.publisher.balances(wire.account_snapshot(account), now_ms())
        last_ids = await self.publisher.redis.hmget(streams.ACCOUNT_LAST_TRADE, list(self.settings.symbols))
        for symbol, last in zip(self.settings.symbols, last_ids, strict=True):
            if last is None:
                trades = await self._weighed(client, 20, client.get_my_trades, symbol=symbol, limit=1000)
                newest = max((int(t["id"]) for t in trades), default=-1)
                await self.publisher.redis.hset(streams.ACCOUNT_LAST_TRADE, symbol, newest)
            else:
                await self._catch_up(client, symbol, int(last))

    async def _catch_up(self, client: AsyncClient, symbol: str, last: int) -> None:
        trades = await self._weighed(client, 20, client.get_my_trades, symbol=symbol, fromId=last + 1, limit=1000)
        client_ids: dict[int, str] = {}
        for trade in trades:
            order_id = int(trade["orderId"])
            if order_id not in client_ids:
                order = await self._weighed(client, 4, client.get_order, symbol=symbol, orderId=order_id)
                client_ids[order_id] = order["clientOrderId"]
            await self.publisher.execution(wire.trade_as_report(trade, client_ids[order_id]), int(trade["time"]))
        if trades:
            logger.info("reconciled symbol=%s missed_fills=%d", symbol, len(trades))
