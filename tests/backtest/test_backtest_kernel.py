"""The compiled exit checks follow ``protection.exit_reason`` and the Python reference ``fills.candle_exit``."""

from __future__ import annotations

import numpy as np

from backtest import fills, kernel
from shared.trading.protection import exit_reason


def test_exit_code_agrees_with_exit_reason_including_ties() -> None:
    rng = np.random.default_rng(7)
    stop_loss, take_profit = 98.0, 105.0
    prices = np.concatenate(
        (
            [stop_loss, take_profit, np.nextafter(stop_loss, 200), np.nextafter(take_profit, 0)],
            rng.uniform(95, 108, 2000),
            np.round(rng.uniform(95, 108, 2000), 0),
        )
    )
    for price in prices.tolist():
        reason = exit_reason(price, stop_loss, take_profit)
        assert kernel.REASONS.get(kernel.exit_code(price, stop_loss, take_profit)) == reason, price
    assert kernel.REASONS[kernel.exit_code(100.0, 101.0, 99.0)] == exit_reason(100.0, 101.0, 99.0)


def test_candle_exit_agrees_with_the_python_reference() -> None:
    rng = np.random.default_rng(11)
    stop_loss, take_profit = 98.0, 105.0
    grid = np.array([96.0, 97.0, 98.0, 99.0, 100.0, 104.0, 105.0, 106.0, 107.0])
    cases = [(o, max(o, h), min(o, lo)) for o in grid for h in grid for lo in grid]
    cases += [tuple(sorted(rng.uniform(94, 109, 3))[::-1]) for _ in range(3000)]  # (high, mid, low)
    cases += [(mid, high, low) for high, mid, low in cases[-3000:]]
    checked = 0
    for open_, high, low in cases:
        high, low = max(high, open_), min(low, open_)
        expected = fills.candle_exit(open_, high, low, stop_loss, take_profit)
        code, price = kernel.candle_exit(open_, high, low, stop_loss, take_profit)
        if expected is None:
            assert code == kernel.NONE and np.isnan(price)
        else:
            assert (kernel.REASONS[code], price) == expected, (open_, high, low)
            checked += 1
    assert checked > 1000
