"""shared.control against a real Redis: versions, atomicity, commands, and the reader the services follow."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from shared import signing, streams
from shared.codec import decode, dumps, loads
from shared.control import (
    CommandError,
    ControlReader,
    bot_state,
    current_parameters,
    send_command,
    update_parameters,
)
from shared.events import BotState, Envelope
from shared.parameters import History, ParameterError, StrategyParameters

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
            *(
                update_parameters(client, {"RSI_PERIOD": 30 + i}, f"writer{i}", DEFAULT)
                for i, client in enumerate(clients)
            )
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


class Recorder(ControlReader):
    """A reader that keeps what it reports."""

    def __init__(self, redis: Redis, **kwargs: object) -> None:
        super().__init__(redis, key=signing.installed_key(), history=History(1000, 1000), parameters=DEFAULT, **kwargs)
        self.alerts: list[str] = []
        self.applied: list[tuple[int, str]] = []
        self.refused: list[int] = []
        self.commands: list[Envelope] = []

    async def alert(self, level: str, code: str, message: str) -> None:
        self.alerts.append(code)

    async def parameters_applied(self, version: int, command_id: str) -> None:
        self.applied.append((version, command_id))

    async def parameters_refused(self, version: int, error: Exception, command_id: str) -> None:
        self.refused.append(version)

    async def command(self, event: Envelope) -> None:
        self.commands.append(event)


async def _until(predicate: Callable[[], object], what: str) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def test_a_parameter_reader_follows_new_sets_from_where_it_loaded(redis_client: Redis) -> None:
    await update_parameters(redis_client, {"RSI_PERIOD": 10}, "ops", DEFAULT)
    reader = Recorder(redis_client)
    await reader.load()
    assert (reader.parameters_version, reader.parameters.RSI_PERIOD) == (1, 10)
    assert reader.followed == (streams.CONTROL_PARAMETERS,) and reader.state == ""
    # Changed after load() and before following: still applied, in order.
    await update_parameters(redis_client, {"RSI_PERIOD": 11}, "ops", DEFAULT, command_id="c-2")
    stop = asyncio.Event()
    task = asyncio.create_task(reader.follow(stop, block_ms=50))
    try:
        await _until(lambda: reader.parameters_version == 2, "version 2")
        await update_parameters(redis_client, {"RSI_PERIOD": 12}, "ops", DEFAULT, command_id="c-3")
        await _until(lambda: reader.parameters_version == 3, "version 3")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert reader.parameters.RSI_PERIOD == 12 and reader.applied == [(2, "c-2"), (3, "c-3")]
    assert reader.alerts == [] and reader.commands == []


async def test_a_reader_refuses_invalid_and_forged_sets_and_keeps_the_one_in_force(redis_client: Redis) -> None:
    await update_parameters(redis_client, {"RSI_PERIOD": 10}, "ops", DEFAULT)
    reader = Recorder(redis_client)
    await reader.load()
    # Valid alone, but longer than the history: refused once, however often it is announced.
    record = {"version": 2, "parameters": {"EMA_LONG_PERIOD": 2000}}
    await redis_client.set(streams.PARAMETERS, dumps(signing.seal_record(record)))
    await reader.refresh_parameters()
    await reader.refresh_parameters()
    assert reader.refused == [2] and reader.alerts == ["parameters_refused"]
    forged = {"version": 3, "parameters": {"RSI_PERIOD": 5}, signing.MAC_FIELD: "0" * 64}
    await redis_client.set(streams.PARAMETERS, dumps(forged))
    await reader.refresh_parameters()
    assert reader.alerts == ["parameters_refused", "forged_record"]
    assert (reader.parameters_version, reader.parameters.RSI_PERIOD) == (1, 10)


async def test_a_state_reader_loads_the_state_and_hands_over_sealed_commands_only(redis_client: Redis) -> None:
    await send_command(redis_client, "pause_entries", None, "ops")
    reader = Recorder(redis_client, start_state=BotState.RUNNING)
    await reader.load()
    assert reader.state == "entries_paused" and "ops" in reader.reason
    stop = asyncio.Event()
    task = asyncio.create_task(reader.follow(stop, block_ms=50))
    try:
        await redis_client.xadd(streams.CONTROL_COMMANDS, {"type": "bot_command", "event_id": "x", "command": "start"})
        await send_command(redis_client, "stop", None, "ops")
        await _until(lambda: reader.commands, "the sealed command")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert [event.payload.command for event in reader.commands] == ["stop"]
    assert reader.alerts == ["forged_entry"]
