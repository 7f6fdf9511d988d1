"""Request-window labels cannot be mapped back to members: they are random, stored per window, drawn when a
member first requests; the draw's order comes from (seed, label), so the published trace still re-runs
for everyone. Members without a request are one "others" entry. Windows drawn under the old reversible
labels (HMAC(seed, member id)) keep their outcome and stay verifiable by the lab, but their trace is no
longer published (and the migration gives their participants fresh labels)."""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from fablab import create_app
from fablab.domain import allocation as alloc
from fablab.domain import fairshare as fs
from fablab.extensions import db
from fablab.services import members as member_service
from fablab.services import window_draw
from fablab.services import windows as window_service
from fablab.services.fairshare_data import fair_share_for
from tests.conftest import csrf_token, login
from tests.scheduling.conftest import hour, past_use


def _old_label(seed: bytes, member_id: int) -> str:
    """The pseudonym windows used before: anyone with the revealed seed could compute it for ids 1..N."""
    return hmac.new(seed, f"fablab-participant-v1|{member_id}".encode(), hashlib.sha256).hexdigest()[:10]


@pytest.fixture
def drawn(window_machine, qualified_members):
    machine = window_machine()
    window_service.update_policy(machine, "window", quota_slots=1)
    a, b, c, idle1, idle2 = qualified_members(machine, 5)
    past_use(a, machine, days_ago=2, hours=6)
    past_use(idle1, machine, days_ago=3, hours=4)  # uses the machine, asks for nothing this week
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(days=1),
                                   closes_at=now + timedelta(days=1))
    for m in (a, b, c):
        window_service.add_request(m, w, p0 + timedelta(hours=18), p0 + timedelta(hours=20), rank=1, now=now)
        window_service.add_request(m, w, p0 + timedelta(hours=20), p0 + timedelta(hours=22), rank=2, now=now)
    labels = {m.id: window_service.label_of(w, m) for m in (a, b, c)}
    at = w.closes_at + timedelta(minutes=1)
    before = fair_share_for(machine, at)  # the lab's fair-share state as the draw sees it (grants count after)
    window_draw.close_window(w, at)
    return SimpleNamespace(machine=machine, members=(a, b, c), idle=(idle1, idle2), window=w, labels=labels,
                           before=before)


def test_labels_are_random_stored_and_not_recomputable_from_the_seed(drawn) -> None:
    w = drawn.window
    trace, seed = w.trace, bytes.fromhex(w.revealed_seed)
    labels = set(drawn.labels.values())
    assert len(labels) == 3 and all(len(x) == window_service.LABEL_LENGTH for x in labels)
    assert all(set(x) <= set(window_service.LABEL_ALPHABET) for x in labels)
    assert {r["participant"] for r in trace["requests"]} == labels  # the labels drawn at entry, unchanged
    assert window_service.label_of(w, drawn.idle[0]) is None
    # The old attack: with the revealed seed, try every member id there could be.
    last_id = max(m.id for m in (*drawn.members, *drawn.idle))
    guesses = {_old_label(seed, i) for i in range(1, last_id + 100)} | {str(i) for i in range(1, last_id + 100)}
    assert not guesses & labels
    # Nobody without a request is in the trace by label: they are one "others" entry of the totals.
    assert set(trace["shares"]) == labels | {window_draw.OTHERS}
    assert set(trace["usage"]) == {drawn.labels[drawn.members[0].id], "others"}  # those who used it lately
    assert trace["version"] == window_draw.TRACE_VERSION and w.label_scheme == "random"
    # ...which keeps every participant's F as computed from the whole lab, and the draw re-runs.
    state = drawn.before
    first = {t["participant"]: t["factor"] for t in trace["rounds"][0]["order"]}
    for m in drawn.members:
        assert first[drawn.labels[m.id]] == pytest.approx(state.factor(m.id))
    assert window_draw.draw_matches(w) is True
    rerun = window_draw.rerun_allocation(trace, w.revealed_seed)
    assert {o.request.id: o.status.value for o in rerun.outcomes} == {o["id"]: o["status"] for o in trace["outcomes"]}


def test_a_member_sees_their_own_label_only(client, window_machine, qualified_members) -> None:
    machine = window_machine()
    alice, bob = qualified_members(machine, 2)
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(hours=6),
                                   closes_at=now + timedelta(days=1))
    window_service.add_request(alice, w, p0, p0 + timedelta(hours=2), now=now)
    window_service.add_request(bob, w, p0, p0 + timedelta(hours=2), now=now)
    window_service.set_requests(alice, w, [(p0, p0 + timedelta(hours=2), 1)], now)  # replacing keeps the label
    mine, theirs = window_service.label_of(w, alice), window_service.label_of(w, bob)
    assert mine and theirs and mine != theirs
    login(client, alice.email)
    page = client.get(f"/scheduling/machines/{machine.slug}").get_data(as_text=True)
    assert f">{mine}</code>" in page and theirs not in page
    window_draw.close_window(w, w.closes_at)
    html = client.get(f"/scheduling/windows/{w.id}").get_data(as_text=True)
    assert mine in html and theirs in html and bob.name not in html and bob.email not in html
    assert client.get(f"/scheduling/windows/{w.id}/trace.json").json["trace"]["requests"]


def test_a_window_drawn_under_the_old_labels_is_checked_but_its_trace_is_withheld(client, drawn,
                                                                                  make_member) -> None:
    w, (a, *_) = drawn.window, drawn.members
    w.label_scheme = window_draw.LEGACY_SCHEME  # as the migration marks windows drawn before it
    db.session.commit()
    login(client, a.email)
    resp = client.get(f"/scheduling/windows/{w.id}/trace.json")
    assert resp.status_code == 404 and "no longer published" in resp.get_data(as_text=True)
    html = client.get(f"/scheduling/windows/{w.id}").get_data(as_text=True)
    assert "drawn before the lab switched to random labels" in html and "re-running the draw gives this result" in html
    assert f"/scheduling/windows/{w.id}/trace.json" not in html and "Turn order of each round" not in html
    token = member_service.create_api_token(a)
    db.session.commit()
    api = client.get(f"/api/v1/windows/{w.id}", headers={"Authorization": f"Bearer {token}"}).json
    assert api["trace"] is None and api["trace_public"] is False and api["draw_matches"] is True
    client.post("/logout", data={"csrf_token": csrf_token(client, "/scheduling")})

    make_member("steward@example.org", role="steward")
    login(client, "steward@example.org")
    assert client.get(f"/scheduling/windows/{w.id}/trace.json").json["trace"] == w.trace  # the lab still can


# --- the migration ------------------------------------------------------------------------------------------


def _fill(table: sa.Table, values: dict) -> dict:
    """`values` plus a plain value for every other NOT NULL column (the test cares about the named ones)."""
    out = dict(values)
    for col in table.columns:
        if col.name in out or col.nullable or col.primary_key or col.server_default is not None:
            continue
        py = col.type.python_type if not isinstance(col.type, sa.JSON) else dict
        out[col.name] = {int: 0, float: 1.0, str: "x", bool: False, dict: {}}.get(py, datetime.now(UTC))
    return out


def test_migration_relabels_old_windows_keeps_their_outcome_and_grandfathers_credits(tmp_path) -> None:
    from flask_migrate import downgrade, upgrade

    from fablab.models.scheduling import EffortTask, RequestWindow

    cfg = {"TESTING": True, "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x" * 32}
    pg, schema = os.environ.get("FABLAB_TEST_DATABASE_URL"), f"p_{uuid.uuid4().hex[:10]}"
    if pg:
        admin = sa.create_engine(pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        cfg["SQLALCHEMY_DATABASE_URI"] = pg
        cfg["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"options": f"-csearch_path={schema},public"}}
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'p.db'}"
    app = create_app(cfg)
    try:
        with app.app_context():
            upgrade(revision="0006_ingest_integrity")
            meta = sa.MetaData()
            meta.reflect(db.engine)
            t = meta.tables
            seed = bytes(range(32))
            now = datetime.now(UTC).replace(microsecond=0)
            p0 = now + timedelta(days=3)
            with db.engine.begin() as conn:
                conn.execute(t["machine_types"].insert(), [_fill(t["machine_types"], {"id": 1, "slug": "laser"})])
                conn.execute(t["machines"].insert(), [_fill(t["machines"], {"id": 1, "slug": "l", "type_id": 1})])
                conn.execute(t["members"].insert(), [_fill(t["members"], {
                    "id": i, "member_no": 1000 + i, "email": f"m{i}@example.org", "name": f"M{i}", "role": "member",
                    "active": True}) for i in (1, 2, 3)])
                labels = {i: _old_label(seed, i) for i in (1, 2)}
                reqs = [alloc.SlotRequest(10 + i, labels[i], 1, p0, p0 + timedelta(hours=2), 1) for i in (1, 2)]
                result = alloc.allocate_window(reqs, fs.FairShareState({}, {labels[1]: 0.5, labels[2]: 0.5}), seed,
                                               alloc.Quota(), {}, 0.1)
                trace = {"version": 1, "machine": 1, "mode": "window", "band_width": 0.1, "quota":
                         {"max_hours": None, "max_slots": None}, "member_quotas": {}, "usage": {},
                         "shares": {labels[1]: 0.5, labels[2]: 0.5},
                         "requests": [{"id": r.id, "participant": r.member_id, "start": r.start.isoformat(),
                                       "end": r.end.isoformat(), "hours": 2.0, "rank": 1} for r in reqs],
                         "allocated": [r.id for r in reqs],
                         "outcomes": [{"id": o.request.id, "status": o.status.value, "reason": o.reason.value}
                                      for o in result.outcomes]}
                conn.execute(t["request_windows"].insert(), [
                    _fill(t["request_windows"], {"id": 1, "machine_id": 1, "mode": "window", "period_start": p0,
                                                 "period_end": p0 + timedelta(days=1),
                                                 "opens_at": now - timedelta(days=2),
                                                 "closes_at": now - timedelta(days=1), "status": "closed",
                                                 "commitment": hashlib.sha256(seed).hexdigest(),
                                                 "secret_seed": seed.hex(), "revealed_seed": seed.hex(),
                                                 "trace": trace, "created_at": now - timedelta(days=2)})])
                conn.execute(t["request_windows"].insert(), [
                    _fill(t["request_windows"], {"id": 2, "machine_id": 1, "mode": "window",
                                                 "period_start": p0 + timedelta(days=7),
                                                 "period_end": p0 + timedelta(days=8), "opens_at": now,
                                                 "closes_at": now + timedelta(days=1), "status": "open",
                                                 "commitment": "0" * 64, "secret_seed": "0" * 64,
                                                 "created_at": now})])
                conn.execute(t["slot_requests"].insert(), [_fill(t["slot_requests"], {
                    "id": 10 + i, "window_id": 1, "member_id": i, "machine_id": 1, "start_at": p0,
                    "end_at": p0 + timedelta(hours=2), "rank": 1,
                    "status": next(o["status"] for o in trace["outcomes"] if o["id"] == 10 + i)}) for i in (1, 2)])
                conn.execute(t["slot_requests"].insert(), [_fill(t["slot_requests"], {
                    "id": 20, "window_id": 2, "member_id": 3, "machine_id": 1, "start_at": p0 + timedelta(days=7),
                    "end_at": p0 + timedelta(days=7, hours=1), "rank": 1, "status": "pending"})])
                conn.execute(t["effort_tasks"].insert(), [_fill(t["effort_tasks"], {
                    "id": 1, "title": "Clean", "kind": "cleaning", "base_hours": 1.0, "people_needed": 1,
                    "opened_at": now - timedelta(days=5), "completed_at": now - timedelta(days=4)})])

            upgrade(revision="0008_privacy_effort")
            old = db.session.get(RequestWindow, 1)
            assert old.label_scheme == window_draw.LEGACY_SCHEME and old.trace == trace  # the outcome stands
            new_labels = {p.member_id: p.label for p in old.participants}
            assert set(new_labels) == {1, 2} and not set(new_labels.values()) & set(labels.values())
            assert all(len(x) == window_service.LABEL_LENGTH for x in new_labels.values())
            assert window_draw.draw_matches(old) is True  # still verifiable from the stored trace
            # Stand-ins, not Member rows: at 0008 the members table lacks the model's later columns.
            member, steward = SimpleNamespace(id=1, is_staff=False), SimpleNamespace(id=99, is_staff=True)
            assert window_draw.published_trace(old, member) is None
            assert window_draw.published_trace(old, steward) == trace
            res = window_draw.window_results(old, member)
            assert res.my_label == new_labels[1] and not res.trace_public
            assert {row.participant for row in res.rows} == {"you", new_labels[2]}
            still_open = db.session.get(RequestWindow, 2)
            assert still_open.label_scheme == "random" and [p.member_id for p in still_open.participants] == [3]
            assert db.session.get(EffortTask, 1).confirmed_at is not None  # credited under the old rules
            db.session.remove()
            downgrade(revision="0006_ingest_integrity")
            assert "window_participants" not in sa.inspect(db.engine).get_table_names()
            db.engine.dispose()
    finally:
        if pg:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
