"""The executor: per-symbol handling of tickers, signals, commands and execution reports.

One ``Consumer`` (group ``executor``) reads, for every symbol this replica holds the lease of,
``market:ticker:<S>``, ``executor:inbox:<S>``, ``control:commands:<S>`` and
``account:executions:<S>``; a batch is handled in arrival order, so a symbol's events are applied
one at a time by one process. Leases are rebalanced between polls and renewed by their own task;
after any wait and right before an order is sent the lease is renewed, and a replica that no
longer holds it sends nothing and leaves the entry to the next owner.

Decisions are made by ``services.executor.core`` (pure: facts and the present in, new state and
effects out); the flows (``entries``, ``exits``, ``sender``, ``settle``, ``fills``,
``positions``) read the facts and perform the effects through ``context.Shell``. Time comes from
the ``Clock`` given here (the system's by default).

Every order follows the same path: the intent (order INTENT, position OPENING or CLOSING) is
committed first, then the MARKET order is sent under its deterministic client order id. A
definite answer is applied; an unknown outcome is settled by querying that id, and only a
definite "does not exist" lets the same id be sent again. Fills are recorded by trade id from
whichever source brings them first (FULL response, execution report, myTrades).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.executor import store
from services.executor.book import SymbolBook, symbol_of
from services.executor.config import ExecutorSettings
from services.executor.context import NotOwned, Shell
from services.executor.control import BotControl
from services.executor.core.closes import on_close
from services.executor.core.state import CloseRequest
from services.executor.core.ticks import Tick, on_sell_signal, on_tick
from services.executor.flows import Flows
from services.executor.notify import Notifier
from services.executor.ports import ExchangePort
from services.executor.reconciling import Reconciling, symbol_streams
from services.executor.stops import StopMover
from services.executor.watch import TickWatch
from shared import signing, streams
from shared.aio import sleep_or_stop
from shared.bus import Consumer, ensure_groups, entry_time_ms
from shared.clock import SYSTEM_CLOCK, Clock
from shared.events import BotCommand, Command, Envelope, ExecutionReport, Signal, Ticker
from shared.leases import SymbolLeases
from shared.trading import ids, ledger
from shared.trading.vocabulary import PositionStatus, Side

logger = logging.getLogger(__name__)

SERVICE = "executor"
REBALANCE_EVERY_S = 1.0

# Every entry of these per-symbol streams can move money, whatever type it claims to be.
SEALED_STREAM_PREFIXES = (streams.executor_inbox(""), streams.symbol_commands(""))

__all__ = ["Executor", "NotOwned", "require_key"]


def require_key(settings: ExecutorSettings) -> bytes:
    """The bus key: without it no signal or command could be trusted, so nothing starts."""
    key = settings.signing_key()
    if key is None:
        raise signing.SigningKeyError("BUS_SIGNING_KEY (or BUS_SIGNING_KEY_FILE) is required by the executor")
    return key


class Executor(Reconciling):
    """Owns symbols through leases and turns their events into orders and ledger entries."""

    def __init__(
        self,
        settings: ExecutorSettings,
        redis: Redis,
        sessions: async_sessionmaker,
        exchange: ExchangePort,
        instance: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.sessions = sessions
        self.exchange = exchange
        self.instance = instance
        self.clock = clock
        self.notifier = Notifier(redis, instance)
        self.key = require_key(settings)
        self.control = BotControl(redis, settings, self.notifier)
        self.books: dict[str, SymbolBook] = {}  # owned and reconciled: their streams are read
        # Owned, waiting for (or in) their start-up reconciliation, which runs in its own task.
        self.arriving: dict[str, SymbolBook] = {}
        self._arrived = asyncio.Event()
        self.leases = SymbolLeases(
            redis, SERVICE, instance, settings.symbols, self._on_acquired, self._on_lost, ttl_ms=settings.lease_ttl_ms
        )
        self.consumer = Consumer(
            redis,
            group=streams.GROUP_EXECUTOR,
            name=instance,
            handler=self.handle,
            block_ms=settings.poll_block_ms,
            claim_idle_ms=max(settings.lease_ttl_ms * 2, 30_000),
            gate=self._check_seal,
        )
        self.shell = Shell(
            settings, redis, sessions, exchange, self.notifier, self.control, self.leases, clock, self._bus_entry_ms
        )
        self.flows = Flows(self.shell)
        self.stops = StopMover(self.shell)
        self.watch = TickWatch(redis, self.consumer, SERVICE, instance)
        self._last_rebalance = 0.0
        self._last_periodic = clock.monotonic()

    # -- life cycle ------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Before the first round: the control state, and where the circuit breaker's counting begins."""
        await self.control.load()
        async with self.sessions() as session:
            await self.control.breaker.start(await store.last_exit_ms(session))

    async def run(self, stop: asyncio.Event) -> None:
        """Follow control, hold leases and consume until ``stop``; give the leases back at the end."""
        await self.prepare()
        background = [
            asyncio.create_task(self.leases.keep_alive(stop), name="executor-leases"),
            asyncio.create_task(self.control.follow(stop), name="executor-control"),
            asyncio.create_task(self._reconciliation(stop), name="executor-reconcile"),
        ]
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("executor round failed")
                    await sleep_or_stop(stop, 1.0)
                if not self.consumer.streams:
                    await sleep_or_stop(stop, self.settings.poll_block_ms / 1000)
        finally:
            stop.set()
            await asyncio.gather(*background, return_exceptions=True)
            try:
                await self.shell.later.finish_all()
            except Exception:  # the sent orders are settled by reconciliation
                logger.exception("answers not applied at the stop; reconciliation settles them")
            try:
                await self.leases.release_all()
            except Exception as e:  # noqa: BLE001 - the leases expire by themselves
                logger.warning("could not release leases: %s", e)

    async def step(self) -> None:
        """One round: rebalance leases (at most every second), poll once, due settling and exit
        retries. Reconciliation (at a start or takeover, and periodic) runs in its own task."""
        clock = self.clock
        if clock.monotonic() - self._last_rebalance >= REBALANCE_EVERY_S:
            self._last_rebalance = clock.monotonic()
            await self.leases.rebalance()
        later = self.shell.later
        if self.consumer.streams:
            # Sent entries wait while new ones keep coming: the poll waits no longer than that.
            await self.consumer.poll_once(later.block_ms() if later else None)
            if later and (later.quiet() or later.overdue()):
                await later.finish_all()
        elif later:
            await later.finish_all()
        for book in [b for b in self.books.values() if b.settle_due is not None and b.settle_due <= clock.monotonic()]:
            async with book.lock:
                await later.finish(book)
                book.settle_due = None
                await self.flows.settle_symbol(book)
        for book in [b for b in self.books.values() if b.exit.due is not None and b.exit.due <= clock.monotonic()]:
            async with book.lock:
                await later.finish(book)
                book.exit = replace(book.exit, due=None)
                await self.flows.exits.retry_exit(book)
        await self.watch.sync(self.books)

    async def _on_acquired(self, symbol: str) -> None:
        ticker, inbox, commands, executions = symbol_streams(symbol)
        # A new group starts at the newest tick; an existing one resumes where the previous owner
        # stopped, so a stop-loss or take-profit crossed while nobody owned the symbol still fires
        # (and is recorded in the candle where it was crossed), as a resting stop order would have.
        # Reconciliation reads the exchange for what happened before now; reports from now on follow.
        group = streams.GROUP_EXECUTOR
        await ensure_groups(
            self.redis, [(ticker, group, "$"), (inbox, group, "0"), (commands, group, "0"), (executions, group, "$")]
        )
        self.arriving[symbol] = SymbolBook(symbol)
        self._arrived.set()

    async def _on_lost(self, symbol: str) -> None:
        for stream in symbol_streams(symbol):
            self.consumer.remove_stream(stream)
        self.books.pop(symbol, None)
        self.arriving.pop(symbol, None)
        self.shell.later.drop(symbol)
        logger.info("gave up %s", symbol)

    def _bus_entry_ms(self) -> int | None:
        entry_id = self.consumer.current_entry_id
        return None if entry_id is None else entry_time_ms(entry_id)

    async def _check_seal(self, stream: str, entry_id: str, fields: dict[str, str]) -> str | None:
        """Refuse (dead-letter, alert) an entry that could move money without a valid MAC:
        everything in the inbox and the symbol's command stream, and a signal or command anywhere."""
        if not (stream.startswith(SEALED_STREAM_PREFIXES) or signing.needs_seal(fields)):
            return None
        seal = signing.check_fields(fields, self.key)
        if seal is signing.Seal.VALID:
            return None
        kind = f"{fields.get('type', '?')} {fields.get('side', '')}".strip()
        await self.notifier.alert(
            "error",
            "forged_entry",
            f"refused {kind} entry {entry_id} of {stream}: MAC {seal.value}; no order sent",
            symbol_of(stream),
        )
        return f"mac {seal.value}"

    # -- dispatch ----------------------------------------------------------------------------

    async def handle(self, stream: str, event: Envelope) -> None:
        """Apply one event of an owned symbol's stream."""
        symbol = symbol_of(stream)
        book = self.books.get(symbol)
        if book is None or symbol not in self.leases.owned:
            raise NotOwned(symbol)
        payload = event.payload
        if getattr(payload, "symbol", symbol) not in (symbol, None):
            logger.warning("ignored %s for %s on %s", event.type, getattr(payload, "symbol", "?"), stream)
            return
        async with book.lock:
            await self.shell.later.finish(book, raise_lost=True)  # the symbol's events apply in order
            await self._apply(book, event, payload)

    async def _apply(self, book: SymbolBook, event: Envelope, payload: object) -> None:
        if isinstance(payload, Ticker):
            await self.on_tick(book, event, payload)
        elif isinstance(payload, Signal) and payload.side == Side.BUY:
            await self.flows.entries.on_entry_signal(book, event, payload)
        elif isinstance(payload, Signal) and payload.side == Side.SELL:
            effects = on_sell_signal(payload, event.event_id, book.entry, self.settings.interval_ms)
            await self.shell.perform(book, effects)
        elif isinstance(payload, BotCommand) and payload.command == Command.CLOSE_POSITION:
            await self.on_close_command(book, event, payload)
        elif isinstance(payload, ExecutionReport):
            state = ledger.order_from_report(payload)
            if ids.is_bot_id(state.client_order_id):
                await self.flows.fills.apply_order_state(book, state)

    async def on_tick(self, book: SymbolBook, event: Envelope, tick: Ticker) -> None:
        """Watch the stop-loss and take-profit of the open position on every price (``core.ticks``)."""
        book.market = book.market.with_tick(tick.price, event.ts_event_ms)
        if book.position is not None and book.position.status == PositionStatus.OPENING:
            await self.flows.limits.check(book, event.ts_event_ms, tick.price)  # a resting limit entry
        await self.stops.on_tick(book, event.ts_event_ms)  # closed candles first: the tick meets the moved stop
        # A moved stop moves the resting stop first; then an OCO resting on the exchange sells at
        # both levels (its legs' fills close the position), a single stop at the stop only.
        stop_on_exchange = book.guarded and await self.flows.follower.follow(book)
        if stop_on_exchange and book.take_profit_resting:
            return
        effects = on_tick(
            book.position,
            book.exit,
            book.entry,
            Tick(event.event_id, tick.price, event.ts_event_ms),
            interval_ms=self.settings.interval_ms,
            since_settle_s=self.clock.monotonic() - book.last_settle,
            stop_on_exchange=stop_on_exchange,
        )
        await self.shell.perform(book, effects)

    async def on_close_command(self, book: SymbolBook, event: Envelope, command: BotCommand) -> None:
        """Sell the position at market on the operator's request, in any bot state; always answered."""
        request = CloseRequest(command.command_id or event.event_id, command.origin or command.command, event.event_id)
        waiting, effects = on_close(book.position.status if book.position is not None else None, request)
        if waiting is not None:
            book.closes = (*book.closes, waiting)
        await self.shell.perform(book, effects)
        if waiting is not None and book.position is not None and book.position.status == PositionStatus.OPENING:
            # a resting limit entry is cancelled: what filled opens and is sold, nothing filled is done
            await self.flows.limits.check(book, None, None, close=True)
