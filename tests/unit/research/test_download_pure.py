"""The pure parts of the downloader: dates, spans, gap finding, the weight gate on a fake clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from research.data import ranges, timespan
from research.data.gaps import find_gaps
from research.data.weights import WeightGate

MIN = 60_000
JAN_1_2024 = 1_704_067_200_000


def test_dates_and_iso_times_are_utc() -> None:
    assert timespan.parse_time("2024-01-01", "--start") == JAN_1_2024
    assert timespan.parse_time("2024-01-01T00:01", "--start") == JAN_1_2024 + MIN
    assert timespan.parse_time("2024-01-01T00:00:00Z", "--start") == JAN_1_2024
    assert timespan.parse_time("2024-01-01T01:00:00+01:00", "--start") == JAN_1_2024
    assert timespan.parse_time("2024-01-01T00:00:00.250Z", "--end") == JAN_1_2024 + 250
    with pytest.raises(timespan.TimeError, match="--end: expected a date"):
        timespan.parse_time("yesterday", "--end")
    assert timespan.iso(JAN_1_2024) == "2024-01-01T00:00:00Z"
    assert timespan.iso(JAN_1_2024 + 5) == "2024-01-01T00:00:00.005Z"


def test_months_days_and_windows() -> None:
    feb = timespan.month_span("2024-02")
    assert feb == (timespan.parse_time("2024-02-01", "x"), timespan.parse_time("2024-03-01", "x"))
    assert timespan.month_span("2024-12")[1] == timespan.parse_time("2025-01-01", "x")
    span = (timespan.parse_time("2024-01-31T23:00", "x"), timespan.parse_time("2024-03-01T00:00:01", "x"))
    assert timespan.months(span) == ["2024-01", "2024-02", "2024-03"]
    assert [d.isoformat() for d in timespan.days((JAN_1_2024 + 1, JAN_1_2024 + timespan.DAY_MS + 1))] == [
        "2024-01-01",
        "2024-01-02",
    ]
    assert list(timespan.windows((0, 2500), 1000)) == [(0, 1000), (1000, 2000), (2000, 2500)]


def test_span_sets() -> None:
    assert ranges.union([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]
    assert ranges.subtract((0, 10), [(2, 4), (3, 5), (8, 12)]) == [(0, 2), (5, 8)]
    assert ranges.subtract((0, 10), []) == [(0, 10)]
    assert ranges.subtract((0, 10), [(0, 10)]) == []
    assert ranges.intersect([(0, 5), (8, 20)], (3, 10)) == [(3, 5), (8, 10)]
    assert ranges.total([(0, 5), (3, 7)]) == 7


def test_gaps_inside_coverage_only() -> None:
    times = np.array([10, 11, 12, 15, 16, 20], dtype=np.int64) * MIN
    report = find_gaps(times, MIN, covered=[(0, 18 * MIN)], wanted=(5 * MIN, 25 * MIN))
    # 13 and 14 are missing where everything was fetched; 17..19 only partly covered (17 is a gap)
    assert report.gaps == ((13 * MIN, 15 * MIN), (17 * MIN, 18 * MIN))
    assert report.missing_candles(MIN) == 3
    assert report.before_first == (5 * MIN, 10 * MIN)
    assert report.after_last is None  # nothing covered after the last candle (21)
    assert report.not_covered == ((18 * MIN, 25 * MIN),)
    empty = find_gaps(np.empty(0, dtype=np.int64), MIN, [], (0, MIN))
    assert empty.gaps == () and empty.not_covered == ((0, MIN),)


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_gate_waits_for_the_next_window_when_the_budget_is_used() -> None:
    fake = FakeTime(120.0)
    gate = WeightGate(12, clock=fake.clock, sleep=fake.sleep)
    await gate.acquire(2)
    await gate.acquire(2)
    assert fake.sleeps == [] and gate.in_flight == 4
    gate.release(2, "7")  # the header counts every program on the IP: 7 used in this window
    await gate.acquire(2)  # 7 used + 2 in flight + 2 = 11 fits in 12
    assert fake.sleeps == [] and gate.in_flight == 4
    await gate.acquire(2)  # 7 + 4 + 2 = 13 does not: waits for the window starting at 180 s
    assert len(fake.sleeps) == 1 and 180.0 <= fake.now <= 181.0
    assert gate.used == 0 and gate.in_flight == 6


async def test_gate_holds_everything_back_for_retry_after() -> None:
    fake = FakeTime(1000.5)
    gate = WeightGate(100, clock=fake.clock, sleep=fake.sleep)
    gate.pause(30)
    results = await asyncio.gather(gate.acquire(2), gate.acquire(2))
    assert results == [None, None] and fake.now >= 1030.5
    gate.sync(2000.0)  # the server's clock is ahead of ours
    assert gate.now() == pytest.approx(2000.0)
    with pytest.raises(ValueError, match="never fits"):
        await gate.acquire(101)


def test_candle_open_times_follow_binances_grid() -> None:
    assert timespan.candle_open(JAN_1_2024 + 61_000, "1m", MIN) == JAN_1_2024 + MIN
    assert timespan.candle_open(JAN_1_2024 + 5 * 3_600_000, "4h", 4 * 3_600_000) == JAN_1_2024 + 4 * 3_600_000
    monday = timespan.parse_time("2024-01-01", "x")  # 2024-01-01 was a Monday
    assert timespan.candle_open(monday + 3 * timespan.DAY_MS, "1w", 7 * timespan.DAY_MS) == monday
    assert timespan.candle_open(monday - 1, "1w", 7 * timespan.DAY_MS) == monday - 7 * timespan.DAY_MS
