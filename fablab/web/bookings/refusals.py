"""A refusal as the page shows it: the reasons in words and one-tap ways out (the next free slot, a
shorter length, the waitlist, who grants a qualification). Rendered by the one error partial,
templates/_refusal.html, wherever the member acted (booking dialog, booking row, kiosk-like panels)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for

from ...domain.booking_rules import RuleViolation
from ...models import Machine, Member
from ...services import bookings as svc
from ...services import calendar_view
from ..formatting import localtime, minutes

# Codes after which another time (or the waitlist) is the way out, not another length.
TIME_TAKEN = ("overlap", "buffer", "maintenance")
TIME_WRONG = ("in_the_past", "outside_opening_hours", "beyond_horizon", "machine_unavailable")
QUOTA = ("quota_day_hours", "quota_week_hours")
QUALIFICATION = ("not_qualified", "qualification_expired")
ACCOUNT = ("account_not_verified", "account_not_approved")


@dataclass
class Action:
    """One tap: a POST (hx-post when `target` is set, so it swaps in place) or, with method "get", a link."""

    label: str
    url: str
    fields: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    method: str = "post"
    primary: bool = False


@dataclass
class Person:
    name: str
    url: str | None = None


@dataclass
class Refusal:
    code: str
    reasons: list[str]
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)

    @classmethod
    def simple(cls, code: str, message: str) -> Refusal:
        return cls(code, [message])

    @classmethod
    def from_exception(cls, exc: Exception) -> Refusal:
        if isinstance(exc, svc.BookingRejected):
            return cls(exc.code, [v.message for v in exc.violations])
        return cls("not_allowed", [str(exc)])


def _minutes_of(length: timedelta) -> int:
    return int(length.total_seconds() // 60)


def _book_action(machine: Machine, start: datetime, length: timedelta, label: str, primary: bool = False) -> Action:
    return Action(label, url_for("bookings.book", slug=machine.slug),
                  {"start": start.isoformat(), "minutes": str(_minutes_of(length))}, target="#week", primary=primary)


def _span(start: datetime, end: datetime) -> str:
    return f"{localtime(start, '%a %d %b %H:%M')}–{localtime(end, '%H:%M')}"


def qualification_help(machine: Machine, viewer: Member, now: datetime) -> tuple[list[str], list[Person]]:
    """The way out of a missing or lapsed qualification: who grants it (and their names where the lab
    shows them, or to staff)."""
    scope = (f"any {machine.machine_type.name}" if machine.qualification_scope == "type" else machine.name)
    notes = [f"A steward grants the qualification for {scope} after an induction (or renews it after a "
             "short check). Ask a steward at the lab to arrange one."]
    people: list[Person] = []
    if viewer.is_staff or current_app.config.get("FABLAB_CALENDAR_SHOW_NAMES"):
        for m in calendar_view.who_grants(machine, now):
            link = url_for("admin.member_detail", member_id=m.id) if viewer.is_staff else None
            people.append(Person(m.name, link))
    return notes, people


def for_booking(machine: Machine, member: Member, start: datetime, asked: timedelta | None,
                violations: Sequence[RuleViolation], now: datetime,
                suggestion: Any = None) -> Refusal:
    """A refused booking of [start, start + asked) with the alternatives that would succeed now."""
    codes = [v.code for v in violations]
    code = codes[0] if codes else "rejected"
    out = Refusal(code, [v.message for v in violations])
    policy = svc.policy_for(machine)
    length = asked or policy.min_length
    if code == "account_not_verified" and "join.resend_verification" in current_app.view_functions:
        out.actions.append(Action("Send the confirmation link again", url_for("join.resend_verification")))
        return out
    if code in ACCOUNT:
        return out  # no time or length would do: the account must be confirmed or approved first
    if any(c in QUALIFICATION for c in codes):
        out.notes, out.people = qualification_help(machine, member, now)
        if "inductions.index" in current_app.view_functions:
            # Imported here: the inductions page builds on these refusals' Action.
            from ..inductions.refusal_actions import next_induction_action

            out.actions.append(next_induction_action(machine, member, now))
        return out  # no time would do: the way out is the qualification, not another slot
    if any(c in QUOTA for c in codes) or "too_long" in codes:
        longest = svc.longest_from(machine, member, start, now)
        if longest >= policy.min_length and (asked is None or longest < asked):
            out.actions.append(_book_action(machine, start, longest,
                                            f"Book {minutes(_minutes_of(longest))} instead "
                                            f"({_span(start, start + longest)})", primary=True))
    if any(c in TIME_TAKEN or c in TIME_WRONG for c in codes):
        nxt = suggestion or svc.suggest_next(machine, start, length, now)
        if nxt is not None:
            fit = min(nxt.end - nxt.start, svc.longest_from(machine, member, nxt.start, now))
            if fit >= policy.min_length:
                out.actions.append(_book_action(machine, nxt.start, fit,
                                                f"Book the next free time: {_span(nxt.start, nxt.start + fit)}",
                                                primary=not out.actions))
        if any(c in TIME_TAKEN for c in codes) and start > now:
            tz = svc.lab_tz()
            out.actions.append(Action(
                "Join the waitlist for this time", url_for("scheduling.waitlist"),
                {"machine": machine.slug, "kind": "slot", "min_hours": "0",
                 "start": start.astimezone(tz).strftime("%Y-%m-%dT%H:%M"),
                 "end": (start + length).astimezone(tz).strftime("%Y-%m-%dT%H:%M")}))
    if "quota_future_bookings" in codes:
        out.actions.append(Action("See my bookings", url_for("bookings.mine"), method="get"))
    return out


def check_in_refusal(exc: Exception, when_opens: datetime | None) -> Refusal:
    """A check-in refused: when it opens (or that the booking was released)."""
    out = Refusal.from_exception(exc)
    if when_opens is not None:
        out.notes.append(f"Come back at {localtime(when_opens, '%H:%M')}; the button appears then.")
    return out
