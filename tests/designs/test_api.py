"""The designs API: upload, read, versions, files, forks, and its errors."""

from __future__ import annotations

import pytest

from fablab.extensions import db
from fablab.services.members import create_api_token

from .conftest import data, post_multipart


@pytest.fixture
def token(app_ctx, make_member):
    def make(name: str = "Ada") -> str:
        member = make_member(name=name)
        tok = create_api_token(member)
        db.session.commit()
        return tok

    return make


def _h(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def test_api_round_trip(app, client, token, make_machine) -> None:
    make_machine("prusa", type_slug="3d_printer")
    ada, bo = token("Ada"), token("Bo")
    assert client.get("/api/v1/designs").status_code == 401
    resp = post_multipart(client, "/api/v1/designs", {"title": "Knob", "licence": "cc-by-sa-4.0", "tags": "knob, M3",
                                                      "machine_types": "3d_printer", "description": "Turn it."},
                          [("knob.stl", data("part_binary.stl")), ("knob.gcode", data("cura.gcode"))], headers=_h(ada))
    assert resp.status_code == 201, resp.json
    d = resp.json
    assert d["licence"] == "CC-BY-SA-4.0" and d["tags"] == ["knob", "m3"] and d["machine_types"] == ["3d_printer"]
    files = {f["name"]: f for f in d["latest"]["files"]}
    assert files["knob.stl"]["metadata"]["triangles"] == 112
    assert files["knob.gcode"]["metadata"]["slicer"] == "Cura"

    got = client.get(f"/api/v1/designs/{d['id']}", headers=_h(bo)).json
    assert got["title"] == "Knob" and got["attribution"] == []
    meta = client.get(f"/api/v1/designs/{d['id']}/files/{files['knob.stl']['id']}", headers=_h(bo)).json
    assert meta["sha256"] == files["knob.stl"]["sha256"]
    raw = client.get(f"/api/v1/designs/{d['id']}/files/{files['knob.stl']['id']}/raw", headers=_h(bo),
                     buffered=True)
    assert raw.data == data("part_binary.stl") and raw.headers["Content-Disposition"].startswith("attachment")
    assert raw.headers["X-Content-Type-Options"] == "nosniff" and raw.mimetype == "model/stl"
    assert client.get(f"/api/v1/designs/{d['id']}/files/99999", headers=_h(bo)).status_code == 404

    # Only the author adds versions.
    resp = post_multipart(client, f"/api/v1/designs/{d['id']}/versions", {"changelog": "x"},
                          [("a.obj", data("part.obj"))], headers=_h(bo))
    assert resp.status_code == 403 and resp.json["error"]["code"] == "forbidden"
    resp = post_multipart(client, f"/api/v1/designs/{d['id']}/versions", {"changelog": "OBJ too", "keep": "all"},
                          [("knob.obj", data("part.obj"))], headers=_h(ada))
    assert resp.status_code == 201 and resp.json["number"] == 2
    assert sorted(f["name"] for f in resp.json["files"]) == ["knob.gcode", "knob.obj", "knob.stl"]
    versions = client.get(f"/api/v1/designs/{d['id']}/versions", headers=_h(bo)).json["versions"]
    assert [v["number"] for v in versions] == [1, 2]

    # Forks: copyleft enforced, lineage visible.
    resp = client.post(f"/api/v1/designs/{d['id']}/forks", json={"licence": "MIT"}, headers=_h(bo))
    assert resp.status_code == 422 and resp.json["error"]["code"] == "fork_licence_incompatible"
    resp = client.post(f"/api/v1/designs/{d['id']}/forks", json={"licence": "CC-BY-SA-4.0", "version": 1,
                                                                 "title": "Knob XL"}, headers=_h(bo))
    assert resp.status_code == 201
    fork = resp.json
    assert fork["parent_id"] == d["id"] and fork["attribution"][0]["author"] == "Ada"
    assert sorted(f["name"] for f in fork["latest"]["files"]) == ["knob.gcode", "knob.stl"]  # from version 1
    forks = client.get(f"/api/v1/designs/{d['id']}/forks", headers=_h(ada)).json["forks"]
    assert [f["title"] for f in forks] == ["Knob XL"]

    listing = client.get("/api/v1/designs?sort=forks&q=knob", headers=_h(ada)).json
    assert listing["total"] == 2 and listing["designs"][0]["title"] == "Knob"
    assert client.get("/api/v1/designs/424242", headers=_h(ada)).status_code == 404


def test_api_refusals_explain_why(app, client, token) -> None:
    ada = token()
    resp = post_multipart(client, "/api/v1/designs", {"title": "Closed", "licence": "proprietary"},
                          [("a.stl", data("part_binary.stl"))], headers=_h(ada))
    assert resp.status_code == 422 and resp.json["error"]["code"] == "licence_not_open"
    assert "commons" in resp.json["error"]["message"]
    resp = post_multipart(client, "/api/v1/designs", {"title": "Fake", "licence": "MIT"},
                          [("a.stl", b"<html><script>x</script></html>")], headers=_h(ada))
    assert resp.status_code == 422 and resp.json["error"]["code"] == "file_refused"
    resp = post_multipart(client, "/api/v1/designs", {"title": "Nothing", "licence": "MIT"}, [], headers=_h(ada))
    assert resp.status_code == 422 and resp.json["error"]["code"] == "files_missing"
    resp = post_multipart(client, "/api/v1/designs", {"title": "Types", "licence": "MIT", "machine_types": "warp"},
                          [("a.stl", data("part_binary.stl"))], headers=_h(ada))
    assert resp.status_code == 422 and resp.json["error"]["code"] == "unknown_machine_type"


def test_openapi_documents_the_design_routes(app, client) -> None:
    doc = client.get("/api/v1/openapi.json").json
    assert "multipart/form-data" in doc["paths"]["/designs"]["post"]["requestBody"]["content"]
    for path in ("/designs/{design_id}", "/designs/{design_id}/versions", "/designs/{design_id}/forks",
                 "/designs/{design_id}/files/{file_id}", "/designs/{design_id}/files/{file_id}/raw"):
        assert path in doc["paths"]
