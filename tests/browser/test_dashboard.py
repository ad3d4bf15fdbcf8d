"""The dashboard in headless Chromium against the api process, fed through Redis like the services do."""

from __future__ import annotations

import random
import re
import shutil
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from shared import streams
from shared.bus import publish
from shared.codec import dumps, loads
from shared.events import (
    Balances,
    Condition,
    Decision,
    ExecutorAlert,
    Kline,
    LogRecord,
    OrderUpdate,
    Signal,
    Ticker,
    make_event,
    now_ms,
)
from shared.store.database import open_engine
from shared.store.models import Order, Position
from tests.browser.conftest import ARTIFACTS, ApiProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
MINUTE = 60_000
SCREENSHOTS = ARTIFACTS.parent.parent / "docs" / "screenshots"


def ema(values: list[float], period: int) -> list[float | None]:
    out: list[float | None] = []
    k, current = 2 / (period + 1), None
    for index, value in enumerate(values):
        current = value if current is None else value * k + current * (1 - k)
        out.append(current if index >= period - 1 else None)
    return out


def rsi(values: list[float], period: int = 14) -> list[float | None]:
    out: list[float | None] = [None]
    gain = loss = 0.0
    for index in range(1, len(values)):
        change = values[index] - values[index - 1]
        up, down = max(change, 0.0), max(-change, 0.0)
        gain, loss = (gain * (period - 1) + up) / period, (loss * (period - 1) + down) / period
        out.append(100 - 100 / (1 + gain / loss) if index >= period and loss else None)
    return out


async def seed_market(redis: Redis, database_url: str) -> dict[str, Any]:
    """What market_data, strategy and executor would have written after running a while."""
    rng = random.Random(7)
    last_open = now_ms() // MINUTE * MINUTE - MINUTE
    count, price, closes, candles = 120, 104_800.0, [], []
    for index in range(count):
        open_ = price
        price = max(1000.0, price + rng.gauss(8, 60))
        high, low = max(open_, price) + abs(rng.gauss(0, 25)), min(open_, price) - abs(rng.gauss(0, 25))
        candles.append((last_open - (count - 1 - index) * MINUTE, open_, high, low, price))
        closes.append(price)
    short, long_, filt, strength = ema(closes, 9), ema(closes, 21), ema(closes, 50), rsi(closes)
    for index, (open_ms, o, h, low, c) in enumerate(candles):
        kline = Kline(
            symbol="BTCUSDT",
            interval="1m",
            open_time_ms=open_ms,
            close_time_ms=open_ms + MINUTE - 1,
            open=Decimal(f"{o:.2f}"),
            high=Decimal(f"{h:.2f}"),
            low=Decimal(f"{low:.2f}"),
            close=Decimal(f"{c:.2f}"),
            volume=Decimal(f"{abs(rng.gauss(12, 4)):.4f}"),
            closed=True,
        )
        await publish(redis, streams.kline_stream("BTCUSDT"), make_event(kline, "market_data", open_ms + MINUTE - 1))
        indicators = {
            "ema_short": short[index],
            "ema_long": long_[index],
            "ema_filter": filt[index],
            "rsi": strength[index],
            "volume_avg": 12.0,
            "atr": 40.0,
        }
        warm = filt[index] is not None
        entry = index == 95
        conditions = [
            Condition(name="ema_cross_up", passed=entry, value=short[index], threshold=long_[index]),
            Condition(
                name="rsi_below_overbought", passed=(strength[index] or 0) < 75, value=strength[index], threshold=75.0
            ),
            Condition(
                name="close_above_ema_filter",
                passed=bool(filt[index]) and c > (filt[index] or 0),
                value=c,
                threshold=filt[index],
            ),
        ]
        await publish(
            redis,
            streams.DECISIONS,
            make_event(
                Decision(
                    symbol="BTCUSDT",
                    interval="1m",
                    candle_open_time_ms=open_ms,
                    close=Decimal(f"{c:.2f}"),
                    warm=warm,
                    entry=entry,
                    exit=False,
                    conditions=conditions if warm else [],
                    indicators=indicators,
                    parameters_version=0,
                ),
                "strategy",
            ),
        )
        if entry:
            await publish(
                redis,
                streams.SIGNALS,
                make_event(
                    Signal(
                        symbol="BTCUSDT",
                        side="BUY",
                        reason="ema_cross_up",
                        price=Decimal(f"{c:.2f}"),
                        interval="1m",
                        candle_open_time_ms=open_ms,
                        indicators={"rsi": strength[index]},
                        parameters_version=0,
                    ),
                    "strategy",
                ),
            )
    forming_open = last_open + MINUTE
    await publish(
        redis,
        streams.KLINE_UPDATES,
        make_event(
            Kline(
                symbol="BTCUSDT",
                interval="1m",
                open_time_ms=forming_open,
                close_time_ms=forming_open + MINUTE - 1,
                open=Decimal(f"{price:.2f}"),
                high=Decimal(f"{price + 20:.2f}"),
                low=Decimal(f"{price - 15:.2f}"),
                close=Decimal(f"{price + 5:.2f}"),
                volume=Decimal("3"),
                closed=False,
            ),
            "market_data",
        ),
    )

    entry_price = Decimal(f"{closes[95]:.2f}")
    now = now_ms()
    await redis.hset(streams.MARKET_LAST_PRICE, mapping={"BTCUSDT": f"{price + 5:.2f}", "ETHUSDT": "2531.18"})
    await redis.hset(streams.MARKET_FRESHNESS, mapping={"BTCUSDT": str(now), "ETHUSDT": str(now)})
    await redis.hset(
        streams.ACCOUNT_SNAPSHOT,
        mapping={
            "USDT": dumps({"free": "9423.17", "locked": "0"}),
            "BTC": dumps({"free": "0.00552", "locked": "0"}),
        },
    )
    await publish(
        redis,
        streams.ACCOUNT_BALANCES,
        make_event(Balances(balances={"USDT": {"free": Decimal("9423.17")}}), "market_data"),
    )
    await redis.hset(
        streams.POSITIONS,
        "BTCUSDT",
        dumps(
            {
                "symbol": "BTCUSDT",
                "status": "OPEN",
                "entry_price": str(entry_price),
                "quantity": "0.00552",
                "entry_time_ms": candles[96][0] + 500,
                "stop_loss": str((entry_price * Decimal("0.98")).quantize(Decimal("0.01"))),
                "take_profit": str((entry_price * Decimal("1.05")).quantize(Decimal("0.01"))),
                "protection": "exchange",
            }
        ),
    )
    await redis.set(
        streams.BOT_STATE, dumps({"state": "running", "reason": "start requested by ops", "changed_at_ms": now})
    )
    for service in ("market_data", "strategy", "executor", "exchange_sim"):
        await redis.set(
            streams.health_key(service, f"host-{service}"),
            dumps({"service": service, "instance": f"host-{service}", "ts_ms": now}),
            ex=600,
        )
    for service, level, message in [
        ("market_data", "INFO", "connected to the market stream"),
        ("strategy", "INFO", "warm-up complete: 50 candles"),
        ("executor", "INFO", "position opened BTCUSDT"),
        ("executor", "WARNING", "order book thin; slippage 0.03%"),
    ]:
        await publish(
            redis,
            streams.LOGS,
            make_event(LogRecord(service=service, level=level, logger=service, message=message), service),
        )

    engine = open_engine(database_url)
    async with AsyncSession(engine) as session:
        entry_ms, exit_ms = candles[30][0] + 700, candles[45][0] + 900
        buy, sell = Decimal(f"{closes[30]:.2f}"), Decimal(f"{closes[45]:.2f}")
        trade = Position(
            symbol="BTCUSDT",
            status="CLOSED",
            entry_client_order_id="seed-entry",
            exit_client_order_id="seed-exit",
            entry_price=buy,
            exit_price=sell,
            quantity=Decimal("0.005"),
            quote_spent=buy * Decimal("0.005"),
            quote_received=sell * Decimal("0.005"),
            entry_time_ms=entry_ms,
            exit_time_ms=exit_ms,
            exit_reason="signal",
            return_pct=((sell / buy - 1) * 100 - Decimal("0.2")).quantize(Decimal("0.01")),
        )
        session.add(trade)
        await session.flush()
        for cid, side, purpose, px, at, order_type in (
            ("seed-entry", "BUY", "entry", buy, entry_ms, "LIMIT_MAKER"),
            ("seed-exit", "SELL", "exit", sell, exit_ms, "MARKET"),
        ):
            limit = buy if order_type == "LIMIT_MAKER" else None  # a limit entry at the bid
            session.add(
                Order(
                    client_order_id=cid,
                    symbol="BTCUSDT",
                    side=side,
                    order_type=order_type,
                    limit_price=limit,
                    best_bid=limit,
                    purpose=purpose,
                    status="FILLED",
                    requested_quantity=Decimal("0.005"),
                    executed_quantity=Decimal("0.005"),
                    cumulative_quote=px * Decimal("0.005"),
                    position_id=trade.id,
                    created_at_ms=at,
                    updated_at_ms=at,
                )
            )
        await session.commit()
    await engine.dispose()
    return {"price": price + 5}


async def add_order(database_url: str, client_order_id: str) -> None:
    engine = open_engine(database_url)
    async with AsyncSession(engine) as session:
        now = now_ms()
        session.add(
            Order(
                client_order_id=client_order_id,
                symbol="BTCUSDT",
                side="SELL",
                purpose="exit",
                status="FILLED",
                requested_quantity=Decimal("0.00552"),
                executed_quantity=Decimal("0.00552"),
                cumulative_quote=Decimal("581.12"),
                created_at_ms=now,
                updated_at_ms=now,
            )
        )
        await session.commit()
    await engine.dispose()


async def canvas_paint(page: Any) -> int:
    """How many sampled pixels of the chart's canvases are painted."""
    return await page.evaluate("""() => {
        let painted = 0;
        for (const canvas of document.querySelectorAll('[data-testid=chart] canvas')) {
            if (!canvas.width || !canvas.height) continue;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < data.length; i += 4 * 31) if (data[i] > 0) painted++;
        }
        return painted;
    }""")


async def login(page: Any, api: ApiProcess) -> None:
    await page.goto(api.url)
    await page.get_by_label("Password").fill("wrong guess")
    await page.get_by_role("button", name="Sign in").click()
    from playwright.async_api import expect

    await expect(page.locator("#login-error")).to_contain_text("Wrong account or password")
    await page.get_by_label("Password").fill(api.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("status")).to_be_visible()


async def test_dashboard_end_to_end(api_process: ApiProcess, browser: Any, redis_client: Redis) -> None:
    from playwright.async_api import expect

    await seed_market(redis_client, api_process.database_url)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await login(page, api_process)

    await expect(page.get_by_test_id("mode")).to_have_text("SIM")
    await expect(page.locator("#bot-state")).to_have_text("Running")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.get_by_test_id("balances")).to_contain_text("9,423.17")
    await expect(page.get_by_test_id("position")).to_contain_text("Stop-loss")
    await expect(page.locator("#protection")).to_have_text("on the exchange (OCO)")
    await expect(page.get_by_test_id("logs")).to_contain_text("order book thin")
    await expect(page.get_by_test_id("decisions")).to_contain_text("entry signal")
    await expect(page.get_by_test_id("health")).to_contain_text("strategy")

    # Live price from the event stream.
    await publish(
        redis_client,
        streams.ticker_stream("BTCUSDT"),
        make_event(
            Ticker(
                symbol="BTCUSDT",
                price=Decimal("106543.21"),
                open=Decimal(1),
                high=Decimal(1),
                low=Decimal(1),
                volume=Decimal(1),
                quote_volume=Decimal(1),
            ),
            "market_data",
        ),
    )
    await expect(page.get_by_test_id("price")).to_have_text("106,543.21")

    # The chart is drawn.
    await expect(page.get_by_test_id("chart").locator("canvas").first).to_be_visible()
    assert await canvas_paint(page) > 500

    # The price scale includes the open position's stop-loss and take-profit (5 % above entry,
    # far beyond the candles), and the values under the cursor are those of the hovered candle.
    scale = await page.evaluate("dashboard.chart.candles.priceScale().getVisibleRange()")
    position = loads(await redis_client.hget(streams.POSITIONS, "BTCUSDT"))
    assert scale["from"] <= float(position["stop_loss"]) and float(position["take_profit"]) <= scale["to"]
    newest = await page.get_by_test_id("chart-legend").text_content()
    box = await page.get_by_test_id("chart").bounding_box()
    await page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.3)
    await expect(page.get_by_test_id("chart-legend")).not_to_have_text(newest or "")
    hovered = await page.get_by_test_id("chart-legend").text_content()
    assert re.search(r"O [\d,]+\.\d{2}H [\d,]+\.\d{2}L [\d,]+\.\d{2}C [\d,]+\.\d{2}", hovered or ""), hovered
    assert "RSI" in (hovered or "")

    # A live log line arrives.
    await publish(
        redis_client,
        streams.LOGS,
        make_event(
            LogRecord(service="strategy", level="INFO", logger="s", message="candle closed, no signal"), "strategy"
        ),
    )
    await expect(page.get_by_test_id("logs")).to_contain_text("candle closed, no signal")

    # An executor alert and the log line the executor writes for it are shown once, whichever comes first.
    for first_alert, message in ((True, "quantity below the minimum"), (False, "balance too low for the exit")):
        alert = make_event(
            ExecutorAlert(level="warning", code="order_refused", message=message, symbol="BTCUSDT"), "executor"
        )
        line = make_event(
            LogRecord(
                service="executor",
                level="WARNING",
                logger="executor.notify",
                message=f"BTCUSDT order_refused: {message}",
            ),
            "executor",
        )
        for stream, event in (
            [(streams.EXECUTOR_EVENTS, alert), (streams.LOGS, line)]
            if first_alert
            else [(streams.LOGS, line), (streams.EXECUTOR_EVENTS, alert)]
        ):
            await publish(redis_client, stream, event)
        await expect(page.get_by_test_id("logs")).to_contain_text(message)
        await page.wait_for_timeout(500)
        await expect(page.get_by_test_id("logs").locator(".log-line", has_text=message)).to_have_count(1)

    # Parameters: a valid change is applied and versioned.
    form = page.get_by_test_id("parameters")
    await form.get_by_label("EMA short period").fill("8")
    await form.get_by_role("button", name="Apply changes").click()
    await expect(page.locator("#params-message")).to_have_text("Saved as version 1.")
    stored = loads(await redis_client.get(streams.parameters_key("BTCUSDT")))
    assert stored["version"] == 1 and stored["parameters"]["EMA_SHORT_PERIOD"] == 8

    # An invalid value is refused beside its field: first by the form, then by the server.
    await form.get_by_label("EMA short period").fill("1")
    await expect(page.get_by_test_id("error-EMA_SHORT_PERIOD")).to_have_text("Must be at least 2.")
    await form.get_by_label("EMA short period").fill("30")
    await form.get_by_role("button", name="Apply changes").click()
    await expect(page.get_by_test_id("error-EMA_SHORT_PERIOD")).to_contain_text("smaller than EMA_LONG_PERIOD")
    assert loads(await redis_client.get(streams.parameters_key("BTCUSDT")))["version"] == 1
    await form.get_by_role("button", name="Discard").click()

    # The stop rules: a trailing distance of 1 is refused by the form, 0.01 and the atr mode are saved.
    await form.get_by_label("Trailing stop distance").fill("1")
    await expect(page.get_by_test_id("error-TRAILING_STOP_PERCENTAGE")).to_contain_text("between 0 and 1")
    await form.get_by_label("Trailing stop distance").fill("0.01")
    await form.get_by_label("Stop-loss measured as").select_option("atr")
    await form.get_by_role("button", name="Apply changes").click()
    await expect(page.locator("#params-message")).to_have_text("Saved as version 2.")
    stored = loads(await redis_client.get(streams.parameters_key("BTCUSDT")))["parameters"]
    assert (stored["TRAILING_STOP_PERCENTAGE"], stored["STOP_MODE"]) == ("0.01", "atr")

    # Stop and start, each confirmed.
    await page.get_by_test_id("stop").click()
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#bot-state")).to_have_text("Stopped")
    assert loads(await redis_client.get(streams.BOT_STATE))["state"] == "stopped"
    await page.get_by_test_id("start").click()
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#bot-state")).to_have_text("Running")
    assert loads(await redis_client.get(streams.BOT_STATE))["state"] == "running"

    # An order written by the executor shows up when its event arrives.
    await expect(page.locator("[data-order-id='seed-exit']")).to_contain_text("%")
    # The limit entry shows its type and the price it rested at, the bid it came from on hover.
    entry_row = page.locator("[data-order-id='seed-entry']")
    await expect(entry_row).to_contain_text("entry LIMIT_MAKER")
    price_cell = entry_row.locator("td").nth(6)
    await expect(price_cell).to_have_text(re.compile(r"^\d[\d,]*\.\d\d$"))
    assert "priced from the best bid" in (await price_cell.get_attribute("title") or "")
    await expect(page.locator("[data-order-id='seed-exit'] td").nth(6)).to_have_text("market")
    await add_order(api_process.database_url, "browser-order-1")
    await publish(
        redis_client,
        streams.EXECUTOR_EVENTS,
        make_event(
            OrderUpdate(
                symbol="BTCUSDT",
                client_order_id="browser-order-1",
                side="SELL",
                status="FILLED",
                quantity=Decimal("0.00552"),
            ),
            "executor",
        ),
    )
    await expect(page.locator("[data-order-id='browser-order-1']")).to_be_visible()

    await page.evaluate("window.scrollTo(0, 0)")
    await page.wait_for_timeout(300)
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    phone_page = await phone.new_page()
    await login(phone_page, api_process)
    await expect(phone_page.get_by_test_id("price")).not_to_have_text("—")
    await phone_page.evaluate("window.scrollTo(0, 0)")
    await phone_page.wait_for_timeout(500)
    await phone_page.screenshot(path=str(ARTIFACTS / "dashboard-phone-full.png"), full_page=True)
    await phone_page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"))
    assert await phone_page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ARTIFACTS / "dashboard.png", SCREENSHOTS / "dashboard.png")
    shutil.copyfile(ARTIFACTS / "dashboard-phone.png", SCREENSHOTS / "dashboard-phone.png")
    await phone.close()

    # A report link opened without a session shows the sign-in page, then the report.
    visitor = await browser.new_context()
    report = await visitor.new_page()
    await report.goto(f"{api_process.url}/api/backtest/report")
    await expect(report.get_by_label("Password")).to_be_visible()
    await report.get_by_label("Password").fill(api_process.password)
    await report.get_by_role("button", name="Sign in").click()
    await report.wait_for_url(f"{api_process.url}/api/backtest/report")
    await visitor.close()
    await context.close()
    assert errors == []
    assert api_process.password not in api_process.log.read_text()
