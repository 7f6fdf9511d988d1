"""The print pages, the API, the download link and the kiosk confirm: refusals in the page with the reason,
nobody acts on another member's job, the download token is the only key and is used up."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking
from fablab.models.accounts import AuditEntry
from fablab.models.notifications import Notice
from fablab.models.print_jobs import PrintJob
from fablab.services import kiosk as kiosk_service
from fablab.services import members as member_service
from fablab.services import print_offers, print_queue
from fablab.services import usage as usage_service
from tests.conftest import csrf_token, login

from .conftest import BADGE, as_json, gcode, next_slot_booking


def _queued(lab, member=None, booking: Booking | None = None) -> PrintJob:
    member = member or lab["ada"]
    booking = booking or next_slot_booking(member, lab["printer"])
    return print_queue.queue_job(member, lab["printer"], print_queue.design_source(lab["file"].id),
                                 booking_id=booking.id, now=datetime.now(UTC))


def _offered(job: PrintJob, now: datetime | None = None) -> str:
    """Offer the job and return its one-time token (as the bridge reads it from the offer)."""
    now = now or datetime.now(UTC)
    print_offers.offer_due_jobs(job.booking.start_at)
    db.session.commit()
    sent: list = []
    print_offers.flush(sent.append, now)
    [offer] = sent
    return offer.file_url.split("token=", 1)[1]


def test_print_on_lists_the_printer_and_queues_for_the_next_free_time(app, client, lab) -> None:
    login(client, "ada@example.org")
    page = client.get(f"/print/files/{lab['file'].id}").get_data(as_text=True)
    assert f'data-printer="{lab["printer"].slug}" data-usable="yes"' in page and "about 26 min" in page
    token = csrf_token(client, f"/print/files/{lab['file'].id}")
    resp = client.post(f"/print/files/{lab['file'].id}/queue",
                       data={"csrf_token": token, "machine": lab["printer"].slug, "booking": "next"})
    assert resp.status_code == 302 and resp.location.endswith("/print/jobs")
    job = db.session.scalar(select(PrintJob))
    assert job.state == "queued" and job.booking is not None and job.booking.member_id == lab["ada"].id
    # 25.5 min estimate + 15 min margin, on the 15-minute grid: 45 minutes booked
    assert job.booking.end_at - job.booking.start_at == timedelta(minutes=45)
    mine = client.get("/print/jobs").get_data(as_text=True)
    assert f'data-job="{job.id}" data-state="queued"' in mine
    design = client.get(f"/designs/{lab['design'].id}").get_data(as_text=True)
    assert f"/print/files/{lab['file'].id}" in design  # the design page's "Print on…"


def test_a_file_that_does_not_fit_is_refused_with_the_reason_in_the_page(app, client, lab) -> None:
    login(client, "ada@example.org")
    token = csrf_token(client, "/print/upload")
    uploads = Path(app.config["FABLAB_UPLOAD_DIR"])
    before = {p.name for p in uploads.rglob("*") if p.is_file()}
    resp = client.post("/print/upload", data={
        "csrf_token": token, "machine": lab["printer"].slug, "booking": "next",
        "file": (io.BytesIO(gcode(x_max=300, flavour="griffin")), "big.gcode")}, content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "outside Prusa Q&#39;s bed" in page or "The print is X 280 mm" in page
    assert "sliced for griffin firmware" in page and 'data-refusal="' in page
    assert db.session.scalar(select(PrintJob)) is None
    assert {p.name for p in uploads.rglob("*") if p.is_file()} == before  # the refused upload was not kept


def test_own_upload_that_fits_is_queued_on_my_booking(app, client, lab) -> None:
    booking = next_slot_booking(lab["ada"], lab["printer"])
    login(client, "ada@example.org")
    token = csrf_token(client, "/print/upload")
    resp = client.post("/print/upload", data={
        "csrf_token": token, "machine": lab["printer"].slug, "booking": str(booking.id),
        "file": (io.BytesIO(gcode()), "mine.gcode")}, content_type="multipart/form-data")
    assert resp.status_code == 302
    job = db.session.scalar(select(PrintJob))
    assert job.own_upload and job.booking_id == booking.id and job.design_file_id is None and job.name == "mine.gcode"


def test_unqualified_member_sees_why(app, client, lab, make_member) -> None:
    make_member("cy@example.org", name="Cy")
    login(client, "cy@example.org")
    page = client.get(f"/print/files/{lab['file'].id}").get_data(as_text=True)
    assert "You are not qualified for Prusa Q" in page and 'data-usable="no"' in page


def test_another_member_cannot_cancel_start_or_download(app, client, lab) -> None:
    job = _queued(lab)
    login(client, "bo@example.org")
    token = csrf_token(client, "/print/jobs")
    assert client.post(f"/print/jobs/{job.id}/cancel", data={"csrf_token": token}).status_code == 404
    with pytest.raises(print_offers.StartRefused):
        print_offers.confirm_start(job, lab["bo"], "kiosk", datetime.now(UTC))
    dl = _offered(job)
    # A forged token, or the right token for another job, is refused; the right one works.
    assert client.get(f"/api/v1/print-jobs/{job.id}/file?token=forged").status_code == 403
    assert client.get(f"/api/v1/print-jobs/{job.id + 1}/file?token={dl}").status_code == 403
    ok = client.get(f"/api/v1/print-jobs/{job.id}/file?token={dl}")
    assert ok.status_code == 200 and ok.headers["Cache-Control"] == "no-store"
    ok.close()
    db.session.expire_all()
    assert db.session.get(PrintJob, job.id).state == "offered"  # the bridge's word makes it ready, not a GET


def test_expired_token_is_gone(app, client, lab) -> None:
    job = _queued(lab)
    dl = _offered(job)
    db.session.expire_all()
    row = db.session.get(PrintJob, job.id)
    row.token_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.session.commit()
    resp = client.get(f"/api/v1/print-jobs/{job.id}/file?token={dl}")
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "gone"


def test_download_token_is_not_logged(app, client, lab, caplog) -> None:
    from fablab.log_redaction import redact

    job = _queued(lab)
    dl = _offered(job)
    assert dl not in redact(f'"GET /api/v1/print-jobs/{job.id}/file?token={dl} HTTP/1.1" 200')
    row = db.session.get(PrintJob, job.id)
    assert row.token_digest != dl and dl not in str(row.meta)


def test_steward_reorders_and_cancels_with_a_reason(app, client, lab) -> None:
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    b1 = next_slot_booking(lab["ada"], lab["printer"], tomorrow)
    b2 = next_slot_booking(lab["bo"], lab["printer"], tomorrow + timedelta(hours=2))
    first, second = _queued(lab, booking=b1), _queued(lab, lab["bo"], booking=b2)
    login(client, "stew@example.org")
    page = client.get(f"/print/machines/{lab['printer'].slug}").get_data(as_text=True)
    assert page.index(f'data-job="{first.id}"') < page.index(f'data-job="{second.id}"')
    token = csrf_token(client, f"/print/machines/{lab['printer'].slug}")
    client.post(f"/print/jobs/{second.id}/move", data={"csrf_token": token, "direction": "up"})
    page = client.get(f"/print/machines/{lab['printer'].slug}").get_data(as_text=True)
    assert page.index(f'data-job="{second.id}"') < page.index(f'data-job="{first.id}"')
    refused = client.post(f"/print/jobs/{first.id}/cancel", data={"csrf_token": token, "back": "queue"})
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    client.post(f"/print/jobs/{first.id}/cancel", data={"csrf_token": token, "back": "queue",
                                                       "reason": "nozzle being replaced"})
    db.session.expire_all()
    assert db.session.get(PrintJob, first.id).state == "cancelled"
    assert db.session.get(PrintJob, first.id).reason == "cancelled by a steward: nozzle being replaced"
    # Ada is told why, and the steward's cancel is on the audit log.
    [notice] = db.session.scalars(select(Notice).where(Notice.member_id == lab["ada"].id,
                                                       Notice.kind == "print_withdrawn")).all()
    assert "nozzle being replaced" in notice.params["reason"]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "print.cancelled_for_member"))
    assert entry is not None and entry.target_id == lab["ada"].id and "nozzle" in entry.detail


def test_members_cannot_see_a_machine_queue(app, client, lab) -> None:
    login(client, "ada@example.org")
    assert client.get(f"/print/machines/{lab['printer'].slug}").status_code in (403, 404)


def test_api_create_list_cancel(app, client, lab) -> None:
    token = member_service.create_api_token(lab["ada"], "t")
    db.session.commit()
    h = {"Authorization": f"Bearer {token}"}
    refused = client.post("/api/v1/print-jobs", json={"design_file_id": lab["file"].id, "machine": "nope"}, headers=h)
    assert refused.status_code == 404
    made = client.post("/api/v1/print-jobs", json={"design_file_id": lab["file"].id,
                                                   "machine": lab["printer"].slug}, headers=h)
    assert made.status_code == 201, made.get_data(as_text=True)
    job = as_json(made)
    assert job["state"] == "queued" and job["booking_id"]
    listed = as_json(client.get("/api/v1/print-jobs", headers=h))
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    assert client.get(f"/api/v1/print-jobs?machine={lab['printer'].slug}", headers=h).status_code == 403
    done = client.post(f"/api/v1/print-jobs/{job['id']}/cancel", headers=h)
    assert done.status_code == 200 and as_json(done)["state"] == "cancelled"
    again = client.post(f"/api/v1/print-jobs/{job['id']}/cancel", headers=h)
    assert again.status_code == 409
    spec = as_json(client.get("/api/v1/openapi.json"))
    assert {"/print-jobs", "/print-jobs/{job_id}/cancel", "/print-jobs/{job_id}/file"} <= set(spec["paths"])


def test_kiosk_confirm_starts_only_my_ready_print_after_the_bed_check(app, client, lab) -> None:
    job = _queued(lab)
    _offered(job)
    db.session.expire_all()
    row = db.session.get(PrintJob, job.id)
    row.state = "ready"  # as the bridge's job/result ready does (tested end to end in test_print_flow)
    db.session.commit()
    _, activation = kiosk_service.register_kiosk("print corner", datetime.now(UTC))
    db.session.commit()
    client.get(f"/kiosk/activate/{activation}")
    panel = client.post("/kiosk/identify", data={"badge": BADGE},
                        headers={"X-CSRFToken": _kiosk_csrf(client)}).get_data(as_text=True)
    assert f'data-print="{job.id}"' in panel and "I checked the bed" in panel
    h = {"X-CSRFToken": _kiosk_csrf(client)}
    unchecked = client.post(f"/kiosk/print-jobs/{job.id}/start", data={}, headers=h)
    assert unchecked.status_code == 422 and "Check the printer" in unchecked.get_data(as_text=True)
    started = client.post(f"/kiosk/print-jobs/{job.id}/start", data={"bed_checked": "yes"}, headers=h)
    assert started.status_code == 200 and "Starting benchy.gcode" in started.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.get(PrintJob, job.id)
    assert row.state == "started" and row.outbox == "start" and row.started_by == "kiosk"


def _kiosk_csrf(client) -> str:
    page = client.get("/kiosk/").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def test_mosquitto_acl_lets_bridges_report_jobs_and_read_offers(app_ctx, lab, tmp_path) -> None:
    _, acl = usage_service.write_mosquitto_files(tmp_path, "fablab", "secret")
    text = acl.read_text()
    slug = lab["printer"].slug
    for sub in ("job/progress", "job/result"):
        assert f"topic write fablab/v1/machine/{slug}/{sub}" in text
    for sub in ("job/offer", "job/start", "job/withdraw"):
        assert f"topic read fablab/v1/machine/{slug}/{sub}" in text
