"""The strategy service on a real redis-server: catching up on history, a failed publish retried, and a
restart over a dead-lettered candle."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.strategy import outbox
from services.strategy.config import StrategySettings
from services.strategy.service import StrategyService
from services.strategy.window import CandleWindow
from shared import streams
from shared.bus import ensure_group, publish
from shared.candles import load_candles
from shared.codec import decode, encode
from shared.events import Kline, make_event
from shared.parameters import StrategyParameters
from shared.trading.indicators import compute_indicators
from shared.trading.rules import signal_arrays
from shared.trading.strategies.track import IndicatorTrack
from tests.support.redis_server import RedisServer, start_redis

pytestmark = pytest.mark.integration

SYMBOL = "BTCUSDT"
MINUTE = 60_000
ROOT = Path(__file__).resolve().parents[2]
CANDLES = ROOT / "data" / "BTCUSDT_1m_2025-05-20_2025-05-27.csv.gz"


def klines(count: int) -> list[Kline]:
    frame = load_candles(CANDLES).iloc[:count]
    return [
        Kline(
            symbol=SYMBOL,
            interval="1m",
            open_time_ms=int(row.open_time),
            close_time_ms=int(row.open_time) + MINUTE - 1,
            open=Decimal(repr(row.open)),
            high=Decimal(repr(row.high)),
            low=Decimal(repr(row.low)),
            close=Decimal(repr(row.close)),
            volume=Decimal(repr(row.volume)),
            closed=True,
        )
        for row in frame.itertuples()
    ]


async def service_over(redis_url: str, redis: Redis, candles: list[Kline]) -> StrategyService:
    stream = streams.kline_stream(SYMBOL)
    await ensure_group(redis, stream, streams.GROUP_STRATEGY)
    for kline in candles:
        await publish(redis, stream, make_event(kline, "market_data", kline.close_time_ms))
    settings = StrategySettings(REDIS_URL=redis_url, SYMBOLS=SYMBOL, _env_file=None)
    strategy = StrategyService(settings, redis, "test")
    strategy.windows[SYMBOL] = CandleWindow(settings.window_candles)
    strategy.consumer.add_stream(stream)
    return strategy


async def drain(strategy: StrategyService, redis: Redis) -> None:
    stream = streams.kline_stream(SYMBOL)
    for _ in range(50):
        try:
            await strategy.poll_once()
        except (RedisError, OSError):
            continue  # as the service's loop does: the round is tried again
        if not (await redis.xpending(stream, streams.GROUP_STRATEGY))["pending"] and len(
            strategy.windows[SYMBOL]
        ) == await redis.xlen(stream):
            return
    raise AssertionError("the strategy did not catch up")


def expected_flags(candles: list[Kline]) -> tuple[np.ndarray, np.ndarray]:
    frame = load_candles(CANDLES).iloc[: len(candles)].reset_index(drop=True)
    params = StrategyParameters()
    indicators = compute_indicators(frame, params, with_atr=False)
    return signal_arrays(indicators, frame["close"].to_numpy(), frame["volume"].to_numpy(), params)


async def test_history_is_caught_up_with_incremental_indicators(
    redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    candles = klines(450)
    # The market is a day ahead of these candles: all of them are history, none may trade.
    await redis_client.hset(streams.MARKET_CLOCK, SYMBOL, candles[-1].close_time_ms + 1 + 24 * 60 * MINUTE)
    rebuilds = []
    real_over = IndicatorTrack.over.__func__  # type: ignore[attr-defined]

    def counted(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        rebuilds.append(1)
        return real_over(cls, *args, **kwargs)

    monkeypatch.setattr(IndicatorTrack, "over", classmethod(counted))
    strategy = await service_over(redis_url, redis_client, candles)
    await drain(strategy, redis_client)

    assert len(rebuilds) == 1  # the indicators follow the candles one by one, never a recomputation
    records = [decode(fields).payload for _, fields in await redis_client.xrange(streams.DECISIONS)]
    assert [r.candle_open_time_ms for r in records] == [k.open_time_ms for k in candles[1:]]
    assert all(r.indicators["history"] for r in records)
    entry, exit_ = expected_flags(candles)
    assert [(r.entry, r.exit) for r in records] == list(zip(entry[1:].tolist(), exit_[1:].tolist(), strict=True))
    assert entry.any() and exit_.any()  # the comparison covers both kinds of decision
    assert await redis_client.xlen(streams.SIGNALS) == 0


async def test_a_candle_whose_publish_failed_is_evaluated_again(
    redis_url: str, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, _ = expected_flags(klines(450))
    first_entry = int(np.flatnonzero(entry)[0])
    candles = klines(first_entry + 1)  # the last candle decides to buy
    strategy = await service_over(redis_url, redis_client, candles)
    real_publish = outbox.publish_atomically
    failures = []

    async def failing_once(redis, items, **kwargs):
        if not failures and any(stream == streams.SIGNALS for stream, _ in items):
            failures.append(1)
            raise ConnectionError("Redis went away")
        return await real_publish(redis, items, **kwargs)

    monkeypatch.setattr(outbox, "publish_atomically", failing_once)
    strategy.consumer.retry_delay_s = 0.01
    await drain(strategy, redis_client)

    assert failures == [1]
    signals = [decode(fields).payload for _, fields in await redis_client.xrange(streams.SIGNALS)]
    assert [(s.side, s.candle_open_time_ms) for s in signals] == [("BUY", candles[-1].open_time_ms)]
    assert await redis_client.xlen(streams.executor_inbox(SYMBOL)) == 1


async def test_a_strategy_killed_mid_batch_loses_no_decision(redis_url: str, redis_client: Redis) -> None:
    candles = klines(300)
    await redis_client.hset(streams.MARKET_CLOCK, SYMBOL, candles[-1].close_time_ms + 1 + 24 * 60 * MINUTE)
    first = await service_over(redis_url, redis_client, candles)
    real_handle, calls = first.consumer.handler, []

    async def killed_at_150(stream, event):
        calls.append(1)
        if len(calls) == 150:  # half-way through the second batch of history candles
            raise asyncio.CancelledError  # what a SIGKILL leaves: nothing after this point runs
        await real_handle(stream, event)

    first.consumer.handler = killed_at_150
    with pytest.raises(asyncio.CancelledError):  # noqa: PT012 - the kill lands in one of these polls
        for _ in range(5):
            await first.poll_once()
    assert len(calls) == 150

    # A new process takes the symbol over: window from the group, pending entries claimed.
    settings = StrategySettings(REDIS_URL=redis_url, SYMBOLS=SYMBOL, _env_file=None)
    second = StrategyService(settings, redis_client, "restarted")
    await second._acquired(SYMBOL)
    await drain(second, redis_client)

    records = [decode(fields).payload for _, fields in await redis_client.xrange(streams.DECISIONS)]
    assert [r.candle_open_time_ms for r in records] == [k.open_time_ms for k in candles[1:]]
    entry, exit_ = expected_flags(candles)
    assert [(r.entry, r.exit) for r in records] == list(zip(entry[1:].tolist(), exit_[1:].tolist(), strict=True))


def _strategy_process(server: RedisServer, folder: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "BUS_SIGNING_KEY": os.environ["BUS_SIGNING_KEY"],
        # As its own ACL user, as in make run: the window rebuild reads only what the strategy may read.
        "REDIS_URL": server.user_url("strategy"),
        "SYMBOLS": SYMBOL,
        "TIMEFRAME": "1m",
        "INSTANCE_ID": name,
    }
    log = (folder / f"{name}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "services.strategy"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        log.close()


def _wait(predicate: Callable[[], object], what: str, folder: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s  # a bound on waiting only, nothing is asserted about speed
    while not predicate():
        if time.monotonic() > deadline:
            logs = "\n".join(
                f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(folder.glob("*.log"))
            )
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


@pytest.mark.timeout(400)  # two process starts (pandas-ta imports) on a loaded machine
def test_a_dead_lettered_candle_does_not_stop_the_strategy_after_a_restart(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", acl=True)
    admin = redis.Redis.from_url(server.url, decode_responses=True)
    stream = streams.kline_stream(SYMBOL)
    candles = klines(40)
    processes: list[subprocess.Popen[bytes]] = []

    def append(kline: Kline) -> None:
        admin.xadd(stream, encode(make_event(kline, "market_data", kline.close_time_ms)))

    def decided() -> set[int]:
        return {int(fields["candle_open_time_ms"]) for _, fields in admin.xrange(streams.DECISIONS)}

    try:
        for kline in candles[:30]:
            append(kline)
        # What no decoder accepts: the bus moves it to the dead-letter stream and acknowledges it.
        admin.xadd(stream, {"event_id": "broken", "type": "kline", "symbol": SYMBOL})
        for kline in candles[30:35]:
            append(kline)
        processes.append(_strategy_process(server, tmp_path, "strategy-first"))
        _wait(
            lambda: admin.xlen(streams.deadletter_stream(stream)) == 1 and candles[34].open_time_ms in decided(),
            "the first strategy to dead-letter the broken entry and decide the candles after it",
            tmp_path,
        )
        processes[0].send_signal(signal.SIGTERM)
        assert processes[0].wait(30) == 0

        # The next one rebuilds its window from the handled entries, the dead-lettered one among them.
        processes.append(_strategy_process(server, tmp_path, "strategy-restarted"))
        _wait(
            lambda: (
                admin.get(streams.lease_key("strategy", SYMBOL)) == "strategy-restarted"
                or processes[1].poll() is not None
            ),
            "the restarted strategy to take the symbol",
            tmp_path,
        )
        for kline in candles[35:]:
            append(kline)
        _wait(
            lambda: candles[-1].open_time_ms in decided() or processes[1].poll() is not None,
            "the restarted strategy to decide the new candles",
            tmp_path,
        )
        assert processes[1].poll() is None, (tmp_path / "strategy-restarted.log").read_text()
        assert {k.open_time_ms for k in candles[35:]} <= decided()
        assert admin.xlen(streams.deadletter_stream(stream)) == 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        admin.close()
        server.stop()


async def test_a_redis_restart_that_lost_its_last_writes_loses_no_decision(tmp_path: Path) -> None:
    """Redis SIGKILLed with ``appendfsync everysec`` comes back without its last second: here the
    decisions of the last two candles, the acknowledgement of the first of them and the newest
    kline itself (republished by market_data), while the strategy's window still holds both."""
    server = start_redis(tmp_path / "redis", appendonly=True)
    client = Redis.from_url(server.url, decode_responses=True)
    own = Redis.from_url(server.url, decode_responses=True)  # the strategy's, closed with it
    stop = asyncio.Event()
    running: asyncio.Task[None] | None = None
    try:
        await client.config_set("appendfsync", "always")  # what this test writes is what survives
        candles = klines(300)
        await client.hset(streams.MARKET_CLOCK, SYMBOL, candles[-1].close_time_ms + 1 + 24 * 60 * MINUTE)
        strategy = await service_over(server.url, own, candles)
        await strategy.leases.rebalance()  # the symbol is this replica's from now on: no rebuild at run
        await drain(strategy, client)
        stream = streams.kline_stream(SYMBOL)
        before_last, last = [entry_id for entry_id, _ in await client.xrevrange(stream, count=2)][::-1]
        lost = {candles[-2].open_time_ms, candles[-1].open_time_ms}
        for entry_id, fields in await client.xrange(streams.DECISIONS):
            if int(fields["candle_open_time_ms"]) in lost:
                await client.xdel(streams.DECISIONS, entry_id)
        await client.xdel(stream, last)
        await client.xclaim(stream, streams.GROUP_STRATEGY, strategy.consumer.name, 0, [before_last], force=True)

        running = asyncio.create_task(strategy.run(stop))
        await asyncio.sleep(0.5)
        server.kill()
        await asyncio.sleep(1.5)  # rounds fail while Redis is away
        server.restart()
        await client.aclose()
        client = Redis.from_url(server.url, decode_responses=True)  # no connection from before the crash
        for _ in range(100):
            try:
                await publish(client, stream, make_event(candles[-1], "market_data", candles[-1].close_time_ms))
                break
            except (redis.RedisError, OSError):
                await asyncio.sleep(0.1)

        def decided() -> list[int]:
            return [int(fields["candle_open_time_ms"]) for _, fields in entries]

        entries: list[tuple[str, dict[str, str]]] = []
        for _ in range(100):  # well within the 30 s after which idle entries are claimed
            entries = await client.xrange(streams.DECISIONS)
            pending = (await client.xpending(stream, streams.GROUP_STRATEGY))["pending"]
            if lost <= set(decided()) and not pending:
                break
            await asyncio.sleep(0.1)
        assert sorted(d for d in decided() if d in lost) == sorted(lost)
        assert not pending
    finally:
        stop.set()
        if running is not None:
            await asyncio.wait_for(running, 30)
        await own.aclose()
        await client.aclose()
        server.stop()
