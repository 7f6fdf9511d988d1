"""A machine's power readings and meter readings, for the energy of a usage span: the readings as a
prefix integral (trapezoid), a plug's cumulative meter preferred when it covers the span. Only this
bookkeeping belongs here; the state machine that decides the spans is fablab.domain.sessionize.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class PowerLog:
    """Readings in ``order_key`` order. A gap longer than ``timeout`` between two readings is not
    integrated: the plug (or its bridge) was away."""

    timeout: timedelta
    # power readings: prefix integral (trapezoid) and meter readings
    r_ts: list[datetime] = field(default_factory=list)
    r_w: list[float] = field(default_factory=list)
    r_cum: list[float] = field(default_factory=list)
    m_ts: list[datetime] = field(default_factory=list)
    m_wh: list[float] = field(default_factory=list)

    def clone(self) -> PowerLog:
        """A copy that shares no list."""
        return PowerLog(self.timeout, list(self.r_ts), list(self.r_w), list(self.r_cum), list(self.m_ts),
                        list(self.m_wh))

    def add_meter(self, ts: datetime, wh: float) -> None:
        self.m_ts.append(ts)
        self.m_wh.append(wh)

    def add_reading(self, ts: datetime, w: float) -> None:
        if self.r_ts:
            dt = (ts - self.r_ts[-1]).total_seconds()
            # a gap longer than the timeout is not integrated: the plug (or its bridge) was away
            inc = 0.0 if dt <= 0 or dt > self.timeout.total_seconds() else (self.r_w[-1] + w) / 2 * dt
            self.r_cum.append(self.r_cum[-1] + inc / 3600)
        else:
            self.r_cum.append(0.0)
        self.r_ts.append(ts)
        self.r_w.append(w)

    def _energy_at(self, t: datetime) -> float:
        i = bisect_right(self.r_ts, t) - 1
        if i < 0:
            return self.r_cum[0]
        if i == len(self.r_ts) - 1:
            return self.r_cum[i]
        t0, t1 = self.r_ts[i], self.r_ts[i + 1]
        dt = (t1 - t0).total_seconds()
        if dt <= 0 or dt > self.timeout.total_seconds():
            return self.r_cum[i]
        part = (t - t0).total_seconds()
        w0 = self.r_w[i]
        wt = w0 + (self.r_w[i + 1] - w0) * part / dt
        return self.r_cum[i] + (w0 + wt) / 2 * part / 3600

    def energy_between(self, a: datetime, b: datetime) -> float | None:
        lo, hi = bisect_left(self.m_ts, a), bisect_right(self.m_ts, b)
        if hi - lo >= 2 and self.m_wh[hi - 1] >= self.m_wh[lo]:  # a meter reset falls back to integration
            return self.m_wh[hi - 1] - self.m_wh[lo]
        # known only with a reading during the span or shortly before it (never decided by later ones)
        k = bisect_right(self.r_ts, b) - 1
        if k < 0 or self.r_ts[k] < a - self.timeout:
            return None
        return max(0.0, self._energy_at(b) - self._energy_at(a))

    def forget_before(self, keep_from: datetime) -> None:
        """Drop what lies before ``keep_from``, keeping one reading before the cut so energy can still
        be interpolated across it."""
        i = max(0, bisect_left(self.r_ts, keep_from) - 1)
        del self.r_ts[:i], self.r_w[:i], self.r_cum[:i]
        j = bisect_left(self.m_ts, keep_from)
        del self.m_ts[:j], self.m_wh[:j]
