"""``PROTECTION=exchange`` in the backtest: the OCO's legs fill on the simulator's walk order inside a
candle, the ``LIMIT_MAKER`` leg at its price with the maker fee, the stop leg at the stop (at the
open on a gap), a ``STOP_LOSS_LIMIT`` gapped below its limit rests there; the compiled kernel
agrees with the Python reference and with the simulator's own price walk.

Entries signal at close 100 -> stop-loss 98, take-profit 105 (2 % / 5 %, tick 0.01).
Candles are (open, high, low, close).
"""

from __future__ import annotations

import random
from decimal import Decimal as D

import numpy as np
import pytest

from backtest import BacktestConfig, fills, kernel, oco, run_backtest
from backtest.config import StopLeg, parse_run_settings
from services.exchange_sim.candles import Candle
from services.exchange_sim.walk import step_price, walk_points
from shared.parameters import ParameterError, StrategyParameters
from shared.trading.protection import ExitReason, exit_reason, stop_limit_price
from shared.trading.vocabulary import ProtectionMode
from tests.backtest.test_backtest_engine import candles, with_signals

QUIET = (100.0, 100.5, 99.5, 100.0)
PARAMS = StrategyParameters(STOP_LOSS_PERCENTAGE=D("0.02"), TAKE_PROFIT_PERCENTAGE=D("0.05"))
EXCHANGE = BacktestConfig(symbol="BTCUSDT", protection=ProtectionMode.EXCHANGE)
STOP_LIMIT = BacktestConfig(
    symbol="BTCUSDT",
    protection=ProtectionMode.EXCHANGE,
    stop_leg=StopLeg.STOP_LOSS_LIMIT,
    stop_limit_offset=D("0.01"),  # limit 98 x 0.99 = 97.02
)


def walk(
    rows: list[tuple[float, float, float, float]],
    entries: set[int],
    exits: set[int] = frozenset(),
    limit: float = 0.0,
) -> list[tuple[int, int, int, float]]:
    o, h, lo, c = (np.array(column, dtype=float) for column in zip(*rows, strict=True))
    n = len(rows)
    entry = np.array([i in entries for i in range(n)])
    exit_ = np.array([i in exits for i in range(n)])
    stop_loss = np.where(entry, np.round(c * 0.98, 2), np.nan)
    take_profit = np.where(entry, np.round(c * 1.05, 2), np.nan)
    stop_limit = np.where(entry, limit, np.nan)
    out = (np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1))
    count = oco.walk_trades_oco(o, h, lo, c, entry, exit_, stop_loss, stop_limit, take_profit, 0, *out)
    return [(int(out[0][k]), int(out[1][k]), int(out[2][k]), float(out[3][k])) for k in range(count)]


def test_a_candle_spanning_both_legs_fills_the_one_its_walk_reaches_first() -> None:
    bullish, bearish = (100.0, 106.0, 97.0, 101.0), (100.0, 106.0, 97.0, 99.0)
    assert walk([QUIET, bullish, QUIET], {0}) == [(0, 1, kernel.STOP_LOSS, 98.0)]  # low first
    assert walk([QUIET, bearish, QUIET], {0}) == [(0, 1, kernel.TAKE_PROFIT, 105.0)]  # high first
    flat = (100.0, 106.0, 97.0, 100.0)  # close = open walks as a bullish candle
    assert walk([QUIET, flat, QUIET], {0}) == [(0, 1, kernel.STOP_LOSS, 98.0)]


def test_the_limit_maker_leg_sells_at_its_price_also_when_the_candle_opens_above_it() -> None:
    assert walk([QUIET, (106.0, 107.0, 105.5, 106.5), QUIET], {0}) == [(0, 1, kernel.TAKE_PROFIT, 105.0)]


def test_a_gap_below_the_stop_sells_a_stop_loss_leg_at_the_open() -> None:
    assert walk([QUIET, (97.0, 97.5, 96.0, 97.0), QUIET], {0}) == [(0, 1, kernel.STOP_LOSS, 97.0)]
    # A STOP_LOSS_LIMIT whose limit 96.5 is below that open sells there too, as a taker.
    assert walk([QUIET, (97.0, 97.5, 96.0, 97.0), QUIET], {0}, limit=96.5) == [(0, 1, kernel.STOP_LOSS, 97.0)]


def test_a_stop_limit_gapped_below_its_limit_rests_until_the_price_comes_back() -> None:
    rows = [QUIET, (95.0, 96.0, 94.0, 95.5), (95.5, 96.9, 95.0, 96.8), (96.8, 97.5, 96.5, 97.2), QUIET]
    assert walk(rows, {0}, limit=97.02) == [(0, 3, kernel.STOP_LIMIT_RESTED, 97.02)]
    # Candle 1's own high coming back to the limit fills it in that candle.
    assert walk([QUIET, (95.0, 97.1, 94.0, 95.5), QUIET], {0}, limit=97.02) == [(0, 1, kernel.STOP_LIMIT_RESTED, 97.02)]
    # While it rests unfilled the take-profit leg has expired: the high of 106 sells nothing.
    rows = [QUIET, (95.0, 96.0, 94.0, 95.5), (95.0, 96.0, 94.0, 95.5), QUIET]
    assert walk(rows, {0}, limit=97.02) == [(0, 3, kernel.STOP_LIMIT_RESTED, 97.02)]
    # An exit signal at a close cancels it and sells at that close.
    assert walk(rows, {0}, {2}, limit=97.02) == [(0, 2, kernel.SIGNAL, 95.5)]


def test_inside_a_candle_the_stop_limit_sells_at_the_stop() -> None:
    assert walk([QUIET, (100.0, 101.0, 95.0, 100.5), QUIET], {0}, limit=97.02) == [(0, 1, kernel.STOP_LOSS, 98.0)]


def test_the_compiled_kernel_agrees_with_the_python_reference() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        stop, take = 98.0, 105.0
        limit = rng.choice([0.0, 97.02, 96.0, stop])
        open_ = rng.choice([rng.uniform(92.0, 110.0), stop, take, limit or stop])
        close = rng.uniform(92.0, 110.0)
        high = max(open_, close) + rng.choice([0.0, rng.uniform(0.0, 6.0)])
        low = min(open_, close) - rng.choice([0.0, rng.uniform(0.0, 6.0)])
        triggered = rng.random() < 0.1 and limit > 0
        expected = fills.oco_candle_exit(open_, high, low, close, stop, limit, take, triggered)
        code, price, rests = oco.oco_candle_exit(open_, high, low, close, stop, limit, take, triggered)
        reason = None if code == kernel.NONE else kernel.REASONS[code]
        assert (reason, None if code == kernel.NONE else price, rests) == expected, (open_, high, low, close)


@pytest.mark.parametrize("substeps", [1, 15])
def test_the_first_leg_reached_is_the_one_the_simulators_walk_reaches_first(substeps: int) -> None:
    """Every step of the simulator's walk of a candle, checked in order against the legs (the stop
    at or below, the take-profit at or above), reaches first the leg the backtest fills."""
    rng = random.Random(substeps)
    tick = D("0.01")
    met = set()
    for _ in range(3_000):
        stop, take = D("98.00"), D("105.00")
        prices = sorted(D(str(round(rng.uniform(95.0, 108.0), 2))) for _ in range(2))
        open_, close = (prices[0], prices[1]) if rng.random() < 0.5 else (prices[1], prices[0])
        if not stop < open_ < take:
            continue  # a gap: the simulator fills a stop at its stop price, the backtest at the open
        high = max(open_, close) + D(str(round(rng.uniform(0.0, 5.0), 2)))
        low = min(open_, close) - D(str(round(rng.uniform(0.0, 5.0), 2)))
        points = walk_points(Candle(0, open_, high, low, close, D(1)))
        walked = (step_price(points, step, substeps, tick) for step in range(4 * substeps))
        first = next((r for r in (exit_reason(p, stop, take) for p in walked) if r is not None), None)
        reason, _, _ = fills.oco_candle_exit(float(open_), float(high), float(low), float(close), 98.0, 0.0, 105.0)
        assert reason == first, (open_, high, low, close)
        met.add(reason)
    assert met == {None, ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT}


def test_the_limit_maker_exit_pays_the_maker_fee(monkeypatch: pytest.MonkeyPatch) -> None:
    with_signals(monkeypatch, {0})
    rows = candles([(1e5, 1e5, 1e5, 1e5), (1e5, 106000.0, 97000.0, 99600.0), (99600.0,) * 4])
    config = BacktestConfig(symbol="BTCUSDT", protection=ProtectionMode.EXCHANGE, maker_fee=D("0.0002"))
    result = run_backtest(rows, StrategyParameters(), config)
    (trade,) = result.trades
    # 0.05 BTC bought, 0.04995 credited and sold at the take-profit 105000 (5 %) less 0.02 %.
    assert (trade.exit_reason, trade.exit_price, trade.maker_exit) == (ExitReason.TAKE_PROFIT, D("105000.00"), True)
    assert trade.quote_received == D("0.04995") * D("105000.00") * D("0.9998")
    assert result.summary["fees_paid"] == pytest.approx(5.0 + 0.04995 * 105000 * 0.0002)
    assert result.summary["profit"]["fees_quote"] == "6.05"  # 5 + 1.04895 (the taker rate: 10.24)
    assert result.summary["settings"]["MAKER_FEE"] == "0.0002"
    # The bot's watch on the same candles: the stop first (open, low, high), at the taker fee.
    bot = run_backtest(rows, StrategyParameters(), BacktestConfig(symbol="BTCUSDT", maker_fee=D("0.0002")))
    assert [(t.exit_reason, t.maker_exit) for t in bot.trades] == [(ExitReason.STOP_LOSS, False)]


def test_a_stop_limit_that_rested_pays_the_maker_fee_and_sells_at_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    with_signals(monkeypatch, {0})
    rows = candles([QUIET, (95.0, 96.0, 94.0, 95.5), (95.5, 97.5, 95.0, 97.2), QUIET])
    (trade,) = run_backtest(rows, PARAMS, STOP_LIMIT).trades
    assert stop_limit_price(D("98.00"), D("0.01"), D("0.01")) == D("97.02")
    assert (trade.exit_index, trade.exit_reason, trade.exit_price, trade.maker_exit) == (
        2,
        ExitReason.STOP_LOSS,
        D("97.02"),
        True,
    )
    # The STOP_LOSS leg sells at the gap's open, as a taker.
    (trade,) = run_backtest(rows, PARAMS, EXCHANGE).trades
    assert (trade.exit_index, trade.exit_price, trade.maker_exit) == (1, D("95.0"), False)


def test_moving_stops_meet_the_replaced_oco(monkeypatch: pytest.MonkeyPatch) -> None:
    # Trailing 2 % behind the closes: 104 x 0.98 = 101.92 after candle 1; candle 2 is bearish and
    # spans 101.92 and the take-profit 105: its high comes first on the exchange, its low for the bot.
    with_signals(monkeypatch, {0})
    rows = candles([QUIET, (100.0, 104.5, 99.5, 104.0), (104.0, 105.5, 101.0, 101.5), QUIET])
    params = PARAMS.model_copy(update={"TRAILING_STOP_PERCENTAGE": D("0.02")})
    (trade,) = run_backtest(rows, params, EXCHANGE).trades
    # The moved stop replaced the OCO by a single stop: the take-profit is the bot's, a taker's sale.
    assert (trade.exit_index, trade.exit_reason, trade.exit_price, trade.maker_exit) == (
        2,
        ExitReason.TAKE_PROFIT,
        D("105.00"),
        False,
    )
    (trade,) = run_backtest(rows, params, BacktestConfig(symbol="BTCUSDT")).trades
    assert (trade.exit_index, trade.exit_reason, trade.exit_price) == (2, ExitReason.STOP_LOSS, D("101.92"))


def test_after_the_first_replacement_the_take_profit_is_the_bots_at_the_first_walk_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Candle 1 closes at 103 (trailing 2 %: the stop moves to 100.94); candle 2 opens at 106,
    # above the take-profit 105: the OCO's LIMIT_MAKER leg would sell at 105 as maker, the bot
    # sells at the first price it sees, the open, as a taker.
    with_signals(monkeypatch, {0})
    rows = candles([QUIET, (100.0, 103.5, 99.5, 103.0), (106.0, 107.0, 105.5, 106.5), QUIET])
    trailing = PARAMS.model_copy(update={"TRAILING_STOP_PERCENTAGE": D("0.02")})
    (trade,) = run_backtest(rows, trailing, EXCHANGE).trades
    assert (trade.exit_index, trade.exit_reason, trade.exit_price, trade.maker_exit) == (
        2,
        ExitReason.TAKE_PROFIT,
        D("106.0"),
        False,
    )
    (trade,) = run_backtest(rows, PARAMS, EXCHANGE).trades  # no moving stop: the OCO's leg
    assert (trade.exit_index, trade.exit_reason, trade.exit_price, trade.maker_exit) == (
        2,
        ExitReason.TAKE_PROFIT,
        D("105.00"),
        True,
    )


def test_the_protection_settings_parse_and_name_a_bad_value() -> None:
    _, config = parse_run_settings("PROTECTION=exchange STOP_LEG=stop_loss_limit STOP_LIMIT_OFFSET=0.002 MAKER_FEE=0")
    assert (config.protection, config.stop_leg, config.stop_limit_offset, config.exit_maker_fee) == (
        ProtectionMode.EXCHANGE,
        StopLeg.STOP_LOSS_LIMIT,
        D("0.002"),
        D("0"),
    )
    _, config = parse_run_settings("FEE=0.00075")
    assert (config.protection, config.stop_leg, config.exit_maker_fee) == (
        ProtectionMode.BOT,
        StopLeg.STOP_LOSS,
        D("0.00075"),
    )
    with pytest.raises(ParameterError) as caught:
        parse_run_settings("PROTECTION=oco STOP_LEG=MARKET STOP_LIMIT_OFFSET=0.5 MAKER_FEE=1")
    assert {name for name, _ in caught.value.problems} == {"PROTECTION", "STOP_LEG", "STOP_LIMIT_OFFSET", "MAKER_FEE"}
