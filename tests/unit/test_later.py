"""``services.executor.later``: what a burst's sent entries leave to do, per symbol, and when."""

from __future__ import annotations

import pytest

from services.executor.book import SymbolBook
from services.executor.context import NotOwned
from services.executor.later import MAX_WAIT_S, MAX_WAITING, QUIET_S, Later
from tests.support.fake_clock import FakeClock


def _work(done: list[str], name: str):
    async def work() -> None:
        done.append(name)

    return work


async def test_a_symbols_work_runs_in_the_order_it_was_added_and_only_that_symbols():
    later, done = Later(FakeClock()), []
    a, b = SymbolBook("AUSDT"), SymbolBook("BUSDT")
    later.add(a, _work(done, "a1"))
    later.add(b, _work(done, "b1"))
    later.add(a, _work(done, "a2"))
    await later.finish(a)
    assert done == ["a1", "a2"] and bool(later)
    await later.finish(a)  # nothing left for it
    assert done == ["a1", "a2"]
    await later.finish_all()
    assert done == ["a1", "a2", "b1"] and not later


async def test_failed_work_queries_the_symbols_orders_again_and_the_rest_still_runs():
    clock = FakeClock()
    later, done = Later(clock), []
    book = SymbolBook("AUSDT")

    async def fails() -> None:
        raise RuntimeError("database gone")

    later.add(book, fails)
    later.add(book, _work(done, "after"))
    await later.finish(book)
    assert done == ["after"] and book.settle_due == clock.monotonic()


async def test_a_lost_lease_leaves_the_orders_to_the_next_owner():
    later = Later(FakeClock())
    book, other = SymbolBook("AUSDT"), SymbolBook("BUSDT")

    async def not_owned() -> None:
        raise NotOwned("AUSDT")

    later.add(book, not_owned)
    await later.finish(book)
    assert book.settle_due is None
    done: list[str] = []
    later.add(other, _work(done, "b"))
    later.drop("BUSDT")
    await later.finish_all()
    assert done == [] and not later


async def test_the_wait_is_bounded_in_time_and_in_count():
    clock = FakeClock()
    later = Later(clock)
    book = SymbolBook("AUSDT")
    later.add(book, _work([], "x"))
    assert not later.overdue()
    clock.advance(MAX_WAIT_S)
    assert later.overdue()
    await later.finish_all()
    for _ in range(MAX_WAITING - 1):
        later.add(book, _work([], "x"))
    assert not later.overdue()
    later.add(book, _work([], "x"))
    assert later.overdue()


async def test_a_lease_found_lost_is_raised_when_asked_once_the_work_ran():
    later, done = Later(FakeClock()), []
    book = SymbolBook("AUSDT")

    async def not_owned() -> None:
        raise NotOwned("AUSDT")

    later.add(book, not_owned)
    later.add(book, _work(done, "after"))
    with pytest.raises(NotOwned):
        await later.finish(book, raise_lost=True)
    assert done == ["after"] and not later


async def test_the_burst_is_over_once_no_entry_came_for_the_quiet_time():
    clock = FakeClock()
    later = Later(clock)
    book = SymbolBook("AUSDT")
    later.add(book, _work([], "x"))
    assert not later.quiet() and later.block_ms() == round(QUIET_S * 1000)
    clock.advance(QUIET_S / 2)
    later.add(SymbolBook("BUSDT"), _work([], "y"))  # another entry: the quiet time starts again
    clock.advance(QUIET_S / 2)
    assert not later.quiet() and 0 < later.block_ms() <= round(QUIET_S * 500) + 1
    clock.advance(QUIET_S / 2 + 0.001)
    assert later.quiet() and later.block_ms() == 1
