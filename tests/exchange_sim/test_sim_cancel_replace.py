"""``POST /api/v3/order/cancelReplace`` against a real simulator: python-binance's own
``cancel_replace_order`` on a leg of an OCO (the whole list cancelled, the new stop resting, the
user-data events in Binance's order), and each answer of the docs' table checked on the raw
REST answer (status, code, ``data``), including the filters checked before anything happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.binance_client import close_client
from tests.exchange_sim.conftest import RestClient, Row, write_candles
from tests.support.simulator import SimulatorProcess, make_python_binance_client, make_socket_manager, start_simulator

pytestmark = pytest.mark.integration
D = Decimal
START = 1_700_000_000_000


def flat(price: float, count: int = 4000) -> list[Row]:
    """Candles within 1 USDT of ``price``: nothing placed 100 USDT away triggers."""
    return [
        (START + i * 60_000, f"{price:.2f}", f"{price + 1:.2f}", f"{price - 1:.2f}", f"{price:.2f}", "3.5")
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorProcess]:
    folder: Path = tmp_path_factory.mktemp("quiet")
    data = [write_candles(folder / "BTCUSDT_1m_flat.csv", flat(50_000))]
    with start_simulator(folder, data=data, speed=60, history=10, balances="USDT=100000,BTC=1") as process:
        yield process


@pytest.fixture
async def rest(quiet: SimulatorProcess) -> AsyncIterator[RestClient]:
    async with aiohttp.ClientSession(skip_auto_headers=["Content-Type"]) as session:
        yield RestClient(quiet, session)


async def _oco(rest: RestClient, tag: str) -> dict[str, Any]:
    status, body, _ = await rest.call(
        "POST",
        "orderList/oco",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "listClientOrderId": f"L-{tag}",
            "aboveType": "LIMIT_MAKER",
            "abovePrice": "50200.00",
            "aboveClientOrderId": f"T-{tag}",
            "belowType": "STOP_LOSS",
            "belowStopPrice": "49800.00",
            "belowClientOrderId": f"S-{tag}",
        },
        signed=True,
    )
    assert status == 200, body
    return body


def _stop(tag: str, stop: str, **extra: str) -> dict[str, str]:
    return {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_LOSS",
        "quantity": "0.01",
        "stopPrice": stop,
        "newClientOrderId": f"N-{tag}",
        "cancelReplaceMode": "STOP_ON_FAILURE",
        "cancelOrigClientOrderId": f"S-{tag}",
        **extra,
    }


async def _open_ids(rest: RestClient) -> list[str]:
    status, body, _ = await rest.call("GET", "openOrders", {"symbol": "BTCUSDT"}, signed=True)
    assert status == 200
    return [row["clientOrderId"] for row in body]


async def test_python_binance_replaces_an_oco_leg_by_a_single_stop(quiet: SimulatorProcess) -> None:
    client = await make_python_binance_client(quiet)
    try:
        info = await client.get_exchange_info()
        assert info["symbols"][0]["cancelReplaceAllowed"] is True
        async with make_socket_manager(client, quiet).user_socket() as socket:
            placed = await client.order_oco_sell(
                symbol="BTCUSDT",
                quantity="0.01",
                listClientOrderId="L-pb",
                aboveType="LIMIT_MAKER",
                abovePrice="50200.00",
                aboveClientOrderId="T-pb",
                belowType="STOP_LOSS",
                belowStopPrice="49800.00",
                belowClientOrderId="S-pb",
            )
            answer = await client.cancel_replace_order(
                symbol="BTCUSDT",
                side="SELL",
                type="STOP_LOSS_LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                stopPrice="49900.00",
                price="49850.00",
                cancelReplaceMode="STOP_ON_FAILURE",
                cancelOrigClientOrderId="S-pb",
                newClientOrderId="N-pb",
                newOrderRespType="RESULT",
            )
            events: list[dict[str, Any]] = []
            while not any(e.get("c") == "N-pb" for e in events):
                events.append(await asyncio.wait_for(socket.recv(), 10))
        assert (answer["cancelResult"], answer["newOrderResult"]) == ("SUCCESS", "SUCCESS")
        cancel = answer["cancelResponse"]  # a leg cancels its whole list: the list's cancel answer
        assert (cancel["orderListId"], cancel["listOrderStatus"]) == (placed["orderListId"], "ALL_DONE")
        assert {r["origClientOrderId"]: r["status"] for r in cancel["orderReports"]} == {
            "S-pb": "CANCELED",
            "T-pb": "CANCELED",
        }
        new = answer["newOrderResponse"]
        assert (new["clientOrderId"], new["status"], new["type"], new["stopPrice"], new["orderListId"]) == (
            "N-pb",
            "NEW",
            "STOP_LOSS_LIMIT",
            "49900.00000000",
            -1,
        )
        assert [o["clientOrderId"] for o in await client.get_open_orders(symbol="BTCUSDT")] == ["N-pb"]
        assert await client.get_open_oco_orders() == []
        btc = {b["asset"]: b for b in (await client.get_account())["balances"]}["BTC"]
        assert D(btc["locked"]) == D("0.01")  # the new stop locks what the list locked, once
        # a cancel's report names the order in "C" (its own id in "c"), as Binance's do
        mine = [
            e
            for e in events
            if e.get("e") == "listStatus" or (e.get("e") == "executionReport" and (e["x"] != "NEW" or e["c"] == "N-pb"))
        ]
        named = [
            (e["e"], (e.get("C") or e.get("c")) if e["e"] == "executionReport" else e["l"], e.get("x")) for e in mine
        ]
        assert named[-4:] == [
            ("executionReport", "S-pb", "CANCELED"),
            ("executionReport", "T-pb", "CANCELED"),
            ("listStatus", "ALL_DONE", None),
            ("executionReport", "N-pb", "NEW"),
        ]
    finally:
        await close_client(client)


async def test_a_failed_cancel_places_nothing_with_stop_on_failure(rest: RestClient) -> None:
    status, body, headers = await rest.call("POST", "order/cancelReplace", _stop("none", "49900.00"), signed=True)
    assert (status, body["code"], body["msg"]) == (400, -2022, "Order cancel-replace failed.")
    assert body["data"] == {
        "cancelResult": "FAILURE",
        "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": None,
    }
    assert "X-MBX-ORDER-COUNT-10S" in headers  # a new order not attempted still counts
    assert "N-none" not in await _open_ids(rest)


async def test_a_new_order_that_fails_after_the_cancel_answers_409(rest: RestClient) -> None:
    await _oco(rest, "gap")
    # A stop above the market would trigger at once: the list is cancelled, nothing is placed.
    status, body, _ = await rest.call("POST", "order/cancelReplace", _stop("gap", "50500.00"), signed=True)
    assert (status, body["code"], body["msg"]) == (409, -2021, "Order cancel-replace partially failed.")
    data = body["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("SUCCESS", "FAILURE")
    assert data["newOrderResponse"] == {"code": -2010, "msg": "Order would trigger immediately."}
    assert {r["status"] for r in data["cancelResponse"]["orderReports"]} == {"CANCELED"}
    assert not {"S-gap", "T-gap", "N-gap"} & set(await _open_ids(rest))


async def test_filters_are_checked_before_the_cancel(rest: RestClient) -> None:
    await _oco(rest, "tick")
    status, body, _ = await rest.call("POST", "order/cancelReplace", _stop("tick", "49900.001"), signed=True)
    assert (status, body["code"]) == (400, -1013)
    assert "data" not in body
    assert {"S-tick", "T-tick"} <= set(await _open_ids(rest))  # nothing was cancelled
    status, body, _ = await rest.call(
        "POST", "order/cancelReplace", _stop("tick", "49900.00", cancelReplaceMode="SOMETIMES"), signed=True
    )
    assert (status, body["code"]) == (400, -1130)
    status, body, _ = await rest.call(
        "DELETE", "orderList", {"symbol": "BTCUSDT", "listClientOrderId": "L-tick"}, signed=True
    )
    assert status == 200


async def test_allow_failure_places_the_new_order_when_the_cancel_fails(rest: RestClient) -> None:
    params = _stop("allow", "49700.00", cancelReplaceMode="ALLOW_FAILURE")
    status, body, _ = await rest.call("POST", "order/cancelReplace", params, signed=True)
    assert (status, body["code"]) == (409, -2021)
    data = body["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")
    assert data["newOrderResponse"]["clientOrderId"] == "N-allow"
    assert "N-allow" in await _open_ids(rest)
    status, body, _ = await rest.call("POST", "order/cancelReplace", params, signed=True)
    assert (status, body["code"]) == (400, -2022)  # both failed: the id rests already
    assert (body["data"]["cancelResult"], body["data"]["newOrderResult"]) == ("FAILURE", "FAILURE")
    status, _, _ = await rest.call(
        "DELETE", "order", {"symbol": "BTCUSDT", "origClientOrderId": "N-allow"}, signed=True
    )
    assert status == 200
