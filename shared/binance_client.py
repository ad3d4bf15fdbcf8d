"""python-binance clients pointed at the configured market.

The simulator, the Spot testnet and Binance differ only in base URLs and keys: both clients
are built the same way for all three, with the URLs taken from ``ServiceSettings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from binance import AsyncClient, BinanceSocketManager
from binance.ws.constants import WSListenerState
from binance.ws.websocket_api import WebsocketAPI

from shared.settings import ServiceSettings


async def open_client(settings: ServiceSettings, *, signed: bool = True) -> AsyncClient:
    """An ``AsyncClient`` on ``settings``' market with its clock offset measured once."""
    urls = settings.binance_urls()
    key, secret = settings.binance_credentials() if signed else (None, None)
    client = AsyncClient(key, secret)
    client.API_URL = f"{urls['rest']}/api"
    client.ws_api = WebsocketAPI(url=urls["ws_api"], tld=client.tld)
    try:
        await client.ping()
        await resync_clock(client)
    except Exception:
        await close_client(client)
        raise
    return client


async def resync_clock(client: AsyncClient) -> int:
    """Measure the exchange clock offset again (after -1021) and return it in ms."""
    before = int(time.time() * 1000)
    server = (await client.get_server_time())["serverTime"]
    after = int(time.time() * 1000)
    offset = int(server) - (before + after) // 2
    client.timestamp_offset = offset
    return offset


def socket_manager(client: AsyncClient, settings: ServiceSettings, max_queue_size: int = 5000) -> BinanceSocketManager:
    """A socket manager whose market streams come from ``settings``' market.

    The queue is far above python-binance's default of 100, which kills the read loop when a
    burst arrives (klines of many symbols closing at once).
    """
    manager = BinanceSocketManager(client, max_queue_size=max_queue_size)
    manager.STREAM_URL = settings.binance_urls()["streams"].rstrip("/") + "/"
    return manager


async def close_socket(socket: Any, timeout_s: float = 5.0) -> None:
    """Close a python-binance websocket for good, within ``timeout_s``, never raising.

    python-binance's close marks the socket EXITING and waits for its read loop to notice. A
    reconnect already under way overwrites that mark with STREAMING once it connects, so the
    wait never ends and the fresh connection lives on, unread. Re-asserting the mark until the
    close returns lets the read loop see it whichever way the race goes.
    """

    async def keep_exiting() -> None:
        while True:
            socket.ws_state = WSListenerState.EXITING
            await asyncio.sleep(0.05)

    keeper = asyncio.create_task(keep_exiting())
    try:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.__aexit__(None, None, None), timeout_s)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def close_client(client: AsyncClient, timeout_s: float = 5.0) -> None:
    """Close the REST session and the WebSocket API connection, never raising."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.session.close(), timeout_s)
    if client.ws_api is not None:
        await close_socket(client.ws_api, timeout_s)
