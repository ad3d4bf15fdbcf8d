"""Deciding an exit: whether a trigger (a stop-loss or take-profit price, a SELL signal, a manual
close, the retry of a decided exit) sells now, and what it sells under which id.

An exit once decided stays decided: whatever triggers it again sends it with the reason and the
candle that decided it, in every bot state. Only a new SELL signal waits for the bot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from services.executor.core.effects import Alert, AnswerCloses, Effect
from services.executor.core.finals import ALERT_REPEAT_S
from services.executor.core.state import ExitPolicy, ExitState, OrderFacts, PositionFacts, schedule_retry
from shared.events import Outcome
from shared.trading.lifecycle import DecidedExit, held_quantity, next_exit_id
from shared.trading.protection import ExitReason
from shared.trading.sizing import SymbolFilters, format_decimal, sellable_quantity
from shared.trading.vocabulary import PositionStatus

ZERO = Decimal(0)


@dataclass(frozen=True)
class ExitRequest:
    """A trigger of an exit. ``explicit``: a signal or command asked for it (not a price or a retry)."""

    reason: ExitReason
    candle_open_ms: int | None
    source_event_id: str
    price: Decimal | None = None
    explicit: bool = False
    market_time_ms: int | None = None

    @property
    def decided(self) -> DecidedExit:
        return DecidedExit(self.reason.value, self.candle_open_ms, self.source_event_id)


@dataclass(frozen=True)
class Stop:
    """No exit is sent: ``refusal`` says why ("" when none is needed), ``effects`` report it;
    ``ends_pending`` drops a decided exit (there is nothing the exchange would take)."""

    refusal: str
    effects: tuple[Effect, ...] = ()
    ends_pending: bool = False


@dataclass(frozen=True)
class Controls:
    """What the bot state allows, and how it words a refusal."""

    strategy_exits_allowed: bool
    refusal: str


def trigger(
    position: PositionFacts | None, request: ExitRequest, exit_state: ExitState, controls: Controls, now: float
) -> ExitRequest | Stop:
    """The exit to go on with (a decided one replaces the trigger's reason), or why not."""
    if position is None or position.status != PositionStatus.OPEN:
        state = "no position" if position is None else f"the position is {position.status}"
        ignored: tuple[Effect, ...] = ()
        if request.explicit and request.reason is not ExitReason.MANUAL:
            ignored = (Alert("info", "exit_ignored", f"{request.reason.value} exit ignored: {state}"),)
        return Stop(state, ignored)
    decided = exit_state.pending
    if decided is not None:
        request = replace(
            request,
            reason=ExitReason(decided.reason),
            candle_open_ms=decided.candle_open_ms,
            source_event_id=decided.source_event_id,
            market_time_ms=position.exit_market_time_ms or request.market_time_ms,
        )
    elif request.reason is ExitReason.SIGNAL and request.explicit and not controls.strategy_exits_allowed:
        message = f"SELL signal not followed: {controls.refusal} (stop-loss and take-profit are still watched)"
        return Stop("the bot is stopped", (Alert("info", "exit_blocked", message, ALERT_REPEAT_S),))
    if not request.explicit and now < exit_state.retry_at:
        return Stop("")
    return request


def unavailable(
    request: ExitRequest, message: str, exit_state: ExitState, now: float, policy: ExitPolicy, blocked_for_s: float
) -> tuple[ExitState, tuple[Effect, ...]]:
    """The symbol's filters could not be read: the exit stays decided and is tried again soon."""
    state, delay = schedule_retry(replace(exit_state, pending=request.decided), now, policy, blocked_for_s)
    return state, (AnswerCloses(Outcome.ACCEPTED, f"exchange unavailable ({message}); retried in {delay:.1f}s"),)


@dataclass(frozen=True)
class ExitOrder:
    """The exit order to write and send."""

    client_order_id: str
    quantity: Decimal
    note: str


def plan(
    position: PositionFacts,
    exits: Sequence[OrderFacts],
    sold: Decimal,
    filters: SymbolFilters,
    base_asset: str,
    request: ExitRequest,
    mark: Decimal | None,
) -> ExitOrder | Stop:
    """Sell what the position holds with the bot's dust it carries, rounded down to the step;
    a quantity the exchange would refuse (below minQty/minNotional) is reported, not sent."""
    remaining = held_quantity(position.quantity, position.dust_in, (o.status for o in exits), sold)
    sell = sellable_quantity(remaining, filters, mark)
    if sell.dust:
        what = f"{format_decimal(remaining)} {base_asset} cannot be sold ({sell.reason})"
        alert = Alert("warning", "exit_dust", f"{request.reason.value} exit not sent: {what}", ALERT_REPEAT_S)
        return Stop(f"order below the exchange minimum: {what}", (alert,), ends_pending=True)
    client_id = next_exit_id(position.entry_client_order_id, [(o.client_order_id, o.status) for o in exits])
    note = f"{request.reason.value} exit"
    if sell.remainder > ZERO:
        note += f"; {format_decimal(sell.remainder)} {base_asset} below one step stays as dust"
    return ExitOrder(client_id, sell.quantity, note)


def resumed(
    position: PositionFacts | None, exits: Sequence[OrderFacts], exit_state: ExitState, now: float
) -> ExitState:
    """An exit decided before a restart or takeover and not yet sold is still decided: it is
    taken up from the ledger (the position OPEN with its exit reason kept) and sent at once."""
    if (
        position is None
        or position.status != PositionStatus.OPEN
        or not position.exit_reason
        or exit_state.pending is not None
    ):
        return exit_state
    source = exits[-1].signal_event_id if exits and exits[-1].signal_event_id else position.entry_client_order_id
    return replace(exit_state, pending=DecidedExit(position.exit_reason, position.exit_candle_open_ms, source), due=now)
