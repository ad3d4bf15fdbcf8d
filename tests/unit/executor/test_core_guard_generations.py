"""Which generation of the OCO a position gets next, and which leg's fill is its exit."""

from __future__ import annotations

from decimal import Decimal

from services.executor.core.guard import REPLACED_NOTE, leg_exit, next_generation, plan_oco, single_stop
from shared.trading.ids import protection_ids
from shared.trading.protection import ExitReason
from shared.trading.sizing import SymbolFilters
from tests.unit.executor.facts import ENTRY_ID, order, position

D = Decimal
ZERO = D(0)


def legs(generation: int, status: str, executed: Decimal = ZERO):
    made = protection_ids(ENTRY_ID, generation)
    return [
        order(client_order_id=made.stop_loss, purpose="protect", status=status, executed_quantity=executed),
        order(client_order_id=made.take_profit, purpose="protect", status=status),
    ]


def test_the_first_oco_is_generation_one_and_one_never_sent_is_sent_again_under_its_ids() -> None:
    assert next_generation([], []) == 1
    assert next_generation(legs(1, "REJECTED"), ["", ""]) == 1
    assert next_generation([*legs(1, "CANCELED"), *legs(2, "REJECTED")], [REPLACED_NOTE] * 2 + ["", ""]) == 2


def test_a_replaced_oco_is_followed_by_the_next_generation_one_that_ended_otherwise_by_none() -> None:
    replaced = f"{REPLACED_NOTE}: 98000 -> 99000"
    assert next_generation(legs(1, "CANCELED"), [replaced, replaced]) == 2
    assert next_generation([*legs(1, "CANCELED"), *legs(2, "CANCELED")], [replaced] * 4) == 3
    # Cancelled by hand or expired: the bot watches, told, rather than placing it again.
    assert next_generation(legs(1, "CANCELED"), ["", ""]) is None
    # Still resting (or about to): nothing to place.
    assert next_generation(legs(2, "SUBMITTED"), [replaced, replaced]) is None


def test_the_stop_leg_of_any_generation_is_a_stop_loss_exit() -> None:
    sold = legs(3, "FILLED", D("0.01"))
    exit_ = leg_exit(sold)
    assert exit_ is not None and exit_.reason is ExitReason.STOP_LOSS
    assert exit_.client_order_id == protection_ids(ENTRY_ID, 3).stop_loss
    assert leg_exit(legs(2, "CANCELED", D("0.01"))) is None


def test_the_first_protection_is_an_oco_every_later_one_a_single_stop_of_the_same_type() -> None:
    filters = SymbolFilters(
        tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"), max_qty=D("9000"), min_notional=D("5")
    )
    types = ("LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT")
    first = plan_oco(position(), D("0.1"), filters, types, protection_ids(ENTRY_ID), D("0.005"))
    second = plan_oco(position(), D("0.1"), filters, types, protection_ids(ENTRY_ID, 2), D("0.005"))
    assert not isinstance(first, str) and not isinstance(second, str)
    assert (first.single, second.single, single_stop(1), single_stop(2)) == (False, True, False, True)
    assert (second.stop_type, second.stop_client_order_id) == ("STOP_LOSS", protection_ids(ENTRY_ID, 2).stop_loss)
    # A symbol without LIMIT_MAKER takes no OCO, but a single stop still.
    assert isinstance(plan_oco(position(), D("0.1"), filters, ("STOP_LOSS",), protection_ids(ENTRY_ID), D("0")), str)
    lone = plan_oco(position(), D("0.1"), filters, ("STOP_LOSS_LIMIT",), protection_ids(ENTRY_ID, 3), D("0.005"))
    assert not isinstance(lone, str) and lone.single and lone.stop_type == "STOP_LOSS_LIMIT"
    assert lone.stop_limit_price is not None and lone.stop_limit_price < lone.stop_price
