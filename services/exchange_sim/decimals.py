"""Decimal arithmetic: Binance-style formatting, step rounding and precision checks."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

ZERO = Decimal(0)
EIGHT_PLACES = Decimal("0.00000001")


def fmt8(value: Decimal) -> str:
    """Format as Binance does for prices and quantities: fixed point, 8 decimals."""
    quantized = value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP)
    if quantized == 0:
        quantized = abs(quantized)
    return f"{quantized:f}"


def q8(value: Decimal) -> Decimal:
    """Round to 8 decimals (half up), the precision of every amount the simulator books."""
    return value.quantize(EIGHT_PLACES, rounding=ROUND_HALF_UP)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` not above ``value`` (``value`` itself when step is 0)."""
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` not below ``value`` (``value`` itself when step is 0)."""
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Nearest multiple of ``step`` (half up); used for interpolated walk prices."""
    if step == 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_HALF_UP) * step


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value % step == 0``; a step of 0 switches the check off (filters.md)."""
    return step == 0 or value % step == 0


def step_from_decimals(places: int) -> Decimal:
    """``2`` -> ``Decimal("0.01")``; ``0`` -> ``Decimal("1")``."""
    return Decimal(1).scaleb(-places)
