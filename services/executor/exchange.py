"""The executor's only door to the exchange's account and order endpoints.

Errors come back as classes named by what the caller should do:

- ``RetryLater``: nothing happened (network error or 5xx on a read); try again later.
- ``UnknownOutcome``: an order request may or may not have executed (timeout, connection
  error, 5xx, -1007, -1006, -1000, -1001); settle it by querying the client order id, never by
  sending blindly.
- ``Rejected``: the exchange refused the request for good (-2010 insufficient balance, -1013
  filter failure, ...); ``code`` and ``message`` say why. ``CredentialsRejected`` is the subset
  that no retry can fix (-2014, -2015, -1022).
- ``OrderNotFound``: -2013, the order definitely does not exist.
- ``RateLimited``: 429/418 (or -1003/-1015); no request is sent before ``retry_after_s`` passes.
- ``ClockSkew``: -1021; the clock offset was measured again, the same request may be resent
  (reads are repeated once here; an order is resent by the caller).

Rate limits apply to every request: once Retry-After is known, requests wait for it (up to
``max_wait_s``) or fail at once with ``RateLimited``. The API key and secret never appear in
errors or logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp
from binance import AsyncClient
from binance.exceptions import BinanceAPIException, BinanceRequestException

from services.executor import metrics
from services.executor.errors import (
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    OrderNotFound,
    RateLimited,
    Rejected,
    RetryLater,
    UnknownOutcome,
)
from services.executor.exchange_account import AccountCalls, Balances
from services.executor.exchange_limits import ORDER_RECV_WINDOW_MS, LimitMakerCalls
from services.executor.exchange_lists import OrderListCalls
from shared.binance_client import resync_clock
from shared.request_weight import ENDPOINT_WEIGHTS, RECENT_ACCOUNT_S, WeightBudget
from shared.trading.sizing import SymbolFilters, format_decimal

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1001, -1006, -1007})
RATE_LIMIT_CODES = frozenset({-1003, -1015})
CREDENTIAL_CODES = frozenset({-2014, -2015, -1022})
DEFAULT_RETRY_AFTER_S = 1.0


@dataclass(frozen=True)
class SymbolInfo:
    """What the executor needs of one ``exchangeInfo`` symbol."""

    symbol: str
    base_asset: str
    quote_asset: str
    filters: SymbolFilters
    order_types: tuple[str, ...] = ()  # exchangeInfo orderTypes: which OCO stop leg the symbol takes


class Exchange(AccountCalls, LimitMakerCalls, OrderListCalls):
    """Account, trade, MARKET and LIMIT_MAKER order calls on one ``AsyncClient``."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        request_timeout_s: float = 10.0,
        max_wait_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        budget: WeightBudget | None = None,
    ) -> None:
        self.client = client
        self.budget = budget or WeightBudget(3000)
        self.client.REQUEST_TIMEOUT = request_timeout_s
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._blocked_until = 0.0
        self._symbols: dict[str, SymbolInfo] = {}
        self._account: tuple[float, Balances] | None = None
        self._open_orders: tuple[float, list[dict[str, Any]]] | None = None
        self._open_orders_read = asyncio.Lock()
        self._info_read = asyncio.Lock()

    # -- the rate-limit gate ---------------------------------------------------------------

    @property
    def blocked_for_s(self) -> float:
        """Seconds left before the next request may be made (0 when free)."""
        return max(0.0, self._blocked_until - self._clock())

    async def _wait_gate(self) -> None:
        wait = self.blocked_for_s
        if wait <= 0:
            return
        if wait > self.max_wait_s:
            raise RateLimited(f"rate limited: no request for another {wait:.1f}s", None, wait)
        logger.info("waiting %.2fs for Retry-After before the next exchange request", wait)
        await asyncio.sleep(wait)

    async def _call(
        self, what: str, request: Callable[[], Awaitable[T]], *, order: bool = False, wait: bool = True
    ) -> T:
        try:
            return await self._call_once(what, request, order, wait)
        except ClockSkew:
            if order:
                raise
            # A read is safe to repeat: once more with the offset just measured.
            return await self._call_once(what, request, order, wait)

    async def _call_once(self, what: str, request: Callable[[], Awaitable[T]], order: bool, wait: bool = True) -> T:
        if not wait and self.blocked_for_s > 0:
            # The caller waits itself, so it can check what a wait may have changed before sending.
            raise RateLimited(f"{what}: no request for another {self.blocked_for_s:.1f}s", None, self.blocked_for_s)
        await self._wait_gate()
        await self.budget.take(ENDPOINT_WEIGHTS.get(what, 1), wait=not order)  # an order never waits behind reads
        if order:
            self._order_starts()
        try:
            answer = await request()
        except BinanceAPIException as e:
            metrics.answered(what, "error", e.response, int(e.code) if e.code else None)
            raise await self._map_api_error(what, e, order) from None
        except BinanceRequestException as e:
            metrics.answered(what, "unreadable", None)
            # A 2xx whose body is not JSON: the request reached the exchange.
            cls = UnknownOutcome if order else RetryLater
            raise cls(f"{what}: unreadable response ({e.message[:200]})") from None
        except TimeoutError as e:
            metrics.answered(what, "timeout", None)
            cls = UnknownOutcome if order else RetryLater
            raise cls(f"{what}: timed out ({type(e).__name__})") from None
        except (aiohttp.ClientError, OSError) as e:
            metrics.answered(what, "connection_error", None)
            cls = UnknownOutcome if order else RetryLater
            raise cls(f"{what}: connection error ({type(e).__name__}: {e})") from None
        finally:
            if order:
                self._order_ends()
        metrics.answered(what, "ok", getattr(self.client, "response", None))
        self.budget.observe_response(getattr(self.client, "response", None))
        return answer

    async def _map_api_error(self, what: str, e: BinanceAPIException, order: bool) -> ExchangeError:
        status = int(e.status_code or 0)
        code = int(e.code) if e.code else None
        message = f"{what}: {code} {e.message}" if code else f"{what}: HTTP {status} {e.message}"
        if status in (418, 429) or code in RATE_LIMIT_CODES:
            retry_after = _retry_after(e)
            self._blocked_until = max(self._blocked_until, self._clock() + retry_after)
            return RateLimited(message, code, retry_after)
        if code == -1021:
            try:
                offset = await resync_clock(self.client)
                logger.warning("clock offset measured again after -1021: %d ms", offset)
            except Exception as resync_error:  # noqa: BLE001 - reported in the message
                message = f"{message} (clock resync failed: {type(resync_error).__name__})"
            return ClockSkew(message, code)
        if code == -2013:
            return OrderNotFound(message, code)
        if status >= 500 or code in UNKNOWN_OUTCOME_CODES:
            return (UnknownOutcome if order else RetryLater)(message, code)
        if code in CREDENTIAL_CODES or status in (401, 403):
            return CredentialsRejected(message, code)
        return Rejected(message, code)

    # -- reads -------------------------------------------------------------------------------

    async def symbol_info(self, symbol: str, refresh: bool = False) -> SymbolInfo:
        """Filters and assets of ``symbol`` from ``exchangeInfo`` (cached per symbol; symbols
        asking at the same moment, 50 reconciled together, share one read and its parsing)."""
        if not refresh and symbol in self._symbols:
            return self._symbols[symbol]
        async with self._info_read:
            if refresh or symbol not in self._symbols:
                body = await self._call("exchangeInfo", self.client.get_exchange_info)
                for item in body.get("symbols", []):
                    info = SymbolInfo(
                        symbol=item["symbol"],
                        base_asset=item["baseAsset"],
                        quote_asset=item["quoteAsset"],
                        filters=SymbolFilters.from_exchange_info(item),
                        order_types=tuple(item.get("orderTypes", ())),
                    )
                    self._symbols[info.symbol] = info
            if symbol not in self._symbols:
                raise Rejected(f"exchangeInfo: unknown symbol {symbol}", -1121)
        return self._symbols[symbol]

    async def query_order(self, symbol: str, client_order_id: str) -> dict[str, Any]:
        """``GET /api/v3/order`` by client order id; ``OrderNotFound`` when it does not exist."""
        return await self._call(
            "query order", lambda: self.client.get_order(symbol=symbol, origClientOrderId=client_order_id)
        )

    async def order_trades(self, symbol: str, exchange_order_id: int) -> list[dict[str, Any]]:
        """``myTrades`` of one order."""
        return await self._call("myTrades", lambda: self.client.get_my_trades(symbol=symbol, orderId=exchange_order_id))

    async def trades_since(self, symbol: str, from_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """``myTrades`` of ``symbol`` with trade id >= ``from_id``."""
        return await self._call(
            "myTrades", lambda: self.client.get_my_trades(symbol=symbol, fromId=from_id, limit=limit)
        )

    async def open_orders(self, symbol: str, max_age_s: float = RECENT_ACCOUNT_S) -> list[dict[str, Any]]:
        """Orders of ``symbol`` still working on the exchange, from one read of every symbol's
        (weight 80, at most ``max_age_s`` old) shared by the symbols of a reconciliation round:
        per symbol (weight 6) a start-up of 500 symbols alone would spend 3,000."""
        async with self._open_orders_read:  # symbols reconciled together share the one read
            if self._open_orders is None or self._clock() - self._open_orders[0] > max_age_s:
                rows = await self._call("openOrders all", self.client.get_open_orders)
                self._open_orders = (self._clock(), rows)
            snapshot = self._open_orders[1]
        return [row for row in snapshot if row.get("symbol") == symbol]

    async def current_candle_open(self, symbol: str, interval: str) -> int:
        """Open time (exchange ms) of the exchange's newest ``interval`` kline of ``symbol``, the one
        forming now: ``GET /api/v3/klines?limit=1``, weight 2. The exchange's own clock, ahead of
        whatever the market feed has delivered so far."""
        rows = await self._call("klines", lambda: self.client.get_klines(symbol=symbol, interval=interval, limit=1))
        if not rows:
            raise RetryLater(f"klines: no {interval} kline of {symbol} yet")
        return int(rows[-1][0])

    # -- the order -----------------------------------------------------------------------------

    async def place_market_order(
        self, symbol: str, side: str, quantity: Decimal, client_order_id: str, *, wait: bool = True
    ) -> dict[str, Any]:
        """``POST /api/v3/order`` MARKET with ``newOrderRespType=FULL`` under ``client_order_id``;
        with ``wait=False`` a closed rate-limit gate raises ``RateLimited`` instead of waiting."""
        params = {
            "symbol": symbol,
            "side": side,
            "type": "MARKET",
            "quantity": format_decimal(quantity),
            "newClientOrderId": client_order_id,
            "newOrderRespType": "FULL",
            "recvWindow": ORDER_RECV_WINDOW_MS,
        }
        snapshot, events = self._before_order()
        answer = await self._call("order", lambda: self.client.create_order(**params), order=True, wait=wait)
        info = self._symbols.get(symbol)
        if side == "BUY" and info is not None:
            self._bought(snapshot, events, info.base_asset, info.quote_asset, answer)
        return answer


def _retry_after(e: BinanceAPIException) -> float:
    headers = getattr(e.response, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
