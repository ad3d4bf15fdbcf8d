"""Drive the real executor (in-process service object or ``python -m services.executor``)
against a real redis-server, the simulator subprocess and a real ledger database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from services.executor import store
from services.executor.config import ExecutorSettings
from services.executor.exchange import Exchange
from services.executor.service import Executor
from shared import signing, streams
from shared.binance_client import close_client, open_client
from shared.bus import publish, publish_atomically
from shared.codec import decode, dumps, loads
from shared.events import BotCommand, Envelope, ExecutorAlert, Signal, Ticker, make_event, now_ms
from shared.store.database import open_engine, session_factory
from shared.store.models import Order, Position
from tests.support.simulator import SimulatorProcess

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000

# Fast settling for tests: short query delays, a short grace for unsent intents.
FAST_ENV = {
    "ORDER_QUERY_DELAY_S": "0.05",
    "ORDER_QUERY_ATTEMPTS": "5",
    "INTENT_GRACE_S": "1",
    "EXIT_RETRY_S": "0.5",
    "RECONCILE_INTERVAL_S": "1",
    "EXECUTOR_POLL_MS": "50",
    "LEASE_TTL_MS": "3000",
    "MAX_RETRY_AFTER_WAIT_S": "5",
    "ORDER_TIMEOUT_S": "5",
    "LOG_LEVEL": "INFO",
}


class _Candles:
    """Candle open times for test signals: each used once in the process (client ids stay unique
    on a simulator), and never before the candle that just closed on the exchange's clock. The
    executor tests' simulators run at 1x from the wall clock, so exchange time is wall time: a
    BUY is within its allowance at the exchange, and its fill comes after older prices."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last = max(self.last + MINUTE, now_ms() // MINUTE * MINUTE - MINUTE)
        return self.last


_CANDLES = _Candles()


def candle() -> int:
    """A candle open time no other test uses, the latest closed one or later (see ``_Candles``)."""
    return _CANDLES.next()


async def wait_until(predicate: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.05)


def executor_env(
    sim: SimulatorProcess, redis_url: str, database_url: str, symbols: str, **extra: str
) -> dict[str, str]:
    """Environment of an executor on ``sim``, ``redis_url`` and ``database_url``."""
    return {
        **FAST_ENV,
        "REDIS_URL": redis_url,
        "BINANCE_ENV": "sim",
        "SIM_URL": sim.base_url,
        "BINANCE_API_KEY": sim.api_key,
        "BINANCE_API_SECRET": sim.api_secret,
        "SYMBOLS": symbols,
        "TIMEFRAME": "1m",
        "DATABASE_URL": database_url,
        **extra,
    }


class Bus:
    """What the other services would write, and what the executor publishes."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def fresh(self, symbol: str, market_ms: int | None = None) -> None:
        """Market data just arrived for ``symbol`` (as market_data marks it): wall-clock
        freshness, and the market clock at ``market_ms`` (exchange time; now by default)."""
        await self.redis.hset(streams.MARKET_FRESHNESS, symbol, str(now_ms()))
        await self.redis.hset(streams.MARKET_CLOCK, symbol, str(now_ms() if market_ms is None else market_ms))

    def signal_event(
        self, symbol: str, side: str, candle_open_ms: int, price: str = "100000", *, age_s: float = 0.0
    ) -> Envelope:
        payload = Signal(
            symbol=symbol,
            side=side,
            reason="ema_cross",
            price=Decimal(price),
            interval="1m",
            candle_open_time_ms=candle_open_ms,
            indicators={"rsi": 50.0},
            parameters_version=0,
        )
        event = make_event(
            payload,
            "strategy",
            ts_event_ms=candle_open_ms + MINUTE - 1,
            event_id=f"signal:{symbol}:1m:{candle_open_ms}:{side}",
        )
        if age_s:
            event = event.model_copy(update={"ts_init_ms": now_ms() - int(age_s * 1000)})
        return event

    async def signal(
        self, symbol: str, side: str, candle_open_ms: int, price: str = "100000", *, age_s: float = 0.0
    ) -> Envelope:
        """Publish a strategy signal the way the strategy does (both streams, atomically)."""
        if side == "BUY":
            # The market's present: the signal's candle closed ``age_s`` (market time) ago.
            await self.fresh(symbol, candle_open_ms + MINUTE + int(age_s * 1000))
        event = self.signal_event(symbol, side, candle_open_ms, price, age_s=age_s)
        await publish_atomically(self.redis, [(streams.SIGNALS, event), (streams.executor_inbox(symbol), event)])
        return event

    async def tick(self, symbol: str, price: str, ts_event_ms: int | None = None) -> Envelope:
        """Publish a mini-ticker price."""
        p = Decimal(price)
        event = make_event(
            Ticker(symbol=symbol, price=p, open=p, high=p, low=p, volume=Decimal(1), quote_volume=p),
            "market_data",
            ts_event_ms=ts_event_ms,
        )
        await self.fresh(symbol, event.ts_event_ms)
        await publish(self.redis, streams.ticker_stream(symbol), event)
        return event

    async def close_position(self, symbol: str) -> Envelope:
        event = make_event(BotCommand(command="close_position", symbol=symbol, requested_by="test"), "api")
        await publish(self.redis, streams.symbol_commands(symbol), event)
        return event

    async def command(self, command: str) -> None:
        """What the api does for start/stop/pause_entries: the key, then the command."""
        state = {"start": "running", "stop": "stopped", "pause_entries": "entries_paused"}[command]
        record = signing.seal_record({"state": state, "reason": "test", "changed_at_ms": now_ms()})
        await self.redis.set(streams.BOT_STATE, dumps(record))
        await publish(
            self.redis, streams.CONTROL_COMMANDS, make_event(BotCommand(command=command, requested_by="test"), "api")
        )

    async def events(self, event_type: str | None = None) -> list[Envelope]:
        """Everything on ``executor:events`` (optionally one type), oldest first."""
        entries = await self.redis.xrange(streams.EXECUTOR_EVENTS)
        result = [decode(fields) for _, fields in entries]
        return [e for e in result if event_type is None or e.type == event_type]

    async def alerts(self, code: str | None = None, symbol: str | None = None) -> list[ExecutorAlert]:
        found = [e.payload for e in await self.events("executor_alert")]
        return [a for a in found if (code is None or a.code == code) and (symbol is None or a.symbol == symbol)]

    async def snapshot(self, symbol: str) -> dict[str, Any] | None:
        return loads(await self.redis.hget(streams.POSITIONS, symbol))


@dataclass
class Ledger:
    """Read-only views of the executor's database."""

    sessions: async_sessionmaker

    async def orders(self, symbol: str | None = None) -> list[Order]:
        async with self.sessions() as session:
            return list(reversed(await store.recent_orders(session, symbol, limit=1000)))

    async def order(self, client_id: str) -> Order | None:
        async with self.sessions() as session:
            return await store.get_order(session, client_id)

    async def active(self, symbol: str) -> Position | None:
        async with self.sessions() as session:
            return await store.active_position(session, symbol)

    async def closed(self, symbol: str | None = None) -> list[Position]:
        async with self.sessions() as session:
            return await store.closed_positions(session, symbol)

    async def fills(self, client_id: str) -> list[Any]:
        async with self.sessions() as session:
            return await store.fills_of(session, [client_id])

    async def open_position(self, symbol: str) -> Position | None:
        position = await self.active(symbol)
        return position if position is not None and position.status == "OPEN" else None


@dataclass
class InProcess:
    """The ``Executor`` service object running in this event loop."""

    settings: ExecutorSettings
    redis: Redis
    engine: AsyncEngine
    executor: Executor
    stop: asyncio.Event
    task: asyncio.Task[None]
    client: Any
    bus: Bus
    ledger: Ledger

    async def owns(self, *symbols: str) -> None:
        async def ready() -> bool:
            return all(streams.executor_inbox(s) in self.executor.consumer.streams for s in symbols)

        await wait_until(ready, 15, f"executor owning {symbols}")

    async def close(self) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(self.task, 10)
        finally:
            await close_client(self.client)
            await self.engine.dispose()
            await self.redis.aclose()


async def start_in_process(
    sim: SimulatorProcess,
    redis_url: str,
    database_url: str,
    symbols: str = "BTCUSDT",
    instance: str = "executor-test",
    **extra: str,
) -> InProcess:
    """Build the executor from settings exactly as ``__main__`` does and run it in a task."""
    env = executor_env(sim, redis_url, database_url, symbols, **extra)
    settings = ExecutorSettings(**env)
    redis = Redis.from_url(redis_url, decode_responses=True)
    engine = open_engine(database_url)
    client = await open_client(settings)
    exchange = Exchange(client, request_timeout_s=settings.order_timeout_s, max_wait_s=settings.max_retry_after_wait_s)
    sessions = session_factory(engine)
    executor = Executor(settings, redis, sessions, exchange, instance)
    stop = asyncio.Event()
    task = asyncio.create_task(executor.run(stop))
    handle = InProcess(settings, redis, engine, executor, stop, task, client, Bus(redis), Ledger(sessions))
    symbol_list = [s for s in symbols.split(",") if s]
    await handle.owns(*symbol_list)
    return handle


@dataclass
class ExecutorProcess:
    """One ``python -m services.executor`` subprocess."""

    process: subprocess.Popen[bytes]
    log: Path
    instance: str
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def kill(self) -> None:
        """SIGKILL: no clean-up happens, as in a crash."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def start_process(folder: Path, env: dict[str, str], instance: str) -> ExecutorProcess:
    """Start ``python -m services.executor`` with ``env`` (on top of a clean environment)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "BUS_SIGNING_KEY")
    }
    full = {**base, **env, "INSTANCE_ID": instance, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{instance}-{time.monotonic_ns()}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.executor"], cwd=folder, env=full, stdout=handle, stderr=subprocess.STDOUT
        )
    return ExecutorProcess(process, log, instance, full)


@asynccontextmanager
async def ledger_on(url: str) -> AsyncIterator[Ledger]:
    """The ledger of the database at ``url``, for reading what an executor process wrote."""
    engine = open_engine(url)
    try:
        yield Ledger(session_factory(engine))
    finally:
        await engine.dispose()
