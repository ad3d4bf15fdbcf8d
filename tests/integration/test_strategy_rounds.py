"""The strategy publishes a consumer round's decisions in one transaction (services/strategy/outbox.py),
on a real redis-server: all of a round's output lands or none of it, an entry is acknowledged
only with its output, and a symbol given up during the round leaves its entries to the next owner."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.strategy import outbox, service
from services.strategy.config import StrategySettings
from services.strategy.service import StrategyService
from services.strategy.window import CandleWindow
from shared import streams
from shared.bus import ensure_group, publish
from shared.codec import decode
from shared.events import Envelope, Kline, make_event
from tests.integration.test_strategy_service import expected_flags, klines

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
CANDLES = 40


async def strategy_over(
    redis_url: str, redis: Redis, symbols: list[str], candles: list[Kline], *, history: bool
) -> StrategyService:
    """A strategy owning ``symbols``, each with ``candles`` (renamed) all in its stream, the
    symbols' entries one after the other, to be read in one round; with ``history`` the market is
    a day ahead of them (none may trade)."""
    for symbol in symbols:
        stream = streams.kline_stream(symbol)
        await ensure_group(redis, stream, streams.GROUP_STRATEGY)
        for kline in candles:
            renamed = kline.model_copy(update={"symbol": symbol})
            await publish(redis, stream, make_event(renamed, "market_data", kline.close_time_ms))
        if history:
            await redis.hset(streams.MARKET_CLOCK, symbol, candles[-1].close_time_ms + 1 + 24 * 3_600_000)
        await asyncio.sleep(0.01)  # entry ids order streams by the millisecond: the symbols' entries in turn
    settings = StrategySettings(REDIS_URL=redis_url, SYMBOLS=",".join(symbols), _env_file=None)
    strategy = StrategyService(settings, redis, "rounds")
    # Only the re-read this round asks for may bring a pending entry back, not the idle claim.
    strategy.consumer.claim_idle_ms = 3_600_000
    for symbol in symbols:
        strategy.windows[symbol] = CandleWindow(settings.window_candles)
        strategy.consumer.add_stream(streams.kline_stream(symbol))
    return strategy


async def three_symbols(redis_url: str, redis: Redis) -> StrategyService:
    """Three symbols of 40 history candles each."""
    return await strategy_over(redis_url, redis, SYMBOLS, klines(CANDLES), history=True)


def record_publishes(monkeypatch: pytest.MonkeyPatch, *, fail_first: bool = False) -> list[int]:
    """The size of every transaction the outbox publishes, in order; with ``fail_first`` the first
    one fails as a Redis gone for a moment does, nothing of it written."""
    real_publish, sizes = outbox.publish_atomically, []

    async def recorded(redis: Redis, items: list[tuple[str, Envelope]], **kwargs: object) -> list[str]:
        sizes.append(len(items))
        if fail_first and len(sizes) == 1:
            raise RedisConnectionError("Redis went away")
        return await real_publish(redis, items, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "publish_atomically", recorded)
    return sizes


async def pending(redis: Redis, symbol: str) -> int:
    return int((await redis.xpending(streams.kline_stream(symbol), streams.GROUP_STRATEGY))["pending"])


async def decided(redis: Redis) -> list[tuple[str, int]]:
    records = [decode(fields).payload for _, fields in await redis.xrange(streams.DECISIONS)]
    return [(r.symbol, r.candle_open_time_ms) for r in records]


async def test_a_round_publishes_all_its_decisions_in_one_transaction_or_none(
    redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = await three_symbols(redis_url, redis_client)
    calls = record_publishes(monkeypatch, fail_first=True)
    with pytest.raises(RedisConnectionError):
        await strategy.poll_once()
    # Every candle of the round was evaluated, none of its decisions landed and none of their
    # entries was acknowledged (a symbol's first candle decides nothing: acknowledged at once).
    assert calls == [3 * (CANDLES - 1)]
    assert await decided(redis_client) == []
    assert [await pending(redis_client, s) for s in SYMBOLS] == [CANDLES - 1] * 3

    await strategy.poll_once()  # the pending entries are read again at once and decided once
    assert len(calls) == 2
    expected = {(s, k.open_time_ms) for s in SYMBOLS for k in klines(CANDLES)[1:]}
    assert sorted(await decided(redis_client)) == sorted(expected)
    assert [await pending(redis_client, s) for s in SYMBOLS] == [0, 0, 0]


async def test_a_symbol_given_up_during_the_round_leaves_its_entries_to_the_next_owner(
    redis_url: str, redis_client: Redis
) -> None:
    strategy = await three_symbols(redis_url, redis_client)
    real_handle = strategy.consumer.handler

    async def lease_lost_midway(stream: str, event: Envelope) -> None:
        # The symbols' entries come in turn (BTC's, ETH's, SOL's): ETH's decisions are all queued
        # when its lease is found gone, as the keep-alive finds it, at SOL's first candle.
        if stream == streams.kline_stream("SOLUSDT") and "ETHUSDT" in strategy.windows:
            await strategy._lost("ETHUSDT")
        await real_handle(stream, event)

    strategy.consumer.handler = lease_lost_midway
    await strategy.poll_once()

    assert {symbol for symbol, _ in await decided(redis_client)} == {"BTCUSDT", "SOLUSDT"}
    assert [await pending(redis_client, s) for s in SYMBOLS] == [0, CANDLES - 1, 0]

    # The next owner evaluates them, each once.
    settings = StrategySettings(REDIS_URL=redis_url, SYMBOLS="ETHUSDT", _env_file=None)
    successor = StrategyService(settings, redis_client, "successor")
    await successor._acquired("ETHUSDT")
    await successor.poll_once()
    eth = [candle for symbol, candle in await decided(redis_client) if symbol == "ETHUSDT"]
    assert eth == [k.open_time_ms for k in klines(CANDLES)[1:]]
    assert await pending(redis_client, "ETHUSDT") == 0


async def test_a_large_round_is_published_in_parts_each_with_its_acknowledgements(
    redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = await three_symbols(redis_url, redis_client)
    sizes = record_publishes(monkeypatch)
    monkeypatch.setattr(service, "OUTBOX_MAX_EVENTS", 50)
    await strategy.poll_once()
    # A symbol's 39 history decisions come with its last candle: 39, then 78 >= 50 is published,
    # and the third symbol's 39 at the round's end.
    assert sizes == [78, 39]
    expected = {(s, k.open_time_ms) for s in SYMBOLS for k in klines(CANDLES)[1:]}
    assert sorted(await decided(redis_client)) == sorted(expected)
    assert [await pending(redis_client, s) for s in SYMBOLS] == [0, 0, 0]


async def test_a_signal_leaves_before_the_rest_of_its_round_is_decided(redis_url: str, redis_client: Redis) -> None:
    entry, _ = expected_flags(klines(450))
    candles = klines(int(np.flatnonzero(entry)[0]) + 1)  # the last candle decides to buy
    # BTC's entries are all before ETH's, all live: one round, in turn.
    strategy = await strategy_over(redis_url, redis_client, ["BTCUSDT", "ETHUSDT"], candles, history=False)
    real_handle, seen = strategy.consumer.handler, []

    async def watching(stream: str, event: Envelope) -> None:
        if stream == streams.kline_stream("ETHUSDT") and not seen:
            seen.append(await redis_client.xlen(streams.SIGNALS))  # what the executor can read by now
        await real_handle(stream, event)

    strategy.consumer.handler = watching
    await strategy.poll_once()

    assert seen == [1]  # BTC's signal was out before ETH's first candle was decided
    signals = [decode(fields).payload for _, fields in await redis_client.xrange(streams.SIGNALS)]
    assert [(s.symbol, s.side) for s in signals] == [("BTCUSDT", "BUY"), ("ETHUSDT", "BUY")]
    assert await pending(redis_client, "BTCUSDT") == 0 and await pending(redis_client, "ETHUSDT") == 0
