"""Print pages. Views are thin: fablab/services/print_queue.py holds the rules; a refusal is shown in the page
where the member acted (the one error partial), with a 4xx status."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for

from ...auth import login_required, steward_required
from ...domain import bounded
from ...models import Machine
from ...models.types import utcnow
from ...services import machines as machine_service
from ...services import print_queue as svc
from ..bookings.refusals import Action, Refusal
from . import bp


def _refusal(exc: svc.PrintRefused) -> Refusal:
    r = Refusal(exc.code, [m.message for m in exc.misfits] or [exc.message])
    if exc.misfits:
        r.notes.append("Slice the design again with that printer's profile, or choose a printer that fits.")
    r.actions.append(Action("My print jobs", url_for("print_queue.mine"), method="get"))
    return r


def _booking_choice() -> int | None:
    """The form's booking: an id, or "next" for the next free time (None)."""
    raw = (request.form.get("booking") or "next").strip()
    if raw == "next":
        return None
    try:
        return bounded.parse_id(raw, "booking")
    except bounded.InputError:
        raise svc.PrintRefused(422, "booking", "Choose one of your bookings or the next free time.") from None


def _machine_from_form() -> Machine:
    try:
        return machine_service.machine_by_slug((request.form.get("machine") or "").strip())
    except machine_service.NotFound:
        raise svc.PrintRefused(422, "machine", "Choose a printer.") from None


@bp.get("/files/<id:file_id>")
@login_required
def print_on(file_id: int) -> Any:
    try:
        source = svc.design_source(file_id)
    except svc.PrintRefused as exc:
        return render_template("print_queue/print_on.html", source=None, options=[], refusal=_refusal(exc),
                               file_id=file_id), exc.status
    return render_template("print_queue/print_on.html", source=source, file_id=file_id,
                           options=svc.options_for(g.member, source.meta, utcnow()), slot_label=svc.slot_label)


@bp.post("/files/<id:file_id>/queue")
@login_required
def queue_design_file(file_id: int) -> Any:
    now = utcnow()
    source = None
    try:
        source = svc.design_source(file_id)
        job = svc.queue_job(g.member, _machine_from_form(), source, booking_id=_booking_choice(), now=now)
    except svc.PrintRefused as exc:
        options = svc.options_for(g.member, source.meta, now) if source else []
        return render_template("print_queue/print_on.html", source=source, file_id=file_id, options=options,
                               refusal=_refusal(exc), slot_label=svc.slot_label), exc.status
    flash(f"{job.name} is queued on {job.machine.name} for {svc.slot_label(job.booking)}. Start it at the "
          "printer with your badge (or the kiosk) once you checked the bed.", "ok")
    return redirect(url_for("print_queue.mine"))


def _upload_page(refusal: Refusal | None = None, status: int = 200) -> Any:
    now = utcnow()
    printers = [m for m in machine_service.list_machines() if svc.is_printer(m) and not svc.may_use(g.member, m, now)]
    bookings = {m.id: svc.open_bookings(g.member, m, now) for m in printers}
    return render_template("print_queue/upload.html", printers=printers, bookings=bookings, refusal=refusal,
                           slot_label=svc.slot_label), status


@bp.get("/upload")
@login_required
def upload() -> Any:
    return _upload_page()


@bp.post("/upload")
@login_required
def upload_post() -> Any:
    """Own upload: stored, measured and queued in one step; refused files are not kept."""
    file = request.files.get("file")
    if file is None or not file.filename:
        return _upload_page(Refusal.simple("no_file", "Choose a G-code file to print."), 422)
    source = None
    try:
        machine = _machine_from_form()
        booking_id = _booking_choice()
        source = svc.upload_source(file.filename, file.stream)
        job = svc.queue_job(g.member, machine, source, booking_id=booking_id, now=utcnow())
    except svc.PrintRefused as exc:
        if source is not None:
            svc.discard(source)
        return _upload_page(_refusal(exc), exc.status)
    flash(f"{job.name} is queued on {job.machine.name} for {svc.slot_label(job.booking)}.", "ok")
    return redirect(url_for("print_queue.mine"))


@bp.get("/jobs")
@login_required
def mine() -> Any:
    return render_template("print_queue/mine.html", jobs=svc.member_jobs(g.member), slot_label=svc.slot_label)


def _job(job_id: int) -> Any:
    job = svc.get_job(job_id)
    if job is None or not svc.can_manage(g.member, job):
        abort(404, "There is no such print job of yours.")
    return job


@bp.post("/jobs/<id:job_id>/cancel")
@login_required
def cancel(job_id: int) -> Any:
    job = _job(job_id)
    try:
        svc.cancel_job(job, g.member, request.form.get("reason", ""), now=utcnow())
    except svc.PrintRefused as exc:
        if g.member.is_staff and job.member_id != g.member.id:
            return _queue_page(job.machine, _refusal(exc), exc.status)
        return render_template("print_queue/mine.html", jobs=svc.member_jobs(g.member), refusal=_refusal(exc),
                               slot_label=svc.slot_label), exc.status
    flash(f"Cancelled {job.name} on {job.machine.name}.", "ok")
    if g.member.is_staff and request.form.get("back") == "queue":
        return redirect(url_for("print_queue.machine_queue", slug=job.machine.slug))
    return redirect(url_for("print_queue.mine"))


def _queue_page(machine: Machine, refusal: Refusal | None = None, status: int = 200) -> Any:
    return render_template("print_queue/queue.html", machine=machine, jobs=svc.machine_queue(machine),
                           history=svc.machine_history(machine), refusal=refusal, slot_label=svc.slot_label), status


@bp.get("/machines/<slug>")
@steward_required
def machine_queue(slug: str) -> Any:
    try:
        machine = machine_service.machine_by_slug(slug)
    except machine_service.NotFound:
        abort(404, "There is no such machine.")
    return _queue_page(machine)


@bp.get("/machines")
@steward_required
def queues() -> Any:
    printers = [m for m in machine_service.list_machines() if svc.is_printer(m)]
    return render_template("print_queue/queues.html", printers=printers, queue_of=svc.machine_queue)


@bp.post("/jobs/<id:job_id>/move")
@steward_required
def move(job_id: int) -> Any:
    job = _job(job_id)
    try:
        svc.move(job, g.member, request.form.get("direction", ""), now=utcnow())
    except svc.PrintRefused as exc:
        return _queue_page(job.machine, _refusal(exc), exc.status)
    return redirect(url_for("print_queue.machine_queue", slug=job.machine.slug))
