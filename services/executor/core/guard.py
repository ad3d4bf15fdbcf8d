"""Exchange-side protection (``PROTECTION=exchange``): the OCO SELL resting after an entry, and
what a final leg of it does to the position.

The stop-loss leg is ``STOP_LOSS`` when the symbol takes it: once triggered it sells at market,
so it fills even when the price gaps through the stop while nobody watches. Only a symbol that
does not list ``STOP_LOSS`` in its ``orderTypes`` gets ``STOP_LOSS_LIMIT``, its limit
``STOP_LIMIT_OFFSET`` below the stop (a gap below that limit leaves it resting unfilled, which
the bot-side watch cannot see: the price must be watched by the operator). The take-profit leg is
``LIMIT_MAKER`` at the take-profit level: it pays the maker fee and can never take liquidity by
surprise. Both legs sell the credited quantity rounded down to the LOT_SIZE step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.executor.core.state import OrderFacts, PositionFacts
from shared.trading.ids import ProtectionIds, is_stop_leg_id, protection_generation
from shared.trading.ledger import FINAL_STATUSES, UNSETTLED_STATUSES
from shared.trading.protection import ExitReason, stop_limit_price
from shared.trading.sizing import SymbolFilters, format_decimal, round_down_to_step
from shared.trading.vocabulary import OrderStatus

ZERO = Decimal(0)
# A leg the exchange confirmed and that still rests (the ledger keeps a working order SUBMITTED).
RESTING_LEG = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.NEW, OrderStatus.PENDING_NEW})
STOP_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})
# A leg in one of these may still rest on the exchange (or be about to).
LIVE_STATUSES = UNSETTLED_STATUSES | RESTING_LEG


@dataclass(frozen=True)
class OcoOrder:
    """The OCO SELL protecting a position (prices and quantity already on the symbol's grid)."""

    list_client_order_id: str
    stop_client_order_id: str
    take_profit_client_order_id: str
    quantity: Decimal
    stop_type: str  # STOP_LOSS or STOP_LOSS_LIMIT
    stop_price: Decimal
    stop_limit_price: Decimal | None
    take_profit: Decimal
    # Generation 2 and later: the stop leg alone, a single order (the take-profit is the bot's).
    single: bool = False


def single_stop(generation: int) -> bool:
    """Whether the ``generation``-th protection of a position is a single stop order: the first
    is an OCO; every later one replaces the stop atomically (``order/cancelReplace``), which
    places a single order, never a list, so the take-profit is watched by the bot from then on."""
    return generation > 1


def plan_oco(
    position: PositionFacts,
    held: Decimal,
    filters: SymbolFilters,
    order_types: Sequence[str],
    made: ProtectionIds,
    stop_limit_offset: Decimal,
) -> OcoOrder | str:
    """The OCO to place for ``held`` base of ``position`` (from generation 2 on its stop leg
    alone, ``single``), or why none can be (the bot watches)."""
    stop, take = position.stop_loss, position.take_profit
    if stop is None or take is None:
        return "the position has no levels"
    single = single_stop(made.generation)
    if "LIMIT_MAKER" not in order_types and not single:
        return "the symbol does not take LIMIT_MAKER orders"
    if "STOP_LOSS" in order_types:
        stop_type, limit = "STOP_LOSS", None
    elif "STOP_LOSS_LIMIT" in order_types:
        stop_type = "STOP_LOSS_LIMIT"
        limit = stop_limit_price(stop, stop_limit_offset, filters.tick_size)
        if limit <= ZERO:
            return f"no valid stop limit below {format_decimal(stop)}"
    else:
        return "the symbol takes neither STOP_LOSS nor STOP_LOSS_LIMIT orders"
    quantity = round_down_to_step(held, filters.step_size)
    if quantity <= ZERO or quantity < filters.min_qty:
        return f"LOT_SIZE: {format_decimal(quantity)} is below minQty {format_decimal(filters.min_qty)}"
    if quantity * (limit or stop) < filters.min_notional:
        return f"NOTIONAL: {format_decimal(quantity * (limit or stop))} is below {format_decimal(filters.min_notional)}"
    return OcoOrder(made.list_id, made.stop_loss, made.take_profit, quantity, stop_type, stop, limit, take, single)


def live(legs: Sequence[OrderFacts]) -> bool:
    """True while a leg may rest on the exchange: the exchange protects the position."""
    return any(leg.status in LIVE_STATUSES for leg in legs)


@dataclass(frozen=True)
class LegExit:
    """A leg that sold: the exit reason it records, and whether it is the leg's last word."""

    client_order_id: str
    reason: ExitReason


def leg_exit(legs: Sequence[OrderFacts]) -> LegExit | None:
    """The leg that sold and is final (the position's exit), if any, of any generation. A leg
    CANCELED by the bot's own exit is not one: what it sold counts with that exit."""
    for leg in legs:
        if leg.executed_quantity <= ZERO or leg.status not in FINAL_STATUSES or leg.status == OrderStatus.CANCELED:
            continue
        reason = ExitReason.STOP_LOSS if is_stop_leg_id(leg.client_order_id) else ExitReason.TAKE_PROFIT
        return LegExit(leg.client_order_id, reason)
    return None


# The note a leg carries once the bot decided to replace its OCO by the next generation (written
# before the cancel is sent): a list that ended so is followed by the next one, while a list that
# ended otherwise (cancelled by hand, expired) leaves the position to the bot's watch, told.
REPLACED_NOTE = "replaced by a moved stop"


def next_generation(legs: Sequence[OrderFacts], notes: Sequence[str]) -> int | None:
    """The generation of the OCO to place for a position whose protection legs (every one the
    ledger holds, any status) are ``legs`` with their ``notes``: 1 with none; the newest one
    again when none of its legs reached the exchange (all REJECTED: sent again under its ids);
    the next one when the newest was replaced; None when it ended otherwise (or still rests)."""
    generations = [protection_generation(leg.client_order_id) or 0 for leg in legs]
    if not legs or max(generations) == 0:
        return 1
    newest = max(generations)
    mine = [(leg, note) for leg, note, g in zip(legs, notes, generations, strict=True) if g == newest]
    if all(leg.status == OrderStatus.REJECTED for leg, _ in mine):
        return newest
    if all(leg.status in FINAL_STATUSES for leg, _ in mine) and any(note.startswith(REPLACED_NOTE) for _, note in mine):
        return newest + 1
    return None


def refused_alert(position: PositionFacts, why: str) -> str:
    """The message of the alert raised when the exchange cannot protect a position."""
    return (
        f"stop-loss/take-profit of position {position.entry_client_order_id} not placed on the exchange ({why}); "
        "the bot watches the levels on ticks instead, so the position is protected only while the executor runs"
    )
