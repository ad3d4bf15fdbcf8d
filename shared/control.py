"""Operator control through Redis: the versioned parameter sets (stored by
``shared.parameter_store``), bot commands, the bot state.

The dashboard's api writes here; every write is one MULTI/EXEC so the current value and the
event announcing it never disagree. Strategy and executor replicas read the control through
``ControlReader``: the stored records at start (each symbol's ``control:parameters:current:<SYMBOL>``
or the shared set, and for the executor ``control:bot_state``), then every change announced on
``control:parameters`` (and
``control:commands``) with a plain XREAD, so every replica sees every change. The stream
positions are taken before the records are read, so a change made in between is not missed.
Only what carries a valid MAC is obeyed (``shared.signing``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.typing import KeyT, StreamIdT

from shared import signing, streams
from shared.aio import sleep_or_stop
from shared.bus import entries_by_stream, stream_fields
from shared.codec import DecodeError, decode, dumps, loads
from shared.events import BotCommand, BotState, Command, Envelope, ParametersChanged, make_event, now_ms
from shared.parameter_sets import SymbolSet, risk_of, validate_set
from shared.parameter_store import (
    current_parameters,
    current_set,
    parameters_record,
    set_key,
    switch_strategy,
    update_parameters,
)
from shared.parameters import History, ParameterError, StrategyParameters
from shared.trading.strategies import DEFAULT_STRATEGY, Registry, builtin_registry

# The parameter-set functions are read from here too (one place for everything operators change).
__all__ = [
    "COMMANDS",
    "STATE_COMMANDS",
    "CommandError",
    "ControlReader",
    "bot_state",
    "current_parameters",
    "current_set",
    "new_command_id",
    "parameters_record",
    "send_command",
    "switch_strategy",
    "update_parameters",
]

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


def new_command_id() -> str:
    """The id an operator command is answered under."""
    return uuid.uuid4().hex


class CommandError(ValueError):
    """A command that does not exist or lacks what it needs (a symbol for close_position)."""


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
    """The parameter sets (one per symbol) and, given a start state, the bot state one replica
    obeys, kept in step with the control streams.

    ``sets`` are the start sets by symbol (version 0, from the environment); ``parameters``
    alone stands for one shared ema_cross_rsi set. A symbol follows its own record
    (``control:parameters:current:<SYMBOL>``), or, while it has none and runs ema_cross_rsi, the
    shared one. What the reader meets is reported through methods a service overrides:
    ``alert`` (a forged or invalid record or entry; logged by default), ``parameters_applied``
    and ``parameters_refused`` (a new version taken or refused, with the command id that asked
    for it) and ``command`` (a decoded ``control:commands`` entry: the state changes are the
    service's to make).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        key: bytes | None,
        history: History,
        parameters: StrategyParameters | None = None,
        sets: Mapping[str, SymbolSet] | None = None,
        registry: Registry | None = None,
        start_state: BotState | None = None,
    ) -> None:
        self.redis = redis
        self.key = key
        self.history = history
        if sets is None:
            sets = {"": SymbolSet("", DEFAULT_STRATEGY, 0, parameters or StrategyParameters())}
        self.defaults = dict(sets)
        self.sets = dict(sets)
        self.registry = registry or builtin_registry()
        self.start_state = start_state
        self.state: str = start_state or ""
        self.reason = ""
        self._positions: dict[str, str] = {}
        self._refused: dict[str, tuple[str, int]] = {}
        self._refused_records: dict[str, str] = {}

    def set_of(self, symbol: str) -> SymbolSet:
        """The set in force for ``symbol`` (the first set for a symbol not configured)."""
        return self.sets.get(symbol) or next(iter(self.sets.values()))

    def risk(self, symbol: str) -> StrategyParameters:
        """The executor's fields (sizing, protection) of ``symbol``'s set."""
        return risk_of(self.set_of(symbol).parameters)

    @property
    def parameters(self) -> Any:
        """The first symbol's set (the one set when there is one)."""
        return next(iter(self.sets.values())).parameters

    @property
    def parameters_version(self) -> int:
        return next(iter(self.sets.values())).version

    @property
    def followed(self) -> tuple[str, ...]:
        """The control streams read: the commands only by a reader of the bot state."""
        if self.start_state is None:
            return (streams.CONTROL_PARAMETERS,)
        return (streams.CONTROL_COMMANDS, streams.CONTROL_PARAMETERS)

    def parameter_problems(self, parameters: StrategyParameters) -> list[tuple[str, str]]:
        """What this reader cannot apply of a valid set (nothing by default); such a set is
        refused like an invalid one."""
        return []

    def checked(self, parameters: StrategyParameters) -> StrategyParameters:
        """``parameters``, or ``ParameterError`` naming what ``parameter_problems`` refuses."""
        problems = self.parameter_problems(parameters)
        if problems:
            raise ParameterError(problems)
        return parameters

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
        for symbol in self.sets:
            found = await self._stored(symbol)
            if found is None:
                continue
            try:
                self.sets[symbol] = self._validated(symbol, *found[:3])
            except (ParameterError, KeyError, ValueError, TypeError) as e:
                await self.alert(
                    "error",
                    "parameters_refused",
                    f"stored parameters of {symbol or 'every symbol'} are invalid, using the environment's: {e}",
                )

    async def _stored(self, symbol: str) -> tuple[int, str, dict[str, Any], str] | None:
        """The sealed record ``symbol`` follows: (version, strategy, values, command id), or None."""
        record = await self.sealed_record(set_key(symbol))
        if record is None and symbol and self.defaults[symbol].strategy == DEFAULT_STRATEGY:
            if await self.redis.exists(set_key(symbol)):
                return None  # its own record is forged: never fall back to another
            record = await self.sealed_record(streams.PARAMETERS)
        if not isinstance(record, dict) or not isinstance(record.get("parameters"), dict):
            return None
        version = _version(record.get("version"))
        if version is None:
            return None
        strategy = str(record.get("strategy") or DEFAULT_STRATEGY)
        return version, strategy, record["parameters"], str(record.get("command_id") or "")

    def _validated(self, symbol: str, version: int, strategy: str, values: dict[str, Any]) -> SymbolSet:
        parameters = validate_set(self.registry.get(strategy), dict(values), history=self.history)
        self.checked(risk_of(parameters))
        return SymbolSet(symbol, strategy, version, parameters)

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
        """Follow each stored set when it is newer (else the announced one, if newer): the
        announced symbol's, or every symbol's for a change of the shared set (or none given).

        A set is validated again with its strategy's model; an invalid one is refused with an
        alert and the set in force stays."""
        announced = change if isinstance(change, ParametersChanged) else None
        symbols = [announced.symbol] if announced is not None and announced.symbol in self.sets else list(self.sets)
        answered: set[str] = set()
        for symbol in symbols:
            await self._refresh_one(symbol, announced, answered)

    async def _refresh_one(self, symbol: str, change: ParametersChanged | None, answered: set[str]) -> None:
        found = await self._stored(symbol)
        current = self.sets[symbol]
        if change is not None and change.symbol == symbol and (found is None or change.parameters_version > found[0]):
            found = (
                change.parameters_version,
                change.strategy or current.strategy,
                dict(change.parameters),
                change.command_id,
            )
        if found is None:
            return
        version, strategy, values, command_id = found
        if version < current.version or (version == current.version and strategy == current.strategy):
            return
        try:
            new = self._validated(symbol, version, strategy, values)
        except (ParameterError, KeyError, ValueError, TypeError) as e:
            if self._refused.get(symbol) != (strategy, version):
                self._refused[symbol] = (strategy, version)
                await self.alert("error", "parameters_refused", f"{symbol or 'shared'} version {version} refused: {e}")
                if command_id not in answered:
                    answered.add(command_id)
                    await self.parameters_refused(version, e, command_id)
            return
        self.sets[symbol] = new
        logger.info("parameters of %s version %d applied (%s)", symbol or "every symbol", version, strategy)
        if command_id not in answered:
            answered.add(command_id)
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
