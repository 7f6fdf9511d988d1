"""The lab's clock: UTC epoch seconds to local wall-clock time and to the lab week.

The review handles times as UTC epoch seconds (floats), never as datetimes: a year of history is 200,000
timestamps. `LabClock` finds the UTC offsets in force over a period once (each DST change, to the quarter
hour); each conversion is then a bisect and an addition, or one `searchsorted` for an array.
A lab week is named by the day number (days since 1970-01-01, a Thursday) of its local Monday.
"""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta, tzinfo

import numpy as np

EPOCH_NAIVE = datetime(1970, 1, 1)
EPOCH_DATE = date(1970, 1, 1)


class LabClock:
    """UTC epoch seconds to the lab's wall clock (seconds since 1970-01-01 00:00 local): the offsets in
    force over the period are found once (DST changes, to the quarter hour), then each conversion is a
    bisect and an addition."""

    def __init__(self, tz: tzinfo, lo: float, hi: float) -> None:
        self.tz = tz
        self.points: list[float] = [float("-inf")]
        self.offsets: list[float] = [self._offset(lo - 2 * 86400)]
        t = lo - 2 * 86400
        while t < hi + 2 * 86400:
            nxt = t + 86400
            if self._offset(nxt) != self.offsets[-1]:
                q = t
                while self._offset(q) == self.offsets[-1]:
                    q += 900
                self.points.append(q)
                self.offsets.append(self._offset(q))
            t = nxt

    def _offset(self, ts: float) -> float:
        off = datetime.fromtimestamp(ts, self.tz).utcoffset()
        return off.total_seconds() if off is not None else 0.0

    def local(self, ts: float) -> float:
        return ts + self.offsets[bisect.bisect_right(self.points, ts) - 1]

    def week(self, ts: float) -> int:
        """The local Monday of the week containing ts, as days since 1970-01-01 (a Thursday)."""
        day = int(self.local(ts) // 86400)
        return day - (day + 3) % 7

    def local_array(self, ts: np.ndarray) -> np.ndarray:
        """`local` for an array of times."""
        idx = np.searchsorted(np.asarray(self.points), ts, side="right") - 1
        local: np.ndarray = ts + np.asarray(self.offsets)[idx]  # numpy types the sum as Any
        return local

    def weeks(self, ts: np.ndarray) -> np.ndarray:
        """`week` for an array of times (floor division as Python's, so the same day at the edges)."""
        day = np.floor_divide(self.local_array(ts), 86400).astype(np.int64)
        monday: np.ndarray = day - (day + 3) % 7  # numpy types the difference as Any
        return monday

    def naive(self, ts: float) -> datetime:
        """Local wall-clock time as a naive datetime (the capacity model's clock)."""
        return EPOCH_NAIVE + timedelta(seconds=self.local(ts))

    def naive_array(self, ts: np.ndarray) -> list[datetime]:
        """`naive` for an array of times (to the microsecond, as timedelta rounds; numpy builds them)."""
        us = np.round(self.local_array(ts) * 1e6).astype(np.int64)
        naive: list[datetime] = us.astype("datetime64[us]").astype(object).tolist()  # tolist() is typed Any
        return naive


def week_start(week: int) -> date:
    """The local Monday a lab week is named by, as a date."""
    return EPOCH_DATE + timedelta(days=week)
