"""The executor: per-symbol handling of tickers, signals, commands and execution reports.

One ``Consumer`` (group ``executor``) reads, for every symbol this replica holds the lease of,
``market:ticker:<S>``, ``executor:inbox:<S>`` and ``account:executions:<S>``; a batch is handled
in arrival order, so a symbol's events are applied one at a time by one process. Leases are
rebalanced between polls and renewed by their own task; after any wait and right before an
order is sent the lease is renewed (``SymbolLeases.confirm``), and a replica that no longer holds
it sends nothing and leaves the entry to the next owner.

Trading ages are market time against ``market:clock``: a BUY is acted on only within its
allowance after its candle's close, and a price or exit signal acts on a position only if it is
later than the position's entry.

Every order follows the same path: the intent (order INTENT, position OPENING or CLOSING) is
committed first, then the MARKET order is sent under its deterministic client order id. A
definite answer is applied; an unknown outcome is settled by querying that id, and only a
definite "does not exist" lets the same id be sent again. Fills are recorded by trade id from
whichever source brings them first (FULL response, execution report, myTrades).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.executor import store
from shared.trading import ids, ledger
from services.executor.config import ExecutorSettings
from services.executor.control import BotControl
from services.executor.exchange import (
    ClockSkew,
    CredentialsRejected,
    Exchange,
    ExchangeError,
    OrderNotFound,
    RateLimited,
    Rejected,
    RetryLater,
    SymbolInfo,
    UnknownOutcome,
)
from services.executor.notify import Notifier
from shared.trading.protection import ExitReason, exit_reason, protection_levels, realised_return_pct
from shared.trading.sizing import format_decimal, sellable_quantity, size_entry
from shared.aio import sleep_or_stop
from shared import signing, streams
from shared.bus import Consumer, NotMine, ensure_group, entry_time_ms
from shared.codec import dumps
from shared.events import (
    BotCommand,
    Command,
    Condition,
    Decision,
    Envelope,
    ExecutionReport,
    OrderUpdate,
    Outcome,
    PositionClosed,
    PositionOpened,
    Signal,
    Ticker,
    now_ms,
)
from shared.leases import SymbolLeases
from shared.store.models import Order, Position

logger = logging.getLogger(__name__)

SERVICE = "executor"
ZERO = Decimal(0)
SETTLE_THROTTLE_S = 2.0
# Stamp an entry with the Redis server time at which its order leaves: the clock of entry ids.
_STAMP_SENT = """
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ms)
return ms
"""
REBALANCE_EVERY_S = 1.0
ALERT_REPEAT_S = 60.0
READS_BEFORE_SIZING = 5  # attempts of the account read, within the signal's allowance
MAX_REFUSALS = 10  # rate-limit refusals of one order (they do not use up send attempts)


# Every entry of these per-symbol streams can move money, whatever type it claims to be.
SEALED_STREAM_PREFIXES = (streams.executor_inbox(""), streams.symbol_commands(""))


def require_key(settings: ExecutorSettings) -> bytes:
    """The bus key: without it no signal or command could be trusted, so nothing starts."""
    key = settings.signing_key()
    if key is None:
        raise signing.SigningKeyError("BUS_SIGNING_KEY (or BUS_SIGNING_KEY_FILE) is required by the executor")
    return key


@dataclass
class CloseRequest:
    """An operator's close of one symbol, answered until its position is closed or the close fails."""

    command_id: str
    command: str  # close_position, or close_all when it is part of one
    source_event_id: str
    accepted: bool = False


class NotOwned(NotMine):
    """This replica no longer holds the symbol's lease; the entry is left for the next owner."""


class Settled(Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    INCONCLUSIVE = "inconclusive"


@dataclass
class SymbolBook:
    """What the executor keeps in memory about one owned symbol."""

    symbol: str
    position: Position | None = None
    info: SymbolInfo | None = None
    last_price: Decimal | None = None
    last_tick_market_ms: int = 0
    entry_fill_ms: int | None = None  # the open position's entry fill, exchange time
    entry_sent_ms: int | None = None  # Redis time its entry order was sent (compares with entry ids)
    settle_due: float | None = None  # monotonic time an unsent intent can be settled for good
    exit_retry_at: float = 0.0
    # A decided exit not yet under way (reason, candle, source event): it keeps its reason and is
    # sent again at ``exit_due`` (monotonic), ticks or not; ``exit_refusals`` paces the backoff.
    pending_exit: tuple[str, int | None, str] | None = None
    exit_due: float | None = None
    exit_refusals: int = 0
    last_settle: float = 0.0
    alerted: dict[str, float] = field(default_factory=dict)
    closes: list[CloseRequest] = field(default_factory=list)
    market_time_ms: int | None = None  # exchange time of the newest tick: the market clock of a manual close


def symbol_of(stream: str) -> str:
    """The symbol at the end of a per-symbol stream name."""
    return stream.rsplit(":", 1)[-1]


class Executor:
    """Owns symbols through leases and turns their events into orders and ledger entries."""

    def __init__(
        self,
        settings: ExecutorSettings,
        redis: Redis,
        sessions: async_sessionmaker,
        exchange: Exchange,
        instance: str,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.sessions = sessions
        self.exchange = exchange
        self.instance = instance
        self.notifier = Notifier(redis, instance)
        self.key = require_key(settings)
        self.control = BotControl(redis, settings, self.notifier)
        self.books: dict[str, SymbolBook] = {}
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
        self._last_rebalance = 0.0
        self._last_periodic = time.monotonic()

    # -- life cycle ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow control, hold leases and consume until ``stop``; give the leases back at the end."""
        await self.control.load()
        background = [
            asyncio.create_task(self.leases.keep_alive(stop), name="executor-leases"),
            asyncio.create_task(self.control.follow(stop), name="executor-control"),
        ]
        try:
            while not stop.is_set():
                try:
                    await self.step()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - never crash on one bad round
                    logger.exception("executor round failed")
                    await sleep_or_stop(stop, 1.0)
                if not self.consumer.streams:
                    await sleep_or_stop(stop, self.settings.poll_block_ms / 1000)
        finally:
            stop.set()
            await asyncio.gather(*background, return_exceptions=True)
            try:
                await self.leases.release_all()
            except Exception as e:  # noqa: BLE001
                logger.warning("could not release leases: %s", e)

    async def step(self) -> None:
        """One round: rebalance leases (at most every second), poll once, periodic settling."""
        if time.monotonic() - self._last_rebalance >= REBALANCE_EVERY_S:
            self._last_rebalance = time.monotonic()
            await self.leases.rebalance()
        if self.consumer.streams:
            await self.consumer.poll_once()
        for book in [b for b in self.books.values() if b.settle_due is not None and b.settle_due <= time.monotonic()]:
            book.settle_due = None
            await self.settle_symbol(book)
        for book in [b for b in self.books.values() if b.exit_due is not None and b.exit_due <= time.monotonic()]:
            book.exit_due = None
            await self._retry_exit(book)
        if time.monotonic() - self._last_periodic >= self.settings.reconcile_interval_s:
            self._last_periodic = time.monotonic()
            for symbol in sorted(self.books):
                await self.settle_symbol(self.books[symbol])

    async def _on_acquired(self, symbol: str) -> None:
        from services.executor.reconcile import reconcile_symbol

        ticker = streams.ticker_stream(symbol)
        # A new group starts at the newest tick; an existing one resumes where the previous owner
        # stopped, so a stop-loss or take-profit crossed while nobody owned the symbol still fires
        # (and is recorded in the candle where it was crossed), as a resting stop order would have.
        await ensure_group(self.redis, ticker, streams.GROUP_EXECUTOR, "$")
        await ensure_group(self.redis, streams.executor_inbox(symbol), streams.GROUP_EXECUTOR, "0")
        await ensure_group(self.redis, streams.symbol_commands(symbol), streams.GROUP_EXECUTOR, "0")
        # Reconciliation reads the exchange for what happened before now; reports from now on follow.
        await ensure_group(self.redis, streams.executions_stream(symbol), streams.GROUP_EXECUTOR, "$")
        book = SymbolBook(symbol)
        self.books[symbol] = book
        try:
            await reconcile_symbol(self, book)
        except Exception as e:  # noqa: BLE001 - the periodic settling tries again
            logger.exception("reconciliation of %s failed", symbol)
            await self.notifier.alert("error", "reconcile_failed", f"reconciliation failed: {e}", symbol)
        await self.reload_position(book)
        for stream in (ticker, streams.executor_inbox(symbol), streams.symbol_commands(symbol), streams.executions_stream(symbol)):
            self.consumer.add_stream(stream, take_over=True)

    async def _on_lost(self, symbol: str) -> None:
        for stream in (streams.ticker_stream(symbol), streams.executor_inbox(symbol), streams.symbol_commands(symbol),
                       streams.executions_stream(symbol)):
            self.consumer.remove_stream(stream)
        self.books.pop(symbol, None)
        logger.info("gave up %s", symbol)

    async def _still_owner(self, symbol: str) -> bool:
        return await self.leases.confirm(symbol)

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
            "error", "forged_entry", f"refused {kind} entry {entry_id} of {stream}: MAC {seal.value}; no order sent",
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
        if isinstance(payload, Ticker):
            await self.on_tick(book, event, payload)
        elif isinstance(payload, Signal):
            if payload.side == "BUY":
                await self.on_entry_signal(book, event, payload)
            elif payload.side == "SELL":
                if self._before_entry(book, payload.candle_open_time_ms + self.settings.interval_ms):
                    await self.notifier.alert("info", "exit_ignored", f"SELL signal of candle {payload.candle_open_time_ms} "
                                              "is from before the position's entry", symbol)
                    await self._decision_note(book, payload, "exit ignored: signal from before the entry")
                    return
                await self.request_exit(
                    book, ExitReason.SIGNAL, payload.candle_open_time_ms, event.event_id, payload.price, explicit=True,
                    market_time_ms=payload.candle_open_time_ms + self.settings.interval_ms,
                )
        elif isinstance(payload, BotCommand):
            if payload.command == Command.CLOSE_POSITION:
                await self.on_close_command(book, event, payload)
        elif isinstance(payload, ExecutionReport):
            state = ledger.order_from_report(payload)
            if ids.is_bot_id(state.client_order_id):
                await self.apply_order_state(book, state)

    # -- ticks: protection ---------------------------------------------------------------------

    async def on_tick(self, book: SymbolBook, event: Envelope, tick: Ticker) -> None:
        """Watch the stop-loss and take-profit of the open position on every fresh price."""
        # Old ticks (a backlog after a restart or takeover) are still checked: a level crossed
        # while the executor was away, after the entry, is a stop that would have filled, so the
        # exit is taken and recorded in the candle where the level was crossed. A price from
        # before the entry never acts on the position.
        if event.ts_event_ms >= book.last_tick_market_ms:
            book.last_price = tick.price
            book.last_tick_market_ms = event.ts_event_ms
        book.market_time_ms = max(book.market_time_ms or 0, event.ts_event_ms)
        position = book.position
        if position is None:
            return
        if position.status in ("OPENING", "CLOSING"):
            if time.monotonic() - book.last_settle >= SETTLE_THROTTLE_S:
                await self.settle_symbol(book)
            return
        if position.status != "OPEN":
            return
        if book.pending_exit is not None:
            reason, candle, source = book.pending_exit
            await self.request_exit(book, ExitReason(reason), candle, source, tick.price)
            return
        if position.stop_loss is None or position.take_profit is None:
            return
        if self._before_entry(book, event.ts_event_ms):
            return  # a price from before the entry: the position did not exist yet
        reason = exit_reason(tick.price, position.stop_loss, position.take_profit)
        if reason is not None:
            candle = ledger.candle_open_ms(event.ts_event_ms, self.settings.interval_ms)
            await self.request_exit(book, reason, candle, event.event_id, tick.price, market_time_ms=event.ts_event_ms)

    # -- operator closes ---------------------------------------------------------------------------

    async def on_close_command(self, book: SymbolBook, event: Envelope, command: BotCommand) -> None:
        """Sell the position at market on the operator's request, in any bot state; always answered."""
        request = CloseRequest(command.command_id or event.event_id, command.origin or command.command, event.event_id)
        position = book.position
        if position is None:
            # Part of a close-all, a flat symbol is simply done; asked for alone, it is refused.
            outcome = Outcome.DONE if request.command == Command.CLOSE_ALL else Outcome.REFUSED
            await self.notifier.answer(request.command_id, request.command, outcome, "no position", book.symbol)
            return
        if position.status == "OPENING":
            # The entry is in flight: the position is sold as soon as the entry settles.
            request.accepted = True
            book.closes.append(request)
            await self.notifier.answer(
                request.command_id, request.command, Outcome.ACCEPTED,
                "the entry order is still being filled; the position is sold as soon as it is open", book.symbol,
            )
            return
        if position.status == "CLOSING":
            request.accepted = True
            book.closes.append(request)
            await self.notifier.answer(
                request.command_id, request.command, Outcome.ACCEPTED, "an exit order is already being executed", book.symbol
            )
            return
        book.closes.append(request)
        refusal = await self.request_exit(book, ExitReason.MANUAL, None, event.event_id, None, explicit=True)
        if refusal:
            await self._answer_closes(book, Outcome.REFUSED, refusal)

    async def _answer_closes(self, book: SymbolBook, outcome: Outcome, reason: str) -> None:
        """Answer every pending close of ``book``; a final outcome ends them."""
        pending = list(book.closes)
        if outcome is not Outcome.ACCEPTED:
            book.closes.clear()
        for request in pending:
            if outcome is Outcome.ACCEPTED:
                if request.accepted:
                    continue
                request.accepted = True
            await self.notifier.answer(request.command_id, request.command, outcome, reason, book.symbol)

    # -- entries ---------------------------------------------------------------------------------

    async def on_entry_signal(self, book: SymbolBook, event: Envelope, signal: Signal) -> None:
        """Open a position on a BUY signal when flat, running, and the data is fresh."""
        symbol = book.symbol
        client_id = ids.entry_client_order_id(symbol, signal.candle_open_time_ms, "BUY")
        async with self.sessions() as session:
            if await store.get_order(session, client_id) is not None:
                logger.info("%s BUY signal of candle %d already handled (%s)", symbol, signal.candle_open_time_ms, client_id)
                return
        refusal = await self._entry_refusal(book, event, signal)
        if refusal:
            await self._skip_entry(book, signal, refusal)
            return
        try:
            read = await self._read_before_sizing(book, signal)
        except ExchangeError as e:
            await self._exchange_trouble(book, e)
            await self._skip_entry(book, signal, f"exchange unavailable: {e.message}")
            return
        if isinstance(read, str):
            await self._skip_entry(book, signal, read)
            return
        info, free_quote = read
        price = await self._sizing_price(book, signal)
        sizing = size_entry(free_quote, price, self.control.parameters, info.filters)
        if sizing.quantity is None:
            await self._skip_entry(book, signal, f"{sizing.reason} (free {format_decimal(free_quote)} {info.quote_asset})")
            return
        reason = f"signal {signal.reason}" if signal.reason else "signal"
        try:
            async with self.sessions.begin() as session:
                position, order = await store.create_entry_intent(
                    session,
                    symbol=symbol,
                    client_order_id=client_id,
                    quantity=sizing.quantity,
                    signal_event_id=event.event_id,
                    reason=reason,
                    entry_candle_open_ms=signal.candle_open_time_ms,
                    now_ms=now_ms(),
                    market_time_ms=signal.candle_open_time_ms + self.settings.interval_ms,
                    parameters_version=signal.parameters_version,
                    entry_indicators=dumps(signal.indicators),
                )
        except store.DuplicateOrderError:
            logger.info("%s entry %s already written", symbol, client_id)
            return
        book.position = position
        await self.notifier.snapshot(symbol, position)
        await self._order_update(order)
        await self.execute(book, order)

    async def _entry_refusal(self, book: SymbolBook, event: Envelope, signal: Signal) -> str:
        if not self.control.entries_allowed:
            return self.control.entry_refusal()
        if book.position is not None:
            return f"a position is already {book.position.status}"
        fresh = await self.redis.hget(streams.MARKET_FRESHNESS, book.symbol)
        if fresh is None:
            return "no market data received yet"
        # The one wall-clock rule here bounds I/O: a feed silent this long is down, so the
        # market clock it drives says nothing about the present.
        silent_s = (now_ms() - int(float(fresh))) / 1000
        if silent_s > self.settings.entry_max_feed_silence_s:
            return (f"market data feed silent for {silent_s:.1f}s "
                    f"(ENTRY_MAX_FEED_SILENCE_S={self.settings.entry_max_feed_silence_s:g})")
        return await self._allowance_refusal(book, signal.candle_open_time_ms)

    async def _market_clock(self, symbol: str) -> int | None:
        """The market's present for ``symbol``: exchange time of the newest market message."""
        value = await self.redis.hget(streams.MARKET_CLOCK, symbol)
        return None if value is None else int(value)

    async def _allowance_refusal(self, book: SymbolBook, candle_open_ms: int) -> str:
        """Why a BUY of the candle opening at ``candle_open_ms`` can no longer be acted on ("" if it can)."""
        clock = await self._market_clock(book.symbol)
        if clock is None:
            return "no market data received yet"
        interval = self.settings.interval_ms
        age_ms = clock - (candle_open_ms + interval)
        if age_ms > self.settings.signal_max_age_ms:
            return (f"signal too old: its candle closed {age_ms / interval:.1f} candles before the market clock "
                    f"(SIGNAL_MAX_AGE_CANDLES={self.settings.signal_max_age_candles:g})")
        return ""

    async def _read_before_sizing(self, book: SymbolBook, signal: Signal) -> tuple[SymbolInfo, Decimal] | str:
        """The symbol's filters and the free quote balance. A refusal before execution (429/418,
        -1003, 5xx, network, -1021) is retried like an order, after Retry-After, while the
        signal is within its allowance; returns why the entry is skipped when it no longer is."""
        for attempt in range(1, READS_BEFORE_SIZING + 1):
            try:
                info = await self.symbol_info(book)
                return info, await self.exchange.free_balance(info.quote_asset)
            except (RateLimited, RetryLater, ClockSkew) as e:
                too_long = isinstance(e, RateLimited) and e.retry_after_s > self.settings.max_retry_after_wait_s
                if attempt == READS_BEFORE_SIZING or too_long:
                    raise
                await self._exchange_trouble(book, e)
                await asyncio.sleep(e.retry_after_s if isinstance(e, RateLimited) else self.settings.order_query_delay_s)
                refusal = await self._allowance_refusal(book, signal.candle_open_time_ms)
                if refusal:
                    return f"{refusal}, after waiting for the exchange ({e.message})"
        raise AssertionError("unreachable")

    async def _skip_entry(self, book: SymbolBook, signal: Signal, reason: str) -> None:
        message = f"BUY signal of candle {signal.candle_open_time_ms} skipped, no order sent: {reason}"
        # Already in a position is the normal case of a repeated entry signal, not a problem.
        level = "info" if reason.startswith("a position is already") else "warning"
        await self.notifier.alert(level, "entry_skipped", message, book.symbol)
        pending = reason.startswith("a position is already OPENING")
        await self._decision_note(book, signal, "skipped: entry pending" if pending else f"skipped: {reason}")

    async def _decision_note(self, book: SymbolBook, signal: Signal, note: str) -> None:
        """What became of a signal the executor did not act on, in the decision log."""
        await self.notifier.decision(signal, note)

    def _before_entry(self, book: SymbolBook, market_ms: int) -> bool:
        """Whether the event being handled (a price or exit signal at ``market_ms``) is from
        before the position's entry: stamped by the exchange no later than the entry fill, or
        published on the bus before the entry order was sent (a backlog the executor reads
        late; in a replay the exchange stamps fills in wall time, prices in market time)."""
        if book.entry_fill_ms is not None and market_ms <= book.entry_fill_ms:
            return True
        entry_id = self.consumer.current_entry_id
        return book.entry_sent_ms is not None and entry_id is not None and entry_time_ms(entry_id) <= book.entry_sent_ms

    async def _load_entry_times(self, book: SymbolBook) -> None:
        position = book.position
        if position is None or position.status not in ("OPEN", "CLOSING"):
            book.entry_fill_ms = book.entry_sent_ms = None
            return
        sent = await self.redis.hget(streams.ENTRY_SENT, position.entry_client_order_id)
        book.entry_fill_ms = position.entry_time_ms
        book.entry_sent_ms = None if sent is None else int(sent)

    async def _sizing_price(self, book: SymbolBook, signal: Signal) -> Decimal:
        clock = await self._market_clock(book.symbol)
        if book.last_price is not None and clock is not None and clock - book.last_tick_market_ms <= self.settings.max_data_age_ms:
            return book.last_price
        last = await self.redis.hget(streams.MARKET_LAST_PRICE, book.symbol)
        if last:
            try:
                return Decimal(str(last))
            except ArithmeticError:
                pass
        return signal.price

    async def symbol_info(self, book: SymbolBook, refresh: bool = False) -> SymbolInfo:
        """The symbol's filters and assets (cached by the exchange layer)."""
        if book.info is None or refresh:
            book.info = await self.exchange.symbol_info(book.symbol, refresh=refresh)
            await self.notifier.symbol_info(book.info)
        return book.info

    # -- exits ---------------------------------------------------------------------------------

    async def request_exit(
        self,
        book: SymbolBook,
        reason: ExitReason,
        candle_open_ms: int | None,
        source_event_id: str,
        price: Decimal | None,
        *,
        explicit: bool = False,
        market_time_ms: int | None = None,
    ) -> str:
        """Sell what the open position holds, with the bot's dust (SL/TP tick, SELL signal or manual close).

        Returns why no exit is under way ("" when an exit order was sent or will be retried).
        Only a new SELL signal waits for the bot state: stop-loss, take-profit, manual close
        and the rest of an exit already begun go through in every state.
        """
        symbol = book.symbol
        position = book.position
        if position is None or position.status != "OPEN":
            state = "no position" if position is None else f"the position is {position.status}"
            if explicit and reason is not ExitReason.MANUAL:
                await self.notifier.alert("info", "exit_ignored", f"{reason.value} exit ignored: {state}", symbol)
            return state
        decided = book.pending_exit
        if decided is not None:
            # An exit once decided stays decided: whatever triggers it again (its retry, a price,
            # a SELL, a manual close) sends it with the reason and candle that decided it, in
            # every bot state.
            reason, candle_open_ms, source_event_id = ExitReason(decided[0]), decided[1], decided[2]
            market_time_ms = position.exit_market_time_ms or market_time_ms
        elif reason is ExitReason.SIGNAL and explicit and not self.control.strategy_exits_allowed:
            await self._alert_throttled(
                book, "exit_blocked", "info",
                f"SELL signal not followed: {self.control.entry_refusal()} (stop-loss and take-profit are still watched)",
            )
            return "the bot is stopped"
        if not explicit and time.monotonic() < book.exit_retry_at:
            return ""
        try:
            info = await self.symbol_info(book)
        except ExchangeError as e:
            await self._exchange_trouble(book, e)
            book.pending_exit = (reason.value, candle_open_ms, source_event_id)
            delay = self._schedule_exit_retry(book)
            await self._answer_closes(book, Outcome.ACCEPTED, f"exchange unavailable ({e.message}); retried in {delay:.1f}s")
            return ""
        async with self.sessions() as session:
            exits = await store.orders_of_position(session, position.id, "exit")
            sold = (await store.totals_of(session, exits, info.base_asset, info.quote_asset)).quantity
        remaining = position.quantity + ledger.carried_dust(position.dust_in, (o.status for o in exits)) - sold
        if market_time_ms is None:
            market_time_ms = book.market_time_ms or await self._market_clock(symbol)
        mark = price or book.last_price
        sell = sellable_quantity(remaining, info.filters, mark)
        if sell.dust:
            book.pending_exit = book.exit_due = None
            await self._alert_throttled(
                book, "exit_dust", "warning",
                f"{reason.value} exit not sent: {format_decimal(remaining)} {info.base_asset} cannot be sold ({sell.reason})",
            )
            return f"order below the exchange minimum: {format_decimal(remaining)} {info.base_asset} cannot be sold ({sell.reason})"
        if exits and exits[-1].status == "REJECTED":
            client_id = exits[-1].client_order_id
        else:
            client_id = ids.exit_client_order_id(position.entry_client_order_id, len(exits) + 1)
        note = f"{reason.value} exit"
        if sell.remainder > ZERO:
            note += f"; {format_decimal(sell.remainder)} {info.base_asset} below one step stays as dust"
        try:
            async with self.sessions.begin() as session:
                position = await store.get_position(session, position.id)
                assert position is not None
                order = await store.create_exit_intent(
                    session,
                    position,
                    client_order_id=client_id,
                    quantity=sell.quantity,
                    exit_reason=reason.value,
                    exit_candle_open_ms=candle_open_ms,
                    signal_event_id=source_event_id,
                    reason=note,
                    now_ms=now_ms(),
                    market_time_ms=market_time_ms,
                )
        except store.DuplicateOrderError:
            logger.warning("%s exit %s exists already; settling it", symbol, client_id)
            await self.settle_symbol(book)
            return ""
        book.pending_exit = book.exit_due = None
        book.position = position
        await self.notifier.snapshot(symbol, position)
        await self._order_update(order)
        await self._answer_closes(
            book, Outcome.ACCEPTED, f"exit order {client_id} sent: MARKET SELL {format_decimal(sell.quantity)} {info.base_asset}"
        )
        await self.execute(book, order)
        return ""

    def _schedule_exit_retry(self, book: SymbolBook) -> float:
        """When the pending exit is sent again: bounded backoff (ORDER_QUERY_DELAY_S doubling up
        to EXIT_RETRY_S), never before the exchange's Retry-After ends. Returns the delay."""
        book.exit_refusals += 1
        base = max(self.settings.order_query_delay_s, 0.05)
        backoff = min(self.settings.exit_retry_s, base * 2 ** min(book.exit_refusals - 1, 16))
        delay = max(backoff, self.exchange.blocked_for_s)
        book.exit_due = book.exit_retry_at = time.monotonic() + delay
        return delay

    async def _retry_exit(self, book: SymbolBook) -> None:
        """Send the pending exit again, without waiting for a price."""
        if book.pending_exit is None or book.position is None or book.position.status != "OPEN":
            return
        reason, candle, source = book.pending_exit
        try:
            await self.request_exit(book, ExitReason(reason), candle, source, None)
        except NotOwned:
            logger.warning("%s lease lost before the exit was sent again; the next owner sends it", book.symbol)
        except Exception:  # noqa: BLE001 - a failed round must not drop the decided exit
            logger.exception("%s pending exit not sent; tried again", book.symbol)
            if book.pending_exit is not None and book.exit_due is None:
                self._schedule_exit_retry(book)

    async def _exit_pending(self, book: SymbolBook, decided: tuple[str, int | None, str], client_id: str, why: str) -> None:
        """An exit refused before it could execute stays decided and is sent again soon."""
        book.pending_exit = decided
        delay = self._schedule_exit_retry(book)
        level = "error" if book.exit_refusals >= 3 else "warning"
        await self.notifier.alert(
            level, "exit_pending",
            f"{decided[0]} exit {client_id} not placed ({why}); it stays decided and is sent again in {delay:.1f}s "
            f"with the same id (refusal {book.exit_refusals})",
            book.symbol,
        )

    # -- sending and settling ------------------------------------------------------------------

    async def execute(self, book: SymbolBook, order: Order) -> None:
        """Send the written intent ``order`` and settle its outcome (never two orders for one id).

        Before every send, after any wait: an entry must still be within its signal's allowance
        (market time) and the symbol's lease is renewed; otherwise nothing is sent (an order no
        request of which can have reached the exchange is REJECTED at once). A refusal before
        execution (429/418/-1003) waits for Retry-After and does not use up a send attempt.
        """
        symbol = book.symbol
        attempts = self.settings.order_send_attempts
        sends = refusals = 0
        maybe_sent = False  # whether a request of this order may have reached the exchange
        while True:
            wait = self.exchange.blocked_for_s
            if 0 < wait <= self.settings.max_retry_after_wait_s:
                await asyncio.sleep(wait)
            if order.purpose == "entry" and book.position is not None and book.position.entry_candle_open_ms is not None:
                refusal = await self._allowance_refusal(book, book.position.entry_candle_open_ms)
                if refusal:
                    await self._not_sent(book, order, f"not sent within its allowance: {refusal}", maybe_sent)
                    return
            if not await self._still_owner(symbol):
                logger.warning("%s lease lost before sending %s; the next owner settles it", symbol, order.client_order_id)
                await self._not_sent(book, order, "not sent: this replica no longer holds the symbol's lease", maybe_sent)
                raise NotOwned(symbol)
            if sends or refusals:
                await self._touch(order)
            if order.purpose == "entry" and not maybe_sent:
                # What the bus carried before the order left is from before the position.
                await self.redis.eval(_STAMP_SENT, 1, streams.ENTRY_SENT, order.client_order_id)
            sends += 1
            logger.info(
                "%s sending %s MARKET %s %s as %s (attempt %d)",
                symbol, order.purpose, order.side, format_decimal(order.requested_quantity), order.client_order_id, sends,
            )
            try:
                body = await self.exchange.place_market_order(
                    symbol, order.side, order.requested_quantity, order.client_order_id, wait=False
                )
            except RateLimited as e:
                sends -= 1  # refused before execution: no send attempt used
                refusals += 1
                if refusals < MAX_REFUSALS and e.retry_after_s <= self.settings.max_retry_after_wait_s:
                    await self.notifier.alert(
                        "warning", "rate_limited", f"order {order.client_order_id} waits {e.retry_after_s:g}s (Retry-After)", symbol
                    )
                    continue
                await self._not_sent(book, order, f"rate limited, retry after {e.retry_after_s:g}s: {e.message}", maybe_sent, e.code)
                return
            except ClockSkew as e:
                await self.notifier.alert(
                    "warning", "clock_skew", f"order {order.client_order_id}: clock offset measured again ({e.message})", symbol
                )
                if sends < attempts:
                    continue
                await self._order_refused(book, order, e.message, e.code)
                return
            except CredentialsRejected as e:
                await self._order_refused(book, order, e.message, e.code, definite=True)
                await self.control.enter_error(f"credentials refused by the exchange: {e.message}")
                return
            except Rejected as e:
                if e.code == -2010 and "duplicate" in e.message.lower():
                    outcome = await self._after_unknown(book, order, e)
                else:
                    await self._order_refused(book, order, e.message, e.code, definite=True)
                    if e.code == -1013:
                        try:
                            await self.symbol_info(book, refresh=True)
                        except ExchangeError:
                            pass
                    return
            except UnknownOutcome as e:
                maybe_sent = True
                outcome = await self._after_unknown(book, order, e)
            else:
                await self.apply_order_state(book, ledger.order_from_response(body), known_id=order.client_order_id)
                return
            if outcome is Settled.FOUND:
                return
            if outcome is Settled.NOT_FOUND:
                if sends < attempts:
                    await self.notifier.alert(
                        "warning", "order_resent", f"order {order.client_order_id} did not reach the exchange; sending it again with the same id", symbol
                    )
                    continue
                await self._order_refused(book, order, f"not placed after {sends} attempts", None)
                return
            await self.notifier.alert(
                "error", "order_unsettled",
                f"outcome of order {order.client_order_id} still unknown after {self.settings.order_query_attempts} queries; "
                "it is queried again before anything else is sent",
                symbol,
            )
            self._settle_later(book, SETTLE_THROTTLE_S)
            return

    async def _not_sent(self, book: SymbolBook, order: Order, message: str, maybe_sent: bool, code: int | None = None) -> None:
        """Stop sending ``order``. When no request of it can have reached the exchange it is
        REJECTED now (its symbol is free at once); otherwise it is settled by query once no
        request carrying it can still be accepted."""
        if not maybe_sent:
            await self._order_refused(book, order, message, code)
            return
        await self.notifier.alert("warning", "order_unsettled", f"order {order.client_order_id}: {message}; settled by query", book.symbol)
        self._settle_later(book, self.settings.intent_grace_s)

    def _settle_later(self, book: SymbolBook, delay_s: float) -> None:
        due = time.monotonic() + max(0.0, delay_s)
        book.settle_due = due if book.settle_due is None else min(book.settle_due, due)

    async def _touch(self, order: Order) -> None:
        """Stamp the order before sending it again: the grace of an intent counts from its last send."""
        async with self.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is not None and fresh.status in ("INTENT", "UNKNOWN"):
                await store.update_order(session, fresh, now_ms=now_ms())

    async def _after_unknown(self, book: SymbolBook, order: Order, error: ExchangeError) -> Settled:
        async with self.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is not None and fresh.status == "INTENT":
                await store.update_order(session, fresh, now_ms=now_ms(), status="UNKNOWN", reason=error.message[:500])
                order = fresh
        await self._order_update(order)
        await self.notifier.alert(
            "warning", "order_unknown", f"order {order.client_order_id} outcome unknown ({error.message}); querying it", book.symbol
        )
        return await self.settle_by_query(book, order, first_delay=True)

    async def settle_by_query(
        self, book: SymbolBook, order: Order, *, first_delay: bool = False, attempts: int | None = None
    ) -> Settled:
        """Ask the exchange about ``order`` by client order id (bounded retries) and apply the answer."""
        delay = self.settings.order_query_delay_s
        for attempt in range(attempts or self.settings.order_query_attempts):
            if attempt > 0 or first_delay:
                await asyncio.sleep(delay)
            try:
                body = await self.exchange.query_order(book.symbol, order.client_order_id)
            except OrderNotFound:
                return Settled.NOT_FOUND
            except RateLimited as e:
                if e.retry_after_s > self.settings.max_retry_after_wait_s:
                    return Settled.INCONCLUSIVE
                continue
            except (RetryLater, UnknownOutcome, ClockSkew):
                continue
            except ExchangeError as e:
                await self._exchange_trouble(book, e)
                return Settled.INCONCLUSIVE
            await self.apply_order_state(book, ledger.order_from_response(body), known_id=order.client_order_id)
            return Settled.FOUND
        return Settled.INCONCLUSIVE

    async def _order_refused(
        self, book: SymbolBook, order: Order, message: str, code: int | None, *, definite: bool = False
    ) -> None:
        """The order definitely does not exist: REJECTED, and the position goes back to where it was.

        An exit refused before it could execute (rate limit, clock, 5xx or timeout settled as
        "not found", lease) stays decided and is sent again soon under the same id. A ``definite``
        refusal (the exchange's answer will not change by itself, e.g. -2010, -1013) is an error
        alert and is not retried on a timer: the next trigger (a price beyond a level after
        EXIT_RETRY_S, a SELL signal, a manual close) tries the same id again.
        """
        decided: tuple[str, int | None, str] | None = None
        refused_exit = "the"
        async with self.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            if fresh is None or fresh.status in ledger.FINAL_STATUSES:
                return
            await store.update_order(session, fresh, now_ms=now_ms(), status="REJECTED", reason=message[:500])
            if fresh.purpose == "entry":
                await self.redis.hdel(streams.ENTRY_SENT, fresh.client_order_id)
            position = await store.get_position(session, fresh.position_id) if fresh.position_id else None
            if position is not None:
                if fresh.purpose == "entry" and position.status == "OPENING":
                    await store.mark_position_failed(session, position)
                elif fresh.purpose == "exit" and position.status == "CLOSING":
                    refused_exit = position.exit_reason or refused_exit
                    if not definite and position.exit_reason:
                        decided = (position.exit_reason, position.exit_candle_open_ms, fresh.signal_event_id or "")
                    await store.reopen_position(session, position, keep_exit=decided is not None)
                    book.exit_retry_at = time.monotonic() + self.settings.exit_retry_s
                    if decided is None:
                        book.pending_exit = book.exit_due = None
            book.position = await store.active_position(session, book.symbol)
        await self._order_update(fresh)
        if decided is not None:
            await self._exit_pending(book, decided, fresh.client_order_id, message)
            await self.notifier.snapshot(book.symbol, book.position)
            await self._answer_closes(book, Outcome.ACCEPTED, f"exit order {fresh.client_order_id} not placed ({message}); sent again soon")
            return
        code_name = {-2010: "insufficient_balance", -1013: "filter_failure"}.get(code or 0, "order_rejected")
        if code == -2010 and "insufficient" not in message.lower():
            code_name = "order_rejected"
        await self.notifier.alert(
            "error", code_name, f"{fresh.purpose} order {fresh.client_order_id} not placed: {message}", book.symbol
        )
        await self.notifier.snapshot(book.symbol, book.position)
        if fresh.purpose == "exit" and definite:
            # The position stays OPEN and unsold: the operator must know, and know what to do.
            await self.notifier.alert(
                "error", "exit_refused",
                f"{refused_exit} exit {fresh.client_order_id} refused by the exchange: {message}; the position stays OPEN and is not sold. "
                "It is tried again with the same id on the next trigger (a price beyond a level after EXIT_RETRY_S, "
                "a SELL signal, or a manual close); check the account and close it manually if needed",
                book.symbol,
            )
        if book.closes:
            what = "exit" if fresh.purpose == "exit" else "entry (nothing was bought, no position)"
            outcome = Outcome.REFUSED if fresh.purpose == "exit" else Outcome.DONE
            await self._answer_closes(book, outcome, f"{what} order {fresh.client_order_id} not placed: {message}")

    async def apply_order_state(self, book: SymbolBook, state: ledger.OrderState, known_id: str | None = None) -> None:
        """Record what the exchange says about one of our orders, then settle its position."""
        client_id = known_id or state.client_order_id
        async with self.sessions.begin() as session:
            order = await store.get_order(session, client_id)
            if order is None:
                return
            changed = await self._record(session, book, order, state)
        if changed:
            await self._order_update(order)
        await self._complete_fills(book, order)
        await self.finalize(book, order.client_order_id)

    async def _record(self, session, book: SymbolBook, order: Order, state: ledger.OrderState) -> bool:  # type: ignore[no-untyped-def]
        before = (order.status, order.executed_quantity, order.exchange_order_id)
        for fill in state.fills:
            await store.record_fill(session, order, fill)
        status = ledger.stored_status(state.status, order.status)
        if order.status == "REJECTED" and status != "REJECTED" and state.exchange_order_id is None:
            status = order.status
        info = await self.symbol_info(book) if book.info is None else book.info
        fill_totals = ledger.totals(await store.fills_of(session, [order.client_order_id]), info.base_asset, info.quote_asset)
        executed = max(order.executed_quantity, state.executed_quantity, fill_totals.quantity)
        quote = max(order.cumulative_quote, state.cumulative_quote, fill_totals.quote)
        await store.update_order(
            session,
            order,
            now_ms=now_ms(),
            status=status,
            exchange_order_id=state.exchange_order_id,
            executed_quantity=executed,
            cumulative_quote=quote,
            commission_base=fill_totals.commission_base,
            commission_quote=fill_totals.commission_quote,
        )
        return before != (order.status, order.executed_quantity, order.exchange_order_id)

    async def _complete_fills(self, book: SymbolBook, order: Order) -> None:
        """A final order whose fills are not all recorded: fetch them with myTrades."""
        if order.status not in ledger.FINAL_STATUSES or order.exchange_order_id is None:
            return
        async with self.sessions() as session:
            recorded = sum((f.quantity for f in await store.fills_of(session, [order.client_order_id])), ZERO)
        if recorded >= order.executed_quantity:
            return
        try:
            rows = await self.exchange.order_trades(book.symbol, order.exchange_order_id)
        except ExchangeError as e:
            logger.warning("%s trades of %s not fetched: %s", book.symbol, order.client_order_id, e.message)
            return
        async with self.sessions.begin() as session:
            fresh = await store.get_order(session, order.client_order_id)
            assert fresh is not None
            for row in rows:
                if int(row.get("orderId", -1)) == order.exchange_order_id:
                    await store.record_fill(session, fresh, ledger.fill_from_trade(row))
            await self._record(
                session, book, fresh,
                ledger.OrderState(fresh.client_order_id, fresh.status, fresh.exchange_order_id, ZERO, ZERO),
            )

    async def finalize(self, book: SymbolBook, client_order_id: str) -> None:
        """Move the order's position on when the order is final and all its fills are known."""
        info = await self.symbol_info(book)
        events: list[object] = []
        closed_entry: str | None = None
        retry_exit: tuple[str, int | None, str] | None = None
        async with self.sessions.begin() as session:
            order = await store.get_order(session, client_order_id)
            if order is None or order.status not in ledger.FINAL_STATUSES or order.position_id is None:
                return
            position = await store.get_position(session, order.position_id)
            if position is None:
                return
            fills = await store.fills_of(session, [order.client_order_id])
            order_totals = ledger.totals(fills, info.base_asset, info.quote_asset)
            if order_totals.quantity < order.executed_quantity:
                await self._alert_throttled(
                    book, "fills_incomplete", "warning",
                    f"order {order.client_order_id} executed {format_decimal(order.executed_quantity)} but only "
                    f"{format_decimal(order_totals.quantity)} of fills are known yet",
                )
                return
            if order.purpose == "entry":
                if position.status != "OPENING" or position.entry_client_order_id != order.client_order_id:
                    return
                if order_totals.quantity <= ZERO:
                    await store.mark_position_failed(session, position)
                    events.append(("alert", "warning", "entry_unfilled", f"entry {order.client_order_id} ended {order.status} without a fill"))
                else:
                    entry_price = order_totals.average_price
                    assert entry_price is not None
                    stop_loss, take_profit = protection_levels(entry_price, self.control.parameters, info.filters.tick_size)
                    await store.mark_position_open(
                        session,
                        position,
                        entry_price=entry_price,
                        quantity=order_totals.credited_base,
                        quote_spent=order_totals.spent_quote,
                        stop_loss=stop_loss,
                        take_profit=take_profit,
                        entry_time_ms=order_totals.last_time_ms or order.updated_at_ms,
                    )
                    events.append(
                        PositionOpened(
                            symbol=position.symbol,
                            entry_price=entry_price,
                            quantity=position.quantity,
                            quote_spent=position.quote_spent,
                            stop_loss=stop_loss,
                            take_profit=take_profit,
                            entry_time_ms=position.entry_time_ms or 0,
                            client_order_id=order.client_order_id,
                            position_id=position.id,
                            entry_market_time_ms=position.entry_market_time_ms,
                        )
                    )
            else:
                if position.status != "CLOSING":
                    return
                exits = await store.orders_of_position(session, position.id, "exit")
                if not exits or exits[-1].client_order_id != order.client_order_id:
                    return
                if any(o.status not in ledger.FINAL_STATUSES for o in exits):
                    return
                exit_totals = await store.totals_of(session, exits, info.base_asset, info.quote_asset)
                carried = ledger.carried_dust(position.dust_in, (o.status for o in exits))
                remaining = position.quantity + carried - exit_totals.quantity
                leftover = sellable_quantity(remaining, info.filters, book.last_price or exit_totals.average_price)
                reason = position.exit_reason or ""
                exit_candle = position.exit_candle_open_ms
                if exit_totals.quantity <= ZERO or not leftover.dust:
                    # Nothing or only part sold (the order expired): the exit stays decided and
                    # the rest is sold with the next exit id, soon, ticks or not.
                    await store.reopen_position(session, position, keep_exit=True)
                    retry_exit = (reason or ExitReason.MANUAL.value, exit_candle, order.signal_event_id or order.client_order_id)
                    if exit_totals.quantity > ZERO:
                        events.append(("alert", "warning", "exit_partial",
                                       f"exit {order.client_order_id} sold {format_decimal(exit_totals.quantity)} of "
                                       f"{format_decimal(position.quantity)}; the rest is sold next"))
                    else:
                        events.append(("alert", "error", "exit_unfilled", f"exit {order.client_order_id} ended {order.status} without a fill"))
                else:
                    exit_price = exit_totals.average_price
                    assert exit_price is not None
                    received = exit_totals.received_quote
                    return_pct = realised_return_pct(position.quote_spent, received)
                    exit_time = exit_totals.last_time_ms or order.updated_at_ms
                    await store.mark_position_closed(
                        session, position, exit_price=exit_price, quote_received=received,
                        return_pct=return_pct, exit_time_ms=exit_time, dust_out=max(remaining, ZERO),
                    )
                    closed_entry = position.entry_client_order_id
                    events.append(
                        PositionClosed(
                            symbol=position.symbol,
                            entry_price=position.entry_price or ZERO,
                            exit_price=exit_price,
                            quantity=exit_totals.quantity,
                            quote_spent=position.quote_spent,
                            quote_received=received,
                            return_pct=return_pct,
                            exit_reason=reason,
                            entry_time_ms=position.entry_time_ms or 0,
                            exit_time_ms=exit_time,
                            client_order_id=order.client_order_id,
                            position_id=position.id,
                            entry_market_time_ms=position.entry_market_time_ms,
                            exit_market_time_ms=position.exit_market_time_ms,
                            dust_out=position.dust_out,
                        )
                    )
                    if remaining > ZERO:
                        events.append(("alert", "info", "dust",
                                       f"{format_decimal(remaining)} {info.base_asset} below one step left after closing "
                                       "is the bot's dust; the next exit sells it"))
            book.position = await store.active_position(session, book.symbol)
        if closed_entry is not None:
            await self.redis.hdel(streams.ENTRY_SENT, closed_entry)
            book.exit_refusals = 0
        if retry_exit is not None:
            book.pending_exit = retry_exit
            self._schedule_exit_retry(book)
        await self._load_entry_times(book)
        for item in events:
            if isinstance(item, tuple):
                _, level, code, message = item
                await self.notifier.alert(level, code, message, book.symbol)
            else:
                await self.notifier.event(item, event_id=f"{item.TYPE}:{client_order_id}")  # type: ignore[attr-defined]
        await self.notifier.snapshot(book.symbol, book.position)
        if book.closes:
            await self._after_final_order(book, events)

    async def _after_final_order(self, book: SymbolBook, events: list[object]) -> None:
        """Answer the operator's closes waiting on the order just finalized."""
        for item in events:
            if isinstance(item, PositionClosed):
                await self._answer_closes(
                    book, Outcome.DONE,
                    f"closed: sold {format_decimal(item.quantity)} at {format_decimal(item.exit_price)}, "
                    f"return {format_decimal(item.return_pct)} %",
                )
                return
            if isinstance(item, tuple) and item[2] == "exit_unfilled":
                # The exit stays decided and is sent again: the close is still under way.
                await self._answer_closes(book, Outcome.ACCEPTED, item[3] + "; sent again soon")
                return
            if isinstance(item, tuple) and item[2] == "entry_unfilled":
                await self._answer_closes(book, Outcome.DONE, item[3] + ": no position")
                return
            if isinstance(item, PositionOpened) and book.position is not None and book.position.status == "OPEN":
                # A close asked for while the entry was being filled: sell now.
                refusal = await self.request_exit(
                    book, ExitReason.MANUAL, None, book.closes[0].source_event_id, None, explicit=True
                )
                if refusal:
                    await self._answer_closes(book, Outcome.REFUSED, refusal)
                return

    async def settle_symbol(self, book: SymbolBook) -> None:
        """Settle every order of the symbol whose outcome is not final (restart, unknown outcome)."""
        book.last_settle = time.monotonic()
        async with self.sessions() as session:
            pending = await store.unsettled_orders(session, book.symbol)
        for order in pending:
            # One query each: this runs between events and must not hold the other symbols up.
            outcome = await self.settle_by_query(book, order, attempts=1)
            if outcome is Settled.INCONCLUSIVE:
                self._settle_later(book, SETTLE_THROTTLE_S)  # asked again soon, ticks or not
            if outcome is Settled.NOT_FOUND and order.status in ("INTENT", "UNKNOWN"):
                # A request older than its recvWindow can no longer be accepted: after the grace
                # (counted from the last send) "not found" is final, and is settled right then.
                age_s = (now_ms() - order.updated_at_ms) / 1000
                if age_s >= self.settings.intent_grace_s:
                    await self._order_refused(book, order, "the exchange has no order with this id", -2013)
                else:
                    self._settle_later(book, self.settings.intent_grace_s - age_s)
        # A position whose final order was recorded but not yet applied (stopped in between).
        async with self.sessions() as session:
            position = await store.active_position(session, book.symbol)
            orders = await store.orders_of_position(session, position.id) if position is not None else []
        if position is not None and position.status in ("OPENING", "CLOSING") and orders:
            last = orders[-1]
            if last.status in ledger.FINAL_STATUSES:
                await self._complete_fills(book, last)
                await self.finalize(book, last.client_order_id)
        await self.reload_position(book)

    async def reload_position(self, book: SymbolBook) -> None:
        """Read the symbol's active position from the ledger and publish its snapshot."""
        async with self.sessions() as session:
            book.position = position = await store.active_position(session, book.symbol)
            if position is not None and position.status == "OPEN" and position.exit_reason and book.pending_exit is None:
                # An exit decided before a restart or takeover and not yet sold: still decided.
                exits = await store.orders_of_position(session, position.id, "exit")
                source = exits[-1].signal_event_id if exits and exits[-1].signal_event_id else position.entry_client_order_id
                book.pending_exit = (position.exit_reason, position.exit_candle_open_ms, source)
                book.exit_due = time.monotonic()
        await self._load_entry_times(book)
        await self.notifier.snapshot(book.symbol, book.position)

    # -- reporting -----------------------------------------------------------------------------

    async def _market_clock(self, symbol: str) -> int | None:
        """The market clock of ``symbol`` (exchange time of its newest market message), if known."""
        try:
            value = await self.redis.hget(streams.MARKET_CLOCK, symbol)
            return int(float(value)) if value else None
        except Exception:  # noqa: BLE001 - a stamp, never a reason not to exit
            return None

    async def _order_update(self, order: Order) -> None:
        average = order.cumulative_quote / order.executed_quantity if order.executed_quantity > ZERO else None
        await self.notifier.event(
            OrderUpdate(
                symbol=order.symbol,
                client_order_id=order.client_order_id,
                side=order.side,
                status=order.status,
                quantity=order.requested_quantity,
                executed_quantity=order.executed_quantity,
                quote_quantity=order.cumulative_quote,
                average_price=average,
                reason=order.reason,
                signal_event_id=order.signal_event_id,
            )
        )

    async def _exchange_trouble(self, book: SymbolBook, error: ExchangeError) -> None:
        if isinstance(error, CredentialsRejected):
            await self.control.enter_error(f"credentials refused by the exchange: {error.message}")
        code = {
            RateLimited: "rate_limited",
            ClockSkew: "clock_skew",
            RetryLater: "exchange_unavailable",
            UnknownOutcome: "exchange_unavailable",
        }.get(type(error), "exchange_error")
        await self._alert_throttled(book, code, "warning", error.message, repeat_s=10.0)

    async def _alert_throttled(
        self, book: SymbolBook, code: str, level: str, message: str, repeat_s: float = ALERT_REPEAT_S
    ) -> None:
        last = book.alerted.get(code)
        if last is not None and time.monotonic() - last < repeat_s:
            logger.debug("%s %s: %s", book.symbol, code, message)
            return
        book.alerted[code] = time.monotonic()
        await self.notifier.alert(level, code, message, book.symbol)

