"""Starting a print at the kiosk beside the printer: the member panel lists the member's prints that are
ready on their printer (fablab.services.print_offers); "Start my print — I checked the bed" is the member's
confirmation at the machine, the only way besides the badge at the printer's reader that a print starts."""

from __future__ import annotations

from typing import Any

from flask import abort, request

from ...database import write_transaction
from ...models import Member
from ...models.print_jobs import PrintJob, PrintState
from ...models.types import utcnow
from ...services import print_offers
from ...services import print_queue as queue_service
from . import bp
from .routes import _done, _member_or_identify, _panel, kiosk_required


@bp.app_context_processor
def _print_helpers() -> dict[str, Any]:
    def ready_prints(member: Member) -> list[PrintJob]:
        from sqlalchemy import select

        from ...extensions import db

        return list(db.session.scalars(select(PrintJob).where(
            PrintJob.member_id == member.id, PrintJob.state == PrintState.READY.value).order_by(PrintJob.id)))

    return {"ready_prints": ready_prints}


@bp.post("/print-jobs/<id:job_id>/start")
@kiosk_required
def print_start(job_id: int) -> Any:
    member = _member_or_identify()
    job = queue_service.get_job(job_id)
    if job is None or job.member_id != member.id:
        abort(404, "There is no such print of yours.")
    if request.form.get("bed_checked") != "yes":
        return _panel(member, error="Check the printer's bed first (empty and clean), then tick the box."), 422
    try:
        with write_transaction():
            print_offers.confirm_start(job, member, "kiosk", utcnow())
    except print_offers.StartRefused as exc:
        return _panel(member, error=exc.message), exc.status
    return _done(f"Starting {job.name} on {job.machine.name}. Stay by the printer for the first layer.")
