"""Numbers in a symbol's precision: tick decimals for prices, step decimals (down) for quantities."""

from __future__ import annotations

from decimal import Decimal as D

from shared.precision import Precision, decimals_of, fixed, pct, short_pct

BTC = Precision("BTCUSDT", "BTC", "USDT", D("0.01000000"), D("0.00001000"))


def test_decimals_follow_tick_and_step() -> None:
    assert (decimals_of(D("0.01000000")), decimals_of(D("0.00001")), decimals_of(D("1")), decimals_of(D("10"))) == (
        2,
        5,
        0,
        0,
    )
    assert BTC.price(D("105861.12000000")) == "105861.12"
    assert BTC.quantity(D("0.009999999")) == "0.00999"  # down: never more than was bought
    assert BTC.quote(D("1007.98101")) == "1007.98"
    assert pct(D("2.833333333333333333333333333")) == "2.83" and short_pct(D("6.80")) == "6.8"
    assert Precision("ETHBTC", "ETH", "BTC").quote(D("0.0123456789")) == "0.01234568"


def test_unknown_filters_give_at_most_eight_decimals_without_padding() -> None:
    unknown = Precision("BTCUSDT", "BTC", "USDT")
    assert unknown.price(D("107.1200000000000000000001")) == "107.12" and unknown.quantity(D("0.5")) == "0.5"
    assert fixed(D("-0.001"), 2) == "0.00" and fixed(None, 2) is None
    assert Precision.from_dict(BTC.to_dict()) == BTC and BTC.to_dict()["quantity_decimals"] == 5
