"""The executor's reconciliations, in a task of their own: each symbol taken (at a start or a
takeover) before its streams are read, then every ``RECONCILE_INTERVAL_S`` each owned one. A
reconciliation waiting for request weight (500 symbols' start-up spreads over minutes) never
holds up the ticks, signals and commands of the symbols already owned; a symbol's own events
wait for its lock only while it is being reconciled."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import async_sessionmaker

from services.executor.book import SymbolBook
from services.executor.config import ExecutorSettings
from services.executor.context import Shell
from services.executor.core.ticks import EntryTimes
from services.executor.flows import Flows
from services.executor.notify import Notifier
from services.executor.ports import ExchangePort
from services.executor.reconcile import reconcile_clean_symbol, reconcile_symbol
from services.executor.store.ledger import Ledger
from services.executor.watch import watched
from shared import streams
from shared.aio import sleep_or_stop
from shared.bus import Consumer
from shared.clock import Clock

logger = logging.getLogger(__name__)

# The weight one symbol's periodic reconciliation may spend (an unsettled order's query, its
# legs' queries): the pass waits for that much room before it takes the symbol's lock.
PERIODIC_WEIGHT = 20
# Symbols without history reconciled together: their short path waits on Redis, not on the ledger.
CLEAN_AT_ONCE = 50


def symbol_streams(symbol: str) -> tuple[str, str, str, str]:
    """The per-symbol streams the owner of ``symbol`` reads."""
    return (
        streams.ticker_stream(symbol),
        streams.executor_inbox(symbol),
        streams.symbol_commands(symbol),
        streams.executions_stream(symbol),
    )


class Reconciling:
    """The reconciliation task of ``Executor``, over its books and consumer."""

    settings: ExecutorSettings
    sessions: async_sessionmaker
    exchange: ExchangePort
    clock: Clock
    notifier: Notifier
    consumer: Consumer
    shell: Shell
    flows: Flows
    books: dict[str, SymbolBook]
    arriving: dict[str, SymbolBook]
    _arrived: asyncio.Event
    _last_periodic: float

    async def _reconciliation(self, stop: asyncio.Event) -> None:
        """Reconcile newly owned symbols, then every ``RECONCILE_INTERVAL_S`` each owned one, in this
        task: a reconciliation waiting for request weight (500 symbols' start-up spreads over
        minutes) never holds up the ticks, signals and commands of the symbols already owned."""
        while not stop.is_set():
            try:
                await self.reconcile_arrivals()
                await self.reconcile_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("executor reconciliation failed")
                await sleep_or_stop(stop, 1.0)
            self._arrived.clear()
            if not self.arriving:
                try:
                    await asyncio.wait_for(self._arrived.wait(), 0.5)
                except TimeoutError:
                    pass

    async def reconcile_arrivals(self) -> None:
        """Reconcile every symbol taken and not reconciled yet, then read its streams. Which of
        them the ledger holds anything of is read once per round of arrivals (one query): the
        others take the short path (``reconcile_clean_symbol``), ``CLEAN_AT_ONCE`` at a time (a
        few Redis round trips each, no ledger), those with history one after the other."""
        while self.arriving:
            history = await Ledger(self.sessions).symbols_with_history()
            arrived = list(self.arriving.items())
            clean = [(symbol, book) for symbol, book in arrived if symbol not in history]
            for start in range(0, len(clean), CLEAN_AT_ONCE):
                chunk = clean[start : start + CLEAN_AT_ONCE]
                await asyncio.gather(*(self._arrive(symbol, book, clean=True) for symbol, book in chunk))
            for symbol, book in arrived:
                if symbol in history:
                    await self._arrive(symbol, book, clean=False)

    async def _arrive(self, symbol: str, book: SymbolBook, *, clean: bool) -> None:
        if self.arriving.get(symbol) is not book:
            return  # lost meanwhile
        await self._reconcile_new(book, clean=clean)
        if self.arriving.get(symbol) is book:  # still owned: lost meanwhile, it is forgotten
            del self.arriving[symbol]
            self.books[symbol] = book
            ticker = streams.ticker_stream(symbol)
            for stream in symbol_streams(symbol):
                # A flat symbol's ticks act on nothing: its ticker group is left to TickWatch.
                if stream != ticker or watched(book):
                    self.consumer.add_stream(stream, take_over=True)

    async def reconcile_due(self) -> None:
        """``reconcile_owned`` once ``RECONCILE_INTERVAL_S`` has passed since the last pass."""
        if self.clock.monotonic() - self._last_periodic >= self.settings.reconcile_interval_s:
            self._last_periodic = self.clock.monotonic()
            await self.reconcile_owned()

    async def reconcile_owned(self) -> None:
        """The periodic pass: settle and check the protection of every reconciled symbol the
        ledger holds an order or a position of (read once per pass; an order written during the
        pass is its own flow's until the next one)."""
        budget = getattr(self.exchange, "budget", None)
        history = await Ledger(self.sessions).symbols_with_history()
        for symbol in sorted(self.books.keys() & history):
            if budget is not None:
                await budget.room(PERIODIC_WEIGHT)  # before the lock: the symbol's ticks wait only for the pass
            book = self.books.get(symbol)
            if book is None:
                continue
            async with book.lock:
                await self.shell.later.finish(book)
                await self.flows.settle_symbol(book)
                await self.flows.guard.check(book)
                # a resting limit entry times out on the market clock even when no tick comes
                await self.flows.limits.check(book, await self.shell.market_clock(symbol), None)

    async def _reconcile_new(self, book: SymbolBook, *, clean: bool = False) -> None:
        symbol = book.symbol
        try:
            if clean:
                await reconcile_clean_symbol(book, settling=self.flows, exchange=self.exchange, sink=self.notifier)
            else:
                await reconcile_symbol(
                    book, settling=self.flows, ledger=Ledger(self.sessions), exchange=self.exchange, sink=self.notifier
                )
        except Exception as e:
            logger.exception("reconciliation of %s failed", symbol)
            await self.notifier.alert("error", "reconcile_failed", f"reconciliation failed: {e}", symbol)
        if clean:  # nothing of it in the ledger: no missed count, limit entry or protection to resume
            book.entry = EntryTimes()
            await self.notifier.snapshot(symbol, None, book.protection)  # flat, as ``reload_position`` says it
            return
        try:  # a trade closed by a process that died before counting it is counted now
            await self.flows.count_missed(book)
        except Exception:
            logger.exception("circuit breaker catch-up failed")
        await self.flows.reload_position(book)
        try:  # a limit entry that timed out while its fallback was being decided gets it now
            await self.flows.limits.resume(book)
        except Exception:
            logger.exception("limit entry fallback of %s failed", symbol)
        try:  # legs that sold while nobody listened close their position; an unprotected one gets its OCO
            await self.flows.guard.check(book)
        except Exception as e:
            logger.exception("protection check of %s failed", symbol)
            await self.notifier.alert("error", "reconcile_failed", f"protection check failed: {e}", symbol)
