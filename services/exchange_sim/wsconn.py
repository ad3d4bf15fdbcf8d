"""Server side of one WebSocket: an outgoing queue, server pings, pong tracking, abort.

Pings and pongs are handled here rather than by aiohttp's heartbeat so a stalled market stream
can go fully silent (no data, no pings, no pongs) while its socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)
PONG_TIMEOUT_S = 60.0  # Binance drops a connection whose pong is over a minute late
QUEUE_LIMIT = 20_000  # a client this far behind is disconnected, as Binance drops slow readers


class Connection:
    """A WebSocket with its writer and pinger coroutines; ``send`` never blocks the caller."""

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        ping_interval: float,
        silenced: Callable[[], bool] = lambda: False,
    ) -> None:
        self.request, self.ws = request, ws
        self.ping_interval = ping_interval
        self.silenced = silenced
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_LIMIT)
        self.last_pong = time.monotonic()
        self.connected_since = int(time.time() * 1000)
        self.closed = False
        self.close_code = 1000

    def send(self, data: bytes) -> None:
        """Queue one text frame; a client that falls too far behind is dropped."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            log.warning("dropping a WebSocket client that is %d messages behind", QUEUE_LIMIT)
            self.abort()

    def close_after_queue(self, code: int) -> None:
        """Close with ``code`` once everything queued so far has been written."""
        self.close_code = code
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (a network drop)."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def serve(self, on_text: Callable[[str], Awaitable[None]]) -> None:
        """Read until the peer goes away; text frames go to ``on_text``."""
        tasks = [asyncio.create_task(self._writer()), asyncio.create_task(self._pinger())]
        try:
            async for msg in self.ws:
                if msg.type is WSMsgType.TEXT:
                    await on_text(msg.data)
                elif msg.type is WSMsgType.PING:
                    if not self.silenced():
                        await self.ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    self.last_pong = time.monotonic()
        except ConnectionError:
            pass
        finally:
            self.closed = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _writer(self) -> None:
        while True:
            data = await self.queue.get()
            if data is None:
                await self.ws.close(code=self.close_code)
                return
            if self.silenced():
                continue
            try:
                await self.ws.send_frame(data, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                self.closed = True
                return

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            if self.silenced():
                self.last_pong = time.monotonic()  # a stall is not the client's fault
                continue
            if time.monotonic() - self.last_pong > max(PONG_TIMEOUT_S, 3 * self.ping_interval):
                log.info("closing a WebSocket whose pong is overdue")
                await self.ws.close(code=1008, message=b"pong timeout")
                return
            try:
                await self.ws.ping(str(int(time.time() * 1000)).encode())
            except (ConnectionError, RuntimeError):
                return


async def open_socket(request: web.Request) -> web.WebSocketResponse:
    """Accept the WebSocket upgrade with automatic ping/pong handling switched off."""
    ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
    await ws.prepare(request)
    return ws
