"""REST conformance with a raw client: shapes, signing, every error code, headers."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from tests.support.simulator import SimulatorProcess, start_simulator

pytestmark = pytest.mark.integration


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_public_endpoints(rest) -> None:
    assert (await rest.call("GET", "ping"))[:2] == (200, {})
    status, body, headers = await rest.call("GET", "time")
    assert status == 200 and abs(body["serverTime"] - now_ms()) < 2000 and "X-MBX-USED-WEIGHT-1M" in headers
    status, info, _ = await rest.call("GET", "exchangeInfo")
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    status, one, _ = await rest.call("GET", "exchangeInfo", {"symbol": "ETHUSDT"})
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"] and one["symbols"][0]["quoteAsset"] == "USDT"
    status, some, _ = await rest.call("GET", "exchangeInfo", raw="symbols=%5B%22ETHUSDT%22,%22BTCUSDT%22%5D")
    assert [s["symbol"] for s in some["symbols"]] == ["ETHUSDT", "BTCUSDT"]
    assert (await rest.call("GET", "exchangeInfo", {"symbol": "NOPEUSDT"}))[:2] == (
        400,
        {"code": -1121, "msg": "Invalid symbol."},
    )
    status, price, _ = await rest.call("GET", "ticker/price", {"symbol": "BTCUSDT"})
    assert set(price) == {"symbol", "price"} and Decimal(price["price"]) > 0
    status, prices, _ = await rest.call("GET", "ticker/price")
    assert [p["symbol"] for p in prices] == ["BTCUSDT", "ETHUSDT"]
    status, avg, _ = await rest.call("GET", "avgPrice", {"symbol": "ETHUSDT"})
    assert avg["mins"] == 5 and Decimal(avg["price"]) > 0 and isinstance(avg["closeTime"], int)


async def test_klines_serve_history_and_the_forming_candle(rest, live: SimulatorProcess) -> None:
    status, rows, _ = await rest.call("GET", "klines", {"symbol": "BTCUSDT", "interval": "1m"})
    market_time = live.state()["market"]["market_time"]
    assert status == 200 and len(rows) == 500 and all(len(r) == 12 for r in rows)
    assert all(b[0] - a[0] == 60_000 for a, b in itertools.pairwise(rows))
    assert rows[-1][0] <= market_time and rows[-1][6] == rows[-1][0] + 59_999
    assert all(isinstance(r[0], int) and isinstance(r[8], int) and r[11] == "0" for r in rows)
    status, first, _ = await rest.call(
        "GET", "klines", {"symbol": "BTCUSDT", "interval": "1m", "startTime": 0, "limit": 1}
    )
    assert first[0][1:6] == [
        "105573.73000000",
        "105597.10000000",
        "105554.31000000",
        "105554.32000000",
        "10.82647000",
    ]  # the first row of the bundled file
    status, ranged, _ = await rest.call(
        "GET",
        "klines",
        {"symbol": "BTCUSDT", "interval": "1m", "startTime": first[0][0] + 60_000, "endTime": first[0][0] + 180_000},
    )
    assert [r[0] - first[0][0] for r in ranged] == [60_000, 120_000, 180_000]
    status, big, _ = await rest.call("GET", "klines", {"symbol": "BTCUSDT", "interval": "15m", "limit": 3})
    assert status == 200 and len(big) == 3 and all(r[0] % 900_000 == 0 for r in big)
    assert (await rest.call("GET", "klines", {"symbol": "BTCUSDT", "interval": "7m"}))[:2] == (
        400,
        {"code": -1120, "msg": "Invalid interval."},
    )
    assert (await rest.call("GET", "klines", {"interval": "1m"}))[:2] == (
        400,
        {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."},
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"api_key": None}, (401, -2014, "API-key format invalid.")),
        ({"api_key": "not a key!"}, (401, -2014, "API-key format invalid.")),
        ({"api_key": "another-key"}, (401, -2015, "Invalid API-key, IP, or permissions for action.")),
        ({"timestamp": 1}, (400, -1021, "Timestamp for this request is outside of the recvWindow.")),
        ({"timestamp": "future"}, (400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")),
    ],
)
async def test_signed_request_rejections(rest, kwargs, expected) -> None:
    if kwargs.get("timestamp") == "future":
        kwargs = {"timestamp": now_ms() + 1500}
    status, body, _ = await rest.call("GET", "account", signed=True, **kwargs)
    assert (status, body["code"], body["msg"]) == expected


async def test_signature_checks_use_the_raw_bytes(rest, live: SimulatorProcess) -> None:
    ts = now_ms()
    ccxt_style = f"timestamp={ts}&omitZeroBalances=true&recvWindow=10000"  # unsorted, as ccxt sends
    status, body, _ = await rest.call(
        "GET", "account", signed=True, raw=f"{ccxt_style}&signature={live.sign(ccxt_style)}"
    )
    assert status == 200 and all(Decimal(b["free"]) + Decimal(b["locked"]) > 0 for b in body["balances"])
    upper = live.sign(ccxt_style).upper()
    assert (await rest.call("GET", "account", signed=True, raw=f"{ccxt_style}&signature={upper}"))[0] == 200
    tampered = ccxt_style.replace("10000", "10001")
    assert (await rest.call("GET", "account", signed=True, raw=f"{tampered}&signature={live.sign(ccxt_style)}"))[1] == {
        "code": -1022,
        "msg": "Signature for this request is not valid.",
    }
    resorted = "&".join(sorted(ccxt_style.split("&")))
    assert (await rest.call("GET", "account", signed=True, raw=f"{resorted}&signature={live.sign(ccxt_style)}"))[1][
        "code"
    ] == -1022
    form = urlencode(
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.00100",
            "price": "50000.00",
            "timestamp": now_ms(),
        }
    )
    status, placed, _ = await rest.call(
        "POST", "order/test", signed=True, in_body=True, raw=f"{form}&signature={live.sign(form)}"
    )
    assert (status, placed) == (200, {})
    missing = f"timestamp={now_ms()}"
    assert (await rest.call("GET", "account", signed=True, raw=missing))[1] == {
        "code": -1102,
        "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    }
    window = f"timestamp={now_ms()}&recvWindow=60001"
    assert (await rest.call("GET", "account", signed=True, raw=f"{window}&signature={live.sign(window)}"))[1] == {
        "code": -1102,
        "msg": "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
    }
    dup = f"timestamp={now_ms()}&timestamp={now_ms()}"
    assert (await rest.call("GET", "account", signed=True, raw=f"{dup}&signature={live.sign(dup)}"))[1] == {
        "code": -1101,
        "msg": "Duplicate values for a parameter detected.",
    }


ORDER_ERRORS = [
    ({"type": "MARKET", "quantity": "0.000015"}, -1013, "Filter failure: LOT_SIZE"),
    (
        {"type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": "90000.001"},
        -1013,
        "Filter failure: PRICE_FILTER",
    ),
    ({"type": "MARKET", "quantity": "0.00001"}, -1013, "Filter failure: NOTIONAL"),
    ({"type": "MARKET", "quantity": "150"}, -1013, "Filter failure: MARKET_LOT_SIZE"),
    ({"type": "MARKET", "quantity": "0.0010000001"}, -1111, "Parameter 'quantity' has too much precision."),
    (
        {"type": "MARKET", "quantity": "abc"},
        -1100,
        "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    ),
    (
        {"type": "MARKET", "quantity": "0.001", "timeInForce": "GTC"},
        -1106,
        "Parameter 'timeInForce' sent when not required.",
    ),
    ({"type": "MARKET"}, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"),
    (
        {"type": "LIMIT", "quantity": "0.001", "price": "90000"},
        -1102,
        "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
    ),
    ({"type": "MARKET", "quantity": "0.001", "symbol": "XRPUSDT"}, -1121, "Invalid symbol."),
    (
        {"type": "LIMIT", "timeInForce": "GTC", "quantity": "80", "price": "100000"},
        -2010,
        "Account has insufficient balance for requested action.",
    ),
]


@pytest.mark.parametrize(("params", "code", "msg"), ORDER_ERRORS)
async def test_order_rejections(rest, params, code, msg) -> None:
    full = {"symbol": "BTCUSDT", "side": "BUY", **params}
    status, body, headers = await rest.call("POST", "order", full, signed=True)
    assert (status, body) == (400, {"code": code, "msg": msg})
    assert "X-MBX-USED-WEIGHT-1M" in headers and "X-MBX-ORDER-COUNT-10S" not in headers


async def test_order_lifecycle_shapes_and_lookups(rest, live: SimulatorProcess) -> None:
    cid = f"rest-{now_ms()}"
    status, ack, headers = await rest.call(
        "POST",
        "order",
        {
            "symbol": "ETHUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.01",
            "newOrderRespType": "ACK",
            "newClientOrderId": cid,
        },
        signed=True,
    )
    assert status == 200 and set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert int(headers["X-MBX-ORDER-COUNT-10S"]) >= 1 and int(headers["X-MBX-ORDER-COUNT-1D"]) >= 1
    status, result, _ = await rest.call(
        "POST",
        "order",
        {"symbol": "ETHUSDT", "side": "SELL", "type": "MARKET", "quoteOrderQty": "20", "newOrderRespType": "RESULT"},
        signed=True,
    )
    assert "fills" not in result and result["status"] == "FILLED" and result["origQuoteOrderQty"] == "20.00000000"
    assert Decimal(result["cummulativeQuoteQty"]) <= 20
    status, query, _ = await rest.call("GET", "order", {"symbol": "ETHUSDT", "origClientOrderId": cid}, signed=True)
    assert query["orderId"] == ack["orderId"] and query["status"] == "FILLED" and query["executedQty"] == "0.01000000"
    assert (
        await rest.call(
            "GET", "order", {"symbol": "ETHUSDT", "orderId": ack["orderId"], "origClientOrderId": "other"}, signed=True
        )
    )[1]["code"] == -2039
    status, trades, _ = await rest.call(
        "GET", "myTrades", {"symbol": "ETHUSDT", "orderId": ack["orderId"]}, signed=True
    )
    assert [t["orderId"] for t in trades] == [ack["orderId"]] and trades[0]["isBuyer"] is True
    from_id = trades[0]["id"]
    status, later, _ = await rest.call(
        "GET", "myTrades", {"symbol": "ETHUSDT", "fromId": from_id, "limit": 2}, signed=True
    )
    assert [t["id"] for t in later][:1] == [from_id] and len(later) <= 2
    status, orders, _ = await rest.call(
        "GET", "allOrders", {"symbol": "ETHUSDT", "orderId": ack["orderId"]}, signed=True
    )
    assert [o["orderId"] for o in orders][:2] == [ack["orderId"], result["orderId"]]
    for price in ("1000.00", "1001.00"):
        await rest.call(
            "POST",
            "order",
            {
                "symbol": "ETHUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": price,
            },
            signed=True,
        )
    status, open_orders, _ = await rest.call("GET", "openOrders", {"symbol": "ETHUSDT"}, signed=True)
    assert {o["price"] for o in open_orders} >= {"1000.00000000", "1001.00000000"}
    status, cancelled, _ = await rest.call("DELETE", "openOrders", {"symbol": "ETHUSDT"}, signed=True)
    assert status == 200 and {c["status"] for c in cancelled} == {"CANCELED"} and len(cancelled) >= 2
    assert (await rest.call("DELETE", "openOrders", {"symbol": "ETHUSDT"}, signed=True))[1] == {
        "code": -2011,
        "msg": "Unknown order sent.",
    }
    assert (await rest.call("DELETE", "order", {"symbol": "ETHUSDT", "orderId": 99_999_999}, signed=True))[1] == {
        "code": -2011,
        "msg": "Unknown order sent.",
    }
    assert (await rest.call("GET", "order", {"symbol": "ETHUSDT", "orderId": 99_999_999}, signed=True))[1] == {
        "code": -2013,
        "msg": "Order does not exist.",
    }
    assert (await rest.call("GET", "order", {"symbol": "ETHUSDT"}, signed=True))[1] == {
        "code": -1102,
        "msg": "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!",
    }


async def test_duplicate_client_id_among_open_orders(rest) -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "60000.00",
        "newClientOrderId": f"dup-{now_ms()}",
    }
    first = await rest.call("POST", "order", params, signed=True)
    assert first[0] == 200 and first[1]["status"] == "NEW"
    assert (await rest.call("POST", "order", params, signed=True))[1] == {"code": -2010, "msg": "Duplicate order sent."}
    cancel = await rest.call(
        "DELETE",
        "order",
        {"symbol": "BTCUSDT", "origClientOrderId": params["newClientOrderId"], "newClientOrderId": "my-cancel"},
        signed=True,
    )
    assert cancel[1]["clientOrderId"] == "my-cancel" and cancel[1]["origClientOrderId"] == params["newClientOrderId"]


async def test_order_test_and_commission_rates(rest, live: SimulatorProcess) -> None:
    before = len(live.state()["orders"])
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
    assert (await rest.call("POST", "order/test", params, signed=True))[:2] == (200, {})
    _status, rates, _ = await rest.call("POST", "order/test", {**params, "computeCommissionRates": "true"}, signed=True)
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    assert (await rest.call("POST", "order/test", {**params, "quantity": "0.000015"}, signed=True))[1]["code"] == -1013
    assert len(live.state()["orders"]) == before
    _status, account, _ = await rest.call("GET", "account", signed=True)
    assert account["commissionRates"] == {
        "maker": "0.00100000",
        "taker": "0.00100000",
        "buyer": "0.00000000",
        "seller": "0.00000000",
    }
    assert account["makerCommission"] == 10 and account["accountType"] == "SPOT"


async def test_listen_key_endpoints_are_gone(rest, live: SimulatorProcess) -> None:
    async with rest.session.post(live.base_url + "/api/v3/userDataStream") as response:
        assert response.status == 410


async def test_weight_header_counts_up(rest) -> None:
    first = int((await rest.call("GET", "exchangeInfo"))[2]["X-MBX-USED-WEIGHT-1M"])
    second = int((await rest.call("GET", "exchangeInfo"))[2]["X-MBX-USED-WEIGHT-1M"])
    assert second - first == 20 or second < first  # +20 per exchangeInfo unless a new minute began


async def wait_clear_of_boundary(period_s: float, margin_s: float) -> None:
    """Fixed windows reset at clock boundaries; start a check well inside one window."""
    left = period_s - time.time() % period_s
    if left < margin_s:
        await asyncio.sleep(left + 0.05)


async def test_rate_limits_answer_429_with_retry_after(tmp_path, rest) -> None:
    with start_simulator(
        tmp_path, speed=600, extra_env={"EXCHANGE_SIM_WEIGHT_LIMIT": "45", "EXCHANGE_SIM_ORDER_LIMIT_10S": "2"}
    ) as small:
        rest.sim = small
        _, ticker, _ = await rest.call("GET", "ticker/price", {"symbol": "BTCUSDT"})
        # A BUY 10 % under the market rests: it stays in the unfilled order count.
        resting = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.0001",
            "price": str((Decimal(ticker["price"]) * Decimal("0.9")).quantize(Decimal("0.01"))),
        }
        market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"}
        await wait_clear_of_boundary(10, 4)
        # Orders that trade at once are taken off the count again (Binance's unfilled order count).
        for _ in range(3):
            status, _, headers = await rest.call("POST", "order", market, signed=True)
            assert (status, headers["X-MBX-ORDER-COUNT-10S"]) == (200, "1")
        for count in ("1", "2"):
            status, _, headers = await rest.call("POST", "order", resting, signed=True)
            assert (status, headers["X-MBX-ORDER-COUNT-10S"]) == (200, count)
        status, body, headers = await rest.call("POST", "order", market, signed=True)
        assert (status, body) == (
            429,
            {"code": -1015, "msg": "Too many new orders; current limit is 2 orders per 10 SECOND."},
        )
        assert 1 <= int(headers["Retry-After"]) <= 10
        await wait_clear_of_boundary(60, 5)
        statuses = [(await rest.call("GET", "exchangeInfo"))[:2] for _ in range(3)]
        assert statuses[0][0] == 200 and statuses[-1][0] == 429
        assert (
            statuses[-1][1]["code"] == -1003
            and "current limit is 45 request weight per 1 MINUTE" in statuses[-1][1]["msg"]
        )
