from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fablab.domain.sessionize import (
    Observation,
    SessionizerConfig,
    UsageSpan,
    sessionize,
)
from fablab.domain.sessionizer import SessionChange, Sessionizer

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
_ids = count()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ob(kind: str, minute: float, machine: str = "laser", **kw) -> Observation:
    kw.setdefault("msg_id", f"m{next(_ids)}")
    return Observation(kind=kind, ts=at(minute), machine=machine, **kw)


def ev(kind: str, minute: float, sid: str | None, seq: int | None = None, **kw) -> Observation:
    return ob(kind, minute, session_id=sid, seq=seq, **kw)


def status(minute: float, state: str, **kw) -> Observation:
    return ob("status", minute, state=state, **kw)


def power(minute: float, watts: float | None, **kw) -> Observation:
    return ob("power", minute, power_w=watts, **kw)


def only(spans: list[UsageSpan]) -> UsageSpan:
    assert len(spans) == 1, spans
    return spans[0]


# -- events -----------------------------------------------------------------------------------------------


def test_complete_session_takes_badge_job_and_reported_energy():
    obs = [
        ev("session_started", 0, "s1", 1, badge="04AB"),
        ev("job_started", 2, "s1", 2, job_file="box.gcode"),
        ev("job_finished", 40, "s1", 3),
        ev("session_ended", 42, "s1", 4, energy_wh=123.0),
    ]
    s = only(sessionize(obs, at(60)))
    assert (s.start, s.end, s.duration) == (at(0), at(42), timedelta(minutes=42))
    assert (s.closed_by, s.open, s.source, s.start_estimated) == ("end_event", False, "event", False)
    assert (s.badge, s.job_file, s.energy_wh, s.session_id) == ("04AB", "box.gcode", 123.0, "s1")
    assert s.key == "laser/event/s1"


def test_missing_end_is_open_until_timeout_then_closed_at_last_observation():
    obs = [ev("session_started", 0, "s1", 1), ev("job_started", 5, "s1", 2)]
    open_span = only(sessionize(obs, at(20)))
    assert open_span.open and open_span.end is None and open_span.closed_by is None
    assert open_span.duration == timedelta(minutes=5)  # up to the last sign of activity
    closed = only(sessionize(obs, at(36)))
    assert (closed.end, closed.closed_by, closed.open) == (at(5), "timeout", False)


def test_timeout_is_configurable():
    obs = [ev("session_started", 0, "s1", 1)]
    cfg = SessionizerConfig(timeout=timedelta(minutes=90))
    assert only(sessionize(obs, at(60), cfg)).open
    assert only(sessionize(obs, at(91), cfg)).closed_by == "timeout"


def test_next_start_closes_previous_session_at_that_start():
    obs = [ev("session_started", 0, "a", 1), ev("job_started", 3, "a", 2), ev("session_started", 10, "b", 1)]
    a, b = sessionize(obs, at(12))
    assert (a.session_id, a.end, a.closed_by) == ("a", at(10), "next_start")
    assert (b.session_id, b.open) == ("b", True)


def test_next_start_after_a_long_silence_ends_previous_by_timeout_at_its_last_observation():
    obs = [ev("session_started", 0, "a", 1), ev("job_started", 3, "a", 2), ev("session_started", 120, "b", 1)]
    a, _ = sessionize(obs, at(121))
    assert (a.end, a.closed_by) == (at(3), "timeout")


def test_first_event_of_a_session_whose_start_was_lost_also_closes_the_previous_one():
    obs = [ev("session_started", 0, "a", 1), ev("job_started", 10, "b", 2), ev("session_ended", 20, "b", 3)]
    a, b = sessionize(obs, at(30))
    assert (a.end, a.closed_by) == (at(10), "next_start")
    assert (b.start, b.start_estimated, b.closed_by) == (at(10), True, "end_event")


def test_missing_start_starts_at_earliest_observation_of_the_session():
    obs = [ev("job_started", 5, "s1", 2, job_file="a.nc"), ev("session_ended", 20, "s1", 3)]
    s = only(sessionize(obs, at(30)))
    assert (s.start, s.end, s.start_estimated, s.job_file) == (at(5), at(20), True, "a.nc")


def test_end_alone_gives_an_estimated_zero_length_session():
    s = only(sessionize([ev("session_ended", 20, "s1", 9, energy_wh=5.0)], at(30)))
    assert (s.start, s.end, s.duration, s.start_estimated, s.energy_wh) == (
        at(20), at(20), timedelta(0), True, 5.0,
    )


def test_own_event_after_a_silence_reopens_the_same_session_rather_than_splitting_it():
    obs = [
        ev("session_started", 0, "s1", 1),
        power(40, 0.0),  # a quiet reading commits the timeout…
        ev("job_finished", 45, "s1", 2),  # …but the session's own id shows it went on
        ev("session_ended", 50, "s1", 3),
    ]
    s = only(sessionize(obs, at(60)))
    assert (s.start, s.end, s.closed_by) == (at(0), at(50), "end_event")


def test_out_of_order_arrival_gives_the_same_sessions():
    obs = [
        ev("session_started", 0, "a", 1, badge="B1"),
        ev("job_started", 1, "a", 2, job_file="x.gcode"),
        ev("session_ended", 30, "a", 3),
        ev("session_started", 40, "b", 1),
        ev("session_ended", 50, "b", 2),
    ]
    expected = sessionize(obs, at(60))
    assert [s.closed_by for s in expected] == ["end_event", "end_event"]
    for seed in range(20):
        shuffled = obs[:]
        random.Random(seed).shuffle(shuffled)
        assert sessionize(shuffled, at(60)) == expected


def test_seq_orders_events_with_equal_timestamps():
    first = ev("job_started", 5, "s1", 2, job_file="first.nc")
    second = ev("job_started", 5, "s1", 3, job_file="second.nc")
    obs = [ev("session_started", 0, "s1", 1), second, first]
    assert only(sessionize(obs, at(10))).job_file == "first.nc"


def test_duplicates_by_msg_id_are_ignored():
    start = ev("session_started", 0, "s1", 1)
    end = ev("session_ended", 10, "s1", 2)
    # a resend of the same message; without dedupe it would not change the span, so use one that would
    resent_end = Observation(**{**end.__dict__, "ts": at(25)})
    assert only(sessionize([start, end, resent_end], at(30))).end == at(10)
    assert only(sessionize([start, resent_end, end], at(30))).end == at(10)  # first by (ts, seq) wins
    sz = Sessionizer()
    for o in (start, end, end, start):
        sz.feed(o)
    assert sz.duplicates == 2
    assert only(sz.current()).end == at(10)


def test_offline_status_closes_an_event_session():
    obs = [ev("session_started", 0, "s1", 1), status(12, "offline")]
    s = only(sessionize(obs, at(13)))
    assert (s.end, s.closed_by) == (at(12), "offline")


def test_active_status_and_power_keep_a_quiet_event_session_alive():
    obs = [ev("session_started", 0, "s1", 1), status(20, "printing", job_file="vase.gcode"), power(45, 150.0)]
    s = only(sessionize(obs, at(70)))
    assert s.open and s.duration == timedelta(minutes=45) and s.job_file == "vase.gcode"
    # idle status and low power are no sign of use: the lost end is then found by the timeout
    quiet = [ev("session_started", 0, "s1", 1), status(20, "idle"), power(45, 1.0)]
    t = only(sessionize(quiet, at(70)))
    assert (t.end, t.closed_by) == (at(0), "timeout")


def test_events_without_session_id_pair_up_on_the_machine():
    obs = [ev("session_started", 0, None), ev("job_started", 2, None, job_file="p.nc"), ev("session_ended", 9, None)]
    s = only(sessionize(obs, at(20)))
    assert (s.start, s.end, s.job_file, s.closed_by) == (at(0), at(9), "p.nc", "end_event")


def test_machines_are_independent():
    obs = [
        ev("session_started", 0, "s1", 1),
        ob("session_started", 5, machine="printer", session_id="s1", seq=1),
        ev("session_ended", 8, "s1", 2),
    ]
    spans = sessionize(obs, at(10))
    assert [(s.machine, s.open) for s in spans] == [("laser", False), ("printer", True)]


def test_rejects_unknown_kinds_and_naive_times():
    with pytest.raises(ValueError):
        sessionize([ob("telemetry", 0)], at(1))
    with pytest.raises(ValueError):
        Sessionizer().feed(Observation("status", datetime(2026, 1, 1), "laser", state="idle"))


# -- status-only machines -------------------------------------------------------------------------------


def test_status_only_machine_active_until_idle():
    obs = [
        status(0, "idle"),
        status(1, "busy", job_file="sign.nc"),
        status(10, "paused"),
        status(12, "busy"),
        status(30, "idle"),
        status(40, "alarm"),
        status(41, "offline"),
    ]
    a, b = sessionize(obs, at(50))
    assert (a.start, a.end, a.closed_by, a.source, a.job_file) == (at(1), at(30), "status_idle", "status", "sign.nc")
    assert (b.start, b.end, b.closed_by) == (at(40), at(41), "offline")


def test_status_span_kept_alive_by_telemetry_and_closed_by_silence():
    obs = [status(0, "printing")] + [power(m, 2.0) for m in range(5, 61, 5)]
    assert only(sessionize(obs, at(70))).open  # the bridge is alive and the state holds
    s = only(sessionize(obs, at(91)))
    assert (s.end, s.closed_by) == (at(60), "timeout")
    # a gap longer than the timeout inside the stream splits: the later state starts afresh
    split = sessionize([status(0, "printing"), status(40, "printing"), status(50, "idle")], at(60))
    assert [(s.start, s.end, s.closed_by) for s in split] == [
        (at(0), at(0), "timeout"), (at(40), at(50), "status_idle"),
    ]


def test_first_event_takes_a_status_machine_over():
    obs = [status(0, "busy"), ev("session_started", 5, "s1", 1), status(20, "idle"), ev("session_ended", 30, "s1", 2)]
    st_span, ev_span = sessionize(obs, at(40))
    assert (st_span.source, st_span.end, st_span.closed_by) == ("status", at(5), "next_start")
    assert (ev_span.source, ev_span.start, ev_span.end) == ("event", at(5), at(30))


# -- power readings -------------------------------------------------------------------------------------


def _readings(pairs):
    return [power(m, w) for m, w in pairs]


def test_power_hysteresis_ignores_flicker():
    cfg = SessionizerConfig(power_on_w=50, power_min_on=timedelta(minutes=1), power_min_off=timedelta(minutes=2))
    pairs = [(0, 2), (0.5, 300), (1, 2), (1.5, 2)]  # a 30 s spike: flicker, not use
    pairs += [(m / 2, 300) for m in range(4, 20)]  # minutes 2.0 … 9.5 above
    pairs += [(10, 3), (10.5, 3), (11, 300)]  # dips for a minute: still the same use
    pairs += [(11.5, 300), (12, 3), (12.5, 3), (13, 3), (13.5, 3), (14, 3)]  # below for 2 min: over
    s = only(sessionize(_readings(pairs), at(20), cfg))
    assert (s.source, s.start, s.end, s.closed_by) == ("power", at(2), at(12), "status_idle")


def test_power_needs_the_minimum_time_above_the_threshold():
    cfg = SessionizerConfig(power_on_w=50, power_min_on=timedelta(minutes=2))
    assert sessionize(_readings([(0, 100), (1, 100), (1.5, 100), (2.5, 0)]), at(5), cfg) == []
    s = only(sessionize(_readings([(0, 100), (1, 100), (2, 100)]), at(3), cfg))
    assert (s.start, s.open) == (at(0), True)


def test_power_hysteresis_band_between_off_and_on_thresholds():
    cfg = SessionizerConfig(power_on_w=100, power_off_w=20, power_min_on=timedelta(0), power_min_off=timedelta(0))
    # 50 W does not start use, but does not end it either
    assert sessionize(_readings([(0, 50), (1, 50)]), at(2), cfg) == []
    s = only(sessionize(_readings([(0, 150), (1, 50), (2, 50), (3, 10)]), at(4), cfg))
    assert (s.start, s.end) == (at(0), at(3))


def test_power_energy_is_integrated_by_trapezoid():
    cfg = SessionizerConfig(power_on_w=50, power_min_on=timedelta(0), power_min_off=timedelta(minutes=2))
    pairs = [(m, 600.0) for m in range(0, 61)] + [(61, 0.0), (62, 0.0), (63, 0.0)]
    s = only(sessionize(_readings(pairs), at(70), cfg))
    assert (s.start, s.end) == (at(0), at(61))
    assert s.energy_wh == pytest.approx(600.0 + 5.0)  # an hour at 600 W, then a one-minute ramp to 0


def test_power_meter_reading_wins_over_integration():
    cfg = SessionizerConfig(power_on_w=50, power_min_on=timedelta(0), power_min_off=timedelta(0))
    obs = [power(0, 600.0, energy_wh=1000.0), power(30, 600.0, energy_wh=1290.0), power(60, 0.0, energy_wh=1300.0)]
    assert only(sessionize(obs, at(70), cfg)).energy_wh == pytest.approx(300.0)


def test_event_session_energy_from_plug_readings_when_not_reported():
    obs = [ev("session_started", 0, "s1", 1)] + _readings([(m, 120.0) for m in range(-5, 40, 5)])
    obs.append(ev("session_ended", 30, "s1", 2))
    s = only([s for s in sessionize(obs, at(40)) if s.source == "event"])
    assert s.energy_wh == pytest.approx(60.0)  # 120 W for half an hour


def test_power_silence_ends_use_by_timeout():
    cfg = SessionizerConfig(power_on_w=50, power_min_on=timedelta(0))
    s = only(sessionize(_readings([(0, 100), (5, 100), (10, 100)]), at(45), cfg))
    assert (s.end, s.closed_by) == (at(10), "timeout")


# -- the incremental state machine ------------------------------------------------------------------------


def test_feed_reports_opened_updated_closed_and_tick_closes_by_timeout():
    sz = Sessionizer()
    [c] = sz.feed(ev("session_started", 0, "s1", 1))
    assert c.kind == "opened" and c.span.open
    [c] = sz.feed(ev("job_started", 3, "s1", 2, job_file="a.nc"))
    assert c.kind == "updated" and c.span.job_file == "a.nc"
    [c] = sz.feed(ev("session_ended", 9, "s1", 3))
    assert c.kind == "closed" and c.span.end == at(9)
    assert sz.tick(at(100)) == []  # nothing left to change
    sz.feed(ev("session_started", 200, "s2", 1))
    assert sz.tick(at(210)) == []
    [c] = sz.tick(at(231))
    assert (c.kind, c.span.session_id, c.span.closed_by) == ("closed", "s2", "timeout")


def test_late_observation_moves_a_status_span_start_removed_then_opened():
    sz = Sessionizer()
    sz.feed(status(10, "busy"))
    changes = sz.feed(status(5, "printing"))  # arrives late, happened earlier
    kinds = sorted((c.kind, c.span.start) for c in changes)
    assert kinds == [("opened", at(5)), ("removed", at(10))]
    assert [s.start for s in sz.current()] == [at(5)]


def _apply(changes: list[SessionChange], store: dict[str, UsageSpan]) -> None:
    for c in changes:
        if c.kind == "removed":
            store.pop(c.span.key, None)
        else:
            store[c.span.key] = c.span


def test_checkpoints_forget_old_state_and_the_stream_still_matches_the_batch():
    cfg = SessionizerConfig(retention=timedelta(hours=1))
    rng = random.Random(7)
    obs: list[Observation] = []
    for n in range(200):  # 200 sessions of a few minutes, readings every minute
        base = n * 30
        sid = f"s{n}"
        obs.append(ev("session_started", base, sid, 1))
        if rng.random() < 0.8:
            obs.append(ev("session_ended", base + rng.randint(2, 20), sid, 2))
        obs += [power(base + m, rng.choice([0.0, 80.0])) for m in range(30)]
    sz = Sessionizer(cfg)
    store: dict[str, UsageSpan] = {}
    late = obs[-40:]
    rng.shuffle(late)  # the tail arrives out of order
    for o in obs[:-40] + late:
        _apply(sz.feed(o), store)
    now = at(200 * 30 + 60)
    _apply(sz.tick(now), store)
    assert sorted(store.values(), key=lambda s: (s.start, s.key)) == sessionize(obs, now, cfg)
    assert len(sz.current()) < 20  # most were forgotten at checkpoints
    # something older than the retention can no longer be placed: counted, not applied
    assert sz.feed(ev("session_ended", 31, "s1", 9)) == []
    assert sz.late_dropped == 1


# -- property: arrival order and duplicates never change the result ------------------------------------------

_SIDS = ["a", "b", "c", None]


@st.composite
def observation_lists(draw):
    n = draw(st.integers(1, 25))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from(
            ["session_started", "session_ended", "job_started", "job_finished", "status", "power", "power"]
        ))
        machine = draw(st.sampled_from(["laser", "printer"]))
        ts = at(draw(st.integers(0, 180)))
        kw: dict = {}
        if kind == "status":
            kw["state"] = draw(st.sampled_from(["idle", "printing", "busy", "alarm", "offline", "locked"]))
        elif kind == "power":
            kw["power_w"] = draw(st.sampled_from([0.0, 10.0, 30.0, 250.0]))
            if draw(st.booleans()):
                kw["energy_wh"] = float(i * 10)
        else:
            kw["session_id"] = draw(st.sampled_from(_SIDS))
            kw["seq"] = draw(st.none() | st.integers(0, 5))
            kw["badge"] = draw(st.sampled_from([None, "B1"]))
            kw["job_file"] = draw(st.sampled_from([None, "x.gcode"]))
        out.append(Observation(kind=kind, ts=ts, machine=machine, msg_id=f"id{i}", **kw))
    return out


_CFG = SessionizerConfig(power_on_w=20, power_min_on=timedelta(minutes=2), power_min_off=timedelta(minutes=3))


@settings(max_examples=150, deadline=None)
@given(obs=observation_lists(), data=st.data())
def test_permutations_and_duplicates_give_the_same_sessions(obs, data):
    now = at(200)
    expected = sessionize(obs, now, _CFG)
    dupes = data.draw(st.lists(st.sampled_from(obs), max_size=5))
    shuffled = data.draw(st.permutations(obs + dupes))
    assert sessionize(shuffled, now, _CFG) == expected
    # the incremental state machine fed in that order agrees with the batch
    sz = Sessionizer(_CFG)
    store: dict[str, UsageSpan] = {}
    for o in shuffled:
        _apply(sz.feed(o), store)
    _apply(sz.tick(now), store)
    assert sorted(store.values(), key=lambda s: (s.machine, s.start, s.key)) == expected
    assert sz.current() == expected
    assert sz.duplicates == len(dupes)


def test_energy_unknown_without_report_or_readings():
    obs = [ev("session_started", 0, "s1", 1), ev("session_ended", 10, "s1", 2)]
    assert only(sessionize(obs, at(20))).energy_wh is None
    # a reading long before the session says nothing about it
    assert only(sessionize([power(-120, 500.0), *obs], at(20))).energy_wh is None


def test_retention_must_leave_room_for_the_timeout():
    with pytest.raises(ValueError):
        Sessionizer(SessionizerConfig(timeout=timedelta(hours=1), retention=timedelta(minutes=90)))
