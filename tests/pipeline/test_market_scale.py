"""Many symbols through the whole bot: the simulator serving re-based copies of two files, the
all-market ticker array, strategy and executor over every symbol; when the market stops, every
consumer group's real backlog is zero and nothing was dead-lettered."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.backlog import backlogs
from tests.support.stack import ROOT, Stack, prepare_data, start_stack

pytestmark = [pytest.mark.integration]
# Short EMAs and wide RSI bounds: entries and exits on many symbols within a short replay.
BUSY = {
    "EMA_SHORT_PERIOD": "2",
    "EMA_LONG_PERIOD": "3",
    "USE_EMA_FILTER": "false",
    "RSI_OVERBOUGHT": "99",
    "RSI_OVERSOLD": "1",
    "STOP_LOSS_PERCENTAGE": "0.002",
    "TAKE_PROFIT_PERCENTAGE": "0.004",
    "WARMUP_CANDLES": "60",
    "EXCHANGE_SIM_BALANCES": "USDT=1000000",
    "CAPITAL_ALLOCATION": "0.01",
}


def served_symbols(stack: Stack) -> list[str]:
    with urllib.request.urlopen(f"{stack.sim_url}/api/v3/exchangeInfo", timeout=30) as response:
        return [entry["symbol"] for entry in json.loads(response.read())["symbols"]]


def consumed(symbols: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for symbol in symbols:
        pairs.append((streams.kline_stream(symbol), streams.GROUP_STRATEGY))
        for stream in (
            streams.ticker_stream(symbol),
            streams.executor_inbox(symbol),
            streams.executions_stream(symbol),
        ):
            pairs.append((stream, streams.GROUP_EXECUTOR))
    return pairs


async def state(url: str, symbols: list[str]) -> tuple[int, int, int, list[str]]:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        found = await backlogs(redis, consumed(symbols))
        dead = [key async for key in redis.scan_iter(match="deadletter:*")]
    finally:
        await redis.aclose()
    return len(found), sum(b.entries for b in found), sum(b.pending for b in found), dead


@pytest.mark.parametrize(
    ("count", "speed", "live"),
    [
        # The whole market, short: a few live minute closes at a slower speed (every symbol's
        # candle closes at once), with entries and exits on many symbols.
        pytest.param(500, 10, 4, marks=pytest.mark.timeout(600), id="500"),
        # The long tier: ten live closes, of 50 symbols at a faster replay and of the whole market.
        pytest.param(50, 30, 10, marks=[pytest.mark.long, pytest.mark.timeout(420)], id="50"),
        pytest.param(500, 5, 10, marks=[pytest.mark.long, pytest.mark.timeout(1200)], id="500-long"),
    ],
)
def test_the_market_ends_with_no_backlog_and_no_dead_letter(tmp_path: Path, count: int, speed: int, live: int) -> None:
    data = [
        prepare_data(tmp_path, ROOT / "data" / f"{symbol}_1m_2025-05-20_2025-05-27.csv.gz", symbol, 0, 400)
        for symbol in ("BTCUSDT", "ETHUSDT")
    ]
    env = {**BUSY, "EXCHANGE_SIM_SCALE_SYMBOLS": str(count)}
    stack = start_stack(tmp_path / "stack", data=data, symbols=[], speed=speed, history=60, services=(), extra_env=env)
    try:
        symbols = served_symbols(stack)
        assert len(symbols) == count
        for name in ("market_data", "strategy", "executor"):
            stack.start(name, {"SYMBOLS": ",".join(symbols)})
        client = stack.client()
        # Every symbol's candles arrive and are decided, and some orders go out.
        stack.wait_for(
            lambda: all(client.xlen(streams.kline_stream(s)) >= 60 + live for s in symbols),
            240 if count <= 50 else 900,
            "live candles of every symbol",
        )
        stack.wait_for(lambda: client.xlen(streams.SIGNALS) >= 10, 60 if count <= 50 else 300, "signals")
        # The market streams fall silent (the exchange still answers, so orders in flight settle):
        # whatever was published must be consumed.
        stall = urllib.request.Request(
            f"{stack.sim_url}/_sim/faults/stall",
            data=json.dumps({"seconds": None}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(stall, timeout=10).close()

        def drained() -> bool:
            groups, behind, pending, dead = asyncio.run(state(stack.redis_url, symbols))
            return groups >= 2 * count and behind == 0 and pending == 0 and not dead

        deadline = time.monotonic() + (90 if count <= 50 else 600)
        while not drained() and time.monotonic() < deadline:
            time.sleep(1)
        groups, behind, pending, dead = asyncio.run(state(stack.redis_url, symbols))
        assert (behind, pending, dead) == (0, 0, []), stack.all_logs()
        assert groups >= 2 * count
        assert "Traceback" not in stack.logs("market_data") + stack.logs("executor"), stack.all_logs()
    finally:
        stack.stop_all()
