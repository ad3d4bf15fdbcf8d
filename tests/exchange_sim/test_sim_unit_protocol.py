"""Pure protocol pieces: signatures, timing, parameters, filters, order validation."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.exchange_sim import auth
from services.exchange_sim.errors import ApiError
from services.exchange_sim.filters import parse_order
from services.exchange_sim.params import Params
from services.exchange_sim.symbols import make_spec, split_symbol

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
SPECS = {s: make_spec(s, 2, Decimal("100000")) for s in ("BTCUSDT", "ETHUSDT")}


def error_of(call, *args) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value.code, caught.value.msg


def test_doc_hmac_vector_verifies_case_insensitively() -> None:
    assert auth.hmac_hex(DOC_SECRET, DOC_PAYLOAD) == DOC_SIGNATURE
    assert auth.verify(DOC_SECRET, DOC_PAYLOAD, DOC_SIGNATURE)
    assert auth.verify(DOC_SECRET, DOC_PAYLOAD, DOC_SIGNATURE.upper())
    assert not auth.verify(DOC_SECRET, DOC_PAYLOAD.replace("quantity=1", "quantity=2"), DOC_SIGNATURE)


def test_rest_payload_is_raw_query_then_body_without_signature() -> None:
    query = f"{DOC_PAYLOAD[:40]}&signature=abc"
    body = f"{DOC_PAYLOAD[40:]}&signature=def"
    assert auth.rest_payload(query, body) == DOC_PAYLOAD[:40] + DOC_PAYLOAD[40:]
    unsorted = "timestamp=5&symbol=BTCUSDT&symbols=%5B%22A%22%5D&signature=x"
    assert auth.rest_payload(unsorted, "") == "timestamp=5&symbol=BTCUSDT&symbols=%5B%22A%22%5D"


def test_ws_api_doc_vector_uses_sorted_params() -> None:
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "signature": "ignored",
    }
    payload = auth.ws_payload(params)
    assert payload.startswith("apiKey=vmPUZE6") and payload.endswith("&type=LIMIT")
    assert auth.hmac_hex(DOC_SECRET, payload) == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_timing_rules() -> None:
    auth.check_timing(Decimal(10_999), Decimal(5000), 10_000)
    auth.check_timing(Decimal(5_000), Decimal(5000), 10_000)
    assert error_of(auth.check_timing, Decimal(11_000), Decimal(5000), 10_000) == (
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    )
    assert error_of(auth.check_timing, Decimal(4_999), Decimal(5000), 10_000) == (
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )


def test_recv_window_and_timestamp_parsing() -> None:
    assert auth.recv_window(Params({})) == 5000
    assert auth.recv_window(Params({"recvWindow": "6000.346"})) == Decimal("6000.346")
    assert error_of(auth.recv_window, Params({"recvWindow": "60001"})) == (
        -1102,
        "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
    )
    assert auth.timestamp_ms(Params({"timestamp": "1499827319559000"})) == Decimal("1499827319559")
    assert error_of(auth.timestamp_ms, Params({})) == (
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    )


def test_api_key_checks() -> None:
    auth.check_api_key("sim-key", "sim-key")
    assert error_of(auth.check_api_key, None, "sim-key")[0] == -2014
    assert error_of(auth.check_api_key, "bad key!", "sim-key") == (-2014, "API-key format invalid.")
    assert error_of(auth.check_api_key, "other-key", "sim-key") == (
        -2015,
        "Invalid API-key, IP, or permissions for action.",
    )


def test_params_duplicates_query_precedence_and_decimals() -> None:
    assert error_of(Params.parse, "a=1&a=2") == (-1101, "Duplicate values for a parameter detected.")
    params = Params.parse("quantity=2", "quantity=1&side=BUY")
    assert params.get("quantity") == "2" and params.get("side") == "BUY"
    assert error_of(Params({"quantity": "1e5"}).decimal, "quantity") == (
        -1100,
        "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    )
    assert error_of(Params({"quantity": "0.000000001"}).decimal, "quantity") == (
        -1111,
        "Parameter 'quantity' has too much precision.",
    )
    assert Params({"quantity": "0.100000000"}).decimal("quantity") == Decimal("0.1")
    assert Params({"limit": "5000"}).limit() == 1000


def order(**params: str) -> tuple[int, str]:
    base = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.001",
        "price": "100000",
    }
    base.update(params)
    return error_of(parse_order, Params({k: v for k, v in base.items() if v != "-"}), SPECS, Decimal(100000))


def test_filters_reject_with_exact_names() -> None:
    assert order(price="100000.001") == (-1013, "Filter failure: PRICE_FILTER")
    assert order(quantity="0.000015") == (-1013, "Filter failure: LOT_SIZE")
    assert order(quantity="0.00004") == (-1013, "Filter failure: NOTIONAL")
    assert order(price="600000") == (-1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
    assert order(type="MARKET", timeInForce="-", price="-", quantity="101") == (
        -1013,
        "Filter failure: MARKET_LOT_SIZE",
    )
    assert order(type="MARKET", timeInForce="-", price="-", quantity="-", quoteOrderQty="4.99") == (
        -1013,
        "Filter failure: NOTIONAL",
    )


def test_order_parameter_combinations() -> None:
    assert order(symbol="NOPEUSDT") == (-1121, "Invalid symbol.")
    assert order(side="HOLD") == (-1117, "Invalid side.")
    assert order(type="ICEBERG") == (-1116, "Invalid orderType.")
    assert order(timeInForce="GTX") == (-1115, "Invalid timeInForce.")
    assert order(price="-") == (-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
    assert order(type="MARKET", price="-") == (-1106, "Parameter 'timeInForce' sent when not required.")
    assert order(type="MARKET", timeInForce="-") == (-1106, "Parameter 'price' sent when not required.")
    assert order(type="MARKET", timeInForce="-", price="-", quantity="-") == (
        -1102,
        "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
    )
    assert order(type="STOP_LOSS") == (
        -1102,
        "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!",
    )
    assert order(type="STOP_LOSS", stopPrice="99000") == (-1106, "Parameter 'timeInForce' sent when not required.")
    assert order(type="STOP_LOSS", stopPrice="99000", timeInForce="-") == (
        -1106,
        "Parameter 'price' sent when not required.",
    )
    assert order(type="STOP_LOSS_LIMIT", stopPrice="99000", timeInForce="-") == (
        -1102,
        "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
    )
    assert order(type="TAKE_PROFIT_LIMIT", trailingDelta="100") == (
        -2010,
        "Trailing stop orders are not supported for this symbol.",
    )
    assert order(stopPrice="99000") == (-1106, "Parameter 'stopPrice' sent when not required.")
    assert order(type="STOP_LOSS_LIMIT", stopPrice="99000.001") == (-1013, "Filter failure: PRICE_FILTER")
    assert order(newClientOrderId="has space") == (
        -1100,
        "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
    )


def test_valid_orders_parse() -> None:
    request, resp = parse_order(
        Params({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quoteOrderQty": "50"}), SPECS, Decimal(100000)
    )
    assert (request.quote_qty, request.quantity, resp) == (Decimal(50), None, "FULL")
    request, resp = parse_order(
        Params({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "0.001", "price": "99000.5"}),
        SPECS,
        Decimal(100000),
    )
    assert (request.price, resp) == (Decimal("99000.5"), "ACK")
    request, resp = parse_order(
        Params({"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.001", "stopPrice": "99000"}),
        SPECS,
        Decimal(100000),
    )
    assert (request.stop_price, request.price, request.time_in_force, resp) == (Decimal(99000), None, None, "ACK")


def test_symbol_specs_known_and_derived() -> None:
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    assert split_symbol("BTCFDUSD") == ("BTC", "FDUSD")
    assert split_symbol("DOGEUSDT") == ("DOGE", "USDT")
    btc = make_spec("BTCUSDT", 2, Decimal(100000))
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("0.00001"),
        Decimal(5),
    )
    assert make_spec("ETHUSDT", 2, Decimal(2500)).step_size == Decimal("0.0001")
    doge = make_spec("DOGEUSDT", 5, Decimal("0.07"))
    assert (doge.tick_size, doge.step_size) == (Decimal("0.00001"), Decimal(1))
    derived = make_spec("XYZ1USDT", 3, Decimal("2500"))
    assert (derived.tick_size, derived.step_size, derived.quote) == (Decimal("0.001"), Decimal("0.001"), "USDT")
    filters = {f["filterType"]: f for f in btc.exchange_info()["filters"]}
    assert filters["NOTIONAL"] == {
        "filterType": "NOTIONAL",
        "minNotional": "5.00000000",
        "applyMinToMarket": True,
        "maxNotional": "9000000.00000000",
        "applyMaxToMarket": False,
        "avgPriceMins": 5,
    }
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"


def test_decimal_rounding() -> None:
    from services.exchange_sim.decimals import ceil_to_step, floor_to_step, fmt8, is_multiple, q8, round_to_step

    step = Decimal("0.00001")
    assert floor_to_step(Decimal("0.0019999"), step) == Decimal("0.00199")
    assert ceil_to_step(Decimal("100000.001"), Decimal("0.01")) == Decimal("100000.01")
    assert round_to_step(Decimal("100.005"), Decimal("0.01")) == Decimal("100.01")
    assert floor_to_step(Decimal("7.9"), Decimal(0)) == Decimal("7.9")
    assert is_multiple(Decimal("0.00120"), step) and not is_multiple(Decimal("0.000125"), step)
    assert fmt8(Decimal("105597.1")) == "105597.10000000" and fmt8(Decimal("-0")) == "0.00000000"
    assert q8(Decimal("0.2089500199")) == Decimal("0.20895002") and fmt8(Decimal("1E-9")) == "0.00000000"
