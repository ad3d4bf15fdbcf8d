"""The api as a real uvicorn process for the browser, and a headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.api.config import PROJECT_ROOT
from shared.store.database import migrate
from tests.support.ports import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"
PASSWORD = "browser test password"


@dataclass
class ApiProcess:
    url: str
    password: str
    database_url: str
    log: Path


@pytest.fixture
def api_env() -> dict[str, str]:
    """Extra environment of the api process (a test module overrides this fixture)."""
    return {}


@pytest.fixture
def api_process(redis_url: str, tmp_path: Path, api_env: dict[str, str]) -> Iterator[ApiProcess]:
    """``python -m services.api`` on a free port with a migrated SQLite ledger."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    migrate(database_url)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DASHBOARD_", "API_", "SYMBOL"))}
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        REDIS_URL=redis_url,
        API_PORT=str(port),
        DATABASE_URL=database_url,
        DASHBOARD_PASSWORD=PASSWORD,
        SYMBOLS="BTCUSDT,ETHUSDT",
        REPORTS_DIR=str(tmp_path / "reports"),
        BINANCE_ENV="sim",
        SSE_PRICE_INTERVAL_MS="100",
    )
    env.update(api_env)
    log = tmp_path / "api.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "services.api"], cwd=tmp_path, env=env, stderr=sink)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60  # a loaded CI machine starts Python slowly
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"api exited: {log.read_text()}")
                try:
                    httpx.get(f"{url}/api/health", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"api did not start: {log.read_text()}") from None
                    time.sleep(0.1)
            yield ApiProcess(url, PASSWORD, database_url, log)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs it) or `apt-get install chromium`")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()
