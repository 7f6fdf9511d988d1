"""A member's own notices and choices: what is unread, the list, marking read, and the preferences.

Every query takes the member's id and filters by it, so a member can only ever see or mark their own
notices (another member's notice id reads as "no such notice"). Writing a notice is fablab/services/notify.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from jinja2 import TemplateNotFound
from sqlalchemy import CursorResult, func, select, update

from ..domain.notice_kinds import BY_NAME, KINDS, Audience, Channel, Kind, effective_channel, kind
from ..extensions import db
from ..models import Member, Role
from ..models.notifications import Notice, NoticePreference, NoticeSettings
from . import notice_render
from .notify import chosen_channel, settings_for

log = logging.getLogger("fablab.notices")

PAGE_SIZE = 20
REMINDER_CHOICES = (0, 15, 30, 60, 120, 1440)  # minutes before a booking; 0: no reminder
# What the kiosk shows at sign-in: unread warnings of the last week, a few at most.
KIOSK_WARNING_AGE = timedelta(days=7)
KIOSK_WARNING_LIMIT = 3


class PreferenceRefused(ValueError):
    """A choice the member may not make (a safety kind turned off, a kind not theirs, a value not offered)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Page:
    items: list[Notice]
    number: int  # 1-based
    pages: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def summary(notice: Notice) -> str:
    """The notice's one line. A kind whose template is missing or fails on the stored params still shows (as
    its name): one bad row must not make the whole notices page, the kiosk or a digest fail."""
    try:
        return notice_render.summary(notice)
    except TemplateNotFound:
        return kind_label(notice.kind)
    except Exception:  # noqa: BLE001
        log.exception("notice %s (%s) did not render", notice.id, notice.kind)
        return kind_label(notice.kind)


def unread_count(member_id: int) -> int:
    return int(db.session.scalar(select(func.count()).select_from(Notice).where(
        Notice.member_id == member_id, Notice.read_at.is_(None))) or 0)


def page_of(member_id: int, number: int, size: int = PAGE_SIZE) -> Page:
    """The member's notices, newest first, one page (a number past the end gives the last page)."""
    total = int(db.session.scalar(select(func.count()).select_from(Notice).where(Notice.member_id == member_id))
                or 0)
    pages = max(1, -(-total // size))
    number = min(max(1, number), pages)
    items = list(db.session.scalars(select(Notice).where(Notice.member_id == member_id)
                                    .order_by(Notice.created_at.desc(), Notice.id.desc())
                                    .offset((number - 1) * size).limit(size)))
    return Page(items=items, number=number, pages=pages, total=total)


def own_notice(member_id: int, notice_id: int) -> Notice | None:
    notice = db.session.get(Notice, notice_id)
    return notice if notice is not None and notice.member_id == member_id else None


def mark_read(member_id: int, notice_id: int, now: datetime) -> Notice | None:
    """Mark one of the member's notices read (again: no change); None when it is not theirs or not there."""
    notice = own_notice(member_id, notice_id)
    if notice is not None and notice.read_at is None:
        notice.read_at = now
    return notice


def mark_all_read(member_id: int, now: datetime) -> int:
    result = db.session.execute(update(Notice).where(Notice.member_id == member_id, Notice.read_at.is_(None))
                                .values(read_at=now))
    return cast(CursorResult[Any], result).rowcount or 0


def kiosk_warnings(member_id: int, now: datetime) -> list[Notice]:
    """Unread urgent or safety notices of the last week, for the kiosk's sign-in screen. Offers are left out:
    the kiosk lists the open offers themselves, with their claim button."""
    names = [k.name for k in KINDS if (k.urgent or k.safety) and k.name != "waitlist_offer"]
    return list(db.session.scalars(select(Notice).where(
        Notice.member_id == member_id, Notice.read_at.is_(None), Notice.kind.in_(names),
        Notice.created_at >= now - KIOSK_WARNING_AGE).order_by(Notice.created_at.desc())
        .limit(KIOSK_WARNING_LIMIT)))


# --- preferences ------------------------------------------------------------------------------------------

LABELS: dict[str, str] = {
    "booking_confirmed": "Booking confirmed",
    "booking_changed": "Booking changed",
    "booking_cancelled": "Booking cancelled by you",
    "booking_cancelled_by_staff": "Booking cancelled by staff",
    "booking_reminder": "Reminder before a booking",
    "checkin_open": "Check-in open (released unless you check in)",
    "booking_no_show": "Released as a no-show",
    "waitlist_offer": "Waitlist offer",
    "window_result": "Request window result",
    "qualification_expiring": "Qualification expiring soon",
    "qualification_expired": "Qualification expired",
    "task_assigned": "Task assigned to you",
    "task_due": "Task due",
    "account_changed": "Changes to your account",
    "machine_alarm": "Machine in alarm or error",
    "bridge_offline": "Bridge offline",
    "dead_letters": "New dead letters",
    "webhook_disabled": "Webhook disabled",
    "delivery_failed": "Delivery failed",
    "fairness_weekly": "Weekly fairness figures",
    "digest": "The daily digest mail",
}

# Why a safety kind cannot be turned off, as the preferences and unsubscribe pages say it.
SAFETY_WHY: dict[str, str] = {
    "booking_cancelled_by_staff": "Someone else cancelled your booking: without this mail you might come in "
                                  "for a machine that is no longer yours.",
    "account_changed": "A change to your account you did not make can mean someone else is using it.",
}


def kind_label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def safety_why(name: str) -> str:
    return SAFETY_WHY.get(name, "It concerns your bookings' safety or your account, so it always reaches you.")


def visible_kinds(member: Member) -> list[Kind]:
    """The kinds a member may choose for: staff kinds only for staff (admin kinds only for admins)."""
    def shown(k: Kind) -> bool:
        if k.audience is Audience.ADMIN:
            return member.has_role(Role.ADMIN)
        if k.audience is Audience.STEWARD:
            return member.is_staff
        return True
    return [k for k in KINDS if shown(k)]


def channels_for(member: Member) -> dict[str, Channel]:
    """What each visible kind does for the member now (their choice, or the default; safety: always mail)."""
    rows = {p.kind: Channel(p.channel) for p in db.session.scalars(
        select(NoticePreference).where(NoticePreference.member_id == member.id)) if p.channel in set(Channel)}
    return {k.name: effective_channel(k, rows.get(k.name)) for k in visible_kinds(member)}


def set_channel(member_id: int, kind_name: str, channel: Channel) -> None:
    """Store the member's choice for one kind (the caller commits). Safety kinds are refused."""
    try:
        k = kind(kind_name)
    except ValueError:
        raise PreferenceRefused("unknown_kind", "There is no such kind of notice.") from None
    if k.safety:
        raise PreferenceRefused("safety", f"{kind_label(k.name)} cannot be turned off: {safety_why(k.name)}")
    row = db.session.get(NoticePreference, (member_id, k.name))
    if row is None:
        db.session.add(NoticePreference(member_id=member_id, kind=k.name, channel=channel.value))
    else:
        row.channel = channel.value


def save_preferences(member: Member, choices: Mapping[str, Channel], *, reminder_minutes: int, digest: bool,
                     digest_hour: int, now: datetime) -> None:
    """Store the whole preferences form (the caller commits). Values are checked again here: the form is one
    caller, not the only one."""
    allowed = {k.name for k in visible_kinds(member) if not k.safety}
    for name, channel in choices.items():
        if name not in allowed:
            raise PreferenceRefused("not_yours", f"{kind_label(name)} is not a notice you receive.")
        set_channel(member.id, name, channel)
    if reminder_minutes not in REMINDER_CHOICES:
        raise PreferenceRefused("reminder", "Choose one of the offered reminder times.")
    if not 0 <= digest_hour <= 23:
        raise PreferenceRefused("digest_hour", "Choose an hour from 0 to 23.")
    row = db.session.get(NoticeSettings, member.id)
    if row is None:
        row = settings_for(member.id)
        db.session.add(row)
    if digest and not row.digest:
        row.last_digest_at = now  # the first digest comes at the next digest hour, not at once
    row.reminder_minutes, row.digest, row.digest_hour = reminder_minutes, digest, digest_hour


def unsubscribe(member_id: int, kind_name: str) -> Kind:
    """One-click unsubscribe: that kind becomes in-app only (the caller commits). Safety kinds are refused."""
    set_channel(member_id, kind_name, Channel.APP)
    return BY_NAME[kind_name]


def current_channel(member_id: int, kind_name: str) -> Channel:
    return effective_channel(kind(kind_name), chosen_channel(member_id, kind_name))
