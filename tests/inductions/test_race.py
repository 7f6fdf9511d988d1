"""16 members race for the last 2 places with real threads: exactly 2 confirmed, the rest waitlisted."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.models import Member
from fablab.models.inductions import InductionSignup
from fablab.models.notifications import Notice
from fablab.services import inductions as svc


def test_16_racing_sign_ups_for_the_last_2_places(app, make_session, make_member) -> None:
    s = make_session(capacity=3)
    svc.sign_up(make_member(), s.id)  # one place taken: two left
    racers = [make_member().id for _ in range(16)]
    db.session.commit()
    session_id = s.id
    barrier = threading.Barrier(16)
    results: list[tuple[str, object]] = []
    lock = threading.Lock()

    def worker(member_id: int) -> None:
        with app.app_context():
            member = db.session.get(Member, member_id)
            db.session.commit()
            barrier.wait()
            try:
                out: tuple[str, object] = ("ok", svc.sign_up(member, session_id).status)
            except svc.InductionRefused as exc:
                out = ("refused", exc.code)
            except Exception as exc:  # noqa: BLE001 - any other error fails the test below
                out = ("error", repr(exc))
            finally:
                db.session.remove()
            with lock:
                results.append(out)

    threads = [threading.Thread(target=worker, args=(m,)) for m in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 16
    assert not [r for r in results if r[0] != "ok"], results
    statuses = [r[1] for r in results]
    assert statuses.count(ind.CONFIRMED) == 2 and statuses.count(ind.WAITLISTED) == 14

    db.session.commit()  # a fresh snapshot
    rows = list(db.session.scalars(select(InductionSignup).where(InductionSignup.session_id == session_id)))
    assert sum(r.status == ind.CONFIRMED for r in rows) == 3
    waiting = sorted(r.position for r in rows if r.status == ind.WAITLISTED)
    assert waiting == list(range(1, 15))  # positions renumbered under the lock: no gaps, no doubles
    assert db.session.scalar(select(func.count()).select_from(Notice).where(
        Notice.kind == "induction_confirmed")) == 3
