"""Property: whatever arrives on whatever topic, in whatever batches, with commits failing now and then,
every message ends stored or dead-lettered exactly once, the valid ones are sessionized, and the worker's
memory equals a clean replay of what is stored."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select

from devices import events as ev
from fablab.extensions import db
from fablab.models.usage import DeadLetter, MqttMessage, UsageSession
from fablab.worker.ingest import BatchResult, Incoming, Ingestor
from tests.worker.conftest import t

BRIDGE = {"printer-1": "bridge-a", "laser-1": "bridge-b"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@st.composite
def valid_message(draw: st.DrawFn) -> Incoming:
    machine = draw(st.sampled_from(sorted(BRIDGE)))
    at = t(draw(st.integers(min_value=0, max_value=120)))
    src = BRIDGE[machine]
    kind = draw(st.sampled_from(["start", "end", "job", "status", "power"]))
    sid = draw(st.sampled_from(["s1", "s2", "s3"]))
    seq = draw(st.integers(min_value=1, max_value=50))
    msg: ev.Message
    if kind in ("start", "end", "job"):
        etype = {"start": "session_started", "end": "session_ended", "job": "job_started"}[kind]
        badge = ev.Badge(tech="em4100", uid="04A1B2C3") if draw(st.booleans()) else None
        msg = ev.MachineEvent(machine=machine, src=src, ts=ev.utc_now_iso(at), type=etype, session_id=sid, seq=seq,
                              badge=badge)
    elif kind == "status":
        msg = ev.MachineStatus(machine=machine, src=src, ts=ev.utc_now_iso(at),
                               state=draw(st.sampled_from(["idle", "printing", "busy", "offline"])))
    else:
        msg = ev.Telemetry(machine=machine, src=src, ts=ev.utc_now_iso(at),
                           readings={"power_w": draw(st.sampled_from([0.0, 5.0, 150.0, 900.0]))})
    return Incoming(msg.topic(), ev.encode(msg))


@st.composite
def hostile_message(draw: st.DrawFn) -> Incoming:
    how = draw(st.sampled_from(["bytes", "json", "mutated", "topic"]))
    if how == "bytes":
        sub = draw(st.sampled_from(["event", "status", "telemetry", "auth/request"]))
        return Incoming(f"fablab/v1/machine/printer-1/{sub}", draw(st.binary(max_size=64)))
    if how == "topic":
        return Incoming("fablab/v1/" + draw(st.text(max_size=30)), draw(st.binary(max_size=32)))
    base = json.loads(draw(valid_message()).payload)
    if how == "json":
        body: Any = draw(json_values)
    else:
        body = dict(base)
        body[draw(st.sampled_from(["v", "msg_id", "ts", "src", "type", "seq", "state", "session_id"]))] = \
            draw(json_values)
        body["msg_id"] = body.get("msg_id") if not isinstance(body.get("msg_id"), str) else ev.new_msg_id()
    sub = draw(st.sampled_from(["event", "status", "telemetry"]))
    return Incoming(f"fablab/v1/machine/printer-1/{sub}", json.dumps(body, allow_nan=True).encode())


def _reset() -> None:
    db.session.rollback()
    for model in (UsageSession, MqttMessage, DeadLetter):
        db.session.execute(model.__table__.delete())
    db.session.commit()


def _count(model) -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(model))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(items=st.lists(st.tuples(st.booleans(), valid_message(), hostile_message()), min_size=1, max_size=40),
       cuts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=8),
       failing=st.lists(st.booleans(), min_size=8, max_size=8), repeat=st.integers(min_value=0, max_value=3))
def test_every_message_has_one_outcome_and_memory_equals_a_replay(app, lab, items, cuts, failing, repeat) -> None:
    _reset()
    stream = [good if pick else bad for pick, good, bad in items]
    stream += stream[:repeat]  # some arrive again (redelivery)
    batches, i, k = [], 0, 0
    while i < len(stream):
        n = cuts[k % len(cuts)]
        batches.append(stream[i:i + n])
        i, k = i + n, k + 1

    fail = {"next": False}

    def on_commit(conn) -> None:
        if fail["next"]:
            fail["next"] = False
            raise sa_exc.OperationalError("COMMIT", {}, Exception("injected commit failure"))

    engine = db.engine
    sa_event.listen(engine, "commit", on_commit)
    ing = Ingestor(app)
    total = BatchResult()
    try:
        for n, batch in enumerate(batches):
            fail["next"] = failing[n % len(failing)]
            r = ing.process(batch, now=t(130))
            for f in ("stored", "duplicates", "dead"):
                setattr(total, f, getattr(total, f) + getattr(r, f))
    finally:
        sa_event.remove(engine, "commit", on_commit)

    # every message: stored, a duplicate of a stored one, or a dead letter; exactly once
    assert total.stored + total.duplicates + total.dead == len(stream)
    assert _count(MqttMessage) == total.stored and _count(DeadLetter) == total.dead
    valid_ids = {json.loads(m.payload)["msg_id"] for m in stream if m in [g for p, g, _ in items if p]}
    stored_ids = set(db.session.scalars(select(MqttMessage.msg_id)))
    assert valid_ids <= stored_ids
    # the worker's memory equals a clean replay of the stored messages (both brought to the same clock:
    # what was last reported per machine depends on when its machine was last heard of)
    ing.tick(now=t(130))
    fresh = Ingestor(app)
    fresh.warm_up(now=t(130))
    fresh.sessionizer.tick(t(130))
    live = sorted((s.key, s.start, s.end, s.closed_by, s.badge) for s in ing.sessionizer.current())
    assert sorted((s.key, s.start, s.end, s.closed_by, s.badge) for s in fresh.sessionizer.current()) == live
    # and the database holds what the memory says (zero-length non-event spans are not use)
    db.session.commit()  # a fresh snapshot: the tick wrote in its own session
    rows = {r.key: (r.start_at, r.end_at) for r in db.session.scalars(select(UsageSession))}
    expected = {s.key: (s.start, s.end) for s in ing.sessionizer.current()
                if s.open or s.duration or s.source == "event"}
    assert rows == expected
