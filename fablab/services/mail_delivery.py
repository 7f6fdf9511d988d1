"""Delivering the mail outbox: claim what is due, send it over one SMTP connection, record each result.

1. Claim: due pending rows whose lease is free or expired get a lease, committed at once (PostgreSQL:
   FOR UPDATE SKIP LOCKED, so several `fablab notify` processes share the work; SQLite: one writer anyway).
2. Build every claimed message (a bad address or failing template fails that mail alone).
3. Send them over one connection; each mail is marked sent and committed right after the server accepted
   it (a plain UPDATE on a connection of the batch's own), so a crash of this process repeats at most the
   one in flight, with the same Message-ID. The SQLite write lock is
   taken only for those short updates, never while talking to the server.

Temporary failures (server away, 4xx, time-outs) count an attempt and wait per fablab/domain/backoff.py;
a permanent 5xx or a spent retry budget marks the mail failed and tells the admins (`delivery_failed`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.orm import joinedload

from ..database import begin_write
from ..domain.backoff import next_attempt
from ..extensions import db
from ..models.notifications import Notice, OutboxMail
from . import notify
from .mail_build import BuildError, BuiltMail, build
from .mail_transport import ConnectionLost, PermanentError, SmtpConnection, SmtpSettings, TemporaryError, parse_smtp_url

log = logging.getLogger("fablab.mail")

LEASE = timedelta(minutes=5)
_warned_no_server = False


@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0  # a temporary failure: tried again later
    failed: int = 0  # given up (permanent, or the retry budget spent)
    released: int = 0  # claimed but not tried (connection lost, stop asked): due again at once
    skipped: str | None = None  # why nothing was tried (no mail server configured)


def claim(now: datetime, limit: int, lease: timedelta = LEASE) -> list[int]:
    """Lease up to `limit` due mails to this process and commit; their ids in send order."""
    begin_write()
    due = (select(OutboxMail.id)
           .where(OutboxMail.status == "pending", OutboxMail.next_attempt_at <= now,
                  or_(OutboxMail.lease_until.is_(None), OutboxMail.lease_until <= now))
           .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit)
           .with_for_update(skip_locked=True))
    ids = list(db.session.scalars(due))
    if ids:
        db.session.execute(update(OutboxMail).where(OutboxMail.id.in_(ids)).values(lease_until=now + lease),
                           execution_options={"synchronize_session": False})
    db.session.commit()
    return ids


def _scrub(text: str, settings: SmtpSettings) -> str:
    if settings.password:
        text = text.replace(settings.password, "[redacted]")
    return text[:1000]


class _Batch:
    """The claimed mails of one run and the writes that record what happened to each."""

    def __init__(self, now: datetime, settings: SmtpSettings, lease: timedelta) -> None:
        self.now, self.settings, self.lease = now, settings, lease
        self._t0 = time.monotonic()
        self._renewed = self._t0
        self.result = DeliveryResult()
        self._conn: Connection | None = None

    def clock(self) -> datetime:
        """`now` moved on by the time this batch has taken (a slow server must not backdate results)."""
        return self.now + timedelta(seconds=time.monotonic() - self._t0)

    def _write(self) -> None:
        begin_write()

    def _marks(self) -> Connection:
        """The batch's own connection for "sent" marks: one short UPDATE and COMMIT per mail, without the
        ORM session's flush machinery (which cost more than sending the mail)."""
        if self._conn is None:
            self._conn = db.engine.connect()
            if self._conn.dialect.name == "postgresql":
                # Not waiting for each mark to reach the disk: only a crash of the database server itself (not
                # of this process) can lose the last marks, and then those mails go again with their own
                # Message-IDs. Waiting made the flush, not the mail, the cost of a delivery.
                self._conn.exec_driver_sql("SET synchronous_commit TO OFF")
                self._conn.commit()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            if self._conn.dialect.name == "postgresql":
                self._conn.rollback()
                self._conn.exec_driver_sql("RESET synchronous_commit")
                self._conn.commit()
            self._conn.close()
            self._conn = None

    def sent(self, mail_id: int, keep_params: dict[str, object] | None = None) -> None:
        conn = self._marks()
        # A one-time link's token goes with the mail and is not kept (notify.without_secret).
        scrub = {"params": keep_params} if keep_params is not None else {}
        conn.execute(update(OutboxMail).where(OutboxMail.id == mail_id).values(
            status="sent", sent_at=self.clock(), lease_until=None, last_error=None, **scrub))
        conn.commit()
        self.result.sent += 1

    def temporary(self, mail: OutboxMail, error: str) -> None:
        attempts = mail.attempts + 1
        at = self.clock()
        retry_at = next_attempt(attempts, at, mail.message_id)
        if retry_at is None:
            self.failed(mail, f"gave up after {attempts} attempts: {error}", attempts)
            return
        self._write()
        db.session.execute(update(OutboxMail).where(OutboxMail.id == mail.id).values(
            attempts=attempts, next_attempt_at=retry_at, lease_until=None, last_error=_scrub(error, self.settings)),
            execution_options={"synchronize_session": False})
        db.session.commit()
        self.result.retried += 1

    def failed(self, mail: OutboxMail, error: str, attempts: int | None = None) -> None:
        attempts = mail.attempts + 1 if attempts is None else attempts
        error = _scrub(error, self.settings)
        self._write()
        db.session.execute(update(OutboxMail).where(OutboxMail.id == mail.id).values(
            status="failed", attempts=attempts, lease_until=None, last_error=error),
            execution_options={"synchronize_session": False})
        if mail.kind != "delivery_failed":  # an admin's own failure notice failing must not start a chain
            notify.notify_staff("delivery_failed", {"mail_id": mail.id, "to": mail.to_address, "kind": mail.kind,
                                                    "error": error, "attempts": attempts},
                                now=self.clock(), dedupe_key=f"delivery_failed:{mail.id}", link="/admin/mail/outbox")
        db.session.commit()
        self.result.failed += 1
        log.warning("mail %s (%s) failed: %s", mail.id, mail.kind, error)

    def release(self, ids: list[int]) -> None:
        """Give back mails not tried: due again at once, no attempt counted."""
        if not ids:
            return
        self._write()
        db.session.execute(update(OutboxMail).where(OutboxMail.id.in_(ids), OutboxMail.status == "pending")
                           .values(lease_until=None), execution_options={"synchronize_session": False})
        db.session.commit()
        self.result.released += len(ids)

    def renew_due(self) -> bool:
        """Whether a third of the lease has gone since it was taken or last renewed."""
        return time.monotonic() - self._renewed >= self.lease.total_seconds() / 3

    def renew(self, ids: list[int]) -> None:
        """Keep the lease on the mails still to send while a long batch runs."""
        self._write()
        db.session.execute(update(OutboxMail).where(OutboxMail.id.in_(ids), OutboxMail.status == "pending")
                           .values(lease_until=self.clock() + self.lease),
                           execution_options={"synchronize_session": False})
        db.session.commit()
        self._renewed = time.monotonic()


def _load(ids: list[int]) -> list[OutboxMail]:
    rows = db.session.scalars(select(OutboxMail).where(OutboxMail.id.in_(ids))
                              .options(joinedload(OutboxMail.notice).joinedload(Notice.member))).unique()
    by_id = {m.id: m for m in rows}
    return [by_id[i] for i in ids if i in by_id]


def deliver_due(now: datetime, *, limit: int = 500, lease: timedelta = LEASE,
                should_stop: Callable[[], bool] | None = None, settings: SmtpSettings | None = None) -> DeliveryResult:
    """Send the mails due at `now` (at most `limit`). Needs an app context; commits as it goes.

    No FABLAB_SMTP_URL: the mails stay pending (logged once). `should_stop` is asked between mails: when it
    says yes the mail in flight is finished and the rest is given back. A malformed FABLAB_SMTP_URL raises
    ValueError naming the setting.
    """
    global _warned_no_server
    settings = settings or parse_smtp_url(current_app.config["FABLAB_SMTP_URL"])
    if settings is None:
        if not _warned_no_server:
            log.warning("FABLAB_SMTP_URL is empty: mails wait in the outbox until a mail server is set")
            _warned_no_server = True
        return DeliveryResult(skipped="no mail server (FABLAB_SMTP_URL is empty)")
    ids = claim(now, limit, lease)
    batch = _Batch(now, settings, lease)
    batch.result.claimed = len(ids)
    if not ids:
        return batch.result
    session = db.session()
    keep_expire = session.expire_on_commit
    session.expire_on_commit = False  # the loaded rows stay readable across the per-mail commits
    try:
        _send_all(batch, _load(ids), should_stop)
    finally:
        batch.close()
        session.expire_on_commit = keep_expire
        session.expire_all()  # the rows were updated behind the ORM's back
    return batch.result


def _send_all(batch: _Batch, mails: list[OutboxMail], should_stop: Callable[[], bool] | None) -> None:
    to_send: list[tuple[OutboxMail, BuiltMail]] = []
    broken: list[tuple[OutboxMail, BuildError]] = []
    for mail in mails:
        try:
            to_send.append((mail, build(mail, batch.now)))
        except BuildError as exc:
            broken.append((mail, exc))
    db.session.commit()  # end the read transaction before talking to the server
    for mail, error in broken:
        batch.failed(mail, str(error))
    if not to_send:
        return
    conn = SmtpConnection(batch.settings)
    try:
        conn.open()
    except TemporaryError as exc:
        log.warning("mail server unavailable: %s", _scrub(str(exc), batch.settings))
        for mail, _ in to_send:
            batch.temporary(mail, str(exc))
        return
    with conn:
        ids = [m.id for m, _ in to_send]
        for i, (mail, message) in enumerate(to_send):
            if should_stop is not None and should_stop():
                batch.release(ids[i:])
                return
            if batch.renew_due():
                batch.renew(ids[i:])
            try:
                conn.send(message.data, message.sender, message.recipient)
            except ConnectionLost as exc:
                batch.temporary(mail, str(exc))
                batch.release(ids[i + 1:])
                return
            except PermanentError as exc:
                batch.failed(mail, str(exc))
                continue
            except TemporaryError as exc:
                batch.temporary(mail, str(exc))
                continue
            batch.sent(mail.id, notify.without_secret(mail.params))


def outbox_counts() -> dict[str, int]:
    """How many mails are pending, sent and failed (for logs and the admin page)."""
    rows = db.session.execute(select(OutboxMail.status, func.count()).group_by(OutboxMail.status))
    return {str(status): int(n) for status, n in rows}
