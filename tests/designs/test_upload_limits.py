"""Uploads cannot exhaust memory or time: every adversarial kind (zip bomb, millions of triangles, a huge
header count, a pixel bomb, deep XML) is refused with the reason in the request, or accepted as
"processing" and then measured or failed with the reason by the worker's job. Limits are lowered through
the app's config so that small generated files stand for the big ones (bench/uploads.py has real sizes)."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select

from fablab import create_app
from fablab.extensions import db
from fablab.models.designs import Design, DesignFile
from fablab.models.types import utcnow
from fablab.services import design_processing
from fablab.services import designs as svc
from fablab.worker.jobs import JOBS, run_jobs
from tests.conftest import IsolatedClient, login

from .conftest import data, design_id_from, post_design, post_multipart, stored_files


@pytest.fixture
def limited_app(app, db_config, tmp_path) -> Iterator[Callable[..., Flask]]:
    """Apps on the same database with their own upload directory and lowered upload limits."""
    made: list[Flask] = []

    def make(**limits: Any) -> Flask:
        config = dict(db_config, FABLAB_UPLOAD_DIR=str(tmp_path / f"uploads{len(made)}"), **limits)
        new = create_app(config)
        new.test_client_class = IsolatedClient
        made.append(new)
        return new

    yield make
    for a in made:
        with a.app_context():
            db.engine.dispose()


def _signed_in(a: Flask, make_member) -> Any:
    make_member("ada@example.org")
    client = a.test_client()
    login(client, "ada@example.org")
    return client


def _run_worker_job(a: Flask) -> object:
    with a.app_context():
        result = run_jobs(utcnow(), ["process_pending_uploads"])["process_pending_uploads"]
        db.session.remove()
    assert not isinstance(result, Exception), result
    return result


def _threemf(model_xml: str, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("3D/3dmodel.model", model_xml)
    return buf.getvalue()


def _strip_3mf(triangles: int) -> bytes:
    """A flat strip of `triangles` triangles (the shape of a 3MF that is small zipped, huge inside)."""
    n = triangles + 2
    verts = "".join(f'<vertex x="{i // 2}" y="{i % 2}" z="0"/>' for i in range(n))
    tris = "".join(f'<triangle v1="{i}" v2="{i + 1}" v3="{i + 2}"/>' for i in range(triangles))
    return _threemf('<?xml version="1.0"?><model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanu'
                    f'facturing/core/2015/02"><resources><object id="1" type="model"><mesh><vertices>{verts}'
                    f'</vertices><triangles>{tris}</triangles></mesh></object></resources><build><item objectid="1"/>'
                    '</build></model>')


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 200).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _only_file() -> DesignFile:
    db.session.commit()  # end the test's read snapshot (SQLite WAL): see what the worker wrote
    db.session.expire_all()
    return db.session.scalars(select(DesignFile)).one()


def test_the_job_is_in_the_worker_table() -> None:
    assert "process_pending_uploads" in [j.name for j in JOBS]


# --- 3MF: millions of triangles in a small zip --------------------------------------------------------------


def test_a_3mf_too_big_for_the_request_is_accepted_then_measured_by_the_worker(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=1000)
    client = _signed_in(a, make_member)
    resp = post_design(client, [("strip.3mf", _strip_3mf(20_000))])
    design_id = design_id_from(resp)
    f = _only_file()
    assert f.status == "processing" and f.meta == {} and f.thumb_key is None
    page = client.get(resp.location).get_data(as_text=True)
    assert "Being analysed" in page and "analysed after the upload" in page  # the flash says so too
    assert 'hx-trigger="every 3s"' in page and "design-viewer" not in page  # no 3D viewer for it yet

    assert _run_worker_job(a) == 1
    f = _only_file()
    assert f.status == "ready" and f.meta["triangles"] == 20_000 and f.thumb_key
    assert db.session.get(Design, design_id).thumb_key == f.thumb_key  # the cover follows
    part = client.get(f"/designs/{design_id}?part=files", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "20,000 triangles" in part and "Being analysed" not in part and "hx-trigger" not in part
    assert client.get(f"/designs/{design_id}/thumb", buffered=True).data.startswith(b"\x89PNG")
    assert _run_worker_job(a) == 0  # idempotent: nothing left to do


def test_a_3mf_over_the_labs_triangle_limit_fails_in_the_worker_with_the_reason(limited_app, make_member) -> None:
    # The request stops at its share (8,192 vertices read > 1,000) before the lab's limit is reached.
    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=1000, FABLAB_UPLOAD_MAX_ELEMENTS=10_000)
    client = _signed_in(a, make_member)
    design_id = design_id_from(post_design(client, [("strip.3mf", _strip_3mf(20_000))]))
    assert _only_file().status == "processing"
    _run_worker_job(a)
    f = _only_file()
    assert f.status == "failed" and "more than 10,000 vertices" in f.problem and f.meta == {}
    page = client.get(f"/designs/{design_id}").get_data(as_text=True)
    assert "Could not be analysed" in page and "more than 10,000" in page and "can still be downloaded" in page
    assert client.get(f"/designs/{design_id}/files/{f.id}", buffered=True).status_code == 200


def test_a_3mf_found_over_the_limit_in_the_request_is_refused_at_once(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=1000, FABLAB_UPLOAD_MAX_ELEMENTS=5000)
    client = _signed_in(a, make_member)
    resp = post_design(client, [("strip.3mf", _strip_3mf(20_000))])
    assert resp.status_code == 422
    assert "strip.3mf: The file has more than 5,000 vertices" in resp.get_data(as_text=True)
    assert stored_files(a) == set()


def test_a_3mf_declaring_more_than_the_unpacked_limit_is_refused_in_the_request(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_MAX_UNPACKED_MB=1)
    client = _signed_in(a, make_member)
    bomb = _strip_3mf(40_000)  # about 3 MB of XML, zipped at an ordinary ratio
    resp = post_design(client, [("strip.3mf", bomb)])
    assert resp.status_code == 422
    assert "unpacks to more than 1 MB" in resp.get_data(as_text=True)
    assert stored_files(a) == set()


def test_a_3mf_whose_headers_understate_the_model_is_never_unpacked_past_them(limited_app, make_member) -> None:
    # A zip that claims its model is small: reading stops at the claim (streamed), so it is refused.
    real = _strip_3mf(2000)
    with zipfile.ZipFile(io.BytesIO(real)) as zf:
        info = zf.getinfo("3D/3dmodel.model")
    lie = (100).to_bytes(4, "little")
    honest = info.file_size.to_bytes(4, "little")
    forged = real.replace(honest, lie)
    assert forged != real
    a = limited_app()
    client = _signed_in(a, make_member)
    resp = post_design(client, [("lie.3mf", forged)])
    assert resp.status_code == 422
    assert "lie.3mf" in resp.get_data(as_text=True)
    assert stored_files(a) == set()


def test_a_3mf_with_a_huge_directory_is_refused_before_zipfile_reads_it(limited_app, make_member) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("3D/3dmodel.model", "<model/>")
        for i in range(10_001):
            zf.writestr(f"x/{i}", b"")
    a = limited_app()
    client = _signed_in(a, make_member)
    resp = post_design(client, [("many.3mf", buf.getvalue())])
    assert resp.status_code == 422 and "10002 entries" in resp.get_data(as_text=True)


def test_components_that_multiply_an_object_stop_at_the_limit(limited_app, make_member) -> None:
    # Ten levels of ten components each would be 10^10 triangles from a file of a few KB.
    objects = ['<object id="0" type="model"><mesh><vertices><vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/>'
               '<vertex x="0" y="1" z="0"/></vertices><triangles><triangle v1="0" v2="1" v3="2"/></triangles></mesh>'
               '</object>']
    for level in range(1, 11):
        comps = "".join(f'<component objectid="{level - 1}"/>' for _ in range(10))
        objects.append(f'<object id="{level}" type="model"><components>{comps}</components></object>')
    xml = (f'<?xml version="1.0"?><model unit="millimeter"><resources>{"".join(objects)}</resources>'
           '<build><item objectid="10"/></build></model>')
    a = limited_app(FABLAB_UPLOAD_MAX_ELEMENTS=100_000)
    client = _signed_in(a, make_member)
    resp = post_design(client, [("fan.3mf", _threemf(xml))])  # counted before anything is placed
    assert resp.status_code == 422
    assert "fan.3mf: The file has more than 100,000 triangles" in resp.get_data(as_text=True)


# --- STL: header counts ---------------------------------------------------------------------------------------


def test_an_stl_whose_header_announces_more_than_the_limit_is_refused_before_reading(limited_app,
                                                                                   make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_MAX_ELEMENTS=100)
    client = _signed_in(a, make_member)
    resp = post_design(client, [("part.stl", data("part_binary.stl"))])  # 112 triangles
    assert resp.status_code == 422 and "more than 100 triangles" in resp.get_data(as_text=True)


def test_an_stl_header_count_that_does_not_match_its_size_is_refused(limited_app, make_member) -> None:
    a = limited_app()
    client = _signed_in(a, make_member)
    lying = b"binary".ljust(80, b" ") + (4_000_000_000).to_bytes(4, "little") + bytes(50)
    resp = post_design(client, [("lying.stl", lying)])
    assert resp.status_code == 422 and "announces 4000000000 triangles" in resp.get_data(as_text=True)


def test_a_big_stl_goes_to_the_worker_through_the_api(limited_app, make_member) -> None:
    from fablab.services.members import create_api_token

    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=50)
    member = make_member("ada@example.org")
    token = create_api_token(member)
    db.session.commit()
    client = a.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    resp = post_multipart(client, "/api/v1/designs", {"title": "Big", "licence": "MIT"},
                          [("part.stl", data("part_binary.stl"))], headers=auth)
    assert resp.status_code == 201, resp.json
    (f,) = resp.json["latest"]["files"]
    assert f["status"] == "processing" and f["metadata"] == {} and f["thumbnail_url"] is None
    _run_worker_job(a)
    after = client.get(f"/api/v1/designs/{resp.json['id']}/files/{f['id']}", headers=auth).json
    assert after["status"] == "ready" and after["problem"] is None and after["metadata"]["triangles"] == 112


# --- images -----------------------------------------------------------------------------------------------------


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_MAX_PIXELS=1_000_000)
    client = _signed_in(a, make_member)
    bomb = _png(2000, 2000)
    assert len(bomb) < 20_000  # small on the wire, 4 megapixels inside
    resp = post_design(client, [("flat.png", bomb)])
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "2000 x 2000 pixels" in page and "limit of 1 megapixels" in page
    assert stored_files(a) == set()


def test_a_large_photo_is_pictured_by_the_worker(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_INLINE_PIXELS=10_000)
    client = _signed_in(a, make_member)
    design_id = design_id_from(post_design(client, [("photo.png", _png(300, 200))]))
    assert _only_file().status == "processing"
    _run_worker_job(a)
    f = _only_file()
    assert f.status == "ready" and f.thumb_key
    thumb = client.get(f"/designs/{design_id}/files/{f.id}/thumb", buffered=True)
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.data)).size == (256, 256)


# --- SVG ------------------------------------------------------------------------------------------------------


def test_an_svg_nested_2000_deep_is_refused_with_the_reason(app, client, make_member) -> None:
    deep = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10mm" height="10mm">' + b"<g>" * 2000 + b"<rect/>"
            + b"</g>" * 2000 + b"</svg>")
    make_member("ada@example.org")
    login(client, "ada@example.org")
    before = stored_files(app)
    resp = post_design(client, [("deep.svg", deep)])
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "deep.svg" in page and "nested more than 256 levels" in page and "ungroup" in page
    assert stored_files(app) == before


def test_a_large_svg_is_sanitized_by_the_worker(limited_app, make_member) -> None:
    rects = b"".join(b'<rect x="%d" width="1" height="1"/>' % i for i in range(5000))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="50mm" height="10mm">' + rects + b"</svg>"
    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=1000)
    client = _signed_in(a, make_member)
    design_id_from(post_design(client, [("many.svg", svg)]))
    f = _only_file()
    assert f.status == "processing" and f.svg_safe is None
    _run_worker_job(a)
    f = _only_file()
    assert f.status == "ready" and f.svg_safe.count("<rect") == 5000 and abs(f.meta["width_mm"] - 50) < 0.01


# --- the worker's own safety ---------------------------------------------------------------------------------


def test_a_file_that_stopped_the_worker_twice_is_not_tried_again(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=50)
    client = _signed_in(a, make_member)
    design_id_from(post_design(client, [("part.stl", data("part_binary.stl"))]))
    f = _only_file()
    f.attempts = design_processing.MAX_ATTEMPTS  # as if the worker had died reading it twice
    db.session.commit()
    _run_worker_job(a)
    f = _only_file()
    assert f.status == "failed" and "stopped the worker twice" in f.problem


def test_a_processing_file_carried_into_a_new_version_gets_the_result_too(limited_app, make_member) -> None:
    a = limited_app(FABLAB_UPLOAD_INLINE_ELEMENTS=50)
    with a.app_context():
        member = make_member()
        design = svc.create_design(member, title="Carried", licence="MIT",
                                   files=[svc.Upload("part.stl", io.BytesIO(data("part_binary.stl")))])
        keep = [design.version().files[0].id]
        svc.add_version(design, member, files=[], changelog="Same file", keep_file_ids=keep)
        db.session.remove()
    _run_worker_job(a)
    db.session.commit()
    db.session.expire_all()
    rows = db.session.scalars(select(DesignFile).order_by(DesignFile.id)).all()
    assert len(rows) == 2 and {r.status for r in rows} == {"ready"} and rows[0].thumb_key == rows[1].thumb_key
    assert all(r.meta["triangles"] == 112 for r in rows)


# --- missing stored files -------------------------------------------------------------------------------------


def test_a_zip_whose_stored_file_is_missing_says_so_and_tells_staff(app, client, make_design, caplog) -> None:
    design = make_design(files=[("part.stl", data("part_binary.stl")), ("plate.svg", data("plate.svg"))])
    gone = next(f for f in design.version().files if f.name == "part.stl")
    svc.file_store().path(gone.storage_key).unlink()
    with caplog.at_level(logging.ERROR, logger="fablab.designs"):
        resp = client.get(f"/designs/{design.id}/download.zip", buffered=True)
    assert resp.status_code == 410 and resp.mimetype == "text/html"
    page = resp.get_data(as_text=True)
    assert "“part.stl” is missing" in page and "staff have been told" in page and "plate.svg" not in page
    assert any("part.stl" in r.getMessage() and gone.storage_key in r.getMessage() for r in caplog.records)

    one = client.get(f"/designs/{design.id}/files/{gone.id}", buffered=True)
    assert one.status_code == 410 and "“part.stl” is missing" in one.get_data(as_text=True)


def test_the_api_answers_410_for_a_missing_stored_file(app, client, make_design) -> None:
    from fablab.services.members import create_api_token

    design = make_design()
    f = design.version().files[0]
    token = create_api_token(design.author)
    db.session.commit()
    svc.file_store().path(f.storage_key).unlink()
    resp = client.get(f"/api/v1/designs/{design.id}/files/{f.id}/raw", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 410 and resp.json["error"]["code"] == "file_missing"


# --- names ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sent,kept", [
    ("invoice\u202egpj.stl", "invoicegpj.stl"),  # right-to-left override: would display as "invoicelts.jpg"
    ("a\u2066b\u2069c\u200fd.stl", "abcd.stl"),  # isolates and a right-to-left mark
    ("zero\u200bwidth\ufeff.stl", "zerowidth.stl"),  # zero-width space, BOM
    ("bell\x07tab\tline\u2028.stl", "belltabline.stl"),  # C0 controls and the line separator
])
def test_bidi_and_control_characters_are_removed_from_upload_names(app, client, make_member, sent, kept) -> None:
    make_member("ada@example.org")
    login(client, "ada@example.org")
    design_id_from(post_design(client, [(sent, data("part_binary.stl"))]))
    assert _only_file().name == kept


def test_a_bidi_trick_cannot_hide_a_refused_extension(app, client, make_member) -> None:
    make_member("ada@example.org")
    login(client, "ada@example.org")
    resp = post_design(client, [("photo\u202egnp.exe", b"MZ\x90\x00")])
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "photognp.exe: Files of type &#39;.exe&#39; are not accepted" in page
