"""Sharing a design through the web form with real files: metadata, previews, downloads, roles."""

from __future__ import annotations

import io

from sqlalchemy import select

from fablab.extensions import db
from fablab.models.designs import Design, DesignFile
from tests.conftest import csrf_token, login

from .conftest import data, design_id_from, post_design


def test_upload_real_files_stores_metadata_and_renders_previews(app, client, make_member, make_machine) -> None:
    make_machine("prusa-1", type_slug="3d_printer")
    make_member("ada@example.org", name="Ada")
    login(client, "ada@example.org")
    resp = post_design(client, [("part.stl", data("part_binary.stl")), ("part.3mf", data("part.3mf")),
                                ("part.obj", data("part.obj")), ("plate.svg", data("plate.svg")),
                                ("plate.dxf", data("plate.dxf")), ("print.gcode", data("prusaslicer.gcode"))],
                       title="Cable clip", description="A *clip*\n\n<script>alert(1)</script>",
                       tags="Clip, PLA, cable management", machine_types="3d_printer")
    design_id = design_id_from(resp)

    design = db.session.get(Design, design_id)
    assert design.title == "Cable clip" and design.licence == "CC-BY-SA-4.0" and design.author_name == "Ada"
    assert design.tags == ["clip", "pla", "cable-management"]
    assert [t.slug for t in design.machine_types] == ["3d_printer"]
    files = {f.name: f for f in design.version().files}
    stl = files["part.stl"].meta
    assert stl["triangles"] == 112 and abs(stl["volume_mm3"] - 937.88) < 0.5
    assert [round(v, 3) for v in stl["size_mm"]] == [20.0, 10.0, 5.0]
    assert files["part.3mf"].meta["triangles"] > 0 and files["part.obj"].meta["triangles"] > 0
    assert abs(files["plate.svg"].meta["width_mm"] - 60) < 0.01
    assert abs(files["plate.dxf"].meta["height_mm"] - 40) < 0.01
    gcode = files["print.gcode"].meta
    assert gcode["slicer"] == "PrusaSlicer" and gcode["layer_height_mm"] == 0.2 and gcode["nozzle_temp_c"] == 215
    assert files["part.stl"].mime == "model/stl" and files["part.stl"].kind == "mesh"
    assert design.thumb_key == files["part.stl"].thumb_key

    page = client.get(f"/designs/{design_id}").get_data(as_text=True)
    assert "<em>clip</em>" in page and "<script>alert(1)</script>" not in page  # Markdown rendered safely
    assert 'type="importmap"' in page and "js/viewer.js" in page
    assert page.count('class="design-viewer') == 3  # STL, 3MF and OBJ
    assert f'data-src="/designs/{design_id}/files/{files["part.stl"].id}"' in page
    assert "<svg" in page  # the sanitized drawing inline
    assert "112 triangles" in page and "20.0 × 10.0 × 5.0 mm" in page and "PrusaSlicer" in page

    thumb = client.get(f"/designs/{design_id}/thumb", buffered=True)
    assert thumb.status_code == 200 and thumb.mimetype == "image/png" and thumb.data.startswith(b"\x89PNG")
    ft = client.get(f"/designs/{design_id}/files/{files['print.gcode'].id}/thumb", buffered=True)
    assert ft.status_code == 200 and ft.data.startswith(b"\x89PNG")


def test_download_is_an_attachment_with_the_right_type(app, client, make_design) -> None:
    design = make_design(files=[("../../etc/part.stl", data("part_ascii.stl")), ("plate.svg", data("plate.svg"))])
    files = {f.name: f for f in design.version().files}
    assert set(files) == {"part.stl", "plate.svg"}  # the path was dropped from the name
    f = files["part.stl"]
    resp = client.get(f"/designs/{design.id}/files/{f.id}", buffered=True)
    assert resp.status_code == 200 and resp.data == data("part_ascii.stl")
    assert resp.mimetype == "model/stl"
    assert resp.headers["Content-Disposition"].startswith("attachment") and "part.stl" in resp.headers[
        "Content-Disposition"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    svg = client.get(f"/designs/{design.id}/files/{files['plate.svg'].id}", buffered=True)
    assert svg.mimetype == "image/svg+xml" and svg.headers["Content-Disposition"].startswith("attachment")
    # A file id of another design is not reachable through this design.
    other = make_design(title="Other")
    assert client.get(f"/designs/{other.id}/files/{f.id}").status_code == 404
    # The store path is a generated name, never the uploaded one.
    assert f.storage_key != "part.stl" and len(f.storage_key) == 32


def test_anonymous_visitors_may_read_but_not_share(app, client, make_design) -> None:
    design = make_design(title="Open hinge")
    assert client.get("/designs").status_code == 200
    assert "Open hinge" in client.get(f"/designs/{design.id}").get_data(as_text=True)
    assert client.get(f"/designs/{design.id}/download.zip", buffered=True).status_code == 200
    resp = client.get("/designs/new")
    assert resp.status_code == 302 and "/login" in resp.location
    assert client.get(f"/designs/{design.id}/fork").status_code == 302
    assert client.post(f"/designs/{design.id}/made").status_code in (302, 400)


def test_reading_can_require_an_account(app, client, make_design) -> None:
    design = make_design()
    app.config["FABLAB_DESIGNS_PUBLIC"] = False
    try:
        resp = client.get(f"/designs/{design.id}")
        assert resp.status_code == 302 and "/login" in resp.location
    finally:
        app.config["FABLAB_DESIGNS_PUBLIC"] = True


def test_only_the_author_or_an_admin_adds_versions(app, client, make_member, make_design) -> None:
    author = make_member("author@example.org")
    design = make_design(author=author)
    make_member("other@example.org")
    login(client, "other@example.org")
    assert client.get(f"/designs/{design.id}/versions/new").status_code == 403
    token = csrf_token(client, f"/designs/{design.id}/fork")
    resp = client.post(f"/designs/{design.id}/versions/new", data={
        "changelog": "sneaky", "csrf_token": token, "files": [(io.BytesIO(data("part.obj")), "x.obj")]},
        content_type="multipart/form-data")
    assert resp.status_code == 403
    assert db.session.get(Design, design.id).latest_version == 1

    client.post("/logout", data={"csrf_token": token})
    make_member("admin@example.org", role="admin")
    login(client, "admin@example.org")
    assert client.get(f"/designs/{design.id}/versions/new").status_code == 200


def test_new_version_keeps_chosen_files_and_replaces_same_names(app, client, make_member, make_design) -> None:
    author = make_member("author@example.org")
    design = make_design(author=author, files=[("part.stl", data("part_binary.stl")), ("notes.md", b"# notes\n")])
    old = {f.name: f for f in design.version().files}
    login(client, "author@example.org")
    token = csrf_token(client, f"/designs/{design.id}/versions/new")
    resp = client.post(f"/designs/{design.id}/versions/new", data={
        "changelog": "Thicker walls", "keep": [str(old["part.stl"].id), str(old["notes.md"].id)],
        "csrf_token": token, "files": [(io.BytesIO(data("part_ascii.stl")), "part.stl")]},
        content_type="multipart/form-data")
    assert resp.status_code == 302
    design = db.session.get(Design, design.id)
    assert design.latest_version == 2
    v2 = {f.name: f for f in design.version(2).files}
    assert set(v2) == {"part.stl", "notes.md"}
    assert v2["notes.md"].storage_key == old["notes.md"].storage_key  # carried over, bytes shared
    assert v2["part.stl"].storage_key != old["part.stl"].storage_key  # replaced by the new upload
    assert v2["part.stl"].meta["format"] == "stl-ascii"
    assert len(design.version(1).files) == 2  # the old version is unchanged
    page = client.get(f"/designs/{design.id}?v=1").get_data(as_text=True)
    assert "Thicker walls" in page
    assert client.get(f"/designs/{design.id}?v=9").status_code == 404
    count = db.session.scalar(select(db.func.count(DesignFile.id)))
    assert count == 4
