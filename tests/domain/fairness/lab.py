"""A small lab as plain data for the fairness rules: no app, no database.

The week under review: Monday 2 March 2026 00:00 UTC to Monday 9 March (lab time Europe/Berlin, UTC+1).
Machines are open 10:00-22:00 lab time every day (84 h a week). Times are UTC epoch seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from fablab.domain import policy as pol
from fablab.domain.fairness.clock import LabClock
from fablab.domain.fairness.period import MachineFacts, Period, SessionPiece, Wish, booking_columns

BERLIN = ZoneInfo("Europe/Berlin")
T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
START = T0.timestamp()
END = START + 7 * 86400
OPEN = pol.BookingPolicy(opening_hours=pol.week_hours([("10:00", "22:00")]))


def at(day: float, hour: float = 0.0) -> float:
    """Day 0 = Monday 2 March; `hour` in UTC."""
    return START + day * 86400 + hour * 3600


def machine(mid: int = 1, type_id: int = 1, type_name: str = "Laser cutter", policy: pol.BookingPolicy = OPEN,
            **kw: Any) -> MachineFacts:
    return MachineFacts(mid, kw.get("slug", f"m{mid}"), kw.get("name", f"Machine {mid}"), type_id, type_name, policy)


def booking(member: int, start: float, hours: float, status: str = "completed", machine_id: int = 1,
            kind: str = "normal", checked_in: bool | None = None, booked_hours: float | None = None,
            cancelled_at: float | None = None) -> dict[str, Any]:
    """A booking row; `booked_hours` longer than `hours` is an early check-out."""
    end = start + hours * 3600
    return {"machine": machine_id, "member": member, "start": start, "end": end,
            "booked_end": start + (booked_hours if booked_hours is not None else hours) * 3600, "status": status,
            "kind": kind, "checked_in": status in ("completed", "checked_in") if checked_in is None else checked_in,
            "cancelled_at": np.nan if cancelled_at is None else cancelled_at}


def wish(rid: int, member: int, start: float, hours: float, status: str = "waitlisted", machine_id: int = 1,
         window_id: int | None = 1) -> Wish:
    return Wish(rid, window_id, member, machine_id, start, start + hours * 3600, status)


def session(member: int | None, start: float, hours: float, machine_id: int = 1, counts: bool = True,
            unbooked: bool = False, overrun_minutes: float = 0.0) -> SessionPiece:
    return SessionPiece(machine_id, member, start, hours, counts, unbooked, overrun_minutes)


def period(bookings: Sequence[dict[str, Any]] = (), machines: Sequence[MachineFacts] = (machine(),),
           start: float = START, end: float = END, now: float | None = None, tz: Any = BERLIN,
           **kw: Any) -> Period:
    clock = LabClock(tz, start, end)
    cols = {k: [b[k] for b in bookings] for k in ("machine", "member", "start", "end", "booked_end", "status",
                                                 "kind", "checked_in", "cancelled_at")}
    columns = booking_columns(cols["machine"], cols["member"], np.array(cols["start"], dtype=float),
                              np.array(cols["end"], dtype=float), np.array(cols["booked_end"], dtype=float),
                              cols["status"], cols["kind"], cols["checked_in"],
                              np.array(cols["cancelled_at"], dtype=float), clock)
    return Period(start, end, end if now is None else now, clock, tuple(machines), columns, **kw)
