"""Filling the store: what is missing, fetched in pieces, merged month by month.

For each symbol and UTC month of the request, the part not yet covered by the month file is cut
into pieces (a REST window of 1000 intervals, or an archive month or day). Pieces run a few at a
time; every ``flush_every`` finished pieces, at the end of the month and when the run stops for
any reason, the finished ones are merged into the month file (a candle already stored is kept,
never duplicated) and their spans added to its coverage, in one atomic write. A run killed at any
moment therefore loses at most the pieces since the last write, and the next run fetches exactly
what is still missing.

Only closed candles are stored: the REST part ends where the candle forming at the exchange's time
at the start of the run opens (``/api/v3/time``; a candle answered with a close time not before
that time is left out, and its span stays uncovered), and archive days that have not ended are
skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from research.data import archive, ranges, timespan
from research.data.errors import DownloadError
from research.data.gaps import GapReport, find_gaps
from research.data.rest import EXCHANGE_INFO_WEIGHT, PAGE_LIMIT, RestKlines, limit_per_minute
from research.data.timespan import Span
from research.data.weights import WeightGate
from shared import kline_store
from shared.candles import interval_ms

INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w")


@dataclass(frozen=True)
class Fetched:
    """What one piece brought: its candles and the spans it covers completely."""

    table: pa.Table
    covered: tuple[Span, ...]


@dataclass(frozen=True)
class Piece:
    span: Span
    fetch: Callable[[], Awaitable[Fetched]]


@dataclass(frozen=True)
class Plan:
    """One download: what to fetch, from where, into which folder."""

    symbols: tuple[str, ...]
    interval: str
    span: Span
    out: Path
    source: str = "rest"  # "rest" or "archive"
    rest_url: str = ""
    archive_url: str = archive.ARCHIVE_URL
    concurrency: int = 4
    flush_every: int = 20
    weight_share: float = 0.5
    max_wait_s: float = 300.0


@dataclass
class SeriesResult:
    """What a run did for one symbol, and what the store now holds for the request."""

    symbol: str
    interval: str
    span: Span
    new_candles: int = 0
    requests: int = 0
    stored: int = 0
    first: int | None = None
    last: int | None = None
    gaps: GapReport | None = None
    files: list[Path] = field(default_factory=list)


def _empty() -> pa.Table:
    return kline_store.SCHEMA.empty_table()


def _inside(table: pa.Table, span: Span) -> pa.Table:
    times = table.column("open_time")
    return table.filter(pc.and_(pc.greater_equal(times, span[0]), pc.less(times, span[1])))


async def fill_month(
    path: Path,
    symbol: str,
    interval: str,
    pieces: list[Piece],
    *,
    concurrency: int,
    flush_every: int,
    on_piece: Callable[[], None] | None = None,
) -> int:
    """Run ``pieces`` of one month file; returns how many candles were new."""
    existing = kline_store.read_month(path) if path.exists() else None
    if existing is not None and (existing.symbol, existing.interval) != (symbol, interval):
        raise DownloadError(f"{path}: holds {existing.symbol} {existing.interval}, not {symbol} {interval}")
    table: pa.Table | None = existing.table if existing else None
    coverage: list[Span] = list(existing.coverage) if existing else []
    done: list[Fetched] = []
    new = 0

    def flush() -> None:
        nonlocal table, coverage, new
        if not done:
            return
        before = table.num_rows if table is not None else 0
        table = kline_store.merge(table, pa.concat_tables([f.table for f in done]))
        coverage = ranges.union([*coverage, *(s for f in done for s in f.covered)])
        kline_store.write_month(path, table, symbol=symbol, interval=interval, coverage=coverage)
        new += table.num_rows - before
        done.clear()

    gate = asyncio.Semaphore(concurrency)

    async def run(piece: Piece) -> Fetched:
        async with gate:
            return await piece.fetch()

    pending = {asyncio.ensure_future(run(p)) for p in pieces}
    try:
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failures = [error for t in finished if (error := t.exception()) is not None]
            for task in finished:
                if task.exception() is None:
                    done.append(task.result())
                    if on_piece:
                        on_piece()
            if failures:
                raise failures[0]
            if len(done) >= flush_every:
                flush()
    finally:
        for task in pending:
            task.cancel()
        # What finished is kept whatever stopped the run (an error, Ctrl-C, a cancelled run).
        for task in pending:
            with contextlib.suppress(BaseException):
                await task
            if not task.cancelled() and task.exception() is None:
                done.append(task.result())
        flush()
    return new


class Downloader:
    """Runs a Plan with one HTTP session."""

    def __init__(
        self,
        plan: Plan,
        session: aiohttp.ClientSession,
        *,
        on_total: Callable[[int], None] | None = None,
        on_piece: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.session = session
        self.interval_ms = interval_ms(plan.interval)
        self.on_total = on_total
        self.on_piece = on_piece
        self.rest: RestKlines | None = None
        self.archive: archive.ArchiveFiles | None = None
        self.cutoff = plan.span[1]
        self.server_ms = 0

    async def prepare(self) -> None:
        """Check the symbols and read the exchange's clock and weight limit (REST only)."""
        if self.plan.source == "archive":
            self.archive = archive.ArchiveFiles(self.session, self.plan.archive_url)
            return
        # Until exchangeInfo tells the limit: Binance's documented 6000 per minute.
        self.rest = RestKlines(
            self.session,
            self.plan.rest_url,
            WeightGate(budget=int(6000 * self.plan.weight_share)),
            max_wait_s=self.plan.max_wait_s,
        )
        server_ms = await self.rest.server_time()
        info = await self.rest.exchange_info(self.plan.symbols)
        self.rest.gate.budget = max(EXCHANGE_INFO_WEIGHT, int(limit_per_minute(info) * self.plan.weight_share))
        self.server_ms = server_ms
        self.cutoff = min(self.plan.span[1], timespan.candle_open(server_ms, self.plan.interval, self.interval_ms))

    async def run_symbol(self, symbol: str) -> SeriesResult:
        plan = self.plan
        result = SeriesResult(symbol, plan.interval, plan.span)
        requests_before = self._requests()
        for month in timespan.months(plan.span):
            path = kline_store.month_path(plan.out, symbol, plan.interval, month)
            coverage = kline_store.read_month(path).coverage if path.exists() else ()
            wanted = ranges.intersect([timespan.month_span(month)], plan.span)[0]
            missing = ranges.subtract(wanted, coverage)
            pieces = self._pieces(symbol, month, wanted, missing)
            if pieces:
                if self.on_total:
                    self.on_total(len(pieces))
                result.new_candles += await fill_month(
                    path,
                    symbol,
                    plan.interval,
                    pieces,
                    concurrency=plan.concurrency,
                    flush_every=plan.flush_every,
                    on_piece=self.on_piece,
                )
            if path.exists():
                result.files.append(path)
        result.requests = self._requests() - requests_before
        self._check(result)
        return result

    def _requests(self) -> int:
        return (self.rest.requests if self.rest else 0) + (self.archive.requests if self.archive else 0)

    def _pieces(self, symbol: str, month: str, wanted: Span, missing: list[Span]) -> list[Piece]:
        if self.plan.source == "archive":
            return self._archive_pieces(symbol, month, wanted, missing)
        step = PAGE_LIMIT * self.interval_ms
        closed = ranges.intersect(missing, (wanted[0], self.cutoff))
        return [Piece(w, self._rest_fetch(symbol, w)) for span in closed for w in timespan.windows(span, step)]

    def _rest_fetch(self, symbol: str, window: Span) -> Callable[[], Awaitable[Fetched]]:
        async def fetch() -> Fetched:
            assert self.rest is not None
            rows = await self.rest.klines(symbol, self.plan.interval, self.interval_ms, window)
            covered = window
            forming = [int(r[0]) for r in rows if int(r[6]) >= self.server_ms]
            if forming:  # never stored: the part from it on stays missing for a later run
                covered = (window[0], min(forming))
                rows = [r for r in rows if int(r[0]) < covered[1]]
            try:
                table = kline_store.table_from_rows(rows) if rows else _empty()
            except kline_store.KlineStoreError as e:
                raise DownloadError(f"{symbol} {self.plan.interval} from {timespan.iso(window[0])}: {e}") from None
            return Fetched(table, (covered,))

        return fetch

    def _archive_pieces(self, symbol: str, month: str, wanted: Span, missing: list[Span]) -> list[Piece]:
        month_span = timespan.month_span(month)
        now_ms = int(time.time() * 1000)  # which archive files can exist yet: an I/O question
        if missing == [month_span] and month_span[1] <= now_ms:
            return [Piece(month_span, self._archive_month(symbol, month, month_span))]
        return [
            Piece(day_span, self._archive_day(symbol, day, wanted))
            for span in missing
            for day in timespan.days(span)
            if (day_span := timespan.day_span(day))[1] <= now_ms
        ]

    def _archive_month(self, symbol: str, month: str, span: Span) -> Callable[[], Awaitable[Fetched]]:
        async def fetch() -> Fetched:
            assert self.archive is not None
            table = await self.archive.klines(archive.monthly_path(symbol, self.plan.interval, month))
            if table is not None:
                return Fetched(_inside(table, span), (span,))
            # Not published as a month (yet): the days of it that are.
            days = [d for d in timespan.days(span) if timespan.day_span(d)[1] <= int(time.time() * 1000)]
            parts = await asyncio.gather(*(self._archive_day(symbol, d, span)() for d in days))
            tables = [p.table for p in parts if p.table.num_rows]
            return Fetched(pa.concat_tables(tables) if tables else _empty(), tuple(s for p in parts for s in p.covered))

        return fetch

    def _archive_day(self, symbol: str, day: date, wanted: Span) -> Callable[[], Awaitable[Fetched]]:
        async def fetch() -> Fetched:
            assert self.archive is not None
            table = await self.archive.klines(archive.daily_path(symbol, self.plan.interval, day))
            span = ranges.intersect([timespan.day_span(day)], wanted)[0]
            if table is None:
                return Fetched(_empty(), ())
            return Fetched(_inside(table, span), (span,))

        return fetch

    def _check(self, result: SeriesResult) -> None:
        """Gap check of what the store holds for the request, from the files themselves."""
        months = [kline_store.read_month(p) for p in result.files]
        tables = [_inside(m.table, self.plan.span) for m in months]
        times = (
            np.concatenate([t.column("open_time").to_numpy() for t in tables])
            if tables
            else np.empty(0, dtype=np.int64)
        )
        result.stored = len(times)
        if len(times):
            result.first, result.last = int(times[0]), int(times[-1])
        covered = [s for m in months for s in m.coverage]
        result.gaps = find_gaps(times, self.interval_ms, covered, self.plan.span)


async def run(
    plan: Plan, *, on_total: Callable[[int], None] | None = None, on_piece: Callable[[], None] | None = None
) -> list[SeriesResult]:
    """Download every symbol of ``plan`` in turn; raises DownloadError (what was stored stays)."""
    timeout = aiohttp.ClientTimeout(total=60, connect=10)
    async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "binance-stream-bot"}) as session:
        downloader = Downloader(plan, session, on_total=on_total, on_piece=on_piece)
        await downloader.prepare()
        results = [await downloader.run_symbol(symbol) for symbol in plan.symbols]
    if plan.source == "archive":
        for result in results:
            if result.stored == 0 and result.requests and result.gaps and result.gaps.not_covered:
                raise DownloadError(
                    f"{result.symbol} {plan.interval}: the archive has no file for this period "
                    "(is the symbol spelled as Binance lists it, e.g. BTCUSDT?)"
                )
    return results
