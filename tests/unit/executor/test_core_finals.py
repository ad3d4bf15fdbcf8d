"""A final order moves its position on: every transition of ``core.finals.settle_final``."""

from __future__ import annotations

from decimal import Decimal

from services.executor.core import effects as fx
from services.executor.core.finals import FinalFacts, settle_final
from services.executor.core.state import CloseRequest, ExitState
from shared.events import Outcome, PositionClosed, PositionOpened
from shared.trading.lifecycle import DecidedExit
from shared.trading.protection import ExitReason
from tests.unit.executor.facts import ENTRY_ID, EXIT_ID, fills, market, order, position

D = Decimal
CLOSE = CloseRequest("cmd-1", "close_position", "event-9")
OPENING = position(
    status="OPENING",
    entry_price=None,
    quantity=D(0),
    quote_spent=D(0),
    stop_loss=None,
    take_profit=None,
    entry_time_ms=None,
)
CLOSING = position(status="CLOSING", exit_reason="stop_loss", exit_candle_open_ms=1_700, exit_market_time_ms=1_750)
EXIT = order(client_order_id=EXIT_ID, purpose="exit", signal_event_id="tick-3")


def kinds(effects: tuple[fx.Effect, ...]) -> list[str]:
    return [type(e).__name__ if not isinstance(e, fx.Alert) else f"Alert:{e.code}" for e in effects]


def test_a_filled_entry_opens_the_position_with_levels_from_the_average_fill() -> None:
    # 0.01 BTC for 1000.10 USDT, 0.00001 BTC commission: 0.00999 credited.
    facts = FinalFacts(order(), OPENING, fills("0.01", "1000.10", commission_base="0.00001"))
    step = settle_final(facts, market(), ExitState(), ())
    assert step.settled and isinstance(step.change, fx.MarkOpen)
    opened = step.change.opened
    assert (opened.entry_price, opened.quantity, opened.quote_spent) == (D("100010"), D("0.00999"), D("1000.10"))
    assert (opened.stop_loss, opened.take_profit, opened.entry_time_ms) == (D("98009.80"), D("105010.50"), 2_000)
    assert kinds(step.effects) == ["Publish", "Snapshot"]
    event = step.effects[0]
    assert isinstance(event, fx.Publish) and isinstance(event.payload, PositionOpened)
    assert event.event_id == f"position_opened:{ENTRY_ID}" and event.payload.quantity == D("0.00999")


def test_an_entry_without_fills_takes_the_order_time_when_fills_carry_none() -> None:
    step = settle_final(FinalFacts(order(), OPENING, fills("0.01", "1000", last=None)), market(), ExitState(), ())
    assert isinstance(step.change, fx.MarkOpen) and step.change.opened.entry_time_ms == 5_000


def test_an_entry_that_ended_without_a_fill_fails_and_answers_a_waiting_close() -> None:
    facts = FinalFacts(order(status="EXPIRED", executed_quantity=D(0)), OPENING, fills("0", "0"))
    step = settle_final(facts, market(), ExitState(), (CLOSE,))
    assert step.settled and isinstance(step.change, fx.MarkFailed)
    assert kinds(step.effects) == ["Alert:entry_unfilled", "Snapshot", "AnswerCloses"]
    answer = step.effects[-1]
    assert (
        isinstance(answer, fx.AnswerCloses)
        and answer.outcome is Outcome.DONE
        and answer.reason.endswith(": no position")
    )


def test_an_entry_opened_while_a_close_waits_is_sold_at_once() -> None:
    step = settle_final(FinalFacts(order(), OPENING, fills("0.01", "1000")), market(), ExitState(), (CLOSE,))
    exit_request = step.effects[-1]
    assert isinstance(exit_request, fx.RequestExit)
    assert (exit_request.reason, exit_request.source_event_id) == (ExitReason.MANUAL, "event-9")
    assert exit_request.explicit and exit_request.answer_refusal and exit_request.only_when_open


def test_fills_not_all_known_leave_the_position_and_alert_throttled() -> None:
    step = settle_final(FinalFacts(order(), OPENING, fills("0.004", "400")), market(), ExitState(), ())
    assert not step.settled and step.change is None
    [alert] = step.effects
    assert isinstance(alert, fx.Alert) and alert.code == "fills_incomplete" and alert.repeat_s == 60.0


def test_an_order_the_position_does_not_wait_for_changes_nothing() -> None:
    cases = [
        FinalFacts(order(), position(status="OPEN"), fills("0.01", "1000")),
        FinalFacts(order(client_order_id="EB-BTCUSDT-1"), OPENING, fills("0.01", "1000")),
        FinalFacts(EXIT, position(status="OPEN"), fills("0.01", "1000"), (EXIT,), fills("0.01", "1000")),
        FinalFacts(EXIT, CLOSING, fills("0.01", "1000"), (), fills("0.01", "1000")),
        FinalFacts(
            EXIT,
            CLOSING,
            fills("0.01", "1000"),
            (EXIT, order(client_order_id="XS2-X", purpose="exit")),
            fills("0.01", "1000"),
        ),
        FinalFacts(
            EXIT,
            CLOSING,
            fills("0.01", "1000"),
            (order(client_order_id="XS2-X", status="SUBMITTED"), EXIT),
            fills("0.01", "1000"),
        ),
    ]
    for facts in cases:
        step = settle_final(facts, market(), ExitState(), ())
        assert not step.settled and step.change is None and step.effects == ()


def test_an_exit_that_sold_everything_closes_the_position() -> None:
    sold = fills("0.01", "1010", commission_quote="1.01")
    facts = FinalFacts(EXIT, CLOSING, sold, (EXIT,), sold, D("101000"))
    step = settle_final(facts, market(), ExitState(refusals=2), (CLOSE,))
    assert isinstance(step.change, fx.MarkClosed)
    closed = step.change.closed
    assert (closed.exit_price, closed.quote_received, closed.return_pct, closed.dust_out) == (
        D("101000"),
        D("1008.99"),
        D("0.899"),
        D(0),
    )
    assert step.exit.refusals == 0
    assert kinds(step.effects) == ["Publish", "Snapshot", "AnswerCloses"]
    event = step.effects[0]
    assert isinstance(event, fx.Publish) and isinstance(event.payload, PositionClosed)
    assert event.payload.exit_reason == "stop_loss" and event.payload.exit_market_time_ms == 1_750
    answer = step.effects[-1]
    assert (
        isinstance(answer, fx.AnswerCloses)
        and answer.outcome is Outcome.DONE
        and answer.reason.startswith("closed: sold 0.01")
    )


def test_what_is_left_below_one_step_is_the_bots_dust() -> None:
    # 0.010004 held: 0.01 sold, 0.000004 is below the step.
    held = position(status="CLOSING", quantity=D("0.010004"), exit_reason="signal")
    sold = fills("0.01", "1000")
    step = settle_final(FinalFacts(EXIT, held, sold, (EXIT,), sold, D("100000")), market(), ExitState(), ())
    assert isinstance(step.change, fx.MarkClosed) and step.change.closed.dust_out == D("0.000004")
    assert "Alert:dust" in kinds(step.effects)


def test_an_exit_that_sold_part_reopens_with_the_exit_still_decided() -> None:
    sold = fills("0.004", "400")
    facts = FinalFacts(
        order(
            client_order_id=EXIT_ID,
            purpose="exit",
            status="EXPIRED",
            executed_quantity=D("0.004"),
            signal_event_id="tick-3",
        ),
        CLOSING,
        sold,
        (EXIT,),
        sold,
        D("100000"),
    )
    step = settle_final(facts, market(now=50.0), ExitState(), (CLOSE,))
    assert step.change == fx.Reopen(keep_exit=True)
    assert step.exit.pending == DecidedExit("stop_loss", 1_700, "tick-3")
    assert (step.exit.refusals, step.exit.due, step.exit.retry_at) == (1, 51.0, 51.0)
    assert kinds(step.effects) == ["Alert:exit_partial", "Snapshot"]  # the close is still under way, not answered


def test_an_exit_that_sold_nothing_reopens_decided_and_tells_a_waiting_close_it_goes_on() -> None:
    facts = FinalFacts(
        order(client_order_id=EXIT_ID, purpose="exit", status="EXPIRED", executed_quantity=D(0), signal_event_id=""),
        position(status="CLOSING"),
        fills("0", "0"),
        (EXIT,),
        fills("0", "0"),
    )
    step = settle_final(facts, market(blocked_for_s=30.0), ExitState(), (CLOSE,))
    assert step.change == fx.Reopen(keep_exit=True)
    # No reason recorded: a manual exit; the source falls back to the order id; Retry-After bounds the retry.
    assert step.exit.pending == DecidedExit("manual", None, EXIT_ID) and step.exit.due == 130.0
    assert kinds(step.effects) == ["Alert:exit_unfilled", "Snapshot", "AnswerCloses"]
    answer = step.effects[-1]
    assert (
        isinstance(answer, fx.AnswerCloses)
        and answer.outcome is Outcome.ACCEPTED
        and answer.reason.endswith("sent again soon")
    )
