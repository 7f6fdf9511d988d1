"""How the worker's sessionizer reads the bridge's port-loss events (issue 21, defect 4): the job and session
end at the time of loss, and a job the firmware was still running on return is a new session, so the time
without a port is not counted as use and nothing stays open if the port never returns."""

from datetime import UTC, datetime, timedelta

from fablab.domain.sessionize import Observation, sessionize

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def ev(kind, minutes, sid, seq, state=None):
    return Observation(kind=kind, ts=T0 + timedelta(minutes=minutes), machine="prusa", session_id=sid, seq=seq,
                       state=state, msg_id=f"m{seq}")


def test_loss_then_resumed_job_gives_two_closed_sessions_without_the_gap():
    obs = [
        ev("session_started", 0, "s1", 1), ev("job_started", 0, "s1", 2),
        ev("job_finished", 40, "s1", 3), ev("session_ended", 40, "s1", 4),
        Observation(kind="status", ts=T0 + timedelta(minutes=40), machine="prusa", state="offline"),
        ev("session_started", 55, "s2", 5), ev("job_started", 55, "s2", 6),
        ev("job_finished", 90, "s2", 7), ev("session_ended", 100, "s2", 8),
    ]
    spans = sessionize(obs, now=T0 + timedelta(hours=5))
    assert [(s.session_id, s.start, s.end, s.closed_by) for s in spans] == [
        ("s1", T0, T0 + timedelta(minutes=40), "end_event"),
        ("s2", T0 + timedelta(minutes=55), T0 + timedelta(minutes=100), "end_event"),
    ]
    assert sum((s.duration for s in spans), timedelta()) == timedelta(minutes=85)


def test_port_that_never_returns_leaves_nothing_open():
    obs = [ev("session_started", 0, "s1", 1), ev("job_started", 0, "s1", 2),
           ev("job_finished", 40, "s1", 3), ev("session_ended", 40, "s1", 4)]
    (span,) = sessionize(obs, now=T0 + timedelta(minutes=41))
    assert not span.open and span.end == T0 + timedelta(minutes=40)
