"""Time units: microsecond timestamp parameters in, and ``X-MBX-TIME-UNIT: MICROSECOND`` out.

Binance takes ``startTime``, ``endTime`` and ``timestamp`` in milliseconds or microseconds,
whatever the header says; a value of 16 digits or more is read as microseconds. The header only
selects the unit of the time fields in JSON responses.
"""

from __future__ import annotations

from . import errors

MICROS_FROM = 10**15  # 13-digit values are milliseconds until the year 2286; 16 digits are microseconds
UNITS = {"MILLISECOND": False, "millisecond": False, "MICROSECOND": True, "microsecond": True}
TIME_KEYS = frozenset(
    {"serverTime", "time", "transactTime", "transactionTime", "updateTime", "workingTime", "closeTime", "openTime", "T"}
)


def wants_micros(header: str | None) -> bool:
    """The ``X-MBX-TIME-UNIT`` header; an unknown value is ``-1194``."""
    if header is None:
        return False
    if header not in UNITS:
        raise errors.ApiError(-1194, "Invalid value for time unit; expected either MICROSECOND or MILLISECOND.")
    return UNITS[header]


def to_micros(payload: object) -> object:
    """``payload`` with every time field (see TIME_KEYS) scaled to microseconds; -1 stays -1."""
    if isinstance(payload, list):
        return [to_micros(item) for item in payload]
    if isinstance(payload, dict):
        return {
            k: v * 1000 if k in TIME_KEYS and isinstance(v, int) and not isinstance(v, bool) and v > 0 else to_micros(v)
            for k, v in payload.items()
        }
    return payload
