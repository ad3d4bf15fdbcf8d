"""The bot at a glance: mode, state, market clock, prices, balances, positions, last signal.

Served from state kept up to date: one pipelined read of the services' Redis keys (prices,
positions, the last signal per symbol, symbol filters, balances, the requested bot state) and
what the api's event relay has seen (the executor's bot-state report, the market status, the
market clock's rate). No stream entry is decoded per call.
"""

from __future__ import annotations

import weakref
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel

from services.api.breaker_view import BreakerView, breaker_view
from services.api.config import ApiSettings
from services.api.deps import LedgerDep, Protected, Resources, ResourcesDep, SettingsDep
from services.api.ledger_view import Precisions
from services.api.live_state import FOLLOWED, LiveState
from shared import streams
from shared.codec import loads
from shared.events import STATE_MEANINGS, now_ms
from shared.precision import QUOTE_ASSETS, Precision, pct, split_symbol
from shared.trading.vocabulary import PositionStatus

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
    # Who watches the levels (``shared.trading.vocabulary.Guard``): "exchange" (an OCO rests),
    # "exchange_stop" (the stop rests, the bot watches the take-profit) or "bot" (ticks).
    protection: str | None = None
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
        protection=body.get("protection"),
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


STATE_MEANING_TEXTS = {state.value: meaning for state, meaning in STATE_MEANINGS.items()}


def _status_body(
    settings: ApiSettings, live: LiveState, precisions: Precisions, replies: list[Any]
) -> tuple[dict[str, Any], list[int | None], int | None]:
    """The status without its wall-clock fields, validated by the ``Status`` model once, as JSON
    values; the market data's ``seen`` stamps (for the price ages) and the market clock."""
    symbols = settings.symbols
    prices, freshness, positions, snapshot, signals, clocks, requested, breaker = replies
    markets = []
    assets: list[str] = []
    for index, symbol in enumerate(symbols):
        known = precisions.known(symbol)
        f = precisions.of(symbol)
        assets += [asset for asset in (f.base_asset, f.quote_asset) if asset not in assets]
        signal = newest_signal(loads(signals[index]), live.signals.get(symbol))
        markets.append(
            MarketView(
                symbol=symbol,
                base_asset=f.base_asset,
                quote_asset=f.quote_asset,
                precision=known.to_dict() if known else None,
                price=f.price(_decimal(prices[index])),
                price_time_ms=int(float(clocks[index])) if clocks[index] else None,
                price_age_ms=None,
                position=position_view(positions[index], prices[index], f),
                last_signal=signal if isinstance(signal, dict) else None,
            )
        )
    balances = {}
    for asset in assets:
        body = loads(snapshot.get(asset)) or {"free": "0", "locked": "0"}
        balances[asset] = {"free": str(body.get("free", "0")), "locked": str(body.get("locked", "0"))}
    clock = max((int(float(c)) for c in clocks if c), default=None)
    status = Status(
        mode=settings.binance_env,
        timeframe=settings.timeframe,
        symbols=symbols,
        bot=BotState(**effective_bot_state(requested, live)),
        market=MarketClock(**live.market(clock, 0)),
        markets=markets,
        balances=balances,
        market_status=live.market_status,
        server_time_ms=0,
        state_meanings=STATE_MEANING_TEXTS,
        breaker=breaker_view(breaker, clock),
    )
    seen = [None if value is None else int(float(value)) for value in freshness]
    return status.model_dump(mode="json"), seen, clock


class StatusMemo:
    """The last status built, and what it was built from.

    Most requests find the same Redis values and relay state as the one before (prices move
    a few times a second; requests may come hundreds of times a second): those reuse its
    validated body and only fill in the wall-clock fields, so a request costs one pipelined
    read and one JSON encoding rather than a model built and validated again.
    """

    def __init__(self) -> None:
        self.key: tuple[Any, ...] | None = None
        self.built: tuple[dict[str, Any], list[int | None], int | None] | None = None

    def body(self, settings: ApiSettings, live: LiveState, precisions: Precisions, replies: list[Any]) -> bytes:
        # The freshness stamps only feed the price ages, computed per request below.
        key = (live.version, precisions.version, *replies[:1], *replies[2:])
        if self.built is None or key != self.key:
            self.key, self.built = key, _status_body(settings, live, precisions, replies)
        static, seen, clock = self.built
        now = now_ms()
        markets = [
            {**market, "price_age_ms": None if stamp is None else max(now - stamp, 0)}
            for market, stamp in zip(static["markets"], seen, strict=True)
        ]
        return orjson.dumps({**static, "markets": markets, "market": live.market(clock, now), "server_time_ms": now})


_MEMOS: weakref.WeakKeyDictionary[LiveState, StatusMemo] = weakref.WeakKeyDictionary()


def status_commands(symbols: list[str], precisions: Precisions) -> list[tuple[str, ...]]:
    """The Redis commands a status is built from, in the order ``status_bytes`` takes their replies."""
    commands = [
        ("HMGET", streams.MARKET_LAST_PRICE, *symbols),
        ("HMGET", streams.MARKET_FRESHNESS, *symbols),
        ("HMGET", streams.POSITIONS, *symbols),
        ("HGETALL", streams.ACCOUNT_SNAPSHOT),
        ("HMGET", streams.LAST_SIGNAL, *symbols),
        ("HMGET", streams.MARKET_CLOCK, *symbols),
        ("GET", streams.BOT_STATE),
        ("GET", streams.BREAKER),
        *(("XREVRANGE", stream, "+", "-", "COUNT", "1") for stream in FOLLOWED),
    ]
    if precisions.stale:
        commands.append(("HMGET", streams.SYMBOL_INFO, *symbols))
    return commands


def queue_status_reads(pipe: Any, symbols: list[str], precisions: Precisions) -> None:
    """Queue ``status_commands`` on ``pipe`` (redis-py parses each reply by its command's name)."""
    for command in status_commands(symbols, precisions):
        pipe.execute_command(*command)


async def status_bytes(resources: Resources, replies: list[Any]) -> bytes:
    """The status body from the replies to ``queue_status_reads`` (in the same order)."""
    redis, settings, live = resources.redis, resources.settings, resources.live
    precisions: Precisions = resources.ledger.precisions
    await live.catch_up(redis, dict(zip(FOLLOWED, replies[8 : 8 + len(FOLLOWED)], strict=True)))
    if len(replies) > 8 + len(FOLLOWED):
        precisions.apply(replies[-1])
    memo = _MEMOS.get(live)
    if memo is None:
        memo = _MEMOS[live] = StatusMemo()
    return memo.body(settings, live, precisions, replies[:8])


@router.get("/status", response_model=Status)
async def get_status(resources: ResourcesDep) -> Response:
    """Everything the status panel shows, from state kept up to date (no stream decoding).

    A signed-in request by session cookie is answered by ``status_fast`` before it gets here,
    with the same body; this route serves the others (bearer tokens) and documents the answer."""
    async with resources.redis.pipeline(transaction=False) as pipe:
        queue_status_reads(pipe, resources.settings.symbols, resources.ledger.precisions)
        replies = await pipe.execute()
    return Response(await status_bytes(resources, replies), media_type="application/json")


@router.get("/symbols")
async def get_symbols(ledger: LedgerDep, settings: SettingsDep) -> dict[str, Any]:
    """Each traded symbol's precision (tick, step, quote decimals) for formatting numbers."""
    await ledger.precisions.refresh()
    return {"symbols": [ledger.precisions.of(s).to_dict() for s in settings.symbols]}
