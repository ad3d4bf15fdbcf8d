"""Entries: a BUY signal opens a position when flat, running, and the data is fresh.

Sized from the free quote balance and the symbol's filters (``shared.trading.sizing``); the
intent is written before the order is sent (``Sender``). A signal not acted on is told with an
``entry_skipped`` alert and a decision-log note, and no order is sent.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from services.executor import store
from services.executor.book import SymbolBook
from services.executor.context import Shell
from services.executor.core.entries import (
    READS_BEFORE_SIZING,
    allowance_refusal,
    feed_refusal,
    read_retry_delay,
    recent_price,
    skipped,
    state_refusal,
)
from services.executor.errors import ClockSkew, ExchangeError, RateLimited, RetryLater
from services.executor.exchange import SymbolInfo
from services.executor.klines import STOP_ATR_KEY, candle_atr
from services.executor.sender import LIMIT_MAKER, CandleRead, Sender
from services.executor.store.writes import MARKET
from services.executor.watch import tick_before
from shared import streams
from shared.codec import dumps
from shared.events import Envelope, Signal
from shared.trading import ids
from shared.trading.ledger import candle_open_ms
from shared.trading.limit_entry import limit_price
from shared.trading.sizing import format_decimal, size_entry
from shared.trading.stops import atr_window, stop_rules
from shared.trading.vocabulary import EntryOrder, Side, StopMode

logger = logging.getLogger(__name__)


class Entries:
    """Turns BUY signals into entry orders."""

    def __init__(self, shell: Shell, sender: Sender) -> None:
        self.shell = shell
        self.sender = sender

    async def on_entry_signal(self, book: SymbolBook, event: Envelope, signal: Signal) -> None:
        """Open a position on a BUY signal when flat, running, and the data is fresh."""
        shell = self.shell
        client_id = ids.entry_client_order_id(book.symbol, signal.candle_open_time_ms, Side.BUY)
        async with shell.sessions() as session:
            read = await store.read_entry(session, client_id, book.symbol)
            if read.taken:
                logger.info(
                    "%s BUY signal of candle %d already handled (%s)",
                    book.symbol,
                    signal.candle_open_time_ms,
                    client_id,
                )
                return
        refusal = await self._refusal(book, signal)
        if refusal:
            await shell.perform(book, skipped(signal, refusal))
            return
        atr = await self._stop_atr(book, signal)
        if isinstance(atr, str):
            await shell.perform(book, skipped(signal, atr))
            return
        try:
            sizable = await self._read_before_sizing(book, signal)
        except ExchangeError as e:
            await shell.exchange_trouble(book, e)
            await shell.perform(book, skipped(signal, f"exchange unavailable: {e.message}"))
            return
        if isinstance(sizable, str):
            await shell.perform(book, skipped(signal, sizable))
            return
        info, free_quote = sizable
        params = shell.control.risk(book.symbol)
        limit: Decimal | None = None
        bid: Decimal | None = None
        if params.ENTRY_ORDER is EntryOrder.LIMIT_MAKER:
            try:
                bid = await shell.exchange.best_bid(book.symbol)
            except ExchangeError as e:
                await shell.exchange_trouble(book, e)
                await shell.perform(book, skipped(signal, f"best bid not read: {e.message}"))
                return
            limit = limit_price(bid, params.ENTRY_LIMIT_OFFSET_PERCENTAGE, info.filters.tick_size)
        sizing = size_entry(free_quote, limit or await self._sizing_price(book, signal), params, info.filters)
        if sizing.quantity is None:
            await shell.perform(
                book, skipped(signal, f"{sizing.reason} (free {format_decimal(free_quote)} {info.quote_asset})")
            )
            return
        priced = (limit, bid) if limit is not None and bid is not None else None
        await self._enter(book, event, signal, client_id, sizing.quantity, priced, atr, read)

    async def _stop_atr(self, book: SymbolBook, signal: Signal) -> Decimal | str | None:
        """With ``STOP_MODE=atr``, the ATR of the signal's candle the first stop is set from (kept
        with the position, so the fill sets the stop from it whenever it is settled); why the
        entry is skipped when the kline stream cannot give it; None in the percent mode."""
        shell = self.shell
        rules = stop_rules(shell.control.risk(book.symbol))
        if rules.mode is not StopMode.ATR:
            return None
        interval = shell.settings.interval_ms
        clock = await shell.market_clock(book.symbol)
        newest = None if clock is None else candle_open_ms(clock, interval)
        atr = await candle_atr(shell.redis, book.symbol, signal.candle_open_time_ms, rules.atr_period, interval, newest)
        if atr is None:
            return (
                f"no ATR({rules.atr_period}) for its stop: the {atr_window(rules.atr_period)} closed candles up to "
                "the signal's are not all in the kline stream (STOP_MODE=atr)"
            )
        return atr

    async def _enter(
        self,
        book: SymbolBook,
        event: Envelope,
        signal: Signal,
        client_id: str,
        quantity: Decimal,
        priced: tuple[Decimal, Decimal] | None = None,
        atr: Decimal | None = None,
        read: store.EntryRead | None = None,
    ) -> None:
        """Write the entry intent and send it: MARKET, or a LIMIT_MAKER at ``priced`` (its limit
        and the best bid it was derived from, both kept on the order). ``read``: the ledger's read
        made for the entry by the duplicate check (None: made in the intent's transaction)."""
        shell = self.shell
        limit, bid = priced if priced is not None else (None, None)
        indicators = signal.indicators if atr is None else {**signal.indicators, STOP_ATR_KEY: float(atr)}
        candle = CandleRead(shell, book.symbol)  # the exchange's time for the send, read meanwhile
        try:
            async with shell.sessions.begin() as session:
                position, order = await store.create_entry_intent(
                    session,
                    symbol=book.symbol,
                    client_order_id=client_id,
                    quantity=quantity,
                    signal_event_id=event.event_id,
                    reason=f"signal {signal.reason}" if signal.reason else "signal",
                    entry_candle_open_ms=signal.candle_open_time_ms,
                    now_ms=shell.clock.now_ms(),
                    market_time_ms=signal.candle_open_time_ms + shell.settings.interval_ms,
                    parameters_version=signal.parameters_version,
                    strategy=signal.strategy or None,
                    entry_indicators=dumps(indicators),
                    order_type=MARKET if limit is None else LIMIT_MAKER,
                    limit_price=limit,
                    best_bid=bid,
                    read=read,
                )
        except BaseException as e:
            candle.discard()
            if not isinstance(e, store.DuplicateOrderError):
                raise
            logger.info("%s entry %s already written", book.symbol, client_id)
            return
        book.position = position
        await shell.intent_written(book.symbol, position, order)
        work = await self.sender.send_first(book, order, signal, limit, candle)
        if work is not None:
            shell.later.add(book, work)  # applied once the burst's other entries are sent too

    async def _refusal(self, book: SymbolBook, signal: Signal) -> str:
        shell = self.shell
        bot = "" if shell.control.entries_allowed else shell.control.entry_refusal()
        refusal = state_refusal(bot, book.position.status if book.position is not None else None)
        if refusal:
            return refusal
        # Decided at the signal candle's close (market time), the same instant at any replay speed.
        refusal = await shell.control.breaker.entry_refusal(signal.candle_open_time_ms + shell.settings.interval_ms)
        if refusal:
            return refusal
        fresh = await shell.redis.hget(streams.MARKET_FRESHNESS, book.symbol)
        refusal = feed_refusal(
            None if fresh is None else int(float(fresh)), shell.clock.now_ms(), shell.settings.entry_max_feed_silence_s
        )
        if refusal:
            return refusal
        return allowance_refusal(await shell.market_clock(book.symbol), signal.candle_open_time_ms, shell.allowance)

    async def _read_before_sizing(self, book: SymbolBook, signal: Signal) -> tuple[SymbolInfo, Decimal] | str:
        """The symbol's filters and the free quote balance. A refusal before execution (429/418,
        -1003, 5xx, network, -1021) is retried like an order, after Retry-After, while the
        signal is within its allowance; returns why the entry is skipped when it no longer is."""
        shell = self.shell
        for attempt in range(1, READS_BEFORE_SIZING + 1):
            try:
                info = await shell.symbol_info(book)
                return info, await shell.exchange.free_balance(info.quote_asset)
            except (RateLimited, RetryLater, ClockSkew) as e:
                delay = read_retry_delay(
                    e, attempt, shell.settings.max_retry_after_wait_s, shell.settings.order_query_delay_s
                )
                if delay is None:
                    raise
                await shell.exchange_trouble(book, e)
                await shell.clock.sleep(delay)
                refusal = allowance_refusal(
                    await shell.market_clock(book.symbol), signal.candle_open_time_ms, shell.allowance
                )
                if refusal:
                    return f"{refusal}, after waiting for the exchange ({e.message})"
        raise AssertionError("unreachable")

    async def _sizing_price(self, book: SymbolBook, signal: Signal) -> Decimal:
        shell = self.shell
        clock = await shell.market_clock(book.symbol)
        price = recent_price(
            book.market.last_price, book.market.last_tick_market_ms, clock, shell.settings.max_data_age_ms
        )
        if price is not None:
            return price
        tick = await tick_before(shell.redis, book.symbol, shell.bus_entry_ms())  # a flat symbol's ticks are unread
        if tick is not None:
            price = recent_price(tick[0], tick[1], clock, shell.settings.max_data_age_ms)
            if price is not None:
                return price
        last = await shell.redis.hget(streams.MARKET_LAST_PRICE, book.symbol)
        if last:
            try:
                return Decimal(str(last))
            except ArithmeticError:
                pass
        return signal.price
