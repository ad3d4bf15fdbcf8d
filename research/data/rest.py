"""Binance's public REST market data: server time, exchange info and klines, paged and paced.

``GET /api/v3/klines`` (weight 2) answers at most 1000 candles, oldest first from ``startTime``,
none opened after ``endTime``. A window of 1000 intervals therefore fits one request whatever the
gaps in it; a full answer is followed from its last open time on, so nothing depends on how the
exchange aligns its candles. A 429 or 418 holds every request back for its ``Retry-After``; a 5xx,
a timeout or a dropped connection is retried with a growing pause (a GET changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from research.data.errors import DownloadError, RateLimitStop
from research.data.timespan import Span, iso
from research.data.weights import WeightGate

log = logging.getLogger("research.data")
PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
TIME_WEIGHT = 1
EXCHANGE_INFO_WEIGHT = 20
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


class RestKlines:
    """Paced, retried GETs against one REST base URL."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        gate: WeightGate,
        *,
        max_wait_s: float,
        attempts: int = 5,
        backoff_s: float = 0.5,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.gate = gate
        self.max_wait_s = max_wait_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.requests = 0

    async def get(self, path: str, params: Mapping[str, str | int], weight: int) -> Any:
        """The decoded JSON answer of ``GET path``; raises DownloadError when it cannot be had."""
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(min(self.backoff_s * 2 ** (attempt - 1), 30.0))
            await self.gate.acquire(weight)
            used: str | None = None
            try:
                self.requests += 1
                async with self.session.get(self.base_url + path, params=dict(params)) as response:
                    used = response.headers.get(WEIGHT_HEADER)
                    status, body = response.status, await response.read()
                    retry_after = response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = f"{type(e).__name__}: {e}".rstrip(": ")
                log.warning("GET %s failed (%s), trying again", path, problem)
                continue
            finally:
                self.gate.release(weight, used)
            if status in (418, 429):
                seconds = _seconds(retry_after)
                what = "banned this IP" if status == 418 else "asked to slow down"
                if seconds > self.max_wait_s:
                    raise RateLimitStop(
                        f"Binance {what} for {seconds:.0f} s (HTTP {status}, Retry-After), longer "
                        f"than --max-wait {self.max_wait_s:.0f} s: stopped. What was fetched is kept; "
                        "run the same command again later to fetch the rest"
                    )
                log.warning("HTTP %s from Binance: waiting %g s (Retry-After)", status, seconds)
                self.gate.pause(seconds)
                problem = f"HTTP {status}"
                continue
            if status >= 500:
                problem = f"HTTP {status}"
                log.warning("GET %s answered HTTP %s, trying again", path, status)
                continue
            if status != 200:
                raise DownloadError(f"GET {path} {_describe(params)}: {_binance_error(status, body)}")
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                problem = "an answer that is not JSON"
        raise DownloadError(f"GET {path} {_describe(params)}: no answer after {self.attempts} attempts ({problem})")

    async def server_time(self) -> int:
        """The exchange's clock, epoch ms; also sets the gate's clock offset."""
        answer = await self.get("/api/v3/time", {}, TIME_WEIGHT)
        server_ms = int(answer["serverTime"])
        self.gate.sync(server_ms / 1000)
        return server_ms

    async def exchange_info(self, symbols: Sequence[str]) -> dict[str, Any]:
        """``exchangeInfo`` of ``symbols``; an unknown one is an error naming ``--symbols``."""
        try:
            return dict(
                await self.get(
                    "/api/v3/exchangeInfo", {"symbols": orjson.dumps(list(symbols)).decode()}, EXCHANGE_INFO_WEIGHT
                )
            )
        except DownloadError as e:
            if "-1121" in str(e):
                raise DownloadError(
                    f"--symbols: the exchange does not list one of {', '.join(symbols)} ({e})"
                ) from None
            raise

    async def klines(self, symbol: str, interval: str, interval_ms: int, span: Span) -> list[list[Any]]:
        """Every kline of ``symbol`` opened inside ``span``, oldest first."""
        rows: list[list[Any]] = []
        start, end = span
        while start < end:
            page = await self.get(
                "/api/v3/klines",
                {"symbol": symbol, "interval": interval, "startTime": start, "endTime": end - 1, "limit": PAGE_LIMIT},
                KLINES_WEIGHT,
            )
            if not isinstance(page, list) or any(not isinstance(r, list) or len(r) < 11 for r in page):
                raise DownloadError(f"{symbol} {interval} from {iso(start)}: klines answer is not a list of kline rows")
            rows += [r for r in page if start <= int(r[0]) < end]
            last = int(page[-1][0]) if page else start
            # A short page is the end; after a full one the next candle opens an interval later at the earliest.
            if len(page) < PAGE_LIMIT or last + interval_ms >= end:
                break
            start = last + 1
        return rows


def limit_per_minute(info: Mapping[str, Any]) -> int:
    """The REQUEST_WEIGHT limit per minute listed in ``exchangeInfo.rateLimits``."""
    for limit in info.get("rateLimits", []):
        if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
            return int(limit["limit"]) // int(limit.get("intervalNum", 1))
    raise DownloadError("exchangeInfo lists no REQUEST_WEIGHT limit per minute")


def _seconds(retry_after: str | None) -> float:
    try:
        return max(0.0, float(retry_after)) if retry_after is not None else 60.0
    except ValueError:
        return 60.0


def _describe(params: Mapping[str, str | int]) -> str:
    shown = {k: v for k, v in params.items() if k in ("symbol", "interval", "symbols")}
    if "startTime" in params:
        shown["from"] = iso(int(params["startTime"]))
    return " ".join(f"{k}={v}" for k, v in shown.items())


def _binance_error(status: int, body: bytes) -> str:
    try:
        error = orjson.loads(body)
        return f"HTTP {status}, Binance error {error['code']}: {error['msg']}"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"HTTP {status}: {body[:200].decode(errors='replace')}"
