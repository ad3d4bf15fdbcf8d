"""What third-party suites found missing: zero balances, exchangeInfo filters, microsecond klines
parameters and time unit, and the 418 IP ban after repeated 429s."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration


async def test_account_lists_zero_balances_unless_omitted(rest) -> None:
    rest.sim.set_balances({"ETH": "0"})
    status, account, _ = await rest.call("GET", "account", signed=True)
    balances = {b["asset"]: b for b in account["balances"]}
    assert status == 200 and {"BTC", "ETH", "USDT"} <= set(balances)
    assert balances["ETH"] == {"asset": "ETH", "free": "0.00000000", "locked": "0.00000000"}
    status, omitted, _ = await rest.call("GET", "account", {"omitZeroBalances": "true"}, signed=True)
    assert "ETH" not in {b["asset"] for b in omitted["balances"]}
    rest.sim.set_balances({"ETH": "10"})


async def test_account_of_a_fresh_simulator_lists_every_asset(tmp_path, rest) -> None:
    with start_simulator(tmp_path, balances="USDT=50") as fresh:
        rest.sim = fresh
        _, account, _ = await rest.call("GET", "account", signed=True)
        assert [b["asset"] for b in account["balances"]] == ["BTC", "ETH", "USDT"]


async def test_exchange_info_symbol_status_and_permission_sets(rest) -> None:
    status, info, _ = await rest.call("GET", "exchangeInfo", {"showPermissionSets": "false"})
    assert status == 200 and all(s["permissionSets"] == [] for s in info["symbols"])
    status, info, _ = await rest.call("GET", "exchangeInfo")
    assert all(s["permissionSets"] == [["SPOT"]] for s in info["symbols"])
    status, trading, _ = await rest.call("GET", "exchangeInfo", {"symbolStatus": "TRADING"})
    assert [s["symbol"] for s in trading["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    status, halted, _ = await rest.call("GET", "exchangeInfo", {"symbolStatus": "HALT"})
    assert (status, halted["symbols"]) == (200, [])
    assert (await rest.call("GET", "exchangeInfo", {"symbolStatus": "SLEEPING"}))[1] == {
        "code": -1122,
        "msg": "Invalid symbolStatus.",
    }
    assert (await rest.call("GET", "exchangeInfo", {"symbol": "BTCUSDT", "symbolStatus": "TRADING"}))[1][
        "code"
    ] == -1128
    status, margin, _ = await rest.call("GET", "exchangeInfo", {"permissions": "MARGIN"})
    assert margin["symbols"] == []
    assert (await rest.call("GET", "exchangeInfo", {"showPermissionSets": "maybe"}))[1]["code"] == -1130


async def test_klines_take_microseconds_and_answer_in_the_unit_asked(rest) -> None:
    status, first, _ = await rest.call(
        "GET", "klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": 0, "limit": 3}
    )
    open_ms = first[1][0]
    status, micro, _ = await rest.call(
        "GET",
        "klines",
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": open_ms * 1000, "endTime": (open_ms + 60_000) * 1000},
    )
    assert status == 200 and [r[0] for r in micro] == [open_ms, open_ms + 60_000]
    status, between, _ = await rest.call(
        "GET", "klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": open_ms * 1000 + 1, "limit": 1}
    )
    assert [r[0] for r in between] == [open_ms + 60_000]  # a start 1 µs after an open skips that kline
    url = f"{rest.sim.base_url}/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime={open_ms}&limit=1"
    async with rest.session.get(url, headers={"X-MBX-TIME-UNIT": "MICROSECOND"}) as response:
        row = (await response.json())[0]
    assert row[0] == open_ms * 1000 and row[6] == (open_ms + 60_000) * 1000 - 1
    async with rest.session.get(
        f"{rest.sim.base_url}/api/v3/time", headers={"X-MBX-TIME-UNIT": "microsecond"}
    ) as response:
        assert (await response.json())["serverTime"] > 10**15
    async with rest.session.get(f"{rest.sim.base_url}/api/v3/time", headers={"X-MBX-TIME-UNIT": "NANO"}) as response:
        assert (response.status, await response.json()) == (
            400,
            {"code": -1194, "msg": "Invalid value for time unit; expected either MICROSECOND or MILLISECOND."},
        )


async def test_repeated_429s_lead_to_a_418_ban(tmp_path, rest) -> None:
    with start_simulator(tmp_path, extra_env={"EXCHANGE_SIM_WEIGHT_LIMIT": "40"}) as small:
        rest.sim = small
        left = 60 - time.time() % 60
        if left < 5:  # the weight window is aligned to the minute; start well inside one
            await asyncio.sleep(left + 0.1)
        answers = [(await rest.call("GET", "exchangeInfo"))[:3] for _ in range(7)]
        statuses = [a[0] for a in answers]
        first = statuses.index(429)  # the readiness pings of the start used some weight too
        assert statuses[0] == 200 and statuses[first : first + 4] == [429, 429, 429, 418]
        status, body, headers = answers[first + 3]
        assert body["code"] == -1003 and body["msg"].startswith("Way too much request weight used; IP banned until ")
        until = int(body["msg"].split("until ")[1].split(".")[0])
        assert 115 <= int(headers["Retry-After"]) <= 120 and until > time.time() * 1000 + 110_000
        status, body, headers = await rest.call("GET", "ping")  # every request is refused while banned
        assert status == 418 and 0 < int(headers["Retry-After"]) <= 120
        await _ws_api_refused(small, until)
        small.reset_faults()  # the admin reset lifts the ban (the minute's weight stays used)
        assert (await rest.call("GET", "ping"))[0] in (200, 429)


async def _ws_api_refused(sim: SimulatorProcess, until: int) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url + "/ws-api/v3") as ws:
        await ws.send_json({"id": 1, "method": "ping"})
        reply = await ws.receive_json(timeout=5)
    assert reply["status"] == 418 and reply["error"]["data"]["retryAfter"] == until
    assert Decimal(reply["error"]["data"]["serverTime"]) > 0
