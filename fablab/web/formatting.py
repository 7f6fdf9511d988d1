"""Template filters that format stored values: times, durations, numbers, percentages.

Every function here is total: whatever is stored (None, NaN, an infinity, 1e308, a time in year 9999
that has no local time, a value of the wrong type), it returns a string and never raises, so no page
fails on what a machine or a past bug once wrote. Out-of-range values show as PLACEHOLDER, or, for
times, as their raw UTC value (so an admin can see what is stored).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from numbers import Real
from typing import Any

from flask import Flask, current_app

PLACEHOLDER = "–"
DEFAULT_TIME = "%a %d %b %H:%M"
# A stored time outside these years is not a real lab time: show it raw rather than as, say, "Mon 01 Jan".
PLAUSIBLE_YEARS = range(1900, 9999)
MAX_HOURS = 1e6  # about 114 years of use: anything larger is a broken value, not a duration
MAX_NUMBER = 1e15  # beyond this a figure is no longer readable (and float digits are noise)


def finite(value: Any, limit: float = MAX_NUMBER) -> float | None:
    """The value as a float if it is a real, finite number within ±limit; else None."""
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        return None
    try:
        f = float(value)
    except (OverflowError, ValueError, TypeError):
        return None
    return f if math.isfinite(f) and abs(f) <= limit else None


def raw_time(value: date) -> str:
    """A time as stored, for when it cannot (or should not) be shown in local time."""
    if not isinstance(value, datetime):
        return value.isoformat()
    try:
        offset = value.utcoffset()
    except (OverflowError, ValueError):
        offset = None
    text = value.replace(tzinfo=None).isoformat(" ", "minutes")
    if offset == timedelta(0):
        return f"{text} UTC"
    return text if offset is None else value.isoformat(" ", "minutes")


def localtime(value: Any, fmt: str = DEFAULT_TIME, tz: tzinfo | None = None) -> str:
    """A stored (UTC) time in the lab's timezone; the raw UTC value when it has no local time."""
    if value is None:
        return ""
    if not isinstance(value, date):
        return str(value)
    if not isinstance(value, datetime) or value.tzinfo is None or value.year not in PLAUSIBLE_YEARS:
        return raw_time(value)
    try:
        return value.astimezone(tz or _lab_tz()).strftime(fmt)
    except (OverflowError, ValueError, OSError, TypeError):
        return raw_time(value)


def _lab_tz() -> tzinfo:
    try:
        return current_app.config["TZ"]
    except (RuntimeError, KeyError):  # outside a request, or a config without a zone
        return UTC


def _h_min(total_min: int, always_hours: bool) -> str:
    sign = "−" if total_min < 0 else ""
    h, m = divmod(abs(total_min), 60)
    if not h and not always_hours:
        return f"{sign}{m} min"
    return f"{sign}{h} h {m:02d} min" if m else f"{sign}{h} h"


def hours(value: Any) -> str:
    """Hours as "2 h 30 min" (and "0 h 30 min", as the pages always showed)."""
    f = finite(value, MAX_HOURS)
    return PLACEHOLDER if f is None else _h_min(round(f * 60), always_hours=True)


def minutes(value: Any) -> str:
    """Minutes as "45 min" or "1 h 30 min"."""
    f = finite(value, MAX_HOURS * 60)
    return PLACEHOLDER if f is None else _h_min(round(f), always_hours=False)


def num(value: Any, digits: int = 1, suffix: str = "") -> str:
    """A figure with `digits` decimals (and a unit suffix), or the placeholder."""
    f = finite(value)
    if f is None:
        return PLACEHOLDER
    return f"{f:.{_digits(digits)}f}{suffix}"


def pct(value: Any, digits: int = 0) -> str:
    """A fraction (0.25) as a percentage ("25 %")."""
    f = finite(value, MAX_NUMBER / 100)
    return PLACEHOLDER if f is None else f"{f * 100:.{_digits(digits)}f} %"


def count(value: Any) -> str:
    """A whole number with thousands separators ("12,345")."""
    f = finite(value)
    return PLACEHOLDER if f is None else f"{round(f):,}"


def dims(values: Any, digits: int = 1) -> str:
    """Sizes as "20.0 × 10.0 × 5.0"; the placeholder unless every one is a finite number."""
    if not isinstance(values, list | tuple) or not values:
        return PLACEHOLDER
    parts = [num(v, digits) for v in values]
    return PLACEHOLDER if PLACEHOLDER in parts else " × ".join(parts)


def cell(value: Any) -> Any:
    """A table cell as is, except a float that is not a readable finite figure: the placeholder."""
    if isinstance(value, float) and finite(value) is None:
        return PLACEHOLDER
    return value


def sentence(text: Any) -> str:
    """First letter upper case, the rest untouched (Jinja's capitalize lowercases machine names)."""
    text = "" if text is None else str(text)
    return text[:1].upper() + text[1:]


def _digits(digits: Any) -> int:
    return digits if isinstance(digits, int) and 0 <= digits <= 6 else 1


FILTERS = {"localtime": localtime, "hours": hours, "minutes": minutes, "num": num, "pct": pct, "count": count,
           "dims": dims, "cell": cell, "finite": finite, "sentence": sentence}


def register(app: Flask) -> None:
    app.jinja_env.filters.update(FILTERS)
