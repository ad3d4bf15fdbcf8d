"""Fee dust in the backtest: the buy commission is taken in base, each exit sells the position and
the dust of earlier exits rounded down to the step, so dust never exceeds one step and never
starves later entries of cash."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

from backtest.engine import run_backtest
from shared.candles import load_candles
from shared.parameters import validate_parameters
from shared.trading import profit
from tests.support.shared_data import SharedData

MAIN = "BTCUSDT_1m_2025-05-20_2025-08-18.csv.gz"


def test_the_main_series_at_two_percent_risk_never_skips_an_entry_while_dust_could_pay_for_it(
    shared_data: SharedData,
) -> None:
    frame = load_candles(shared_data.file(MAIN))
    assert len(frame) == 130_708
    result = run_backtest(frame, validate_parameters({"RISK_PER_TRADE": "0.02"}))
    step, fee = result.filters.market_step, result.config.fee
    trades = result.trades
    assert len(trades) > 2000
    # Every exit sold the credited position plus the dust it carried in, to the step.
    for before, trade in itertools.pairwise(trades):
        assert trade.dust_in == before.dust_out
    assert all(t.dust_out < step for t in trades)
    assert all(t.sold_quantity == (t.quantity * (1 - fee) + t.dust_in) // step * step for t in trades)
    assert sum(1 for t in trades if t.sold_quantity > t.quantity * (1 - fee)) > 100  # the dust was sold
    # No entry is refused for want of cash while the bot holds dust worth an order.
    for skipped in result.skipped:
        assert skipped.dust * skipped.price < result.filters.market_min_notional, skipped
    # Equity counts the dust at the last price, and the read model says the same.
    last = D(repr(float(result.candles.close[-1])))
    block = result.summary["profit"]
    assert D(block["dust_quantity"]) == trades[-1].dust_out < step
    realised = sum((t.quote_received - t.quote_spent for t in trades), D(0))
    assert abs(
        D(str(result.summary["final_equity"])) - (result.config.balance + realised + trades[-1].dust_out * last)
    ) < D("0.000001")
    assert D(block["equity_quote"]) == (result.config.balance + realised + trades[-1].dust_out * last).quantize(
        D("0.01")
    )
    assert block["trades"] == len(trades) and block["realised_quote"] == format(realised.quantize(D("0.01")), "f")


def test_profit_block_comes_from_the_read_model_over_the_same_trades(sample_file) -> None:
    from backtest.engine import trade_records

    result = run_backtest(load_candles(sample_file), validate_parameters({}))
    records = trade_records(result.trades, "BTCUSDT", result.config.fee, 60_000)
    figures = profit.figures(
        records, {"BTCUSDT": D(repr(float(result.candles.close[-1])))}, result.config.balance, single_symbol=True
    )
    assert figures.trades == result.summary["trades"] and figures.wins == result.summary["wins"]
    assert abs(float(figures.fees_quote) - result.summary["fees_paid"]) < 1e-6
    assert abs(float(figures.equity_quote or 0) - result.summary["final_equity"]) < 1e-6
