"""shared.control against a real Redis: versions, atomicity, commands."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.codec import decode, loads
from shared.control import CommandError, bot_state, current_parameters, send_command, update_parameters
from shared.parameters import ParameterError, StrategyParameters

DEFAULT = StrategyParameters(EMA_SHORT_PERIOD=5)


async def test_version_zero_is_the_default_set(redis_client: Redis) -> None:
    assert await current_parameters(redis_client, DEFAULT) == (0, DEFAULT)


async def test_update_merges_over_the_current_set_and_records_the_previous(redis_client: Redis) -> None:
    version, params = await update_parameters(redis_client, {"RSI_PERIOD": 10}, "tester", DEFAULT)
    assert version == 1 and params.EMA_SHORT_PERIOD == 5 and params.RSI_PERIOD == 10
    version, params = await update_parameters(redis_client, {"EMA_LONG_PERIOD": 30}, "tester", DEFAULT)
    assert version == 2 and params.RSI_PERIOD == 10
    assert await current_parameters(redis_client, DEFAULT) == (2, params)
    events = [decode(fields).payload for _, fields in await redis_client.xrange(streams.CONTROL_PARAMETERS)]
    assert [(e.parameters_version, e.previous["EMA_LONG_PERIOD"], e.parameters["EMA_LONG_PERIOD"]) for e in events] == [
        (1, 21, 21),
        (2, 21, 30),
    ]
    assert events[0].previous["EMA_SHORT_PERIOD"] == 5  # the default set it replaced


async def test_an_unchanged_set_is_not_a_new_version(redis_client: Redis) -> None:
    await update_parameters(redis_client, {"RSI_PERIOD": 10}, "tester", DEFAULT)
    assert (await update_parameters(redis_client, {"RSI_PERIOD": 10}, "tester", DEFAULT))[0] == 1
    assert await redis_client.xlen(streams.CONTROL_PARAMETERS) == 1


async def test_invalid_merged_set_raises_and_writes_nothing(redis_client: Redis) -> None:
    with pytest.raises(ParameterError) as error:
        await update_parameters(redis_client, {"EMA_LONG_PERIOD": 4}, "tester", DEFAULT)
    assert [field for field, _ in error.value.problems] == ["EMA_SHORT_PERIOD"]
    assert not await redis_client.exists(streams.PARAMETERS, streams.CONTROL_PARAMETERS)


async def test_concurrent_updates_never_share_a_version(redis_url: str) -> None:
    clients = [Redis.from_url(redis_url, decode_responses=True) for _ in range(8)]
    try:
        results = await asyncio.gather(
            *(update_parameters(client, {"RSI_PERIOD": 30 + i}, f"writer{i}", DEFAULT) for i, client in enumerate(clients))
        )
        versions = sorted(version for version, _ in results)
        assert versions == list(range(1, 9))
        events = [decode(fields).payload for _, fields in await clients[0].xrange(streams.CONTROL_PARAMETERS)]
        assert [event.parameters_version for event in events] == versions
        # Each event's "previous" is exactly the set of the version before it.
        for before, after in itertools.pairwise(events):
            assert after.previous == before.parameters
        stored = loads(await clients[0].get(streams.PARAMETERS))
        assert stored["version"] == 8 and stored["parameters"] == events[-1].parameters
    finally:
        for client in clients:
            await client.aclose()


async def test_state_commands_set_the_state_and_append_one_command(redis_client: Redis) -> None:
    assert (await bot_state(redis_client))["state"] == "unknown"
    await send_command(redis_client, "pause_entries", None, "ops")
    state = await bot_state(redis_client)
    assert state["state"] == "entries_paused" and "ops" in state["reason"] and state["changed_at_ms"] > 0
    entries = await redis_client.xrange(streams.CONTROL_COMMANDS)
    assert len(entries) == 1 and decode(entries[0][1]).payload.command == "pause_entries"


async def test_close_position_needs_a_symbol_and_touches_only_the_symbols_command_stream(redis_client: Redis) -> None:
    with pytest.raises(CommandError):
        await send_command(redis_client, "close_position", None, "ops")
    with pytest.raises(CommandError):
        await send_command(redis_client, "liquidate", None, "ops")
    await send_command(redis_client, "close_position", "BTCUSDT", "ops")
    assert await redis_client.xlen(streams.symbol_commands("BTCUSDT")) == 1
    assert not await redis_client.exists(streams.executor_inbox("BTCUSDT"))
    assert not await redis_client.exists(streams.BOT_STATE, streams.CONTROL_COMMANDS)
