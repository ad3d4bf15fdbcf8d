"""Operator control through Redis: the versioned parameter set, bot commands, the bot state.

The dashboard's api writes here; strategy and executor replicas follow the
``control:parameters`` and ``control:commands`` streams. Every write is one MULTI/EXEC so the
current value and the event announcing it never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared import streams
from shared.codec import dumps, encode, loads
from shared.events import BotCommand, BotState, Command, ParametersChanged, make_event, now_ms
from shared.parameters import DangerousParameters, History, StrategyParameters, unconfirmed_dangers, validate_parameters

# Commands that set the bot state; close_all stops at once (so nothing new opens) and sells
# every open position (stopped still lets manual closes through).
STATE_COMMANDS = {
    Command.START: BotState.RUNNING,
    Command.STOP: BotState.STOPPED,
    Command.PAUSE_ENTRIES: BotState.ENTRIES_PAUSED,
    Command.CLOSE_ALL: BotState.STOPPED,
}
COMMANDS = (*STATE_COMMANDS, Command.CLOSE_POSITION)
_MAX_CAS_ATTEMPTS = 50


def new_command_id() -> str:
    """The id an operator command is answered under."""
    return uuid.uuid4().hex


class CommandError(ValueError):
    """A command that does not exist or lacks what it needs (a symbol for close_position)."""


async def parameters_record(redis: Redis) -> dict[str, Any] | None:
    """The stored record ``{"version", "parameters", "changed_at_ms", "changed_by"}``, or None."""
    return loads(await redis.get(streams.PARAMETERS))


def _parse_record(raw: str | None, default: StrategyParameters) -> tuple[int, StrategyParameters]:
    record = loads(raw)
    if not record:
        return 0, default
    return int(record["version"]), StrategyParameters.model_validate(record["parameters"])


async def current_parameters(redis: Redis, default: StrategyParameters) -> tuple[int, StrategyParameters]:
    """The parameter set in force and its version; version 0 is ``default`` (nothing stored yet)."""
    return _parse_record(await redis.get(streams.PARAMETERS), default)


async def update_parameters(
    redis: Redis,
    values: dict[str, Any],
    changed_by: str,
    default: StrategyParameters,
    source: str = "api",
    *,
    history: History | None = None,
    confirm_dangerous: bool = False,
    command_id: str = "",
) -> tuple[int, StrategyParameters]:
    """Merge ``values`` over the current set, validate the whole, store it as the next version.

    Raises ``ParameterError`` (every offending field) and writes nothing when the merged set is
    invalid (``history``: periods longer than the candles the strategy can have are invalid);
    raises ``DangerousParameters`` and writes nothing when the change makes a dangerous setting
    and ``confirm_dangerous`` is false. The key is compare-and-set under WATCH, and the
    ``ParametersChanged`` event is appended in the same transaction, so two concurrent updates
    never share a version. A change that leaves the set identical is not a new version.
    """
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(_MAX_CAS_ATTEMPTS):
            try:
                await pipe.watch(streams.PARAMETERS)
                version, current = _parse_record(await pipe.get(streams.PARAMETERS), default)
                merged = validate_parameters(values, current, history)
                if merged == current:
                    await pipe.unwatch()
                    return version, current
                risky = unconfirmed_dangers(merged, current)
                if risky and not confirm_dangerous:
                    await pipe.unwatch()
                    raise DangerousParameters(risky)
                new_version = version + 1
                record = {
                    "version": new_version,
                    "parameters": merged.model_dump(mode="json"),
                    "changed_at_ms": now_ms(),
                    "changed_by": changed_by,
                    "command_id": command_id,
                    "confirmed_dangers": [danger.text() for danger in risky],
                }
                event = make_event(
                    ParametersChanged(
                        parameters_version=new_version,
                        parameters=merged.model_dump(mode="json"),
                        previous=current.model_dump(mode="json"),
                        changed_by=changed_by,
                        command_id=command_id,
                    ),
                    source,
                )
                pipe.multi()
                pipe.set(streams.PARAMETERS, dumps(record))
                pipe.xadd(
                    streams.CONTROL_PARAMETERS,
                    encode(event),
                    maxlen=streams.maxlen_for(streams.CONTROL_PARAMETERS),
                    approximate=True,
                )
                await pipe.execute()
                return new_version, merged
            except WatchError:
                continue
            finally:
                await pipe.reset()
    raise RuntimeError("parameters kept changing concurrently; try again")


async def send_command(
    redis: Redis,
    command: str,
    symbol: str | None,
    requested_by: str,
    source: str = "api",
    *,
    symbols: Sequence[str] = (),
    command_id: str | None = None,
) -> str:
    """Ask the services to act; returns the command id the executor answers under.

    ``start``, ``stop``, ``pause_entries`` and ``close_all`` set the desired state in
    ``control:bot_state`` and append a ``BotCommand`` to ``control:commands`` in one
    transaction; ``close_all`` also appends, in the same transaction, a ``close_position``
    (same command id, ``origin="close_all"``) to the inbox of each of ``symbols``.
    ``close_position`` goes to the inbox of the executor owning ``symbol`` only.
    """
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    command_id = command_id or new_command_id()
    event = make_event(BotCommand(command=command, symbol=symbol, requested_by=requested_by, command_id=command_id), source)
    if command == Command.CLOSE_POSITION:
        if not symbol:
            raise CommandError("close_position needs a symbol")
        inbox = streams.executor_inbox(symbol)
        await redis.xadd(inbox, encode(event), maxlen=streams.maxlen_for(inbox), approximate=True)
        return command_id
    if command == Command.CLOSE_ALL and not symbols:
        raise CommandError("close_all needs the traded symbols")
    state = {
        "state": STATE_COMMANDS[Command(command)].value,
        "reason": f"{command} requested by {requested_by}",
        "changed_at_ms": now_ms(),
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(streams.BOT_STATE, dumps(state))
        pipe.xadd(
            streams.CONTROL_COMMANDS,
            encode(event),
            maxlen=streams.maxlen_for(streams.CONTROL_COMMANDS),
            approximate=True,
        )
        if command == Command.CLOSE_ALL:
            for each in symbols:
                close = BotCommand(
                    command=Command.CLOSE_POSITION, symbol=each, requested_by=requested_by,
                    command_id=command_id, origin=Command.CLOSE_ALL,
                )
                inbox = streams.executor_inbox(each)
                pipe.xadd(inbox, encode(make_event(close, source)), maxlen=streams.maxlen_for(inbox), approximate=True)
        await pipe.execute()
    return command_id


async def bot_state(redis: Redis) -> dict[str, Any]:
    """The bot's state ``{"state", "reason", "changed_at_ms"}``; ``unknown`` before any was set."""
    state = loads(await redis.get(streams.BOT_STATE))
    if not isinstance(state, dict) or "state" not in state:
        return {"state": "unknown", "reason": "", "changed_at_ms": None}
    return {"state": state["state"], "reason": state.get("reason", ""), "changed_at_ms": state.get("changed_at_ms")}
