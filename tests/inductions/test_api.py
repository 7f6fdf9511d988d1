"""GET /api/v1/inductions, POST and DELETE /api/v1/inductions/<id>/signup; in the OpenAPI document."""

from __future__ import annotations

from fablab.api.openapi import PATHS
from fablab.extensions import db
from fablab.services import machines as machine_service
from fablab.services.members import create_api_token


def _auth(member, scope: str = "write") -> dict[str, str]:
    token = create_api_token(member, scope=scope)
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_list_sign_up_waitlist_and_cancel(client, make_member, make_session) -> None:
    s = make_session(capacity=1)
    a, b = make_member(), make_member()
    ha, hb = _auth(a), _auth(b)
    data = client.get("/api/v1/inductions", headers=ha).get_json()
    [row] = data["sessions"]
    assert (row["id"], row["places_left"], row["capacity"], row["my_signup"]) == (s.id, 1, 1, None)
    assert row["machine_type"] == "laser_cutter" and row["place"] == "Workshop"
    resp = client.post(f"/api/v1/inductions/{s.id}/signup", headers=ha)
    assert resp.status_code == 201 and resp.get_json()["status"] == "confirmed"
    resp = client.post(f"/api/v1/inductions/{s.id}/signup", headers=hb)
    assert resp.status_code == 201 and resp.get_json()["status"] == "waitlisted" and resp.get_json()["position"] == 1
    resp = client.post(f"/api/v1/inductions/{s.id}/signup", headers=hb)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "already_signed_up"
    resp = client.delete(f"/api/v1/inductions/{s.id}/signup", headers=ha)
    assert resp.status_code == 200 and resp.get_json()["status"] == "cancelled"
    mine = client.get("/api/v1/inductions", headers=hb).get_json()["sessions"][0]["my_signup"]
    assert mine == {"status": "confirmed", "position": None}  # b moved up
    resp = client.delete(f"/api/v1/inductions/{s.id}/signup", headers=ha)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_signed_up"


def test_refusals_have_codes_and_details(client, make_member, make_session, make_machine, laser) -> None:
    safety = make_machine("bench", type_slug="safety_induction").machine_type
    s = make_session(prerequisite_type_ids=[safety.id])
    m = make_member()
    resp = client.post(f"/api/v1/inductions/{s.id}/signup", headers=_auth(m))
    err = resp.get_json()["error"]
    assert resp.status_code == 422 and err["code"] == "missing_prerequisites"
    assert "Safety Induction" in err["message"]
    qualified = make_member()
    machine_service.grant(qualified, by=None, machine_type=laser.machine_type)
    db.session.commit()
    resp = client.post(f"/api/v1/inductions/{s.id}/signup", headers=_auth(qualified))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "already_qualified"


def test_bad_input_and_auth(client, make_member, make_session) -> None:
    s = make_session()
    h = _auth(make_member())
    assert client.get("/api/v1/inductions").status_code == 401
    assert client.post("/api/v1/inductions/999999/signup", headers=h).status_code == 404
    assert client.get("/api/v1/inductions?type=abc", headers=h).status_code == 400
    assert client.post(f"/api/v1/inductions/{s.id}/signup", headers=_auth(make_member(), "read")).status_code == 403
    assert client.get(f"/api/v1/inductions?type={s.machine_type_id + 1000}", headers=h).get_json() == {"sessions": []}


def test_documented_in_openapi(client) -> None:
    assert set(PATHS["/inductions"]) == {"get"}
    assert set(PATHS["/inductions/{session_id}/signup"]) == {"post", "delete"}
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/inductions/{session_id}/signup" in doc["paths"]


def test_attendance_by_the_trainer_only(client, make_member, make_session, trainer, laser) -> None:
    from fablab.services import inductions as svc

    s = make_session(capacity=2)
    learner, stranger = make_member(), make_member()
    svc.sign_up(learner, s.id)
    db.session.commit()
    body = {"member_id": learner.id, "status": "passed"}
    resp = client.post(f"/api/v1/inductions/{s.id}/attendance", json=body, headers=_auth(stranger))
    assert resp.status_code == 403
    resp = client.post(f"/api/v1/inductions/{s.id}/attendance", json=body, headers=_auth(trainer))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "not_started"
    resp = client.post(f"/api/v1/inductions/{s.id}/attendance", json={"member_id": learner.id, "status": "great"},
                       headers=_auth(trainer))
    assert resp.status_code == 400
    assert not machine_service.qualification_state(learner, laser, s.start_at).qualified
    # Once the session runs, the trainer's "passed" grants the qualification.
    from datetime import UTC, datetime, timedelta

    s.start_at = datetime.now(UTC) - timedelta(minutes=30)
    db.session.commit()
    resp = client.post(f"/api/v1/inductions/{s.id}/attendance", json=body, headers=_auth(trainer))
    assert resp.status_code == 200 and resp.get_json() == {"member_id": learner.id, "status": "passed"}
    db.session.expire_all()
    assert machine_service.qualification_state(learner, laser, datetime.now(UTC)).qualified
