"""The dashboard on the whole system: simulator, market_data, strategy, executor and api as real
processes replaying real candles, driven in headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from shared import streams
from shared.codec import loads
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_dashboard import canvas_paint
from tests.pipeline.ledger import BUNDLED
from tests.support.stack import prepare_data, start_stack

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


async def test_dashboard_shows_the_live_replay_and_controls_the_bot(browser: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    data = prepare_data(tmp_path, BUNDLED["BTCUSDT"], "BTCUSDT", 2500, 400)
    stack = start_stack(
        tmp_path / "stack",
        data=[data],
        symbols=["BTCUSDT"],
        speed=120,
        history=70,
        services=("market_data", "strategy", "executor", "api"),
        extra_env={"STOP_LOSS_PERCENTAGE": "0.002", "TAKE_PROFIT_PERCENTAGE": "0.004", "SIGNAL_MAX_LAG_CANDLES": "3"},
    )
    try:
        stack.wait_http(f"{stack.api_url}/api/health", timeout=60)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(stack.api_url)
        await page.get_by_label("Password").fill(stack.password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("status")).to_be_visible()
        await expect(page.get_by_test_id("mode")).to_have_text("SIM")

        # The price moves with the replay.
        price = page.get_by_test_id("price")
        await expect(price).not_to_have_text("—", timeout=30_000)
        first = await price.text_content()
        await expect(price).not_to_have_text(first or "", timeout=30_000)

        # The chart is drawn from the replayed candles.
        await expect(page.get_by_test_id("chart").locator("canvas").first).to_be_visible()
        await page.wait_for_timeout(1000)
        assert await canvas_paint(page) > 500

        # A parameter change is applied; an invalid one is refused beside its field.
        form = page.get_by_test_id("parameters")
        await form.get_by_label("RSI overbought").fill("80")
        await form.get_by_role("button", name="Apply changes").click()
        await expect(page.locator("#params-message")).to_contain_text("Saved as version 1")
        stored = loads(stack.client().get(streams.parameters_key("BTCUSDT")))
        assert stored["parameters"]["RSI_OVERBOUGHT"] == 80
        await form.get_by_label("EMA short period").fill("30")
        await form.get_by_role("button", name="Apply changes").click()
        await expect(page.get_by_test_id("error-EMA_SHORT_PERIOD")).to_contain_text("smaller than EMA_LONG_PERIOD")
        assert loads(stack.client().get(streams.parameters_key("BTCUSDT")))["version"] == 1
        await form.get_by_role("button", name="Discard").click()

        # Stop, then start again: the executor follows.
        await page.get_by_test_id("stop").click()
        await page.locator("#confirm-ok").click()
        await expect(page.locator("#bot-state")).to_have_text("Stopped", timeout=15_000)
        await page.get_by_test_id("start").click()
        await page.locator("#confirm-ok").click()
        await expect(page.locator("#bot-state")).to_have_text("Running", timeout=15_000)

        # A replayed trade appears in the order history.
        await expect(page.get_by_test_id("orders").locator("[data-order-id]").first).to_be_visible(timeout=120_000)
        await page.wait_for_timeout(1500)
        await page.evaluate("window.scrollTo(0, 0)")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ARTIFACTS / "dashboard-live.png", SCREENSHOTS / "dashboard-live.png")
        await context.close()
        assert errors == []
        assert stack.password not in stack.logs("api")
    finally:
        stack.stop_all()
