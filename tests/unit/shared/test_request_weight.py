"""The request-weight budget: a service's share per minute window, the IP's reported total,
requests queued (in order) for the next window instead of sent over the limit."""

from __future__ import annotations

import asyncio

import pytest

from shared.request_weight import HEADER, WINDOW_MS, WeightBudget


class Clock:
    """Wall time in ms that moves only when the budget sleeps."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += int(seconds * 1000)
        await asyncio.sleep(0)


def budget(share: int, clock: Clock, limit: int = 6000) -> WeightBudget:
    return WeightBudget(share, limit=limit, clock=clock, sleep=clock.sleep)


async def test_requests_within_the_share_are_not_held() -> None:
    clock = Clock(10 * WINDOW_MS + 5_000)
    weights = budget(100, clock)
    for _ in range(5):
        await weights.spend(20)
    assert weights.spent == 100 and clock.sleeps == []


async def test_a_request_over_the_share_waits_for_the_next_window() -> None:
    clock = Clock(10 * WINDOW_MS + 45_000)
    weights = budget(100, clock)
    for _ in range(5):
        await weights.spend(20)
    await weights.spend(20)
    assert clock.now // WINDOW_MS == 11  # sent in the next minute window, not this one
    assert clock.sleeps == [pytest.approx(15.25)]
    assert weights.spent == 20 and weights.waits == 1


async def test_the_ip_total_from_the_header_holds_requests_back() -> None:
    # Another service has spent most of the IP's weight: this one's own share is not enough.
    clock = Clock(3 * WINDOW_MS)
    weights = budget(3000, clock)
    weights.observe({HEADER: "5990"})
    await weights.spend(20)
    assert clock.now // WINDOW_MS == 4 and weights.spent == 20


async def test_an_unreadable_header_is_ignored() -> None:
    clock = Clock(3 * WINDOW_MS)
    weights = budget(3000, clock)
    weights.observe({HEADER: "many"})
    weights.observe(None)
    await weights.spend(20)
    assert clock.sleeps == []


async def test_orders_are_counted_without_waiting() -> None:
    clock = Clock(3 * WINDOW_MS)
    weights = budget(20, clock)
    await weights.spend(20)
    weights.charge(1)
    assert weights.spent == 21 and clock.sleeps == []
    await weights.spend(1)  # the share is used up: the next read waits
    assert clock.now // WINDOW_MS == 4


async def test_queued_requests_go_in_order_of_arrival() -> None:
    clock = Clock(3 * WINDOW_MS)
    weights = budget(40, clock)
    sent: list[int] = []

    async def read(n: int) -> None:
        await weights.spend(20)
        sent.append(n)

    await asyncio.gather(*(read(n) for n in range(6)))
    assert sent == list(range(6))
    assert clock.now // WINDOW_MS == 5  # 6 × 20 over a share of 40: three windows


def test_a_share_outside_the_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        WeightBudget(0)
    with pytest.raises(ValueError, match="share"):
        WeightBudget(7000)


class GatedClock(Clock):
    """A clock whose sleeps last until the test opens the gate (the window's end)."""

    def __init__(self, now: int) -> None:
        super().__init__(now)
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        await self.gate.wait()
        await super().sleep(seconds)


async def test_an_urgent_read_goes_before_routine_reads_waiting() -> None:
    # A trade catch-up queued over several windows must not hold back a strategy's candles.
    clock = GatedClock(3 * WINDOW_MS)
    weights = budget(40, clock)
    await weights.spend(40)  # this window is used up
    sent: list[str] = []

    async def read(name: str, urgent: bool) -> None:
        await weights.spend(20, urgent=urgent)
        sent.append(name)

    routine = [asyncio.create_task(read(f"trades{n}", False)) for n in range(3)]
    await asyncio.sleep(0)  # the catch-up is queued and waits for the next window
    urgent = asyncio.create_task(read("klines", True))
    await asyncio.sleep(0)
    clock.gate.set()
    await asyncio.gather(urgent, *routine)
    assert sent == ["klines", "trades0", "trades1", "trades2"]


async def test_routine_reads_leave_the_reserve_to_urgent_ones() -> None:
    clock = Clock(3 * WINDOW_MS)
    weights = WeightBudget(100, reserve=40, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        await weights.spend(20)
    assert clock.sleeps == []
    await weights.spend(40, urgent=True)  # the reserve is still there for the back-fill
    assert clock.sleeps == [] and weights.spent == 100
    await weights.spend(20)
    assert clock.now // WINDOW_MS == 4
