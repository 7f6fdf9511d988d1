"""When a notice that comes from time passing is due: reminders, check-in windows, expiring qualifications,
offline bridges and the weekly digest. Pure functions of aware datetimes and `now`; the scans in
fablab/services/notice_scans.py load the rows and write the notices.

Every rule here also bounds catch-up: a worker that was down does not, when it comes back, send what is no
longer useful (a reminder for a booking that has started, a check-in call after the release, a digest days
late, "expired" for a qualification that lapsed long ago).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from fablab.domain.intervals import require_aware
from fablab.domain.policy import local_midnight, local_to_utc

# How far ahead the reminder scan looks: no lead-time preference is longer than this.
MAX_REMINDER_LEAD = timedelta(days=7)
QUALIFICATION_WARNING = timedelta(days=30)
# An expiry older than this is history, not news (no "expired" mail for a qualification gone for a year).
EXPIRED_NEWS = timedelta(days=30)
OFFLINE_ALERT_AFTER = timedelta(minutes=10)
# A bridge offline longer than this before anyone looked is known (decommissioned, or alerted earlier).
OFFLINE_NEWS = timedelta(days=7)
DIGEST_WEEKDAY = 0  # Monday
DIGEST_HOUR = 8  # lab time
DIGEST_CATCH_UP = timedelta(hours=24)  # a worker down on Monday morning still sends it until Tuesday 08:00


def _utc(t: datetime) -> datetime:
    return require_aware("time", t).astimezone(UTC)


def stamp(t: datetime) -> str:
    """An instant as the ISO text used in params and dedupe keys (UTC, so the same instant is one key)."""
    return _utc(t).isoformat()


def local_hhmm(t: datetime, tz: tzinfo) -> str:
    """The lab's wall clock at t, "14:15" (what a member reads on the wall)."""
    local = _utc(t).astimezone(tz)
    return f"{local.hour:02d}:{local.minute:02d}"


# --- reminders ------------------------------------------------------------------------------------------


def reminder_at(start: datetime, lead_minutes: int) -> datetime | None:
    """When the reminder for a booking starting at `start` is due; None when the member wants none (0)."""
    if lead_minutes <= 0:
        return None
    return _utc(start) - timedelta(minutes=min(lead_minutes, int(MAX_REMINDER_LEAD.total_seconds() // 60)))


def reminder_due(start: datetime, created: datetime, lead_minutes: int, now: datetime) -> bool:
    """Whether to send the reminder now: its time has come and the booking has not started. A booking made
    inside its lead time gets none (its confirmation is the reminder)."""
    at = reminder_at(start, lead_minutes)
    if at is None:
        return False
    return _utc(created) < at <= _utc(now) < _utc(start)


# --- check-in window ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckinWindow:
    """From when a member may check in, and when the booking is released if they have not (the window of
    fablab/services/bookings.py checkin_window, which record_no_shows and the booking page use)."""

    opens: datetime
    releases: datetime


def checkin_announce_due(window: CheckinWindow, now: datetime) -> bool:
    """The "check in by ..." notice goes out once the window is open and only while it still can help."""
    return window.opens <= _utc(now) < window.releases


# --- qualifications -------------------------------------------------------------------------------------


def qualification_notice(expires: datetime | None, now: datetime) -> str | None:
    """"qualification_expiring" within 30 days of the expiry, "qualification_expired" once it passed (for a
    month: older expiries are history), None otherwise."""
    if expires is None:
        return None
    exp, t = _utc(expires), _utc(now)
    if t < exp <= t + QUALIFICATION_WARNING:
        return "qualification_expiring"
    if t - EXPIRED_NEWS < exp <= t:
        return "qualification_expired"
    return None


def expiry_day(expires: datetime, tz: tzinfo) -> date:
    """The lab date a qualification expires on (the dedupe key: once per qualification and expiry date)."""
    return _utc(expires).astimezone(tz).date()


# --- bridges --------------------------------------------------------------------------------------------


def offline_alert_due(since: datetime, now: datetime) -> bool:
    """Offline for more than ten minutes (a reconnect inside that is no news), and not for ages."""
    gone = _utc(now) - _utc(since)
    return OFFLINE_ALERT_AFTER < gone <= OFFLINE_NEWS


# --- the weekly digest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestWeek:
    key: str  # "2026-W14": the ISO week the digest is sent in (one digest per key)
    sent_at: datetime  # the local Monday 08:00 it is due, as UTC
    start: datetime  # the week it covers: the previous local Monday 00:00 ...
    end: datetime  # ... to this Monday 00:00 (UTC instants; 167, 168 or 169 hours apart)
    first_day: date
    last_day: date  # the Sunday, included


def iso_week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def digest_week(now: datetime, tz: tzinfo, hour: int = DIGEST_HOUR) -> DigestWeek:
    """The digest of the local week `now` lies in: due at its Monday `hour` (lab time, whatever the offset
    that day), covering the week before."""
    today = _utc(now).astimezone(tz).date()
    monday = today - timedelta(days=today.weekday() - DIGEST_WEEKDAY)
    prev = monday - timedelta(days=7)
    return DigestWeek(iso_week_key(monday), local_to_utc(monday, time(hour), tz), local_midnight(prev, tz),
                      local_midnight(monday, tz), prev, monday - timedelta(days=1))


def digest_due(now: datetime, tz: tzinfo, hour: int = DIGEST_HOUR) -> DigestWeek | None:
    """This week's digest if it is due now (from Monday `hour` for a day), else None."""
    week = digest_week(now, tz, hour)
    return week if week.sent_at <= _utc(now) < week.sent_at + DIGEST_CATCH_UP else None
