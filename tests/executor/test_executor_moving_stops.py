"""Trailing and break-even stops in the executor service object, against the simulator, a real
redis-server and a SQLite ledger: a closed kline after the entry raises the stop in the ledger and
the snapshot, a tick through the raised stop sells with reason stop_loss, a restarted executor
keeps the raised level; the ATR stop of an entry is the backtester's for the same candle."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal

import numpy as np
import pytest

from backtest.moving import StopAtr
from services.executor.config import ExecutorSettings
from shared import streams
from shared.bus import publish
from shared.candles import CandleArrays
from shared.codec import loads
from shared.events import Kline, make_event
from shared.parameters import StrategyParameters
from shared.trading.ids import entry_client_order_id
from shared.trading.stops import atr_stop, atr_window, initial_levels
from tests.executor.harness import MINUTE, InProcess, executor_env, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess

SYMBOL = "BTCUSDT"
TRAILING = Decimal("0.01")
_candles = itertools.count(random.randrange(1_000_000) * 1000)
# Never before the exchange's clock: a candle from the past would be refused as too old at the
# exchange (its simulator runs at 1x from the wall clock); a day ahead plus a random offset keeps
# the module's client ids apart from other runs' on the same simulator.
_START = time.time_ns() // 1_000_000 // MINUTE * MINUTE + 1440 * MINUTE


def candle() -> int:
    return _START + next(_candles) * MINUTE


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, TRAILING_STOP_PERCENTAGE=str(TRAILING))
    yield handle
    await handle.close()


async def closed_kline(ex: InProcess, open_ms: int, close: Decimal) -> None:
    """A closed candle on the symbol's kline stream, as market_data appends it."""
    kline = Kline(
        symbol=SYMBOL,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + MINUTE - 1,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=Decimal(1),
        closed=True,
    )
    event = make_event(kline, "market_data", open_ms + MINUTE - 1, event_id=f"kline-{SYMBOL}-1m-{open_ms}")
    await publish(ex.redis, streams.kline_stream(SYMBOL), event)


def trailed(close: Decimal, tick: Decimal) -> Decimal:
    return (close * (1 - TRAILING) / tick).to_integral_value(ROUND_CEILING) * tick


async def test_a_closed_candle_raises_the_stop_and_a_tick_through_it_sells(
    ex: InProcess, simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    entry_candle = candle()
    await ex.bus.signal(SYMBOL, "BUY", entry_candle)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    tick = (await ex.executor.exchange.symbol_info(SYMBOL)).filters.tick_size
    initial = position.stop_loss
    # The entry candle's own close moves nothing; the next candle's close 2 % up raises the stop.
    await closed_kline(ex, entry_candle, position.entry_price * Decimal("1.05"))
    high = (position.entry_price * Decimal("1.02") / tick).to_integral_value() * tick
    await closed_kline(ex, entry_candle + MINUTE, high)
    expected = trailed(high, tick)
    assert initial < position.entry_price < expected

    between = expected + 5 * tick  # above the moved stop, below the take-profit
    await ex.bus.tick(SYMBOL, str(between), ts_event_ms=entry_candle + 2 * MINUTE + 5)
    moved = await wait_until(lambda: _stop_is(ex, expected), 10, f"stop moved from {initial} to {expected}")
    snapshot = await wait_until(lambda: _snapshot_stop(ex, expected), 5, "snapshot with the moved stop")
    assert moved.status == "OPEN" and snapshot["status"] == "OPEN"

    # A lower close never lowers it.
    await closed_kline(ex, entry_candle + 2 * MINUTE, position.entry_price)
    await ex.bus.tick(SYMBOL, str(between), ts_event_ms=entry_candle + 3 * MINUTE + 5)
    await wait_until(lambda: _ticks_drained(ex), 10, "ticks handled")
    assert (await ex.ledger.open_position(SYMBOL)).stop_loss == expected

    # A restarted executor keeps the moved level (it is the ledger's), then sells through it.
    await ex.close()
    again = await start_in_process(
        simulator, redis_url, sqlite_url, SYMBOL, TRAILING_STOP_PERCENTAGE=str(TRAILING), instance="executor-2"
    )
    try:
        assert (await again.ledger.open_position(SYMBOL)).stop_loss == expected
        await again.bus.tick(SYMBOL, str(expected - tick), ts_event_ms=entry_candle + 4 * MINUTE + 5)
        [closed] = await wait_until(lambda: again.ledger.closed(SYMBOL), 10, "position CLOSED")
        assert closed.exit_reason == "stop_loss" and closed.stop_loss == expected
    finally:
        await again.close()
        ex.close = _already_closed  # type: ignore[method-assign]


async def _already_closed() -> None:
    return None


async def _stop_is(ex: InProcess, level: Decimal):
    position = await ex.ledger.open_position(SYMBOL)
    return position if position is not None and position.stop_loss == level else None


async def _snapshot_stop(ex: InProcess, level: Decimal):
    snapshot = await ex.bus.snapshot(SYMBOL)
    return snapshot if snapshot and Decimal(snapshot["stop_loss"]) == level else None


async def _ticks_drained(ex: InProcess) -> bool:
    groups = await ex.redis.xinfo_groups(streams.ticker_stream(SYMBOL))
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


def test_moving_and_atr_stops_are_accepted_with_either_protection(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    for protection in ("bot", "exchange"):
        env = executor_env(
            simulator,
            redis_url,
            sqlite_url,
            SYMBOL,
            PROTECTION=protection,
            BREAK_EVEN_AT_PERCENTAGE="0.01",
            TRAILING_STOP_ATR_MULTIPLIER="2",
            STOP_MODE="atr",
        )
        settings = ExecutorSettings(**env)
        assert settings.initial_parameters().STOP_MODE == "atr"


async def test_the_atr_stop_applied_live_equals_the_backtesters_for_the_same_candle(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    period, multiplier = 3, Decimal("1.5")
    handle = await start_in_process(
        simulator,
        redis_url,
        sqlite_url,
        SYMBOL,
        STOP_MODE="atr",
        STOP_ATR_PERIOD=str(period),
        ATR_STOP_MULTIPLIER=str(multiplier),
    )
    try:
        last = await handle.redis.hget(streams.MARKET_LAST_PRICE, SYMBOL)
        base = Decimal(str(last)) if last else Decimal(100_000)
        first = candle()
        for _ in range(atr_window(period) + 2):
            candle()  # the signal's candle comes after a whole window of klines
        rows = []
        for i in range(atr_window(period) + 2):
            rng = Decimal(20 + (i * 37) % 90)  # irregular ranges: the window's seed matters
            close = base + Decimal((i * 53) % 70) - 35
            rows.append((close - rng / 3, close + rng / 2, close - rng / 2, close))
            await _kline(handle, first + i * MINUTE, *rows[-1])
        signal_candle = first + (len(rows) - 1) * MINUTE
        await handle.bus.signal(SYMBOL, "BUY", signal_candle, price=str(rows[-1][3]))
        position = await wait_until(lambda: handle.ledger.open_position(SYMBOL), 10, "position OPEN")
        # The backtester's ATR of the same candle, from the same candles as its arrays hold them.
        columns = [np.array([float(r[k]) for r in rows], dtype=np.float64) for k in range(4)]
        arrays = CandleArrays(np.arange(len(rows), dtype=np.int64) * MINUTE, *columns, np.ones(len(rows)))
        atr = StopAtr(arrays, period).at(len(rows) - 1)
        assert atr is not None
        params = StrategyParameters(STOP_MODE="atr", STOP_ATR_PERIOD=period, ATR_STOP_MULTIPLIER=multiplier)
        tick = (await handle.executor.exchange.symbol_info(SYMBOL)).filters.tick_size
        assert (position.stop_loss, position.take_profit) == initial_levels(position.entry_price, params, tick, atr)
        assert position.stop_loss == atr_stop(position.entry_price, atr, multiplier, tick)
        assert loads(position.entry_indicators)["stop_atr"] == float(atr)
    finally:
        await handle.close()


async def test_an_atr_entry_without_its_window_of_klines_is_skipped(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL, STOP_MODE="atr", STOP_ATR_PERIOD="3")
    try:
        lonely = candle()
        await _kline(handle, lonely, Decimal(100), Decimal(101), Decimal(99), Decimal(100))
        await handle.bus.signal(SYMBOL, "BUY", lonely)
        [alert] = await wait_until(lambda: handle.bus.alerts("entry_skipped", SYMBOL), 10, "entry skipped")
        assert "no ATR(3)" in alert.message and "STOP_MODE=atr" in alert.message
        assert await handle.ledger.order(entry_client_order_id(SYMBOL, lonely)) is None
    finally:
        await handle.close()


async def _kline(ex: InProcess, open_ms: int, o: Decimal, h: Decimal, lo: Decimal, c: Decimal) -> None:
    kline = Kline(
        symbol=SYMBOL,
        interval="1m",
        open_time_ms=open_ms,
        close_time_ms=open_ms + MINUTE - 1,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=Decimal(1),
        closed=True,
    )
    event = make_event(kline, "market_data", open_ms + MINUTE - 1, event_id=f"kline-{SYMBOL}-1m-{open_ms}")
    await publish(ex.redis, streams.kline_stream(SYMBOL), event)


async def test_an_atr_trailing_stop_moves_live_to_the_backtesters_level_for_the_same_candles(
    simulator: SimulatorProcess, redis_url: str, sqlite_url: str
) -> None:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0", "ETH": "0"})
    period, multiplier = 2, Decimal(2)
    handle = await start_in_process(
        simulator,
        redis_url,
        sqlite_url,
        SYMBOL,
        STOP_ATR_PERIOD=str(period),
        TRAILING_STOP_ATR_MULTIPLIER=str(multiplier),
    )
    try:
        before = atr_window(period) - 1
        for _ in range(before):
            candle()
        entry_candle = candle()
        await handle.bus.signal(SYMBOL, "BUY", entry_candle)
        position = await wait_until(lambda: handle.ledger.open_position(SYMBOL), 10, "position OPEN")
        entry = position.entry_price
        # The window of the candle after the entry's: klines around the entry price, then a close 1 % up.
        rows = []
        for i in range(before + 1):
            close = entry * (1 + Decimal((i * 7) % 5 - 2) / 10_000)
            rows.append((close, close * Decimal("1.0004"), close * Decimal("0.9995"), close))
        up = entry * Decimal("1.01")
        rows.append((up, up * Decimal("1.0003"), up * Decimal("0.9996"), up))
        rows = [tuple(v.quantize(Decimal("0.01")) for v in row) for row in rows]
        first = entry_candle - before * MINUTE
        for i, row in enumerate(rows):
            await _kline(handle, first + i * MINUTE, *row)
        tick = (await handle.executor.exchange.symbol_info(SYMBOL)).filters.tick_size
        columns = [np.array([float(r[k]) for r in rows], dtype=np.float64) for k in range(4)]
        arrays = CandleArrays(np.arange(len(rows), dtype=np.int64) * MINUTE, *columns, np.ones(len(rows)))
        atr = StopAtr(arrays, period).at(len(rows) - 1)
        assert atr is not None
        expected = ((rows[-1][3] - multiplier * atr) / tick).to_integral_value(ROUND_CEILING) * tick
        assert expected > position.stop_loss
        await handle.bus.tick(SYMBOL, str(up), ts_event_ms=entry_candle + 2 * MINUTE + 5)
        await wait_until(lambda: _stop_is(handle, expected), 10, f"stop moved to {expected}")
    finally:
        await handle.close()
