"""The bot's trading state and the parameter set the executor follows.

Both are read from their Redis keys at start (``control:bot_state``, absent means
``BOT_START_STATE``; ``control:parameters:current``, absent means the environment's values),
then followed on ``control:commands`` and ``control:parameters`` with a plain XREAD, so every
replica sees every change. The stream positions are taken before the keys are read, so a
change made in between is not missed.

States (``shared.events.STATE_MEANINGS`` has the words the dashboard shows):
running (entries and exits); entries_paused (no new entries; strategy exits, stop-loss,
take-profit and manual close work); stopped (no new entries and no strategy exits, but
stop-loss, take-profit and manual close keep working: stopping never strands a position);
error (set by the executor itself when the exchange refuses its credentials; like paused).

Every command is answered (``Notifier.answer``) under its command id, once for all replicas.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis

from services.executor.config import ExecutorSettings
from services.executor.notify import Notifier
from shared.aio import sleep_or_stop
from shared import streams
from shared.codec import DecodeError, decode, dumps, loads
from shared.control import STATE_COMMANDS
from shared.events import (
    STATE_MEANINGS,
    BotCommand,
    BotState,
    BotStateChanged,
    Command,
    Envelope,
    Outcome,
    ParametersChanged,
    now_ms,
)
from shared.parameters import ParameterError, StrategyParameters, validate_parameters

logger = logging.getLogger(__name__)

STATES = tuple(BotState)
COMMAND_STATES = {command.value: state.value for command, state in STATE_COMMANDS.items()}


class BotControl:
    """Current state and parameters of this replica, kept in step with the control streams."""

    def __init__(self, redis: Redis, settings: ExecutorSettings, notifier: Notifier) -> None:
        self.redis = redis
        self.settings = settings
        self.notifier = notifier
        self.state: str = settings.bot_start_state
        self.reason: str = ""
        self.parameters: StrategyParameters = settings.initial_parameters()
        self.parameters_version = 0
        self._positions: dict[str, str] = {}
        self._refused_version: int | None = None

    @property
    def entries_allowed(self) -> bool:
        return self.state == "running"

    @property
    def strategy_exits_allowed(self) -> bool:
        """SELL signals are followed; stop-loss, take-profit and manual close always are."""
        return self.state != BotState.STOPPED

    def entry_refusal(self) -> str:
        """Why entries are refused now (empty when allowed)."""
        return {
            "stopped": "the bot is stopped",
            "entries_paused": "entries are paused",
            "error": f"the bot is in error: {self.reason}",
        }.get(self.state, "")

    async def load(self) -> None:
        """Read the state and parameters as they are now, and where to follow them from."""
        for stream in (streams.CONTROL_COMMANDS, streams.CONTROL_PARAMETERS):
            last = await self.redis.xrevrange(stream, count=1)
            self._positions[stream] = last[0][0] if last else "0-0"
        raw_state = loads(await self.redis.get(streams.BOT_STATE))
        if isinstance(raw_state, dict) and raw_state.get("state") in STATES:
            self.state = raw_state["state"]
            self.reason = str(raw_state.get("reason") or "")
        else:
            if raw_state is not None:
                await self.notifier.alert("warning", "bot_state_invalid", f"ignored {streams.BOT_STATE}={raw_state!r}")
            self.state = self.settings.bot_start_state
            self.reason = "start state"
        raw_parameters = loads(await self.redis.get(streams.PARAMETERS))
        if isinstance(raw_parameters, dict) and isinstance(raw_parameters.get("parameters"), dict):
            try:
                self.parameters = validate_parameters(raw_parameters["parameters"], history=self.settings.history())
                self.parameters_version = int(raw_parameters.get("version") or 0)
            except (ParameterError, ValueError, TypeError) as e:
                await self.notifier.alert(
                    "error", "parameters_refused", f"stored parameters are invalid, using the environment's: {e}"
                )
        logger.info("bot state %s; parameters version %d", self.state, self.parameters_version)
        await self.notifier.event(BotStateChanged(state=self.state, reason=self.reason or "executor started"))

    async def follow(self, stop: asyncio.Event, block_ms: int = 1000) -> None:
        """Apply every new command and parameter change until ``stop``."""
        while not stop.is_set():
            try:
                reply = await self.redis.xread(self._positions, block=block_ms, count=100)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - Redis hiccup: try again
                logger.warning("control read failed: %s", e)
                await sleep_or_stop(stop, 1.0)
                continue
            for stream, entries in _entries(reply):
                for entry_id, fields in entries:
                    self._positions[stream] = entry_id
                    try:
                        event = decode(fields)
                    except DecodeError as e:
                        event = None
                        logger.warning("undecodable control entry %s %s: %s", stream, entry_id, e)
                    if stream == streams.CONTROL_PARAMETERS:
                        # The stored set is the truth; the event announces it.
                        await self.refresh_parameters(event.payload if event is not None else None)
                    elif event is not None:
                        await self.apply(event)

    async def apply(self, event: Envelope) -> None:
        """Apply one control event (commands other than state changes are not for this reader)."""
        payload = event.payload
        if isinstance(payload, BotCommand) and payload.command in COMMAND_STATES:
            by = f" by {payload.requested_by}" if payload.requested_by else ""
            state = COMMAND_STATES[payload.command]
            await self.set_state(state, f"{payload.command}{by}", event_id=f"bot_state:{event.event_id}")
            command_id = payload.command_id or event.event_id
            open_symbols = await self.open_symbols()
            held = ", ".join(open_symbols) if open_symbols else "none"
            if payload.command == Command.CLOSE_ALL:
                # Each symbol's owner answers for its own exit under the same id.
                await self.notifier.answer(
                    command_id, payload.command, Outcome.ACCEPTED,
                    f"the bot is stopped; every open position is sold at market (open: {held})",
                )
            else:
                meaning = STATE_MEANINGS[BotState(state)]
                if state == BotState.STOPPED:
                    meaning += f" (open positions: {held})"
                await self.notifier.answer(command_id, payload.command, Outcome.DONE, meaning)
        elif isinstance(payload, ParametersChanged):
            await self.refresh_parameters(payload)

    async def open_symbols(self) -> list[str]:
        """Symbols with a position (opening, open or closing), from every replica's snapshots."""
        try:
            snapshots = await self.redis.hgetall(streams.POSITIONS)
        except Exception as e:  # noqa: BLE001 - the answer goes out without the list
            logger.warning("could not read the positions: %s", e)
            return []
        return sorted(symbol for symbol, raw in snapshots.items() if (loads(raw) or {}).get("status", "FLAT") != "FLAT")

    async def refresh_parameters(self, change: object | None = None) -> None:
        """Follow the stored parameter set when it is newer (else the announced one, if newer).

        The set is validated again; an invalid one is refused with an alert and the current set
        stays in force.
        """
        record = loads(await self.redis.get(streams.PARAMETERS))
        version, values, command_id = None, None, ""
        if isinstance(record, dict) and isinstance(record.get("parameters"), dict):
            version, values = _version(record.get("version")), record["parameters"]
            command_id = str(record.get("command_id") or "")
        announced = _version(getattr(change, "parameters_version", None))
        if isinstance(change, ParametersChanged) and announced is not None and (version is None or announced > version):
            version, values, command_id = announced, dict(change.parameters), change.command_id
        if version is None or values is None or version <= self.parameters_version:
            return
        try:
            parameters = validate_parameters(dict(values), history=self.settings.history())
        except (ParameterError, ValueError, TypeError) as e:
            if version != self._refused_version:
                self._refused_version = version
                await self.notifier.alert("error", "parameters_refused", f"version {version} refused: {e}")
                if command_id:
                    await self.notifier.answer(
                        command_id, Command.SET_PARAMETERS, Outcome.REFUSED, f"version {version} refused: {e}"
                    )
            return
        self.parameters = parameters
        self.parameters_version = version
        logger.info("parameters version %d applied", version)
        if command_id:
            await self.notifier.answer(
                command_id, Command.SET_PARAMETERS, Outcome.DONE, f"parameters version {version} in force"
            )

    async def set_state(self, state: str, reason: str, *, event_id: str | None = None, store: bool = False) -> None:
        """Change the state, publish ``BotStateChanged``; ``store`` also writes ``control:bot_state``."""
        if state not in STATES:
            raise ValueError(f"unknown bot state {state!r}")
        changed = state != self.state
        self.state, self.reason = state, reason
        if store:
            body: dict[str, Any] = {"state": state, "reason": reason, "changed_at_ms": now_ms()}
            await self.redis.set(streams.BOT_STATE, dumps(body))
        if changed or store:
            logger.info("bot state %s (%s)", state, reason)
        await self.notifier.event(BotStateChanged(state=state, reason=reason), event_id=event_id)

    async def enter_error(self, reason: str) -> None:
        """Stop entries because something needs the trader (e.g. credentials refused)."""
        if self.state == "error" and self.reason == reason:
            return
        await self.set_state("error", reason, store=True)


def _version(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(stream, list(value[0] if value and isinstance(value[0], list) else value)) for stream, value in reply.items()]
    return [(stream, list(entries)) for stream, entries in reply]

