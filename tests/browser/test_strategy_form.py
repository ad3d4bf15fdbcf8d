"""The parameter form is generated from the selected symbol's strategy schema: switching BTCUSDT
to rsi2_reversion shows that strategy's fields with their labels, units and bounds; a bad value
shows the field's error (from the page, then from the server); a valid one is applied to that
symbol's set only; a switch while a position is open needs a second confirmation."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.bus import publish
from shared.codec import dumps, loads
from shared.events import Condition, Decision, make_event
from tests.browser.conftest import ApiProcess
from tests.browser.test_viewer import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def test_switch_then_form_from_the_schema_errors_and_apply(
    api_process: ApiProcess, browser: Any, redis_client: Redis
) -> None:
    from playwright.async_api import expect

    page = await sign_in(browser, api_process, "", api_process.password)
    form = page.get_by_test_id("parameters")
    await expect(form.get_by_label("EMA short period")).to_be_visible()
    await expect(page.locator("#params-version")).to_contain_text("BTCUSDT ema_cross_rsi")
    await expect(page.get_by_test_id("chart-swatches")).to_contain_text("EMA 9")

    # The switch is confirmed, answered, and the form becomes rsi2_reversion's.
    await page.get_by_test_id("strategy-select").select_option("rsi2_reversion")
    await page.get_by_test_id("strategy-switch-button").click()
    await expect(page.locator("#confirm-text")).to_contain_text("Switch BTCUSDT from ema_cross_rsi to rsi2_reversion")
    await page.locator("#confirm-ok").click()
    await expect(page.get_by_test_id("strategy-answer")).to_have_text("Switched to rsi2_reversion (version 1).")
    await expect(form.get_by_label("Entry RSI")).to_be_visible()
    await expect(form.get_by_label("EMA short period")).to_have_count(0)
    await expect(page.locator("#u-TREND_PERIOD")).to_have_text("candles")
    await expect(page.locator("#h-TREND_PERIOD")).to_contain_text("simple average")
    await expect(form.get_by_label("Stop-loss distance")).to_have_value("0.02")  # the risk fields stay
    await expect(page.get_by_test_id("chart-swatches")).to_contain_text("SMA 200")
    stored = loads(await redis_client.get(streams.parameters_key("BTCUSDT")))
    assert (stored["strategy"], stored["version"]) == ("rsi2_reversion", 1)

    # A value outside the schema's bounds is refused by the page, beside its field.
    await form.get_by_label("Entry RSI").fill("150")
    await expect(page.get_by_test_id("error-ENTRY_RSI")).to_have_text("Must be between 0 and 100.")
    await form.get_by_role("button", name="Apply changes").click()
    await expect(page.locator("#params-message")).to_have_text("Fix the highlighted fields.")
    # One within its bounds but against the strategy's rule is refused by the server, beside its field.
    await form.get_by_label("Entry RSI").fill("10")
    await form.get_by_label("Exit average period").fill("300")
    await form.get_by_role("button", name="Apply changes").click()
    await expect(page.get_by_test_id("error-EXIT_PERIOD")).to_contain_text("smaller than TREND_PERIOD")
    assert loads(await redis_client.get(streams.parameters_key("BTCUSDT")))["version"] == 1

    # A valid value is applied to BTCUSDT's set alone.
    await form.get_by_label("Exit average period").fill("5")
    await form.get_by_label("Entry RSI").fill("5")
    await form.get_by_role("button", name="Apply changes").click()
    await expect(page.locator("#params-message")).to_have_text("Saved as version 2.")
    stored = loads(await redis_client.get(streams.parameters_key("BTCUSDT")))
    assert stored["version"] == 2 and stored["parameters"]["ENTRY_RSI"] == 5
    assert await redis_client.get(streams.parameters_key("ETHUSDT")) is None

    # The decision log shows the new strategy's conditions.
    decision = Decision(
        symbol="BTCUSDT",
        interval="1m",
        candle_open_time_ms=1_747_699_200_000,
        close="105000",
        warm=True,
        entry=False,
        exit=False,
        conditions=[
            Condition(name="close_above_trend", passed=True, value=105000.0, threshold=104000.0),
            Condition(name="rsi_below_entry", passed=False, value=40.0, threshold=5.0),
        ],
        indicators={"rsi": 40.0, "trend_sma": 104000.0, "exit_sma": 104900.0},
        parameters_version=2,
        strategy="rsi2_reversion",
    )
    await publish(redis_client, streams.DECISIONS, make_event(decision, "strategy", 1_747_699_260_000))
    await expect(page.get_by_test_id("decisions")).to_contain_text("rsi_below_entry", timeout=15_000)
    await expect(page.get_by_test_id("decision-strategy").first).to_have_text("rsi2_reversion v2")

    # With a position open the switch asks again: the position keeps its exits.
    position = {"symbol": "BTCUSDT", "status": "OPEN", "stop_loss": "98000", "take_profit": "105000"}
    await redis_client.hset(streams.POSITIONS, "BTCUSDT", dumps(position))
    await page.get_by_test_id("strategy-select").select_option("donchian_breakout")
    await page.get_by_test_id("strategy-switch-button").click()
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#confirm-text")).to_contain_text("keeps its stop-loss and take-profit")
    await page.locator("#confirm-ok").click()
    await expect(page.get_by_test_id("strategy-answer")).to_have_text("Switched to donchian_breakout (version 3).")
    await expect(form.get_by_label("Breakout channel")).to_be_visible()
    assert not page.errors, page.errors
