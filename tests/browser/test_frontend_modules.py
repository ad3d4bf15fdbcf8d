"""The dashboard's pure modules (numbers, times, candle aggregation, market clock) run in the
real browser, imported the way the page imports them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import ApiProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]


async def run(page: Any, body: str) -> Any:
    return await page.evaluate(f"""async () => {{
        const format = await import('/js/format.js');
        const clock = await import('/js/clock.js');
        const candles = await import('/js/candles.js');
        {body}
    }}""")


async def test_numbers_times_candles_and_the_market_clock(api_process: ApiProcess, browser: Any) -> None:
    context = await browser.new_context(timezone_id="America/New_York")
    page = await context.new_page()
    await page.goto(api_process.url)

    numbers = await run(
        page,
        """
        format.setSymbolInfo('BTCUSDT', {base_asset: 'BTC', quote_asset: 'USDT', tick_size: '0.01000000', step_size: '0.00001000', quote_decimals: 2});
        format.setSymbolInfo('SHIBUSDT', {base_asset: 'SHIB', quote_asset: 'USDT', tick_size: '0.00000001', step_size: '1.00000000', quote_decimals: 2});
        format.selectSymbol('BTCUSDT');
        return {
          price: format.fmtPrice('105000.5'), shib: format.fmtPrice('0.00001234', 'SHIBUSDT'), qty: format.fmtQty('1234.5', 'SHIBUSDT'),
          btc: format.fmtQty('0.005529'), quote: format.fmtQuote('-982.456'), signed: format.fmtSignedQuote('1234.5'),
          pct: format.fmtPct('-0.4071'), plus: format.fmtPct('2'), asset: [format.fmtAsset('9423.1699', 'USDT'), format.fmtAsset('0.005521', 'BTC')],
          none: format.fmtPrice(null), duration: [format.fmtDuration(45000), format.fmtDuration(720000), format.fmtDuration(11100000)],
          decimals: [format.decimalsOf('0.01000000'), format.decimalsOf('1.00000000'), format.decimalsOf('x')],
        };""",
    )
    assert numbers == {
        "price": "105,000.50",
        "shib": "0.00001234",
        "qty": "1,234",
        "btc": "0.00552",
        "quote": "-982.46",
        "signed": "+1,234.50",
        "pct": "-0.41 %",
        "plus": "+2.00 %",
        "asset": ["9,423.17", "0.00552"],
        "none": "—",
        "duration": ["45 s", "12 min", "3 h 05 min"],
        "decimals": [2, 0, None],
    }

    times = await run(
        page,
        """
        const ms = Date.UTC(2025, 4, 20, 23, 30, 5);
        const utc = clock.fmtTime(ms);
        clock.setTimeZone('local');
        const local = [clock.fmtTime(ms), clock.zoneLabel(), localStorage.getItem('dashboard.timezone'), clock.fromChartTime(clock.chartTime(ms)) === Math.floor(ms / 1000) * 1000];
        clock.setTimeZone('UTC');
        return {utc, local};""",
    )
    assert times == {
        "utc": "2025-05-20 23:30:05",
        "local": ["2025-05-20 19:30:05", "America/New_York (UTC-05:00)", "local", True],
    }

    aggregated = await run(
        page,
        """
        const m = 60000, t0 = Date.UTC(2025, 4, 20, 10, 3);
        const rows = [0, 1, 2, 3, 4, 5].map((i) => ({time_ms: t0 + i * m, open: String(100 + i), high: String(110 + i), low: String(90 - i),
          close: String(101 + i), volume: '2', closed: i < 5, ema_short: i, ema_long: null, ema_filter: null, rsi: 50 + i}));
        const five = candles.aggregate(rows, m, 5 * m);
        const tail = new candles.BucketTail(m, 5 * m, rows.slice(2));
        const same = tail.fold({time_ms: t0 + 5 * m, open: '105', high: '130', low: '80', close: '120', volume: '3', closed: false});
        const next = tail.fold({time_ms: t0 + 7 * m, open: '121', high: '122', low: '119', close: '121.5', volume: '1', closed: false});
        const older = tail.fold({time_ms: t0, open: '1', high: '1', low: '1', close: '1', volume: '1', closed: true});
        return {five: five.map((r) => [r.time_ms - t0, r.open, r.high, r.low, r.close, r.volume, r.closed, r.ema_short, r.rsi]),
                same: [same.time_ms - t0, same.open, same.high, same.low, same.close, same.volume], next: [next.time_ms - t0, next.open, next.volume], older};""",
    )
    assert aggregated == {
        # 10:03-10:04 close the 10:00 bucket (partial, closed); 10:05-10:08 are the 10:05 bucket, still forming.
        "five": [[-180000, 100, 111, 89, 102, 4, True, 1, 51], [120000, 102, 115, 85, 106, 8, False, 5, 55]],
        "same": [120000, 102, 130, 80, 120, 9],
        "next": [420000, 121, 1],
        "older": None,
    }

    speed = await run(
        page,
        """
        const c = new clock.MarketClock();
        const wall = 1_000_000, market = Date.UTC(2025, 4, 21, 18, 0);
        for (let i = 0; i <= 10; i++) c.observe(market + i * 60000, wall + i * 1000);
        const live = new clock.MarketClock();
        for (let i = 0; i <= 10; i++) live.observe(market + i * 1000, wall + i * 1000);
        return {speed: c.shownSpeed, replaying: c.replaying, now: c.now(wall + 10500) - (market + 600000), live: [live.shownSpeed, live.replaying]};""",
    )
    assert speed == {"speed": 60, "replaying": True, "now": 30000, "live": [1, False]}
    await context.close()
