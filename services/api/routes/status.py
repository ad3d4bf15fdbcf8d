"""The bot at a glance: mode, state, prices, balances, positions, freshness, last signal."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.api.deps import Protected, RedisDep, SettingsDep
from shared import streams
from shared.codec import DecodeError, decode, loads
from shared.control import bot_state
from shared.events import STATE_MEANINGS, now_ms

router = APIRouter(prefix="/api", tags=["status"], dependencies=Protected)

# Longest first, so FDUSD wins over USD-like suffixes.
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "EUR", "TRY", "BRL", "BTC", "ETH", "BNB")
SIGNAL_LOOKBACK = 200
EXECUTOR_LOOKBACK = 200


class BotState(BaseModel):
    state: str
    reason: str = ""
    changed_at_ms: int | None = None


class PositionView(BaseModel):
    symbol: str
    status: str
    entry_price: str | None = None
    quantity: str | None = None
    entry_time_ms: int | None = None
    stop_loss: str | None = None
    take_profit: str | None = None
    unrealised_pct: str | None = None


class MarketView(BaseModel):
    symbol: str
    base_asset: str
    quote_asset: str
    price: str | None
    price_age_ms: int | None
    position: PositionView | None
    last_signal: dict[str, Any] | None


class Status(BaseModel):
    mode: str
    timeframe: str
    symbols: list[str]
    bot: BotState
    markets: list[MarketView]
    balances: dict[str, dict[str, str]]
    market_status: dict[str, Any] | None
    server_time_ms: int
    state_meanings: dict[str, str] = {}  # what each bot state lets the bot do, in the README's words


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a symbol such as BTCUSDT."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


def unrealised_pct(entry: str | None, price: str | None) -> str | None:
    """(price - entry) / entry in %, two decimals; None when either is unknown."""
    try:
        entry_value, price_value = Decimal(str(entry)), Decimal(str(price))
    except (InvalidOperation, ValueError):
        return None
    if entry_value <= 0:
        return None
    return format(((price_value - entry_value) / entry_value * 100).quantize(Decimal("0.01")), "f")


def position_view(raw: str | None, price: str | None) -> PositionView | None:
    """The position snapshot kept by the executor, with its unrealised % at ``price``."""
    body = loads(raw)
    if not isinstance(body, dict) or body.get("status", "FLAT") == "FLAT":
        return None

    def text(key: str) -> str | None:
        return None if body.get(key) is None else str(body[key])

    view = PositionView(
        symbol=str(body.get("symbol", "")),
        status=str(body["status"]),
        entry_price=text("entry_price"),
        quantity=text("quantity"),
        entry_time_ms=body.get("entry_time_ms"),
        stop_loss=text("stop_loss"),
        take_profit=text("take_profit"),
    )
    if view.status in ("OPEN", "CLOSING"):
        view.unrealised_pct = unrealised_pct(view.entry_price, price)
    return view


async def _last_signals(redis: RedisDep) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for _, fields in await redis.xrevrange(streams.SIGNALS, count=SIGNAL_LOOKBACK):
        try:
            event = decode(fields)
        except DecodeError:
            continue
        body = event.payload.model_dump(mode="json")
        latest.setdefault(body["symbol"], {**body, "ts_ms": event.ts_event_ms})
    return latest


async def effective_bot_state(redis: RedisDep) -> dict[str, Any]:
    """The newer of the requested state (``control:bot_state``) and the executor's last report.

    The executor announces what it actually does (its start state, an error) as ``bot_state``
    events; a command from the dashboard sets the key first, before the executor applies it.
    """
    requested = await bot_state(redis)
    for _, fields in await redis.xrevrange(streams.EXECUTOR_EVENTS, count=EXECUTOR_LOOKBACK):
        if fields.get("type") != "bot_state":
            continue
        try:
            event = decode(fields)
        except DecodeError:
            continue
        if requested["changed_at_ms"] is None or event.ts_event_ms >= int(requested["changed_at_ms"]):
            return {"state": event.payload.state, "reason": event.payload.reason, "changed_at_ms": event.ts_event_ms}
        break
    return requested


async def _last_market_status(redis: RedisDep) -> dict[str, Any] | None:
    for _, fields in await redis.xrevrange(streams.MARKET_STATUS, count=1):
        try:
            event = decode(fields)
        except DecodeError:
            return None
        return {**event.payload.model_dump(mode="json"), "ts_ms": event.ts_event_ms}
    return None


@router.get("/status")
async def get_status(redis: RedisDep, settings: SettingsDep) -> Status:
    """Everything the status panel shows, read from the services' state in Redis."""
    symbols = settings.symbols
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(streams.MARKET_LAST_PRICE, symbols)
        pipe.hmget(streams.MARKET_FRESHNESS, symbols)
        pipe.hmget(streams.POSITIONS, symbols)
        pipe.hgetall(streams.ACCOUNT_SNAPSHOT)
        prices, freshness, positions, snapshot = await pipe.execute()
    signals = await _last_signals(redis)
    now = now_ms()
    markets = []
    assets: list[str] = []
    for index, symbol in enumerate(symbols):
        base, quote = split_symbol(symbol)
        assets += [asset for asset in (base, quote) if asset not in assets]
        seen = freshness[index]
        markets.append(
            MarketView(
                symbol=symbol,
                base_asset=base,
                quote_asset=quote,
                price=prices[index],
                price_age_ms=None if seen is None else max(now - int(seen), 0),
                position=position_view(positions[index], prices[index]),
                last_signal=signals.get(symbol),
            )
        )
    balances = {}
    for asset in assets:
        body = loads(snapshot.get(asset)) or {"free": "0", "locked": "0"}
        balances[asset] = {"free": str(body.get("free", "0")), "locked": str(body.get("locked", "0"))}
    return Status(
        mode=settings.binance_env,
        timeframe=settings.timeframe,
        symbols=symbols,
        bot=BotState(**await effective_bot_state(redis)),
        markets=markets,
        balances=balances,
        market_status=await _last_market_status(redis),
        server_time_ms=now,
        state_meanings={state.value: meaning for state, meaning in STATE_MEANINGS.items()},
    )
