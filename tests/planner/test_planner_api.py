"""GET /api/v1/day and /api/v1/find: the same answers as the pages, as JSON with the API's errors."""

from __future__ import annotations

from fablab.extensions import db
from fablab.services import bookings as svc
from fablab.services.members import create_api_token
from tests.planner.conftest import EVENINGS, at, soon


def _token(member) -> dict[str, str]:
    token = create_api_token(member)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_day_and_find_over_the_api(client, machine, make_member, qualified) -> None:
    laser = machine("laser-1", name="Laser One", opening_hours=EVENINGS)
    ada, bo = make_member("ada@example.org"), make_member("bo@example.org", name="Bo Berg")
    steward = make_member("s@example.org", role="steward")
    for m in (ada, bo):
        qualified(m, laser)
    day = soon(1)
    b = svc.create_booking(bo, laser, at(day, 18), at(day, 19))
    body = client.get(f"/api/v1/day?date={day.isoformat()}", headers=_token(ada)).get_json()
    cells = body["machines"][0]["cells"]
    booked = [c for c in cells if c.get("state") == "booked"]
    assert booked and "member" not in booked[0] and {c["state"] for c in cells} >= {"free", "booked", "closed"}
    staff = client.get(f"/api/v1/day?date={day.isoformat()}", headers=_token(steward)).get_json()
    mine = [c for c in staff["machines"][0]["cells"] if c.get("booking_id") == b.id]
    assert mine[0]["member"] == "Bo Berg" and mine[0]["member_no"] == bo.member_no
    resp = client.get(f"/api/v1/find?what=machine:laser-1&minutes=60&from={day.isoformat()}T18:00",
                      headers=_token(ada))
    assert resp.status_code == 200 and resp.get_json()["slots"][0]["start"].startswith(f"{day.isoformat()}T19:00")
    bad = client.get("/api/v1/find?what=machine:nope&minutes=60", headers=_token(ada))
    assert bad.status_code == 400 and "nope" in bad.get_json()["error"]["message"]
    assert client.get("/api/v1/day?date=soon", headers=_token(ada)).status_code == 400
    assert client.get("/api/v1/day").status_code == 401
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/day" in doc["paths"] and "/find" in doc["paths"]
