"""The profit read model on a ledger computed by hand: commission in base and in quote, a trade
sold in two exits, dust left by one exit and carried into the next trade, an open position."""

from __future__ import annotations

from decimal import Decimal as D

from shared.precision import Precision
from shared.trading import profit
from shared.trading.profit import PeriodUnit, TradeRecord

DAY = 86_400_000
MIN = 60_000
T0 = 1_747_699_200_000  # Tue 2025-05-20T00:00Z
BTC = Precision("BTCUSDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D("5"))

# 1) 0.01 BTC bought at 100000 (1000 USDT), commission 0.00001 BTC -> 0.00999 credited; sold at
#    101000: 1008.99 - 1.00899 commission = 1007.98101. Profit 7.98101, fees 1 + 1.00899.
ONE = TradeRecord(
    1,
    "BTCUSDT",
    "CLOSED",
    T0,
    T0 + 30 * MIN,
    D("100000"),
    D("101000"),
    D("0.00999"),
    D("0.00999"),
    D("1000"),
    D("1007.98101"),
    D("1.0"),
    D("1.00899"),
)
# 2) 0.02 bought at 100000 with 2 USDT commission (spent 2002); sold in two exits of 0.01 at
#    99000 (989.01 after 0.99) and 98000 (979.02 after 0.98): received 1968.03, profit -33.97.
TWO = TradeRecord(
    2,
    "BTCUSDT",
    "CLOSED",
    T0 + DAY,
    T0 + DAY + 90 * MIN,
    D("100000"),
    D("98500"),
    D("0.02"),
    D("0.02"),
    D("2002"),
    D("1968.03"),
    D("2"),
    D("1.97"),
)
# 3) 0.01 at 100000, commission 0.0000075 BTC -> 0.0099925 credited; 0.00999 sold at 102000:
#    1018.98 - 1.01898 = 1017.96102; 0.0000025 BTC is left as dust. Profit 17.96102.
THREE = TradeRecord(
    3,
    "BTCUSDT",
    "CLOSED",
    T0 + 8 * DAY,
    T0 + 8 * DAY + 60 * MIN,
    D("100000"),
    D("102000"),
    D("0.0099925"),
    D("0.00999"),
    D("1000"),
    D("1017.96102"),
    D("0.75"),
    D("1.01898"),
    dust_out=D("0.0000025"),
)
# 4) open: carries that dust in; 0.01 at 103000 (1030), 0.00001 BTC commission -> 0.00999 held.
FOUR = TradeRecord(
    4,
    "BTCUSDT",
    "OPEN",
    T0 + 40 * DAY,
    None,
    D("103000"),
    None,
    D("0.00999"),
    D("0"),
    D("1030"),
    None,
    D("1.03"),
    D("0"),
    dust_in=D("0.0000025"),
)
LEDGER = [ONE, TWO, THREE, FOUR]
PRICES = {"BTCUSDT": D("104000")}


def test_figures_of_a_hand_computed_ledger() -> None:
    f = profit.figures(LEDGER, PRICES, D("10000"), single_symbol=True)
    assert (f.trades, f.wins, f.losses, f.open_trades) == (3, 2, 1, 1)
    assert f.realised_quote == D("-8.02797")
    assert f.unrealised_quote == D("8.96")  # 0.00999 x 104000 - 1030
    assert f.dust_quantity == D("0.0000025") and f.dust_quote == D("0.26")
    assert f.fees_quote == D("8.77797")
    assert f.gross_profit_quote == D("25.94203") and f.gross_loss_quote == D("33.97")
    assert f.max_drawdown_quote == D("33.97")  # from 10007.98101 down to 9974.01101
    assert f.equity_quote == D("10001.19203")
    assert (f.avg_duration_ms, f.max_duration_ms) == (60 * MIN, 90 * MIN)
    assert f.best_trade is not None and f.best_trade.id == 3 and f.worst_trade is not None and f.worst_trade.id == 2
    body = profit.figures_dict(f, BTC)
    assert body["realised_quote"] == "-8.03" and body["realised_pct"] == "-0.08"
    assert body["win_rate_pct"] == "66.67" and body["profit_factor"] == "0.76"
    assert body["expectancy_quote"] == "-2.68" and body["max_drawdown_pct"] == "0.34"
    assert body["fees_quote"] == "8.78" and body["equity_quote"] == "10001.19" and body["dust_quantity"] == "0.00000250"
    assert body["best_trade"] == {"id": 3, "profit_quote": "17.96", "profit_pct": "1.80"}


def test_trade_rows_give_profit_after_fees_and_marks_an_open_position() -> None:
    assert TWO.profit_quote == D("-33.97") and TWO.fees_quote == D("3.97")
    assert TWO.profit_pct is not None and round(TWO.profit_pct, 4) == D("-1.6968")
    assert FOUR.profit_quote is None and FOUR.unrealised_quote(D("104000")) == D("8.96")
    assert FOUR.dust_held == D("0.0000025") and FOUR.position_held == D("0.00999")
    closing = TradeRecord(
        5, "BTCUSDT", "CLOSING", T0, None, D("100"), None, D("2"), D("1.5"), D("200"), D("160"), dust_in=D("0.2")
    )
    # Half a position sold for 160: 0.5 of the position and the 0.2 dust still held.
    assert closing.position_held == D("0.5") and closing.dust_held == D("0.2")
    assert closing.unrealised_quote(D("110")) == D("0.5") * 110 + 160 - 200


def test_dust_of_a_symbol_is_what_its_last_exit_left_or_the_open_trade_carries() -> None:
    assert profit.bot_dust([ONE, TWO, THREE]) == D("0.0000025")
    assert profit.bot_dust(LEDGER) == D("0.0000025")
    sold_with_it = TradeRecord(
        6,
        "BTCUSDT",
        "CLOSED",
        T0,
        T0 + MIN,
        D("1"),
        D("1"),
        D("0.00999"),
        D("0.00999"),
        D("1"),
        D("1"),
        dust_in=D("0.0000025"),
        dust_out=D("0.0000035"),
    )
    assert profit.bot_dust([THREE, sold_with_it]) == D("0.0000035")
    assert profit.bot_dust([]) == D("0")


def test_periods_by_utc_day_iso_week_and_month() -> None:
    days = profit.periods(LEDGER, PeriodUnit.DAY)
    assert [(p.label, p.trades, p.realised_quote) for p in days] == [
        ("2025-05-20", 1, D("7.98101")),
        ("2025-05-21", 1, D("-33.97")),
        ("2025-05-28", 1, D("17.96102")),
    ]
    assert days[0].start_ms == T0 and days[0].end_ms == T0 + DAY
    weeks = profit.periods(LEDGER, PeriodUnit.WEEK)  # Monday 2025-05-19 starts W21
    assert [(p.label, p.trades, p.wins) for p in weeks] == [("2025-W21", 2, 1), ("2025-W22", 1, 1)]
    assert weeks[0].start_ms == T0 - DAY
    months = profit.periods(LEDGER, PeriodUnit.MONTH)
    assert [(p.label, p.trades, p.fees_quote) for p in months] == [("2025-05", 3, D("7.74797"))]
    assert profit.period_dict(months[0], BTC)["realised_pct"] == "-0.20"  # -8.02797 / 4002


def test_equity_curve_and_its_drawdown() -> None:
    points = profit.equity_curve(LEDGER, D("10000"), now_ms=T0 + 41 * DAY, open_value_quote=D("9.22"))
    assert [p.trade_id for p in points] == [1, 2, 3, None]
    assert [p.equity_quote for p in points] == [D("10007.98101"), D("9974.01101"), D("9991.97203"), D("10001.19203")]
    assert points[1].drawdown_quote == D("33.97") and points[0].drawdown_quote == 0
    drawdown = profit.realised_drawdown([D("-5"), D("10"), D("-20")], None)
    assert drawdown.quote == D("20") and drawdown.pct is None


def test_summary_per_symbol_and_total() -> None:
    eth = TradeRecord(
        7, "ETHUSDT", "CLOSED", T0, T0 + MIN, D("2500"), D("2600"), D("0.1"), D("0.1"), D("250"), D("259.74")
    )
    summary = profit.summarise(
        [*LEDGER, eth], {**PRICES, "ETHUSDT": D("2600")}, D("10000"), ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    )
    assert summary.total.trades == 4 and summary.total.realised_quote == D("-8.02797") + D("9.74")
    assert summary.total.dust_quantity is None  # base units of several symbols do not add up
    assert summary.symbols["ETHUSDT"].realised_quote == D("9.74") and summary.symbols["SOLUSDT"].trades == 0
    assert summary.symbols["ETHUSDT"].equity_quote is None  # one symbol of several has no equity of its own
    no_trades = profit.figures([], {})
    assert no_trades.win_rate_pct is None and no_trades.profit_factor is None and no_trades.best_trade is None
