"""Print jobs over the API: your jobs (stewards: a machine's queue), queue a design's G-code file, cancel;
and the bridge's one-time download of an offered job's file (the token in the offer is its only key)."""

from __future__ import annotations

from typing import Any

from flask import request, send_file

from ..auth import public
from ..domain.input_schema import Body, Field
from ..extensions import db
from ..models.print_jobs import PrintJob
from ..models.types import utcnow
from ..services import machines as machine_service
from ..services import print_offers
from ..services import print_queue as svc
from . import bp
from .common import api_member, fail, iso, json_body, ok, token_required
from .openapi import document, p, q

CREATE = Body((
    Field("design_file_id", "id", required=True, description="a G-code file of a design version"),
    Field("machine", required=True, max_length=60, description="the printer's slug"),
    Field("booking_id", "id", description="one of your coming bookings of that printer; absent: the next free "
                                          "time is booked for you"),
))
CANCEL = Body((Field("reason", max_length=255, description="required when cancelling someone else's job"),))


def job_json(j: PrintJob) -> dict[str, Any]:
    return {"id": j.id, "job_id": j.public_id, "name": j.name, "machine": j.machine.slug, "member_id": j.member_id,
            "design_file_id": j.design_file_id, "booking_id": j.booking_id, "state": j.state, "position": j.position,
            "reason": j.reason, "phase": j.phase, "progress": j.progress, "size": j.size, "sha256": j.sha256,
            "transfer": j.transfer, "meta": j.meta, "created_at": iso(j.created_at), "offered_at": iso(j.offered_at),
            "ready_at": iso(j.ready_at), "started_at": iso(j.started_at), "ended_at": iso(j.ended_at)}


def _refused(exc: svc.PrintRefused) -> Any:
    db.session.rollback()
    extra = {"details": [{"code": m.code, "params": m.params} for m in exc.misfits]} if exc.misfits else {}
    fail(exc.status, exc.code, exc.message, **extra)


@bp.get("/print-jobs")
@token_required()
def print_jobs() -> Any:
    me = api_member()
    slug = request.args.get("machine", "").strip()
    if not slug:
        return ok({"jobs": [job_json(j) for j in svc.member_jobs(me)]})
    if not me.is_staff:
        fail(403, "forbidden", "Only stewards see a machine's whole queue; leave out 'machine' for your jobs.")
    try:
        machine = machine_service.machine_by_slug(slug[:60])
    except machine_service.NotFound:
        fail(404, "not_found", f"No machine {slug[:60]!r}.")
    return ok({"jobs": [job_json(j) for j in svc.machine_queue(machine)]})


@bp.post("/print-jobs")
@token_required()
def print_job_create() -> Any:
    body = json_body(CREATE)
    try:
        machine = machine_service.machine_by_slug(body["machine"])
    except machine_service.NotFound:
        fail(404, "not_found", f"No machine {body['machine']!r}.")
    try:
        source = svc.design_source(body["design_file_id"])
        job = svc.queue_job(api_member(), machine, source, booking_id=body.get("booking_id"), now=utcnow())
    except svc.PrintRefused as exc:
        _refused(exc)
    return ok(job_json(job), 201)


@bp.post("/print-jobs/<id:job_id>/cancel")
@token_required()
def print_job_cancel(job_id: int) -> Any:
    job = svc.get_job(job_id)
    if job is None or not svc.can_manage(api_member(), job):
        fail(404, "not_found", f"No print job {job_id} of yours.")
    body = json_body(CANCEL) if request.get_data() else {}
    try:
        svc.cancel_job(job, api_member(), body.get("reason") or "", now=utcnow())
    except svc.PrintRefused as exc:
        _refused(exc)
    return ok(job_json(job))


@bp.get("/print-jobs/<id:job_id>/file")
@public  # the bridge has no member token: the one-time token of the offer is the key
def print_job_file(job_id: int) -> Any:
    try:
        job, path = print_offers.download(job_id, request.args.get("token", ""), utcnow())
    except print_offers.DownloadRefused as exc:
        fail(exc.status, "gone" if exc.status == 410 else "forbidden", exc.message)
    if not path.is_file():
        fail(410, "gone", "The file of this print is no longer stored.")
    resp = send_file(path, mimetype="text/x.gcode", as_attachment=True, download_name=f"{job.public_id}.gcode",
                     conditional=False, etag=job.sha256)
    resp.headers["Cache-Control"] = "no-store"
    return resp


document("/print-jobs", "get", "Your print jobs, newest first; stewards with ?machine=slug: that machine's queue",
         params=[q("machine", "A printer's slug (stewards): its open jobs in queue order")],
         responses={"200": "The jobs", "403": "Not a steward (machine given)", "404": "No such machine"})
document("/print-jobs", "post", "Queue a design's G-code file on a printer for one of your bookings, or for the "
         "next free time (booked for you). It never starts remotely: you start it at the printer.", body=CREATE,
         responses={"201": "Queued", "403": "Not qualified for the printer (not_allowed)",
                    "404": "No such machine or design file", "409": "No free time (no_free_time)",
                    "422": "Does not fit (too_large, outside_bed, firmware, nozzle, material: details list each "
                           "with its params), not_gcode, not_a_printer, booking, print_too_long"})
document("/print-jobs/{job_id}/cancel", "post", "Cancel a job that has not started (stewards: anyone's, with a "
         "reason); a job already at the printer is withdrawn there", params=[p("job_id", "id", "integer")],
         body=CANCEL, responses={"200": "Cancelled", "404": "No such job of yours",
                                 "409": "Running (stop it at the printer) or already ended",
                                 "422": "A reason is needed (reason_required)"})
document("/print-jobs/{job_id}/file", "get", "The bridge's download of an offered job's file (token from the "
         "job/offer message; valid until the job is ready, the link expires or the job is withdrawn)",
         params=[p("job_id", "id", "integer"), q("token", "The offer's one-time token", required=True)],
         responses={"200": "The G-code file", "403": "Not a token of this job", "410": "Used up, expired or "
                    "withdrawn"}, auth=False,
         content={"text/x.gcode": {"schema": {"type": "string", "format": "binary"}}})
