"""The exchange's clock decides what belongs to a position and whether an entry may still go out.

The simulator replays at 60x, so its market time runs ahead of the wall clock, as in every
replay; the market feed (played here by the test) lags it. What the exchange stamps (the
entry fill) is market time, so a price or SELL from before the fill is recognised by its
market time alone, whenever it reaches the bus; and a BUY the lagging feed still calls fresh
is abandoned once the exchange's own current candle is past its allowance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shared import streams
from shared.codec import decode
from shared.trading.ids import entry_client_order_id
from tests.executor.harness import MINUTE, InProcess, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess, start_simulator

SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    with start_simulator(tmp_path_factory.mktemp("replay_60x"), speed=60, history=50) as sim:
        yield sim


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    simulator.set_balances({"USDT": "10000", "BTC": "0"})
    handle = await start_in_process(simulator, redis_url, sqlite_url, SYMBOL)
    yield handle
    await handle.close()


_USED: set[int] = set()  # signal candles of this module's tests: client ids stay unique on the simulator


def exchange_candle(sim: SimulatorProcess) -> int:
    """Open time of the candle forming now on the simulator's market clock."""
    return int(sim.state()["market"]["market_time"]) // MINUTE * MINUTE


def unused(candle: int) -> int:
    """``candle``, or an older one no other test here signalled (older is only more stale)."""
    while candle in _USED:
        candle -= MINUTE
    _USED.add(candle)
    return candle


async def drained(ex: InProcess, stream: str) -> bool:
    groups = await ex.redis.xinfo_groups(stream)
    return all(g["pending"] == 0 and g["lag"] == 0 for g in groups)


async def notes(ex: InProcess) -> list[tuple[int, str]]:
    records = [decode(fields).payload for _, fields in await ex.redis.xrange(streams.DECISIONS)]
    return [(r.candle_open_time_ms, r.note) for r in records if r.note]


async def test_prices_and_sells_from_before_the_fill_do_not_exit_though_they_arrive_after_it(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    signal_candle = unused(exchange_candle(simulator) - MINUTE)  # the candle that just closed at the exchange
    await ex.bus.signal(SYMBOL, "BUY", signal_candle)
    position = await wait_until(lambda: ex.ledger.open_position(SYMBOL), 10, "position OPEN")
    filled = position.entry_time_ms
    assert filled >= signal_candle + MINUTE  # stamped in market time, after the signal's close

    # The lagging feed now delivers what happened before the fill: a price at the stop-loss
    # stamped at the signal candle's close, and the SELL of that very candle.
    await ex.bus.tick(SYMBOL, str(position.stop_loss), ts_event_ms=signal_candle + MINUTE)
    await ex.bus.signal(SYMBOL, "SELL", signal_candle)
    await wait_until(lambda: drained(ex, streams.ticker_stream(SYMBOL)), 5, "ticks handled")
    await wait_until(lambda: drained(ex, streams.executor_inbox(SYMBOL)), 5, "inbox handled")
    assert (await ex.ledger.active(SYMBOL)).status == "OPEN"
    assert len(await ex.ledger.orders(SYMBOL)) == 1
    assert (signal_candle, "exit ignored: signal from before the entry") in await notes(ex)

    # The first price after the fill at the level exits, in the candle it was stamped in.
    after = filled + 1_000
    await ex.bus.tick(SYMBOL, str(position.stop_loss), ts_event_ms=after)
    [closed] = await wait_until(lambda: ex.ledger.closed(SYMBOL), 10, "position CLOSED")
    assert closed.exit_reason == "stop_loss" and closed.exit_candle_open_ms == after // MINUTE * MINUTE


async def test_an_entry_whose_allowance_passed_at_the_exchange_is_abandoned_not_filled(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    # The feed lags: by the market clock the BUY's candle has just closed, but the exchange is
    # already three candles further (SIGNAL_MAX_AGE_CANDLES is 1).
    signal_candle = unused(exchange_candle(simulator) - 3 * MINUTE)
    client_id = entry_client_order_id(SYMBOL, signal_candle)
    await ex.bus.signal(SYMBOL, "BUY", signal_candle)
    order = await wait_until(lambda: _rejected(ex, client_id), 10, "entry abandoned before sending")
    assert "signal too old at the exchange" in order.reason
    assert client_id not in simulator.state()["client_order_ids"]
    assert (await ex.bus.snapshot(SYMBOL))["status"] == "FLAT"
    [(candle, note)] = await wait_until(lambda: notes(ex), 5, "decision-log note")
    assert candle == signal_candle and note.startswith("skipped: signal too old at the exchange")
    assert note.endswith("(entry abandoned before sending)")


async def _rejected(ex: InProcess, client_id: str):
    order = await ex.ledger.order(client_id)
    return order if order is not None and order.status == "REJECTED" else None
