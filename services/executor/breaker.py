"""The account circuit breaker's shell: its state in Redis (``executor:breaker``), shared by
every replica, moved on by ``shared.trading.breaker.advance`` after each closed position and
read before each entry.

Each change is a compare-and-set under WATCH, so two replicas closing positions at once both
count. The record remembers the positions it counted (a position settled twice after a restart
counts once) and the reset commands it applied (every replica reads every command).

The ledger's write of a closed position and the breaker's count are two stores, so a process
can die between them. The record's ``floor_ms`` says every closed position whose exit is at or
before it is counted (or closed before counting began); whenever a replica takes a symbol on
(at start, or from a replica that died) it counts every closed position of the ledger after the
floor that is not yet in the counted set (``catch_up``), so each closed trade counts exactly
once whatever crashes. The floor starts at the ledger's last exit when the record has none, and
moves up to the exit of each counted position that falls out of the remembered set; a start
with every limit unset moves it to the ledger's last exit again (those trades never count).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from services.executor import metrics
from services.executor.notify import Notifier
from shared import streams
from shared.codec import dumps, loads
from shared.trading.breaker import (
    BreakerLimits,
    BreakerStep,
    ClosedTrade,
    Trip,
    advance,
    operator_reset,
    state_dict,
    state_from,
)

logger = logging.getLogger(__name__)

REMEMBERED = 200  # counted position ids and applied reset commands kept in the record
_ATTEMPTS = 50


class AccountBreaker:
    """Trips, clears and resets the breaker, and tells the operator (``breaker_*`` alerts)."""

    def __init__(self, redis: Redis, notifier: Notifier, limits: BreakerLimits) -> None:
        self.redis = redis
        self.notifier = notifier
        self.limits = limits

    async def position_closed(
        self, position_id: int, profit: Decimal, closed_ms: int, equity: Callable[[], Awaitable[Decimal | None]]
    ) -> None:
        """Count a closed position's realised ``profit``; ``equity`` reads the account's equity
        (after the close) when the breaker has none yet."""
        if not self.limits.enabled:
            return
        seed: Decimal | None = None
        if (await self._record()).get("state", {}).get("equity") is None:
            after = await equity()
            seed = None if after is None else after - profit
        trade = ClosedTrade(profit, closed_ms, seed)
        step = await self._change(lambda record: self._count(record, position_id, trade))
        if step is not None:
            await self._tell(step)

    async def start(self, last_exit_ms: int | None) -> None:
        """Counting begins after the ledger's last closed position when the record has no floor
        yet (trades closed before the breaker existed, or while it was off, are not counted)."""

        def change(record: dict[str, Any]) -> tuple[dict[str, Any], None] | None:
            # "counting": the last start had limits; when it had none (or none is recorded),
            # counting begins afresh after the ledger's last exit.
            enabled = self.limits.enabled
            if enabled and record.get("counting") and "floor_ms" in record:
                return None
            floor = max(record.get("floor_ms") or 0, last_exit_ms or 0)
            if record.get("counting") == enabled and record.get("floor_ms") == floor:
                return None
            return {**record, "floor_ms": floor, "counting": enabled}, None

        await self._change(change)

    async def floor_ms(self) -> int | None:
        """Every closed position whose exit is at or before this is counted (None: no floor yet)."""
        return (await self._record()).get("floor_ms")

    async def catch_up(
        self, closed: Iterable[tuple[int, Decimal, int]], equity: Callable[[], Awaitable[Decimal | None]]
    ) -> int:
        """Count the ``(position id, profit, exit ms)`` of closed positions (in exit order) the
        record has not counted; how many were new."""
        if not self.limits.enabled:
            return 0
        record = await self._record()
        floor = record.get("floor_ms") or 0
        counted = _counted_ids(record)
        missed = [c for c in closed if c[2] > floor and c[0] not in counted]
        for position_id, profit, closed_ms in missed:
            logger.warning("circuit breaker counts position %s, closed but not counted before", position_id)
            await self.position_closed(position_id, profit, closed_ms, equity)
        return len(missed)

    async def entry_refusal(self, market_ms: int) -> str:
        """Why the breaker refuses an entry decided at ``market_ms`` ("" when it allows it); a
        new UTC market day clears a tripped daily limit here."""
        if not self.limits.enabled:
            return ""
        state = state_from((await self._record()).get("state"))
        step = advance(state, self.limits, market_ms)
        if step.state != state:
            changed = await self._change(lambda record: self._advance(record, market_ms))
            if changed is not None:  # not already moved on by another replica
                await self._tell(changed)
        return step.state.tripped.refusal if step.state.tripped is not None else ""

    async def reset(self, command_id: str, requested_by: str, market_ms: int | None) -> str:
        """Apply an operator reset once (every replica reads the command); what it cleared."""
        was: list[Trip | None] = []

        def change(record: dict[str, Any]) -> tuple[dict[str, Any], None] | None:
            if command_id in record.get("resets", []):
                return None
            state = state_from(record.get("state"))
            was.append(state.tripped)
            audit = {
                "by": requested_by,
                "command_id": command_id,
                "market_ms": market_ms,
                "cleared": str(state.tripped.limit) if state.tripped else None,
            }
            resets = [*record.get("resets", []), command_id][-REMEMBERED:]
            return {**record, "state": state_dict(operator_reset(state)), "resets": resets, "last_reset": audit}, None

        await self._change(change)
        cleared = was[0] if was else None
        text = f"circuit breaker reset by {requested_by or 'an operator'}: " + (
            f"{cleared.limit} cleared, entries allowed again"
            if cleared
            else "nothing was tripped; limits measured afresh"
        )
        if was:
            await self.notifier.alert("warning", "breaker_reset", text)
        return text

    # -- the record ---------------------------------------------------------------------------

    async def _record(self) -> dict[str, Any]:
        record = loads(await self.redis.get(streams.BREAKER))
        record = record if isinstance(record, dict) else {}
        metrics.breaker(record.get("state"))
        return record

    def _count(
        self, record: dict[str, Any], position_id: int, trade: ClosedTrade
    ) -> tuple[dict[str, Any], BreakerStep] | None:
        if position_id in _counted_ids(record):
            return None
        step = advance(state_from(record.get("state")), self.limits, trade.closed_ms, trade)
        counted = sorted([*_counted_pairs(record), [position_id, trade.closed_ms]], key=lambda p: p[1])
        floor = max([record.get("floor_ms") or 0, *(p[1] for p in counted[:-REMEMBERED])])
        kept = counted[-REMEMBERED:]
        return {**record, "state": state_dict(step.state), "counted": kept, "floor_ms": floor}, step

    def _advance(self, record: dict[str, Any], market_ms: int) -> tuple[dict[str, Any], BreakerStep] | None:
        state = state_from(record.get("state"))
        step = advance(state, self.limits, market_ms)
        return None if step.state == state else ({**record, "state": state_dict(step.state)}, step)

    async def _change(self, change: Callable[[dict[str, Any]], tuple[dict[str, Any], Any] | None]) -> Any:
        """Compare-and-set the record with ``change`` (None: nothing to write); its second value."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for _ in range(_ATTEMPTS):
                try:
                    await pipe.watch(streams.BREAKER)
                    raw = loads(await pipe.get(streams.BREAKER))
                    result = change(raw if isinstance(raw, dict) else {})
                    if result is None:
                        await pipe.unwatch()
                        return None
                    pipe.multi()
                    pipe.set(streams.BREAKER, dumps(result[0]))
                    await pipe.execute()
                    return result[1]
                except WatchError:
                    continue
                finally:
                    await pipe.reset()
        raise RuntimeError("the circuit breaker's record kept changing concurrently")

    async def _tell(self, step: BreakerStep) -> None:
        if step.cleared is not None:
            await self.notifier.alert(
                "info", "breaker_cleared", f"circuit breaker: {step.cleared.limit} cleared at the new UTC market day"
            )
        if step.tripped is not None:
            await self.notifier.alert("error", step.tripped.code, step.tripped.message)


def _counted_pairs(record: dict[str, Any]) -> list[list[int]]:
    """The remembered ``[position id, exit ms]`` pairs (a bare id, an older record's, exits at 0)."""
    return [list(p) if isinstance(p, list) else [int(p), 0] for p in record.get("counted", [])]


def _counted_ids(record: dict[str, Any]) -> set[int]:
    return {p[0] for p in _counted_pairs(record)}
