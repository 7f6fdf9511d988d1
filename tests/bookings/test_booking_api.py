from __future__ import annotations

from datetime import timedelta

import pytest

from fablab.extensions import db
from fablab.services.members import create_api_token
from tests.bookings.conftest import slot

pytestmark = pytest.mark.dates  # runs once per frozen clock (tests/support/clock.py)


def _auth(member) -> dict[str, str]:
    token = create_api_token(member)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_create_get_list_delete(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member()
    qualified(ada, machine)
    auth = _auth(ada)
    start, end = slot(2, 2)
    resp = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": start.isoformat(),
                                                 "end": end.isoformat()}, headers=auth)
    assert resp.status_code == 201, resp.json
    booking = resp.json
    assert booking["status"] == "confirmed" and booking["machine"] == "laser-1"
    got = client.get(f"/api/v1/bookings/{booking['id']}", headers=auth)
    assert got.status_code == 200 and got.json["id"] == booking["id"]
    listed = client.get("/api/v1/bookings", headers=auth).json["bookings"]
    assert [b["id"] for b in listed] == [booking["id"]]
    gone = client.delete(f"/api/v1/bookings/{booking['id']}", headers=auth)
    assert gone.status_code == 200 and gone.json["status"] == "cancelled"
    again = client.delete(f"/api/v1/bookings/{booking['id']}", headers=auth)
    assert again.status_code == 422 and again.json["error"]["code"] == "booking_not_active"


def test_rejections_are_409_or_422_with_rule_code(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1", max_minutes=180)
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    qualified(bo, machine)
    start, end = slot(2, 2)
    assert client.post("/api/v1/bookings", json={"machine": "laser-1", "start": start.isoformat(),
                                                 "end": end.isoformat()}, headers=_auth(ada)).status_code == 201
    bo_auth = _auth(bo)
    clash = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": start.isoformat(),
                                                  "end": end.isoformat()}, headers=bo_auth)
    assert clash.status_code == 409
    assert clash.json["error"]["code"] == "overlap" and clash.json["error"]["next_free"]["start"]
    long = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": end.isoformat(),
                                                 "end": (end + timedelta(hours=4)).isoformat()}, headers=bo_auth)
    assert long.status_code == 422 and long.json["error"]["code"] == "too_long"
    assert "3 h" in long.json["error"]["message"] and "4 h" in long.json["error"]["message"]
    past = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": (start - timedelta(days=2)).isoformat(),
                                                 "minutes": 60}, headers=bo_auth)
    assert past.status_code == 422 and past.json["error"]["code"] == "in_the_past"


def test_bad_input(client, make_member, open_machine) -> None:
    open_machine("laser-1")
    auth = _auth(make_member())
    start, end = slot(2)
    assert client.post("/api/v1/bookings", data="nope", headers=auth).status_code == 400
    unknown = client.post("/api/v1/bookings", json={"machine": "teleporter", "start": start.isoformat(),
                                                    "end": end.isoformat()}, headers=auth)
    assert unknown.status_code == 404
    bad = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": "tomorrow", "end": end.isoformat()},
                      headers=auth)
    assert bad.status_code == 400 and "ISO 8601" in bad.json["error"]["message"]
    backwards = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": end.isoformat(),
                                                      "end": start.isoformat()}, headers=auth)
    assert backwards.status_code == 422 and backwards.json["error"]["code"] == "end_before_start"


def test_availability_endpoint(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada = make_member()
    qualified(ada, machine)
    auth = _auth(ada)
    start, end = slot(2, 2)
    client.post("/api/v1/bookings", json={"machine": "laser-1", "start": start.isoformat(),
                                          "end": end.isoformat()}, headers=auth)
    resp = client.get("/api/v1/machines/laser-1/availability",
                      query_string={"from": (start - timedelta(hours=1)).isoformat(),
                                    "to": (end + timedelta(hours=1)).isoformat()}, headers=auth)
    assert resp.status_code == 200
    free = resp.json["free"]
    assert len(free) == 2
    assert free[0]["end"] == start.astimezone(free and __import__("zoneinfo").ZoneInfo("Europe/Berlin")).isoformat()
    bad = client.get("/api/v1/machines/laser-1/availability", query_string={"from": "x"}, headers=auth)
    assert bad.status_code == 400


def test_other_members_booking_is_invisible(client, make_member, open_machine, qualified) -> None:
    machine = open_machine("laser-1")
    ada, bo = make_member(), make_member()
    qualified(ada, machine)
    start, end = slot(2)
    created = client.post("/api/v1/bookings", json={"machine": "laser-1", "start": start.isoformat(),
                                                    "end": end.isoformat()}, headers=_auth(ada)).json
    assert client.get(f"/api/v1/bookings/{created['id']}", headers=_auth(bo)).status_code == 404
