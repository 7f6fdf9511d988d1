"""Half-open time intervals [start, end) on aware UTC datetimes, and the set operations scheduling needs.

Everything here works on sorted lists so availability stays a sort plus a linear sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def require_aware(name: str, value: datetime) -> datetime:
    """Reject naive datetimes at the boundary: a naive time is a programming error, not a rule violation."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    return value


def to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """[start, end), both aware datetimes (UTC by convention)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(
                f"interval ends before it starts: {self.start.isoformat()} > {self.end.isoformat()}"
            )

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    def intersection(self, other: Interval) -> Interval | None:
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Interval(start, end) if start < end else None

    def to_dict(self) -> dict[str, str]:
        return {"start": to_utc(self.start).isoformat(), "end": to_utc(self.end).isoformat()}


Pair = tuple[datetime, datetime]


def merge_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Sort and merge overlapping or touching (start, end) pairs; empty pairs are dropped."""
    merged: list[Pair] = []
    for start, end in sorted(p for p in pairs if p[0] < p[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract_pairs(base: Sequence[Pair], holes: Sequence[Pair]) -> list[Pair]:
    """base minus holes; both must be sorted and merged (as merge_pairs returns). Linear sweep."""
    out: list[Pair] = []
    j = 0
    n = len(holes)
    for start, end in base:
        # skip holes that end before this base interval starts
        while j < n and holes[j][1] <= start:
            j += 1
        cursor = start
        k = j
        while k < n and holes[k][0] < end:
            h_start, h_end = holes[k]
            if h_start > cursor:
                out.append((cursor, h_start))
            if h_end > cursor:
                cursor = h_end
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            out.append((cursor, end))
    return out


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    return [Interval(s, e) for s, e in merge_pairs((i.start, i.end) for i in intervals)]


def subtract(base: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    b = merge_pairs((i.start, i.end) for i in base)
    h = merge_pairs((i.start, i.end) for i in holes)
    return [Interval(s, e) for s, e in subtract_pairs(b, h)]


def overlap_seconds(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> float:
    """Length of the intersection of two intervals in seconds (0 when disjoint)."""
    start, end = max(a_start, b_start), min(a_end, b_end)
    return (end - start).total_seconds() if start < end else 0.0
