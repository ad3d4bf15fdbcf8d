"""Start-up reads of market_data and the executor for many symbols against the real simulator
and its real 6,000 weight per minute: each service keeps to its share, nothing is answered
429/418, and the catch-up still ends with every symbol read and the missed fill relayed.

Without the budget the two services ask for about 11,500 weight at once (20 per symbol for
market_data's ``myTrades``, 26 for the executor's open orders and account): the simulator
answers 429, then bans the IP."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.executor.exchange import Exchange
from services.market_data.config import MarketDataSettings
from services.market_data.publisher import Publisher
from services.market_data.userdata import UserDataFeed
from shared import streams
from shared.binance_client import close_client, open_client
from shared.request_weight import HEADER, WeightBudget
from tests.support.simulator import BUNDLED_DATA, start_simulator

pytestmark = [pytest.mark.integration]
COUNT = 250


def served_symbols(base_url: str) -> list[str]:
    with urllib.request.urlopen(f"{base_url}/api/v3/exchangeInfo", timeout=10) as response:
        return [entry["symbol"] for entry in json.loads(response.read())["symbols"]]


async def test_one_account_read_serves_the_balance_checks_of_a_round(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, data=BUNDLED_DATA, speed=60, history=60)
    settings = MarketDataSettings(_env_file=None, REDIS_URL="redis://unused", SIM_URL=sim.base_url, BINANCE_ENV="sim")
    client = await open_client(settings)
    reads: list[dict[str, object]] = []
    get_account = client.get_account

    async def counted(**params: object) -> object:
        answer = await get_account(**params)
        reads.append(answer)
        return answer

    client.get_account = counted
    try:
        exchange = Exchange(client, budget=WeightBudget(3000))
        first = await exchange.recent_balances()
        assert await exchange.recent_balances() == first
        assert len(reads) == 1  # one account read for both
        await exchange.balances()  # a fresh read when one is asked for
        assert len(reads) == 2
        assert first["USDT"][0] > 0
    finally:
        await close_client(client)
        sim.stop()


async def test_entries_share_one_account_read_less_what_each_market_buy_spent(tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, data=BUNDLED_DATA, speed=60, history=60)
    settings = MarketDataSettings(_env_file=None, REDIS_URL="redis://unused", SIM_URL=sim.base_url, BINANCE_ENV="sim")
    client = await open_client(settings)
    reads: list[object] = []
    get_account = client.get_account

    async def counted(**params: object) -> object:
        reads.append(params)
        return await get_account(**params)

    client.get_account = counted
    try:
        exchange = Exchange(client, budget=WeightBudget(3000))
        await exchange.symbol_info("BTCUSDT")
        before = await exchange.free_balance("USDT")
        for n in (1, 2):
            await exchange.place_market_order("BTCUSDT", "BUY", Decimal("0.001"), f"EB-BTCUSDT-{n}")
        shared = await exchange.recent_balances()
        assert len(reads) == 1  # both buys sized from one read, each answer taken off it
        assert shared["USDT"][0] < before
        assert await exchange.balances() == shared  # what a fresh read says, to the satoshi
        assert len(reads) == 2
        await exchange.place_market_order("BTCUSDT", "SELL", Decimal("0.001"), "XB-BTCUSDT-3")
        after_sell = await exchange.free_balance("USDT")  # any other order: read again
        assert len(reads) == 3
        assert after_sell > shared["USDT"][0]
    finally:
        await close_client(client)
        sim.stop()


# Two to three minute windows of weight: the long tier.
@pytest.mark.long
@pytest.mark.timeout(420)
async def test_start_up_reads_of_both_services_stay_within_the_weight_limit(
    tmp_path: Path, redis_client: Redis
) -> None:
    sim = start_simulator(
        tmp_path, data=BUNDLED_DATA, speed=60, history=60, extra_env={"EXCHANGE_SIM_SCALE_SYMBOLS": str(COUNT)}
    )
    clients = []
    try:
        symbols = served_symbols(sim.base_url)
        assert len(symbols) == COUNT
        settings = MarketDataSettings(
            _env_file=None,
            REDIS_URL="redis://unused",
            SYMBOLS=",".join(symbols),
            SIM_URL=sim.base_url,
            BINANCE_ENV="sim",
        )
        market_client, executor_client = await open_client(settings), await open_client(settings)
        clients = [market_client, executor_client]
        # A fill the user-data stream missed: the catch-up must find it behind the known trade id.
        missed = await market_client.create_order(symbol=symbols[0], side="BUY", type="MARKET", quoteOrderQty="50")
        await redis_client.hset(streams.ACCOUNT_LAST_TRADE, symbols[0], -1)
        feed = UserDataFeed(settings, Publisher(redis_client))
        exchange = Exchange(executor_client, budget=WeightBudget(3000))
        reported: list[int] = []

        async def executor_start_up() -> None:
            for symbol in symbols:
                await exchange.open_orders(symbol)
                await exchange.balances()
                reported.append(int(executor_client.response.headers[HEADER]))

        await asyncio.wait_for(asyncio.gather(feed.reconcile(market_client), executor_start_up()), 360)
    finally:
        for client in clients:
            await close_client(client)
        sim.stop()
    assert feed.budget.waits >= 1 and exchange.budget.waits >= 1  # both were held back, not refused
    assert max(reported) <= 6000
    last_ids = await redis_client.hgetall(streams.ACCOUNT_LAST_TRADE)
    assert set(last_ids) == set(symbols)
    executions = await redis_client.xrange(streams.executions_stream(symbols[0]))
    assert len(executions) == len(missed["fills"])
    assert int(last_ids[symbols[0]]) == max(int(fill["tradeId"]) for fill in missed["fills"])
