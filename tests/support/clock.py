"""Frozen clocks for date-sensitive tests.

A test marked ``@pytest.mark.dates`` (or a module with ``pytestmark = pytest.mark.dates``) runs once per
clock below: ``test_x[clock=dst-spring-0130]``, …, ``test_x[clock=today]``. Every clock but ``today`` is a
``time_machine.travel(..., tick=True)``: the process clock (``datetime.now``, ``date.today``, ``time.time``,
hence ``fablab.models.types.utcnow``) starts at that instant and keeps running, so timeouts and threads
still work (``time.monotonic`` and ``perf_counter`` are never moved). Subprocesses (bridge, broker, a
browser) keep the real clock: tests that start them belong in the matrix only if they are cheap.

The instants are wall times of the lab's default timezone, Europe/Berlin (``FABLAB_TIMEZONE``):

- ``dst-spring-0130`` / ``dst-spring-0330``: Sunday 2026-03-29 half an hour before and an hour after the
  spring-forward gap (02:00–03:00 does not exist that night);
- ``dst-fall``: Sunday 2026-10-25 02:30 inside the repeated hour, its second pass (CET, 01:30 UTC; the
  first, CEST, was 00:30 UTC): a wall time rebuilt without ``fold`` lands an hour early;
- ``year-end``: Thursday 2026-12-31 23:30 (ISO week 53 of 2026);
- ``new-year``: Friday 2027-01-01 00:30 in Berlin, still 2026-12-31 in UTC (the one clock whose lab date
  and UTC date differ);
- ``sunday``: Sunday 2026-06-14 23:30, the last half hour of an ISO week (summer time);
- ``today``: the real clock, not frozen.

In the frozen runs of the matrix (not in ``today``, not under ``FABLAB_TEST_CLOCK``) passwords are hashed
with a cheap argon2 setting (:func:`cheap_password_hashing`): member fixtures and sign-ins hash and verify
passwords all the time, at about 0.1–0.5 s each with the real setting, and that cost, not the dates, would
dominate the matrix. The ``today`` run keeps the real hasher.

``FABLAB_TEST_CLOCK=<name>`` runs the whole suite (marked or not, each test once) under one of these clocks:
the way to find tests that depend on the date, e.g. ``FABLAB_TEST_CLOCK=new-year .venv/bin/pytest -q``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import time_machine
from argon2 import PasswordHasher

from fablab import security

BERLIN = ZoneInfo("Europe/Berlin")
MARK = "dates"
ENV = "FABLAB_TEST_CLOCK"
TODAY = "today"

CLOCKS: dict[str, datetime | None] = {
    "dst-spring-0130": datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN),
    "dst-spring-0330": datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
    "dst-fall": datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1),
    "year-end": datetime(2026, 12, 31, 23, 30, tzinfo=BERLIN),
    "new-year": datetime(2027, 1, 1, 0, 30, tzinfo=BERLIN),
    "sunday": datetime(2026, 6, 14, 23, 30, tzinfo=BERLIN),
    TODAY: None,
}


def clock_id(name: str) -> str:
    return f"clock={name}"


def env_clock() -> str | None:
    """The clock named by FABLAB_TEST_CLOCK, checked; None when unset."""
    name = os.environ.get(ENV, "").strip()
    if not name:
        return None
    if name not in CLOCKS:
        raise ValueError(f"{ENV}={name!r}: not one of {', '.join(CLOCKS)}")
    return name


@contextmanager
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its smallest cost for the block: the same code path, hashes that verify the same way."""
    saved = security._hasher
    security._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    try:
        yield
    finally:
        security._hasher = saved


@contextmanager
def frozen(name: str) -> Iterator[datetime | None]:
    """Run the block at the named clock (ticking); ``today`` leaves the clock alone."""
    instant = CLOCKS[name]
    if instant is None:
        yield None
        return
    # As UTC: given a ZoneInfo datetime, time-machine would also switch the process's local timezone (TZ),
    # which would hide code that wrongly uses the server's local time instead of the lab's.
    with time_machine.travel(instant.astimezone(UTC), tick=True):
        yield instant
