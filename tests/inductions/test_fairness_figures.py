"""The fairness review counts unmet induction demand (requests waiting) and missed sessions, per scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fablab.domain import inductions as ind
from fablab.extensions import db
from fablab.services import fairness
from fablab.services import inductions as svc
from tests.conftest import login


def _past_session_with_a_miss(trainer, laser, member, now: datetime):
    start = (now - timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
    s = svc.schedule(trainer, laser.machine_type, start, start + timedelta(hours=2), capacity=3,
                     now=start - timedelta(days=3))
    svc.sign_up(member, s.id, now=start - timedelta(days=2))
    svc.mark_attendance(trainer, s.id, member.id, ind.MISSED, now=start + timedelta(hours=2))
    return s


def test_review_counts_waiting_requests_and_missed_sessions(client, make_member, make_machine, trainer,
                                                            laser) -> None:
    now = datetime.now(UTC)
    cnc = make_machine("cnc", type_slug="cnc_mill")
    a, b, c = make_member(), make_member(), make_member()
    svc.request_induction(a, cnc.machine_type, now=now - timedelta(days=10))
    svc.request_induction(b, cnc.machine_type, now=now - timedelta(days=4))
    svc.request_induction(c, laser.machine_type, now=now - timedelta(days=2))
    svc.request_induction(c, laser.machine_type, now=now - timedelta(days=2))  # the same request again
    _past_session_with_a_miss(trainer, laser, make_member(), now)
    db.session.commit()
    viewer = fairness.Viewer(None, False)

    lab = fairness.build_review(fairness.ReviewQuery.default(now), viewer, now)
    assert (lab.inductions.requests_waiting, lab.inductions.missed_sessions) == (3, 1)
    assert abs(lab.inductions.waiting_since - (now - timedelta(days=10))) < timedelta(seconds=1)
    summary = dict(fairness.tables(lab)["summary"][1])
    assert summary["induction requests waiting"] == 3 and summary["missed induction sessions"] == 1

    mill = fairness.build_review(fairness.ReviewQuery.default(now, machine="cnc"), viewer, now)
    assert (mill.inductions.requests_waiting, mill.inductions.missed_sessions) == (2, 0)
    laser_only = fairness.build_review(fairness.ReviewQuery.default(now, machine_type="laser_cutter"), viewer, now)
    assert (laser_only.inductions.requests_waiting, laser_only.inductions.missed_sessions) == (1, 1)
    earlier = fairness.ReviewQuery(now - timedelta(days=40), now - timedelta(days=8))
    before = fairness.build_review(earlier, viewer, now)  # only A had asked then; the session came later
    assert (before.inductions.requests_waiting, before.inductions.missed_sessions) == (1, 0)

    admin = make_member(role="admin")
    login(client, admin.email)
    page = client.get("/fairness").get_data(as_text=True)
    assert 'data-figure="induction-requests"><dt>Induction requests waiting</dt><dd>3' in page
    assert 'data-figure="missed-sessions"><dt>Missed induction sessions</dt><dd>1<' in page
