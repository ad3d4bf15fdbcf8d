"""WebSocket API: methods, user-data subscription errors and execution report sequences."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from services.exchange_sim.candles import Series
from tests.support.simulator import BUNDLED_DATA, SimulatorProcess, simulator_fixture

pytestmark = pytest.mark.integration
D = Decimal


# a simulator whose book holds 2000 USDT in 10 levels, so orders fill in several trades
thin = simulator_fixture(
    scope="module", speed=600, balances="USDT=20000,BTC=0", extra_env={"EXCHANGE_SIM_MARKET_DEPTH_QUOTE": "2000"}
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class WsApi:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, sim: SimulatorProcess) -> None:
        self.ws, self.sim, self.next_id = ws, sim, 0
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        request: dict[str, Any] = {"id": f"r{self.next_id}", "method": method}
        if params is not None:
            request["params"] = params
        await self.ws.send_json(request)
        while True:
            frame = await self.frame()
            if frame.get("id") == request["id"]:
                return frame
            self.events.append(frame)

    async def frame(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)

    def signed(self, key: str | None = None, secret_sign: bool = True, timestamp: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"apiKey": key or self.sim.api_key, "timestamp": timestamp or int(time.time() * 1000)}
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        params["signature"] = self.sim.sign(payload) if secret_sign else "0" * 64
        return params

    async def subscribe(self) -> int:
        reply = await self.call("userDataStream.subscribe.signature", self.signed())
        assert reply["status"] == 200, reply
        return int(reply["result"]["subscriptionId"])

    async def events_until(self, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not any(predicate(e["event"]) for e in self.events if "event" in e):
            self.events.append(await self.frame(max(0.01, deadline - time.monotonic())))
        events = [e["event"] for e in self.events]
        self.events = []
        return events


async def rest(
    session: aiohttp.ClientSession, sim: SimulatorProcess, method: str, path: str, params: dict[str, Any]
) -> tuple[int, Any]:
    url = f"{sim.base_url}/api/v3/{path}?{sim.signed_query(params)}"
    async with session.request(method, url, headers={"X-MBX-APIKEY": sim.api_key}) as response:
        return response.status, await response.json()


async def test_methods_and_rate_limits(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws-api/v3") as ws:
        api = WsApi(ws, live)
        ping = await api.call("ping")
        assert (ping["status"], ping["result"]) == (200, {})
        assert ping["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT" and ping["rateLimits"][0]["count"] >= 1
        server = (await api.call("v3/time"))["result"]["serverTime"]
        assert abs(server - time.time() * 1000) < 2000
        status = await api.call("session.status", {"returnRateLimits": False})
        assert "rateLimits" not in status and status["result"]["userDataStream"] is False
        assert status["result"]["apiKey"] is None
        unknown = await api.call("order.amend")
        assert unknown["status"] == 400 and unknown["error"]["code"] == -1020


async def test_subscription_checks(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws-api/v3") as ws:
        api = WsApi(ws, live)
        method = "userDataStream.subscribe.signature"
        missing = await api.call(method, {"timestamp": int(time.time() * 1000), "signature": "00"})
        assert missing["error"] == {
            "code": -1102,
            "msg": "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.",
        }
        wrong_key = await api.call(method, api.signed(key="another-key"))
        assert (wrong_key["status"], wrong_key["error"]["code"]) == (401, -2015)
        bad_sig = await api.call(method, api.signed(secret_sign=False))
        assert (bad_sig["status"], bad_sig["error"]) == (
            400,
            {"code": -1022, "msg": "Signature for this request is not valid."},
        )
        stale = await api.call(method, api.signed(timestamp=int(time.time() * 1000) - 10_000))
        assert stale["error"]["code"] == -1021
        assert await api.subscribe() == 0
        again = await api.call(method, api.signed())
        assert again["error"] == {"code": -2035, "msg": "User Data Stream subscription already active."}
        assert (await api.call("session.status"))["result"]["userDataStream"] is True
        assert (await api.call("session.subscriptions"))["result"] == [{"subscriptionId": 0}]
        reply = await api.call("userDataStream.unsubscribe", {"subscriptionId": 0})
        assert reply["result"] == {}
        assert api.events == [
            {"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": api.events[0]["event"]["E"]}}
        ]
        api.events = []
        assert await api.subscribe() == 1


async def test_multi_fill_market_order_events(thin: SimulatorProcess, session) -> None:
    async with session.ws_connect(thin.ws_url + "/ws-api/v3") as ws:
        api = WsApi(ws, thin)
        await api.subscribe()
        status, order = await rest(
            session, thin, "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.005"}
        )
        assert status == 200 and len(order["fills"]) == 3 and order["status"] == "FILLED"
        events = await api.events_until(lambda e: e["e"] == "outboundAccountPosition")
        reports = [e for e in events if e["e"] == "executionReport"]
        assert [(r["x"], r["X"]) for r in reports] == [
            ("NEW", "NEW"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "PARTIALLY_FILLED"),
            ("TRADE", "FILLED"),
        ]
        cumulative_qty = cumulative_quote = D(0)
        for report, fill in zip(reports[1:], order["fills"], strict=True):
            cumulative_qty += D(fill["qty"])
            cumulative_quote += D(fill["qty"]) * D(fill["price"])
            assert (report["l"], report["L"], report["n"], report["N"], report["t"]) == (
                fill["qty"],
                fill["price"],
                fill["commission"],
                "BTC",
                fill["tradeId"],
            )
            assert D(report["z"]) == cumulative_qty and D(report["Z"]) == cumulative_quote
            assert D(report["Y"]) == D(fill["qty"]) * D(fill["price"]) and report["m"] is False
        assert reports[-1]["Z"] == order["cummulativeQuoteQty"] and all(r["i"] == order["orderId"] for r in reports)

        status, big = await rest(
            session, thin, "POST", "order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.05"}
        )
        assert (big["status"], big["expiryReason"], len(big["fills"])) == ("EXPIRED", "INSUFFICIENT_LIQUIDITY", 10)
        events = await api.events_until(lambda e: e["e"] == "outboundAccountPosition")
        last = [e for e in events if e["e"] == "executionReport"][-1]
        assert (last["x"], last["X"], last["eR"], last["z"]) == (
            "EXPIRED",
            "EXPIRED",
            "INSUFFICIENT_LIQUIDITY",
            big["executedQty"],
        )
        status, queried = await rest(session, thin, "GET", "order", {"symbol": "BTCUSDT", "orderId": big["orderId"]})
        assert (queried["status"], queried["executedQty"]) == ("EXPIRED", big["executedQty"])


async def test_resting_limit_fills_when_the_walk_reaches_it(thin: SimulatorProcess, session) -> None:
    rows = Series(BUNDLED_DATA[0])
    market = thin.state()["market"]["symbols"]["BTCUSDT"]
    upcoming = [rows.candle(i) for i in range(market["candle_index"] + 3, market["candle_index"] + 25)]
    target = min(c.low for c in upcoming)
    assert target < D(market["price"])
    async with session.ws_connect(thin.ws_url + "/ws-api/v3") as ws:
        api = WsApi(ws, thin)
        await api.subscribe()
        status, order = await rest(
            session,
            thin,
            "POST",
            "order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.002",
                "price": f"{target:f}",
                "newClientOrderId": f"dip-{int(time.time() * 1000)}",
            },
        )
        assert status == 200 and order["status"] == "NEW", order
        events = await api.events_until(lambda e: e["e"] == "executionReport" and e["x"] == "TRADE", timeout=8)
    reports = [e for e in events if e["e"] == "executionReport"]
    new, trade = reports[0], reports[-1]
    assert (new["x"], new["w"], new["W"]) == ("NEW", True, order["transactTime"])
    assert (trade["X"], trade["L"], trade["m"], trade["w"]) == ("FILLED", f"{target:.8f}", True, False)
    status, queried = await rest(
        session, thin, "GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": order["clientOrderId"]}
    )
    assert (queried["status"], queried["executedQty"], queried["cummulativeQuoteQty"]) == (
        "FILLED",
        trade["z"],
        trade["Z"],
    )
    status, trades = await rest(session, thin, "GET", "myTrades", {"symbol": "BTCUSDT", "orderId": order["orderId"]})
    assert [(t["isMaker"], t["price"], t["commission"]) for t in trades] == [(True, trade["L"], trade["n"])]


async def test_rejected_canceled_and_expired_events(thin: SimulatorProcess, session) -> None:
    async with session.ws_connect(thin.ws_url + "/ws-api/v3") as ws:
        api = WsApi(ws, thin)
        await api.subscribe()
        price = D(thin.state()["market"]["symbols"]["BTCUSDT"]["price"])
        _status, body = await rest(
            session,
            thin,
            "POST",
            "order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "1",
                "price": f"{price:f}",
            },
        )
        assert body == {"code": -2010, "msg": "Account has insufficient balance for requested action."}
        rejected = (await api.events_until(lambda e: e.get("x") == "REJECTED"))[-1]
        assert (rejected["X"], rejected["r"]) == ("REJECTED", "INSUFFICIENT_BALANCES")
        low = (price * D("0.5")).quantize(D("0.01"))
        _status, resting = await rest(
            session,
            thin,
            "POST",
            "order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": f"{low:f}",
                "newClientOrderId": "to-cancel",
            },
        )
        _status, cancelled = await rest(
            session,
            thin,
            "DELETE",
            "order",
            {"symbol": "BTCUSDT", "orderId": resting["orderId"], "newClientOrderId": "the-cancel"},
        )
        event = next(e for e in await api.events_until(lambda e: e.get("x") == "CANCELED") if e.get("x") == "CANCELED")
        assert (event["c"], event["C"], event["X"], event["i"]) == (
            "the-cancel",
            "to-cancel",
            "CANCELED",
            resting["orderId"],
        )
        assert cancelled["status"] == "CANCELED"
        _status, fok = await rest(
            session,
            thin,
            "POST",
            "order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "FOK",
                "quantity": "0.05",
                "price": f"{price * D('1.01'):.2f}",
            },
        )
        assert (fok["status"], fok["expiryReason"], fok["fills"]) == ("EXPIRED", "UNFILLED_FOK_ORDER_EXPIRED", [])
        expired = await api.events_until(lambda e: e.get("x") == "EXPIRED")
        assert [e["x"] for e in expired if e["e"] == "executionReport"][-2:] == ["NEW", "EXPIRED"]
