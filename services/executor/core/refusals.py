"""An order that definitely does not exist on the exchange: REJECTED, and its position goes back.

An entry's position never existed (FAILED). An exit refused before it could execute (rate
limit, clock, a 5xx or timeout settled as "not found", the lease) stays decided and is sent
again soon under the same id. A ``definite`` refusal (the exchange's answer will not change by
itself, e.g. -2010, -1013) is an error the operator sees, and is not retried on a timer: the
next trigger (a price beyond a level after EXIT_RETRY_S, a SELL signal, a manual close) tries
the same id again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.executor.core.effects import (
    Alert,
    AnswerCloses,
    Effect,
    LedgerChange,
    MarkFailed,
    RejectOrder,
    Reopen,
    Snapshot,
)
from services.executor.core.state import ExitPolicy, ExitState, OrderFacts, PositionFacts, schedule_retry
from shared.events import Outcome
from shared.trading.lifecycle import DecidedExit
from shared.trading.vocabulary import OrderPurpose, PositionStatus

REASON_LENGTH = 500
ERROR_AFTER_REFUSALS = 3
REFUSAL_CODES = {-2010: "insufficient_balance", -1013: "filter_failure"}


@dataclass(frozen=True)
class Refusal:
    """Why the order is refused: the exchange's message and code, and whether the answer is definite."""

    message: str
    code: int | None
    definite: bool = False


@dataclass(frozen=True)
class RefusalStep:
    """The ledger changes (order, then its position), the new exit state and what follows."""

    order_change: RejectOrder
    position_change: LedgerChange | None
    exit: ExitState
    effects: tuple[Effect, ...]


def refuse_order(
    order: OrderFacts,
    position: PositionFacts | None,
    refusal: Refusal,
    exit_state: ExitState,
    *,
    closes_waiting: bool,
    now: float,
    policy: ExitPolicy,
    blocked_for_s: float,
) -> RefusalStep:
    """REJECT ``order`` (not final yet) and move its position back; see the module docstring."""
    is_exit = order.purpose == OrderPurpose.EXIT
    change: LedgerChange | None = None
    decided: DecidedExit | None = None
    refused_exit = "the"
    effects: tuple[Effect, ...] = ()
    if position is not None and order.purpose == OrderPurpose.ENTRY and position.status == PositionStatus.OPENING:
        change = MarkFailed()
    elif position is not None and is_exit and position.status == PositionStatus.CLOSING:
        refused_exit = position.exit_reason or refused_exit
        if not refusal.definite and position.exit_reason:
            decided = DecidedExit(position.exit_reason, position.exit_candle_open_ms, order.signal_event_id or "")
        change = Reopen(keep_exit=decided is not None)
        exit_state = replace(exit_state, retry_at=now + policy.exit_retry_s)
        if decided is None:
            exit_state = exit_state.cleared()
    reject = RejectOrder(refusal.message[:REASON_LENGTH])
    if decided is not None:
        exit_state, delay = schedule_retry(replace(exit_state, pending=decided), now, policy, blocked_for_s)
        level = "error" if exit_state.refusals >= ERROR_AFTER_REFUSALS else "warning"
        client_id = order.client_order_id
        effects += (
            Alert(
                level,
                "exit_pending",
                f"{decided.reason} exit {client_id} not placed ({refusal.message}); it stays decided and is sent again "
                f"in {delay:.1f}s with the same id (refusal {exit_state.refusals})",
            ),
            Snapshot(),
            AnswerCloses(Outcome.ACCEPTED, f"exit order {client_id} not placed ({refusal.message}); sent again soon"),
        )
        return RefusalStep(reject, change, exit_state, effects)
    effects += _refused_for_good(order, refusal, refused_exit, closes_waiting)
    return RefusalStep(reject, change, exit_state, effects)


def _refused_for_good(
    order: OrderFacts, refusal: Refusal, refused_exit: str, closes_waiting: bool
) -> tuple[Effect, ...]:
    code_name = REFUSAL_CODES.get(refusal.code or 0, "order_rejected")
    if refusal.code == -2010 and "insufficient" not in refusal.message.lower():
        code_name = "order_rejected"
    client_id, is_exit = order.client_order_id, order.purpose == OrderPurpose.EXIT
    effects: tuple[Effect, ...] = (
        Alert("error", code_name, f"{order.purpose} order {client_id} not placed: {refusal.message}"),
        Snapshot(),
    )
    if is_exit and refusal.definite:
        # The position stays OPEN and unsold: the operator must know, and know what to do.
        effects += (
            Alert(
                "error",
                "exit_refused",
                f"{refused_exit} exit {client_id} refused by the exchange: {refusal.message}; "
                "the position stays OPEN and is "
                "not sold. It is tried again with the same id on the next trigger (a price beyond a level after "
                "EXIT_RETRY_S, a SELL signal, or a manual close); check the account and close it manually if needed",
            ),
        )
    if closes_waiting:
        what = "exit" if is_exit else "entry (nothing was bought, no position)"
        outcome = Outcome.REFUSED if is_exit else Outcome.DONE
        effects += (AnswerCloses(outcome, f"{what} order {client_id} not placed: {refusal.message}"),)
    return effects
