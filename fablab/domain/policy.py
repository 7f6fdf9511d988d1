"""Per-machine booking policy, its JSON form, per-type defaults, and what it means on the lab's local clock.

Opening hours and slot alignment are wall-clock notions in the lab's timezone; everything else is
measured in real elapsed time, so a booking across a DST change is as long as the time that passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from fablab.domain.intervals import Pair, merge_pairs

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MODES = ("open", "window", "hybrid")
MACHINE_TYPES = ("3d_printer", "laser_cutter", "cnc_mill", "vinyl_cutter", "electronics", "other")

# (start, end) in local wall-clock time; end <= start means the range runs past midnight into the next
# day, so (00:00, 00:00) is the whole day ("24:00" in JSON) and (22:00, 02:00) is a night range.
TimeRange = tuple[time, time]
WeekHours = tuple[tuple[TimeRange, ...], ...]


class PolicyError(ValueError):
    """A policy value is invalid; the message names the field and what is accepted."""

    @property
    def field(self) -> str:
        """The field the message is about: "max_minutes", "opening_hours.tue"; "" when it names none."""
        found = re.match(r"(opening_hours)(?:[.\[](\w+))?|([a-z_]+)\b", str(self))
        if found is None:
            return ""
        if found.group(1):
            return f"opening_hours.{found.group(2)}" if found.group(2) else "opening_hours"
        name = found.group(3)
        return name if name in {f.name for f in fields(BookingPolicy)} else ""


def _parse_hhmm(text: Any, where: str) -> time:
    if not isinstance(text, str):
        raise PolicyError(f"{where}: times must be \"HH:MM\" strings, got {text!r}")
    if text == "24:00":
        return time(0)  # as an end time: the following midnight
    try:
        hh, mm = text.split(":")
        if len(hh) != 2 or len(mm) != 2:
            raise ValueError
        return time(int(hh), int(mm))
    except ValueError:
        raise PolicyError(f"{where}: {text!r} is not a time; use \"HH:MM\" (00:00 to 24:00)") from None


def _format_hhmm(t: time, is_end: bool) -> str:
    if is_end and t == time(0):
        return "24:00"
    return f"{t.hour:02d}:{t.minute:02d}"


def week_hours(ranges: Sequence[tuple[str, str]], days: str | Sequence[int] = "all") -> WeekHours:
    """Opening hours from "HH:MM" pairs, the same on the given weekdays (0=Mon), closed on the rest."""
    parsed = tuple((_parse_hhmm(a, "opening_hours"), _parse_hhmm(b, "opening_hours")) for a, b in ranges)
    chosen = range(7) if days == "all" else days
    return tuple(parsed if d in chosen else () for d in range(7))


def combine_week_hours(*weeks: WeekHours) -> WeekHours:
    return tuple(tuple(r for w in weeks for r in w[d]) for d in range(7))


ALWAYS_OPEN = week_hours([("00:00", "24:00")])


@dataclass(frozen=True)
class BookingPolicy:
    slot_minutes: int = 30  # granularity: starts and ends sit on multiples of this on the local clock
    min_minutes: int = 30
    max_minutes: int = 180
    opening_hours: WeekHours = field(default_factory=lambda: week_hours([("10:00", "22:00")]))
    horizon_days: int = 14  # bookable through the end of the local day `today + horizon_days`
    buffer_minutes: int = 0  # free time required between two bookings (cleaning, cooling)
    checkin_grace_minutes: int = 15  # not checked in by start + grace -> released (no-show)
    max_hours_per_day: float | None = 4  # per member on this machine, local calendar day; None = no limit
    max_hours_per_week: float | None = 10  # local week starting Monday
    max_future_bookings: int | None = 3  # bookings not yet ended (running or upcoming)
    qualification_required: bool = True
    mode: str = "open"  # "open" | "window" | "hybrid"; stored only, allocation lives elsewhere

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def slot(self) -> timedelta:
        return timedelta(minutes=self.slot_minutes)

    @property
    def min_length(self) -> timedelta:
        return timedelta(minutes=self.min_minutes)

    @property
    def max_length(self) -> timedelta:
        return timedelta(minutes=self.max_minutes)

    @property
    def buffer(self) -> timedelta:
        return timedelta(minutes=self.buffer_minutes)

    @property
    def checkin_grace(self) -> timedelta:
        return timedelta(minutes=self.checkin_grace_minutes)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "opening_hours":
                value = {
                    WEEKDAYS[d]: [[_format_hhmm(a, False), _format_hhmm(b, True)] for a, b in value[d]]
                    for d in range(7)
                }
            elif isinstance(value, float) and value.is_integer():
                value = int(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: BookingPolicy | None = None) -> BookingPolicy:
        """Parse the JSON form; missing fields come from `base` (or the class defaults), unknown ones fail."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"policy must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(
                f"unknown policy field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if name == "opening_hours":
                values[name] = _parse_opening_hours(raw)
            elif name in ("qualification_required",):
                if not isinstance(raw, bool):
                    raise PolicyError(f"{name} must be true or false, got {raw!r}")
                values[name] = raw
            elif name == "mode":
                values[name] = raw
            elif name in ("max_hours_per_day", "max_hours_per_week"):
                values[name] = None if raw is None else _number(name, raw)
            elif name == "max_future_bookings":
                values[name] = None if raw is None else _integer(name, raw)
            else:
                values[name] = _integer(name, raw)
        return replace(base, **values) if base is not None else cls(**values)


# --- local clock ---------------------------------------------------------------------------------------


def local_to_utc(day: date, at: time, tz: tzinfo) -> datetime:
    """Wall-clock time on a local date as UTC. A time skipped by DST maps forward (02:30 -> 03:30 CEST);
    a repeated one takes its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return local_to_utc(day, time(0), tz)


def opening_pairs(policy: BookingPolicy, start: datetime, end: datetime, tz: tzinfo) -> list[Pair]:
    """Merged opening periods clipped to [start, end), as UTC (start, end) pairs."""
    if start >= end:
        return []
    first = start.astimezone(tz).date() - timedelta(days=1)  # a night range of yesterday may reach in
    last = end.astimezone(tz).date()
    pairs: list[Pair] = []
    day = first
    while day <= last:
        for a, b in policy.opening_hours[day.weekday()]:
            s = local_to_utc(day, a, tz)
            e = local_to_utc(day + timedelta(days=1) if b <= a else day, b, tz)
            s, e = max(s, start), min(e, end)
            if s < e:
                pairs.append((s, e))
        day += timedelta(days=1)
    return merge_pairs(pairs)


def is_aligned(policy: BookingPolicy, t: datetime, tz: tzinfo) -> bool:
    """On the slot grid of the local wall clock (e.g. :00/:15/:30/:45 for 15-minute slots)."""
    local = t.astimezone(tz)
    return (
        local.second == 0
        and local.microsecond == 0
        and (local.hour * 60 + local.minute) % policy.slot_minutes == 0
    )


def floor_to_slot(policy: BookingPolicy, t: datetime, tz: tzinfo) -> datetime:
    """Latest grid point <= t. Loops because a DST shift can move the grid under a real-time step."""
    cand = t.astimezone(UTC)
    for _ in range(8):
        local = cand.astimezone(tz)
        excess = timedelta(
            minutes=(local.hour * 60 + local.minute) % policy.slot_minutes,
            seconds=local.second,
            microseconds=local.microsecond,
        )
        if not excess:
            return cand
        cand -= excess
    return cand


def ceil_to_slot(policy: BookingPolicy, t: datetime, tz: tzinfo) -> datetime:
    """Earliest grid point >= t."""
    cand = t.astimezone(UTC)
    for _ in range(8):
        local = cand.astimezone(tz)
        rem = (local.hour * 60 + local.minute) % policy.slot_minutes
        if rem == 0 and local.second == 0 and local.microsecond == 0:
            return cand
        cand += timedelta(minutes=policy.slot_minutes - rem) - timedelta(
            seconds=local.second, microseconds=local.microsecond
        )
    return cand


def current_slot_start(policy: BookingPolicy, now: datetime, tz: tzinfo) -> datetime:
    """The start of the slot containing `now`: the earliest start a new booking may have."""
    return floor_to_slot(policy, now, tz)


def horizon_end(policy: BookingPolicy, now: datetime, tz: tzinfo) -> datetime:
    """Bookings must end by local midnight after the day `today + horizon_days`."""
    today = now.astimezone(tz).date()
    return local_midnight(today + timedelta(days=policy.horizon_days + 1), tz)


def local_day_bounds(t: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC bounds of the local calendar day containing t (23 or 25 h long on DST days)."""
    day = t.astimezone(tz).date()
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def local_week_bounds(t: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC bounds of the local week (Monday 00:00 to next Monday 00:00) containing t."""
    day = t.astimezone(tz).date()
    monday = day - timedelta(days=day.weekday())
    return local_midnight(monday, tz), local_midnight(monday + timedelta(days=7), tz)


def describe_hours(ranges: Sequence[TimeRange]) -> str:
    if not ranges:
        return "closed"
    return ", ".join(f"{_format_hhmm(a, False)}–{_format_hhmm(b, True)}" for a, b in ranges)


# --- validation and parsing ----------------------------------------------------------------------------


def _validate(p: BookingPolicy) -> None:
    for name in ("slot_minutes", "min_minutes", "max_minutes", "horizon_days", "buffer_minutes",
                 "checkin_grace_minutes"):
        value = getattr(p, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"{name} must be a whole number, got {value!r}")
    if not 1 <= p.slot_minutes <= 1440 or 1440 % p.slot_minutes:
        raise PolicyError(
            f"slot_minutes must divide a day (e.g. 5, 10, 15, 30, 60, 120), got {p.slot_minutes}"
        )
    if p.min_minutes < p.slot_minutes:
        raise PolicyError(f"min_minutes ({p.min_minutes}) must be at least slot_minutes ({p.slot_minutes})")
    if p.max_minutes < p.min_minutes:
        raise PolicyError(f"max_minutes ({p.max_minutes}) must be at least min_minutes ({p.min_minutes})")
    if p.max_minutes > 7 * 1440:
        raise PolicyError(f"max_minutes must be at most a week (10080), got {p.max_minutes}")
    if not 0 <= p.horizon_days <= 366:
        raise PolicyError(f"horizon_days must be between 0 and 366, got {p.horizon_days}")
    if not 0 <= p.buffer_minutes <= 1440:
        raise PolicyError(f"buffer_minutes must be between 0 and 1440, got {p.buffer_minutes}")
    if not 0 <= p.checkin_grace_minutes <= 1440:
        raise PolicyError(f"checkin_grace_minutes must be between 0 and 1440, got {p.checkin_grace_minutes}")
    for name in ("max_hours_per_day", "max_hours_per_week"):
        value = getattr(p, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PolicyError(f"{name} must be a number of hours or null, got {value!r}")
        if value < 0:
            raise PolicyError(f"{name} must not be negative, got {value}")
    if p.max_hours_per_day is not None and p.max_hours_per_day > 24:
        raise PolicyError(f"max_hours_per_day must be at most 24, got {p.max_hours_per_day}")
    if p.max_hours_per_week is not None and p.max_hours_per_week > 168:
        raise PolicyError(f"max_hours_per_week must be at most 168, got {p.max_hours_per_week}")
    fb = p.max_future_bookings
    if fb is not None and (isinstance(fb, bool) or not isinstance(fb, int) or fb < 0):
        raise PolicyError(f"max_future_bookings must be a whole number >= 0 or null, got {fb!r}")
    if not isinstance(p.qualification_required, bool):
        raise PolicyError(f"qualification_required must be a boolean, got {p.qualification_required!r}")
    if p.mode not in MODES:
        raise PolicyError(f"mode must be one of {', '.join(MODES)}, got {p.mode!r}")
    _validate_week_hours(p.opening_hours)


def _validate_week_hours(hours: Any) -> None:
    if not isinstance(hours, tuple) or len(hours) != 7:
        raise PolicyError("opening_hours must have exactly 7 weekdays (Monday first)")
    for d, ranges in enumerate(hours):
        if not isinstance(ranges, tuple):
            raise PolicyError(f"opening_hours[{WEEKDAYS[d]}] must be a tuple of (start, end) ranges")
        for r in ranges:
            if not (isinstance(r, tuple) and len(r) == 2 and all(isinstance(x, time) for x in r)):
                raise PolicyError(f"opening_hours[{WEEKDAYS[d]}] has a bad range {r!r}; use (time, time)")
            if any(x.tzinfo is not None or x.second or x.microsecond for x in r):
                raise PolicyError(
                    f"opening_hours[{WEEKDAYS[d]}]: use naive whole-minute local times, got {r!r}"
                )


def _parse_opening_hours(raw: Any) -> WeekHours:
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - set(WEEKDAYS))
        if unknown:
            raise PolicyError(
                f"opening_hours: unknown weekday(s) {', '.join(unknown)}; use {', '.join(WEEKDAYS)}"
            )
        days = [raw.get(name, []) for name in WEEKDAYS]
    elif isinstance(raw, list | tuple) and len(raw) == 7:
        days = list(raw)
    else:
        raise PolicyError("opening_hours must map mon..sun (or list 7 days) to [[\"HH:MM\", \"HH:MM\"], ...]")
    out = []
    for d, ranges in enumerate(days):
        where = f"opening_hours.{WEEKDAYS[d]}"
        if not isinstance(ranges, list | tuple):
            raise PolicyError(f"{where} must be a list of [\"HH:MM\", \"HH:MM\"] ranges (empty = closed)")
        parsed = []
        for r in ranges:
            if not isinstance(r, list | tuple) or len(r) != 2:
                raise PolicyError(f"{where}: each range must be [start, end], got {r!r}")
            if r[0] == "24:00":
                raise PolicyError(f"{where}: a range cannot start at 24:00")
            a, b = _parse_hhmm(r[0], where), _parse_hhmm(r[1], where)
            if a == b and a != time(0):
                raise PolicyError(f"{where}: empty range {r[0]}–{r[1]}; use 00:00–24:00 for all day")
            parsed.append((a, b))
        out.append(tuple(parsed))
    return tuple(out)


def _integer(name: str, raw: Any) -> int:
    whole = isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())
    if isinstance(raw, bool) or not whole:
        raise PolicyError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def _number(name: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PolicyError(f"{name} must be a number, got {raw!r}")
    return float(raw)


# --- per-type defaults (built last: they run the validation above) -----------------------------------


def defaults_for(machine_type: str) -> BookingPolicy:
    """Sane starting policy for a machine type; unknown types get the "other" defaults."""
    return _DEFAULTS.get(machine_type, _DEFAULTS["other"])


_WEEKDAY_EVENINGS = combine_week_hours(
    week_hours([("10:00", "22:00")], range(5)), week_hours([("10:00", "18:00")], (5, 6))
)

_DEFAULTS: dict[str, BookingPolicy] = {
    # prints run unattended for hours, so printers are bookable around the clock
    "3d_printer": BookingPolicy(
        slot_minutes=30, min_minutes=30, max_minutes=720, opening_hours=ALWAYS_OPEN, horizon_days=14,
        buffer_minutes=0, checkin_grace_minutes=20, max_hours_per_day=12, max_hours_per_week=24,
        max_future_bookings=3, qualification_required=True,
    ),
    # lasers need someone present and a few minutes of venting/cleaning between jobs
    "laser_cutter": BookingPolicy(
        slot_minutes=15, min_minutes=15, max_minutes=180, opening_hours=_WEEKDAY_EVENINGS, horizon_days=14,
        buffer_minutes=15, checkin_grace_minutes=10, max_hours_per_day=3, max_hours_per_week=6,
        max_future_bookings=3, qualification_required=True,
    ),
    "cnc_mill": BookingPolicy(
        slot_minutes=30, min_minutes=60, max_minutes=240,
        opening_hours=week_hours([("10:00", "20:00")], range(6)), horizon_days=21, buffer_minutes=30,
        checkin_grace_minutes=15, max_hours_per_day=4, max_hours_per_week=8, max_future_bookings=2,
        qualification_required=True,
    ),
    "vinyl_cutter": BookingPolicy(
        slot_minutes=15, min_minutes=15, max_minutes=120, opening_hours=week_hours([("10:00", "22:00")]),
        horizon_days=14, buffer_minutes=0, checkin_grace_minutes=10, max_hours_per_day=2,
        max_hours_per_week=6, max_future_bookings=3, qualification_required=False,
    ),
    "electronics": BookingPolicy(
        slot_minutes=30, min_minutes=30, max_minutes=240, opening_hours=week_hours([("10:00", "22:00")]),
        horizon_days=14, buffer_minutes=0, checkin_grace_minutes=15, max_hours_per_day=4,
        max_hours_per_week=12, max_future_bookings=4, qualification_required=False,
    ),
    "other": BookingPolicy(),
}
