"""A burst of entries (many symbols' BUY signals at one minute close): every order is sent
before any answer is applied, and a symbol's later event still sees its own answer applied
first (``services.executor.later``)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from shared import streams
from shared.bus import publish_atomically
from shared.codec import decode
from shared.events import Envelope, PositionSnapshot, now_ms
from shared.trading.ids import entry_client_order_id
from tests.executor.harness import MINUTE, InProcess, candle, start_in_process, wait_until
from tests.support.simulator import SimulatorProcess, simulator_fixture

COUNT = 6
# Re-based copies of the data files (``exchange_sim.scale``): BTC000USDT, ETH001USDT, ...
SYMBOLS = [f"{('BTC', 'ETH')[i % 2]}{i:03d}USDT" for i in range(COUNT)]


# Exchange time = wall time, as the signals' candles assume (harness.candle).
simulator = simulator_fixture(
    speed=1, history=50, balances="USDT=1000000", extra_env={"EXCHANGE_SIM_SCALE_SYMBOLS": str(COUNT)}
)


@pytest.fixture
async def ex(simulator: SimulatorProcess, redis_url: str, sqlite_url: str) -> AsyncIterator[InProcess]:
    simulator.reset_faults()
    # Two candles of allowance: a tick stamped just after the fill moves the market clock past
    # the signal's candle by up to a minute before the executor reads the signal.
    handle = await start_in_process(
        simulator, redis_url, sqlite_url, ",".join(SYMBOLS), RISK_PER_TRADE="0.001", SIGNAL_MAX_AGE_CANDLES="2"
    )
    yield handle
    await handle.close()


async def _publish_burst(ex: InProcess, simulator: SimulatorProcess, symbols: list[str], candle_open_ms: int) -> None:
    """Every symbol's BUY signal in one transaction: the executor reads them in one batch."""
    prices = await asyncio.to_thread(_prices, simulator)
    events: list[tuple[str, Envelope]] = []
    for symbol in symbols:
        await ex.bus.fresh(symbol, candle_open_ms + MINUTE)
        event = ex.bus.signal_event(symbol, "BUY", candle_open_ms, prices[symbol])
        events += [(streams.SIGNALS, event), (streams.executor_inbox(symbol), event)]
    await publish_atomically(ex.redis, events)


def _prices(simulator: SimulatorProcess) -> dict[str, str]:
    with urllib.request.urlopen(f"{simulator.base_url}/api/v3/ticker/price", timeout=10) as response:
        return {row["symbol"]: row["price"] for row in json.loads(response.read())}


async def _all_open(ex: InProcess, symbols: list[str]) -> bool:
    return all([await ex.ledger.open_position(s) is not None for s in symbols])


async def test_every_order_of_a_burst_is_sent_before_any_answer_is_applied(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    entry_candle = candle()
    await _publish_burst(ex, simulator, SYMBOLS, entry_candle)
    await wait_until(lambda: _all_open(ex, SYMBOLS), 15, "every position OPEN")
    ids = {entry_client_order_id(s, entry_candle, "BUY") for s in SYMBOLS}
    received = simulator.state()["received_wall_ms"]
    last_sent = max(received[cid] for cid in ids)
    # An answer applied moves the position on to OPEN, which the executor tells right after the
    # ledger's commit (the last one may still be on its way when the ledger shows it).
    opened = await wait_until(lambda: _opened_at(ex, COUNT), 5, f"{COUNT} OPEN snapshots")
    # One clock (the machine's wall clock, in ms) for the simulator's receipt and Redis' ids.
    assert last_sent <= min(opened), f"an answer was applied {last_sent - min(opened)} ms before the last send"
    for symbol in SYMBOLS:
        position = await ex.ledger.open_position(symbol)
        assert position is not None and position.stop_loss is not None and position.take_profit is not None


async def _opened_at(ex: InProcess, count: int) -> list[int] | None:
    """The Redis times (ms) of the OPEN position snapshots, once there are ``count`` of them."""
    entries = await ex.redis.xrange(streams.EXECUTOR_EVENTS)
    opened = [
        int(entry_id.split("-")[0])
        for entry_id, event in ((entry_id, decode(fields)) for entry_id, fields in entries)
        if isinstance(event.payload, PositionSnapshot) and event.payload.status == "OPEN"
    ]
    return opened if len(opened) >= count else None


async def test_a_tick_that_comes_while_the_answer_waits_is_checked_against_the_filled_position(
    ex: InProcess, simulator: SimulatorProcess
) -> None:
    entry_candle = candle()
    first, second = SYMBOLS[0], SYMBOLS[1]
    await _publish_burst(ex, simulator, [first, second], entry_candle)
    # A price far under the stop, stamped after the fill: read once the first symbol has an
    # order pending, whether or not its answer has been applied by then.
    info = await ex.executor.exchange.symbol_info(first)
    price = (Decimal((await asyncio.to_thread(_prices, simulator))[first]) * Decimal("0.8")).quantize(
        info.filters.tick_size
    )
    await ex.bus.tick(first, str(price), ts_event_ms=now_ms() + 2000)
    [closed] = await wait_until(lambda: ex.ledger.closed(first), 15, f"{first} CLOSED")
    assert closed.exit_reason == "stop_loss"
    await wait_until(lambda: ex.ledger.open_position(second), 10, f"{second} OPEN")
