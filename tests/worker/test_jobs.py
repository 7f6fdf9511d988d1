"""The timed-jobs table (fablab/worker/jobs.py): every job runs on its own transaction, one failing job
does not stop the others, and the scheduling rows are the steps pages catch up with."""

from __future__ import annotations

import ast
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import MachineType
from fablab.services import catch_up
from fablab.worker import jobs

ROOT = Path(__file__).resolve().parents[2]


def test_run_jobs_runs_every_job_and_reports_each_result(app_ctx) -> None:
    results = jobs.run_jobs(datetime.now(UTC))
    assert list(results) == [j.name for j in jobs.JOBS]
    assert not [name for name, r in results.items() if isinstance(r, Exception)]
    assert results["prune_telemetry"] == 0 and results["close_due_windows"] == 0


def test_names_pick_jobs_and_unknown_names_are_refused(app_ctx) -> None:
    assert list(jobs.run_jobs(datetime.now(UTC), ["offer_freed_time", "expire_offers"])) == [
        "expire_offers", "offer_freed_time"]  # table order
    with pytest.raises(ValueError, match="no_such_job"):
        jobs.run_jobs(datetime.now(UTC), ["no_such_job"])


def test_a_failing_job_is_logged_rolled_back_and_the_others_still_run(app_ctx, monkeypatch, caplog) -> None:
    def add(slug: str) -> None:
        db.session.add(MachineType(slug=slug, name=slug))
        db.session.flush()

    def boom(now: datetime) -> None:
        add("from-the-failing-job")
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "JOBS", (
        jobs.Job("first", jobs.TICK, lambda now: add("first")),
        jobs.Job("boom", jobs.TICK, boom),
        jobs.Job("last", jobs.TICK, lambda now: add("last") or "done"),
    ))
    with caplog.at_level(logging.ERROR, logger="fablab.worker.jobs"):
        results = jobs.run_jobs(datetime.now(UTC))
    assert isinstance(results["boom"], RuntimeError) and results["last"] == "done"
    assert "timed job boom failed" in caplog.text
    db.session.remove()
    slugs = set(db.session.scalars(select(MachineType.slug)))
    assert {"first", "last"} <= slugs and "from-the-failing-job" not in slugs


def test_due_follows_each_jobs_interval() -> None:
    now = datetime(2030, 1, 7, 12, tzinfo=UTC)
    names = [j.name for j in jobs.JOBS]
    assert jobs.due(now, {}) == names  # never run: due
    ran = dict.fromkeys(names, now)
    assert jobs.due(now + timedelta(seconds=1), ran) == []
    assert jobs.due(now + max(j.every for j in jobs.JOBS), ran) == names


def test_the_scheduling_rows_are_the_catch_up_steps_in_the_same_order() -> None:
    steps = [step for _, step in catch_up.STEPS]
    assert [j.run for j in jobs.JOBS if j.run in steps] == steps


def test_web_and_api_never_import_the_worker() -> None:
    offenders = []
    for layer in ("web", "api"):
        for path in (ROOT / "fablab" / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [("." * node.level) + (node.module or "")]
                if any("worker" in n.split(".") for n in names):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
