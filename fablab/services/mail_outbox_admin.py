"""The outbox as admins see it: how many mails wait, went out or failed, the failed ones with their reason,
and the two things an admin can do about a failed mail: send it again now, or discard it.

"Retry now" puts the mail back to pending, due at once, keeping its attempts (so the record of how often it
failed stays true) and its Message-ID (a receiver that got it after all sees the same id). "Discard" keeps
the row as 'discarded', which the delivery never takes, so the admin's decision stays visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..extensions import db
from ..models.notifications import OutboxMail
from . import notify
from .mail_delivery import outbox_counts

STATUSES = ("pending", "sent", "failed", "discarded")
PER_PAGE = 50


class OutboxRefused(Exception):
    """The action does not apply to this mail (it is not failed any more, say)."""


@dataclass(frozen=True)
class FailedPage:
    rows: list[OutboxMail]
    page: int
    pages: int
    total: int


def counts() -> dict[str, int]:
    """Mails per status (every status present, 0 when none), plus 'retrying': pending after a failure."""
    found = outbox_counts()
    out = {s: int(found.get(s, 0)) for s in STATUSES}
    out["retrying"] = int(db.session.scalar(select(func.count()).select_from(OutboxMail).where(
        OutboxMail.status == "pending", OutboxMail.attempts > 0)) or 0)
    return out


def failed(page: int, per_page: int = PER_PAGE) -> FailedPage:
    """The failed mails, most recently given up first."""
    total = int(db.session.scalar(select(func.count()).select_from(OutboxMail)
                                  .where(OutboxMail.status == "failed")) or 0)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    rows = list(db.session.scalars(select(OutboxMail).where(OutboxMail.status == "failed")
                                   .order_by(OutboxMail.next_attempt_at.desc(), OutboxMail.id.desc())
                                   .offset((page - 1) * per_page).limit(per_page)))
    return FailedPage(rows=rows, page=page, pages=pages, total=total)


def _failed_mail(mail_id: int) -> OutboxMail:
    mail = db.session.get(OutboxMail, mail_id, with_for_update=True)
    if mail is None:
        raise LookupError(mail_id)
    if mail.status != "failed":
        raise OutboxRefused(f"This mail is {mail.status}, not failed: there is nothing to do about it.")
    return mail


def retry_now(mail_id: int, now: datetime) -> OutboxMail:
    """Back to pending, due now, attempts kept; the next `fablab notify` round sends it."""
    mail = _failed_mail(mail_id)
    mail.status = "pending"
    mail.next_attempt_at = now
    mail.lease_until = None
    return mail


def discard(mail_id: int) -> OutboxMail:
    mail = _failed_mail(mail_id)
    mail.status = "discarded"
    mail.lease_until = None
    mail.params = notify.without_secret(mail.params) or mail.params  # a discarded link's token is not kept
    return mail
