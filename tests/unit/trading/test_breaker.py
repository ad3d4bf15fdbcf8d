"""The account circuit breaker's one decision: each limit, the UTC market day, the reset."""

from __future__ import annotations

from decimal import Decimal

from shared.trading.breaker import (
    DAY_MS,
    BreakerLimits,
    BreakerState,
    ClosedTrade,
    advance,
    operator_reset,
    state_dict,
    state_from,
)
from shared.trading.vocabulary import BreakerLimit

D = Decimal
DAY = 20_000 * DAY_MS  # a UTC midnight, market time


def run(limits: BreakerLimits, profits: list[str], start: str = "1000", at: int = DAY + 3_600_000):
    state, trips = BreakerState(), []
    for i, profit in enumerate(profits):
        step = advance(state, limits, at + i * 60_000, ClosedTrade(D(profit), at + i * 60_000, D(start)))
        state = step.state
        if step.tripped:
            trips.append((i, step.tripped))
    return state, trips


def test_off_when_no_limit_is_set() -> None:
    state, trips = run(BreakerLimits(), ["-500", "-400", "-99"])
    assert trips == [] and state.tripped is None
    assert state.equity == D(1) and state.losing_streak == 3


def test_daily_loss_trips_at_its_percentage_of_the_days_starting_equity() -> None:
    state, trips = run(BreakerLimits(daily_loss_pct=D("3")), ["-10", "5", "-24", "-1"])
    # 1000 -> 990 -> 995 -> 971 (2.9 %) -> 970 (3 %): the fourth trade trips it.
    assert [i for i, _ in trips] == [3]
    trip = trips[0][1]
    assert trip.limit == BreakerLimit.DAILY_LOSS and trip.code == "breaker_daily_loss"
    assert trip.figures["loss"] == "30" and trip.figures["loss_pct"] == "3.00"
    assert trip.figures["day_start_equity"] == "1000" and trip.figures["equity"] == "970"
    assert state.tripped == trip


def test_drawdown_trips_from_the_realised_equity_peak() -> None:
    _, trips = run(BreakerLimits(max_drawdown_pct=D("10")), ["100", "-50", "-59", "-1"])
    # peak 1100; 1050, 991 (9.9 %), 990 (10 %)
    assert [i for i, _ in trips] == [3]
    assert trips[0][1].figures["peak_equity"] == "1100" and trips[0][1].figures["drawdown_pct"] == "10.00"


def test_losing_streak_counts_consecutive_losses_and_a_win_ends_it() -> None:
    _, trips = run(BreakerLimits(max_losing_streak=3), ["-1", "-1", "2", "-1", "-1", "-1"])
    assert [i for i, _ in trips] == [5]
    assert trips[0][1].figures == {"losing_trades": "3", "limit": "3"}


def test_a_tripped_breaker_does_not_trip_again() -> None:
    _, trips = run(BreakerLimits(max_losing_streak=1), ["-1", "-1", "-1"])
    assert [i for i, _ in trips] == [0]


def test_the_next_utc_market_day_clears_the_daily_limit_and_starts_the_day_afresh() -> None:
    limits = BreakerLimits(daily_loss_pct=D("2"))
    state, _ = run(limits, ["-25"], at=DAY + DAY_MS - 120_000)
    assert state.tripped is not None and state.day_start_ms == DAY
    same_day = advance(state, limits, DAY + DAY_MS - 1)
    assert same_day.state.tripped is not None and same_day.cleared is None
    next_day = advance(state, limits, DAY + DAY_MS)  # midnight of the market clock, no trade needed
    assert next_day.state.tripped is None and next_day.cleared == state.tripped
    assert next_day.state.day_start_ms == DAY + DAY_MS and next_day.state.day_start_equity == D(975)
    # A loss of 1.5 % of the new day's equity does not trip; the old day's loss no longer counts.
    after = advance(next_day.state, limits, DAY + DAY_MS + 60_000, ClosedTrade(D("-14.6"), DAY + DAY_MS + 60_000))
    assert after.tripped is None


def test_the_day_follows_market_time_only_not_how_fast_it_arrives() -> None:
    limits = BreakerLimits(daily_loss_pct=D("2"))
    state, _ = run(limits, ["-25"])
    # Market time going backwards (another symbol's older close) never starts a new day.
    assert advance(state, limits, DAY - 1).state.tripped is not None


def test_drawdown_and_streak_stay_tripped_over_the_day_until_an_operator_reset() -> None:
    limits = BreakerLimits(max_losing_streak=2)
    state, _ = run(limits, ["-1", "-1"])
    later = advance(state, limits, DAY + 5 * DAY_MS).state
    assert later.tripped is not None and later.tripped.limit == BreakerLimit.LOSING_STREAK
    reset = operator_reset(later)
    assert reset.tripped is None and reset.losing_streak == 0 and reset.peak_equity == reset.equity
    assert advance(reset, limits, DAY + 5 * DAY_MS, ClosedTrade(D("-1"), DAY + 5 * DAY_MS)).tripped is None


def test_the_stored_form_reads_back_the_same_state() -> None:
    state, _ = run(BreakerLimits(daily_loss_pct=D("1")), ["-10.123456789"])
    assert state.tripped is not None
    assert state_from(state_dict(state)) == state
    assert state_from(None) == BreakerState()
