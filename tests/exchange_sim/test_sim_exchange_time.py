"""What the exchange stamps on what it does is market time; serverTime and recvWindow stay wall time.

The replay starts in May 2025, so market time and the wall clock are more than a year apart:
every order, fill, account and user-data time must fall between two readings of the market
clock taken around the order, and ``serverTime`` on the wall clock.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.exchange_sim.test_sim_wsapi import WsApi, rest, session  # noqa: F401 - the session fixture
from tests.support.simulator import SimulatorProcess, simulator_fixture

pytestmark = pytest.mark.integration
MAY_2025_MS = 1_747_699_200_000  # 2025-05-20 00:00 UTC
YEAR_MS = 365 * 86_400_000

past = simulator_fixture(
    scope="module",
    speed=600,
    balances="USDT=20000,BTC=0",
    extra_env={"EXCHANGE_SIM_START_MS": str(MAY_2025_MS)},
)


def market_now(sim: SimulatorProcess) -> int:
    return int(sim.state()["market"]["market_time"])


def times_of(body: dict[str, Any], *keys: str) -> list[int]:
    return [int(body[k]) for k in keys if k in body]


async def test_order_fill_account_and_event_times_are_market_time(past: SimulatorProcess, session) -> None:  # noqa: F811
    async with session.ws_connect(past.ws_url + "/ws-api/v3") as ws:
        api = WsApi(ws, past)
        await api.subscribe()
        before = market_now(past)
        status, order = await rest(
            session, past, "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.005"}
        )
        assert status == 200 and order["status"] == "FILLED", order
        events = await api.events_until(lambda e: e["e"] == "outboundAccountPosition")
        after = market_now(past)
        _, queried = await rest(session, past, "GET", "order", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
        _, trades = await rest(session, past, "GET", "myTrades", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
        _, account = await rest(session, past, "GET", "account", {})
    stamped = times_of(order, "transactTime", "workingTime")
    stamped += times_of(queried, "time", "updateTime", "workingTime")
    stamped += [int(t["time"]) for t in trades] + times_of(account, "updateTime")
    for event in events:
        stamped += times_of(event, "E", "T", "O", "W", "u")
    assert len(stamped) >= 10 and len(trades) >= 1
    assert all(before <= t <= after for t in stamped), (before, after, stamped)
    assert order["transactTime"] < MAY_2025_MS + YEAR_MS  # not the wall clock of today


async def test_server_time_and_the_recv_window_stay_wall_time(past: SimulatorProcess, session) -> None:  # noqa: F811
    async with session.get(f"{past.base_url}/api/v3/time") as response:
        server_time = (await response.json())["serverTime"]
    assert abs(server_time - int(time.time() * 1000)) < 5_000
    # A request signed with the market clock's time is outside its recvWindow: -1021.
    url = f"{past.base_url}/api/v3/account?{past.signed_query({}, timestamp=market_now(past))}"
    async with session.get(url, headers={"X-MBX-APIKEY": past.api_key}) as response:
        assert response.status == 400 and (await response.json())["code"] == -1021


async def test_the_admin_state_keeps_each_order_ids_wall_clock_receipt(past: SimulatorProcess, session) -> None:  # noqa: F811
    # The order's own stamps are market time; a latency measurement needs when it really arrived.
    client_id = "EB-BTCUSDT-1747699260000"
    before = int(time.time() * 1000)
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001", "newClientOrderId": client_id}
    status, order = await rest(session, past, "POST", "order", params)
    after = int(time.time() * 1000)
    assert status == 200, order
    received = past.state()["received_wall_ms"]
    assert before <= received[client_id] <= after
    assert order["transactTime"] < MAY_2025_MS + YEAR_MS
