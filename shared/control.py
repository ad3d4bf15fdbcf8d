"""Operator control through Redis: the versioned parameter set, bot commands, the bot state.

The dashboard's api writes here; every write is one MULTI/EXEC so the current value and the
event announcing it never disagree. Strategy and executor replicas read the control through
``ControlReader``: the stored records at start (``control:parameters:current``, and for the
executor ``control:bot_state``), then every change announced on ``control:parameters`` (and
``control:commands``) with a plain XREAD, so every replica sees every change. The stream
positions are taken before the records are read, so a change made in between is not missed.
Only what carries a valid MAC is obeyed (``shared.signing``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import WatchError
from redis.typing import KeyT, StreamIdT

from shared import signing, streams
from shared.aio import sleep_or_stop
from shared.bus import entries_by_stream, stream_fields
from shared.codec import DecodeError, decode, dumps, loads
from shared.events import BotCommand, BotState, Command, Envelope, ParametersChanged, make_event, now_ms
from shared.parameters import (
    DangerousParameters,
    History,
    ParameterError,
    StrategyParameters,
    unconfirmed_dangers,
    validate_parameters,
)

logger = logging.getLogger(__name__)

# Commands that set the bot state; close_all stops at once (so nothing new opens) and sells
# every open position (stopped still lets manual closes through).
STATE_COMMANDS = {
    Command.START: BotState.RUNNING,
    Command.STOP: BotState.STOPPED,
    Command.PAUSE_ENTRIES: BotState.ENTRIES_PAUSED,
    Command.CLOSE_ALL: BotState.STOPPED,
}
COMMANDS = (*STATE_COMMANDS, Command.CLOSE_POSITION, Command.RESET_BREAKER)
_MAX_CAS_ATTEMPTS = 50


def new_command_id() -> str:
    """The id an operator command is answered under."""
    return uuid.uuid4().hex


class CommandError(ValueError):
    """A command that does not exist or lacks what it needs (a symbol for close_position)."""


async def parameters_record(redis: Redis) -> dict[str, Any] | None:
    """The stored record ``{"version", "parameters", "changed_at_ms", "changed_by"}``, or None."""
    record = loads(await redis.get(streams.PARAMETERS))
    return record if isinstance(record, dict) else None


def _parse_record(raw: str | bytes | None, default: StrategyParameters) -> tuple[int, StrategyParameters]:
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
                raw = await pipe.get(streams.PARAMETERS)
                version, current = _parse_record(raw, default)
                if not signing.record_trusted(loads(raw)):
                    current = default  # never seal again what the bot did not write (a forged set)
                merged = validate_parameters(values, current, history)
                if merged == current:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.unwatch unannotated
                    return version, current
                risky = unconfirmed_dangers(merged, current)
                if risky and not confirm_dangerous:
                    await pipe.unwatch()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.unwatch unannotated
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
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.multi unannotated
                pipe.set(streams.PARAMETERS, dumps(signing.seal_record(record)))
                pipe.xadd(
                    streams.CONTROL_PARAMETERS,
                    stream_fields(event),
                    maxlen=streams.maxlen_for(streams.CONTROL_PARAMETERS),
                    approximate=True,
                )
                await pipe.execute()
                return new_version, merged
            except WatchError:
                continue
            finally:
                await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py leaves Pipeline.reset unannotated
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
    (same command id, ``origin="close_all"``) to ``control:commands:<SYMBOL>`` of each of
    ``symbols``. ``close_position`` goes to ``control:commands:<SYMBOL>``, read by the executor
    owning ``symbol`` only. Commands and the state record carry the bus MAC (``shared.signing``).
    """
    if command not in COMMANDS:
        raise CommandError(f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    command_id = command_id or new_command_id()
    event = make_event(
        BotCommand(command=Command(command), symbol=symbol, requested_by=requested_by, command_id=command_id), source
    )
    if command == Command.CLOSE_POSITION:
        if not symbol:
            raise CommandError("close_position needs a symbol")
        target = streams.symbol_commands(symbol)
        await redis.xadd(target, stream_fields(event), maxlen=streams.maxlen_for(target), approximate=True)
        return command_id
    if command == Command.RESET_BREAKER:
        # Not a state change: every executor replica reads it and the first applies it.
        await redis.xadd(
            streams.CONTROL_COMMANDS,
            stream_fields(event),
            maxlen=streams.maxlen_for(streams.CONTROL_COMMANDS),
            approximate=True,
        )
        return command_id
    if command == Command.CLOSE_ALL and not symbols:
        raise CommandError("close_all needs the traded symbols")
    state = {
        "state": STATE_COMMANDS[Command(command)].value,
        "reason": f"{command} requested by {requested_by}",
        "changed_at_ms": now_ms(),
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(streams.BOT_STATE, dumps(signing.seal_record(state)))
        pipe.xadd(
            streams.CONTROL_COMMANDS,
            stream_fields(event),
            maxlen=streams.maxlen_for(streams.CONTROL_COMMANDS),
            approximate=True,
        )
        if command == Command.CLOSE_ALL:
            for each in symbols:
                close = BotCommand(
                    command=Command.CLOSE_POSITION,
                    symbol=each,
                    requested_by=requested_by,
                    command_id=command_id,
                    origin=Command.CLOSE_ALL,
                )
                target = streams.symbol_commands(each)
                pipe.xadd(
                    target,
                    stream_fields(make_event(close, source)),
                    maxlen=streams.maxlen_for(target),
                    approximate=True,
                )
        await pipe.execute()
    return command_id


async def bot_state(redis: Redis) -> dict[str, Any]:
    """The bot's state ``{"state", "reason", "changed_at_ms"}``; ``unknown`` before any was set."""
    state = loads(await redis.get(streams.BOT_STATE))
    if not isinstance(state, dict) or "state" not in state:
        return {"state": "unknown", "reason": "", "changed_at_ms": None}
    return {"state": state["state"], "reason": state.get("reason", ""), "changed_at_ms": state.get("changed_at_ms")}


class ControlReader:
    """The parameter set (and, given a start state, the bot state) one replica obeys, kept in
    step with the control streams.

    What the reader meets is reported through methods a service overrides: ``alert`` (a
    forged or invalid record or entry; logged by default), ``parameters_applied`` and
    ``parameters_refused`` (a new version taken or refused, with the command id that asked for
    it) and ``command`` (a decoded ``control:commands`` entry: the state changes are the
    service's to make).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        key: bytes | None,
        history: History,
        parameters: StrategyParameters,
        start_state: BotState | None = None,
    ) -> None:
        self.redis = redis
        self.key = key
        self.history = history
        self.parameters = parameters
        self.parameters_version = 0
        self.start_state = start_state
        self.state: str = start_state or ""
        self.reason = ""
        self._positions: dict[str, str] = {}
        self._refused_version: int | None = None
        self._refused_records: dict[str, str] = {}

    @property
    def followed(self) -> tuple[str, ...]:
        """The control streams read: the commands only by a reader of the bot state."""
        if self.start_state is None:
            return (streams.CONTROL_PARAMETERS,)
        return (streams.CONTROL_COMMANDS, streams.CONTROL_PARAMETERS)

    async def alert(self, level: str, code: str, message: str) -> None:
        logger.log(logging.ERROR if level == "error" else logging.WARNING, "%s: %s", code, message)

    async def parameters_applied(self, version: int, command_id: str) -> None:
        """A new parameter set is in force."""

    async def parameters_refused(self, version: int, error: Exception, command_id: str) -> None:
        """A new parameter set was refused (already alerted); the previous one stays in force."""

    async def command(self, event: Envelope) -> None:
        """A sealed, decoded entry of ``control:commands``."""

    async def load(self) -> None:
        """Read the state and parameters as they are now, and where to follow them from."""
        for stream in self.followed:
            last = await self.redis.xrevrange(stream, count=1)
            entry_id = last[0][0] if last else "0-0"
            self._positions[stream] = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        if self.start_state is not None:
            await self._load_state(self.start_state)
        record = await self.sealed_record(streams.PARAMETERS)
        if isinstance(record, dict) and isinstance(record.get("parameters"), dict):
            try:
                self.parameters = validate_parameters(record["parameters"], history=self.history)
                self.parameters_version = int(record.get("version") or 0)
            except (ParameterError, ValueError, TypeError) as e:
                await self.alert(
                    "error", "parameters_refused", f"stored parameters are invalid, using the environment's: {e}"
                )

    async def _load_state(self, start_state: BotState) -> None:
        record = await self.sealed_record(streams.BOT_STATE)
        if isinstance(record, dict) and record.get("state") in tuple(BotState):
            self.state = BotState(record["state"])
            self.reason = str(record.get("reason") or "")
            return
        if record is not None:
            await self.alert("warning", "bot_state_invalid", f"ignored {streams.BOT_STATE}={record!r}")
        self.state, self.reason = start_state, "start state"

    async def follow(self, stop: asyncio.Event, block_ms: int = 1000) -> None:
        """Apply every new parameter set, and hand over every command, until ``stop``."""
        while not stop.is_set():
            try:
                # xread is typed with a dict (invariant) of redis-py's own unions; text ids are among them.
                positions = cast("dict[KeyT, StreamIdT]", self._positions)
                reply = await self.redis.xread(positions, block=block_ms, count=100)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - Redis hiccup: try again
                logger.warning("control read failed: %s", e)
                await sleep_or_stop(stop, 1.0)
                continue
            for stream, entries in entries_by_stream(reply):
                for entry_id, fields in entries:
                    self._positions[stream] = entry_id
                    if fields is None or not await self._sealed_entry(stream, entry_id, fields):
                        continue
                    try:
                        event: Envelope | None = decode(fields)
                    except DecodeError as e:
                        event = None
                        logger.warning("undecodable control entry %s %s: %s", stream, entry_id, e)
                    if stream == streams.CONTROL_PARAMETERS:
                        # The stored set is the truth; the event announces it.
                        await self.refresh_parameters(event.payload if event is not None else None)
                    elif event is not None:
                        await self.command(event)

    async def refresh_parameters(self, change: object | None = None) -> None:
        """Follow the stored parameter set when it is newer (else the announced one, if newer).

        The set is validated again; an invalid one is refused with an alert and the current set
        stays in force.
        """
        record = await self.sealed_record(streams.PARAMETERS)
        version, values, command_id = None, None, ""
        if isinstance(record, dict) and isinstance(record.get("parameters"), dict):
            version, values = _version(record.get("version")), record["parameters"]
            command_id = str(record.get("command_id") or "")
        if isinstance(change, ParametersChanged) and (version is None or change.parameters_version > version):
            version, values, command_id = change.parameters_version, dict(change.parameters), change.command_id
        if version is None or values is None or version <= self.parameters_version:
            return
        try:
            parameters = validate_parameters(dict(values), history=self.history)
        except (ParameterError, ValueError, TypeError) as e:
            if version != self._refused_version:
                self._refused_version = version
                await self.alert("error", "parameters_refused", f"version {version} refused: {e}")
                await self.parameters_refused(version, e, command_id)
            return
        self.parameters, self.parameters_version = parameters, version
        logger.info("parameters version %d applied", version)
        await self.parameters_applied(version, command_id)

    async def _sealed_entry(self, stream: str, entry_id: str, fields: dict[str, str]) -> bool:
        """Whether a control entry carries a valid MAC; a forged one is skipped with an alert."""
        seal = signing.check_fields(fields, self.key) if self.key else signing.Seal.MISSING
        if seal is signing.Seal.VALID:
            return True
        await self.alert(
            "error", "forged_entry", f"refused {fields.get('type', '?')} entry {entry_id} of {stream}: MAC {seal.value}"
        )
        return False

    async def sealed_record(self, key: str) -> Any:
        """The JSON record at ``key`` when its MAC verifies; a forged one is ignored with an alert
        (once per MAC: a record left in place is not reported again at every read)."""
        record = loads(await self.redis.get(key))
        if not isinstance(record, dict):
            return record
        seal = signing.check_record(record, self.key) if self.key else signing.Seal.MISSING
        if seal is signing.Seal.VALID:
            return record
        if self._refused_records.get(key) != record.get(signing.MAC_FIELD, ""):
            self._refused_records[key] = record.get(signing.MAC_FIELD, "")
            await self.alert("error", "forged_record", f"ignored {key}: MAC {seal.value}")
        return None


def _version(value: object) -> int | None:
    """A record's version as an int, None when it is not a number."""
    if not isinstance(value, (int, float, str)):
        return None
    try:
        return int(value)
    except (ValueError, OverflowError):
        return None
