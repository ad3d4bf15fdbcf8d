"""Times of a download: parsing the command line's dates, UTC months and days, half-open spans.

Every span is ``(start_ms, end_ms)`` with the end excluded, in epoch milliseconds UTC; a candle
belongs to a span when its open time lies inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

Span = tuple[int, int]
DAY_MS = 86_400_000


class TimeError(ValueError):
    """A date or time on the command line cannot be read; the message names the option."""


def parse_time(text: str, option: str) -> int:
    """``2024-01-01``, ``2024-01-01T12:30``, ``2024-01-01T12:30:00Z`` or with an offset, as epoch ms.

    A time without an offset is UTC; one with an offset is converted to UTC.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(value.replace("z", "Z"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError:
        raise TimeError(
            f"{option}: expected a date (2024-01-01) or an ISO date-time (2024-01-01T12:30:00Z), got {text!r}"
        ) from None
    return int(moment.timestamp() * 1000)


def iso(ms: int) -> str:
    """``2024-01-01T00:00:00Z`` (milliseconds shown only when there are some)."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


def month_of(ms: int) -> str:
    """``YYYY-MM`` of the UTC month holding ``ms``."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def month_span(month: str) -> Span:
    """Start and end (excluded) of a ``YYYY-MM`` UTC month."""
    year, number = int(month[:4]), int(month[5:7])
    first = datetime(year, number, 1, tzinfo=UTC)
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return int(first.timestamp() * 1000), int(following.timestamp() * 1000)


def months(span: Span) -> list[str]:
    """The UTC months a span touches, oldest first."""
    start, end = span
    found: list[str] = []
    cursor = start
    while cursor < end:
        month = month_of(cursor)
        found.append(month)
        cursor = month_span(month)[1]
    return found


def days(span: Span) -> Iterator[date]:
    """The UTC days a span touches, oldest first."""
    day = datetime.fromtimestamp(span[0] / 1000, UTC).date()
    while day_span(day)[0] < span[1]:
        yield day
        day += timedelta(days=1)


def day_span(day: date) -> Span:
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
    return start, start + DAY_MS


def candle_open(time_ms: int, interval: str, interval_ms: int) -> int:
    """Open time of the candle of ``interval`` holding ``time_ms``: Binance's candles start at whole
    multiples of their length since the epoch, weeks on Mondays (the epoch was a Thursday)."""
    offset = 4 * DAY_MS if interval == "1w" else 0
    return (time_ms - offset) // interval_ms * interval_ms + offset


def windows(span: Span, step_ms: int) -> Iterable[Span]:
    """``span`` cut into consecutive windows of ``step_ms`` (the last one shorter)."""
    start, end = span
    return ((s, min(s + step_ms, end)) for s in range(start, end, step_ms))
