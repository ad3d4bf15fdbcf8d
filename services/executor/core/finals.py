"""A final order moves its position on: entry -> OPEN with levels or FAILED; exits -> CLOSED
(with dust below one step), or OPEN again with the exit still decided (nothing or only part sold).

``settle_final`` is the whole decision: ledger facts in, the ledger change, the new exit state
and the effects (events, alerts, answers to waiting closes) out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from services.executor.core.effects import (
    Alert,
    AnswerCloses,
    Effect,
    LedgerChange,
    MarkClosed,
    MarkFailed,
    MarkOpen,
    Publish,
    Reopen,
    RequestExit,
    Snapshot,
)
from services.executor.core.state import CloseRequest, ExitPolicy, ExitState, OrderFacts, PositionFacts, schedule_retry
from shared.events import Outcome, PositionClosed, PositionOpened
from shared.parameters import StrategyParameters
from shared.trading.ledger import FINAL_STATUSES, FillTotals
from shared.trading.lifecycle import Closed, DecidedExit, Opened, close_from_exits, open_from_entry
from shared.trading.protection import ExitReason
from shared.trading.sizing import SymbolFilters, format_decimal
from shared.trading.vocabulary import OrderPurpose, PositionStatus

ZERO = Decimal(0)
ALERT_REPEAT_S = 60.0


@dataclass(frozen=True)
class FinalFacts:
    """The ledger as a final order left it: the order, its position and their fills so far."""

    order: OrderFacts
    position: PositionFacts
    order_totals: FillTotals
    exits: Sequence[OrderFacts] = ()  # the position's exit orders, oldest first (exit orders only)
    exit_totals: FillTotals = field(default_factory=FillTotals)
    mark: Decimal | None = None  # the latest price, for the minimum notional of what is left
    entry_atr: Decimal | None = None  # the ATR the entry recorded for its stop (STOP_MODE=atr)


@dataclass(frozen=True)
class Market:
    """What the decision needs of the symbol and the present: filters, assets, parameters, time."""

    filters: SymbolFilters
    base_asset: str
    parameters: StrategyParameters
    now: float  # monotonic seconds
    blocked_for_s: float  # the exchange's Retry-After still to run
    exit_policy: ExitPolicy


@dataclass(frozen=True)
class FinalStep:
    """The decision: ``settled`` False means the position does not move (yet) and only
    ``effects`` are performed; otherwise ``change`` is written and then ``effects`` follow."""

    settled: bool
    change: LedgerChange | None = None
    exit: ExitState = field(default_factory=ExitState)
    effects: tuple[Effect, ...] = ()


def settle_final(
    facts: FinalFacts, market: Market, exit_state: ExitState, closes: tuple[CloseRequest, ...]
) -> FinalStep:
    """Move the position of a final order on, if that order is the one it waits for."""
    order, position = facts.order, facts.position
    if facts.order_totals.quantity < order.executed_quantity:
        message = (
            f"order {order.client_order_id} executed {format_decimal(order.executed_quantity)} but only "
            f"{format_decimal(facts.order_totals.quantity)} of fills are known yet"
        )
        return FinalStep(
            False, exit=exit_state, effects=(Alert("warning", "fills_incomplete", message, ALERT_REPEAT_S),)
        )
    if order.purpose == OrderPurpose.ENTRY:
        if position.status != PositionStatus.OPENING or position.entry_client_order_id != order.client_order_id:
            return FinalStep(False, exit=exit_state)
        return _settle_entry(facts, market, exit_state, closes)
    if position.status != PositionStatus.CLOSING:
        return FinalStep(False, exit=exit_state)
    exits = facts.exits
    if not exits or exits[-1].client_order_id != order.client_order_id:
        return FinalStep(False, exit=exit_state)
    if any(o.status not in FINAL_STATUSES for o in exits):
        return FinalStep(False, exit=exit_state)
    return _settle_exit(facts, market, exit_state, closes)


def _settle_entry(
    facts: FinalFacts, market: Market, exit_state: ExitState, closes: tuple[CloseRequest, ...]
) -> FinalStep:
    order, position = facts.order, facts.position
    opened = open_from_entry(
        facts.order_totals, order.updated_at_ms, market.parameters, market.filters.tick_size, facts.entry_atr
    )
    if opened is None:
        message = f"entry {order.client_order_id} ended {order.status} without a fill"
        effects: tuple[Effect, ...] = (Alert("warning", "entry_unfilled", message), Snapshot())
        if closes:
            effects += (AnswerCloses(Outcome.DONE, message + ": no position"),)
        return FinalStep(True, MarkFailed(), exit_state, effects)
    event = _opened_event(position, order.client_order_id, opened)
    effects = (Publish(event, f"{event.TYPE}:{order.client_order_id}"), Snapshot())
    if opened.percent_fallback:
        effects += (
            Alert(
                "warning",
                "atr_stop_unavailable",
                f"position {order.client_order_id}: no usable ATR of its entry candle, the stop-loss is the "
                f"percentage one at {format_decimal(opened.stop_loss)}",
            ),
        )
    if closes:
        # A close asked for while the entry was being filled: sell now.
        effects += (
            RequestExit(
                ExitReason.MANUAL,
                None,
                closes[0].source_event_id,
                explicit=True,
                answer_refusal=True,
                only_when_open=True,
            ),
        )
    return FinalStep(True, MarkOpen(opened), exit_state, effects)


def _settle_exit(
    facts: FinalFacts, market: Market, exit_state: ExitState, closes: tuple[CloseRequest, ...]
) -> FinalStep:
    order, position = facts.order, facts.position
    outcome = close_from_exits(
        quantity=position.quantity,
        dust_in=position.dust_in,
        quote_spent=position.quote_spent,
        exit_statuses=[o.status for o in facts.exits],
        exit_totals=facts.exit_totals,
        filters=market.filters,
        mark=facts.mark or facts.exit_totals.average_price,
        fallback_time_ms=order.updated_at_ms,
    )
    if isinstance(outcome, Closed):
        return _closed(facts, market, exit_state, closes, outcome)
    # Nothing or only part sold (the order expired): the exit stays decided and the rest is
    # sold with the next exit id, soon, ticks or not.
    retry = DecidedExit(
        position.exit_reason or ExitReason.MANUAL.value,
        position.exit_candle_open_ms,
        order.signal_event_id or order.client_order_id,
    )
    new_state, _ = schedule_retry(
        replace(exit_state, pending=retry), market.now, market.exit_policy, market.blocked_for_s
    )
    if outcome.sold > ZERO:
        alert = Alert(
            "warning",
            "exit_partial",
            f"exit {order.client_order_id} sold {format_decimal(outcome.sold)} of "
            f"{format_decimal(position.quantity)}; the rest is sold next",
        )
        after: tuple[Effect, ...] = ()
    else:
        alert = Alert("error", "exit_unfilled", f"exit {order.client_order_id} ended {order.status} without a fill")
        # The exit stays decided and is sent again: the close is still under way.
        after = (AnswerCloses(Outcome.ACCEPTED, alert.message + "; sent again soon"),) if closes else ()
    return FinalStep(True, Reopen(keep_exit=True), new_state, (alert, Snapshot(), *after))


def _closed(
    facts: FinalFacts, market: Market, exit_state: ExitState, closes: tuple[CloseRequest, ...], closed: Closed
) -> FinalStep:
    order, position = facts.order, facts.position
    event = PositionClosed(
        symbol=position.symbol,
        entry_price=position.entry_price or ZERO,
        exit_price=closed.exit_price,
        quantity=closed.sold,
        quote_spent=position.quote_spent,
        quote_received=closed.quote_received,
        return_pct=closed.return_pct,
        exit_reason=position.exit_reason or "",
        entry_time_ms=position.entry_time_ms or 0,
        exit_time_ms=closed.exit_time_ms,
        client_order_id=order.client_order_id,
        position_id=position.id,
        entry_market_time_ms=position.entry_market_time_ms,
        exit_market_time_ms=position.exit_market_time_ms,
        dust_out=closed.dust_out,
    )
    effects: tuple[Effect, ...] = (Publish(event, f"{event.TYPE}:{order.client_order_id}"),)
    if closed.remaining > ZERO:
        effects += (
            Alert(
                "info",
                "dust",
                f"{format_decimal(closed.remaining)} {market.base_asset} below one step left "
                "after closing is the bot's dust; the next exit sells it",
            ),
        )
    effects += (Snapshot(),)
    if closes:
        effects += (
            AnswerCloses(
                Outcome.DONE,
                f"closed: sold {format_decimal(closed.sold)} at "
                f"{format_decimal(closed.exit_price)}, return {format_decimal(closed.return_pct)} %",
            ),
        )
    return FinalStep(True, MarkClosed(closed), replace(exit_state, refusals=0), effects)


def _opened_event(position: PositionFacts, client_order_id: str, opened: Opened) -> PositionOpened:
    return PositionOpened(
        symbol=position.symbol,
        entry_price=opened.entry_price,
        quantity=opened.quantity,
        quote_spent=opened.quote_spent,
        stop_loss=opened.stop_loss,
        take_profit=opened.take_profit,
        entry_time_ms=opened.entry_time_ms or 0,
        client_order_id=client_order_id,
        position_id=position.id,
        entry_market_time_ms=position.entry_market_time_ms,
    )
