"""An order that definitely does not exist: every transition of ``core.refusals.refuse_order``."""

from __future__ import annotations

from services.executor.core import effects as fx
from services.executor.core.refusals import Refusal, RefusalStep, refuse_order
from services.executor.core.state import ExitState
from shared.events import Outcome
from shared.trading.lifecycle import DecidedExit
from tests.unit.executor.facts import EXIT_ID, POLICY, OrderRow, PositionRow, order, position

EXIT = order(client_order_id=EXIT_ID, purpose="exit", status="INTENT", signal_event_id="tick-3")
CLOSING = position(status="CLOSING", exit_reason="stop_loss", exit_candle_open_ms=1_700)


def alerts(effects: tuple[fx.Effect, ...]) -> list[tuple[str, str]]:
    return [(e.level, e.code) for e in effects if isinstance(e, fx.Alert)]


def refuse(
    o: OrderRow,
    p: PositionRow | None,
    refusal: Refusal,
    state: ExitState | None = None,
    closes: bool = False,
    blocked: float = 0.0,
) -> RefusalStep:
    return refuse_order(
        o, p, refusal, state or ExitState(), closes_waiting=closes, now=100.0, policy=POLICY, blocked_for_s=blocked
    )


def test_a_refused_entry_fails_its_position() -> None:
    step = refuse(
        order(status="INTENT"),
        position(status="OPENING"),
        Refusal("-2010 Account has insufficient balance", -2010, True),
    )
    assert step.order_change == fx.RejectOrder("-2010 Account has insufficient balance")
    assert isinstance(step.position_change, fx.MarkFailed)
    assert alerts(step.effects) == [("error", "insufficient_balance")]
    assert not any(isinstance(e, fx.AnswerCloses) for e in step.effects)


def test_a_refused_entry_answers_a_waiting_close_done_no_position() -> None:
    step = refuse(order(status="INTENT"), position(status="OPENING"), Refusal("rate limited", None), closes=True)
    answer = step.effects[-1]
    assert isinstance(answer, fx.AnswerCloses) and answer.outcome is Outcome.DONE and "no position" in answer.reason


def test_an_exit_refused_before_it_could_execute_stays_decided_and_is_sent_again() -> None:
    step = refuse(EXIT, CLOSING, Refusal("not placed after 3 attempts", None), closes=True, blocked=4.0)
    assert step.position_change == fx.Reopen(keep_exit=True)
    assert step.exit.pending == DecidedExit("stop_loss", 1_700, "tick-3")
    assert (step.exit.refusals, step.exit.due, step.exit.retry_at) == (1, 104.0, 104.0)  # Retry-After bounds it
    assert alerts(step.effects) == [("warning", "exit_pending")]
    answer = step.effects[-1]
    assert isinstance(answer, fx.AnswerCloses) and answer.outcome is Outcome.ACCEPTED


def test_the_third_refusal_in_a_row_of_a_decided_exit_is_an_error() -> None:
    step = refuse(EXIT, CLOSING, Refusal("lease lost", None), state=ExitState(refusals=2))
    assert alerts(step.effects) == [("error", "exit_pending")]
    assert step.exit.refusals == 3 and step.exit.due == 104.0  # 1 s doubled twice


def test_a_definite_exit_refusal_reopens_undecided_and_tells_the_operator_what_to_do() -> None:
    decided = ExitState(pending=DecidedExit("stop_loss", 1, "x"), due=90.0)
    step = refuse(
        EXIT, CLOSING, Refusal("-2010 Account has insufficient balance", -2010, True), state=decided, closes=True
    )
    assert step.position_change == fx.Reopen(keep_exit=False)
    assert step.exit.pending is None and step.exit.due is None and step.exit.retry_at == 110.0
    assert alerts(step.effects) == [("error", "insufficient_balance"), ("error", "exit_refused")]
    answer = step.effects[-1]
    assert isinstance(answer, fx.AnswerCloses) and answer.outcome is Outcome.REFUSED


def test_refusal_codes_name_the_alert() -> None:
    for refusal, code in (
        (Refusal("-2010 Order would trigger immediately", -2010, True), "order_rejected"),
        (Refusal("-1013 Filter failure: LOT_SIZE", -1013, True), "filter_failure"),
        (Refusal("-1111 precision", -1111, True), "order_rejected"),
    ):
        assert alerts(refuse(order(status="INTENT"), None, refusal).effects)[0] == ("error", code)


def test_an_exit_without_a_recorded_reason_is_not_kept_decided() -> None:
    step = refuse(EXIT, position(status="CLOSING"), Refusal("not placed", None))
    assert step.position_change == fx.Reopen(keep_exit=False) and step.exit.pending is None


def test_a_position_that_moved_on_is_left_as_it_is() -> None:
    step = refuse(EXIT, position(status="OPEN"), Refusal("not placed", None))
    assert step.position_change is None and step.exit == ExitState()
    step = refuse(order(status="INTENT"), position(status="OPEN"), Refusal("not placed", None))
    assert step.position_change is None
