"""Bounded parsing of what people and scripts send: ids, whole numbers, numbers, dates, times, lengths.

Every value from a form, a query string or a JSON body goes through here, web and API alike, so a value the
database or date arithmetic cannot hold (an id past 2^63, a year 9999, a trillion minutes, NaN) is refused
with a reason before it reaches them. A refusal is an `InputError` (code, message, field); the edge turns it
into a 400 page or the API's error format."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, tzinfo

# The largest id both databases store: the id columns are INTEGER, 64 bits on SQLite but 32 on PostgreSQL.
MAX_ID = 2**31 - 1
MIN_YEAR = 1970  # the lab clock counts from 1970
MAX_YEAR = 2100  # far beyond any booking horizon, yet a year later still fits a date
MAX_MINUTES = 366 * 24 * 60  # a booking, a block or an extension is never longer than a year
MAX_TEXT = 10_000  # longer than any field a person types; a number never has this many digits
_MAX_NUMBER_TEXT = 40


class InputError(ValueError):
    """A value that cannot be taken, and why. `code` is a stable English identifier."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _present(raw: object, field: str) -> object:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise InputError("missing_field", f"'{field}' is required.", field)
    return raw


def parse_int(raw: object, field: str, lo: int, hi: int) -> int:
    """A whole number in lo..hi, from a JSON integer or a decimal string (never a bool, a float or NaN)."""
    raw = _present(raw, field)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InputError("bad_type", f"'{field}' must be a whole number.", field)
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > _MAX_NUMBER_TEXT or not text.lstrip("+-").isdigit() or not text.isascii():
            raise InputError("bad_number", f"'{field}' must be a whole number, not {raw[:40]!r}.", field)
        raw = int(text)
    if not lo <= raw <= hi:
        raise InputError("out_of_range", f"'{field}' must be between {lo} and {hi}.", field)
    return raw


def parse_id(raw: object, field: str) -> int:
    """A database id: 1 .. MAX_ID."""
    return parse_int(raw, field, 1, MAX_ID)


def parse_number(raw: object, field: str, lo: float, hi: float) -> float:
    """A finite number in lo..hi (NaN and infinities are refused: they pass every comparison)."""
    raw = _present(raw, field)
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise InputError("bad_type", f"'{field}' must be a number.", field)
    if isinstance(raw, str):
        if len(raw) > _MAX_NUMBER_TEXT:
            raise InputError("bad_number", f"'{field}' must be a number.", field)
        try:
            raw = float(raw.strip())
        except ValueError:
            raise InputError("bad_number", f"'{field}' must be a number, not {raw!r}.", field) from None
    value = float(raw)
    if not math.isfinite(value):
        raise InputError("bad_number", f"'{field}' must be a finite number.", field)
    if not lo <= value <= hi:
        raise InputError("out_of_range", f"'{field}' must be between {lo:g} and {hi:g}.", field)
    return value


def parse_minutes(raw: object, field: str = "minutes", lo: int = 1, hi: int = MAX_MINUTES) -> int:
    return parse_int(raw, field, lo, hi)


def check_year(value: date, field: str) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InputError("out_of_range", f"'{field}' must lie between the years {MIN_YEAR} and {MAX_YEAR}.", field)


def parse_date(raw: object, field: str) -> date:
    """A calendar day, YYYY-MM-DD, in MIN_YEAR..MAX_YEAR."""
    raw = _present(raw, field)
    if not isinstance(raw, str) or len(raw) > _MAX_NUMBER_TEXT:
        raise InputError("bad_date", f"'{field}' must be a date like 2026-12-01.", field)
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        raise InputError("bad_date", f"'{field}' is not a date like 2026-12-01: {raw!r}.", field) from None
    check_year(value, field)
    return value


def parse_datetime(raw: object, field: str, local: tzinfo) -> datetime:
    """An ISO 8601 time, in UTC; without an offset it means the lab's local time (`local`), as a person at
    the lab would mean it. The year is checked before any conversion: 0001-01-01T00:00+01:00 has no UTC."""
    raw = _present(raw, field)
    if not isinstance(raw, str) or len(raw) > _MAX_NUMBER_TEXT:
        raise InputError("bad_time", f"'{field}' must be an ISO 8601 time, e.g. 2026-12-01T18:00:00+01:00.", field)
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError("bad_time", f"'{field}' is not an ISO 8601 time: {raw!r}.", field) from None
    check_year(value, field)
    return as_utc(value, local)


def as_utc(value: datetime, local: tzinfo) -> datetime:
    """A datetime a person gave (naive: lab time) in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=local)
    return value.astimezone(UTC)


def parse_text(raw: object, field: str, max_length: int = MAX_TEXT) -> str:
    """Text without NUL or other control characters than tab and line breaks (PostgreSQL refuses NUL)."""
    if not isinstance(raw, str):
        raise InputError("bad_type", f"'{field}' must be a string.", field)
    if len(raw) > max_length:
        raise InputError("too_long", f"'{field}' must be at most {max_length} characters.", field)
    if not is_clean_text(raw):
        raise InputError("bad_text", f"'{field}' contains control characters.", field)
    return raw


def is_clean_text(text: str) -> bool:
    return not any((ord(c) < 32 and c not in "\t\r\n") or 0xD800 <= ord(c) <= 0xDFFF for c in text)
