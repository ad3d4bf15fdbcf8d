"""Limit entries filled in parts (``MAKER_FILL_QUOTE``): the backtester's walk of a resting order
(``backtest.limit_entries.resolve``) against the simulator's own matching engine and replay walk
over real candles, and what a run makes of it (smaller positions, later candles, exits inside the
candle it opened in)."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from backtest import BacktestConfig, limit_entries, run_backtest
from backtest.config import parse_run_settings
from services.exchange_sim.account import Balances
from services.exchange_sim.candles import Series
from services.exchange_sim.market import Replay
from services.exchange_sim.matching import Engine, OrderRequest
from services.exchange_sim.symbols import make_spec
from shared.candles import CandleArrays, candle_arrays, load_candles
from shared.parameters import StrategyParameters
from shared.trading.limit_entry import limit_price
from tests.pipeline.ledger import BUNDLED

TICK, STEP = D("0.01"), D("0.00001")
PARAMS = StrategyParameters(
    ENTRY_ORDER="limit_maker",
    ENTRY_LIMIT_OFFSET_PERCENTAGE=D("0.0002"),
    ENTRY_LIMIT_TIMEOUT_CANDLES=3,
    STOP_LOSS_PERCENTAGE=D("0.002"),
)


def simulated(series: Series, origin: int, limit: D, quantity: D, quote: D, n: int) -> tuple[int, D, str] | None:
    """What the simulator's engine fills of a LIMIT_MAKER BUY placed after candle ``origin``'s
    close (the next open already walked), with the executor's cancels: at the timeout, or when
    part filled and the price reached that part's stop. None: nothing filled."""
    spec = make_spec("BTCUSDT", 2, D(100_000))
    engine = Engine({"BTCUSDT": spec}, Balances({"USDT": D(10**7)}), D(10**6), D(0), 0, maker_fill_quote=quote)
    replay = Replay(series, spec.tick_size, offset_ms=0, n=n, start=origin + 1)
    ticks = replay.advance(series.open_times[origin + PARAMS.ENTRY_LIMIT_TIMEOUT_CANDLES] + 60_000)
    request = OrderRequest("BTCUSDT", "BUY", "LIMIT_MAKER", None, quantity, None, limit, "entry")
    order, _ = engine.place(request, ticks[0].price, ticks[0].market_time)
    stop = limit * (1 - PARAMS.STOP_LOSS_PERCENTAGE)
    last = origin + PARAMS.ENTRY_LIMIT_TIMEOUT_CANDLES
    deadline = series.open_times[last] + 60_000
    # Up to the timeout's market time: the last candle's end and the next candle's open.
    for tick in ticks[1:]:  # the open of candle origin+1 was walked before the order landed
        engine.on_price("BTCUSDT", tick.price, tick.market_time)
        if order.status == "FILLED":
            return tick.index, order.executed_qty, "filled"
        if order.executed_qty > 0 and tick.price <= stop and tick.market_time < deadline:
            return tick.index, order.executed_qty, "stop_reached"
    assert ticks[-1].market_time == deadline and ticks[-1].index == last + 1
    return (last, order.executed_qty, "timeout") if order.executed_qty > 0 else None


@pytest.mark.parametrize(("quote", "n"), [(D("2000"), 1), (D("700"), 2), (D(0), 1)])
def test_a_resting_limit_entry_fills_as_the_simulators_engine_fills_it(quote: D, n: int) -> None:
    path = BUNDLED["BTCUSDT"]
    series = Series(path)
    arrays = candle_arrays(load_candles(path))
    walk = limit_entries.Walk(TICK, STEP, quote, n)
    seen = set()
    for origin in range(10, 6000, 23):
        limit = limit_price(D(repr(float(arrays.close[origin]))), PARAMS.ENTRY_LIMIT_OFFSET_PERCENTAGE, TICK)
        quantity = D("0.05")
        expected = simulated(series, origin, limit, quantity, quote, n)
        index, fill = limit_entries.resolve(
            arrays, limit_entries.LimitFill(origin, limit, True), quantity, PARAMS, walk
        )
        if expected is None:
            assert fill is None, origin
            continue
        assert fill is not None, (origin, expected)
        assert (index, fill.filled, fill.opened.value) == expected, origin
        seen.add(fill.opened.value)
    assert seen == ({"filled"} if quote == 0 else {"filled", "timeout", "stop_reached"})


def rows_to_arrays(rows: list[tuple[float, float, float, float]]) -> CandleArrays:
    o, h, lo, c = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    n = len(rows)
    return CandleArrays(np.arange(n, dtype=np.int64) * 60_000, o, h, lo, c, np.ones(n))


def test_parts_fill_at_each_step_that_reaches_the_limit_then_the_rest_is_cancelled_at_the_timeout() -> None:
    # Limit 100.00 (at the close). Candle 1 (bullish: open, low, high, close): only its low 99.9
    # reaches it; candle 2 (bearish: open, high, low, close): its low and then its close 99.95.
    rows = [(100, 100, 100, 100), (100.5, 101, 99.9, 100.6), (100.4, 100.5, 99.95, 99.95), (101, 101, 101, 101)]
    params = PARAMS.model_copy(update={"ENTRY_LIMIT_OFFSET_PERCENTAGE": D(0), "ENTRY_LIMIT_TIMEOUT_CANDLES": 2})
    walk = limit_entries.Walk(TICK, D("0.1"), D("30"), 1)  # 0.3 per step at 100
    fill = limit_entries.LimitFill(0, D("100.00"), True)
    index, opened = limit_entries.resolve(rows_to_arrays(rows), fill, D("2"), params, walk)
    # 0.3 at candle 1's low, 0.3 at candle 2's low, its close and its final step: 1.2 of 2.
    assert opened is not None and (index, opened.filled, opened.opened) == (2, D("1.2"), limit_entries.Opened.TIMEOUT)
    index, opened = limit_entries.resolve(rows_to_arrays(rows), fill, D("0.5"), params, walk)
    assert opened is not None and (index, opened.filled, opened.opened, opened.step) == (
        2,
        D("0.5"),
        limit_entries.Opened.FILLED,
        2,  # candle 2's low, its third walk step
    )


def test_a_run_with_maker_fill_quote_opens_smaller_positions_later_and_exits_inside_their_candle(shared_data) -> None:
    candles = load_candles(shared_data.main_series()).iloc[:20_000]
    text = (
        "ENTRY_ORDER=limit_maker ENTRY_LIMIT_OFFSET_PERCENTAGE=0.0002 ENTRY_LIMIT_TIMEOUT_CANDLES=3 "
        "STOP_LOSS_PERCENTAGE=0.002 TAKE_PROFIT_PERCENTAGE=0.003 FEE=0.001 MAKER_FEE=0.0002"
    )
    params, whole = parse_run_settings(text, symbol="BTCUSDT")
    _, parts = parse_run_settings(f"{text} MAKER_FILL_QUOTE=1500", symbol="BTCUSDT")
    assert (parts.maker_fill_quote, parts.walk_substeps, whole.maker_fill_quote) == (D(1500), 1, D(0))
    full = run_backtest(candles, params, whole)
    partial = run_backtest(candles, params, parts)
    assert full.trades and partial.trades
    sized = {t.signal_index: t for t in full.trades}
    smaller = [t for t in partial.trades if t.signal_index in sized and t.quantity < sized[t.signal_index].quantity]
    later = [t for t in partial.trades if t.signal_index in sized and t.entry_index > sized[t.signal_index].entry_index]
    assert smaller and later
    for trade in partial.trades:
        assert trade.signal_index is not None and trade.signal_index < trade.entry_index
        # At the latest the timeout's candle, or the next one's open, which meets it before the cancel.
        assert trade.entry_index - trade.signal_index <= params.ENTRY_LIMIT_TIMEOUT_CANDLES + 1
    inside = [t for t in partial.trades if t.exit_index == t.entry_index]
    assert inside and {t.exit_reason.value for t in inside} <= {"stop_loss", "take_profit", "signal"}
    # Every maker-filled entry paid the maker rate, at its limit price.
    assert all(t.entry_fee == D("0.0002") for t in partial.trades if t.entry_fee is not None)


def test_bad_walk_settings_are_refused_naming_the_field() -> None:
    from shared.parameters import ParameterError

    with pytest.raises(ParameterError) as caught:
        parse_run_settings("MAKER_FILL_QUOTE=-1 WALK_SUBSTEPS=0")
    assert {name for name, _ in caught.value.problems} == {"MAKER_FILL_QUOTE", "WALK_SUBSTEPS"}


def test_the_default_config_fills_whole() -> None:
    assert BacktestConfig().maker_fill_quote == 0 and BacktestConfig().walk_substeps == 1
