"""Operator control through Redis: the versioned parameter set, bot commands, the bot state.

The dashboard's api writes here; strategy and executor replicas follow the
``control:parameters`` and ``control:commands`` streams. Every write is one MULTI/EXEC so the
current value and the event announcing it never disagree.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from shared import signing, streams
from shared.codec import dumps, encode, loads
from shared.events import BotCommand, ParametersChanged, make_event, now_ms
from shared.parameters import StrategyParameters, validate_parameters

STATE_COMMANDS = {"start": "running", "stop": "stopped", "pause_entries": "entries_paused"}
COMMANDS = (*STATE_COMMANDS, "close_position")
_MAX_CAS_ATTEMPTS = 50


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
) -> tuple[int, StrategyParameters]:
    """Merge ``values`` over the current set, validate the whole, store it as the next version.

    Raises ``ParameterError`` (every offending field) and writes nothing when the merged set is
    invalid. The key is compare-and-set under WATCH, and the ``ParametersChanged`` event is
    appended in the same transaction, so two concurrent updates never share a version. A change
    that leaves the set identical is not a new version.
    """
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(_MAX_CAS_ATTEMPTS):
            try:
                await pipe.watch(streams.PARAMETERS)
                raw = await pipe.get(streams.PARAMETERS)
                version, current = _parse_record(raw, default)
                if not signing.record_trusted(loads(raw)):
                    current = default  # never seal again what the bot did not write (a forged set)
                merged = validate_parameters(values, current)
                if merged == current:
                    await pipe.unwatch()
                    return version, current
                new_version = version + 1
                record = {
                    "version": new_version,
                    "parameters": merged.model_dump(mode="json"),
                    "changed_at_ms": now_ms(),
                    "changed_by": changed_by,
                }
                event = make_event(
                    ParametersChanged(
                        parameters_version=new_version,
                        parameters=merged.model_dump(mode="json"),
                        previous=current.model_dump(mode="json"),
                        changed_by=changed_by,
                    ),
                    source,
                )
                pipe.multi()
                pipe.set(streams.PARAMETERS, dumps(signing.seal_record(record)))
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
    redis: Redis, command: str, symbol: str | None, requested_by: str, source: str = "api"
) -> None:
    """Ask the services to act.

    ``start``, ``stop`` and ``pause_entries`` set the desired state in ``control:bot_state`` and
    append a ``BotCommand`` to ``control:commands`` in one transaction; ``close_position`` goes
    to ``control:commands:<SYMBOL>``, read by the executor owning ``symbol`` only. Commands and
    the state record carry the bus MAC (``shared.signing``).
    """
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    event = make_event(BotCommand(command=command, symbol=symbol, requested_by=requested_by), source)
    if command == "close_position":
        if not symbol:
            raise CommandError("close_position needs a symbol")
        target = streams.symbol_commands(symbol)
        await redis.xadd(target, encode(event), maxlen=streams.maxlen_for(target), approximate=True)
        return
    state = {
        "state": STATE_COMMANDS[command],
        "reason": f"{command} requested by {requested_by}",
        "changed_at_ms": now_ms(),
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(streams.BOT_STATE, dumps(signing.seal_record(state)))
        pipe.xadd(
            streams.CONTROL_COMMANDS,
            encode(event),
            maxlen=streams.maxlen_for(streams.CONTROL_COMMANDS),
            approximate=True,
        )
        await pipe.execute()


async def bot_state(redis: Redis) -> dict[str, Any]:
    """The bot's state ``{"state", "reason", "changed_at_ms"}``; ``unknown`` before any was set."""
    state = loads(await redis.get(streams.BOT_STATE))
    if not isinstance(state, dict) or "state" not in state:
        return {"state": "unknown", "reason": "", "changed_at_ms": None}
    return {"state": state["state"], "reason": state.get("reason", ""), "changed_at_ms": state.get("changed_at_ms")}
