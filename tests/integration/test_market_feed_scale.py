"""market_data's feed against the real simulator serving many symbols: the all-market ticker
array, coalesced chart updates, closed candles in order."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.market_data.config import MarketDataSettings
from services.market_data.feed import MarketFeed
from services.market_data.publisher import Publisher
from shared import streams
from tests.support.simulator import BUNDLED_DATA, start_simulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
COUNT = 60


def served_symbols(base_url: str) -> list[str]:
    with urllib.request.urlopen(f"{base_url}/api/v3/exchangeInfo", timeout=10) as response:
        return [entry["symbol"] for entry in json.loads(response.read())["symbols"]]


async def test_many_symbols_through_the_array_with_coalesced_chart_updates(tmp_path: Path, redis_client: Redis) -> None:
    # Speed 60: a step every quarter second of wall time, a candle a second.
    sim = start_simulator(
        tmp_path, data=BUNDLED_DATA, speed=60, history=60, extra_env={"EXCHANGE_SIM_SCALE_SYMBOLS": str(COUNT)}
    )
    try:
        symbols = served_symbols(sim.base_url)
        assert len(symbols) == COUNT
        settings = MarketDataSettings(
            _env_file=None,
            REDIS_URL="redis://unused",
            SYMBOLS=",".join(symbols),
            SIM_URL=sim.base_url,
            BINANCE_ENV="sim",
            WARMUP_CANDLES="50",
            MARKET_KLINE_UPDATE_S="1",
        )
        feed = MarketFeed(settings, Publisher(redis_client))
        assert feed.array and feed.stream_names()[0] == "!miniTicker@arr"
        stop = asyncio.Event()
        task = asyncio.create_task(feed.run(stop))
        await asyncio.sleep(12)
        stop.set()
        await asyncio.wait_for(task, 30)
    finally:
        sim.stop()
    updates = await redis_client.xrange(streams.KLINE_UPDATES)
    for symbol in symbols:
        tickers = await redis_client.xrange(streams.ticker_stream(symbol))
        assert len(tickers) >= 5, symbol
        prices = [fields["price"] for _, fields in tickers]
        closed = await redis_client.xrange(streams.kline_stream(symbol))
        opens = [int(fields["open_time_ms"]) for _, fields in closed]
        assert len(opens) >= 55 and opens == sorted(set(opens)), symbol
        assert all(b - a == 60_000 for a, b in itertools.pairwise(opens)), symbol
        assert await redis_client.hget(streams.MARKET_LAST_PRICE, symbol) == prices[-1]
        mine = [fields for _, fields in updates if fields["symbol"] == symbol]
        # ~4 steps a second for 12 s; coalesced to at most one write a second (plus the first)
        assert 3 <= len(mine) <= 15, (symbol, len(mine))
