"""Occurrences of a weekly or fortnightly series (courses, open-lab evenings, weekly maintenance).

A series is a local wall-clock appointment ("Tuesdays 19:00 for 2 h"): every occurrence starts at the
same local time, so across a DST switch the UTC start moves by an hour and the wall clock does not.
The length is real elapsed time, as for every booking (policy.py). A start time that does not exist on
a spring-forward night is moved forward by the gap (02:30 -> 03:30) and marked `shifted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from fablab.domain.policy import WEEKDAYS, local_to_utc

MAX_AHEAD_DAYS = 366  # a year of weekly sessions at most (53 occurrences): a typo in "until" cannot make 500
REPEATS = {1: "weekly", 2: "fortnightly"}


class SeriesError(ValueError):
    """The series cannot be built as asked; `code` is stable, `message` says what would work."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    weekday: int  # 0 = Monday
    at: time  # local wall-clock start
    minutes: int  # length of each occurrence
    every_weeks: int  # 1 weekly, 2 fortnightly
    first_day: date  # the first occurrence is the first `weekday` on or after this
    until: date  # the last occurrence is on or before this (inclusive)

    def describe(self) -> str:
        day = ("Mondays", "Tuesdays", "Wednesdays", "Thursdays", "Fridays", "Saturdays", "Sundays")[self.weekday]
        every = "every other week on " if self.every_weeks == 2 else ""
        return f"{every}{day} at {self.at:%H:%M}"


@dataclass(frozen=True, slots=True)
class Occurrence:
    index: int  # 0-based position in the series
    day: date  # local date
    start: datetime  # UTC
    end: datetime  # UTC
    shifted: bool = False  # the wall time did not exist that day (DST gap) and was moved forward


def validate(spec: SeriesSpec, today: date) -> None:
    """Refuse a series that cannot be meant: raises SeriesError with what is accepted."""
    if not 0 <= spec.weekday <= 6:
        raise SeriesError("bad_weekday", f"Choose a weekday ({', '.join(WEEKDAYS)}).")
    if spec.every_weeks not in REPEATS:
        raise SeriesError("bad_repeat", "A series repeats weekly or fortnightly.")
    if spec.minutes <= 0:
        raise SeriesError("bad_length", "Each occurrence must last at least a minute.")
    if spec.minutes > 24 * 60:
        raise SeriesError("bad_length", "Each occurrence may last at most 24 hours.")
    if spec.at.second or spec.at.microsecond or spec.at.tzinfo is not None:
        raise SeriesError("bad_time", "Give the start as a local time in whole minutes (HH:MM).")
    if spec.until < spec.first_day:
        raise SeriesError("until_before_start",
                          f"The series must end on or after its first day ({spec.first_day:%a %d %b %Y}).")
    if spec.until > today + timedelta(days=MAX_AHEAD_DAYS):
        latest = today + timedelta(days=MAX_AHEAD_DAYS)
        raise SeriesError("until_too_far", f"A series can be planned up to a year ahead, until {latest:%d %b %Y}.")


def first_date(spec: SeriesSpec) -> date:
    return spec.first_day + timedelta(days=(spec.weekday - spec.first_day.weekday()) % 7)


def occurrences(spec: SeriesSpec, tz: tzinfo, today: date) -> list[Occurrence]:
    """Every occurrence of the series, in order. Raises SeriesError for an invalid spec or for none at all."""
    validate(spec, today)
    out: list[Occurrence] = []
    day = first_date(spec)
    step = timedelta(weeks=spec.every_weeks)
    length = timedelta(minutes=spec.minutes)
    while day <= spec.until:
        start = local_to_utc(day, spec.at, tz)
        shifted = start.astimezone(tz).time().replace(tzinfo=None) != spec.at
        out.append(Occurrence(len(out), day, start, start + length, shifted))
        day += step
    if not out:
        raise SeriesError("no_occurrence", f"There is no {WEEKDAYS[spec.weekday]} between "
                                           f"{spec.first_day:%d %b} and {spec.until:%d %b %Y}.")
    return out


def rest_of_series(starts: list[tuple[int, datetime]], from_start: datetime) -> list[int]:
    """Ids of the occurrences starting at or after `from_start` ("this and the rest"), in order."""
    return [i for i, s in sorted(starts, key=lambda p: p[1]) if s.astimezone(UTC) >= from_start.astimezone(UTC)]
