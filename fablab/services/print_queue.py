"""Print queues: which printers a G-code file may go to, queueing it for a booking, and the queue itself.

A file (a design's G-code file or the member's own upload) is measured once (slicer estimates from
fablab.domain.gcode_meta, extent/flavour/nozzle/material from fablab.domain.print_fit.scan); "Print on…"
lists the printers the member may use with why each does or does not fit; queueing binds the job to one of
the member's bookings of that printer, or books the next free time through the booking core. What happens
at the machine (offer, download, start) is fablab.services.print_offers; what the bridge reports back is
fablab.services.print_results.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ..database import write_transaction
from ..domain import audit_actions, print_fit
from ..domain import policy as pol
from ..domain.gcode_meta import gcode_meta
from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, Machine, Member
from ..models.designs import DesignFile
from ..models.print_jobs import AT_MACHINE, OPEN_STATES, PrinterProfile, PrintJob, PrintState
from . import audit, find_time, notify
from . import bookings as booking_service
from . import machines as machine_service
from .design_processing import file_store
from .file_store import Readable, UploadTooLarge

PRINTER_TYPES = frozenset({"3d_printer"})  # types whose machines take prints without a profile
DEFAULT_TRANSFER = {"3d_printer": "sd"}  # how a type's bridge takes a file unless its profile says
TRANSFERS = ("sd", "stream", "octoprint", "moonraker")
MARGIN = timedelta(minutes=15)  # booked on top of the slicer's estimate (heating, bed check, removal)
UNKNOWN_LENGTH = timedelta(hours=1)  # when the file has no estimate
GCODE_EXTS = (".gcode", ".gco", ".g")


class PrintRefused(Exception):
    """A refused request: `status` for HTTP, `code` stable for the API, `message` for people; `misfits` when
    the file does not fit the printer."""

    def __init__(self, status: int, code: str, message: str,
                 misfits: list[print_fit.Misfit] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.misfits = misfits or []


# --- the file -----------------------------------------------------------------------------------------


def measure(path: Path) -> dict[str, Any]:
    """Everything the queue keeps about a G-code file: the slicer's estimates and the fit scan."""
    est = gcode_meta(path)
    with path.open("rb") as fh:
        fit = print_fit.scan(iter(lambda: fh.read(1 << 20), b""))
    out: dict[str, Any] = {k: v for k, v in asdict(est).items() if v is not None}
    if fit.extent is not None:
        out["extent"] = asdict(fit.extent)
        out["size_mm"] = list(fit.extent.size)
    out |= {k: v for k, v in (("flavour", fit.flavour), ("nozzle_mm", fit.nozzle_mm),
                              ("material", fit.material)) if v is not None}
    if est.flavor and "flavour" not in out:
        out["flavour_name"] = est.flavor
    return out


def print_file(meta: dict[str, Any]) -> print_fit.PrintFile:
    ext = meta.get("extent")
    return print_fit.PrintFile(extent=print_fit.Extent(**ext) if isinstance(ext, dict) else None,
                               flavour=meta.get("flavour"), nozzle_mm=meta.get("nozzle_mm"),
                               material=meta.get("material"))


@dataclass
class Source:
    """Where a job's bytes are: a design file (shared, read only) or the member's own upload."""

    name: str
    storage_key: str
    size: int
    sha256: str
    meta: dict[str, Any]
    design_file: DesignFile | None = None


def design_source(design_file_id: int) -> Source:
    f = db.session.get(DesignFile, design_file_id)
    if f is None:
        raise PrintRefused(404, "not_found", "There is no such design file.")
    if f.kind != "gcode":
        raise PrintRefused(422, "not_gcode", f"{f.name} is not a G-code file: slice it first, then upload the "
                                             "G-code to the design or print your own upload.")
    return Source(f.name, f.storage_key, f.size, f.sha256, measure(file_store().path(f.storage_key)), f)


def upload_source(name: str, stream: Readable) -> Source:
    """Store the member's own G-code file (generated name, size limit) and measure it; refused files are
    deleted again."""
    from ..domain.filetypes import safe_display_name

    shown = safe_display_name(name or "upload.gcode")
    if not shown.lower().endswith(GCODE_EXTS):
        raise PrintRefused(422, "not_gcode", f"{shown}: send a G-code file (.gcode) sliced for the printer.")
    store = file_store()
    try:
        stored = store.save(stream)
    except UploadTooLarge as exc:
        raise PrintRefused(413, "too_large", f"{shown}: {exc}") from None
    try:
        meta = measure(stored.path)
    except Exception as exc:  # noqa: BLE001 - a file we cannot read is refused, and nothing is kept
        store.delete(stored.key)
        raise PrintRefused(422, "file_refused", f"{shown}: {exc}") from None
    return Source(shown, stored.key, stored.size, stored.sha256, meta)


def discard(source: Source) -> None:
    if source.design_file is None:
        file_store().delete(source.storage_key)


# --- printers -------------------------------------------------------------------------------------------


def profile(machine: Machine) -> PrinterProfile | None:
    return db.session.get(PrinterProfile, machine.id)


def is_printer(machine: Machine) -> bool:
    return machine.machine_type.slug in PRINTER_TYPES or profile(machine) is not None


def printer_of(machine: Machine) -> print_fit.Printer:
    p = profile(machine)
    if p is None:
        firmware = "marlin" if machine.machine_type.slug in PRINTER_TYPES else None
        return print_fit.Printer(machine.name, firmware=firmware)
    return print_fit.Printer(machine.name, p.build_x_mm, p.build_y_mm, p.build_z_mm, p.firmware, p.nozzle_mm,
                             tuple(p.materials.split()))


def transfer_of(machine: Machine) -> str:
    p = profile(machine)
    return p.transfer if p is not None else DEFAULT_TRANSFER.get(machine.machine_type.slug, "stream")


def set_profile(machine: Machine, *, build_mm: tuple[float | None, float | None, float | None] = (None, None, None),
                firmware: str = "marlin", nozzle_mm: float | None = None, materials: str = "",
                transfer: str | None = None) -> PrinterProfile:
    """A machine's print side (admin settings, the demo and tests); the caller commits."""
    if firmware not in print_fit.FIRMWARES:
        raise PrintRefused(422, "firmware", f"Firmware must be one of {', '.join(print_fit.FIRMWARES)}.")
    transfer = transfer or DEFAULT_TRANSFER.get(machine.machine_type.slug, "stream")
    if transfer not in TRANSFERS:
        raise PrintRefused(422, "transfer", f"Transfer must be one of {', '.join(TRANSFERS)}.")
    p = profile(machine) or PrinterProfile(machine_id=machine.id)
    p.build_x_mm, p.build_y_mm, p.build_z_mm = build_mm
    p.firmware, p.nozzle_mm, p.materials, p.transfer = firmware, nozzle_mm, materials, transfer
    db.session.add(p)
    return p


def may_use(member: Member, machine: Machine, now: datetime) -> str | None:
    """Why the member may not use the machine (the booking core's member rules), or None."""
    if machine.status != "available":
        return f"{machine.name} is out of order."
    policy = booking_service.policy_for(machine)
    if policy.qualification_required and not machine_service.qualification_state(member, machine, now).qualified:
        return f"You are not qualified for {machine.name}: ask a steward about an induction."
    return None


@dataclass
class PrinterOption:
    machine: Machine
    misfits: list[print_fit.Misfit]
    refusal: str | None  # why the member may not use it at all
    bookings: list[Booking] = field(default_factory=list)  # the member's bookings there that can take the job

    @property
    def usable(self) -> bool:
        return not self.misfits and self.refusal is None


def open_bookings(member: Member, machine: Machine, now: datetime) -> list[Booking]:
    """The member's bookings of the machine that have not ended and hold no open print yet."""
    taken = select(PrintJob.booking_id).where(PrintJob.booking_id.is_not(None),
                                              PrintJob.state.in_([s.value for s in OPEN_STATES]))
    return list(db.session.scalars(select(Booking).where(
        Booking.member_id == member.id, Booking.machine_id == machine.id, Booking.end_at > now,
        Booking.status.in_([s.value for s in ACTIVE_STATUSES]), Booking.kind == "normal",
        Booking.id.not_in(taken)).order_by(Booking.start_at)))


def options_for(member: Member, meta: dict[str, Any], now: datetime) -> list[PrinterOption]:
    """Every printer, fitting ones the member may use first, each with the member's bookings there."""
    f = print_file(meta)
    out = []
    for m in machine_service.list_machines():
        if not is_printer(m):
            continue
        refusal = may_use(member, m, now)
        out.append(PrinterOption(m, print_fit.misfits(f, printer_of(m)), refusal,
                                 open_bookings(member, m, now) if refusal is None else []))
    out.sort(key=lambda o: (not o.usable, o.machine.name))
    return out


# --- queueing -----------------------------------------------------------------------------------------


def booking_length(meta: dict[str, Any], machine: Machine) -> timedelta:
    """The slicer's estimate plus a margin, on the machine's slot grid, within its longest booking."""
    policy = booking_service.policy_for(machine)
    est = meta.get("print_time_s")
    wanted = timedelta(seconds=int(est)) + MARGIN if isinstance(est, int | float) else UNKNOWN_LENGTH
    slot = policy.slot
    slots = math.ceil(wanted / slot)
    return max(policy.min_length, slot * slots)


def _next_position(machine_id: int) -> int:
    top = db.session.scalar(select(func.max(PrintJob.position)).where(
        PrintJob.machine_id == machine_id, PrintJob.state.in_([s.value for s in OPEN_STATES])))
    return (top or 0) + 1


def _book_next_free(member: Member, machine: Machine, length: timedelta, now: datetime) -> Booking:
    policy = booking_service.policy_for(machine)
    if length > policy.max_length:
        raise PrintRefused(422, "print_too_long",
                           f"The print needs about {_hm(length)} with setup; {machine.name} can be booked for at "
                           f"most {_hm(policy.max_length)}. Ask a steward to book a longer slot for you.")
    minutes = int(length.total_seconds() // 60)
    found = find_time.find(member, f"machine:{machine.slug}", minutes, None, now, limit=1)
    if not found.slots:
        why = found.excluded[0][1] if found.excluded else "no free time within the booking horizon"
        raise PrintRefused(409, "no_free_time", f"{machine.name} has no free {_hm(length)} for you: {why}")
    slot = found.slots[0]
    try:
        return booking_service.create_booking(member, machine, slot.start, slot.end, source="web",
                                              note="print queue", now=now)
    except booking_service.BookingRejected as exc:
        raise PrintRefused(exc.status, exc.code, exc.message) from None


def _hm(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def queue_job(member: Member, machine: Machine, source: Source, *, booking_id: int | None, now: datetime) -> PrintJob:
    """Queue `source` on `machine` for the member's booking `booking_id`, or (None) for the next free time,
    which is booked now. Refusals say why: not a printer, not qualified, does not fit, no such booking."""
    if not is_printer(machine):
        raise PrintRefused(422, "not_a_printer", f"{machine.name} is not set up to receive prints.")
    refusal = may_use(member, machine, now)
    if refusal:
        raise PrintRefused(403, "not_allowed", refusal)
    misfits = print_fit.misfits(print_file(source.meta), printer_of(machine))
    if misfits:
        raise PrintRefused(422, misfits[0].code, " ".join(m.message for m in misfits), misfits)
    booking: Booking | None
    if booking_id is None:
        booking = _book_next_free(member, machine, booking_length(source.meta, machine), now)
    else:
        booking = next((b for b in open_bookings(member, machine, now) if b.id == booking_id), None)
        if booking is None:
            raise PrintRefused(422, "booking", f"Choose one of your coming bookings of {machine.name} that has no "
                                               "print yet, or the next free time.")
    with write_transaction():
        job = PrintJob(member_id=member.id, machine_id=machine.id, booking_id=booking.id,
                       design_file_id=source.design_file.id if source.design_file else None, name=source.name,
                       storage_key=source.storage_key, own_upload=source.design_file is None, size=source.size,
                       sha256=source.sha256, meta=source.meta, state=PrintState.QUEUED.value,
                       position=_next_position(machine.id), transfer=transfer_of(machine), created_at=now,
                       updated_at=now)
        db.session.add(job)
    return job


# --- the queue -----------------------------------------------------------------------------------------


def get_job(job_id: int) -> PrintJob | None:
    return db.session.get(PrintJob, job_id)


def member_jobs(member: Member, limit: int = 100) -> list[PrintJob]:
    return list(db.session.scalars(select(PrintJob).where(PrintJob.member_id == member.id)
                                   .order_by(PrintJob.created_at.desc(), PrintJob.id.desc()).limit(limit)))


def machine_queue(machine: Machine) -> list[PrintJob]:
    """The machine's open jobs in queue order (the one at the machine first)."""
    rows = db.session.scalars(select(PrintJob).where(
        PrintJob.machine_id == machine.id, PrintJob.state.in_([s.value for s in OPEN_STATES]))
        .order_by(PrintJob.position, PrintJob.id))
    return sorted(rows, key=lambda j: (j.state not in AT_MACHINE, j.position, j.id))


def machine_history(machine: Machine, limit: int = 20) -> list[PrintJob]:
    return list(db.session.scalars(select(PrintJob).where(
        PrintJob.machine_id == machine.id, PrintJob.state.not_in([s.value for s in OPEN_STATES]))
        .order_by(PrintJob.updated_at.desc()).limit(limit)))


def can_manage(actor: Member, job: PrintJob) -> bool:
    return job.member_id == actor.id or actor.is_staff


def cancel_job(job: PrintJob, actor: Member, reason: str = "", *, now: datetime) -> PrintJob:
    """The member cancels their own job, a steward anyone's (with a reason). A job already at the machine is
    withdrawn there too; a running print is stopped at the machine, not from here."""
    if not can_manage(actor, job):
        raise PrintRefused(403, "not_yours", "Only the member who queued this print or a steward can cancel it.")
    reason = (reason or "").strip()[:255]
    if job.member_id != actor.id and not reason:
        raise PrintRefused(422, "reason_required", "Say why you cancel someone else's print.")
    with write_transaction():
        db.session.refresh(job)
        if job.state in (PrintState.STARTED, PrintState.PRINTING):
            raise PrintRefused(409, "running", "This print is running: stop it at the machine.")
        if job.state not in OPEN_STATES:
            raise PrintRefused(409, "ended", f"This print is already {job.state}.")
        if job.state in AT_MACHINE:
            job.outbox = "withdraw"
        job.state = PrintState.CANCELLED.value
        job.reason = reason or "cancelled by the member"
        job.ended_at = job.updated_at = now
        if job.member_id != actor.id:  # a steward's cancel: the member is told, and it is on the audit log
            job.reason = f"cancelled by a steward: {reason}"
            notify.notify(job.member, "print_withdrawn", {"job_id": job.id, "name": job.name,
                                                          "machine": job.machine.name, "reason": job.reason},
                          now=now, link="/print/jobs", dedupe_key=f"print_withdrawn:{job.id}")
            audit.record(actor, audit_actions.PRINT_CANCELLED_FOR, target=job.member, now=now,
                         detail={"job": job.id, "file": job.name, "machine": job.machine.slug, "reason": reason})
    return job


def move(job: PrintJob, actor: Member, direction: str, *, now: datetime) -> None:
    """A steward moves a waiting job one place up or down in its machine's queue."""
    if not actor.is_staff:
        raise PrintRefused(403, "stewards_only", "Only stewards reorder a machine's queue.")
    if direction not in ("up", "down"):
        raise PrintRefused(422, "direction", "Move a job up or down.")
    with write_transaction():
        db.session.refresh(job)
        if job.state != PrintState.QUEUED:
            raise PrintRefused(409, "not_waiting", "Only waiting jobs can be moved; this one is at the machine.")
        waiting = [j for j in machine_queue(job.machine) if j.state == PrintState.QUEUED]
        i = next(i for i, j in enumerate(waiting) if j.id == job.id)
        k = i - 1 if direction == "up" else i + 1
        if not 0 <= k < len(waiting):
            return
        for n, j in enumerate(_swapped(waiting, i, k)):
            j.position = n + 1
            j.updated_at = now


def _swapped(jobs: list[PrintJob], i: int, k: int) -> Iterator[PrintJob]:
    jobs = list(jobs)
    jobs[i], jobs[k] = jobs[k], jobs[i]
    yield from jobs


def slot_label(b: Booking | None) -> str:
    if b is None:
        return "no booking"
    tz = booking_service.lab_tz()
    start, end = b.start_at.astimezone(tz), b.end_at.astimezone(tz)
    return f"{start:%a %d %b %H:%M}–{end:%H:%M}"


def ceil_slot(machine: Machine, t: datetime) -> datetime:
    return pol.ceil_to_slot(booking_service.policy_for(machine), t, booking_service.lab_tz())
