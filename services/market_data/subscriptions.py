"""Which market streams to read, over how many connections, subscribed how.

Few symbols: each symbol's ``@miniTicker`` and ``@kline_<interval>``. Past ``array_above``
symbols (or when asked): the all-market ``!miniTicker@arr`` (one message a second for every
symbol whose ticker changed) and each symbol's kline stream. The names are spread over as many
combined connections as Binance's 1,024 streams per connection require, and each connection
subscribes with ``SUBSCRIBE`` messages rather than a URL naming every stream (a URL that long
is refused), paced under Binance's 5 incoming messages per second per connection.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import orjson
import websockets

ARRAY_STREAM = "!miniTicker@arr"
MAX_STREAMS_PER_CONNECTION = 1024
SUBSCRIBE_BATCH = 200  # stream names per SUBSCRIBE message
SUBSCRIBE_EVERY_S = 0.25  # 4 messages a second: under the 5/s limit, which counts pongs too


class SubscribeError(RuntimeError):
    """The exchange refused or did not confirm a SUBSCRIBE."""


def uses_array(symbol_count: int, mode: str, array_above: int) -> bool:
    """Whether tickers come from ``!miniTicker@arr`` (``mode``: auto, array or symbol)."""
    return mode == "array" or (mode == "auto" and symbol_count > array_above)


def stream_names(symbols: list[str], interval: str, array: bool) -> list[str]:
    """Every market stream to read, the array (when used) first."""
    names = [ARRAY_STREAM] if array else []
    for symbol in symbols:
        lower = symbol.lower()
        if not array:
            names.append(f"{lower}@miniTicker")
        names.append(f"{lower}@kline_{interval}")
    return names


def connection_plan(names: list[str], per_connection: int = MAX_STREAMS_PER_CONNECTION) -> list[list[str]]:
    """The names cut into connections of at most ``per_connection`` streams each."""
    return [names[start : start + per_connection] for start in range(0, len(names), per_connection)] or [[]]


def batches(names: list[str], size: int = SUBSCRIBE_BATCH) -> list[list[str]]:
    return [names[start : start + size] for start in range(0, len(names), size)]


class MarketSocket:
    """One combined-stream connection: opened bare, then subscribed in paced batches."""

    _ids = itertools.count(1)

    def __init__(self, base_url: str, names: list[str], open_timeout_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/stream"
        self.names = names
        self.open_timeout_s = open_timeout_s
        self._ws: Any = None

    async def open(self) -> None:
        """Connect and subscribe every name; raise ``SubscribeError`` on a refusal."""
        self._ws = await websockets.connect(
            self.url,
            open_timeout=self.open_timeout_s,
            max_size=1 << 24,
            max_queue=4096,
            compression=None,
            ping_interval=None,  # the server pings every 20 s; our own pings would count against 5/s
        )
        for index, batch in enumerate(batches(self.names)):
            if index:
                await asyncio.sleep(SUBSCRIBE_EVERY_S)
            request_id = next(self._ids)
            await self._ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": batch, "id": request_id}).decode())

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Combined-stream messages (``{"stream": ..., "data": ...}``) as they arrive."""
        async for raw in self._ws:
            message = orjson.loads(raw)
            if "stream" in message:
                yield message
            elif "error" in message:
                raise SubscribeError(f"SUBSCRIBE refused: {message['error']}")
            # {"result": null, "id": n}: a subscription confirmed; nothing to relay

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
