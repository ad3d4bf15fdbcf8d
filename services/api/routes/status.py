"""The bot at a glance: mode, state, market clock, prices, balances, positions, last signal.

Served from state kept up to date: one pipelined read of the services' Redis keys (prices,
positions, the last signal per symbol, symbol filters, balances, the requested bot state) and
what the api's event relay has seen (the executor's bot-state report, the market status, the
market clock's rate). No stream entry is decoded per call.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from services.api.deps import LedgerDep, LiveDep, Protected, RedisDep, SettingsDep
from services.api.ledger_view import Precisions
from services.api.live_state import FOLLOWED, LiveState
from shared import streams
from shared.codec import loads
from shared.events import STATE_MEANINGS, now_ms
from shared.precision import QUOTE_ASSETS, Precision, pct, split_symbol
from shared.trading.breaker import BreakerLimits, advance, state_from
from shared.trading.vocabulary import BreakerLimit, PositionStatus

router = APIRouter(prefix="/api", tags=["status"], dependencies=Protected)

__all__ = ["QUOTE_ASSETS", "position_view", "router", "split_symbol", "unrealised_pct"]


class BotState(BaseModel):
    state: str
    reason: str = ""
    changed_at_ms: int | None = None


class PositionView(BaseModel):
    symbol: str
    status: str
    trade_id: int | None = None
    entry_price: str | None = None
    quantity: str | None = None
    dust_quantity: str | None = None
    entry_time_ms: int | None = None
    stop_loss: str | None = None
    take_profit: str | None = None
    unrealised_quote: str | None = None
    unrealised_pct: str | None = None


class MarketView(BaseModel):
    symbol: str
    base_asset: str
    quote_asset: str
    precision: dict[str, Any] | None = None
    price: str | None
    price_time_ms: int | None = None
    price_age_ms: int | None
    position: PositionView | None
    last_signal: dict[str, Any] | None


class MarketClock(BaseModel):
    time_ms: int | None
    wall_ms: int
    rate: str | None
    replay: bool


class BreakerView(BaseModel):
    """The account circuit breaker: the limit tripped (None: entries allowed) and its figures."""

    tripped: str | None = None
    tripped_at_ms: int | None = None  # market time
    figures: dict[str, str] = {}
    clears: str = ""  # when it clears by itself
    equity: str | None = None
    losing_streak: int = 0
    last_reset: dict[str, Any] | None = None


def breaker_view(raw: str | None, market_ms: int | None) -> BreakerView | None:
    """The breaker's record as the executor wrote it, a daily trip shown cleared once the market
    clock is in the next UTC day (the executor clears it at its next entry decision)."""
    record = loads(raw)
    if not isinstance(record, dict):
        return None
    state = state_from(record.get("state"))
    if market_ms is not None:
        state = advance(state, BreakerLimits(), market_ms).state
    trip = state.tripped
    clears = ""
    if trip is not None:
        clears = (
            "at the next UTC day of market time" if trip.limit == BreakerLimit.DAILY_LOSS else "by an operator reset"
        )
    return BreakerView(
        tripped=None if trip is None else str(trip.limit),
        tripped_at_ms=None if trip is None else trip.at_ms,
        figures=dict(trip.figures) if trip else {},
        clears=clears,
        equity=None if state.equity is None else format(state.equity, "f"),
        losing_streak=state.losing_streak,
        last_reset=record.get("last_reset"),
    )


class Status(BaseModel):
    mode: str
    timeframe: str
    symbols: list[str]
    bot: BotState
    market: MarketClock
    markets: list[MarketView]
    balances: dict[str, dict[str, str]]
    market_status: dict[str, Any] | None
    server_time_ms: int
    state_meanings: dict[str, str] = {}  # what each bot state lets the bot do, in the README's words
    breaker: BreakerView | None = None  # None: the breaker never counted a trade


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def unrealised_pct(entry: str | None, price: str | None) -> str | None:
    """(price - entry) / entry in %, two decimals; None when either is unknown."""
    entry_value, price_value = _decimal(entry), _decimal(price)
    if entry_value is None or price_value is None or entry_value <= 0:
        return None
    return pct((price_value - entry_value) / entry_value * 100)


def position_view(raw: str | None, price: str | None, precision: Precision | None = None) -> PositionView | None:
    """The position snapshot kept by the executor, formatted, with its unrealised P&L at ``price``."""
    body = loads(raw)
    if not isinstance(body, dict) or body.get("status", "FLAT") == "FLAT":
        return None
    symbol = str(body.get("symbol", ""))
    f = precision or Precision(symbol, *split_symbol(symbol))
    entry, quantity, last = _decimal(body.get("entry_price")), _decimal(body.get("quantity")), _decimal(price)
    view = PositionView(
        symbol=symbol,
        status=str(body["status"]),
        trade_id=body.get("trade_id"),
        entry_price=f.price(entry),
        quantity=f.quantity(quantity),
        dust_quantity=f.dust(_decimal(body.get("dust_quantity"))),
        entry_time_ms=body.get("entry_market_time_ms") or body.get("entry_time_ms"),
        stop_loss=f.price(_decimal(body.get("stop_loss"))),
        take_profit=f.price(_decimal(body.get("take_profit"))),
    )
    if view.status in (PositionStatus.OPEN, PositionStatus.CLOSING):
        view.unrealised_pct = unrealised_pct(body.get("entry_price"), price)
        if entry is not None and quantity is not None and last is not None:
            view.unrealised_quote = f.quote((last - entry) * quantity)
    return view


def newest_signal(kept: Any, observed: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newer of the signal kept in ``strategy:last_signal`` and the newest one the relay saw."""
    candidates = [s for s in (kept, observed) if isinstance(s, dict)]
    return max(candidates, key=lambda s: (s.get("candle_open_time_ms") or 0, s.get("ts_ms") or 0), default=None)


def effective_bot_state(requested_raw: str | None, live: LiveState) -> dict[str, Any]:
    """The newer of the requested state (``control:bot_state``) and the executor's last report.

    The executor announces what it actually does (its start state, an error) as ``bot_state``
    events; a command from the dashboard sets the key first, before the executor applies it.
    """
    stored = loads(requested_raw)
    if not isinstance(stored, dict) or "state" not in stored:
        requested: dict[str, Any] = {"state": "unknown", "reason": "", "changed_at_ms": None}
    else:
        requested = {
            "state": stored["state"],
            "reason": stored.get("reason", ""),
            "changed_at_ms": stored.get("changed_at_ms"),
        }
    reported = live.bot_event
    if reported is not None and (
        requested["changed_at_ms"] is None or reported["changed_at_ms"] >= int(requested["changed_at_ms"])
    ):
        return reported
    return requested


@router.get("/status")
async def get_status(redis: RedisDep, settings: SettingsDep, live: LiveDep, ledger: LedgerDep) -> Status:
    """Everything the status panel shows, from state kept up to date (no stream decoding)."""
    symbols = settings.symbols
    precisions: Precisions = ledger.precisions
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(streams.MARKET_LAST_PRICE, symbols)
        pipe.hmget(streams.MARKET_FRESHNESS, symbols)
        pipe.hmget(streams.POSITIONS, symbols)
        pipe.hgetall(streams.ACCOUNT_SNAPSHOT)
        pipe.hmget(streams.LAST_SIGNAL, symbols)
        pipe.hmget(streams.MARKET_CLOCK, symbols)
        pipe.get(streams.BOT_STATE)
        pipe.get(streams.BREAKER)
        for stream in FOLLOWED:
            pipe.xrevrange(stream, count=1)
        if precisions.stale:
            pipe.hmget(streams.SYMBOL_INFO, symbols)
        replies = await pipe.execute()
    prices, freshness, positions, snapshot, signals, clocks, requested, breaker = replies[:8]
    await live.catch_up(redis, dict(zip(FOLLOWED, replies[8 : 8 + len(FOLLOWED)], strict=True)))
    if len(replies) > 8 + len(FOLLOWED):
        precisions.apply(replies[-1])
    now = now_ms()
    markets = []
    assets: list[str] = []
    for index, symbol in enumerate(symbols):
        known = precisions.known(symbol)
        f = precisions.of(symbol)
        assets += [asset for asset in (f.base_asset, f.quote_asset) if asset not in assets]
        seen = freshness[index]
        signal = newest_signal(loads(signals[index]), live.signals.get(symbol))
        markets.append(
            MarketView(
                symbol=symbol,
                base_asset=f.base_asset,
                quote_asset=f.quote_asset,
                precision=known.to_dict() if known else None,
                price=f.price(_decimal(prices[index])),
                price_time_ms=int(float(clocks[index])) if clocks[index] else None,
                price_age_ms=None if seen is None else max(now - int(float(seen)), 0),
                position=position_view(positions[index], prices[index], f),
                last_signal=signal if isinstance(signal, dict) else None,
            )
        )
    balances = {}
    for asset in assets:
        body = loads(snapshot.get(asset)) or {"free": "0", "locked": "0"}
        balances[asset] = {"free": str(body.get("free", "0")), "locked": str(body.get("locked", "0"))}
    clock = max((int(float(c)) for c in clocks if c), default=None)
    return Status(
        mode=settings.binance_env,
        timeframe=settings.timeframe,
        symbols=symbols,
        bot=BotState(**effective_bot_state(requested, live)),
        market=MarketClock(**live.market(clock, now)),
        markets=markets,
        balances=balances,
        market_status=live.market_status,
        server_time_ms=now,
        state_meanings={state.value: meaning for state, meaning in STATE_MEANINGS.items()},
        breaker=breaker_view(breaker, clock),
    )


@router.get("/symbols")
async def get_symbols(ledger: LedgerDep, settings: SettingsDep) -> dict[str, Any]:
    """Each traded symbol's precision (tick, step, quote decimals) for formatting numbers."""
    await ledger.precisions.refresh()
    return {"symbols": [ledger.precisions.of(s).to_dict() for s in settings.symbols]}
