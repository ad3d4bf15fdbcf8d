"""The notifier against a real redis-server and a local JSON receiver (Apprise ``json://``):
each notified event arrives once per target, also across restarts, outages and redeliveries;
the daily summary follows the market clock and is sent once per market day."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from services.notifier.config import NotifierSettings
from services.notifier.service import run
from shared import streams
from shared.bus import publish
from shared.events import (
    CommandOutcome,
    ExecutorAlert,
    Outcome,
    PositionClosed,
    PositionOpened,
    PositionSnapshot,
    make_event,
)
from shared.events.envelope import Envelope
from shared.store.database import migrate
from tests.api.helpers import T0, seed
from tests.support.receiver import Receiver

pytestmark = pytest.mark.timeout(60)
DAY = 86_400_000


def opened(n: int) -> Envelope:
    payload = PositionOpened(
        symbol="BTCUSDT",
        entry_price=Decimal("105861.12"),
        quantity=Decimal("0.0012"),
        quote_spent=Decimal("127.03"),
        stop_loss=Decimal("103743.9"),
        take_profit=Decimal("111154.17"),
        entry_time_ms=T0,
        client_order_id=f"EB-BTCUSDT-{n}",
    )
    return make_event(payload, "executor", event_id=f"position_opened:EB-BTCUSDT-{n}")


def closed(n: int) -> Envelope:
    payload = PositionClosed(
        symbol="BTCUSDT",
        entry_price=Decimal("100"),
        exit_price=Decimal("105"),
        quantity=Decimal("1"),
        quote_spent=Decimal("100"),
        quote_received=Decimal("104.8"),
        return_pct=Decimal("4.8"),
        exit_reason="take_profit",
        entry_time_ms=T0,
        exit_time_ms=T0 + 60_000,
        client_order_id=f"XS-BTCUSDT-{n}",
    )
    return make_event(payload, "executor", event_id=f"position_closed:XS-BTCUSDT-{n}")


def alert(level: str, code: str, message: str = "something") -> Envelope:
    return make_event(ExecutorAlert(level=level, code=code, message=message, symbol="BTCUSDT"), "executor")


class Notifier:
    """``services.notifier`` run in this test's event loop, stoppable and restartable."""

    def __init__(self, redis: Redis, settings: NotifierSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(run(self.settings, self.redis, self.stop, "test"))

        async def grouped() -> bool:
            return await self.redis.exists(streams.EXECUTOR_EVENTS) and any(
                g["name"] == streams.GROUP_NOTIFIER for g in await self.redis.xinfo_groups(streams.EXECUTOR_EVENTS)
            )

        await until(grouped, "the notifier's consumer group")

    async def halt(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 20)


async def until(predicate: Callable[[], Any], what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def settings_for(redis_url: str, tmp_path: Path) -> Callable[..., NotifierSettings]:
    def make(*receivers: Receiver, **env: str) -> NotifierSettings:
        values = {
            "REDIS_URL": redis_url,
            "NOTIFY_URLS": " ".join(r.url for r in receivers),
            "NOTIFY_RETRY_MAX_S": "0.2",
            "NOTIFY_TIMEOUT_S": "5",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
            "SYMBOLS": "BTCUSDT",
            **env,
        }
        return NotifierSettings(_env_file=None, **values)

    return make


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = Receiver().start()
    yield started
    started.stop()


def titles(receiver: Receiver) -> list[str]:
    return [message["title"] for message in receiver.messages()]


async def test_each_event_arrives_once_across_restarts_outages_and_redeliveries(
    redis_client: Redis,
    receiver: Receiver,
    settings_for: Callable[..., NotifierSettings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    notifier = Notifier(redis_client, settings_for(receiver))
    await notifier.start()
    for event in (
        opened(1),
        alert("error", "exit_refused", "sell refused: -2010"),
        alert("info", "reconciled"),
        make_event(CommandOutcome(command_id="c1", command="stop", outcome=Outcome.ACCEPTED), "executor"),
        make_event(PositionSnapshot(symbol="BTCUSDT", status="FLAT"), "executor"),
    ):
        await publish(redis_client, streams.EXECUTOR_EVENTS, event)
    await until(lambda: len(receiver.messages()) >= 2, "the entry fill and the error alert")
    first = receiver.messages()
    assert [m["title"] for m in first] == ["BTCUSDT entry filled", "BTCUSDT error: exit_refused"]
    assert "Bought 0.0012 BTC at 105861.12 (127.03 USDT spent)" in first[0]["message"]
    assert first[1]["type"] == "failure" and "sell refused" in first[1]["message"]

    # A restart, then a receiver that is down: nothing is lost, nothing arrives twice.
    await notifier.halt()
    receiver.stop()
    await notifier.start()
    await publish(redis_client, streams.EXECUTOR_EVENTS, closed(1))
    await publish(
        redis_client,
        streams.EXECUTOR_EVENTS,
        make_event(
            CommandOutcome(command_id="c2", command="close_all", outcome=Outcome.DONE, reason="sold"), "executor"
        ),
    )
    await until(lambda: any("not delivered" in r.getMessage() for r in caplog.records), "a failed attempt")
    await notifier.halt()  # stopped while retrying: the entry stays pending
    await notifier.start()
    receiver.start()
    await until(lambda: len(receiver.messages()) >= 4, "the exit fill and the command after the outage")
    # The executor publishing the same event again (same event id) notifies nobody twice.
    await publish(redis_client, streams.EXECUTOR_EVENTS, opened(1))
    await publish(redis_client, streams.EXECUTOR_EVENTS, opened(2))
    await until(lambda: len(receiver.messages()) >= 5, "the next entry fill")
    await notifier.halt()
    assert titles(receiver) == [
        "BTCUSDT entry filled",
        "BTCUSDT error: exit_refused",
        "BTCUSDT exit filled: take_profit",
        "Command close_all: done",
        "BTCUSDT entry filled",
    ]
    assert "Result +4.80 USDT (+4.80 %)" in receiver.messages()[2]["message"]
    groups = await redis_client.xinfo_groups(streams.EXECUTOR_EVENTS)
    assert [(g["pending"], g["lag"]) for g in groups] == [(0, 0)]


async def test_a_target_that_was_down_gets_its_copy_and_the_others_no_second_one(
    redis_client: Redis, receiver: Receiver, settings_for: Callable[..., NotifierSettings]
) -> None:
    down = Receiver()
    notifier = Notifier(redis_client, settings_for(receiver, down, NOTIFY_EVENTS="entry_fill"))
    await notifier.start()
    try:
        await publish(redis_client, streams.EXECUTOR_EVENTS, closed(1))  # not chosen in NOTIFY_EVENTS
        await publish(redis_client, streams.EXECUTOR_EVENTS, opened(1))
        await until(lambda: len(receiver.messages()) == 1, "the first target")
        down.start()
        await until(lambda: len(down.messages()) == 1, "the target that was down")
        await publish(redis_client, streams.EXECUTOR_EVENTS, opened(2))
        await until(lambda: len(down.messages()) == 2 and len(receiver.messages()) == 2, "the next entry on both")
    finally:
        await notifier.halt()
        down.stop()
    assert titles(receiver) == titles(down) == ["BTCUSDT entry filled"] * 2


async def test_the_daily_summary_follows_the_market_clock_and_is_sent_once_per_market_day(
    redis_client: Redis, receiver: Receiver, settings_for: Callable[..., NotifierSettings]
) -> None:
    settings = settings_for(receiver, NOTIFY_EVENTS="daily_summary")
    migrate(settings.database_url)
    await seed(settings.database_url)  # 5 trades closed on 2025-05-20 (market time), one ETHUSDT open
    day = T0  # 2025-05-20T00:00Z
    await redis_client.hset(streams.MARKET_CLOCK, "BTCUSDT", day + 10 * 3_600_000)
    notifier = Notifier(redis_client, settings)
    await notifier.start()
    await until(lambda: redis_client.exists(streams.NOTIFIER_SUMMARY), "the current market day noted")
    assert int(await redis_client.get(streams.NOTIFIER_SUMMARY)) == day
    await redis_client.hset(streams.MARKET_CLOCK, "BTCUSDT", day + DAY + 30_000)  # the market day ended
    await until(lambda: len(receiver.messages()) == 1, "the summary of 2025-05-20")
    summary = receiver.messages()[0]
    assert summary["title"] == "Daily summary 2025-05-20"
    assert summary["message"].startswith("5 trade(s) closed, 5 won (100.00 %); realised +")
    assert "Since the start: 5 trade(s)" in summary["message"]
    # A restart later the same market day sends nothing; the next day's end sends the next one.
    await notifier.halt()
    await redis_client.hset(streams.MARKET_CLOCK, "BTCUSDT", day + DAY + 5 * 3_600_000)
    await notifier.start()
    await redis_client.hset(streams.MARKET_CLOCK, "BTCUSDT", day + 2 * DAY + 1)
    await until(lambda: len(receiver.messages()) == 2, "the summary of 2025-05-21")
    await notifier.halt()
    assert titles(receiver) == ["Daily summary 2025-05-20", "Daily summary 2025-05-21"]
    assert receiver.messages()[1]["message"].startswith("No trade closed.")
