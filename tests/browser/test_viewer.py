"""A viewer account signs in and sees the dashboard without any control that would act; the
owner, on the same page, has them all."""

from __future__ import annotations

from typing import Any

import pytest

from shared import accounts
from shared.store.database import open_engine
from tests.browser.conftest import ApiProcess

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Every button of the page that sends a command, a parameter change or starts a backtest.
ACTING = {
    "Start",
    "Pause entries",
    "Stop",
    "Close position",
    "Close all and stop",
    "Apply changes",
    "Discard",
    "Run backtest",
    "Switch",
}


async def create_viewer(database_url: str) -> str:
    engine = open_engine(database_url)
    try:
        return await accounts.create_account(engine, "vera", "viewer")
    finally:
        await engine.dispose()


async def visible_buttons(page: Any) -> set[str]:
    names = await page.eval_on_selector_all(
        "button, input[type=submit], input[type=button]",
        "nodes => nodes.filter(n => n.checkVisibility()).map(n => (n.innerText || n.value || '').trim())",
    )
    return {name for name in names if name}


async def sign_in(browser: Any, api: ApiProcess, account: str, password: str) -> Any:
    from playwright.async_api import expect

    page = await (await browser.new_context(viewport={"width": 1280, "height": 1000})).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(api.url)
    await page.get_by_label("Account").fill(account)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#timeframe")).to_have_text("1m")
    await expect(page.locator("#params-fields input").first).to_be_attached()
    await expect(page.locator("#backtest")).not_to_be_empty()
    page.errors = errors
    return page


async def test_a_viewer_sees_no_control_that_would_act(api_process: ApiProcess, browser: Any) -> None:
    from playwright.async_api import expect

    password = await create_viewer(api_process.database_url)
    viewer = await sign_in(browser, api_process, "vera", password)
    await expect(viewer.get_by_test_id("signed-in")).to_have_text("vera · viewer")
    await expect(viewer.get_by_test_id("read-only")).to_be_visible()
    shown = await visible_buttons(viewer)
    assert not shown & ACTING, shown
    assert "Sign out" in shown
    inputs = viewer.locator("#params-fields input")
    assert await inputs.count() > 5
    assert all([await inputs.nth(i).is_disabled() for i in range(await inputs.count())])
    assert not viewer.errors, viewer.errors

    owner = await sign_in(browser, api_process, "", api_process.password)
    await expect(owner.get_by_test_id("signed-in")).to_have_text("owner · admin")
    await expect(owner.get_by_test_id("read-only")).to_be_hidden()
    assert await visible_buttons(owner) >= ACTING
    assert await owner.locator("#params-fields input").first.is_enabled()
    assert not owner.errors, owner.errors
