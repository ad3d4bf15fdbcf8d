"""BUY signals, operator closes, answers to waiting closes, merged order answers, exit pacing."""

from __future__ import annotations

from decimal import Decimal

from services.executor.core import effects as fx
from services.executor.core.closes import on_close
from services.executor.core.entries import (
    Allowance,
    allowance_refusal,
    feed_refusal,
    read_retry_delay,
    recent_price,
    skipped,
    state_refusal,
)
from services.executor.core.records import merge_answer
from services.executor.core.state import CloseRequest, ExitState, answer_closes, schedule_retry
from services.executor.errors import ClockSkew, RateLimited, RetryLater
from shared.events import Outcome, Signal
from shared.trading.ledger import OrderState
from shared.trading.protection import ExitReason
from tests.unit.executor.facts import POLICY, fills, order

D = Decimal
MINUTE = 60_000
ALLOWANCE = Allowance(interval_ms=MINUTE, max_age_ms=MINUTE, max_age_candles=1.0)
CLOSE = CloseRequest("cmd-1", "close_position", "event-1")
PART_OF_ALL = CloseRequest("cmd-2", "close_all", "event-2")


def test_a_buy_is_acted_on_within_its_allowance_on_the_market_clock() -> None:
    assert allowance_refusal(2 * MINUTE, 0, ALLOWANCE) == ""  # one candle after its close
    assert allowance_refusal(2 * MINUTE + 1, 0, ALLOWANCE).startswith("signal too old: its candle closed 1.0 candles")
    assert allowance_refusal(None, 0, ALLOWANCE) == "no market data received yet"


def test_a_silent_feed_refuses_entries() -> None:
    assert feed_refusal(10_000, 20_000, 10.0) == ""
    assert feed_refusal(10_000, 20_001, 10.0).startswith("market data feed silent for 10.0s")
    assert feed_refusal(None, 0, 10.0) == "no market data received yet"


def test_the_bot_state_then_the_position_refuse_entries() -> None:
    assert state_refusal("entries are paused", "OPEN") == "entries are paused"
    assert state_refusal("", "OPENING") == "a position is already OPENING"
    assert state_refusal("", None) == ""


def signal() -> Signal:
    return Signal(
        symbol="BTCUSDT",
        side="BUY",
        reason="ema_cross",
        price=D("100"),
        interval="1m",
        candle_open_time_ms=0,
        indicators={},
        parameters_version=0,
    )


def test_a_skipped_buy_is_an_alert_and_a_decision_note() -> None:
    alert, note = skipped(signal(), "a position is already OPENING")
    assert isinstance(alert, fx.Alert) and alert.level == "info" and isinstance(note, fx.Note)
    assert note.note == "skipped: entry pending"
    alert, note = skipped(signal(), "entries are paused")
    assert isinstance(alert, fx.Alert) and alert.level == "warning"
    assert isinstance(note, fx.Note) and note.note == "skipped: entries are paused"


def test_an_entry_is_sized_at_the_latest_tick_only_while_it_is_recent() -> None:
    assert recent_price(D("101"), 1_000, 31_000, 30_000) == D("101")
    assert recent_price(D("101"), 1_000, 31_001, 30_000) is None
    assert recent_price(None, 1_000, 1_000, 30_000) is None
    assert recent_price(D("101"), 1_000, None, 30_000) is None


def test_reads_before_sizing_are_retried_after_retry_after_up_to_five_times() -> None:
    assert read_retry_delay(RateLimited("429", None, 3.0), 1, 10.0, 0.5) == 3.0
    assert read_retry_delay(RateLimited("418", None, 30.0), 1, 10.0, 0.5) is None
    assert read_retry_delay(RetryLater("5xx"), 4, 10.0, 0.5) == 0.5
    assert read_retry_delay(ClockSkew("-1021", -1021), 5, 10.0, 0.5) is None


def test_a_close_of_a_flat_symbol_is_refused_alone_and_done_within_a_close_all() -> None:
    assert on_close(None, CLOSE) == (None, (fx.Answer("cmd-1", "close_position", Outcome.REFUSED, "no position"),))
    assert on_close(None, PART_OF_ALL) == (None, (fx.Answer("cmd-2", "close_all", Outcome.DONE, "no position"),))


def test_a_close_while_an_order_is_under_way_is_accepted_and_waits() -> None:
    for status in ("OPENING", "CLOSING"):
        waiting, effects = on_close(status, CLOSE)
        assert waiting is not None and waiting.accepted
        [answer] = effects
        assert isinstance(answer, fx.Answer) and answer.outcome is Outcome.ACCEPTED


def test_a_close_of_an_open_position_sells_it_and_answers_a_refusal() -> None:
    waiting, effects = on_close("OPEN", CLOSE)
    assert waiting == CLOSE
    assert effects == (fx.RequestExit(ExitReason.MANUAL, None, "event-1", explicit=True, answer_refusal=True),)


def test_waiting_closes_are_accepted_once_and_a_final_answer_ends_them() -> None:
    closes = (CLOSE, CloseRequest("cmd-3", "close_position", "event-3", accepted=True))
    kept, answers = answer_closes(closes, Outcome.ACCEPTED, "exit order sent")
    assert [a.command_id for a in answers] == ["cmd-1"] and all(c.accepted for c in kept)
    kept, answers = answer_closes(kept, Outcome.DONE, "closed")
    assert kept == () and [a.command_id for a in answers] == ["cmd-1", "cmd-3"]


def test_a_refused_exit_is_retried_with_a_doubling_bounded_backoff() -> None:
    state, delays = ExitState(), []
    for _ in range(6):
        state, delay = schedule_retry(state, 0.0, POLICY, 0.0)
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0] and state.refusals == 6
    assert schedule_retry(ExitState(), 0.0, POLICY, 42.0)[1] == 42.0  # never before Retry-After ends


def test_an_answer_never_turns_a_final_order_back_into_a_working_one() -> None:
    filled = order(status="FILLED", executed_quantity=D("0.01"), cumulative_quote=D("1000"))
    late = OrderState(filled.client_order_id, "PARTIALLY_FILLED", 11, D("0.004"), D("400"))
    change = merge_answer(filled, late, fills("0.01", "1000", commission_base="0.00001"))
    assert (change.status, change.executed_quantity, change.cumulative_quote) == ("FILLED", D("0.01"), D("1000"))
    assert change.commission_base == D("0.00001")


def test_an_order_the_bot_rejected_stays_rejected_unless_the_exchange_shows_its_own_id() -> None:
    rejected = order(status="REJECTED", exchange_order_id=None)
    assert (
        merge_answer(rejected, OrderState(rejected.client_order_id, "FILLED", None, D(0), D(0)), fills("0", "0")).status
        == "REJECTED"
    )
    assert (
        merge_answer(rejected, OrderState(rejected.client_order_id, "FILLED", 12, D(0), D(0)), fills("0", "0")).status
        == "FILLED"
    )
