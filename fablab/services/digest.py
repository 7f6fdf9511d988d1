"""The daily digest: for a member who chose it, the day's held notices go out as one mail at their hour.

A notice held for the digest has email_state 'digest' (fablab/services/notify.py decides that). At the
member's digest hour in the lab's time zone, `send_digests` queues one mail of kind `digest` listing them
and marks them 'digested'. It is a timed job: idempotent (a notice is taken once; a member gets at most one
digest per local day) and late-safe (a worker that was down at 07:00 sends at its next run that day). A
notice waits for the first digest hour after it was made.
The summaries are written into the mail's params at digest time, so the mail renders the same later and the
renderer needs nothing but params.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import CursorResult, select, update

from ..domain.notice_kinds import Channel
from ..extensions import db
from ..models import Member
from ..models.notifications import Notice, NoticeSettings
from .notices import current_channel, summary
from .notify import absolute_url, queue_mail, settings_for


def _at_hour(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """`hour`:00 local on `day` as an instant. In the spring gap (02:00 does not exist) this is the instant
    the clock jumped over it (03:00 local); in the repeated autumn hour, its first pass (fold=0)."""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(ZoneInfo("UTC"))


def due_since(now: datetime, hour: int, tz: ZoneInfo) -> datetime:
    """The latest digest time at or before `now`: today's hour if it has passed, else yesterday's."""
    today = now.astimezone(tz).date()
    due = _at_hour(today, hour, tz)
    return due if due <= now else _at_hour(today - timedelta(days=1), hour, tz)


def _items(notices: list[Notice]) -> list[dict[str, Any]]:
    return [{"summary": summary(n), "link": absolute_url(n.link) if n.link else None,
             "at": n.created_at.isoformat()} for n in notices]


def send_digests(now: datetime) -> int:
    """Queue the due digests; returns how many mails were queued."""
    tz: ZoneInfo = current_app.config["TZ"]
    held = select(Notice.member_id).where(Notice.email_state == "digest").distinct()
    sent = 0
    for member_id in list(db.session.scalars(held)):
        member = db.session.get(Member, member_id)
        if member is None:
            continue
        settings = settings_for(member_id)
        notices = list(db.session.scalars(select(Notice).where(
            Notice.member_id == member_id, Notice.email_state == "digest")
            .order_by(Notice.created_at, Notice.id)))
        # Due at the first digest hour after the oldest held notice, once a day; a digest turned off since the
        # notices were held sends them at once, in one mail.
        if settings.digest:
            due = due_since(now, settings.digest_hour, tz)
            last = settings.last_digest_at
            if notices[0].created_at >= due or (last is not None and last >= due):
                continue
        ids = [n.id for n in notices]
        items = _items(notices)
        # A digest turned to in-app only (or off): the notices stay in-app, no mail.
        mail = member.active and current_channel(member_id, "digest") is Channel.EMAIL
        taken = db.session.execute(update(Notice).where(Notice.id.in_(ids), Notice.email_state == "digest")
                                   .values(email_state="digested" if mail else "none")
                                   .execution_options(synchronize_session="fetch"))
        if (cast(CursorResult[Any], taken).rowcount or 0) != len(ids):
            # Another worker took some of them in between: this run rolls back, that worker sends them.
            raise RuntimeError(f"digest of member {member_id} raced with another worker")
        if mail:
            queue_mail(member, "digest", now, params={"notice_ids": ids, "items": items})
            sent += 1
        row = db.session.get(NoticeSettings, member_id)
        if row is not None:
            row.last_digest_at = now
        db.session.flush()
    return sent
