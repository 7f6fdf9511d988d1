"""The kinds of notice fablab sends, and what a member may choose for each.

Pure data. A notice kind names one thing that happened or is about to (a booking confirmed, an offer made);
its template is `templates/notices/<kind>.txt` with the blocks `subject`, `summary`, `text` and `html`.
Safety-relevant kinds (someone else cancelled your booking, your account) cannot be turned off; urgent kinds
(an offer with a hold time, a check-in deadline) are never held back for the daily digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    """What a member chose for a kind: mail and in-app, in-app only, or nothing."""

    EMAIL = "email"
    APP = "app"
    OFF = "off"


class Audience(StrEnum):
    MEMBER = "member"  # the member the event is about
    STEWARD = "steward"  # every steward and admin
    ADMIN = "admin"  # every admin


@dataclass(frozen=True)
class Kind:
    name: str
    group: str  # heading on the preferences page
    audience: Audience = Audience.MEMBER
    safety: bool = False  # cannot be turned off (always mail and in-app)
    urgent: bool = False  # sent at once even to members who chose the daily digest
    default: Channel = Channel.EMAIL


KINDS: tuple[Kind, ...] = (
    Kind("booking_confirmed", "bookings"),
    Kind("booking_changed", "bookings"),
    Kind("booking_cancelled", "bookings"),  # cancelled by the member themself
    Kind("booking_cancelled_by_staff", "bookings", safety=True, urgent=True),
    Kind("booking_reminder", "bookings", urgent=True),
    Kind("checkin_open", "bookings", urgent=True, default=Channel.APP),  # "released at 14:15 unless ..."
    Kind("booking_no_show", "bookings"),
    Kind("waitlist_offer", "waitlist", urgent=True),
    Kind("window_result", "request windows"),
    Kind("qualification_expiring", "qualifications"),
    Kind("qualification_expired", "qualifications"),
    Kind("induction_confirmed", "inductions"),
    Kind("induction_waitlisted", "inductions", default=Channel.APP),
    Kind("induction_moved_up", "inductions", urgent=True),
    Kind("induction_cancelled", "inductions", safety=True, urgent=True),  # a trainer's cancel must reach them
    Kind("induction_attendance_due", "inductions"),  # to the trainer: a session ended with nobody marked
    Kind("task_assigned", "tasks"),
    Kind("task_due", "tasks"),
    Kind("account_changed", "account", safety=True, urgent=True),
    Kind("machine_alarm", "stewards", audience=Audience.STEWARD, urgent=True),
    Kind("bridge_offline", "stewards", audience=Audience.STEWARD, urgent=True),
    Kind("dead_letters", "stewards", audience=Audience.STEWARD),
    Kind("deletion_requested", "stewards", audience=Audience.STEWARD),  # a member asks staff to confirm
    Kind("webhook_disabled", "admins", audience=Audience.ADMIN, urgent=True),
    Kind("delivery_failed", "admins", audience=Audience.ADMIN, default=Channel.APP),
    Kind("fairness_weekly", "admins", audience=Audience.ADMIN),
    Kind("print_ready", "prints", urgent=True, default=Channel.APP),  # on the printer: start it there
    Kind("print_withdrawn", "prints", urgent=True),  # its booking was cancelled or ended; kept with the reason
    Kind("print_failed", "prints", urgent=True),  # the transfer or the print failed; kept with the reason
    Kind("digest", "digest"),  # the daily digest itself (one mail holding the day's held notices)
)

# Joining (issue 17): one-time links (invite, verify, reset, "you already have an account"), staff's decision
# on a sign-up, and the stewards' "someone waits for approval".
KINDS += (Kind("account_link", "account", safety=True, urgent=True),
          Kind("account_review", "account", safety=True, urgent=True),
          Kind("signup_pending", "stewards", audience=Audience.STEWARD, urgent=True))

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    """The kind called `name`; an unknown name is a programming error (ValueError)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown notice kind {name!r}") from None


def effective_channel(k: Kind, chosen: Channel | None) -> Channel:
    """What actually happens for a kind given the member's choice (None: no choice, the default)."""
    if k.safety:
        return Channel.EMAIL
    return chosen or k.default


def held_for_digest(k: Kind, channel: Channel, digest: bool) -> bool:
    """Whether a notice's mail waits for the member's daily digest instead of going out at once."""
    return digest and channel is Channel.EMAIL and not k.urgent and not k.safety and k.name != "digest"
