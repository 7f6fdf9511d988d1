from __future__ import annotations

from fablab.extensions import db
from fablab.services.members import create_api_token


def _token(make_member, role="member") -> str:
    member = make_member(role=role)
    token = create_api_token(member)
    db.session.commit()
    return token


def test_machines_need_a_token(client) -> None:
    resp = client.get("/api/v1/machines")
    assert resp.status_code == 401
    assert resp.json["error"]["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    resp = client.get("/api/v1/machines", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and "unknown" in resp.json["error"]["message"]


def test_machines_list_and_detail(client, make_member, make_machine) -> None:
    make_machine("laser-1", type_slug="laser_cutter", location="Laser room")
    make_machine("prusa-1", type_slug="3d_printer")
    auth = {"Authorization": f"Bearer {_token(make_member)}"}
    resp = client.get("/api/v1/machines", headers=auth)
    assert resp.status_code == 200
    assert [m["slug"] for m in resp.json["machines"]] == ["laser-1", "prusa-1"]
    one = client.get("/api/v1/machines/laser-1", headers=auth).json
    assert one["type"] == "laser_cutter" and one["location"] == "Laser room"
    assert one["live"]["state"] == "unknown"
    missing = client.get("/api/v1/machines/nope", headers=auth)
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"


def test_revoked_token_is_refused(client, make_member, make_machine) -> None:
    member = make_member()
    token = create_api_token(member)
    db.session.commit()
    member.tokens[0].revoked = True
    db.session.commit()
    assert client.get("/api/v1/machines", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_openapi_describes_every_api_route(app, client) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = rule.rule.removeprefix("/api/v1")
        for arg in rule.arguments:
            path = path.replace(f"<id:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in described, f"{method} {path} missing from openapi.json"
