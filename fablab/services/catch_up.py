"""Time-based state never waits for the worker: before a page or the API reads request windows, the
waitlist or offers, it brings them up to date with `scheduling_state_quietly(now)`. Only this catch-up
belongs here: the steps themselves are the feature's job functions (window_draw.py, windows.py,
waitlist.py), which the worker also runs one by one from its table (fablab/worker/jobs.py, in the same
order as `STEPS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app

from ..extensions import db
from ..models.types import utcnow
from . import waitlist, window_draw, windows

# Report attribute → job function, in the order they must run: windows close (their losers join the
# waitlist) before no-shows are offered, and offers expire before the next ones are made.
STEPS: tuple[tuple[str, Callable[[datetime], int]], ...] = (
    ("windows_closed", window_draw.close_due_windows),
    ("windows_opened", windows.auto_open_windows),
    ("no_shows_offered", waitlist.offer_no_shows),
    ("offers_expired", waitlist.expire_offers),
    ("offers_made", waitlist.offer_freed_time),
)


@dataclass
class SchedulingReport:
    """What one catch-up did (counts per step)."""

    windows_closed: int = 0
    windows_opened: int = 0
    no_shows_offered: int = 0
    offers_made: int = 0
    offers_expired: int = 0

    @property
    def anything(self) -> bool:
        return any((self.windows_closed, self.windows_opened, self.no_shows_offered, self.offers_made,
                    self.offers_expired))


def scheduling_state(now: datetime | None = None) -> SchedulingReport:
    """Everything time-based in fair scheduling that is due at `now`; safe to call often and
    concurrently (each step re-checks inside its write transaction). Writes only when something is due."""
    now = now or utcnow()
    report = SchedulingReport()
    for attribute, step in STEPS:
        setattr(report, attribute, step(now))
    return report


def scheduling_state_quietly(now: datetime | None = None) -> None:
    """For pages and the API: time-based state is brought up to date before reading, a failure only logged."""
    try:
        scheduling_state(now)
    except Exception:  # noqa: BLE001
        db.session.rollback()
        current_app.logger.exception("scheduling jobs failed")
