"""Sizing under real Binance filters, computed by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from shared.parameters import StrategyParameters
from shared.trading.sizing import (
    SymbolFilters,
    format_decimal,
    round_down_to_step,
    sellable_quantity,
    size_entry,
)

DEFAULTS = StrategyParameters()  # risk 1 %, allocation 100 %, stop 2 %

BTCUSDT_INFO = {
    "symbol": "BTCUSDT",
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "83.50000000", "stepSize": "0.00000000"},
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ],
}
BTC = SymbolFilters.from_exchange_info(BTCUSDT_INFO)
ETH = SymbolFilters(
    tick_size=D("0.01"), step_size=D("0.0001"), min_qty=D("0.0001"), max_qty=D("9000"), min_notional=D("5")
)
DOGE = SymbolFilters(
    tick_size=D("0.00001"), step_size=D("1"), min_qty=D("1"), max_qty=D("9000000"), min_notional=D("5")
)


def test_exchange_info_is_parsed_into_decimals() -> None:
    assert BTC.symbol == "BTCUSDT"
    assert (BTC.tick_size, BTC.step_size, BTC.min_qty, BTC.max_qty) == (
        D("0.01"),
        D("0.00001"),
        D("0.00001"),
        D("9000"),
    )
    assert BTC.market_step_size is None and BTC.market_min_qty is None  # 0 means "no extra rule"
    assert BTC.market_max_qty == D("83.5") and BTC.market_max_quantity == D("83.5")
    assert (BTC.min_notional, BTC.max_notional, BTC.apply_min_to_market, BTC.apply_max_to_market) == (
        D("5"),
        D("9000000"),
        True,
        False,
    )


def test_legacy_min_notional_filter_and_missing_filters() -> None:
    info = {
        "symbol": "X",
        "filters": [
            {"filterType": "PRICE_FILTER", "tickSize": "0.001"},
            {"filterType": "LOT_SIZE", "minQty": "0.1", "maxQty": "1000", "stepSize": "0.1"},
            {"filterType": "MIN_NOTIONAL", "minNotional": "10.0", "applyToMarket": False},
        ],
    }
    legacy = SymbolFilters.from_exchange_info(info)
    assert legacy.min_notional == D("10") and legacy.market_min_notional == 0
    with pytest.raises(ValueError, match="LOT_SIZE"):
        SymbolFilters.from_exchange_info({"symbol": "X", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "1"}]})


@pytest.mark.parametrize(
    ("quantity", "step", "expected"),
    [
        ("0.047190123", "0.00001", "0.04719"),
        ("0.1999", "0.0001", "0.1999"),
        ("701.94", "1", "701"),
        ("0.000009", "0.00001", "0"),
        ("5", "0.00001000", "5.00000"),
        ("1.23", "0", "1.23"),
        # 31 significant digits: dividing first would round 9999.999... up to 10000 and sell 0.1,
        # more than was credited
        ("0.0999999999999999999999999999999", "0.00001", "0.09999"),
    ],
)
def test_round_down_to_step(quantity: str, step: str, expected: str) -> None:
    assert round_down_to_step(D(quantity), D(step)) == D(expected)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1E-5", "0.00001"),
        ("0.04719000", "0.04719"),
        ("10.000", "10"),
        ("1E+2", "100"),
        ("0E-8", "0"),
        ("-0.0", "0"),
        ("123.450", "123.45"),
        ("0.1", "0.1"),
    ],
)
def test_format_decimal_is_plain_text(value: str, text: str) -> None:
    assert format_decimal(D(value)) == text


def test_btc_quantity_from_risk() -> None:
    # risk 10000 x 1 % = 100; stop distance 100000 x 2 % = 2000; 100 / 2000 = 0.05 BTC (5000 USDT <= 10000).
    result = size_entry(D("10000"), D("100000"), DEFAULTS, BTC)
    assert result.ok and result.quantity == D("0.05") and result.notional == D("5000")
    assert (result.allocation, result.risk_amount) == (D("10000"), D("100"))
    # 100 / (105954.54 x 0.02 = 2119.0908) = 0.0471900... -> 0.04719
    assert size_entry(D("10000"), D("105954.54"), DEFAULTS, BTC).quantity == D("0.04719")


def test_eth_and_doge_steps() -> None:
    # 1000 x 1 % = 10; 2500.37 x 2 % = 50.0074; 10 / 50.0074 = 0.199970... -> 0.1999 ETH
    assert size_entry(D("1000"), D("2500.37"), DEFAULTS, ETH).quantity == D("0.1999")
    # 100 x 1 % = 1; 0.07123 x 2 % = 0.0014246; 1 / 0.0014246 = 701.95... -> 701 DOGE (49.93 USDT)
    doge = size_entry(D("100"), D("0.07123"), DEFAULTS, DOGE)
    assert doge.quantity == D("701") and doge.notional == D("49.93223")


def test_quantity_is_capped_by_the_allocation() -> None:
    params = DEFAULTS.model_copy(
        update={"CAPITAL_ALLOCATION": D("0.5"), "RISK_PER_TRADE": D("0.05"), "STOP_LOSS_PERCENTAGE": D("0.01")}
    )
    # allocation 5000, of which 0.5 % headroom stays unspent: 4975; risk 250 / (50000 x 1 % = 500)
    # = 0.5 BTC = 25000 USDT > 4975 -> 4975 / 50000 = 0.0995 BTC
    result = size_entry(D("10000"), D("50000"), params, BTC)
    assert result.quantity == D("0.0995") and result.notional == D("4975")


def test_quantity_is_capped_by_max_quantity_and_market_lot_size() -> None:
    params = DEFAULTS.model_copy(
        update={"RISK_PER_TRADE": D("0.5"), "STOP_LOSS_PERCENTAGE": D("0.6"), "TAKE_PROFIT_PERCENTAGE": D("0.7")}
    )
    # allocation 1e9 at price 1000: wants 1e6 / 1 capped at allocation / price = 1e6, then MARKET_LOT_SIZE 83.5
    assert size_entry(D("1000000000"), D("1000"), params, BTC).quantity == D("83.5")


def test_market_lot_size_step_applies_when_stricter() -> None:
    strict = SymbolFilters(
        tick_size=D("0.01"),
        step_size=D("0.00001"),
        min_qty=D("0.00001"),
        max_qty=D("9000"),
        min_notional=D("5"),
        market_step_size=D("0.001"),
        market_min_qty=D("0.001"),
    )
    # 0.04719... rounded to the market step 0.001
    assert size_entry(D("10000"), D("105954.54"), DEFAULTS, strict).quantity == D("0.047")


def test_below_min_quantity_is_skipped_with_the_filter_named() -> None:
    # 0.5 x 1 % = 0.005 / 2000 = 0.0000025 BTC -> 0 on the 0.00001 step
    result = size_entry(D("0.5"), D("100000"), DEFAULTS, BTC)
    assert not result.ok and result.quantity is None
    assert result.reason.startswith("LOT_SIZE") and "minQty 0.00001" in result.reason


def test_below_min_notional_is_skipped_with_the_filter_named() -> None:
    # 10 x 1 % = 0.1; 0.07 x 2 % = 0.0014; 71.4 -> 71 DOGE = 4.97 USDT < 5
    result = size_entry(D("10"), D("0.07"), DEFAULTS, DOGE)
    assert result.quantity is None and result.reason == "NOTIONAL: order value 4.97 is below minNotional 5"


def test_no_free_balance_and_bad_price() -> None:
    assert "no free quote" in size_entry(D("0"), D("100"), DEFAULTS, BTC).reason
    with pytest.raises(ValueError, match="price must be positive"):
        size_entry(D("100"), D("0"), DEFAULTS, BTC)


def test_sellable_quantity_after_commission_in_base() -> None:
    # bought 0.04719 BTC, 0.1 % commission in BTC -> credited 0.04714281 -> sell 0.04714, 0.00000281 stays
    sell = sellable_quantity(D("0.04719") * D("0.999"), BTC, D("105801.59"))
    assert (sell.quantity, sell.remainder, sell.dust) == (D("0.04714"), D("0.00000281"), False)
    doge = sellable_quantity(D("701") * D("0.999"), DOGE)
    assert (doge.quantity, doge.remainder) == (D("700"), D("0.299"))


def test_sellable_quantity_reports_dust() -> None:
    below_step = sellable_quantity(D("0.000009"), BTC)
    assert below_step.dust and below_step.quantity == 0 and below_step.reason.startswith("LOT_SIZE")
    below_notional = sellable_quantity(D("0.00004995"), BTC, D("119776.04"))  # 0.00004 x 119776 = 4.79 < 5
    assert below_notional.dust and below_notional.reason.startswith("NOTIONAL")
    assert not sellable_quantity(D("0.00004995"), BTC).dust  # no price given: only the quantity is checked


def test_cost_never_exceeds_the_allocation_even_at_the_last_digit() -> None:
    params = DEFAULTS.model_copy(
        update={"RISK_PER_TRADE": D("0.5"), "STOP_LOSS_PERCENTAGE": D("0.01"), "TAKE_PROFIT_PERCENTAGE": D("0.02")}
    )
    one = SymbolFilters(tick_size=D("0.01"), step_size=D("1"), min_qty=D("1"), max_qty=D("1e9"))
    # Prices with 28 significant digits: allocation / price is rounded, the cost must still fit.
    for price in (D(1) / D(3), D(2) / D(3), D("0.07123")):
        result = size_entry(D("100"), price, params, one)
        assert result.quantity is not None and result.quantity * price <= D("100")
