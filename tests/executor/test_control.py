"""Bot state and parameters as the executor follows them, against a real redis-server."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from redis.asyncio import Redis

from services.executor.config import ExecutorSettings
from services.executor.control import BotControl
from services.executor.notify import Notifier
from shared import streams
from shared.bus import publish
from shared.codec import decode, dumps, loads
from shared.events import BotCommand, make_event, now_ms
from shared.signing import seal_record
from tests.executor.harness import wait_until


def control(redis: Redis, **env: str) -> BotControl:
    return BotControl(redis, ExecutorSettings(**env), Notifier(redis))


async def published(redis: Redis, event_type: str) -> list:
    return [decode(f).payload for _, f in await redis.xrange(streams.EXECUTOR_EVENTS) if f["type"] == event_type]


async def test_absent_keys_mean_the_start_state_and_the_environment_parameters(redis_client: Redis) -> None:
    bot = control(redis_client, BOT_START_STATE="entries_paused", STOP_LOSS_PERCENTAGE="0.01")
    await bot.load()
    assert bot.state == "entries_paused" and not bot.entries_allowed and bot.strategy_exits_allowed
    assert Decimal("0.01") == bot.parameters.STOP_LOSS_PERCENTAGE and bot.parameters_version == 0
    [state] = await published(redis_client, "bot_state")
    assert state.state == "entries_paused"


async def test_stored_state_and_parameters_win_and_invalid_ones_are_refused(redis_client: Redis) -> None:
    await redis_client.set(
        streams.BOT_STATE, dumps(seal_record({"state": "stopped", "reason": "maintenance", "changed_at_ms": 1}))
    )
    await redis_client.set(streams.PARAMETERS, dumps(seal_record({"version": 3, "parameters": {"RSI_PERIOD": 10}})))
    bot = control(redis_client)
    await bot.load()
    assert bot.state == "stopped" and bot.reason == "maintenance" and not bot.strategy_exits_allowed
    assert bot.parameters.RSI_PERIOD == 10 and bot.parameters_version == 3

    await redis_client.set(streams.BOT_STATE, dumps(seal_record({"state": "dancing"})))
    await redis_client.set(
        streams.PARAMETERS, dumps(seal_record({"version": 4, "parameters": {"EMA_SHORT_PERIOD": 50}}))
    )
    other = control(redis_client)
    await other.load()
    assert other.state == "running" and other.parameters_version == 0
    codes = [a.code for a in await published(redis_client, "executor_alert")]
    assert codes == ["bot_state_invalid", "parameters_refused"]


async def test_commands_are_followed_from_where_the_state_was_read(redis_client: Redis) -> None:
    bot = control(redis_client)
    await bot.load()
    # Written after load() but before following starts: still applied.
    await publish(
        redis_client, streams.CONTROL_COMMANDS, make_event(BotCommand(command="stop", requested_by="ops"), "api")
    )
    stop = asyncio.Event()
    task = asyncio.create_task(bot.follow(stop, block_ms=50))
    try:
        await wait_until(lambda: _is(bot, "stopped"), 5, "stopped")
        assert "ops" in bot.reason
        await publish(
            redis_client,
            streams.CONTROL_COMMANDS,
            make_event(BotCommand(command="close_position", symbol="BTCUSDT"), "api"),
        )
        await publish(redis_client, streams.CONTROL_COMMANDS, make_event(BotCommand(command="pause_entries"), "api"))
        await wait_until(lambda: _is(bot, "entries_paused"), 5, "paused")
        await publish(redis_client, streams.CONTROL_COMMANDS, make_event(BotCommand(command="start"), "api"))
        await wait_until(lambda: _is(bot, "running"), 5, "running")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    states = [s.state for s in await published(redis_client, "bot_state")]
    assert states == ["running", "stopped", "entries_paused", "running"]


async def test_error_state_is_stored_for_the_dashboard_and_cleared_by_start(redis_client: Redis) -> None:
    bot = control(redis_client)
    await bot.load()
    await bot.enter_error("credentials refused by the exchange: -2015")
    await bot.enter_error("credentials refused by the exchange: -2015")
    stored = loads(await redis_client.get(streams.BOT_STATE))
    assert stored["state"] == "error" and "-2015" in stored["reason"] and stored["changed_at_ms"] <= now_ms()
    assert not bot.entries_allowed and bot.strategy_exits_allowed and "-2015" in bot.entry_refusal()
    await bot.apply(make_event(BotCommand(command="start"), "api"))
    assert bot.state == "running"
    assert [s.state for s in await published(redis_client, "bot_state")] == ["running", "error", "running"]


async def _is(bot: BotControl, state: str) -> bool:
    return bot.state == state


async def test_two_replicas_apply_a_command_and_answer_it_once(redis_client: Redis) -> None:
    replicas = [control(redis_client), control(redis_client)]
    for bot in replicas:
        await bot.load()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(bot.follow(stop, block_ms=50)) for bot in replicas]
    try:
        await publish(
            redis_client,
            streams.CONTROL_COMMANDS,
            make_event(BotCommand(command="pause_entries", requested_by="ops", command_id="cmd-1"), "api"),
        )
        for bot in replicas:
            await wait_until(lambda bot=bot: _is(bot, "entries_paused"), 5, "paused on every replica")
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*(asyncio.wait_for(task, 5) for task in tasks))
    [outcome] = [a for a in await published(redis_client, "command_outcome") if a.command_id == "cmd-1"]
    assert outcome.outcome == "done" and outcome.command == "pause_entries" and "no new entries" in outcome.reason
