"""The shell of the moving stop (``core.stops``): on the first tick after a candle closed, the
symbol's newest closed klines are read from its kline stream (XREVRANGE, a few entries, and the
ATR window before them when a rule trails by ATRs; only while a position is open and a moving
rule is on) and a raised stop is written to the ledger's position row, then published with the
position snapshot, so the dashboard's stop-loss line, a restart and a takeover all see the moved
level. With ``PROTECTION=exchange`` the resting OCO then follows (``follow.StopFollower``).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core.stops import ClosedCandle, candles_due, first_candle_ms, movable, moved_level
from services.executor.klines import atr_at, closed_klines
from shared.trading.ledger import candle_open_ms
from shared.trading.stops import StopRules, atr_window, stop_rules

logger = logging.getLogger(__name__)

# Most candles applied at once: a restart after a long outage reads back this far at most (the
# stop in the ledger already holds what the candles before that did while the executor ran).
MAX_KLINES = 500


class StopMover:
    """Raises the open positions' stops on closed candles; remembers per position the newest
    candle applied (lost on restart: candles are applied again, which moves nothing twice)."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.applied: dict[int, int] = {}  # position id -> open time of the newest candle applied

    async def on_tick(self, book: SymbolBook, market_ms: int) -> None:
        """Move the stop of ``book``'s position by the candles closed up to ``market_ms``; a
        failed read or write leaves the stop where it is (the tick is still checked against it)."""
        try:
            await self._move(book, market_ms)
        except Exception:  # retried on the next tick; never blocks the stop check
            logger.warning("%s stop-loss not moved on this tick", book.symbol, exc_info=True)

    async def _move(self, book: SymbolBook, market_ms: int) -> None:
        position, rules = book.position, stop_rules(self.shell.control.risk(book.symbol))
        if position is None or not movable(position, rules):
            return
        interval = self.shell.settings.interval_ms
        applied = self.applied.get(position.id)
        if not candles_due(applied, market_ms, interval):
            return
        start = applied + interval if applied is not None else first_candle_ms(position, interval)
        if start is None:
            return
        wanted = (candle_open_ms(market_ms, interval) - start) // interval
        candles = await self._closed_candles(book.symbol, max(1, min(MAX_KLINES, wanted)), rules)
        info = await self.shell.symbol_info(book)
        level, newest = moved_level(
            position, candles, rules, info.filters.tick_size, interval_ms=interval, market_ms=market_ms
        )
        if newest is not None:
            self.applied[position.id] = max(newest, applied or newest)
        if level is not None:
            await self._write(book, position.id, level, newest)

    async def _closed_candles(self, symbol: str, count: int, rules: StopRules) -> list[ClosedCandle]:
        """The newest ``count`` closed candles, each with its ATR when a rule trails by ATRs."""
        extra = atr_window(rules.atr_period) - 1 if rules.atr_trailing is not None else 0
        klines = await closed_klines(self.shell.redis, symbol, count + extra)
        interval = self.shell.settings.interval_ms
        candles = []
        for index in range(max(0, len(klines) - count), len(klines)):
            kline = klines[index]
            atr = atr_at(klines, index, rules.atr_period, interval) if extra else None
            candles.append(ClosedCandle(kline.open_time_ms, kline.close_time_ms, kline.close, atr))
        return candles

    async def _write(self, book: SymbolBook, position_id: int, level: Decimal, candle_ms: int | None) -> None:
        shell = self.shell
        async with shell.sessions.begin() as session:
            fresh = await store.get_position(session, position_id)
            if fresh is None or not movable(fresh, stop_rules(shell.control.risk(book.symbol))):
                return
            if fresh.stop_loss is not None and fresh.stop_loss >= level:
                book.position = fresh
                return
            previous, fresh.stop_loss = fresh.stop_loss, level
            await session.flush()
        book.position = fresh
        logger.info("%s stop-loss moved %s -> %s on the candle of %s", book.symbol, previous, level, candle_ms)
        await shell.sink.snapshot(book.symbol, fresh, book.protection)
