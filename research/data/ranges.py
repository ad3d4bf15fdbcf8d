"""Sets of half-open time spans ``(start, end)``: what was fetched, what is still missing."""

from __future__ import annotations

from collections.abc import Iterable

Span = tuple[int, int]


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-empty, non-overlapping spans covering the same times; touching spans merge."""
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intersect(spans: Iterable[Span], within: Span) -> list[Span]:
    """The parts of ``spans`` inside ``within``."""
    low, high = within
    return union((max(s, low), min(e, high)) for s, e in spans)


def subtract(span: Span, covered: Iterable[Span]) -> list[Span]:
    """The parts of ``span`` no span of ``covered`` contains."""
    missing: list[Span] = []
    cursor, end = span
    for start, stop in intersect(covered, span):
        if start > cursor:
            missing.append((cursor, start))
        cursor = max(cursor, stop)
    if cursor < end:
        missing.append((cursor, end))
    return missing


def total(spans: Iterable[Span]) -> int:
    """Length of the union."""
    return sum(end - start for start, end in union(spans))
