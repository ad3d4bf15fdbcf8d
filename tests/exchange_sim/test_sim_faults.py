"""Every fault-injection mode of the admin endpoint, and the state endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from shared.binance_client import close_client, close_socket
from tests.support.simulator import SimulatorProcess, make_python_binance_client, make_socket_manager

pytestmark = pytest.mark.integration
ORDER = "/api/v3/order"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def market_buy(cid: str) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001", "newClientOrderId": cid}


async def test_5xx_before_execution_leaves_no_order(rest, live: SimulatorProcess) -> None:
    live.fail_next(1, path_prefix=ORDER, status=502)
    assert (await rest.call("GET", "ping"))[0] == 200  # other paths are not affected
    cid = f"lost-{time.time_ns()}"
    assert (await rest.call("POST", "order", market_buy(cid), signed=True))[:2] == (
        502,
        {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
    )
    assert (await rest.call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": cid}, signed=True))[1][
        "code"
    ] == -2013
    assert live.admin("faults", method="GET")["fail"] is None


async def test_5xx_after_execution_hides_a_placed_order(rest, live: SimulatorProcess) -> None:
    live.fail_next(1, path_prefix=ORDER, status=503, execute=True)
    cid = f"unknown-{time.time_ns()}"
    status, body, headers = await rest.call("POST", "order", market_buy(cid), signed=True)
    assert (status, body["code"]) == (503, -1007) and "X-MBX-ORDER-COUNT-10S" not in headers
    status, order, _ = await rest.call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": cid}, signed=True)
    assert (status, order["status"]) == (200, "FILLED")
    assert live.state()["client_order_ids"].count(cid) == 1


async def test_429_and_418_with_retry_after(rest, live: SimulatorProcess) -> None:
    live.throttle_next(2, status=429, retry_after=7)
    for _ in range(2):
        status, body, headers = await rest.call("GET", "ticker/price", {"symbol": "BTCUSDT"})
        assert (status, body["code"], headers["Retry-After"]) == (429, -1003, "7")
    assert (await rest.call("GET", "ticker/price", {"symbol": "BTCUSDT"}))[0] == 200
    live.throttle_next(1, status=418, retry_after=120)
    status, body, headers = await rest.call("GET", "account", signed=True)
    assert (status, headers["Retry-After"]) == (418, "120") and "IP banned until" in body["msg"]


async def test_injected_timestamp_errors_hit_signed_requests_only(rest, live: SimulatorProcess) -> None:
    live.timestamp_errors(2)
    assert (await rest.call("GET", "ping"))[0] == 200
    for _ in range(2):
        assert (await rest.call("GET", "account", signed=True))[1] == {
            "code": -1021,
            "msg": "Timestamp for this request is outside of the recvWindow.",
        }
    assert (await rest.call("GET", "account", signed=True))[0] == 200


async def test_clock_offset_moves_server_time(rest, live: SimulatorProcess) -> None:
    live.set_clock_offset(30_000)
    server = (await rest.call("GET", "time"))[1]["serverTime"]
    assert abs(server - time.time() * 1000 - 30_000) < 2000
    assert (await rest.call("GET", "account", signed=True))[1]["code"] == -1021
    assert (await rest.call("GET", "account", signed=True, timestamp=server))[0] == 200  # a re-synced client


async def test_delays_before_and_after_processing(rest, live: SimulatorProcess, session) -> None:
    live.delay_next(600, path_prefix="/api/v3/ping")
    started = time.monotonic()
    await rest.call("GET", "ping")
    assert time.monotonic() - started >= 0.6
    started = time.monotonic()
    await rest.call("GET", "ping")
    assert time.monotonic() - started < 0.5
    live.delay_next(1500, path_prefix=ORDER, after=True)
    cid = f"slow-{time.time_ns()}"
    url = f"{live.base_url}{ORDER}?{live.signed_query(market_buy(cid))}"
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(url, headers={"X-MBX-APIKEY": live.api_key}, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    _status, order, _ = await rest.call("GET", "order", {"symbol": "BTCUSDT", "origClientOrderId": cid}, signed=True)
    assert order["status"] == "FILLED"  # executed although the client gave up


async def closed_within(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> list[Any]:
    """Text frames received until the socket closes (bounded)."""
    texts: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await asyncio.wait_for(ws.receive(), deadline - time.monotonic())
        if message.type is aiohttp.WSMsgType.TEXT:
            texts.append(json.loads(message.data))
        elif message.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
            aiohttp.WSMsgType.CLOSING,
        ):
            return texts
    raise AssertionError("the socket stayed open")


async def test_drop_every_websocket(live: SimulatorProcess, session) -> None:
    client = await make_python_binance_client(live)
    try:
        async with (
            session.ws_connect(live.ws_url + "/ws/btcusdt@miniTicker") as market,
            session.ws_connect(live.ws_url + "/ws-api/v3") as api,
        ):
            socket = make_socket_manager(client, live).multiplex_socket(["btcusdt@miniTicker"])
            await socket.__aenter__()
            try:
                await asyncio.wait_for(socket.recv(), 3)
                before = live.state()["connections"]["market_streams_total"]
                dropped = live.drop_websockets()
                assert dropped["market_streams"] >= 2 and dropped["ws_api"] >= 1
                await closed_within(market, 3)
                await closed_within(api, 3)

                async def resumed() -> None:  # python-binance reconnects by itself
                    while (await socket.recv()).get("e") != "error":
                        pass  # tickers queued before the drop
                    while (await socket.recv()).get("e") == "error":
                        pass

                await asyncio.wait_for(resumed(), 8)
                assert live.state()["connections"]["market_streams_total"] > before
            finally:
                await close_socket(socket)
    finally:
        await close_client(client)


async def test_closing_during_a_reconnect_leaves_no_connection(live: SimulatorProcess) -> None:
    """python-binance's own close hangs here (its reconnect overwrites the exit mark) and the
    reconnected socket stays open, unread; ``close_socket`` must end both."""
    client = await make_python_binance_client(live)
    try:
        open_before = live.state()["connections"]["market_streams"]
        socket = make_socket_manager(client, live).multiplex_socket(["btcusdt@miniTicker"])
        await socket.__aenter__()
        await asyncio.wait_for(socket.recv(), 3)
        live.drop_websockets()

        async def dropped() -> None:
            while (await socket.recv()).get("type") != "BinanceWebsocketClosed":
                pass  # now waiting 1-2 s before reconnecting

        await asyncio.wait_for(dropped(), 5)
        started = time.monotonic()
        await close_socket(socket, timeout_s=8)
        assert time.monotonic() - started < 5
        await asyncio.sleep(2.5)  # past any reconnect that was still due
        assert live.state()["connections"]["market_streams"] == open_before
    finally:
        await close_client(client)


async def test_stall_silences_streams_without_closing(live: SimulatorProcess, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws/btcusdt@kline_1m", autoping=False) as ws:
        await asyncio.wait_for(ws.receive(), 3)
        live.stall_streams(1.5)
        await asyncio.sleep(0.05)
        while True:  # drain what was already in flight
            try:
                await asyncio.wait_for(ws.receive(), 0.1)
            except TimeoutError:
                break
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.receive(), 1.0)  # no data and no ping (pings are every 0.5 s here)
        assert not ws.closed
        message = await asyncio.wait_for(ws.receive(), 2.0)
        assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING)


async def test_end_user_data_streams(live: SimulatorProcess, rest, session) -> None:
    async with session.ws_connect(live.ws_url + "/ws-api/v3") as ws:
        ts = int(time.time() * 1000)
        payload = f"apiKey={live.api_key}&timestamp={ts}"
        await ws.send_json(
            {
                "id": 1,
                "method": "userDataStream.subscribe.signature",
                "params": {"apiKey": live.api_key, "timestamp": ts, "signature": live.sign(payload)},
            }
        )
        assert (await ws.receive_json(timeout=3))["result"] == {"subscriptionId": 0}
        assert live.end_user_streams() == {"subscriptions": 1}
        terminated = await ws.receive_json(timeout=3)
        assert terminated["subscriptionId"] == 0 and terminated["event"]["e"] == "eventStreamTerminated"
        assert (await rest.call("POST", "order", market_buy(f"quiet-{time.time_ns()}"), signed=True))[0] == 200
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_json(timeout=0.5)  # no more events on this connection
        await ws.send_json({"id": 2, "method": "session.status"})
        assert (await ws.receive_json(timeout=3))["result"]["userDataStream"] is False


async def test_server_shutdown_events_and_close_frames(live: SimulatorProcess, session) -> None:
    async with (
        session.ws_connect(live.ws_url + "/ws/btcusdt@kline_1m") as raw,
        session.ws_connect(live.ws_url + "/stream?streams=btcusdt@kline_1m") as combined,
        session.ws_connect(live.ws_url + "/ws-api/v3") as api,
    ):
        await asyncio.wait_for(raw.receive(), 3)
        live.server_shutdown()
        raw_texts = await closed_within(raw, 3)
        combined_texts = await closed_within(combined, 3)
        api_texts = await closed_within(api, 3)
        assert raw_texts[-1]["e"] == "serverShutdown" and raw.close_code == 1001
        assert combined_texts[-1]["stream"] == "!serverShutdown" and combined_texts[-1]["data"]["e"] == "serverShutdown"
        assert api_texts == [{"event": {"e": "serverShutdown", "E": api_texts[0]["event"]["E"]}}]
        assert api.close_code == 1001


async def test_state_counts_requests_and_reset_clears_faults(rest, live: SimulatorProcess) -> None:
    before = live.state()["requests"].get("GET /api/v3/avgPrice", 0)
    for _ in range(3):
        await rest.call("GET", "avgPrice", {"symbol": "BTCUSDT"})
    state = live.state()
    assert state["requests"]["GET /api/v3/avgPrice"] == before + 3
    assert set(state) >= {
        "server_time",
        "market",
        "balances",
        "orders",
        "open_order_ids",
        "trades",
        "requests",
        "client_order_ids",
        "connections",
        "faults",
    }
    assert Decimal(state["market"]["symbols"]["BTCUSDT"]["price"]) > 0 and state["market"]["market_time"] > 0
    live.fail_next(5)
    live.throttle_next(5)
    live.timestamp_errors(5)
    live.set_clock_offset(5000)
    live.stall_streams(None)
    assert live.admin("faults", method="GET")["stalled"] is True
    cleared = live.reset_faults()
    assert cleared == {
        "fail": None,
        "throttle": None,
        "delay": None,
        "timestamp_errors": 0,
        "clock_offset_ms": 0,
        "stalled": False,
        "stall_seconds_left": None,
    }
    assert (await rest.call("GET", "account", signed=True))[0] == 200
