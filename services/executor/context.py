"""The shell's shared handles (Redis, ledger sessions, exchange, event sink, bot control, lease,
clock) and the one place where the decision core's effects are performed.

Flows (settling, sending, exits, entries) decide with ``services.executor.core`` and hand the
effects to ``Shell.perform``; effects that start another flow (an exit, a refusal, an answer to
apply, a settling round) go to the ``FlowHandlers`` wired in by the executor, so no flow module
imports another one that calls it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol, assert_never

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.executor import metrics
from services.executor.book import SymbolBook
from services.executor.config import ExecutorSettings
from services.executor.control import BotControl
from services.executor.core import effects as fx
from services.executor.core.entries import Allowance
from services.executor.core.exits import ExitRequest
from services.executor.core.refusals import Refusal
from services.executor.core.sending import SendPolicy
from services.executor.core.state import ExitPolicy, answer_closes
from services.executor.errors import (
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    RateLimited,
    RetryLater,
    UnknownOutcome,
)
from services.executor.exchange import SymbolInfo
from services.executor.later import Later
from services.executor.ports import EventSink, ExchangePort
from shared import streams
from shared.bus import NotMine
from shared.clock import Clock
from shared.events import OrderUpdate, Outcome
from shared.store.models import Order, Position
from shared.trading.vocabulary import PositionStatus

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
TROUBLE_REPEAT_S = 10.0
TROUBLE_CODES: dict[type[ExchangeError], str] = {
    RateLimited: "rate_limited",
    ClockSkew: "clock_skew",
    RetryLater: "exchange_unavailable",
    UnknownOutcome: "exchange_unavailable",
}


class NotOwned(NotMine):
    """This replica no longer holds the symbol's lease; the entry is left for the next owner."""


class LeaseGuard(Protocol):
    async def confirm(self, symbol: str) -> bool:
        """Renew the symbol's lease now: True when this replica holds it for a whole TTL."""
        ...


class FlowHandlers(Protocol):
    """The flows effects can start."""

    async def request_exit(self, book: SymbolBook, request: ExitRequest) -> str: ...

    async def refuse_order(self, book: SymbolBook, order: Order, refusal: Refusal) -> None: ...

    async def apply_answer(self, book: SymbolBook, order: Order, body: Mapping[str, Any]) -> None: ...

    async def mark_unknown(self, book: SymbolBook, order: Order, reason: str) -> None: ...

    async def settle_symbol(self, book: SymbolBook) -> None: ...

    async def protect(self, book: SymbolBook) -> None: ...

    async def reload_position(self, book: SymbolBook) -> None: ...


class Shell:
    """Everything a flow needs to read the world and act on it."""

    flows: FlowHandlers

    def __init__(
        self,
        settings: ExecutorSettings,
        redis: Redis,
        sessions: async_sessionmaker,
        exchange: ExchangePort,
        sink: EventSink,
        control: BotControl,
        lease: LeaseGuard,
        clock: Clock,
        bus_entry_ms: Callable[[], int | None],
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.sessions = sessions
        self.exchange = exchange
        self.sink = sink
        self.control = control
        self.lease = lease
        self.clock = clock
        self.later = Later(clock)  # entries' answers applied after their burst is sent
        self.bus_entry_ms = bus_entry_ms  # when the bus entry being handled was appended (Redis ms; metrics)
        self.exit_policy = ExitPolicy(settings.order_query_delay_s, settings.exit_retry_s)
        self.send_policy = SendPolicy(
            settings.order_send_attempts,
            settings.order_query_attempts,
            settings.max_retry_after_wait_s,
            settings.intent_grace_s,
        )
        self.allowance = Allowance(settings.interval_ms, settings.signal_max_age_ms, settings.signal_max_age_candles)

    # -- reads --------------------------------------------------------------------------------

    async def symbol_info(self, book: SymbolBook, refresh: bool = False) -> SymbolInfo:
        """The symbol's filters and assets (cached by the exchange layer), published when read."""
        if book.info is None or refresh:
            book.info = await self.exchange.symbol_info(book.symbol, refresh=refresh)
            await self.sink.symbol_info(book.info)
        return book.info

    async def market_clock(self, symbol: str) -> int | None:
        """The market clock of ``symbol`` (exchange time of its newest market message), if known."""
        try:
            value = await self.redis.hget(streams.MARKET_CLOCK, symbol)
            return int(float(value)) if value else None
        except Exception:  # noqa: BLE001 - a stamp, never a reason not to exit
            return None

    # -- reporting ------------------------------------------------------------------------------

    async def alert(self, book: SymbolBook, alert: fx.Alert) -> None:
        """Send ``alert`` for the symbol; a throttled one at most once per ``repeat_s`` per code."""
        if alert.repeat_s is not None:
            last = book.alerted.get(alert.code)
            now = self.clock.monotonic()
            if last is not None and now - last < alert.repeat_s:
                logger.debug("%s %s: %s", book.symbol, alert.code, alert.message)
                return
            book.alerted[alert.code] = now
        await self.sink.alert(alert.level, alert.code, alert.message, book.symbol)

    async def order_update(self, order: Order) -> None:
        """Publish the order as the ledger holds it."""
        await self.sink.event(self._order_event(order))

    async def intent_written(self, symbol: str, position: Position, order: Order) -> None:
        """Publish a new entry intent: its OPENING snapshot and its order, in one round trip."""
        await self.sink.snapshot(symbol, position, also=self._order_event(order))

    def _order_event(self, order: Order) -> OrderUpdate:
        average = order.cumulative_quote / order.executed_quantity if order.executed_quantity > ZERO else None
        metrics.ORDERS.labels(order.purpose, order.status).inc()
        return OrderUpdate(
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

    async def exchange_trouble(self, book: SymbolBook, error: ExchangeError) -> None:
        """Report an exchange error (credentials refused also put the bot in error)."""
        if isinstance(error, CredentialsRejected):
            await self.control.enter_error(f"credentials refused by the exchange: {error.message}")
        code = TROUBLE_CODES.get(type(error), "exchange_error")
        await self.alert(book, fx.Alert("warning", code, error.message, TROUBLE_REPEAT_S))

    # -- effects --------------------------------------------------------------------------------

    async def perform(self, book: SymbolBook, effects: Iterable[fx.Effect], order: Order | None = None) -> None:
        """Perform ``effects`` in order; ``order`` is the order they are about (sending, refusing)."""
        for effect in effects:
            await self._perform(book, effect, order)

    async def _perform(self, book: SymbolBook, effect: fx.Effect, order: Order | None) -> None:
        match effect:
            case fx.Alert():
                await self.alert(book, effect)
            case fx.Publish(payload=payload, event_id=event_id):
                await self.sink.event(payload, event_id=event_id)
            case fx.Answer(command_id=command_id, command=command, outcome=outcome, reason=reason):
                await self.sink.answer(command_id, command, outcome, reason, book.symbol)
            case fx.AnswerCloses(outcome=outcome, reason=reason):
                await self.answer_closes(book, outcome, reason)
            case fx.Snapshot():
                await self.sink.snapshot(book.symbol, book.position, book.protection)
            case fx.Note(signal=signal, note=note):
                await self.sink.decision(signal, note)
            case fx.RequestExit():
                await self._request_exit(book, effect)
            case fx.SettleLater(delay_s=delay_s):
                book.settle_later(self.clock.monotonic() + max(0.0, delay_s))
            case fx.SettleNow():
                await self.flows.settle_symbol(book)
            case fx.EnterError(reason=reason):
                await self.control.enter_error(reason)
            case fx.RefreshSymbolInfo():
                try:
                    await self.symbol_info(book, refresh=True)
                except ExchangeError:
                    pass
            case fx.RefuseOrder(message=message, code=code, definite=definite):
                await self.flows.refuse_order(book, _about(order, effect), Refusal(message, code, definite))
            case fx.ApplyAnswer(body=body):
                await self.flows.apply_answer(book, _about(order, effect), body)
            case fx.MarkUnknown(reason=reason):
                await self.flows.mark_unknown(book, _about(order, effect), reason)
            case _:
                assert_never(effect)

    async def answer_closes(self, book: SymbolBook, outcome: Outcome, reason: str) -> None:
        """Answer every operator close waiting on ``book``; a final outcome ends them."""
        book.closes, answers = answer_closes(book.closes, outcome, reason)
        await self.perform(book, answers)

    async def _request_exit(self, book: SymbolBook, effect: fx.RequestExit) -> None:
        if effect.only_when_open and (book.position is None or book.position.status != PositionStatus.OPEN):
            return
        request = ExitRequest(
            effect.reason,
            effect.candle_open_ms,
            effect.source_event_id,
            effect.price,
            effect.explicit,
            effect.market_time_ms,
        )
        refusal = await self.flows.request_exit(book, request)
        if refusal and effect.answer_refusal:
            await self.answer_closes(book, Outcome.REFUSED, refusal)


def _about(order: Order | None, effect: fx.Effect) -> Order:
    if order is None:
        raise ValueError(f"{type(effect).__name__} needs the order it is about")
    return order
