"""Pure market pieces: the price walk, re-basing, replay, klines, rolling window, derived fields."""

from __future__ import annotations

import itertools
from decimal import Decimal

from services.exchange_sim.candles import Candle, Series
from services.exchange_sim.decimals import fmt8, q8
from services.exchange_sim.market import DAY_MS, Market, Replay
from services.exchange_sim.walk import MarketClock, rebase_offset, step_due, step_price, substeps, walk_points

TICK = Decimal("0.01")
MINUTE = 60_000


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def candle(o: str, h: str, low: str, c: str) -> Candle:
    return Candle(0, Decimal(o), Decimal(h), Decimal(low), Decimal(c), Decimal(1))


def test_walk_order_depends_on_direction() -> None:
    assert walk_points(candle("10", "12", "9", "11")) == (10, 9, 12, 11)  # bullish: O L H C
    assert walk_points(candle("10", "12", "9", "9.5")) == (10, 12, 9, Decimal("9.5"))  # bearish: O H L C
    assert walk_points(candle("10", "10", "10", "10")) == (10, 10, 10, 10)


def test_walk_steps_at_fixed_fractions_at_high_speed() -> None:
    n = substeps(MINUTE, 600)
    assert n == 1
    points = walk_points(candle("100.00", "101.50", "99.20", "100.80"))
    assert [step_price(points, s, n, TICK) for s in range(4)] == [
        Decimal("100.00"),
        Decimal("99.20"),
        Decimal("101.50"),
        Decimal("100.80"),
    ]
    assert [step_due(0, MINUTE, s, n) for s in range(5)] == [0, 15_000, 30_000, 45_000, 60_000]


def test_slow_walk_interpolates_yet_visits_exact_extremes() -> None:
    n = substeps(MINUTE, 1)
    assert n == 15  # about one step per wall second at speed 1
    c = candle("100.00", "101.57", "99.13", "100.42")
    prices = [step_price(walk_points(c), s, n, TICK) for s in range(4 * n)]
    assert len(prices) == 60
    assert prices[:n] == [c.open] * n  # the open is held for the first quarter
    assert prices[n] == c.low and prices[2 * n] == c.high and prices[3 * n :] == [c.close] * n
    assert all(c.low <= p <= c.high and p % TICK == 0 for p in prices)
    assert prices[n : 2 * n + 1] == sorted(prices[n : 2 * n + 1])  # low -> high monotonically


def test_rebase_puts_history_candle_in_the_current_interval(make_csv, candle_rows) -> None:
    series = Series(make_csv("ABCUSDT_1m_x.csv", candle_rows(50)))
    anchor = 1_800_000_123_456
    offset = rebase_offset(anchor, MINUTE, series.open_times[20])
    assert series.open_times[20] + offset == anchor // MINUTE * MINUTE
    market = Market([series], {"ABCUSDT": TICK}, MarketClock(1, anchor, FakeClock(anchor)), history=20)
    market.advance()
    rows = market.klines("ABCUSDT", "1m", None, None, 500)
    assert len(rows) == 21 and rows[-1].open_time == anchor // MINUTE * MINUTE
    assert not rows[-1].closed and all(r.closed for r in rows[:-1])
    assert [b.open_time - a.open_time for a, b in itertools.pairwise(rows)] == [MINUTE] * 20


def test_a_start_time_moves_the_market_clock_and_the_rebase_but_not_its_pace(make_csv, candle_rows) -> None:
    series = Series(make_csv("ABCUSDT_1m_x.csv", candle_rows(50)))
    wall, start = FakeClock(1_800_000_123_456), 1_900_000_000_000
    clock = MarketClock(60, wall.now, wall, start_ms=start)
    assert clock.now() == start
    market = Market([series], {"ABCUSDT": TICK}, clock, history=20)
    market.advance()
    assert market.klines("ABCUSDT", "1m", None, None, 500)[-1].open_time == start // MINUTE * MINUTE
    wall.now += 1000
    assert clock.now() == start + 60_000


def test_replay_emits_every_step_even_after_a_long_pause(make_csv, candle_rows) -> None:
    rows = candle_rows(6)
    series = Series(make_csv("ABCUSDT_1m_x.csv", rows))
    replay = Replay(series, TICK, offset_ms=0, n=1, start=0)
    ticks = replay.advance(10**15)
    assert len(ticks) == 6 * 5 and replay.finished and replay.next_due() is None
    for index, row in enumerate(rows):
        steps = ticks[index * 5 : (index + 1) * 5]
        o, h, low, c = (Decimal(x) for x in row[1:5])
        assert {t.price for t in steps[:4]} == {o, h, low, c}
        assert [t.values.closed for t in steps] == [False] * 4 + [True]
        final = steps[-1].values
        assert (final.open, final.high, final.low, final.close, final.volume) == (o, h, low, c, Decimal(row[5]))
        assert final.close_time == row[0] + MINUTE - 1
        # a forming kline never shows an extreme before the walk has reached it
        assert steps[0].values.high == o and steps[0].values.low == o
    assert replay.price == Decimal(rows[-1][4])


def test_derived_fields_are_deterministic(make_csv) -> None:
    rows = [
        (0, "100", "110", "90", "104", "20"),
        (MINUTE, "104", "104", "104", "104", "0"),
        (2 * MINUTE, "104", "106", "103", "105", "30"),
    ]
    series = Series(make_csv("ABCUSDT_1m_x.csv", rows))
    first, empty, third = (series.closed_values(i, 0) for i in range(3))
    assert first.quote_volume == q8(Decimal(20) * Decimal(404) / 4) == Decimal(2020)
    assert first.trades == 4 and (first.first_trade_id, first.last_trade_id) == (1, 4)
    assert (empty.trades, empty.first_trade_id, empty.last_trade_id) == (0, -1, -1)
    assert third.first_trade_id == 5
    row = first.rest_row()
    assert row[9] == "10.00000000" and row[10] == "1010.00000000" and row[11] == "0" and len(row) == 12


def test_klines_start_end_limit_and_aggregation(make_csv, candle_rows) -> None:
    series = Series(make_csv("ABCUSDT_1m_x.csv", candle_rows(40, start=0)))
    clock = FakeClock(30 * MINUTE + 30_000)
    market = Market([series], {"ABCUSDT": TICK}, MarketClock(1, 0, clock), history=0)
    market.advance()
    all_rows = market.klines("ABCUSDT", "1m", None, None, 1000)
    assert len(all_rows) == 31 and all_rows[-1].open_time == 30 * MINUTE and not all_rows[-1].closed
    assert [r.open_time for r in market.klines("ABCUSDT", "1m", 0, None, 1)] == [0]
    assert [r.open_time for r in market.klines("ABCUSDT", "1m", 5 * MINUTE, 7 * MINUTE, 10)] == [
        5 * MINUTE,
        6 * MINUTE,
        7 * MINUTE,
    ]
    assert [r.open_time for r in market.klines("ABCUSDT", "1m", None, 7 * MINUTE, 2)] == [6 * MINUTE, 7 * MINUTE]
    five = market.klines("ABCUSDT", "5m", None, None, 3)
    assert [r.open_time for r in five] == [20 * MINUTE, 25 * MINUTE, 30 * MINUTE]
    parts = all_rows[20:25]
    assert five[0].closed and not five[-1].closed
    assert (five[0].open, five[0].close) == (parts[0].open, parts[-1].close)
    assert five[0].high == max(p.high for p in parts) and five[0].low == min(p.low for p in parts)
    assert five[0].volume == sum(p.volume for p in parts)
    assert market.klines("ABCUSDT", "1s", None, None, 5) == []  # finer than the data


def test_aggregated_stream_closes_on_the_last_minute(make_csv, candle_rows) -> None:
    series = Series(make_csv("ABCUSDT_1m_x.csv", candle_rows(12, start=0)))
    clock = FakeClock(0)
    market = Market([series], {"ABCUSDT": TICK}, MarketClock(1, 0, clock), history=0)
    clock.now = 10 * MINUTE
    finals = [t for t in market.advance() if t.values.closed]
    events = [market.kline_event(t, "5m") for t in finals]
    assert [e["k"]["x"] for e in events] == [False] * 4 + [True] + [False] * 4 + [True]
    assert events[4]["k"]["t"] == 0 and events[4]["k"]["T"] == 5 * MINUTE - 1
    assert events[4]["k"]["v"] == fmt8(sum(Decimal(r[5]) for r in candle_rows(5, start=0)))


def test_mini_ticker_covers_a_rolling_day(make_csv, candle_rows) -> None:
    hour = 3_600_000
    rows = candle_rows(30, start=0, step_ms=hour)
    series = Series(make_csv("ABCUSDT_1h_x.csv", rows))
    clock = FakeClock(0)
    market = Market([series], {"ABCUSDT": TICK}, MarketClock(600, 0, clock), history=0)
    clock.now = (27 * hour + hour // 2) // 600
    ticks = market.advance()
    ticker = ticks[-1].mini_ticker()
    window = [series.closed_values(i, 0) for i in range(4, 27)] + [ticks[-1].values]
    assert ticker["o"] == f"{window[0].open:.8f}"
    assert ticker["h"] == f"{max(w.high for w in window):.8f}" and ticker["l"] == f"{min(w.low for w in window):.8f}"
    assert Decimal(ticker["v"]) == sum(w.volume for w in window)
    assert ticker["E"] == ticks[-1].market_time and set(ticker) == {"e", "E", "s", "c", "o", "h", "l", "v", "q"}
    assert ticks[-1].market_time - DAY_MS < window[0].open_time


def test_avg_price_is_volume_weighted_over_five_minutes(make_csv) -> None:
    rows = [(i * MINUTE, "100", "100", "100", "100", "1") for i in range(5)] + [
        (i * MINUTE, "200", "200", "200", "200", "3") for i in range(5, 12)
    ]
    series = Series(make_csv("ABCUSDT_1m_x.csv", rows))
    clock = FakeClock(0)
    market = Market([series], {"ABCUSDT": TICK}, MarketClock(1, 0, clock), history=0)
    clock.now = 7 * MINUTE
    market.advance()
    price, _ = market.avg_price("ABCUSDT")
    # window (2 min, 7 min]: candles 2..4 at 100 (1 each) and 5, 6 at 200 (3 each); candle 7 just opened
    assert price == q8(Decimal(100 * 3 + 200 * 6) / 9)
