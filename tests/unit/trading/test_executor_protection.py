"""Stop-loss / take-profit levels, the exit rule and the realised return, by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from shared.parameters import StrategyParameters
from shared.trading.protection import ExitReason, exit_reason, protection_levels, realised_return_pct

DEFAULTS = StrategyParameters()  # stop 2 %, take profit 5 %


@pytest.mark.parametrize(
    ("entry", "tick", "stop_loss", "take_profit"),
    [
        # 105954.54 x 0.98 = 103835.4492 -> up to 103835.45; x 1.05 = 111252.267 -> down to 111252.26
        ("105954.54", "0.01", "103835.45", "111252.26"),
        ("100000", "0.01", "98000.00", "105000.00"),  # exact multiples stay
        # 0.07789 x 0.98 = 0.0763322 -> 0.07634; x 1.05 = 0.0817845 -> 0.08178
        ("0.07789", "0.00001", "0.07634", "0.08178"),
        ("2500.37", "0.01", "2450.37", "2625.38"),  # 2450.3626 -> 2450.37; 2625.3885 -> 2625.38
    ],
)
def test_levels_are_rounded_to_the_tick_towards_the_entry(
    entry: str, tick: str, stop_loss: str, take_profit: str
) -> None:
    assert protection_levels(D(entry), DEFAULTS, D(tick)) == (D(stop_loss), D(take_profit))


def test_a_coarse_tick_never_puts_a_level_on_the_entry() -> None:
    # 1.00 x 0.98 = 0.98 -> up to 1 (= entry) -> one tick below; 1.05 -> down to 1 -> one tick above
    assert protection_levels(D("1"), DEFAULTS, D("1")) == (D("0"), D("2"))
    assert protection_levels(D("1.5"), DEFAULTS, D("1")) == (D("1"), D("2"))


def test_exit_reason_at_and_beyond_the_levels() -> None:
    sl, tp = D("98"), D("105")
    assert exit_reason(D("98"), sl, tp) is ExitReason.STOP_LOSS
    assert exit_reason(D("97.5"), sl, tp) is ExitReason.STOP_LOSS
    assert exit_reason(D("105"), sl, tp) is ExitReason.TAKE_PROFIT
    assert exit_reason(D("106"), sl, tp) is ExitReason.TAKE_PROFIT
    assert exit_reason(D("98.01"), sl, tp) is None and exit_reason(104.99, 98.0, 105.0) is None


def test_stop_loss_is_checked_first() -> None:
    # Only possible with crossed levels, but the order is part of the rule.
    assert exit_reason(D("100"), D("101"), D("99")) is ExitReason.STOP_LOSS


def test_exit_reason_values() -> None:
    assert [r.value for r in ExitReason] == ["signal", "stop_loss", "take_profit", "end", "manual"]
    assert ExitReason("stop_loss") == "stop_loss"


def test_realised_return_pct() -> None:
    assert realised_return_pct(D("100"), D("101.5")) == D("1.5")
    assert realised_return_pct(D("4999.9947426"), D("4982.4994656474")).quantize(D("0.000001")) == D("-0.349906")
    assert realised_return_pct(D("50"), D("0")) == D("-100")
    with pytest.raises(ValueError, match="quote spent must be positive"):
        realised_return_pct(D("0"), D("1"))
