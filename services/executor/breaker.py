"""The account circuit breaker's shell: its state in Redis (``executor:breaker``), shared by
every replica, moved on by ``shared.trading.breaker.advance`` after each closed position and
read before each entry.

Each change is a compare-and-set under WATCH, so two replicas closing positions at once both
count. The record remembers the positions it counted (a position settled twice after a restart
counts once) and the reset commands it applied (every replica reads every command).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

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
            audit = {"by": requested_by, "command_id": command_id, "market_ms": market_ms, "cleared": str(state.tripped.limit) if state.tripped else None}
            resets = [*record.get("resets", []), command_id][-REMEMBERED:]
            return {**record, "state": state_dict(operator_reset(state)), "resets": resets, "last_reset": audit}, None

        await self._change(change)
        cleared = was[0] if was else None
        text = f"circuit breaker reset by {requested_by or 'an operator'}: " + (
            f"{cleared.limit} cleared, entries allowed again" if cleared else "nothing was tripped; limits measured afresh"
        )
        if was:
            await self.notifier.alert("warning", "breaker_reset", text)
        return text

    # -- the record ---------------------------------------------------------------------------

    async def _record(self) -> dict[str, Any]:
        record = loads(await self.redis.get(streams.BREAKER))
        return record if isinstance(record, dict) else {}

    def _count(self, record: dict[str, Any], position_id: int, trade: ClosedTrade) -> tuple[dict[str, Any], BreakerStep] | None:
        counted = record.get("counted", [])
        if position_id in counted:
            return None
        step = advance(state_from(record.get("state")), self.limits, trade.closed_ms, trade)
        return {**record, "state": state_dict(step.state), "counted": [*counted, position_id][-REMEMBERED:]}, step

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
