"""Hostile payloads, poison isolation and exact retries, on the real database (no broker needed here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from devices import events as ev
from fablab.extensions import db
from fablab.models.usage import DeadLetter, MqttMessage, UsageSession
from fablab.security import badge_digest
from fablab.services import usage as usage_service
from fablab.worker.ingest import Incoming, Ingestor
from tests.worker.conftest import status, t


def _count(model, *where) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _raw(machine: str, sub: str, payload: object, **env: object) -> Incoming:
    body = {"v": 1, "msg_id": ev.new_msg_id(), "ts": ev.utc_now_iso(t(1)), "src": "bridge-a", **env}
    if isinstance(payload, dict):
        body.update(payload)
    return Incoming(f"fablab/v1/machine/{machine}/{sub}", json.dumps(body).encode())


def _reasons() -> list[str]:
    db.session.commit()
    return list(db.session.scalars(select(DeadLetter.reason).order_by(DeadLetter.id)))


HOSTILE: dict[str, bytes] = {
    "deep nesting": b'{"v":1,"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "deep but small": b'{"v":1,"a":' + b"[" * 200 + b"]" * 200 + b"}",
    "integer of 5000 digits": b'{"v":1,"msg_id":"x","ts":"2026-01-01T00:00:00Z","src":"b","seq":' + b"9" * 5000
    + b"}",
    "not UTF-8": b"\xff\xfe\xfd",
    "not an object": b"[1,2,3]",
    "oversized": b'{"v":1,"pad":"' + b"x" * (ev.MAX_PAYLOAD + 10) + b'"}',
    "empty": b"",
}


def test_every_hostile_payload_becomes_a_dead_letter_and_neighbours_are_kept(app, lab, event) -> None:
    good = [event("printer-1", "session_started", t(1)), event("printer-1", "session_ended", t(20))]
    hostile = [Incoming("fablab/v1/machine/printer-1/event", raw) for raw in HOSTILE.values()]
    hostile += [
        _raw("printer-1", "event", {"type": "session_started", "session_id": "s2", "seq": 7, "energy_wh": 1e400}),
        _raw("printer-1", "event", {"type": "session_started", "session_id": "s" * 129, "seq": 8}),
        _raw("printer-1", "event", {"type": "session_started", "session_id": "s\u0000", "seq": 9}),
        _raw("printer-1", "event", {"type": "error", "session_id": None, "seq": 10, "reason": "r" * 501}),
        _raw("printer-1", "event", {"type": "error", "session_id": None, "seq": 11, "detail": {"x": "y" * 5000}}),
        _raw("printer-1", "event", {"type": "error", "session_id": None, "seq": 2**64}),
        _raw("printer-1", "status", {"state": "printing", "job": {"file": "f" * 256 + ".gcode"}}),
        _raw("printer-1", "auth/request", {"badge": {"tech": "em4100", "uid": "A" * 65}}),
        _raw("printer-1", "status", {"state": "idle"}, src="x" * 200),
        _raw("printer-1", "telemetry", {f"r{i}": i for i in range(65)}),
        Incoming("fablab/v1/machine/printer-1/event", b'{"v":1,"msg_id":"n1","ts":"2026-01-01T00:00:00Z",'
                 b'"src":"bridge-a","type":"error","session_id":null,"seq":1,"energy_wh":NaN}'),
        Incoming("fablab/v1/machine/printer-1/event", b'{"v":1,"msg_id":"u1","ts":"2026-01-01T00:00:00Z",'
                 b'"src":"bridge-a","type":"error","session_id":null,"seq":1,"reason":"\\ud800"}'),
        Incoming("fablab/v1/machine/printer-1/event", b'{"v":1,"msg_id":"o1","ts":"0001-01-01T00:00:00+05:00",'
                 b'"src":"bridge-a","type":"error","session_id":null,"seq":1}'),
        Incoming("fablab/v1/\u0000/x", b"{}"),
    ]
    batch = good[:1] + hostile + good[1:]
    result = Ingestor(app).process(batch, now=t(21))
    assert result.dead == len(hostile) and result.stored == 2, _reasons()
    reasons = _reasons()
    assert len(reasons) == len(hostile) and all(reasons)
    assert any("nested deeper" in r for r in reasons)
    assert any("non-finite" in r for r in reasons)
    assert any("longer than 255" in r for r in reasons) and any("badge.uid" in r for r in reasons)
    assert any("NUL" in r for r in reasons) and any("surrogate" in r for r in reasons)
    s = db.session.scalar(select(UsageSession))
    assert s is not None and not s.open and s.closed_by == "end_event"  # the good neighbours made their session
    # every dead letter is storable text (no NUL) and never longer than its column
    for payload, topic in db.session.execute(select(DeadLetter.payload, DeadLetter.topic)):
        assert "\x00" not in payload and "\x00" not in topic and len(topic) <= 512


def test_nonfinite_telemetry_is_nulled_with_a_note(app, lab) -> None:
    raw = (b'{"v":1,"msg_id":"tele-1","ts":"' + ev.utc_now_iso(t(1)).encode() +
           b'","src":"bridge-a","hotend_c":NaN,"bed_c":-Infinity,"power_w":12.5,"fan":{"rpm":Infinity,"on":true}}')
    result = Ingestor(app).process([Incoming("fablab/v1/machine/printer-1/telemetry", raw)], now=t(2))
    assert result.stored == 1 and result.dead == 0
    row = db.session.scalar(select(MqttMessage).where(MqttMessage.msg_id == "tele-1"))
    assert row.payload["hotend_c"] is None and row.payload["bed_c"] is None and row.payload["power_w"] == 12.5
    assert row.payload["fan"] == {"rpm": None, "on": True}
    assert row.note and "bed_c" in row.note and "hotend_c" in row.note and "fan" in row.note


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59Z", "1971-01-01T00:00:00Z", "+10:00"])
def test_an_event_time_far_from_the_time_received_takes_the_received_time(app, lab, event, client,
                                                                          make_member, when) -> None:
    now = t(0)
    ts = ev.utc_now_iso(now + timedelta(hours=30)) if when == "+10:00" else when
    msgs = [_raw("printer-1", "event", {"type": "session_started", "session_id": "far", "seq": 1}, ts=ts),
            _raw("printer-1", "event", {"type": "session_ended", "session_id": "far", "seq": 2}, ts=ts)]
    result = Ingestor(app).process(msgs, now=now)
    assert result.stored == 2
    rows = list(db.session.scalars(select(MqttMessage)))
    assert all(r.ts == now and r.note and "received time used" in r.note for r in rows)
    s = db.session.scalar(select(UsageSession))
    assert s.start_at == now
    # and the usage pages keep working for every role
    from tests.conftest import login

    for role in ("member", "steward", "admin"):
        m = make_member(role=role)
        c = app.test_client()
        login(c, m.email)
        for path in ("/usage", "/usage/unbooked", "/admin/dead-letters"):
            assert c.get(path).status_code < 500, (role, path)


def test_the_same_msg_id_three_times_in_one_batch_is_stored_and_answered_once(app, lab) -> None:
    answered: list[ev.Message] = []
    req = ev.AuthRequest(machine="printer-1", src="bridge-a", badge=ev.Badge(tech="em4100", uid="04A1B2C3"))
    item = Incoming(req.topic(), ev.encode(req))
    result = Ingestor(app, publish=answered.append).process([item, item, item], now=t(0))
    assert result.stored == 1 and result.duplicates == 2 and result.auth == 1
    assert len(answered) == 1 and _count(MqttMessage) == 1


def test_badge_uids_are_never_stored_in_clear(app, lab, event) -> None:
    uid = "04A1B2C3"
    req = ev.AuthRequest(machine="printer-1", src="bridge-a", badge=ev.Badge(tech="em4100", uid=uid))
    bad = _raw("printer-1", "auth/request", {"badge": {"tech": "em4100", "uid": uid}, "extra": float("inf")})
    bad.payload = bad.payload.replace(b"Infinity", b"[" * 30 + b"]" * 30)  # refused, with a UID inside
    Ingestor(app).process([Incoming(req.topic(), ev.encode(req)),
                           event("printer-1", "session_started", t(1), badge=ev.Badge(tech="em4100", uid=uid)),
                           event("printer-1", "session_ended", t(5)), bad], now=t(6))
    digest = badge_digest(app.config["SECRET_KEY"], uid)
    db.session.commit()
    for payload in db.session.scalars(select(MqttMessage.payload)):
        assert uid not in json.dumps(payload)
    stored = db.session.scalar(select(MqttMessage.payload).where(MqttMessage.kind == "auth_request"))
    assert stored["badge"] == {"tech": "em4100", "uid_hash": digest, "uid_last4": "B2C3"}
    s = db.session.scalar(select(UsageSession))
    assert s.badge == digest and s.badge_last4 == "B2C3" and s.member_id == lab["ada"].id
    for payload in db.session.scalars(select(DeadLetter.payload)):
        assert uid not in payload


@pytest.fixture
def fail_first_commit(app) -> Iterator[list[int]]:
    """The next database commit fails once (as a lost connection would), then commits work again."""
    calls: list[int] = []

    def on_commit(conn) -> None:
        if not calls:
            calls.append(1)
            raise sa_exc.OperationalError("COMMIT", {}, Exception("injected: connection lost at commit"))

    with app.app_context():
        engine = db.engine
    sa_event.listen(engine, "commit", on_commit)
    yield calls
    sa_event.remove(engine, "commit", on_commit)


def _spans(ing: Ingestor) -> list[tuple]:
    return [(s.key, s.start, s.end, s.closed_by, s.open) for s in ing.sessionizer.current()]


def _rows() -> list[tuple]:
    db.session.commit()
    return [(r.key, r.start_at, r.end_at, r.closed_by, r.open)
            for r in db.session.scalars(select(UsageSession).order_by(UsageSession.key))]


def test_a_batch_retried_after_a_failed_commit_ends_as_a_clean_run(app, lab, event, fail_first_commit) -> None:
    ing = Ingestor(app)
    ing.process([event("printer-1", "session_started", t(1)), status("printer-1", "printing", t(1))], now=t(2))
    assert fail_first_commit == [1]  # that commit failed; the batch was retried on its own
    # the end event arrives; its batch fails once at commit and is retried by the worker loop
    end = [event("printer-1", "session_ended", t(30), energy_wh=12.0), status("printer-1", "idle", t(30))]
    ing.process(end, now=t(31))
    rows = _rows()
    assert len(rows) == 1 and rows[0][3] == "end_event" and not rows[0][4], rows
    # the worker's memory equals a clean replay of what is stored
    fresh = Ingestor(app)
    fresh.warm_up(now=t(31))
    assert _spans(fresh) == _spans(ing)


def test_a_failure_the_worker_loop_retries_rolls_the_sessionizer_back(app, lab, event, monkeypatch) -> None:
    """The database goes away mid-batch: the batch is raised to the loop (not dead-lettered), and the
    sessionizer forgets what it saw, so the retry sessionizes the end event."""
    ing = Ingestor(app)
    ing.process([event("printer-1", "session_started", t(1))], now=t(2))
    real = usage_service.apply_span
    state = {"fail": True}

    def flaky(*a, **kw):
        if state["fail"]:
            raise sa_exc.OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return real(*a, **kw)

    monkeypatch.setattr(usage_service, "apply_span", flaky)
    monkeypatch.setattr(ing, "database_ok", lambda: False)  # as it is while the server is away
    end = [event("printer-1", "session_ended", t(30))]
    with pytest.raises(sa_exc.OperationalError):
        ing.process(end, now=t(31))
    assert _count(DeadLetter) == 0 and _rows()[0][4]  # nothing lost, still open
    state["fail"] = False
    ing.process(end, now=t(32))
    rows = _rows()
    assert rows[0][3] == "end_event" and not rows[0][4]


def test_an_unforeseen_failure_is_narrowed_to_its_message(app, lab, event, monkeypatch) -> None:
    """A message that breaks something nobody foresaw (here: the live-state update) becomes a dead letter
    with the exception as its reason; the rest of its batch commits."""
    real = usage_service.set_live_state

    def breaks_on_poison(machine, state, at, progress=None, job=None):
        if job == "poison.gcode":
            raise RuntimeError("nobody foresaw this")
        return real(machine, state, at, progress, job)

    monkeypatch.setattr(usage_service, "set_live_state", breaks_on_poison)
    poison = ev.MachineStatus(machine="printer-1", src="bridge-a", ts=ev.utc_now_iso(t(3)), state="printing",
                              job=ev.JobInfo(file="poison.gcode", progress=0.5))
    batch = [event("printer-1", "session_started", t(1))]
    batch += [event("laser-1", "error", t(2), session_id=None, src="bridge-b", reason=f"r{i}") for i in range(40)]
    batch += [Incoming(poison.topic(), ev.encode(poison)), event("printer-1", "session_ended", t(9))]
    ing = Ingestor(app)
    result = ing.process(batch, now=t(10))
    assert result.dead == 1 and result.stored == len(batch) - 1
    reasons = _reasons()
    assert len(reasons) == 1 and "RuntimeError" in reasons[0] and "nobody foresaw" in reasons[0]
    assert _count(MqttMessage, MqttMessage.msg_id == poison.msg_id) == 0
    rows = _rows()
    assert len(rows) == 1 and rows[0][3] == "end_event"
    fresh = Ingestor(app)
    fresh.warm_up(now=t(10))
    assert _spans(fresh) == _spans(ing)


def test_a_steward_recognises_an_unknown_card_by_its_last_characters(app, lab, event, make_member) -> None:
    from tests.conftest import login

    Ingestor(app).process([event("printer-1", "session_started", t(1), badge=ev.Badge(tech="em4100", uid="CAFE9876")),
                           event("printer-1", "session_ended", t(30))], now=t(31))
    steward = make_member(role="steward")
    c = app.test_client()
    login(c, steward.email)
    page = c.get("/usage/unbooked").get_data(as_text=True)
    assert "card …9876" in page and "CAFE9876" not in page


def test_a_bridge_posing_as_the_server_is_dead_lettered_not_dropped(app, lab) -> None:
    spoof = ev.MachineEvent(machine="printer-1", src="fablab-server", type="session_started", session_id="x", seq=1)
    echo = ev.AuthResponse(machine="printer-1", src="fablab-server", request_id="r1", decision="deny")
    result = Ingestor(app).process([Incoming(spoof.topic(), ev.encode(spoof)), Incoming(echo.topic(), ev.encode(echo))],
                                   now=t(0))
    assert result.dead == 1 and result.stored == 0  # our own echo is skipped; the spoof is kept for review
    assert "unknown bridge 'fablab-server'" in _reasons()[0]
