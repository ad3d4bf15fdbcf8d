"""Building blocks for the api tests: settings, events as the services publish them, an SSE reader."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.config import ApiSettings
from shared.events import Decision, Kline, LogRecord, Signal, Ticker, make_event
from shared.events.envelope import Envelope
from shared.store.database import open_engine
from shared.store.models import Order, Position

PASSWORD = "correct horse battery"
MINUTE = 60_000
T0 = 1_747_699_200_000  # 2025-05-20T00:00Z


def make_settings(redis_url: str, tmp: Path, **env: Any) -> ApiSettings:
    """Api settings for one test, independent of any ``.env`` file."""
    values: dict[str, Any] = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'ledger.sqlite3'}",
        "DASHBOARD_PASSWORD": PASSWORD,
        "SYMBOLS": "BTCUSDT,ETHUSDT",
        "REPORTS_DIR": str(tmp / "reports"),
        "SSE_PRICE_INTERVAL_MS": "0",
    }
    values.update(env)
    return ApiSettings(_env_file=None, **{key: value for key, value in values.items() if value is not None})


def ticker(symbol: str, price: str) -> Envelope:
    p = Decimal(price)
    return make_event(
        Ticker(symbol=symbol, price=p, open=p, high=p, low=p, volume=Decimal(1), quote_volume=p), "market_data"
    )


def kline(symbol: str, index: int, close: str, closed: bool = True, interval: str = "1m") -> Envelope:
    c = Decimal(close)
    open_ms = T0 + index * MINUTE
    return make_event(
        Kline(
            symbol=symbol,
            interval=interval,
            open_time_ms=open_ms,
            close_time_ms=open_ms + MINUTE - 1,
            open=c - 1,
            high=c + 2,
            low=c - 2,
            close=c,
            volume=Decimal("3.5"),
            closed=closed,
        ),
        "market_data",
        ts_event_ms=open_ms + MINUTE - 1,
    )


def decision(symbol: str, index: int, close: str, entry: bool = False) -> Envelope:
    open_ms = T0 + index * MINUTE
    indicators = {
        "ema_short": 100.0 + index,
        "ema_long": 99.0 + index,
        "ema_filter": 98.0,
        "rsi": 40.0 + index,
        "volume_avg": 3.0,
        "atr": 1.5,
    }
    return make_event(
        Decision(
            symbol=symbol,
            interval="1m",
            candle_open_time_ms=open_ms,
            close=Decimal(close),
            warm=True,
            entry=entry,
            exit=False,
            conditions=[],
            indicators=indicators,
            parameters_version=0,
        ),
        "strategy",
    )


def signal(symbol: str, index: int, price: str, side: str = "BUY") -> Envelope:
    return make_event(
        Signal(
            symbol=symbol,
            side=side,
            reason="ema_cross_up",
            price=Decimal(price),
            interval="1m",
            candle_open_time_ms=T0 + index * MINUTE,
            indicators={"rsi": 55.0},
            parameters_version=0,
        ),
        "strategy",
    )


def log(message: str, service: str = "strategy", level: str = "INFO") -> Envelope:
    return make_event(LogRecord(service=service, level=level, logger=f"services.{service}", message=message), service)


@dataclass
class SseEvent:
    event: str
    data: Any
    id: str | None


@dataclass
class SseReader:
    """Reads a text/event-stream response event by event (comments skipped)."""

    response: httpx.Response
    _lines: Any = field(default=None, init=False)

    async def next(self, timeout: float = 5.0) -> SseEvent:
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        return await asyncio.wait_for(self._read(), timeout)

    async def _read(self) -> SseEvent:
        name, data, event_id = "message", [], None
        async for line in self._lines:
            if line == "":
                if data:
                    return SseEvent(name, json.loads("\n".join(data)), event_id)
                name, event_id = "message", None
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
            elif key == "id":
                event_id = value
        raise EOFError("event stream ended")

    async def until(self, predicate: Any, timeout: float = 5.0) -> SseEvent:
        """The first event for which ``predicate(event)`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next(max(deadline - loop.time(), 0.01))
            if predicate(event):
                return event


async def seed(url: str, trades: int = 5) -> None:
    """``trades`` closed BTCUSDT round trips (entry + exit order each), then one open ETHUSDT position."""
    engine = open_engine(url)
    async with AsyncSession(engine) as session:
        for i in range(trades):
            entry_ms, exit_ms = T0 + i * 10 * MINUTE, T0 + (i * 10 + 5) * MINUTE
            entry_price, exit_price = Decimal(100 + i), Decimal(100 + i) * Decimal("1.03")
            position = Position(
                symbol="BTCUSDT",
                status="CLOSED",
                entry_client_order_id=f"e{i}",
                exit_client_order_id=f"x{i}",
                entry_price=entry_price,
                exit_price=exit_price,
                quantity=Decimal("0.5"),
                quote_spent=entry_price / 2,
                quote_received=exit_price / 2,
                stop_loss=entry_price * Decimal("0.98"),
                take_profit=entry_price * Decimal("1.05"),
                entry_time_ms=entry_ms,
                exit_time_ms=exit_ms,
                exit_reason="take_profit",
                return_pct=Decimal("2.8") + i,
            )
            session.add(position)
            await session.flush()
            for cid, side, purpose, price, at in (
                ("e", "BUY", "entry", entry_price, entry_ms),
                ("x", "SELL", "exit", exit_price, exit_ms),
            ):
                session.add(
                    Order(
                        client_order_id=f"{cid}{i}",
                        symbol="BTCUSDT",
                        side=side,
                        purpose=purpose,
                        status="FILLED",
                        requested_quantity=Decimal("0.5"),
                        executed_quantity=Decimal("0.5"),
                        cumulative_quote=price / 2,
                        position_id=position.id,
                        created_at_ms=at,
                        updated_at_ms=at + 10,
                    )
                )
        opened = Position(
            symbol="ETHUSDT",
            status="OPEN",
            entry_client_order_id="eth-e",
            entry_price=Decimal("2500.5"),
            quantity=Decimal("0.1"),
            quote_spent=Decimal("250.05"),
            entry_time_ms=T0 + 100 * MINUTE,
        )
        session.add(opened)
        await session.flush()
        session.add(
            Order(
                client_order_id="eth-e",
                symbol="ETHUSDT",
                side="BUY",
                order_type="LIMIT_MAKER",  # a limit entry priced from the best bid
                limit_price=Decimal("2500.5"),
                best_bid=Decimal("2500.6"),
                purpose="entry",
                status="FILLED",
                requested_quantity=Decimal("0.1"),
                executed_quantity=Decimal("0.1"),
                cumulative_quote=Decimal("250.05"),
                position_id=opened.id,
                created_at_ms=T0 + 100 * MINUTE,
                updated_at_ms=T0 + 100 * MINUTE,
            )
        )
        await session.commit()
    await engine.dispose()
