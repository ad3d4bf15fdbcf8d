"""The dashboard's controls with the real executor answering: the three states in words, the
Stop confirmation naming the open position, answers shown beside the button that sent the
command (including a refused close with its reason), close-all, and a dangerous parameter
change confirmed in the form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import streams
from shared.codec import loads
from tests.browser.conftest import ApiProcess
from tests.executor.harness import Bus, candle, executor_env, start_process, wait_until
from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
SYMBOLS = "BTCUSDT,ETHUSDT"


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    # At 1x the exchange's clock is the wall clock, from which the test's BUY takes its candle
    # (an entry is sent only while the exchange is within the signal's allowance).
    with start_simulator(tmp_path / "sim", speed=1, history=50) as sim:
        yield sim


async def test_controls_show_each_answer_beside_their_button(
    api_process: ApiProcess,
    browser: Any,
    redis_client: Redis,
    redis_url: str,
    simulator: SimulatorProcess,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    executor = start_process(
        tmp_path / "executor", executor_env(simulator, redis_url, api_process.database_url, SYMBOLS), "executor-ui"
    )
    try:

        async def owned() -> bool:
            return all([await redis_client.get(streams.lease_key("executor", s)) for s in SYMBOLS.split(",")])

        # Its start includes importing every module, tens of seconds on a loaded machine.
        await wait_until(owned, 120, "the executor owning both symbols")
        await Bus(redis_client).signal("BTCUSDT", "BUY", candle())

        async def opened() -> bool:
            return (loads(await redis_client.hget(streams.POSITIONS, "BTCUSDT")) or {}).get("status") == "OPEN"

        await wait_until(opened, 20, "BTCUSDT position open")

        page = await (await browser.new_context(viewport={"width": 1280, "height": 1000})).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(api_process.url)
        await page.get_by_label("Password").fill(api_process.password)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#bot-meaning")).to_have_text("running: entries and exits")
        await expect(page.get_by_test_id("position")).to_contain_text("Stop-loss")

        # Stop: the confirmation says what keeps working and names the open position.
        await page.get_by_test_id("stop").click()
        await expect(page.locator("#confirm-text")).to_contain_text(
            "stop-loss, take-profit and manual close keep working"
        )
        await expect(page.locator("#confirm-text")).to_contain_text("Open positions: BTCUSDT")
        await page.locator("#confirm-ok").click()
        await expect(page.get_by_test_id("answer-stop")).to_contain_text(
            "done: stopped: no new entries", timeout=15_000
        )
        await expect(page.get_by_test_id("answer-stop")).to_contain_text("open positions: BTCUSDT")
        await expect(page.locator("#bot-state")).to_have_text("Stopped", timeout=15_000)
        await expect(page.locator("#bot-meaning")).to_contain_text(
            "stopped: no new entries and no strategy exits, but stop-loss, take-profit and manual close keep working"
        )

        # Close position while stopped: sold, answered beside the button; a second one is refused with the reason.
        await page.get_by_test_id("close").click()
        await page.locator("#confirm-ok").click()
        await expect(page.get_by_test_id("answer-close")).to_contain_text("done: closed: sold", timeout=20_000)
        await page.get_by_test_id("close").click()
        await page.locator("#confirm-ok").click()
        await expect(page.get_by_test_id("answer-close")).to_have_text("refused: no position", timeout=15_000)
        await expect(page.get_by_test_id("answer-close")).to_have_attribute("data-outcome", "refused")
        await expect(page.get_by_test_id("logs")).to_contain_text("close_position refused: no position", timeout=15_000)

        # A dangerous parameter change is applied only once confirmed, and the executor answers it.
        form = page.get_by_test_id("parameters")
        await form.get_by_label("Risk per trade").fill("0.5")
        await form.get_by_role("button", name="Apply changes").click()
        await expect(page.locator("#params-dangers")).to_contain_text("Risk per trade (RISK_PER_TRADE)")
        assert await redis_client.get(streams.parameters_key("BTCUSDT")) is None
        await page.get_by_test_id("params-confirm").check()
        await form.get_by_role("button", name="Apply changes").click()
        await expect(page.locator("#params-message")).to_have_text("Saved as version 1.")
        await expect(page.get_by_test_id("params-answer")).to_have_text(
            "done: parameters version 1 in force", timeout=15_000
        )
        # Two bad fields: two errors, one beside each field.
        await form.get_by_label("EMA filter period").fill("1500")
        await form.get_by_label("RSI period").fill("1200")
        await form.get_by_role("button", name="Apply changes").click()
        await expect(page.get_by_test_id("error-EMA_FILTER_PERIOD")).to_contain_text("STRATEGY_WINDOW_CANDLES=1000")
        await expect(page.get_by_test_id("error-RSI_PERIOD")).to_contain_text("STRATEGY_WINDOW_CANDLES=1000")
        await form.get_by_role("button", name="Discard").click()

        # Close all and stop: each symbol's outcome beside the button.
        await page.get_by_test_id("start").click()
        await page.locator("#confirm-ok").click()
        await expect(page.locator("#bot-state")).to_have_text("Running", timeout=15_000)
        await page.get_by_test_id("close-all").click()
        await expect(page.locator("#confirm-text")).to_contain_text("No position is open")
        await page.locator("#confirm-ok").click()
        answer = page.get_by_test_id("answer-close-all")
        await expect(answer).to_contain_text("BTCUSDT: done: no position", timeout=15_000)
        await expect(answer).to_contain_text("ETHUSDT: done: no position", timeout=15_000)
        await expect(page.locator("#bot-state")).to_have_text("Stopped", timeout=15_000)
        assert errors == []
    finally:
        executor.stop()
