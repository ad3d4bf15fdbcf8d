"""Order book, book ticker and trades from the walk: REST shapes and weights, and their streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise
from typing import Any

import aiohttp
import pytest

from tests.support.simulator import SimulatorProcess, make_ccxt_client

pytestmark = pytest.mark.integration
D = Decimal


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def frames(ws: aiohttp.ClientWebSocketResponse, count: int, timeout: float = 5.0) -> list[Any]:
    async def read() -> list[Any]:
        seen = []
        while len(seen) < count:
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, message
            seen.append(json.loads(message.data))
        return seen

    return await asyncio.wait_for(read(), timeout)


async def test_depth_is_a_book_around_the_walk_price(rest) -> None:
    status, book, headers = await rest.call("GET", "depth", {"symbol": "BTCUSDT", "limit": 5})
    assert status == 200 and set(book) == {"lastUpdateId", "bids", "asks"} and isinstance(book["lastUpdateId"], int)
    bids, asks = [[D(p), D(q)] for p, q in book["bids"]], [[D(p), D(q)] for p, q in book["asks"]]
    assert len(bids) == len(asks) == 5 and bids[0][0] < asks[0][0] and asks[0][0] - bids[0][0] == D("0.01")
    assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True) and all(q > 0 for _, q in bids + asks)
    assert all(len(row) == 2 and isinstance(row[0], str) for row in book["bids"])
    before = int(headers["X-MBX-USED-WEIGHT-1M"])
    status, deep, headers = await rest.call("GET", "depth", {"symbol": "BTCUSDT", "limit": 5000})
    assert status == 200 and len(deep["bids"]) == 10 and deep["lastUpdateId"] >= book["lastUpdateId"]
    assert int(headers["X-MBX-USED-WEIGHT-1M"]) - before in (250, 250 - before)  # a new minute may have begun
    assert (await rest.call("GET", "depth", {"symbol": "BTCUSDT", "limit": 0}))[1]["code"] == -1130
    assert (await rest.call("GET", "depth", {"symbol": "NOPEUSDT"}))[1] == {"code": -1121, "msg": "Invalid symbol."}
    assert (await rest.call("GET", "depth", {"symbol": "BTCUSDT", "symbolStatus": "HALT"}))[1] == {
        "code": -1220,
        "msg": "The symbol's status does not match the requested symbolStatus.",
    }
    status, ticker, _ = await rest.call("GET", "ticker/bookTicker", {"symbol": "ETHUSDT"})
    assert set(ticker) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"} and ticker["symbol"] == "ETHUSDT"
    assert D(ticker["askPrice"]) - D(ticker["bidPrice"]) == D("0.01")
    status, tickers, _ = await rest.call("GET", "ticker/bookTicker")
    assert [t["symbol"] for t in tickers] == ["BTCUSDT", "ETHUSDT"]
    status, day, _ = await rest.call("GET", "ticker/24hr", {"symbol": "ETHUSDT"})
    assert D(day["askPrice"]) > D(day["bidPrice"]) and D(day["bidQty"]) > 0


async def test_trades_and_aggregate_trades_follow_the_walk(rest) -> None:
    await asyncio.sleep(0.3)  # a few walk steps at speed 600
    status, trades, _ = await rest.call("GET", "trades", {"symbol": "BTCUSDT", "limit": 5})
    assert status == 200 and 1 <= len(trades) <= 5
    assert set(trades[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    ids = [t["id"] for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(D(t["quoteQty"]) == (D(t["price"]) * D(t["qty"])).quantize(D("1e-8"), ROUND_HALF_UP) for t in trades)
    status, older, _ = await rest.call("GET", "historicalTrades", {"symbol": "BTCUSDT", "fromId": ids[0], "limit": 2})
    assert [t["id"] for t in older] == ids[:2]
    status, aggs, _ = await rest.call("GET", "aggTrades", {"symbol": "BTCUSDT", "fromId": ids[0], "limit": 2})
    assert [(a["a"], a["f"], a["l"], a["p"]) for a in aggs] == [
        (t["id"], t["id"], t["id"], t["price"]) for t in trades[:2]
    ]
    assert set(aggs[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    status, timed, _ = await rest.call(
        "GET", "aggTrades", {"symbol": "BTCUSDT", "startTime": trades[0]["time"], "endTime": trades[-1]["time"]}
    )
    assert {a["a"] for a in timed} >= set(ids)
    assert (await rest.call("GET", "aggTrades", {"symbol": "BTCUSDT", "fromId": 1, "startTime": 1}))[1]["code"] == -1128


async def test_book_and_trade_streams(live: SimulatorProcess, session) -> None:
    names = "btcusdt@trade/btcusdt@aggTrade/btcusdt@bookTicker/btcusdt@depth5@100ms/btcusdt@depth"
    async with session.ws_connect(live.ws_url + "/stream?streams=" + names) as ws:
        seen = await frames(ws, 40)
    by_stream: dict[str, list[Any]] = {}
    for frame in seen:
        by_stream.setdefault(frame["stream"], []).append(frame["data"])
    assert set(by_stream) == set(names.split("/"))
    trade = by_stream["btcusdt@trade"][0]
    assert set(trade) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"} and trade["e"] == "trade"
    agg = by_stream["btcusdt@aggTrade"][0]
    assert set(agg) == {"e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"} and agg["a"] == agg["f"] == agg["l"]
    ticker = by_stream["btcusdt@bookTicker"][0]
    assert set(ticker) == {"u", "s", "b", "B", "a", "A"} and D(ticker["a"]) > D(ticker["b"])
    partial = by_stream["btcusdt@depth5@100ms"][0]
    assert set(partial) == {"lastUpdateId", "bids", "asks"} and len(partial["bids"]) == 5
    diffs = by_stream["btcusdt@depth"]
    assert all(d["e"] == "depthUpdate" and d["u"] >= d["U"] for d in diffs)
    assert all(b["U"] == a["u"] + 1 for a, b in pairwise(diffs))  # no update is skipped
    removed = [price for d in diffs for price, qty in d["b"] + d["a"] if D(qty) == 0]
    assert removed  # the walk moved: levels left the book with quantity 0


async def test_ccxt_order_book_and_trades(live: SimulatorProcess) -> None:
    exchange = make_ccxt_client(live)
    try:
        book = await exchange.fetch_order_book("BTC/USDT", limit=10)
        assert len(book["bids"]) == len(book["asks"]) == 10 and book["bids"][0][0] < book["asks"][0][0]
        ticker = await exchange.fetch_bids_asks(["BTC/USDT"])
        assert 0 < ticker["BTC/USDT"]["bid"] < ticker["BTC/USDT"]["ask"]
        trades = await exchange.fetch_trades("BTC/USDT", limit=5)
        assert trades and all(t["price"] > 0 and t["amount"] > 0 for t in trades)
    finally:
        await exchange.close()
