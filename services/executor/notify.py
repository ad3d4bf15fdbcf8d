"""What the executor tells the rest of the system: events on ``executor:events`` and the
``executor:positions`` snapshot hash. Every alert is also a log line."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from services.executor import metrics
from shared import streams
from shared.bus import publish, queue_publish
from shared.codec import dumps
from shared.events import (
    CommandOutcome,
    Condition,
    Decision,
    ExecutorAlert,
    Outcome,
    Payload,
    PositionClosed,
    PositionSnapshot,
    Signal,
    make_event,
)
from shared.logs import redact
from shared.store.models import Position
from shared.trading.vocabulary import PositionStatus, Side

logger = logging.getLogger("services.executor")

SOURCE = "executor"
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
ANSWER_TTL_S = 24 * 3600
FLAT = "FLAT"  # the snapshot's status of a symbol without an active position
ACTIVE = (PositionStatus.OPENING, PositionStatus.OPEN, PositionStatus.CLOSING)


def position_snapshot(symbol: str, position: Position | None, protection: str | None = None) -> dict[str, Any]:
    """The ``executor:positions`` value of ``symbol``: FLAT when there is no active position.

    ``entry_time_ms`` is the exchange's fill time, ``entry_market_time_ms`` the market time of
    the entry decision; ``dust_quantity`` the bot's dust the position's exit will sell too;
    ``protection`` who watches the levels: ``exchange`` (an OCO rests) or ``bot`` (ticks).
    """
    if position is None or position.status not in ACTIVE:
        return {
            "symbol": symbol,
            "status": FLAT,
            "entry_price": None,
            "quantity": None,
            "entry_time_ms": None,
            "stop_loss": None,
            "take_profit": None,
            "trade_id": None,
            "entry_market_time_ms": None,
            "dust_quantity": None,
            "protection": None,
        }
    return {
        "symbol": symbol,
        "status": position.status,
        "entry_price": _text(position.entry_price),
        "quantity": _text(position.quantity) if position.status != PositionStatus.OPENING else None,
        "entry_time_ms": position.entry_time_ms,
        "stop_loss": _text(position.stop_loss),
        "take_profit": _text(position.take_profit),
        "trade_id": position.id,
        "entry_market_time_ms": position.entry_market_time_ms,
        "dust_quantity": _text(position.dust_in),
        "protection": protection if position.status in (PositionStatus.OPEN, PositionStatus.CLOSING) else None,
    }


def _snapshot_event(symbol: str, body: dict[str, Any]) -> PositionSnapshot:
    return PositionSnapshot(
        symbol=symbol,
        status=body["status"],
        trade_id=body["trade_id"],
        entry_price=body["entry_price"],
        quantity=body["quantity"],
        dust_quantity=body["dust_quantity"],
        entry_time_ms=body["entry_market_time_ms"] or body["entry_time_ms"],
        stop_loss=body["stop_loss"],
        take_profit=body["take_profit"],
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


class Notifier:
    """Publishes executor events; failures to publish are logged, never raised."""

    def __init__(self, redis: Redis, instance: str = "") -> None:
        self.redis = redis
        self.instance = instance
        self._last_snapshot: dict[str, str] = {}

    async def event(self, payload: Payload, *, event_id: str | None = None, ts_event_ms: int | None = None) -> None:
        """Append ``payload`` to ``executor:events``."""
        if isinstance(payload, PositionClosed):
            metrics.closed(payload.symbol, payload.quote_received - payload.quote_spent, payload.exit_reason)
        try:
            await publish(self.redis, streams.EXECUTOR_EVENTS, make_event(payload, SOURCE, ts_event_ms, event_id))
        except Exception as e:  # noqa: BLE001 - Redis trouble must not stop order handling
            logger.error("could not publish %s: %s", payload.TYPE, e)

    async def alert(self, level: str, code: str, message: str, symbol: str | None = None) -> None:
        """An ``ExecutorAlert`` for the dashboard, and the same text in the log."""
        message = redact(message)
        metrics.alert(level, code, message)
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
        logger.log(
            level,
            "%scommand %s %s: %s (id %s)",
            f"{symbol} " if symbol else "",
            command,
            outcome.value,
            reason,
            command_id,
        )
        await self.event(
            CommandOutcome(
                command_id=command_id,
                command=command,
                outcome=outcome,
                reason=reason,
                symbol=symbol,
                instance=self.instance,
            )
        )

    async def decision(self, signal: Signal, note: str) -> None:
        """A decision-log record (``strategy:decisions``) saying what became of ``signal`` when the
        executor did not act on it, e.g. "skipped: entry pending"."""
        record = Decision(
            symbol=signal.symbol,
            interval=signal.interval,
            candle_open_time_ms=signal.candle_open_time_ms,
            close=signal.price,
            warm=True,
            entry=signal.side == Side.BUY,
            exit=signal.side == Side.SELL,
            conditions=[Condition(name=f"executor {note}", passed=False)],
            indicators=dict(signal.indicators),
            parameters_version=signal.parameters_version,
            note=note,
            strategy=signal.strategy,
        )
        event_id = f"decision-{signal.symbol}-{signal.candle_open_time_ms}-{signal.side}-executor"
        try:
            await publish(
                self.redis, streams.DECISIONS, make_event(record, SOURCE, signal.candle_open_time_ms, event_id)
            )
        except Exception as e:  # noqa: BLE001 - Redis trouble must not stop order handling
            logger.error("could not write the decision of %s: %s", event_id, e)

    async def snapshot(
        self, symbol: str, position: Position | None, protection: str | None = None, also: Payload | None = None
    ) -> None:
        """Write the position snapshot of ``symbol`` to the ``executor:positions`` hash and, when it
        changed, announce it as a ``position_snapshot`` event (the dashboard's position panel);
        then ``also``, an event that goes with it (an entry's intent: its order update).

        All in one round trip (three snapshots an entry: the intent, the fill, the protection),
        not transactional: the hash is the state, the events notices of it. A failed write is
        logged and the event is announced again with the next snapshot."""
        body = position_snapshot(symbol, position, protection)
        metrics.OPEN_POSITIONS.labels(symbol).set(0 if body["status"] == FLAT else 1)
        text = dumps(body)
        changed = self._last_snapshot.get(symbol) != text
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(streams.POSITIONS, symbol, text)
                if changed:
                    queue_publish(pipe, streams.EXECUTOR_EVENTS, make_event(_snapshot_event(symbol, body), SOURCE))
                if also is not None:
                    queue_publish(pipe, streams.EXECUTOR_EVENTS, make_event(also, SOURCE))
                await pipe.execute()
        except Exception as e:  # noqa: BLE001 - Redis trouble must not stop order handling
            logger.error("could not write the position snapshot of %s: %s", symbol, e)
            self._last_snapshot.pop(symbol, None)
            return
        self._last_snapshot[symbol] = text

    async def symbol_info(self, info: Any) -> None:
        """Publish a symbol's filters (``market:symbols``) so the dashboard reads numbers in its precision."""
        filters = info.filters
        body = {
            "symbol": info.symbol,
            "base_asset": info.base_asset,
            "quote_asset": info.quote_asset,
            "tick_size": _text(filters.tick_size),
            "step_size": _text(filters.market_step),
            "min_qty": _text(filters.market_min_quantity),
            "min_notional": _text(filters.market_min_notional),
        }
        try:
            await self.redis.hset(streams.SYMBOL_INFO, info.symbol, dumps(body))
        except Exception as e:  # noqa: BLE001
            logger.error("could not publish the filters of %s: %s", info.symbol, e)
