"""The bot's trading state and the parameter set the executor follows, and its operator commands.

Both are read and followed by ``shared.control.ControlReader`` (absent ``control:bot_state``
means ``BOT_START_STATE``; absent parameters, the environment's values); this module applies
the commands that change the state and answers every command and parameter change.

States (``shared.events.STATE_MEANINGS`` has the words the dashboard shows):
running (entries and exits); entries_paused (no new entries; strategy exits, stop-loss,
take-profit and manual close work); stopped (no new entries and no strategy exits, but
stop-loss, take-profit and manual close keep working: stopping never strands a position);
error (set by the executor itself when the exchange refuses its credentials; like paused).

Every command is answered (``Notifier.answer``) under its command id, once for all replicas.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis

from services.executor.breaker import AccountBreaker
from services.executor.config import ExecutorSettings
from services.executor.notify import Notifier
from shared import signing, streams
from shared.codec import dumps, loads
from shared.control import STATE_COMMANDS, ControlReader
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

logger = logging.getLogger(__name__)

# Why entries are refused in each state that refuses them.
_REFUSALS: dict[str, str] = {BotState.STOPPED: "the bot is stopped", BotState.ENTRIES_PAUSED: "entries are paused"}


class BotControl(ControlReader):
    """Current state and parameters of this replica, kept in step with the control streams."""

    def __init__(self, redis: Redis, settings: ExecutorSettings, notifier: Notifier) -> None:
        super().__init__(
            redis,
            key=settings.signing_key(),
            history=settings.history(),
            sets=settings.initial_sets(),
            registry=settings.strategy_registry(),
            start_state=BotState(settings.bot_start_state),
        )
        self.settings = settings
        self.notifier = notifier
        self.breaker = AccountBreaker(redis, notifier, settings.breaker_limits())

    @property
    def entries_allowed(self) -> bool:
        return self.state == BotState.RUNNING

    @property
    def strategy_exits_allowed(self) -> bool:
        """SELL signals are followed; stop-loss, take-profit and manual close always are."""
        return self.state != BotState.STOPPED

    def entry_refusal(self) -> str:
        """Why entries are refused now (empty when allowed)."""
        if self.state == BotState.ERROR:
            return f"the bot is in error: {self.reason}"
        return _REFUSALS.get(self.state, "")

    async def load(self) -> None:
        """Read the state and parameters as they are now, and announce the state."""
        await super().load()
        versions = ", ".join(f"{s.symbol} {s.strategy} v{s.version}" for s in self.sets.values())
        logger.info("bot state %s; parameters %s", self.state, versions)
        await self.notifier.event(BotStateChanged(state=BotState(self.state), reason=self.reason or "executor started"))

    async def alert(self, level: str, code: str, message: str) -> None:
        await self.notifier.alert(level, code, message)

    async def parameters_applied(self, version: int, command_id: str) -> None:
        if command_id:
            await self.notifier.answer(
                command_id, Command.SET_PARAMETERS, Outcome.DONE, f"parameters version {version} in force"
            )

    async def parameters_refused(self, version: int, error: Exception, command_id: str) -> None:
        if command_id:
            await self.notifier.answer(
                command_id, Command.SET_PARAMETERS, Outcome.REFUSED, f"version {version} refused: {error}"
            )

    async def command(self, event: Envelope) -> None:
        await self.apply(event)

    async def apply(self, event: Envelope) -> None:
        """Apply one control event (commands other than state changes are not for this reader)."""
        payload = event.payload
        if isinstance(payload, BotCommand) and payload.command in STATE_COMMANDS:
            by = f" by {payload.requested_by}" if payload.requested_by else ""
            state = STATE_COMMANDS[Command(payload.command)]
            await self.set_state(state, f"{payload.command}{by}", event_id=f"bot_state:{event.event_id}")
            command_id = payload.command_id or event.event_id
            open_symbols = await self.open_symbols()
            held = ", ".join(open_symbols) if open_symbols else "none"
            if payload.command == Command.CLOSE_ALL:
                # Each symbol's owner answers for its own exit under the same id.
                await self.notifier.answer(
                    command_id,
                    payload.command,
                    Outcome.ACCEPTED,
                    f"the bot is stopped; every open position is sold at market (open: {held})",
                )
            else:
                meaning = STATE_MEANINGS[state]
                if state == BotState.STOPPED:
                    meaning += f" (open positions: {held})"
                await self.notifier.answer(command_id, payload.command, Outcome.DONE, meaning)
        elif isinstance(payload, BotCommand) and payload.command == Command.RESET_BREAKER:
            await self.reset_breaker(payload.command_id or event.event_id, payload.requested_by)
        elif isinstance(payload, ParametersChanged):
            await self.refresh_parameters(payload)

    async def reset_breaker(self, command_id: str, requested_by: str) -> None:
        """The operator's reset of the circuit breaker, answered (and recorded in its record)."""
        try:
            clocks = await self.redis.hvals(streams.MARKET_CLOCK)
            market_ms = max((int(float(v)) for v in clocks), default=None)
            text = await self.breaker.reset(command_id, requested_by, market_ms)
        except Exception as e:
            logger.exception("circuit breaker reset failed")
            await self.notifier.answer(command_id, Command.RESET_BREAKER, Outcome.REFUSED, f"reset failed: {e}")
            return
        await self.notifier.answer(command_id, Command.RESET_BREAKER, Outcome.DONE, text)

    async def open_symbols(self) -> list[str]:
        """Symbols with a position (opening, open or closing), from every replica's snapshots."""
        try:
            snapshots = await self.redis.hgetall(streams.POSITIONS)
        except Exception as e:  # noqa: BLE001 - the answer goes out without the list
            logger.warning("could not read the positions: %s", e)
            return []
        return sorted(
            str(symbol) for symbol, raw in snapshots.items() if (loads(raw) or {}).get("status", "FLAT") != "FLAT"
        )

    async def set_state(self, state: str, reason: str, *, event_id: str | None = None, store: bool = False) -> None:
        """Change the state, publish ``BotStateChanged``; ``store`` also writes ``control:bot_state``."""
        if state not in tuple(BotState):
            raise ValueError(f"unknown bot state {state!r}")
        changed = state != self.state
        self.state, self.reason = BotState(state), reason
        if store:
            body: dict[str, Any] = {"state": state, "reason": reason, "changed_at_ms": now_ms()}
            await self.redis.set(streams.BOT_STATE, dumps(signing.seal_record(body, self.key)))
        if changed or store:
            logger.info("bot state %s (%s)", state, reason)
        await self.notifier.event(BotStateChanged(state=BotState(state), reason=reason), event_id=event_id)

    async def enter_error(self, reason: str) -> None:
        """Stop entries because something needs the trader (e.g. credentials refused)."""
        if self.state == BotState.ERROR and self.reason == reason:
            return
        await self.set_state(BotState.ERROR, reason, store=True)
