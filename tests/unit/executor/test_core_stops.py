"""The moving stop in the decision core (``core.stops``): each closed candle after the entry's
raises the stop by the shared rules, never lowers it, break-even acts once, and only candles
closed by the market time of the tick count."""

from __future__ import annotations

from decimal import Decimal

from services.executor.core.stops import ClosedCandle, candles_due, first_candle_ms, movable, moved_level
from shared.trading.stops import StopRules
from tests.unit.executor.facts import position

D = Decimal
MINUTE = 60_000
ENTRY_CANDLE = 1747699200000  # the position's entry candle (facts.position)
TICK = D("0.01")
TRAIL = StopRules(trailing=D("0.01"))


def candle(n: int, close: str) -> ClosedCandle:
    """The n-th candle after the entry's, closed at ``close``."""
    open_ms = ENTRY_CANDLE + n * MINUTE
    return ClosedCandle(open_ms, open_ms + MINUTE - 1, D(close))


def move(candles: list[ClosedCandle], rules: StopRules = TRAIL, market_ms: int | None = None, **changes):
    market = market_ms if market_ms is not None else ENTRY_CANDLE + 100 * MINUTE
    return moved_level(position(**changes), candles, rules, TICK, interval_ms=MINUTE, market_ms=market)


def test_the_trailing_stop_follows_the_closes_up() -> None:
    # 1 % below the highest close: 101000 -> 99990, then 102000 -> 100980.
    assert move([candle(1, "101000")]) == (D("99990.00"), ENTRY_CANDLE + MINUTE)
    assert move([candle(1, "101000"), candle(2, "102000")]) == (D("100980.00"), ENTRY_CANDLE + 2 * MINUTE)


def test_the_trailing_stop_never_goes_down() -> None:
    # A lower close after the high leaves the stop at 100980; against a stop already above, nothing moves.
    assert move([candle(1, "102000"), candle(2, "99000")])[0] == D("100980.00")
    level, applied = move([candle(1, "99500")])  # 99500 x 0.99 = 98505 > 98000: up
    assert level == D("98505.00") and applied == ENTRY_CANDLE + MINUTE
    assert move([candle(1, "99000")], stop_loss=D("98505"))[0] is None  # 98010 < 98505: unmoved
    assert move([candle(1, "98500")])[0] is None  # 97515 below the initial 98000: unmoved


def test_break_even_moves_the_stop_to_the_entry_once() -> None:
    rules = StopRules(break_even_at=D("0.02"))
    assert move([candle(1, "101999")], rules)[0] is None  # not yet 2 % above
    assert move([candle(1, "102000")], rules)[0] == D("100000")
    # Once at the entry, further rises (without trailing) leave it there.
    assert move([candle(1, "110000")], rules, stop_loss=D("100000"))[0] is None
    # With both rules the higher level wins: 1 % below 103000 is 101970, above the entry.
    both = StopRules(trailing=D("0.01"), break_even_at=D("0.02"))
    assert move([candle(1, "102000")], both)[0] == D("100980.00")
    assert move([candle(1, "103000")], both)[0] == D("101970.00")


def test_only_candles_after_the_entry_and_closed_by_the_market_time_count() -> None:
    entry_candle = ClosedCandle(ENTRY_CANDLE, ENTRY_CANDLE + MINUTE - 1, D("105000"))
    assert move([entry_candle]) == (None, None)  # the entry candle's close is the entry itself
    # A backlog tick inside candle 2 sees candle 1 closed, not candle 2 (closed after that tick).
    ticked = ENTRY_CANDLE + 2 * MINUTE + 5
    assert move([candle(1, "101000"), candle(2, "103000")], market_ms=ticked) == (
        D("99990.00"),
        ENTRY_CANDLE + MINUTE,
    )


def test_feeding_the_same_candles_again_moves_nothing_more() -> None:
    candles = [candle(1, "101000"), candle(2, "102000"), candle(3, "101500")]
    level, _ = move(candles)
    assert level == D("100980.00")
    assert move(candles, stop_loss=level)[0] is None  # a restart reading them again


def test_no_move_without_a_rule_an_open_position_or_with_an_exit_decided() -> None:
    assert not movable(position(), StopRules())
    assert movable(position(), TRAIL)
    assert not movable(position(status="CLOSING"), TRAIL)
    assert not movable(position(exit_reason="signal"), TRAIL)
    assert not movable(position(stop_loss=None), TRAIL)
    assert not movable(None, TRAIL)


def test_candles_are_due_once_a_newer_one_has_closed() -> None:
    assert candles_due(None, ENTRY_CANDLE + 5, MINUTE)
    assert not candles_due(ENTRY_CANDLE + MINUTE, ENTRY_CANDLE + 2 * MINUTE + 5, MINUTE)  # candle 1 applied, 2 open
    assert candles_due(ENTRY_CANDLE + MINUTE, ENTRY_CANDLE + 3 * MINUTE, MINUTE)  # candle 2 closed
    assert first_candle_ms(position(), MINUTE) == ENTRY_CANDLE + MINUTE
    assert first_candle_ms(position(entry_candle_open_ms=None, entry_time_ms=ENTRY_CANDLE + 30), MINUTE) == (
        ENTRY_CANDLE + MINUTE
    )
