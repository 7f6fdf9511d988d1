"""Telling members things: write a notice (in-app) and, as the member chose, its mail into the outbox.

Call these inside the transaction of the change that causes the notice; they only add rows and never send
(`fablab notify` delivers the outbox, fablab/services/mail_delivery.py). Listeners that turn lab events into
notices live in fablab/services/notice_rules.py, timed ones in notice_scans.py; both are connected in fablab/wiring.py.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import exists, literal, select

from ..domain.notice_kinds import Audience, Channel, effective_channel, held_for_digest, kind
from ..extensions import db
from ..models import Member, Role
from ..models.notifications import Notice, NoticePreference, NoticeSettings, OutboxMail


def absolute_url(path: str) -> str:
    """A link for a mail or webhook (no request to take the host from): FABLAB_BASE_URL + path."""
    return current_app.config["FABLAB_BASE_URL"] + "/" + path.lstrip("/")


def new_message_id() -> str:
    """A Message-ID fixed when a mail is queued, in the sender's domain."""
    sender = current_app.config["FABLAB_MAIL_FROM"]
    domain = sender.rsplit("@", 1)[-1].strip("> ") or "fablab.invalid"
    return f"<{secrets.token_hex(16)}@{domain}>"


def chosen_channel(member_id: int, kind_name: str) -> Channel | None:
    row = db.session.get(NoticePreference, (member_id, kind_name))
    return Channel(row.channel) if row else None


def settings_for(member_id: int) -> NoticeSettings:
    """The member's settings row, or an unsaved one with the defaults."""
    row = db.session.get(NoticeSettings, member_id)
    return row or NoticeSettings(member_id=member_id, reminder_minutes=60, digest=False, digest_hour=7)


def queue_mail(member: Member, kind_name: str, now: datetime, *, notice: Notice | None = None,
               params: Mapping[str, Any] | None = None) -> OutboxMail:
    """Put one mail to the member into the outbox (due at once)."""
    mail = OutboxMail(notice=notice, member_id=member.id, kind=kind_name, to_address=member.email,
                      message_id=new_message_id(), params=dict(params or {}), status="pending", attempts=0,
                      next_attempt_at=now, created_at=now)
    db.session.add(mail)
    return mail


# Mail params under this key hold a secret (a one-time link) that must not outlive the mail's delivery.
SECRET_PARAM = "secret"


def queue_mail_to(address: str, kind_name: str, now: datetime, *, params: Mapping[str, Any] | None = None,
                  member_id: int | None = None) -> OutboxMail:
    """One mail to an address that may belong to nobody yet (an invitation), due at once, no notice."""
    mail = OutboxMail(member_id=member_id, kind=kind(kind_name).name, to_address=address,
                      message_id=new_message_id(), params=dict(params or {}), status="pending", attempts=0,
                      next_attempt_at=now, created_at=now)
    db.session.add(mail)
    return mail


def without_secret(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The params to keep once the mail went out (the secret removed), or None when it carried none."""
    if not params or SECRET_PARAM not in params:
        return None
    return {k: v for k, v in params.items() if k != SECRET_PARAM}


def _lookup(member_id: int, kind_name: str, dedupe_key: str | None) -> tuple[Channel | None, bool, bool]:
    """(the member's choice for the kind, digest on, already told with this key), in one round trip: a
    notice is written inside someone's booking request, so its cost is the request's."""
    pref = select(NoticePreference.channel).where(NoticePreference.member_id == member_id,
                                                  NoticePreference.kind == kind_name).scalar_subquery()
    digest = select(NoticeSettings.digest).where(NoticeSettings.member_id == member_id).scalar_subquery()
    seen = (exists().where(Notice.member_id == member_id, Notice.dedupe_key == dedupe_key) if dedupe_key
            else literal(False))
    with db.session.no_autoflush:
        channel, digest_on, told = db.session.execute(select(pref, digest, seen)).one()
    if dedupe_key is not None and not told:
        # Notices added in this transaction and not yet flushed count too (no flush needed for that).
        told = any(isinstance(o, Notice) and o.member_id == member_id and o.dedupe_key == dedupe_key
                   for o in db.session.new)
    return (Channel(channel) if channel else None), bool(digest_on), bool(told)


def notify(member: Member, kind_name: str, params: Mapping[str, Any], *, now: datetime, link: str | None = None,
           dedupe_key: str | None = None, mail_params: Mapping[str, Any] | None = None) -> Notice | None:
    """Tell one member: a notice and, unless they chose in-app only (or the digest holds it), its mail.

    Returns None when nothing was written: the member turned this kind off, is inactive, or was already told
    (same `dedupe_key`). `mail_params` go to the mail only (an invitation's METHOD, say).
    """
    k = kind(kind_name)
    if not member.active:
        return None
    chosen, digest_on, told = _lookup(member.id, k.name, dedupe_key)
    channel = effective_channel(k, chosen)
    if channel is Channel.OFF or told:
        return None
    state = "none"
    if channel is Channel.EMAIL:
        state = "digest" if held_for_digest(k, channel, digest_on) else "queued"
    notice = Notice(member=member, member_id=member.id, kind=k.name, params=dict(params), link=link,
                    created_at=now, dedupe_key=dedupe_key, email_state=state)
    db.session.add(notice)
    if state == "queued":
        queue_mail(member, k.name, now, notice=notice, params=mail_params)
    return notice


def staff(audience: Audience) -> list[Member]:
    """Who an audience of staff is: every active steward and admin, or every active admin."""
    roles = [Role.ADMIN.value] if audience is Audience.ADMIN else [Role.STEWARD.value, Role.ADMIN.value]
    return list(db.session.scalars(select(Member).where(Member.active.is_(True), Member.role.in_(roles))
                                   .order_by(Member.id)))


def notify_staff(kind_name: str, params: Mapping[str, Any], *, now: datetime, link: str | None = None,
                 dedupe_key: str | None = None) -> list[Notice]:
    """Tell every steward (or admin, per the kind's audience) the same thing."""
    k = kind(kind_name)
    audience = k.audience if k.audience is not Audience.MEMBER else Audience.STEWARD
    out = [notify(m, kind_name, params, now=now, link=link, dedupe_key=dedupe_key) for m in staff(audience)]
    return [n for n in out if n is not None]


@functools.lru_cache(maxsize=4)
def _serializer_for(secret: str) -> URLSafeSerializer:
    # Made once per key: deriving its signing key per mail was a tenth of building the mail.
    return URLSafeSerializer(secret, salt="fablab-unsubscribe")


def _unsubscribe_serializer() -> URLSafeSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


def unsubscribe_token(member_id: int, kind_name: str) -> str:
    """The token in a mail's one-click unsubscribe link (RFC 8058): signed, names the member and the kind."""
    return _unsubscribe_serializer().dumps([member_id, kind_name])


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(member id, kind) from a token, or None when it is forged, mangled or names no kind."""
    try:
        member_id, kind_name = _unsubscribe_serializer().loads(token)
        kind(str(kind_name))
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(member_id, int):
        return None
    return member_id, str(kind_name)
