"""Slow down guessing: lock a key (an account, a kiosk) after repeated failures."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..extensions import db
from ..models import LoginThrottle

WINDOW = timedelta(minutes=15)


def seconds_locked(key: str, now: datetime) -> int:
    row = db.session.get(LoginThrottle, key)
    if row is None or row.locked_until is None or row.locked_until <= now:
        return 0
    return int((row.locked_until - now).total_seconds()) + 1


def record_failure(key: str, now: datetime, free_attempts: int = 5, base_seconds: int = 30) -> int:
    """Count a failure; from `free_attempts` on, lock for base·2^k seconds (capped at 15 min).

    Returns the lock length in seconds (0 while still free). Commits: a failure must count even
    when the request then errors out.
    """
    row = db.session.get(LoginThrottle, key)
    if row is None or now - row.last_failure_at > WINDOW:
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            db.session.add(row)
        row.failures = 0
        row.locked_until = None
    row.failures += 1
    row.last_failure_at = now
    lock = 0
    if row.failures >= free_attempts:
        lock = min(base_seconds * 2 ** (row.failures - free_attempts), 15 * 60)
        row.locked_until = now + timedelta(seconds=lock)
    db.session.commit()
    return lock


def reset(key: str) -> None:
    row = db.session.get(LoginThrottle, key)
    if row is not None:
        db.session.delete(row)
        db.session.commit()
