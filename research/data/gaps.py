"""Gaps: candles missing where the store says everything was fetched.

Inside a covered span every candle the exchange has is stored, so a missing open time there is a
candle the exchange does not have (an outage, a halted market, the time before a listing). The
grid is the stored candles' own: from one candle the next is expected one interval later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from research.data import ranges
from research.data.timespan import Span


@dataclass(frozen=True)
class GapReport:
    """Where candles are missing inside ``covered``, and what was never covered."""

    gaps: tuple[Span, ...]  # between two stored candles: open times of the missing ones
    before_first: Span | None  # covered, but before the first stored candle
    after_last: Span | None  # covered, but after the last one
    not_covered: tuple[Span, ...]  # inside the request, never fetched completely

    def missing_candles(self, interval_ms: int) -> int:
        return sum((end - start + interval_ms - 1) // interval_ms for start, end in self.gaps)


def find_gaps(open_times: np.ndarray, interval_ms: int, covered: Sequence[Span], wanted: Span) -> GapReport:
    """Gaps of the sorted ``open_times`` (ms) inside the ``covered`` part of ``wanted``."""
    covered = ranges.intersect(covered, wanted)
    times = open_times[(open_times >= wanted[0]) & (open_times < wanted[1])]
    not_covered = tuple(ranges.subtract(wanted, covered))
    if len(times) == 0:
        return GapReport((), None, None, not_covered)
    jumps = np.flatnonzero(np.diff(times) > interval_ms)
    gaps = ranges.union(
        g for i in jumps for g in ranges.intersect(covered, (int(times[i]) + interval_ms, int(times[i + 1])))
    )
    first, last = int(times[0]), int(times[-1]) + interval_ms
    head = ranges.intersect(covered, (wanted[0], first))
    tail = ranges.intersect(covered, (last, wanted[1]))
    return GapReport(
        tuple(gaps), (head[0][0], first) if head else None, (last, tail[-1][1]) if tail else None, not_covered
    )
