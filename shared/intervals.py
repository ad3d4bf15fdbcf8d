"""Binance kline intervals the bot can trade on, and their lengths: the one table of them.

``1s`` candles exist on Binance but are too short for the strategy's indicators; ``1M`` has no
fixed length. Both are outside the table, so ``TIMEFRAME`` cannot name them.
"""

from __future__ import annotations

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
INTERVALS: tuple[str, ...] = tuple(INTERVAL_MS)


def interval_ms(interval: str) -> int:
    """Length of ``interval`` (``1m``, ``4h``...) in milliseconds; ValueError naming it otherwise."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unsupported interval {interval!r}; expected one of {', '.join(INTERVALS)}") from None
