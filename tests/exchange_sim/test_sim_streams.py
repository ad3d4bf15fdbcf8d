"""Market streams with a raw WebSocket client: payloads, extremes, live control, pings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from services.exchange_sim.candles import Series
from tests.support.simulator import BUNDLED_DATA, SimulatorProcess

pytestmark = pytest.mark.integration
KLINE_KEYS = {"t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def next_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Any:
    """The next text frame as JSON (pings are answered automatically)."""
    message = await asyncio.wait_for(ws.receive(), timeout)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def until(ws: aiohttp.ClientWebSocketResponse, predicate: Any, timeout: float = 5.0) -> list[Any]:
    """Frames up to and including the first matching one."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        seen.append(await next_json(ws, max(0.01, deadline - time.monotonic())))
        if predicate(seen[-1]):
            return seen


async def test_kline_stream_walks_through_the_exact_candle(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/btcusdt@kline_1m") as ws:
        await until(ws, lambda m: m["k"]["x"])
        messages = await until(ws, lambda m: m["k"]["x"])
    final = messages[-1]["k"]
    updates = [m["k"] for m in messages[:-1] if m["k"]["t"] == final["t"]]
    assert updates and not any(u["x"] for u in updates)
    walked = {u["c"] for u in updates}
    assert final["h"] in walked and final["l"] in walked and final["o"] == updates[0]["c"]
    assert set(final) == KLINE_KEYS and final["T"] == final["t"] + 59_999 and final["i"] == "1m"
    assert messages[-1]["E"] == final["t"] + 60_000 and messages[-1]["e"] == "kline"
    rows = Series(BUNDLED_DATA[0])
    candle = next(
        rows.candle(i)
        for i in range(len(rows))
        if f"{rows.candle(i).open:.8f}" == final["o"]
        and f"{rows.candle(i).high:.8f}" == final["h"]
        and f"{rows.candle(i).low:.8f}" == final["l"]
        and f"{rows.candle(i).close:.8f}" == final["c"]
    )
    assert Decimal(final["v"]) == candle.volume and final["n"] == final["L"] - final["f"] + 1


async def test_mini_ticker_payload(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/ethusdt@miniTicker") as ws:
        ticker = await next_json(ws)
    assert set(ticker) == {"e", "E", "s", "c", "o", "h", "l", "v", "q"}
    assert (ticker["e"], ticker["s"]) == ("24hrMiniTicker", "ETHUSDT")
    high, low, close = Decimal(ticker["h"]), Decimal(ticker["l"]), Decimal(ticker["c"])
    assert high >= close >= low and Decimal(ticker["q"]) > Decimal(ticker["v"]) > 0


async def test_live_control_on_a_raw_connection(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/0") as ws:  # what ccxt.pro opens
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@miniTicker", "xrpusdt@kline_1m"], "id": 1})
        assert await next_json(ws) == {"result": None, "id": 1}
        assert (await next_json(ws))["e"] == "24hrMiniTicker"  # raw payload, no wrapper
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 2})
        listed = await until(ws, lambda m: m.get("id") == 2)
        assert listed[-1] == {"result": ["btcusdt@miniTicker", "xrpusdt@kline_1m"], "id": 2}
        await ws.send_json({"method": "UNSUBSCRIBE", "params": ["btcusdt@miniTicker"], "id": 3})
        await until(ws, lambda m: m.get("id") == 3)
        with pytest.raises(asyncio.TimeoutError):
            await next_json(ws, 0.4)  # nothing after unsubscribing (xrpusdt is unknown: silent)
        await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@bogus"], "id": 4})
        assert await next_json(ws) == {"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 4}
        await ws.send_str("{not json")
        assert (await next_json(ws))["error"]["code"] == 3
        await ws.send_json({"method": "PUBLISH", "id": 5})
        reply = await next_json(ws)
        assert reply["id"] == 5 and reply["error"]["code"] == 2 and "unknown variant `PUBLISH`" in reply["error"]["msg"]
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": "not valid!"})
        assert (await next_json(ws))["error"] == {
            "code": 2,
            "msg": "Invalid request: request ID must be an unsigned integer",
        }


async def test_combined_streams_wrap_payloads(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/stream?streams=btcusdt@kline_1m") as ws:
        first = await next_json(ws)
        assert first["stream"] == "btcusdt@kline_1m" and first["data"]["e"] == "kline"
        await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@miniTicker"], "id": 7})
        seen = await until(ws, lambda m: m.get("stream") == "ethusdt@miniTicker")
        assert {"result": None, "id": 7} in seen and seen[-1]["data"]["s"] == "ETHUSDT"
        await ws.send_json({"method": "GET_PROPERTY", "params": ["combined"], "id": 8})
        assert (await until(ws, lambda m: m.get("id") == 8))[-1] == {"result": True, "id": 8}
        await ws.send_json({"method": "SET_PROPERTY", "params": ["combined", False], "id": 9})
        await until(ws, lambda m: m.get("id") == 9)
        assert "stream" not in await next_json(ws)


async def test_longer_intervals_are_aggregated(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/btcusdt@kline_5m") as ws:
        messages = await until(ws, lambda m: m["k"]["x"], timeout=8)
    final = messages[-1]["k"]
    assert final["i"] == "5m" and final["t"] % 300_000 == 0 and final["T"] == final["t"] + 299_999
    async with session.get(
        live.base_url + "/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "5m", "startTime": str(final["t"]), "limit": "1"},
    ) as response:
        row = (await response.json())[0]
    assert row[:7] == [final["t"], final["o"], final["h"], final["l"], final["c"], final["v"], final["T"]]


async def test_all_market_mini_tickers_array(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/!miniTicker@arr@1000ms") as ws:
        array = await next_json(ws, timeout=3)
    assert isinstance(array, list) and {t["s"] for t in array} <= {"BTCUSDT", "ETHUSDT"} and array
    assert all(t["e"] == "24hrMiniTicker" for t in array)


async def test_server_sends_pings(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/0", autoping=False) as ws:
        message = await asyncio.wait_for(ws.receive(), 3)
        assert message.type is aiohttp.WSMsgType.PING  # EXCHANGE_SIM_PING_INTERVAL=0.5 in this suite
        await ws.pong(message.data)


async def test_the_array_carries_every_step_of_the_symbol_streams(live: SimulatorProcess, session) -> None:
    # One connection, both forms: the array must show each step's price, so that a bot reading
    # only the array sees the same prices (the same stop crossings) as one reading each symbol.
    url = live.ws_url + "/stream?streams=!miniTicker@arr/btcusdt@miniTicker"
    single: dict[int, str] = {}
    array: dict[int, str] = {}
    async with session.ws_connect(url) as ws:
        while len(array) < 12:
            message = await next_json(ws, timeout=5)
            if message["stream"] == "btcusdt@miniTicker":
                single[message["data"]["E"]] = message["data"]["c"]  # the last of a market time
            else:
                for ticker in message["data"]:
                    if ticker["s"] == "BTCUSDT":
                        array[ticker["E"]] = ticker["c"]
    shared = sorted(set(single) & set(array))
    assert len(shared) >= 10
    assert [array[t] for t in shared] == [single[t] for t in shared]
    assert set(array) - set(single) <= {max(array)}  # the symbol's own message may still be on its way
