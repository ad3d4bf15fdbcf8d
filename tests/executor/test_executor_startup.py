"""The executor's first connection to an exchange that is not up yet.

A replay's clock runs from the moment the simulator starts, so an executor that waits a whole
fixed pause after its first refused connection misses candles the other services already
turned into signals. The pauses start short and double (capped).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from services.executor.config import ExecutorSettings
from services.executor.startup import connect_exchange
from shared.binance_client import close_client
from tests.executor.harness import executor_env
from tests.support.simulator import SimulatorProcess, free_port

pytestmark = pytest.mark.integration


def _settings(sim: SimulatorProcess, **extra: str) -> ExecutorSettings:
    env = executor_env(sim, "redis://127.0.0.1:1/0", "sqlite:///unused.sqlite3", "BTCUSDT", **extra)
    return ExecutorSettings(**env)


def _refusals(caplog: pytest.LogCaptureFixture) -> int:
    return sum("exchange not reachable" in r.getMessage() for r in caplog.records)


class _Refused(logging.Handler):
    """Sets ``event`` at the ``count``-th refused connection."""

    def __init__(self, count: int) -> None:
        super().__init__(logging.WARNING)
        self.count = count
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "exchange not reachable" in record.getMessage():
            self.count -= 1
            if self.count <= 0:
                self.event.set()


async def test_a_refused_first_connection_is_tried_again_within_a_fraction_of_a_second(
    simulator: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "services.executor")
    settings = _settings(simulator, SIM_URL=f"http://127.0.0.1:{free_port()}")
    stop = asyncio.Event()
    task = asyncio.create_task(connect_exchange(settings, stop))
    await asyncio.sleep(1.2)
    stop.set()
    assert await asyncio.wait_for(task, 5) is None
    # Pauses of 0.125-0.25 s, then 0.25-0.5 s, then 0.5-1 s: at least three attempts in 1.2 s
    # (a fixed 2 s pause made one).
    assert _refusals(caplog) >= 3


async def test_the_executor_connects_once_the_exchange_comes_up_after_it(simulator: SimulatorProcess) -> None:
    simulator.stop()
    stop = asyncio.Event()
    refused = _Refused(2)
    logging.getLogger("services.executor").addHandler(refused)
    try:
        task = asyncio.create_task(connect_exchange(_settings(simulator), stop))
        await asyncio.wait_for(refused.event.wait(), 10)
        await asyncio.to_thread(simulator.start)
        client = await asyncio.wait_for(task, 10)
        assert client is not None
        try:
            assert (await client.ping()) == {}
        finally:
            await close_client(client)
    finally:
        logging.getLogger("services.executor").removeHandler(refused)
        stop.set()
        if not simulator.running:
            await asyncio.to_thread(simulator.start)
