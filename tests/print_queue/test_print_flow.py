"""The print queue end to end through a real broker and the real worker: queued → offered at the right time
→ downloaded once by the bridge → ready → badge at the reader → JobStart → the machine's events → done with a
"made here" record; and the ways it ends otherwise (booking cancelled, transfer failed)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from devices import events as ev
from fablab.extensions import db
from fablab.models import Booking
from fablab.models.designs import Design, DesignMade
from fablab.models.print_jobs import PrintJob
from fablab.services import bookings as booking_service
from fablab.services import print_offers, print_queue
from fablab.worker import jobs
from tests.support.broker import find_mosquitto

from .conftest import BADGE, next_slot_booking, notices_of, wait_for

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")


def _queue(lab, booking: Booking) -> PrintJob:
    source = print_queue.design_source(lab["file"].id)
    return print_queue.queue_job(lab["ada"], lab["printer"], source, booking_id=booking.id,
                                 now=datetime.now(UTC))


def _offer(app, worker, booking: Booking, at: datetime | None = None) -> None:
    """The timed job at `at` (default: exactly 10 minutes before the booking), then the worker's publish."""
    at = at or booking.start_at - print_offers.OFFER_LEAD
    db.session.commit()
    result = jobs.run_jobs(at, ["offer_due_prints"])  # the worker's timed job, as the tick runs it
    assert not isinstance(result["offer_due_prints"], Exception), result
    worker.ingestor.flush_print_messages(at)


def _job(job_id: int) -> PrintJob:
    db.session.expire_all()
    return db.session.get(PrintJob, job_id)


def test_queued_print_offered_started_by_badge_and_recorded_as_made(app, client, lab, worker, bridge) -> None:
    booking = next_slot_booking(lab["ada"], lab["printer"])
    job = _queue(lab, booking)
    assert job.state == "queued" and job.meta["filament_g"] == 3.7 and job.meta["size_mm"] == [100.0, 79.6, 0.2]

    # Eleven minutes before the booking it is not due yet; at ten it is offered, once.
    _offer(app, worker, booking, booking.start_at - timedelta(minutes=11))
    assert _job(job.id).state == "queued" and bridge.nothing(0.5) == []
    _offer(app, worker, booking)
    offer = bridge.expect(ev.JobOffer)
    assert offer.job_id == job.public_id and offer.transfer == "sd" and offer.size == job.size
    assert _job(job.id).state == "offered" and _job(job.id).token_digest is not None
    _offer(app, worker, booking)
    assert [m for m in bridge.nothing(0.5) if isinstance(m, ev.JobOffer)] == []  # not offered twice

    # The bridge downloads the file with the one-time URL, checks it, transfers it and says ready.
    url = urlsplit(offer.file_url)
    got = client.get(f"{url.path}?{url.query}")
    assert got.status_code == 200 and hashlib.sha256(got.data).hexdigest() == offer.sha256 == job.sha256
    got.close()
    bridge.progress(offer.job_id, "transfer", 500, 1000)
    wait_for(lambda: _job(job.id).state == "transferring" and _job(job.id).progress == 0.5, what="transferring")
    bridge.result(offer.job_id, "ready")
    wait_for(lambda: _job(job.id).state == "ready", what="ready")
    assert notices_of(lab["ada"].id, "print_ready")
    assert client.get(f"{url.path}?{url.query}").status_code == 410  # used up once the file is on the machine

    # Nothing starts until the member badges at that machine's reader: then JobStart, and the reader is told.
    assert [m for m in bridge.nothing(0.5) if isinstance(m, ev.JobStart)] == []
    bridge.badge(BADGE)
    start = bridge.expect(ev.JobStart)
    assert start.job_id == job.public_id and start.by == "badge"
    assert _job(job.id).state == "started"

    # The machine's own events close the job; the design gets its "made here" record.
    bridge.event("job_started", detail={"job_id": job.public_id, "file": "benchy.gcode"})
    wait_for(lambda: _job(job.id).state == "printing", what="printing")
    bridge.event("job_finished", reason="done", detail={"job_id": job.public_id})
    wait_for(lambda: _job(job.id).state == "done", what="done")
    made = db.session.scalar(select(DesignMade).where(DesignMade.design_id == lab["design"].id))
    assert made is not None and made.machine_id == lab["printer"].id and made.booking_id == booking.id
    assert made.member_id == lab["ada"].id and "3.7 g filament" in made.note and "100 % reached" in made.note
    assert db.session.get(Design, lab["design"].id).made_count == 1


def test_cancelled_booking_withdraws_the_offered_print_and_tells_the_member(app, lab, worker, bridge) -> None:
    booking = next_slot_booking(lab["ada"], lab["printer"])
    job = _queue(lab, booking)
    _offer(app, worker, booking)
    bridge.expect(ev.JobOffer)
    booking_service.cancel_booking(db.session.get(Booking, booking.id), lab["ada"], "plans changed")
    worker.ingestor.flush_print_messages(datetime.now(UTC))
    withdraw = bridge.expect(ev.JobWithdraw)
    assert withdraw.job_id == job.public_id and "cancelled" in (withdraw.reason or "")
    kept = _job(job.id)
    assert kept.state == "withdrawn" and "its booking was cancelled: plans changed" == kept.reason
    [notice] = notices_of(lab["ada"].id, "print_withdrawn")
    assert notice.params["reason"] == kept.reason
    bridge.result(job.public_id, "withdrawn")  # the bridge's acknowledgement changes nothing
    bridge.nothing(1.0)
    assert _job(job.id).state == "withdrawn"


def test_an_unanswered_offer_is_sent_again_with_a_new_link(app, client, lab, worker, bridge) -> None:
    booking = next_slot_booking(lab["ada"], lab["printer"])
    job = _queue(lab, booking)
    at = booking.start_at - print_offers.OFFER_LEAD
    _offer(app, worker, booking, at)
    first = bridge.expect(ev.JobOffer)
    _offer(app, worker, booking, at + timedelta(minutes=1))  # the bridge may still be at it
    assert [m for m in bridge.nothing(0.5) if isinstance(m, ev.JobOffer)] == []
    _offer(app, worker, booking, at + print_offers.RESEND_OFFER_AFTER)  # no word: lost while it was away
    again = bridge.expect(ev.JobOffer)
    assert again.job_id == first.job_id and again.file_url != first.file_url
    old, new = urlsplit(first.file_url), urlsplit(again.file_url)
    assert client.get(f"{old.path}?{old.query}").status_code == 403  # the old link no longer works
    got = client.get(f"{new.path}?{new.query}")
    assert got.status_code == 200
    got.close()
    bridge.progress(first.job_id, "download", 10, 100)
    wait_for(lambda: _job(job.id).state == "transferring", what="transferring")
    _offer(app, worker, booking, at + 3 * print_offers.RESEND_OFFER_AFTER)  # answered: never resent
    assert [m for m in bridge.nothing(0.5) if isinstance(m, ev.JobOffer)] == []


def test_failed_transfer_is_kept_with_the_reason_and_the_member_told(app, lab, worker, bridge) -> None:
    booking = next_slot_booking(lab["ada"], lab["printer"])
    job = _queue(lab, booking)
    _offer(app, worker, booking)
    bridge.expect(ev.JobOffer)
    bridge.progress(job.public_id, "transfer", 10, 1000)
    bridge.result(job.public_id, "failed", "M28 refused: no SD card")
    wait_for(lambda: _job(job.id).state == "failed", what="failed")
    assert _job(job.id).reason == "M28 refused: no SD card"
    [notice] = notices_of(lab["ada"].id, "print_failed")
    assert notice.params["reason"] == "M28 refused: no SD card" and notice.params["phase"] == "transfer"


def test_reports_of_another_bridge_and_forged_server_messages_are_dead_letters(app, lab, worker, bridge,
                                                                               make_machine) -> None:
    from fablab.models.usage import DeadLetter
    from fablab.services import usage as usage_service

    make_machine("other-printer", type_slug="3d_printer")
    usage_service.add_bridge("bridge-other", ["other-printer"])
    db.session.commit()
    booking = next_slot_booking(lab["ada"], lab["printer"])
    job = _queue(lab, booking)
    _offer(app, worker, booking)
    offer = bridge.expect(ev.JobOffer)
    bridge.result(job.public_id, "ready", src="bridge-other")  # not its machine
    bridge.send(ev.JobStart(machine=lab["printer"].slug, src="bridge-pq", job_id=job.public_id, by="me"))
    dead = wait_for(lambda: db.session.scalars(select(DeadLetter)).all() if len(
        db.session.scalars(select(DeadLetter)).all()) >= 2 else None, what="two dead letters")
    reasons = sorted(d.reason for d in dead)
    assert any("does not own machine" in r for r in reasons)
    assert any("job/start is sent by the server only" in r for r in reasons)
    assert _job(job.id).state == "offered"
    # The server's own offer, echoed back by the broker, is neither stored as an error nor acted on.
    assert not any("job/offer" in d.topic for d in dead) and offer.src == "fablab-server"
