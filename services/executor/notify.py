"""What the executor tells the rest of the system: events on ``executor:events`` and the
``executor:positions`` snapshot hash. Every alert is also a log line."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from shared import streams
from shared.bus import publish
from shared.codec import dumps
from shared.events import CommandOutcome, ExecutorAlert, Outcome, Payload, make_event
from shared.logs import redact
from shared.store.models import Position

logger = logging.getLogger("services.executor")

SOURCE = "executor"
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
ANSWER_TTL_S = 24 * 3600


def position_snapshot(symbol: str, position: Position | None) -> dict[str, Any]:
    """The ``executor:positions`` value of ``symbol``: FLAT when there is no active position."""
    if position is None or position.status not in ("OPENING", "OPEN", "CLOSING"):
        return {"symbol": symbol, "status": "FLAT", "entry_price": None, "quantity": None,
                "entry_time_ms": None, "stop_loss": None, "take_profit": None}
    return {
        "symbol": symbol,
        "status": position.status,
        "entry_price": _text(position.entry_price),
        "quantity": _text(position.quantity) if position.status != "OPENING" else None,
        "entry_time_ms": position.entry_time_ms,
        "stop_loss": _text(position.stop_loss),
        "take_profit": _text(position.take_profit),
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


class Notifier:
    """Publishes executor events; failures to publish are logged, never raised."""

    def __init__(self, redis: Redis, instance: str = "") -> None:
        self.redis = redis
        self.instance = instance

    async def event(self, payload: Payload, *, event_id: str | None = None, ts_event_ms: int | None = None) -> None:
        """Append ``payload`` to ``executor:events``."""
        try:
            await publish(self.redis, streams.EXECUTOR_EVENTS, make_event(payload, SOURCE, ts_event_ms, event_id))
        except Exception as e:  # noqa: BLE001 - Redis trouble must not stop order handling
            logger.error("could not publish %s: %s", payload.TYPE, e)

    async def alert(self, level: str, code: str, message: str, symbol: str | None = None) -> None:
        """An ``ExecutorAlert`` for the dashboard, and the same text in the log."""
        message = redact(message)
        logger.log(_LEVELS.get(level, logging.WARNING), "%s%s: %s", f"{symbol} " if symbol else "", code, message)
        await self.event(ExecutorAlert(level=level, code=code, message=message, symbol=symbol))

    async def answer(
        self, command_id: str, command: str, outcome: Outcome, reason: str, symbol: str | None = None
    ) -> None:
        """Tell the operator what became of a command: once per command, outcome and symbol.

        Every replica follows ``control:commands``; the first to claim the answer publishes it,
        so the operator gets one answer, not one per replica. Never throttled.
        """
        reason = redact(reason)
        try:
            first = await self.redis.set(
                streams.command_answer_key(command_id, outcome, symbol), self.instance or "-", nx=True, ex=ANSWER_TTL_S
            )
        except Exception as e:  # noqa: BLE001 - answering twice beats not answering
            logger.warning("could not claim the answer to %s: %s", command_id, e)
            first = True
        if not first:
            return
        level = logging.WARNING if outcome is Outcome.REFUSED else logging.INFO
        logger.log(level, "%scommand %s %s: %s (id %s)", f"{symbol} " if symbol else "", command, outcome.value, reason, command_id)
        await self.event(CommandOutcome(
            command_id=command_id, command=command, outcome=outcome, reason=reason, symbol=symbol, instance=self.instance,
        ))

    async def snapshot(self, symbol: str, position: Position | None) -> None:
        """Write the position snapshot of ``symbol`` to the ``executor:positions`` hash."""
        try:
            await self.redis.hset(streams.POSITIONS, symbol, dumps(position_snapshot(symbol, position)))
        except Exception as e:  # noqa: BLE001
            logger.error("could not write the position snapshot of %s: %s", symbol, e)
