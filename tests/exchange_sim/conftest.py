"""Fixtures for the simulator suite: candle files, a shared simulator, a raw REST client."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl

from tests.support.simulator import SimulatorProcess, start_simulator

Row = tuple[int, str, str, str, str, str]


def write_candles(path: Path, rows: list[Row]) -> Path:
    """Write ``open_time,open,high,low,close,volume`` rows (gzip when the name ends in .gz)."""
    text = "open_time,open,high,low,close,volume\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode()) if path.suffix == ".gz" else text.encode())
    return path


def simple_rows(count: int, start: int = 1_700_000_000_000, step_ms: int = 60_000, base: float = 100.0) -> list[Row]:
    """Alternating bullish/bearish candles with distinct extremes (2 decimals)."""
    rows: list[Row] = []
    price = base
    for i in range(count):
        o = round(price, 2)
        c = round(o + (0.5 if i % 2 == 0 else -0.3), 2)
        rows.append(
            (
                start + i * step_ms,
                f"{o:.2f}",
                f"{max(o, c) + 0.7:.2f}",
                f"{min(o, c) - 0.4:.2f}",
                f"{c:.2f}",
                f"{10 + i}.5",
            )
        )
        price = c
    return rows


@pytest.fixture
def candle_rows() -> Callable[..., list[Row]]:
    """``simple_rows`` as a fixture: ``candle_rows(count, start=..., step_ms=..., base=...)``."""
    return simple_rows


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str, rows: list[Row]) -> Path:
        return write_candles(tmp_path / name, rows)

    return make


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    """One simulator for the suite (bundled BTC/ETH data, speed 600, pings every 0.5 s)."""
    with start_simulator(
        tmp_path_factory.mktemp("shared_sim"),
        speed=600,
        balances="USDT=100000,BTC=1,ETH=10",
        extra_env={"EXCHANGE_SIM_PING_INTERVAL": "0.5"},
    ) as process:
        yield process


@pytest.fixture
def live(sim: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The shared simulator with no fault armed before or after the test."""
    sim.reset_faults()
    yield sim
    sim.reset_faults()


class RestClient:
    """A thin signed/unsigned REST caller with full control over what is sent."""

    def __init__(self, sim: SimulatorProcess, session: aiohttp.ClientSession) -> None:
        self.sim, self.session = sim, session

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        signed: bool = False,
        api_key: str | None = "default",
        timestamp: int | None = None,
        raw: str | None = None,
        in_body: bool = False,
    ) -> tuple[int, Any, Any]:
        """Returns (HTTP status, decoded JSON, headers)."""
        if raw is None:
            if signed:
                raw = self.sim.signed_query(params or {}, timestamp or int(time.time() * 1000))
            else:
                raw = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        headers = {}
        if signed and api_key is not None:
            headers["X-MBX-APIKEY"] = self.sim.api_key if api_key == "default" else api_key
        url = f"{self.sim.base_url}/api/v3/{path}"
        kwargs: dict[str, Any] = {"headers": headers}
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            kwargs["data"] = raw
        elif raw:
            url += "?" + raw
        async with self.session.request(method, yarl.URL(url, encoded=True), **kwargs) as response:
            text = await response.text()
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = text
            return response.status, body, response.headers


@pytest.fixture
async def rest(live: SimulatorProcess) -> AsyncIterator[RestClient]:
    async with aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as session:
        yield RestClient(live, session)
