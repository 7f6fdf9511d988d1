"""A queued print at its machine: offered to the bridge shortly before its booking, downloaded once with a
one-time token, and started only when the member confirms at the machine (badge at its reader, or the
kiosk beside it). Never started remotely: nothing here publishes `job/start` without that confirmation.

The web app and the worker both decide (queue, cancel, confirm at the kiosk, a cancelled booking); what
must go to the bridge is written to the job's `outbox` in the same transaction, and the worker publishes
it (`flush`, on its tick and right after answering a badge). So a message is never lost between a commit
and a publish that did not happen, and the web app needs no MQTT connection.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select, update

from devices import events as ev

from ..database import write_transaction
from ..extensions import db
from ..models import ACTIVE_STATUSES, Machine, Member
from ..models.print_jobs import AT_MACHINE, OPEN_STATES, PrintJob, PrintState
from . import bookings as booking_service
from . import notify
from .design_processing import file_store
from .lab_events import LabEvent

log = logging.getLogger("fablab.print")

OFFER_LEAD = timedelta(minutes=10)  # offered this long before its booking starts: time to download/transfer
TOKEN_VALID = timedelta(hours=2)  # a download link lives this long (and never past the booking's end)
SERVER_SRC = "fablab-server"
# An offer the bridge never answered is sent again after this: a bridge subscribes only once connected, so
# an offer published while it was away is lost (the bridge answers a repeated offer of a job it has anew).
RESEND_OFFER_AFTER = timedelta(minutes=2)
Publish = Callable[[ev.Message], None]


class StartRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class DownloadRefused(Exception):
    """403: not a valid token for this job; 410: it was valid, but is no longer (expired, used, withdrawn)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- timed job: offer what is due, withdraw what lost its booking --------------------------------------


def offer_due_jobs(now: datetime) -> int:
    """Offer each machine's next due job (its booking starts within OFFER_LEAD and has not ended) when the
    machine has no job at it; withdraw queued and offered jobs whose booking is no longer active or over."""
    offered = 0
    rows = list(db.session.scalars(select(PrintJob).where(PrintJob.state.in_([s.value for s in OPEN_STATES]))
                                   .order_by(PrintJob.position, PrintJob.id)))
    busy = {j.machine_id for j in rows if j.state in AT_MACHINE}
    for job in rows:
        b = job.booking
        if job.state in (PrintState.STARTED, PrintState.PRINTING):
            continue  # the machine says when it ends
        if b is None or b.status not in ACTIVE_STATUSES or b.end_at <= now:
            withdraw(job, "booking_ended" if b is not None and b.end_at <= now else "booking_cancelled", now)
            continue
        if (job.state == PrintState.OFFERED and job.offered_at is not None
                and now - job.offered_at >= RESEND_OFFER_AFTER):
            db.session.execute(  # the same conditional claim: one resend (and one new token) per interval
                update(PrintJob).where(PrintJob.id == job.id, PrintJob.state == PrintState.OFFERED.value,
                                       PrintJob.offered_at == job.offered_at)
                .values(offered_at=now, updated_at=now, outbox="offer").execution_options(synchronize_session=False))
            db.session.expire(job)
            continue
        if job.state == PrintState.QUEUED and job.machine_id not in busy and b.start_at - OFFER_LEAD <= now:
            # Claimed with a conditional update: several workers run the timed jobs (one offer, one token).
            claimed = db.session.execute(
                update(PrintJob).where(PrintJob.id == job.id, PrintJob.state == PrintState.QUEUED.value)
                .values(state=PrintState.OFFERED.value, offered_at=now, updated_at=now, outbox="offer")
                .execution_options(synchronize_session=False))
            busy.add(job.machine_id)
            if claimed.rowcount == 1:  # type: ignore[attr-defined]
                offered += 1
            db.session.expire(job)
    return offered


REASONS = {"booking_cancelled": "its booking was cancelled", "booking_ended": "its booking ended before it started",
           "no_show": "its booking was released (nobody checked in)"}


def withdraw(job: PrintJob, code: str, now: datetime, detail: str = "") -> None:
    """Take a job off its machine and keep it with the reason; the member is told."""
    if job.state not in OPEN_STATES or job.state in (PrintState.STARTED, PrintState.PRINTING):
        return
    if job.state in AT_MACHINE:
        job.outbox = "withdraw"
    job.state = PrintState.WITHDRAWN.value
    job.reason = REASONS.get(code, code) + (f": {detail}" if detail else "")
    job.ended_at = job.updated_at = now
    notify.notify(job.member, "print_withdrawn", {"job_id": job.id, "name": job.name, "machine": job.machine.name,
                                                  "reason": job.reason},
                  now=now, link="/print/jobs", dedupe_key=f"print_withdrawn:{job.id}")


def on_booking_event(event: LabEvent) -> None:
    """A cancelled or released booking withdraws the prints waiting for it (listener, fablab/wiring.py)."""
    if event.type not in ("booking.cancelled", "booking.no_show"):
        return
    booking_id = event.data.get("booking_id")
    code = "no_show" if event.type == "booking.no_show" else "booking_cancelled"
    for job in db.session.scalars(select(PrintJob).where(PrintJob.booking_id == booking_id,
                                                         PrintJob.state.in_([s.value for s in OPEN_STATES]))):
        withdraw(job, code, event.at, str(event.data.get("reason") or ""))


# --- the outbox: what the worker publishes ---------------------------------------------------------------


def file_url(job: PrintJob, token: str) -> str:
    # The token travels as `token=` so the request-log filter (fablab/log_redaction.py) hides it.
    return f"{current_app.config['FABLAB_BASE_URL']}/api/v1/print-jobs/{job.id}/file?token={token}"


def _message(job: PrintJob, now: datetime) -> ev.Message:
    machine = job.machine.slug
    if job.outbox == "offer":
        token = secrets.token_urlsafe(32)
        job.token_digest = token_digest(token)
        ends = job.booking.end_at if job.booking is not None else now + TOKEN_VALID
        job.token_expires_at = min(now + TOKEN_VALID, ends)
        return ev.JobOffer(machine=machine, src=SERVER_SRC, job_id=job.public_id, file_url=file_url(job, token),
                           name=job.name[:200], size=job.size, sha256=job.sha256, transfer=job.transfer)
    if job.outbox == "start":
        return ev.JobStart(machine=machine, src=SERVER_SRC, job_id=job.public_id, by=job.started_by or "member")
    return ev.JobWithdraw(machine=machine, src=SERVER_SRC, job_id=job.public_id,
                          reason=(job.reason or "")[:200] or None)


def flush(publish: Publish, now: datetime) -> int:
    """Publish every pending message, each committed before it is sent (an offer's token is stored first:
    a crash in between leaves an offer the bridge never saw, which the steward can withdraw)."""
    sent = 0
    ids = list(db.session.scalars(select(PrintJob.id).where(PrintJob.outbox.is_not(None)).order_by(PrintJob.id)))
    for job_id in ids:
        with write_transaction():
            job = db.session.scalar(select(PrintJob).where(PrintJob.id == job_id)
                                    .execution_options(populate_existing=True))
            if job is None or job.outbox is None:
                continue
            # Claimed by this flush only: the tick and a badge's answer may flush at the same moment.
            claimed = db.session.execute(update(PrintJob).where(PrintJob.id == job_id, PrintJob.outbox == job.outbox)
                                         .values(outbox=None).execution_options(synchronize_session=False))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            msg = _message(job, now)
            job.outbox = None
        publish(msg)
        sent += 1
    return sent


# --- the bridge's one-time download ---------------------------------------------------------------------


def download(job_id: int, token: str, now: datetime) -> tuple[PrintJob, Path]:
    """The file for a valid token of an offered job: while it is offered or transferring (retries), never
    after it is ready, withdrawn or past the link's expiry."""
    job = db.session.get(PrintJob, job_id)
    if job is None or not token or job.token_digest is None:
        raise DownloadRefused(403, "Not a download link of this job.")
    if not hmac.compare_digest(job.token_digest, token_digest(token)):
        raise DownloadRefused(403, "Not a download link of this job.")
    if job.state not in (PrintState.OFFERED, PrintState.TRANSFERRING):
        raise DownloadRefused(410, f"This print is {job.state}; its download link is used up.")
    if job.token_expires_at is None or now >= job.token_expires_at:
        raise DownloadRefused(410, "This download link expired.")
    with write_transaction():
        job.downloaded_at = job.downloaded_at or now
    return job, file_store().path(job.storage_key)


# --- the member at the machine ----------------------------------------------------------------------------


def ready_jobs(member: Member, machine: Machine) -> list[PrintJob]:
    return list(db.session.scalars(select(PrintJob).where(
        PrintJob.member_id == member.id, PrintJob.machine_id == machine.id,
        PrintJob.state == PrintState.READY.value).order_by(PrintJob.id)))


def confirm_start(job: PrintJob, member: Member, via: str, now: datetime) -> PrintJob:
    """The member, at the machine, checked the bed: the bridge may start the print. Only their own job,
    only when the bridge said it is ready, only during its booking."""
    if job.member_id != member.id:
        raise StartRefused(403, "Only the member who queued this print can start it.")
    if job.state != PrintState.READY:
        what = {"queued": "is still waiting for its booking", "offered": "is still being sent to the printer",
                "transferring": "is still being sent to the printer"}.get(job.state, f"is {job.state}")
        raise StartRefused(409, f"This print {what}.")
    b = job.booking
    # From when the member may check in (the badge does it 15 min early), until the booking ends.
    if (b is None or b.status not in ACTIVE_STATUSES or b.end_at <= now
            or min(b.start_at - OFFER_LEAD, booking_service.checkin_window(b)[0]) > now):
        raise StartRefused(409, "Start your print during your booking.")
    job.state = PrintState.STARTED.value
    job.started_by = via
    job.outbox = "start"
    job.updated_at = now
    return job


def start_on_badge(machine: Machine, member: Member, now: datetime) -> str:
    """An allowed badge at the machine's reader starts the member's ready print there (the badge is the
    confirmation). Returns words for the reader's answer, or ''. Runs in the caller's transaction."""
    jobs = ready_jobs(member, machine)
    if not jobs:
        return ""
    try:
        confirm_start(jobs[0], member, "badge", now)
    except StartRefused as exc:
        return f" {exc.message}"
    return f" Starting your print {jobs[0].name}."
