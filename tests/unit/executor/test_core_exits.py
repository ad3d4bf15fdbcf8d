"""Deciding an exit: every branch of ``core.exits`` (trigger, plan, unavailable, resumed)."""

from __future__ import annotations

from decimal import Decimal

from services.executor.core import effects as fx
from services.executor.core.exits import Controls, ExitOrder, ExitRequest, Stop, plan, resumed, trigger, unavailable
from services.executor.core.state import ExitState
from shared.events import Outcome
from shared.trading.lifecycle import DecidedExit
from shared.trading.protection import ExitReason
from tests.unit.executor.facts import ENTRY_ID, EXIT_ID, FILTERS, POLICY, order, position

D = Decimal
RUNNING = Controls(strategy_exits_allowed=True, refusal="")
STOPPED = Controls(strategy_exits_allowed=False, refusal="the bot is stopped")
SELL = ExitRequest(ExitReason.SIGNAL, 1_000, "signal-5", D("99000"), explicit=True, market_time_ms=1_060)
TICK = ExitRequest(ExitReason.STOP_LOSS, 1_000, "tick-5", D("97000"), market_time_ms=1_030)


def test_without_an_open_position_nothing_is_sold_and_only_an_explicit_trigger_is_told() -> None:
    stop = trigger(None, SELL, ExitState(), RUNNING, 0.0)
    assert isinstance(stop, Stop) and stop.refusal == "no position"
    assert [e.code for e in stop.effects if isinstance(e, fx.Alert)] == ["exit_ignored"]
    manual = ExitRequest(ExitReason.MANUAL, None, "cmd", explicit=True)
    closing = trigger(position(status="CLOSING"), manual, ExitState(), RUNNING, 0.0)
    assert closing == Stop("the position is CLOSING")
    assert trigger(position(status="OPENING"), TICK, ExitState(), RUNNING, 0.0) == Stop("the position is OPENING")


def test_a_sell_signal_waits_for_the_bot_state_but_a_stop_loss_does_not() -> None:
    blocked = trigger(position(), SELL, ExitState(), STOPPED, 0.0)
    assert isinstance(blocked, Stop) and blocked.refusal == "the bot is stopped"
    [alert] = blocked.effects
    assert isinstance(alert, fx.Alert) and alert.code == "exit_blocked" and alert.repeat_s == 60.0
    assert trigger(position(), TICK, ExitState(), STOPPED, 0.0) == TICK


def test_a_decided_exit_keeps_its_reason_and_candle_whatever_triggers_it() -> None:
    decided = ExitState(pending=DecidedExit("stop_loss", 900, "tick-1"))
    go = trigger(position(exit_market_time_ms=930), SELL, decided, STOPPED, 0.0)
    assert go == ExitRequest(ExitReason.STOP_LOSS, 900, "tick-1", D("99000"), explicit=True, market_time_ms=930)


def test_a_price_does_not_trigger_a_new_exit_before_the_retry_window_ends() -> None:
    assert trigger(position(), TICK, ExitState(retry_at=50.0), RUNNING, 40.0) == Stop("")
    assert trigger(position(), TICK, ExitState(retry_at=50.0), RUNNING, 50.0) == TICK
    assert trigger(position(), SELL, ExitState(retry_at=50.0), RUNNING, 40.0) == SELL


def test_unreadable_filters_keep_the_exit_decided_and_tell_waiting_closes() -> None:
    state, effects = unavailable(TICK, "exchangeInfo: timed out", ExitState(), 10.0, POLICY, 0.0)
    assert state.pending == DecidedExit("stop_loss", 1_000, "tick-5") and state.due == 11.0
    assert effects == (
        fx.AnswerCloses(Outcome.ACCEPTED, "exchange unavailable (exchangeInfo: timed out); retried in 1.0s"),
    )


def test_the_exit_sells_the_position_and_its_carried_dust_rounded_down_to_the_step() -> None:
    planned = plan(position(quantity=D("0.009995"), dust_in=D("0.000008")), [], D(0), FILTERS, "BTC", TICK, D("97000"))
    assert planned == ExitOrder(EXIT_ID, D("0.01000"), "stop_loss exit; 0.000003 BTC below one step stays as dust")


def test_the_rest_of_a_partial_exit_is_sold_under_the_next_id_without_the_dust() -> None:
    exits = [
        order(client_order_id=EXIT_ID, purpose="exit", status="REJECTED"),
        order(client_order_id="XS2-BTCUSDT-1747699200000", purpose="exit", status="EXPIRED"),
    ]
    planned = plan(position(quantity=D("0.01"), dust_in=D("0.000008")), exits, D("0.004"), FILTERS, "BTC", TICK, None)
    assert planned == ExitOrder("XS3-BTCUSDT-1747699200000", D("0.006"), "stop_loss exit")


def test_a_refused_exit_is_sent_again_under_its_own_id() -> None:
    exits = [order(client_order_id=EXIT_ID, purpose="exit", status="REJECTED")]
    planned = plan(position(), exits, D(0), FILTERS, "BTC", TICK, None)
    assert isinstance(planned, ExitOrder) and planned.client_order_id == EXIT_ID


def test_what_the_exchange_would_refuse_is_reported_and_ends_the_decided_exit() -> None:
    stop = plan(position(quantity=D("0.00004")), [], D(0), FILTERS, "BTC", TICK, D("97000"))
    assert isinstance(stop, Stop) and stop.ends_pending and stop.refusal.startswith("order below the exchange minimum")
    [alert] = stop.effects
    assert isinstance(alert, fx.Alert) and alert.code == "exit_dust" and "minNotional" in alert.message


def test_an_exit_decided_before_a_restart_is_taken_up_and_due_at_once() -> None:
    held = position(exit_reason="take_profit", exit_candle_open_ms=800)
    state = resumed(held, [order(client_order_id=EXIT_ID, purpose="exit", signal_event_id="tick-9")], ExitState(), 5.0)
    assert state.pending == DecidedExit("take_profit", 800, "tick-9") and state.due == 5.0
    assert resumed(held, [], ExitState(), 5.0).pending == DecidedExit("take_profit", 800, ENTRY_ID)
    assert resumed(position(), [], ExitState(), 5.0) == ExitState()
    already = ExitState(pending=DecidedExit("signal", 1, "s"))
    assert resumed(held, [], already, 5.0) is already
