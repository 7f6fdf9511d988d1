"""Fair scheduling over the JSON API: requests, window results with seed, waitlist, offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fablab.domain import lottery
from fablab.extensions import db
from fablab.services import bookings as booking_service
from fablab.services import members as member_service
from fablab.services import window_draw
from fablab.services import windows as window_service
from tests.scheduling.conftest import hour

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def _auth(member) -> dict[str, str]:
    token = member_service.create_api_token(member)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_requests_results_and_seed_over_the_api(client, window_machine, qualified_members) -> None:
    machine = window_machine()
    alice, bob = qualified_members(machine, 2)
    ha, hb = _auth(alice), _auth(bob)
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(hours=6),
                                   closes_at=now + timedelta(days=1))
    body = {"machine": machine.slug, "start": p0.isoformat(), "end": (p0 + timedelta(hours=2)).isoformat(), "rank": 1}
    resp = client.post("/api/v1/requests", json=body, headers=ha)
    assert resp.status_code == 201, resp.json
    assert resp.json["status"] == "pending" and resp.json["window_id"] == w.id
    assert client.post("/api/v1/requests", json=body, headers=ha).status_code == 409  # twice
    assert client.post("/api/v1/requests", json=body, headers=hb).status_code == 201
    outside = dict(body, start=(p0 + timedelta(days=3)).isoformat(), end=(p0 + timedelta(days=3, hours=1)).isoformat())
    assert client.post("/api/v1/requests", json=outside, headers=ha).json["error"]["code"] == "no_window"
    assert [r["rank"] for r in client.get("/api/v1/requests", headers=ha).json["requests"]] == [1]

    open_res = client.get(f"/api/v1/windows/{w.id}", headers=ha).json
    assert open_res["commitment"] == w.commitment and open_res["seed"] is None and open_res["trace"] is None

    window_draw.close_window(w, w.closes_at)
    res = client.get(f"/api/v1/windows/{w.id}", headers=ha).json
    assert lottery.verify(res["seed"], res["commitment"]) and res["seed_matches"] and res["draw_matches"]
    assert len(res["mine"]) == 1 and res["mine"][0]["message"]
    assert {r["participant"] for r in res["results"]} >= {"you"}
    assert res["trace"]["requests"] and all("participant" in r for r in res["trace"]["requests"])
    listed = client.get(f"/api/v1/windows?machine={machine.slug}", headers=ha).json["windows"]
    assert [x["id"] for x in listed] == [w.id]
    # the window is closed: no more withdrawing
    rid = res["mine"][0]["id"]
    assert client.delete(f"/api/v1/requests/{rid}", headers=ha).status_code == 409


def test_withdraw_and_errors(client, window_machine, qualified_members) -> None:
    machine = window_machine()
    alice, bob = qualified_members(machine, 2)
    now = datetime.now(UTC)
    p0 = hour(now) + timedelta(days=2)
    w = window_service.open_window(machine, None, now, period_start=p0, period_end=p0 + timedelta(hours=6),
                                   closes_at=now + timedelta(days=1))
    r = window_service.add_request(alice, w, p0, p0 + timedelta(hours=1))
    assert client.delete(f"/api/v1/requests/{r.id}", headers=_auth(bob)).status_code == 404
    assert client.delete(f"/api/v1/requests/{r.id}", headers=_auth(alice)).status_code == 200
    assert client.get("/api/v1/requests").status_code == 401
    bad = client.post("/api/v1/requests", json={"machine": machine.slug, "start": "soon", "end": "later"},
                      headers=_auth(alice))
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_time"


def test_waitlist_and_offer_claim_over_the_api(client, window_machine, qualified_members) -> None:
    machine = window_machine(mode="open")
    owner, alice = qualified_members(machine, 2)
    h = _auth(alice)
    now = datetime.now(UTC)
    start = hour(now) + timedelta(hours=5)
    bk = booking_service.create_booking(owner, machine, start, start + timedelta(hours=1), now=now)
    # An explicit end: the default, the rest of the lab's week, may end before `start` (a Sunday evening).
    resp = client.post("/api/v1/waitlist", json={"machine": machine.slug, "kind": "any", "min_hours": 1,
                                                 "end": (start + timedelta(hours=2)).isoformat()}, headers=h)
    assert resp.status_code == 201 and resp.json["kind"] == "any"
    assert client.post("/api/v1/waitlist", json={"machine": machine.slug, "kind": "slot"}, headers=h).status_code == 400
    booking_service.cancel_booking(bk, owner)
    wl = client.get("/api/v1/waitlist", headers=h).json
    assert len(wl["entries"]) == 1 and len(wl["offers"]) == 1
    offer = wl["offers"][0]
    assert offer["first_come"] is False and offer["start"] is not None
    claimed = client.post(f"/api/v1/offers/{offer['id']}/claim", headers=h)
    assert claimed.status_code == 201, claimed.json
    assert claimed.json["booking"]["machine"] == machine.slug
    assert client.post(f"/api/v1/offers/{offer['id']}/claim", headers=h).status_code == 409
    assert client.get("/api/v1/offers", headers=h).json["offers"] == []
    entry_id = wl["entries"][0]["id"]
    assert client.delete(f"/api/v1/waitlist/{entry_id}", headers=h).status_code == 200


def test_fair_share_over_the_api(client, window_machine, qualified_members) -> None:
    machine = window_machine()
    (alice,) = qualified_members(machine, 1)
    res = client.get(f"/api/v1/fair-share?machine={machine.slug}", headers=_auth(alice)).json
    assert res["factor"] == 1.0 and res["mode"] == "window" and "first in line" in res["explanation"]
