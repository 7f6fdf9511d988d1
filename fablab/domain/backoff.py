"""When to try a failed delivery again: exponential back-off with a cap and a retry budget.

Pure: the caller passes the attempt count and `now`. The jitter is derived from a stable key (the message
id), not random, so a test can predict it and a thousand messages failed at once do not retry in step.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=1)
# After this many failed attempts (about 12 hours of trying) a delivery is given up and shown to admins.
RETRY_BUDGET = 16


def _jitter(key: str) -> float:
    """A stable fraction in [0, 0.25) from the key."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 / 4


def retry_delay(attempts: int, key: str = "") -> timedelta:
    """The wait after the `attempts`-th failure (1 = the first): 30 s, 1 min, 2 min, ... up to 1 h, plus up to
    a quarter more as jitter."""
    if attempts < 1:
        raise ValueError("attempts counts failures and starts at 1")
    base: timedelta = min(FIRST_DELAY * (2 ** min(attempts - 1, 20)), MAX_DELAY)
    return timedelta(seconds=base.total_seconds() * (1 + _jitter(key)))


def next_attempt(attempts: int, now: datetime, key: str = "", budget: int = RETRY_BUDGET) -> datetime | None:
    """When to try again after `attempts` failures, or None when the budget is spent (give up)."""
    if attempts >= budget:
        return None
    return now + retry_delay(attempts, key)
