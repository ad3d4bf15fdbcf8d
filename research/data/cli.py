"""Command line: ``python -m research.data --symbols BTCUSDT,ETHUSDT --interval 1m --start 2024-01-01 [...]``.

Exit status 0 when everything asked for is stored (gaps the exchange has are reported, not
errors), 1 when the download stopped (what was fetched until then is kept; the same command
fetches the rest), 2 on a bad argument (nothing is fetched).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from tqdm import tqdm

from research.data import archive, download
from research.data.errors import DownloadError
from research.data.timespan import TimeError, iso, parse_time
from shared.candles import interval_ms
from shared.kline_store import KlineStoreError
from shared.settings import BINANCE_URLS

# Binance's endpoint for public market data only (rest-api.md, General API Information).
LIVE_MARKET_DATA_URL = "https://data-api.binance.vision"
_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")


class SourceSettings(BaseSettings):
    """Where the candles come from: ``BINANCE_ENV`` picks the REST base URL, as for every service."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    binance_env: Literal["sim", "testnet", "live"] = Field("sim", alias="BINANCE_ENV")
    sim_url: str = Field("http://127.0.0.1:9100", alias="SIM_URL")
    archive_url: str = Field(archive.ARCHIVE_URL, alias="BINANCE_ARCHIVE_URL")

    def rest_url(self) -> str:
        if self.binance_env == "sim":
            return self.sim_url.rstrip("/")
        if self.binance_env == "live":
            return LIVE_MARKET_DATA_URL
        return BINANCE_URLS[self.binance_env]["rest"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m research.data", description="Download Binance spot klines into the Parquet candle store."
    )
    parser.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    parser.add_argument("--interval", default="1m", help=f"one of {', '.join(download.INTERVALS)} (default 1m)")
    parser.add_argument("--start", required=True, help="first open time: 2024-01-01 or 2024-01-01T12:00:00Z (UTC)")
    parser.add_argument("--end", help="open times before this (excluded); default: now")
    parser.add_argument("--out", type=Path, default=Path("data"), help="store folder (default data/)")
    parser.add_argument(
        "--source",
        choices=("rest", "archive"),
        default="rest",
        help="rest: /api/v3/klines of BINANCE_ENV; archive: the public data archive's zips",
    )
    parser.add_argument("--rest-url", help="REST base URL instead of the one BINANCE_ENV picks")
    parser.add_argument("--archive-url", help="archive base URL (default $BINANCE_ARCHIVE_URL or data.binance.vision)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    parser.add_argument(
        "--weight-share",
        type=float,
        default=0.5,
        help="share of the exchange's weight limit per minute this run may use (default 0.5)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=300.0,
        help="longest Retry-After to wait for, in seconds; a longer one stops the run (default 300)",
    )
    parser.add_argument(
        "--flush-every", type=int, default=20, help="write the month file after this many fetched pieces (default 20)"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def _fail(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def make_plan(args: argparse.Namespace, settings: SourceSettings) -> download.Plan:
    """The Plan the arguments describe; ValueError names the bad option."""
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in args.symbols.split(",") if s.strip()))
    bad = [s for s in symbols if not _SYMBOL.match(s)]
    if not symbols or bad:
        raise ValueError(f"--symbols: expected names like BTCUSDT,ETHUSDT, got {args.symbols!r}")
    if args.interval not in download.INTERVALS:
        raise ValueError(f"--interval: must be one of {', '.join(download.INTERVALS)}")
    start = parse_time(args.start, "--start")
    end = parse_time(args.end, "--end") if args.end else int(time.time()) * 1000
    if end <= start:
        raise ValueError(f"--end ({iso(end)}) must be after --start ({iso(start)})")
    if not 1 <= args.concurrency <= 32:
        raise ValueError("--concurrency: between 1 and 32")
    if not 0 < args.weight_share <= 1:
        raise ValueError("--weight-share: above 0, at most 1")
    if args.max_wait < 0 or args.flush_every < 1:
        raise ValueError("--max-wait: 0 or more seconds; --flush-every: 1 or more")
    return download.Plan(
        symbols=symbols,
        interval=args.interval,
        span=(start, end),
        out=args.out,
        source=args.source,
        rest_url=args.rest_url or settings.rest_url(),
        archive_url=args.archive_url or settings.archive_url,
        concurrency=args.concurrency,
        flush_every=args.flush_every,
        weight_share=args.weight_share,
        max_wait_s=args.max_wait,
    )


def describe(result: download.SeriesResult, interval_ms: int) -> list[str]:
    """What the store holds for one symbol, in plain words."""
    head = (
        f"{result.symbol} {result.interval} {iso(result.span[0])} .. {iso(result.span[1])}: "
        f"{result.stored:,} candles stored ({result.new_candles:,} new, {result.requests:,} requests)"
    )
    lines = [head]
    report = result.gaps
    if report is None:
        return lines
    if report.gaps:
        lines.append(
            f"  {len(report.gaps)} gap(s), {report.missing_candles(interval_ms):,} candles the exchange does not have:"
        )
        lines += [f"    {iso(a)} .. {iso(b)} ({(b - a) // interval_ms:,} missing)" for a, b in report.gaps[:20]]
        if len(report.gaps) > 20:
            lines.append(f"    ... {len(report.gaps) - 20} more")
    else:
        lines.append("  no gaps")
    if report.before_first:
        lines.append(f"  no candles before {iso(report.before_first[1])} (first candle)")
    if report.after_last:
        lines.append(f"  no candles after {iso(report.after_last[0] - interval_ms)} (last candle)")
    for a, b in report.not_covered:
        lines.append(f"  not fetched: {iso(a)} .. {iso(b)} (not closed yet, or not in the archive yet)")
    return lines


async def until_signalled[T](work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; SIGINT or SIGTERM cancel it, so the pieces already fetched are written first."""
    loop, task = asyncio.get_running_loop(), asyncio.ensure_future(work)
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, task.cancel)
    try:
        return await task
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        settings = SourceSettings()
        plan = make_plan(args, settings)
    except ValidationError as e:
        return _fail("; ".join(f"{err['loc'][0] if err['loc'] else '?'}: {err['msg']}" for err in e.errors()))
    except (TimeError, ValueError) as e:
        return _fail(str(e))
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    source = plan.rest_url if plan.source == "rest" else plan.archive_url
    if not args.quiet:
        print(
            f"{', '.join(plan.symbols)} {plan.interval} {iso(plan.span[0])} .. {iso(plan.span[1])} "
            f"from {source} ({plan.source}) into {plan.out}",
            file=out,
            flush=True,
        )
    with tqdm(total=0, desc="download", unit="piece", delay=1.0, disable=args.quiet, file=sys.stderr) as bar:

        def grow(count: int) -> None:
            bar.total += count
            bar.refresh()

        try:
            results = asyncio.run(until_signalled(download.run(plan, on_total=grow, on_piece=lambda: bar.update(1))))
        except (DownloadError, KlineStoreError) as e:
            return _fail(str(e), 1)
        except (KeyboardInterrupt, asyncio.CancelledError):
            return _fail("interrupted: what was fetched is kept; run the same command to fetch the rest", 1)
    if not args.quiet:
        for result in results:
            print("\n".join(describe(result, interval_ms(plan.interval))), file=out)
        folders = sorted({str(p.parent.parent) for r in results for p in r.files})
        for folder in folders:
            print(f"stored in {folder}", file=out)
    return 0
