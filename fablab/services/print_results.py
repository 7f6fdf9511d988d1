"""What a bridge reports about a print it was offered: transfer progress, its result (ready, started,
failed, withdrawn), and the machine's own job_started/job_finished events naming the job (`detail.job_id`).

Called by the worker's ingest inside its batch transaction, for messages already deduplicated (msg_id) and
checked against the bridge's machines; a report for a job of another machine, or an unknown job, is
ignored (and logged), never an error that stops the batch. A finished print of a design writes the
design's "made here" record with the machine, the time, the filament from the file and the progress.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from devices import events as ev

from ..extensions import db
from ..models.designs import Design, DesignMade
from ..models.print_jobs import ENDED_STATES, PrintJob, PrintState
from . import notify

log = logging.getLogger("fablab.print")

_FINISHED_OK = ("done", "finished", "complete", "completed")


def _job(machine_id: int, job_id: object) -> PrintJob | None:
    if not isinstance(job_id, str) or not job_id.startswith("pj-") or not job_id[3:].isdigit():
        return None
    job = db.session.get(PrintJob, int(job_id[3:]))
    if job is None or job.machine_id != machine_id:
        log.warning("report for print %s that is not a job of this machine; ignored", job_id[:40])
        return None
    return job


def on_progress(machine_id: int, msg: ev.JobProgress, now: datetime) -> None:
    job = _job(machine_id, msg.job_id)
    if job is None or job.state in ENDED_STATES:
        return
    job.phase = msg.phase[:12]
    job.progress = round(min(1.0, max(0.0, msg.done / msg.total)), 4) if msg.total > 0 else None
    if msg.phase in ("download", "transfer") and job.state == PrintState.OFFERED:
        job.state = PrintState.TRANSFERRING.value
    job.updated_at = now


def on_result(machine_id: int, msg: ev.JobResult, now: datetime) -> None:
    job = _job(machine_id, msg.job_id)
    if job is None:
        return
    if msg.result == "ready" and job.state in (PrintState.OFFERED, PrintState.TRANSFERRING):
        job.state = PrintState.READY.value
        job.ready_at = job.updated_at = now
        job.phase, job.progress = "transfer", 1.0
        notify.notify(job.member, "print_ready", {"job_id": job.id, "name": job.name, "machine": job.machine.name},
                      now=now, link="/print/jobs", dedupe_key=f"print_ready:{job.id}")
    elif msg.result == "started" and job.state in (PrintState.READY, PrintState.STARTED):
        job.state = PrintState.PRINTING.value
        job.started_at = job.started_at or now
        job.updated_at = now
    elif msg.result == "failed" and job.state not in ENDED_STATES:
        fail(job, msg.reason or "the bridge gave no reason", now)
    elif msg.result == "withdrawn":
        job.updated_at = now  # the bridge dropped it on our word: the job keeps its reason


def fail(job: PrintJob, reason: str, now: datetime) -> None:
    """Keep the job with the reason; the member is told."""
    job.state = PrintState.FAILED.value
    job.reason = reason[:500]
    job.ended_at = job.updated_at = now
    notify.notify(job.member, "print_failed", {"job_id": job.id, "name": job.name, "machine": job.machine.name,
                                               "reason": job.reason, "phase": job.phase},
                  now=now, link="/print/jobs", dedupe_key=f"print_failed:{job.id}")


def on_machine_event(machine_id: int, msg: ev.MachineEvent, now: datetime) -> None:
    """job_started / job_finished with `detail.job_id`: the print runs, and ends done or failed."""
    detail: dict[str, Any] = msg.detail or {}
    job = _job(machine_id, detail.get("job_id"))
    if job is None or job.state in ENDED_STATES:
        return
    if msg.type == "job_started":
        job.state = PrintState.PRINTING.value
        job.started_at = job.started_at or now
        job.phase, job.progress = "print", 0.0
        job.updated_at = now
    elif msg.type == "job_finished":
        reason = (msg.reason or "done").lower()
        if reason in _FINISHED_OK:
            job.state = PrintState.DONE.value
            job.phase, job.progress = "print", 1.0
            job.ended_at = job.updated_at = now
            _made_here(job, now)
        else:
            fail(job, f"the print stopped at the machine ({reason})", now)


def _made_here(job: PrintJob, now: datetime) -> None:
    f = job.design_file
    if f is None:
        return  # the member's own upload: no design to credit
    design_id = f.version.design_id
    meta = job.meta or {}
    parts = [f"printed from the queue: {job.name}"]
    if meta.get("filament_g"):
        parts.append(f"{meta['filament_g']:g} g filament")
    if meta.get("filament_mm"):
        parts.append(f"{meta['filament_mm'] / 1000:.2f} m")
    parts.append(f"{round((job.progress or 0) * 100)} % reached")
    try:
        with db.session.begin_nested():  # one record per design and booking: a second print of it is not two
            db.session.add(DesignMade(design_id=design_id, version_id=f.version_id, booking_id=job.booking_id,
                                      machine_id=job.machine_id, member_id=job.member_id,
                                      note=", ".join(parts)[:255], made_at=now))
            db.session.flush()
    except IntegrityError:
        return
    db.session.execute(update(Design).where(Design.id == design_id).values(made_count=Design.made_count + 1))
