"""The worker's timed jobs, in one table: what runs, how often, which function. Each job takes `now`,
is idempotent (running it twice, or late, does no harm) and runs in its own transaction, so one failing
job is logged and the others still run. Only the table and the loop that runs it belong here; the work
itself lives in the services. Pages catch up on scheduling state without the worker
(fablab/services/catch_up.py runs the scheduling rows' functions, in the same order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app

from ..database import begin_write
from ..extensions import db
from ..services import (
    design_processing,
    digest,
    induction_scans,
    notice_scans,
    print_offers,
    usage,
    waitlist,
    window_draw,
    windows,
)

log = logging.getLogger("fablab.worker.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[datetime], object]


def _prune_telemetry(now: datetime) -> int:
    return usage.prune_telemetry(now, current_app.config["FABLAB_TELEMETRY_DAYS"])


TICK = timedelta(seconds=15)  # the worker's tick: every job ran on each one before this table existed

# In run order: usage first (a no-show releases time to the waitlist), then request windows, then offers.
JOBS: tuple[Job, ...] = (
    Job("record_no_shows", TICK, usage.record_no_shows),  # bookings nobody checked in become no-shows
    Job("raise_due_maintenance", TICK, usage.raise_due_maintenance),  # due maintenance goes on the task board
    Job("prune_telemetry", TICK, _prune_telemetry),  # raw telemetry older than FABLAB_TELEMETRY_DAYS goes
    Job("close_due_windows", TICK, window_draw.close_due_windows),  # windows past their close are allocated
    Job("auto_open_windows", TICK, windows.auto_open_windows),  # the next weekly window opens on time
    Job("offer_no_shows", TICK, waitlist.offer_no_shows),  # an unused booking's rest is offered to waiters
    Job("expire_offers", TICK, waitlist.expire_offers),  # offers whose hold time ran out expire
    Job("offer_freed_time", TICK, waitlist.offer_freed_time),  # freed time goes to the next in line
    # Uploads too heavy for the web request are measured and pictured here (or failed with the reason).
    Job("process_pending_uploads", TICK, design_processing.process_pending_uploads),
    # Queued prints are offered to their machine 10 min before the booking; lost bookings withdraw them.
    Job("offer_due_prints", TICK, print_offers.offer_due_jobs),
    Job("send_reminders", timedelta(minutes=1), notice_scans.send_reminders),  # reminder at each member's lead time
    Job("announce_checkin_windows", TICK, notice_scans.announce_checkin_windows),  # "released at 14:15 unless ..."
    Job("warn_expiring_qualifications", timedelta(hours=1), notice_scans.warn_expiring_qualifications),  # 30 days ahead
    Job("warn_disuse_lapses", timedelta(hours=1), induction_scans.warn_disuse_lapses),  # 30 days ahead, by disuse
    Job("settle_ended_inductions", timedelta(hours=1), induction_scans.settle_ended_sessions),  # effort, reminders
    Job("alert_bridges_offline", timedelta(minutes=1), notice_scans.alert_bridges_offline),  # stewards: 10 min gone
    Job("alert_dead_letters", timedelta(minutes=1), notice_scans.alert_dead_letters),  # stewards: new dead letters
    Job("weekly_fairness_digest", timedelta(minutes=10), notice_scans.weekly_fairness_digest),  # admins: Monday 08:00
    Job("send_digests", timedelta(minutes=1), digest.send_digests),  # held notices: one mail at each member's hour
)


def due(now: datetime, last_run: Mapping[str, datetime]) -> list[str]:
    """The names of the jobs whose interval has passed since they last ran (a job never run is due)."""
    return [j.name for j in JOBS if j.name not in last_run or now - last_run[j.name] >= j.every]


def run_jobs(now: datetime, names: Collection[str] | None = None) -> dict[str, object]:
    """Run the named jobs (all by default) in table order, each on its own: its result, or the exception
    it raised (logged; its transaction rolled back; the next job still runs). Needs an app context."""
    unknown = set(names or ()) - {j.name for j in JOBS}
    if unknown:
        raise ValueError(f"unknown job(s): {', '.join(sorted(unknown))}")
    results: dict[str, object] = {}
    for job in JOBS:
        if names is not None and job.name not in names:
            continue
        try:
            begin_write()
            results[job.name] = job.run(now)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001
            db.session.rollback()
            log.exception("timed job %s failed; it runs again next time", job.name)
            results[job.name] = exc
    return results
