"""Parallel actions on one task against the real database (SQLite, and PostgreSQL when
FABLAB_TEST_DATABASE_URL is set), 16 threads released at once: exactly one completion and one
confirmation succeed, the others get a clear 409; a member's parallel claims claim once. Never a 500
(a unique violation). Not in the date matrix: the race, not the date, is under test."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from fablab.extensions import db
from fablab.models.scheduling import EffortTask, TaskCompletion
from fablab.services import effort as effort_service
from fablab.services.scheduling_common import SchedulingError


def _in_parallel(app, n: int, action: Callable[[int], object]) -> list[tuple[str, object]]:
    """Run action(i) for i in 0..n-1 on n threads released at once, each with its own session."""
    barrier = threading.Barrier(n)
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                action(i)
                out: tuple[str, object] = ("ok", i)
            except SchedulingError as exc:
                out = ("refused", exc)
            except Exception as exc:  # noqa: BLE001 - anything else (a unique violation: a 500) fails below
                out = ("error", repr(exc))
            finally:
                db.session.remove()
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@pytest.mark.parametrize("n", [16])
def test_parallel_completions_and_confirmations_of_one_task_succeed_exactly_once(app, make_member, n) -> None:
    from fablab.models import Member

    members = [make_member() for _ in range(n)]
    peers = [make_member() for _ in range(n)]
    task = effort_service.create_task("Sweep the floor", kind="cleaning", people_needed=n)
    for m in members:
        effort_service.claim_task(m, task)
    task_id, member_ids, peer_ids = task.id, [m.id for m in members], [p.id for p in peers]
    db.session.commit()

    def complete(i: int) -> None:
        effort_service.complete_task(db.session.get(Member, member_ids[i]), effort_service.get_task(task_id))

    results = _in_parallel(app, n, complete)
    assert len(results) == n and not [r for r in results if r[0] == "error"], results
    assert [r[0] for r in results].count("ok") == 1
    refusals = [r[1] for r in results if r[0] == "refused"]
    assert len(refusals) == n - 1
    assert all(isinstance(e, SchedulingError) and e.code == "task_closed" and e.status == 409 and e.message
               for e in refusals)
    db.session.commit()  # a fresh snapshot: the threads' commits are visible now
    assert db.session.scalar(select(func.count()).select_from(TaskCompletion)
                             .where(TaskCompletion.task_id == task_id)) == n  # one credit per claimant, once

    def confirm(i: int) -> None:
        effort_service.confirm_task(db.session.get(Member, peer_ids[i]), effort_service.get_task(task_id))

    results = _in_parallel(app, n, confirm)
    assert not [r for r in results if r[0] == "error"], results
    assert [r[0] for r in results].count("ok") == 1
    assert all(e.code == "already_confirmed" and e.status == 409 for kind, e in results if kind == "refused")
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(EffortTask, task_id).confirmed_by_id in peer_ids


def test_parallel_claims_by_one_member_claim_once(app, make_member) -> None:
    from fablab.models import Member

    alice = make_member()
    task = effort_service.create_task("Tidy the bench", kind="cleaning")
    task_id, alice_id = task.id, alice.id
    db.session.commit()
    results = _in_parallel(app, 16, lambda _i: effort_service.claim_task(db.session.get(Member, alice_id),
                                                                         effort_service.get_task(task_id)))
    assert [r[0] for r in results] == ["ok"] * 16, results
    db.session.commit()
    db.session.expire_all()
    claimed = db.session.get(EffortTask, task_id)
    assert [c.member_id for c in claimed.claims] == [alice_id]
