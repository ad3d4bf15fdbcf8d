"""A position's life in numbers (``shared.trading.lifecycle``)."""

from __future__ import annotations

from decimal import Decimal

from shared.parameters import StrategyParameters
from shared.trading.ledger import FillTotals
from shared.trading.lifecycle import (
    Closed,
    Reopened,
    close_from_exits,
    exit_retry_delay,
    held_quantity,
    next_exit_id,
    open_from_entry,
)
from shared.trading.sizing import SymbolFilters

D = Decimal
FILTERS = SymbolFilters(
    tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"), max_qty=D("9000"), min_notional=D("5")
)
ENTRY = "EB-BTCUSDT-1747699200000"


def test_held_is_quantity_plus_carried_dust_less_sold_and_a_refused_exit_drops_the_dust() -> None:
    assert held_quantity(D("0.01"), D("0.000004"), ["FILLED"], D("0.004")) == D("0.006004")
    assert held_quantity(D("0.01"), D("0.000004"), ["REJECTED", "FILLED"], D("0.004")) == D("0.006")


def test_an_entry_opens_at_its_average_price_with_the_credited_base() -> None:
    opened = open_from_entry(
        FillTotals(D("0.02"), D("2000"), D("0.00002"), D(0), 7), 9, StrategyParameters(), D("0.01")
    )
    assert opened is not None
    assert (opened.entry_price, opened.quantity, opened.quote_spent, opened.entry_time_ms) == (
        D("100000"),
        D("0.01998"),
        D("2000"),
        7,
    )
    assert (opened.stop_loss, opened.take_profit) == (D("98000"), D("105000"))
    assert open_from_entry(FillTotals(), 9, StrategyParameters(), D("0.01")) is None


def test_exits_close_when_what_is_left_is_below_one_step() -> None:
    outcome = close_from_exits(
        quantity=D("0.010004"),
        dust_in=D(0),
        quote_spent=D("1000"),
        exit_statuses=["FILLED"],
        exit_totals=FillTotals(D("0.01"), D("1010"), D(0), D("1.01"), 8),
        filters=FILTERS,
        mark=None,
        fallback_time_ms=9,
    )
    assert isinstance(outcome, Closed)
    assert (outcome.exit_price, outcome.quote_received, outcome.exit_time_ms, outcome.dust_out) == (
        D("101000"),
        D("1008.99"),
        8,
        D("0.000004"),
    )
    assert outcome.return_pct == D("0.899")


def test_exits_reopen_when_nothing_or_a_sellable_rest_is_left() -> None:
    def after(sold: FillTotals) -> Closed | Reopened:
        return close_from_exits(
            quantity=D("0.01"),
            dust_in=D(0),
            quote_spent=D("1000"),
            exit_statuses=["EXPIRED"],
            exit_totals=sold,
            filters=FILTERS,
            mark=D("100000"),
            fallback_time_ms=9,
        )

    assert after(FillTotals()) == Reopened(D(0))
    assert after(FillTotals(D("0.004"), D("400"))) == Reopened(D("0.004"))


def test_a_refused_exit_keeps_its_id_and_others_take_the_next() -> None:
    assert next_exit_id(ENTRY, []) == "XS-BTCUSDT-1747699200000"
    assert next_exit_id(ENTRY, [("XS-BTCUSDT-1747699200000", "REJECTED")]) == "XS-BTCUSDT-1747699200000"
    assert next_exit_id(ENTRY, [("XS-BTCUSDT-1747699200000", "EXPIRED")]) == "XS2-BTCUSDT-1747699200000"


def test_the_retry_of_a_decided_exit_doubles_up_to_its_bound_and_waits_for_retry_after() -> None:
    assert [exit_retry_delay(n, 0.5, 3.0, 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert exit_retry_delay(1, 0.0, 3.0, 0.0) == 0.05
    assert exit_retry_delay(1, 0.5, 3.0, 20.0) == 20.0
