"""The component tier: the executor's shell driven through ``Executor.handle`` with a scripted
exchange (``fake_exchange``), the session's real redis-server, a SQLite ledger file and a fake
clock, so the cases the simulator cannot produce on demand are exact and take no real time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.executor import store
from services.executor.config import ExecutorSettings
from services.executor.service import Executor
from shared import streams
from shared.codec import decode
from shared.events import (
    BotCommand,
    CommandOutcome,
    Envelope,
    ExecutionReport,
    ExecutorAlert,
    Signal,
    Ticker,
    make_event,
)
from shared.store.database import migrate, open_engine, session_factory
from shared.store.models import Order, Position
from tests.component.fake_exchange import SYMBOL, FakeExchange
from tests.support.fake_clock import FakeClock

MINUTE = 60_000
D = Decimal
SETTINGS: dict[str, Any] = {
    "SYMBOLS": SYMBOL,
    "TIMEFRAME": "1m",
    "BINANCE_ENV": "sim",
    "ORDER_QUERY_DELAY_S": "1",
    "ORDER_QUERY_ATTEMPTS": "3",
    "ORDER_SEND_ATTEMPTS": "3",
    "INTENT_GRACE_S": "10",
    "EXIT_RETRY_S": "10",
    "RECONCILE_INTERVAL_S": "30",
    "MAX_RETRY_AFTER_WAIT_S": "10",
    "LEASE_TTL_MS": "5000",
}


@dataclass
class Rig:
    """One executor replica on the fake exchange and clock, the real Redis and a SQLite ledger."""

    redis: Redis
    engine: AsyncEngine
    exchange: FakeExchange
    clock: FakeClock
    settings: ExecutorSettings
    executor: Executor = field(init=False)

    def __post_init__(self) -> None:
        self.executor = self.replica()

    def replica(self, instance: str = "executor-a") -> Executor:
        """A new executor process (nothing in memory) on the same Redis, ledger, exchange and clock."""
        return Executor(
            self.settings, self.redis, session_factory(self.engine), self.exchange, instance, clock=self.clock
        )

    async def start(self, executor: Executor | None = None) -> Executor:
        """Load control and take the symbol's lease (which reconciles it), as a start does."""
        executor = executor or self.executor
        await executor.prepare()
        await executor.leases.rebalance()
        await executor.reconcile_arrivals()  # the reconciliation task's work, done here
        assert SYMBOL in executor.leases.owned
        return executor

    async def round(self) -> None:
        """One round of the executor's loop, then what its reconciliation task has due."""
        await self.executor.step()
        await self.executor.reconcile_arrivals()
        await self.executor.reconcile_due()

    # -- what the other services write ------------------------------------------------------

    def market_ms(self) -> int:
        return self.clock.now_ms()

    async def fresh(self) -> None:
        """Market data just arrived: the feed is fresh and the market clock is the fake wall clock."""
        await self.redis.hset(streams.MARKET_FRESHNESS, SYMBOL, str(self.clock.now_ms()))
        await self.redis.hset(streams.MARKET_CLOCK, SYMBOL, str(self.market_ms()))

    async def signal(self, side: str, candle_open_ms: int | None = None, price: str = "100000") -> Signal:
        """The strategy's signal of the last closed candle, handled by the executor."""
        await self.fresh()
        open_ms = candle_open_ms if candle_open_ms is not None else (self.market_ms() // MINUTE - 1) * MINUTE
        payload = Signal(
            symbol=SYMBOL,
            side=side,
            reason="ema_cross",
            price=D(price),
            interval="1m",
            candle_open_time_ms=open_ms,
            indicators={"rsi": 50.0},
            parameters_version=0,
        )
        event = make_event(payload, "strategy", ts_event_ms=open_ms + MINUTE - 1, event_id=f"signal-{open_ms}-{side}")
        await self.executor.handle(streams.executor_inbox(SYMBOL), event)
        # The consumer's batch ends here: the entry's answer, left until the burst is sent
        # (``services.executor.later``), is applied as the executor's next round does.
        await self.executor.shell.later.finish_all()
        return payload

    async def tick(self, price: str, ts_event_ms: int | None = None) -> Envelope:
        p = D(price)
        ts = ts_event_ms if ts_event_ms is not None else self.market_ms()
        event = make_event(
            Ticker(symbol=SYMBOL, price=p, open=p, high=p, low=p, volume=D(1), quote_volume=p),
            "market_data",
            ts_event_ms=ts,
        )
        await self.executor.handle(streams.ticker_stream(SYMBOL), event)
        return event

    async def close(self) -> Envelope:
        event = make_event(BotCommand(command="close_position", symbol=SYMBOL, requested_by="test"), "api")
        await self.executor.handle(streams.symbol_commands(SYMBOL), event)
        return event

    async def reports(self, client_order_id: str) -> None:
        """The execution reports market_data publishes for an order the exchange executed."""
        body = self.exchange.orders[client_order_id]
        quantity = quote = D(0)
        trades = [t for t in self.exchange.trades if t["orderId"] == body["orderId"]]
        for index, trade in enumerate(trades):
            quantity += D(trade["qty"])
            quote += D(trade["quoteQty"])
            last = index == len(trades) - 1
            report = ExecutionReport(
                symbol=SYMBOL,
                client_order_id=client_order_id,
                order_id=body["orderId"],
                side=body["side"],
                order_type="MARKET",
                execution_type="TRADE",
                status=body["status"] if last else "PARTIALLY_FILLED",
                quantity=D(body["origQty"]),
                price=D(0),
                last_quantity=D(trade["qty"]),
                last_price=D(trade["price"]),
                cumulative_quantity=quantity,
                cumulative_quote=quote,
                commission=D(trade["commission"]),
                commission_asset=trade["commissionAsset"],
                trade_id=trade["id"],
                transact_time_ms=trade["time"],
            )
            await self.executor.handle(streams.executions_stream(SYMBOL), make_event(report, "market_data"))

    # -- what the executor wrote and told ------------------------------------------------------

    async def orders(self) -> list[Order]:
        async with session_factory(self.engine)() as session:
            return list(reversed(await store.recent_orders(session, SYMBOL)))

    async def order(self, client_order_id: str) -> Order:
        async with session_factory(self.engine)() as session:
            order = await store.get_order(session, client_order_id)
        assert order is not None, client_order_id
        return order

    async def position(self) -> Position | None:
        async with session_factory(self.engine)() as session:
            return await store.active_position(session, SYMBOL)

    async def closed(self) -> list[Position]:
        async with session_factory(self.engine)() as session:
            return await store.closed_positions(session, SYMBOL)

    async def events(self, event_type: str | None = None) -> list[Envelope]:
        entries = await self.redis.xrange(streams.EXECUTOR_EVENTS) or []
        found = [decode(dict(fields or {})) for _, fields in entries]
        return [e for e in found if event_type is None or e.type == event_type]

    async def alerts(self, code: str | None = None) -> list[ExecutorAlert]:
        found = [e.payload for e in await self.events("executor_alert")]
        return [a for a in found if isinstance(a, ExecutorAlert) and code in (None, a.code)]

    async def answers(self) -> list[tuple[str, str]]:
        found = [e.payload for e in await self.events("command_outcome")]
        return [(a.outcome, a.reason) for a in found if isinstance(a, CommandOutcome)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def exchange(clock: FakeClock) -> FakeExchange:
    return FakeExchange(clock)


@pytest.fixture
async def rig(
    tmp_path: Path, redis_url: str, redis_client: Redis, exchange: FakeExchange, clock: FakeClock
) -> AsyncIterator[Rig]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(url)
    engine = open_engine(url)
    settings = ExecutorSettings(**SETTINGS, REDIS_URL=redis_url, DATABASE_URL=url)
    yield Rig(redis_client, engine, exchange, clock, settings)
    await engine.dispose()
