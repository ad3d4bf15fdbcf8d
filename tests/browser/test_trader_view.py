"""The trader's view on a live replay at speed 60: simulator, market_data, strategy, executor and
api as real processes, the dashboard in headless Chromium.

Checks what a trader reads: the profit summary is the api's `/api/profit`, every trade in the
chart's range has its markers, a trade row moves the chart to it, the REPLAY badge and the time
zone are shown, no number has more decimals than the symbol's precision, the page renders from
events (no refetch on order events), the phone layout keeps the result column on screen, and the
"cannot be reached" notice clears itself when the api is back.
"""

from __future__ import annotations

import itertools
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import ARTIFACTS
from tests.pipeline.ledger import BUNDLED
from tests.support.stack import Stack, prepare_data, start_stack

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Short EMAs, no trend filter and tight exits: several closed trades within a minute of replay.
TRADING = {
    "STOP_LOSS_PERCENTAGE": "0.002",
    "TAKE_PROFIT_PERCENTAGE": "0.004",
    "USE_EMA_FILTER": "false",
    "EMA_SHORT_PERIOD": "3",
    "EMA_LONG_PERIOD": "8",
    "SIGNAL_MAX_LAG_CANDLES": "3",
}
# Figures of /api/profit that change only when a trade opens or closes (not with each tick).
SETTLED = [
    "realised_quote",
    "realised_pct",
    "fees_quote",
    "trades",
    "win_rate_pct",
    "profit_factor",
    "expectancy_quote",
    "avg_duration_ms",
    "max_duration_ms",
    "max_drawdown_quote",
    "max_drawdown_pct",
]
NUMBER = re.compile(r"\d[\d,]*\.(\d+)")
# The right edge of the trades panel's Result header, 0 while the panel has none.
RESULT_HEADER_RIGHT = """(() => {
    const header = [...document.querySelectorAll('[data-testid=trades] th')].find((n) => n.textContent.includes('Result'));
    return header ? header.getBoundingClientRect().right : 0; })()"""


async def get(page: Any, stack: Stack, path: str) -> Any:
    """A GET with the page's session cookie."""
    response = await page.request.get(f"{stack.api_url}{path}")
    assert response.ok, f"{path}: {response.status}"
    return await response.json()


async def shown_figures(page: Any) -> dict[str, str]:
    return await page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('[data-testid=profit-summary] [data-field]')]
        .map((node) => [node.dataset.field, node.textContent]))""")


def as_number(text: str) -> float | None:
    """A figure as shown ("+1,234.50", "52.00 %", "3 h 05 min" is not a number) back to a number."""
    cleaned = text.replace(",", "").replace("%", "").replace("+", "").strip()
    try:
        return float(cleaned)
    except ValueError:
        return None


async def test_trader_view_on_a_replay_at_speed_60(browser: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    data = prepare_data(tmp_path, BUNDLED["BTCUSDT"], "BTCUSDT", 2500, 400)
    stack = start_stack(
        tmp_path / "stack",
        data=[data],
        symbols=["BTCUSDT"],
        speed=60,
        history=70,
        services=("market_data", "strategy", "executor", "api"),
        extra_env=TRADING,
    )
    try:
        stack.wait_http(f"{stack.api_url}/api/health", timeout=60)
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(stack.api_url)
        await page.get_by_label("Password").fill(stack.password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("status")).to_be_visible()

        # One clock: the replay is announced with its speed, times are market time in a shown zone.
        await expect(page.get_by_test_id("replay-badge")).to_have_text(re.compile(r"REPLAY ×\d"), timeout=30_000)
        await expect(page.get_by_test_id("zone-label")).to_have_text("UTC")
        clock = page.get_by_test_id("market-clock")
        await expect(clock).to_have_text(re.compile(r"^market \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"))
        first_ms = int(await clock.get_attribute("data-market-ms") or 0)
        await page.wait_for_timeout(2000)
        assert (
            int(await clock.get_attribute("data-market-ms") or 0) - first_ms >= 60_000
        )  # 2 s of wall clock, 2 min of market
        await page.get_by_test_id("timezone").select_option("local")
        await expect(page.get_by_test_id("zone-label")).to_have_text("Europe/Paris (UTC+01:00)")  # the browser's zone
        shown_ms, shown = await page.evaluate(
            "(() => { const n = document.querySelector('#market-clock'); return [Number(n.dataset.marketMs), n.textContent]; })()"
        )
        assert datetime.fromtimestamp(shown_ms / 1000, ZoneInfo("Europe/Paris")).strftime("%Y-%m-%d %H:%M") in shown
        assert await page.evaluate("localStorage.getItem('dashboard.timezone')") == "local"
        await page.get_by_test_id("timezone").select_option("UTC")
        await expect(page.get_by_test_id("zone-label")).to_have_text("UTC")

        # From here on the page must render from events: no refetch of these routes.
        refetched: list[str] = []
        watched = re.compile(r"/api/(orders|status|candles|trades|profit)(\?|$)")
        page.on("request", lambda request: refetched.append(request.url) if watched.search(request.url) else None)

        # Trades happen; the trades panel follows the feed.
        rows = page.get_by_test_id("trades").locator("tr[data-trade-id]")
        for _ in range(240):
            if await rows.count() >= 3:
                break
            await page.wait_for_timeout(500)
        assert await rows.count() >= 3, "fewer than 3 trades after 2 minutes of replay"
        trades = (await get(page, stack, "/api/trades?symbol=BTCUSDT&status=all&limit=500"))["items"]
        closed = [t for t in trades if t["status"] == "CLOSED"]
        assert len(closed) >= 2
        assert refetched == [], f"refetched on events: {refetched}"

        # The profit summary is the api's figures.
        for _ in range(20):
            api_figures = (await get(page, stack, "/api/profit"))["total"]
            shown = await shown_figures(page)
            numbers = {key: (as_number(shown[key]) if key in shown else "missing") for key in SETTLED}
            expected = {key: None if api_figures[key] is None else float(api_figures[key]) for key in SETTLED}
            for key in ("avg_duration_ms", "max_duration_ms"):  # shown as a duration, compared as text below
                numbers.pop(key), expected.pop(key)
            if numbers == expected:
                break
            await page.wait_for_timeout(500)
        assert numbers == expected
        assert int(api_figures["trades"]) >= 2

        # Markers: an entry marker for every trade in the chart's range, an exit marker for every closed one.
        # (the trades the api knows now; a trade opened a moment ago gets its markers from its event)
        known = (await get(page, stack, "/api/trades?symbol=BTCUSDT&status=all&limit=500"))["items"]
        for _ in range(20):
            markers = await page.evaluate(
                "dashboard.chart.overlays.plugin.markers().map((m) => ({time: m.time, kind: m.kind, id: m.tradeId}))"
            )
            first_candle = await page.evaluate("dashboard.chart.rows[0].time_ms")
            entries = {m["id"] for m in markers if m["kind"] == "entry"}
            exits = {m["id"] for m in markers if m["kind"] == "exit"}
            in_range = [t for t in known if t["entry_time_ms"] >= first_candle]
            wanted_exits = {str(t["id"]) for t in in_range if t["status"] == "CLOSED"}
            if {str(t["id"]) for t in in_range} <= entries and wanted_exits <= exits:
                break
            await page.wait_for_timeout(250)
        assert in_range and {str(t["id"]) for t in in_range} <= entries
        assert wanted_exits <= exits

        # A trade row moves the chart to that trade and opens its orders, fills and entry indicators.
        oldest = min(closed, key=lambda t: t["entry_time_ms"])
        # Show 8 bars as far as possible from the trade's entry.
        await page.evaluate(
            """(entryMs) => { const rows = dashboard.chart.rows, n = rows.length;
            const at = rows.findIndex((r) => r.time_ms + 60000 > entryMs);
            const from = at > n / 2 ? 0 : n - 8;
            dashboard.chart.chart.timeScale().setVisibleLogicalRange({from, to: from + 8}); }""",
            oldest["entry_time_ms"],
        )
        await page.wait_for_timeout(300)  # the chart applies a range on its next frame
        visible = await page.evaluate("dashboard.chart.chart.timeScale().getVisibleRange()")
        entry_second = oldest["entry_time_ms"] // 1000
        assert not visible["from"] <= entry_second <= visible["to"]
        row = page.get_by_test_id("trades").locator(f"tr[data-trade-id='{oldest['id']}']")
        if not await row.count():  # older than the first page: page back to it
            await page.locator("#trades-next").click()
        await row.click()
        await page.wait_for_timeout(300)
        visible = await page.evaluate("dashboard.chart.chart.timeScale().getVisibleRange()")
        assert visible["from"] <= entry_second <= visible["to"] + 60
        detail = page.get_by_test_id("trade-detail")
        await expect(detail).to_contain_text(f"Trade #{oldest['id']}")
        await expect(detail).to_contain_text("Fills")
        await expect(detail.get_by_test_id("entry-indicators")).to_contain_text("RSI")

        # Timeframe switch: 5m candles aggregated from the 1m ones.
        await page.get_by_test_id("timeframes").get_by_role("button", name="5m", exact=True).click()
        await expect(page.get_by_test_id("chart")).to_have_attribute(
            "aria-label", re.compile(r"BTCUSDT 5m candle chart")
        )
        spacing = await page.evaluate("dashboard.chart.rows.slice(-3).map((r) => r.time_ms)")
        assert all((b - a) == 300_000 for a, b in itertools.pairwise(spacing))
        await page.get_by_test_id("timeframes").get_by_role("button", name="1m", exact=True).click()

        # No number on the page has more decimals than the symbol's precision (service log text aside).
        symbols = (await get(page, stack, "/api/symbols"))["symbols"]
        allowed = max(max(s["price_decimals"], s["quantity_decimals"], s["quote_decimals"]) for s in symbols)
        texts = await page.evaluate("""() => { const walker = document.createTreeWalker(document.querySelector('#app'), NodeFilter.SHOW_TEXT);
            const out = []; for (let n = walker.nextNode(); n; n = walker.nextNode()) if (!n.parentElement.closest('#logs')) out.push(n.textContent);
            return out; }""")
        text = "\n".join(texts)
        widest = max((len(m.group(1)) for m in NUMBER.finditer(text)), default=0)
        assert widest <= allowed, [m.group(0) for m in NUMBER.finditer(text) if len(m.group(1)) > allowed]

        await page.evaluate("window.scrollTo(0, 0)")
        await page.wait_for_timeout(500)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard-trader.png"), full_page=True)

        # Phone: no sideways scrolling, the result column of trades and orders on screen.
        phone = await browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            storage_state=await context.storage_state(),
        )
        phone_page = await phone.new_page()
        await phone_page.goto(stack.api_url)
        await expect(phone_page.get_by_test_id("trades").locator("tr[data-trade-id]").first).to_be_visible()
        assert await phone_page.evaluate("document.documentElement.scrollWidth") <= 390
        for panel in ("trades", "orders"):
            wrap = await phone_page.evaluate(
                f"(() => {{ const n = document.querySelector('[data-testid={panel}]'); return [n.scrollWidth, n.clientWidth]; }})()"
            )
            assert wrap[0] <= wrap[1], f"{panel} scrolls sideways: {wrap}"
        result = phone_page.get_by_test_id("trades").locator("th", has_text="Result")
        await expect(result).to_be_visible()
        # Measured in one script run: the panel re-renders on every trade event of the replay, and a
        # header found in one call can be detached (a zero rectangle) by the time a second call measures it.
        right = 0.0
        for _ in range(20):
            right = await phone_page.evaluate(RESULT_HEADER_RIGHT)
            if right > 0:
                break
            await phone_page.wait_for_timeout(100)
        assert 0 < right <= 390
        await phone_page.evaluate("window.scrollTo(0, 0)")
        await phone_page.wait_for_timeout(300)
        await phone_page.screenshot(path=str(ARTIFACTS / "dashboard-trader-phone.png"))
        await phone_page.locator(".trades-card").screenshot(path=str(ARTIFACTS / "dashboard-trader-phone-trades.png"))
        await phone.close()

        # The api goes away: a notice says so, and clears itself once the api answers again.
        stack.kill("api")
        await expect(page.get_by_test_id("offline")).to_be_visible(timeout=15_000)
        stack.start("api")
        await expect(page.get_by_test_id("offline")).to_be_hidden(timeout=30_000)
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=30_000)

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "dashboard-trader.png", SCREENSHOTS / "dashboard-trader.png")
        for name in ("dashboard-trader-phone.png", "dashboard-trader-phone-trades.png"):
            shutil.copyfile(ARTIFACTS / name, SCREENSHOTS / name)
        await context.close()
        assert errors == []
    finally:
        stack.stop_all()
