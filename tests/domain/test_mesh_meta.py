import io
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fablab.domain import mesh_meta as mm
from fablab.domain.filetypes import MetadataError, UnsafeFileError
from fablab.domain.mesh_meta import mesh_meta, mesh_triangles, obj_meta, stl_meta, threemf_meta

DATA = Path(__file__).parents[1] / "data" / "designs"

# part.scad: 20 x 10 x 5 block minus a 24-sided prism of radius 2 (OpenSCAD $fn=24).
PRISM_AREA = 0.5 * 24 * 2**2 * math.sin(2 * math.pi / 24)
VOLUME = 20 * 10 * 5 - PRISM_AREA * 5
SIDE = 2 * 2 * math.sin(math.pi / 24)
AREA = 2 * (20 * 10 + 20 * 5 + 10 * 5) - 2 * PRISM_AREA + 24 * SIDE * 5


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("part_ascii.stl", "stl-ascii"), ("part_binary.stl", "stl-binary"), ("part.3mf", "3mf"), ("part.obj", "obj")],
)
def test_real_openscad_exports(name, fmt):
    meta = mesh_meta(DATA / name, Path(name).suffix)
    assert meta.format == fmt
    assert meta.triangles == 112
    assert meta.bbox_min == pytest.approx((0, 0, 0), abs=1e-4)
    assert meta.bbox_max == pytest.approx((20, 10, 5), abs=1e-4)
    assert meta.size_mm == pytest.approx((20, 10, 5), abs=1e-4)
    assert meta.volume_mm3 == pytest.approx(VOLUME, rel=1e-5)
    assert meta.area_mm2 == pytest.approx(AREA, rel=1e-5)


def test_accepts_bytes_and_file_objects():
    data = (DATA / "part_binary.stl").read_bytes()
    assert stl_meta(data).triangles == 112
    with open(DATA / "part_ascii.stl", "rb") as fh:
        assert stl_meta(fh).triangles == 112


def _binary_stl(triangles: np.ndarray, header: bytes = b"fablab test") -> bytes:
    rec = np.zeros(len(triangles), dtype=mm._STL_RECORD)
    rec["v"] = triangles
    return header.ljust(80, b" ")[:80] + struct.pack("<I", len(triangles)) + rec.tobytes()


def test_binary_stl_whose_header_starts_with_solid_is_read_as_binary():
    data = (DATA / "part_binary.stl").read_bytes()
    solid = b"solid part exported by a CAD that should know better".ljust(80) + data[80:]
    meta = stl_meta(solid)
    assert meta.format == "stl-binary"
    assert meta.triangles == 112


def test_truncated_binary_stl_is_a_clear_error():
    data = (DATA / "part_binary.stl").read_bytes()
    with pytest.raises(MetadataError, match="truncated"):
        stl_meta(data[:-70])
    with pytest.raises(MetadataError, match="truncated"):
        stl_meta(data[:50])


def test_binary_stl_with_wrong_count_is_corrupt():
    data = bytearray((DATA / "part_binary.stl").read_bytes())
    data[80:84] = struct.pack("<I", 3)  # claims 3 triangles, carries 112
    with pytest.raises(MetadataError, match="announces 3 triangles"):
        stl_meta(bytes(data))


def test_truncated_ascii_stl_is_a_clear_error():
    text = (DATA / "part_ascii.stl").read_bytes()
    with pytest.raises(MetadataError, match="truncated"):
        stl_meta(text[: len(text) // 2])


def test_ascii_stl_with_garbage_vertex():
    bad = b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 zero\nvertex 1 0 0\nvertex 0 1 0\n" \
          b"endloop\nendfacet\nendsolid x\n"
    with pytest.raises(MetadataError, match="not three numbers"):
        stl_meta(bad)


def test_non_finite_coordinates_are_corrupt():
    tri = np.array([[[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]], dtype=np.float32)
    with pytest.raises(MetadataError, match="finite"):
        stl_meta(_binary_stl(tri))


def test_empty_mesh_is_refused():
    with pytest.raises(MetadataError, match="no triangles"):
        stl_meta(_binary_stl(np.zeros((0, 3, 3), dtype=np.float32)))


def test_streaming_in_small_chunks_gives_the_same_answer(monkeypatch):
    whole_b = stl_meta(DATA / "part_binary.stl")
    whole_a = stl_meta(DATA / "part_ascii.stl")
    monkeypatch.setattr(mm, "_STL_CHUNK_TRIANGLES", 7)
    monkeypatch.setattr(mm, "_TEXT_CHUNK", 333)  # splits lines and facets across chunks
    for name, whole in (("part_binary.stl", whole_b), ("part_ascii.stl", whole_a)):
        chunked = stl_meta(DATA / name)
        assert (chunked.triangles, chunked.bbox_min, chunked.bbox_max) == (
            whole.triangles, whole.bbox_min, whole.bbox_max)
        assert chunked.volume_mm3 == pytest.approx(whole.volume_mm3, rel=1e-12)
        assert chunked.area_mm2 == pytest.approx(whole.area_mm2, rel=1e-12)


def test_mesh_triangles_for_rendering():
    tri = mesh_triangles(DATA / "part.3mf", ".3mf")
    assert tri.shape == (112, 3, 3)
    assert tri.dtype == np.float32


CUBE_OBJ = b"""# 2 mm cube with quads, one face written with negative (relative) indices
v 0 0 0
v 2 0 0
v 2 2 0
v 0 2 0
v 0 0 2
v 2 0 2
v 2 2 2
v 0 2 2
f 1 4 3 2
f 5 6 7 8
f 1/1 2/2 6/3 5/4
f 2//1 3//1 7//1 6//1
f 3 4 8 7
f -4 -8 -5 -1
"""


def test_obj_quads_are_fan_triangulated_and_negative_indices_resolved():
    meta = obj_meta(CUBE_OBJ)
    assert meta.triangles == 12
    assert meta.volume_mm3 == pytest.approx(8.0)
    assert meta.area_mm2 == pytest.approx(24.0)


def test_obj_bad_index_is_corrupt():
    with pytest.raises(MetadataError, match="do not exist"):
        obj_meta(b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")


def _threemf(model_xml: str, name: str = "3D/3dmodel.model") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr(name, model_xml)
    return buf.getvalue()


TETRA = """<object id="{id}" type="model"><mesh><vertices>
<vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/><vertex x="0" y="0" z="1"/>
</vertices><triangles>
<triangle v1="0" v2="2" v3="1"/><triangle v1="0" v2="1" v3="3"/><triangle v1="0" v2="3" v3="2"/>
<triangle v1="1" v2="2" v3="3"/></triangles></mesh></object>"""


def _model(unit: str, resources: str, build: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><model unit="{unit}" xml:lang="en-US" '
            f'xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
            f"<resources>{resources}</resources><build>{build}</build></model>")


def test_3mf_unit_and_build_transforms():
    # Two copies of a unit tetrahedron in inches: one in place, one moved 2 in along x and scaled x2.
    xml = _model("inch", TETRA.format(id=1),
                 '<item objectid="1"/><item objectid="1" transform="2 0 0 0 2 0 0 0 2 2 0 0"/>')
    meta = threemf_meta(_threemf(xml))
    assert meta.triangles == 8
    assert meta.bbox_min == pytest.approx((0, 0, 0))
    assert meta.bbox_max == pytest.approx((4 * 25.4, 2 * 25.4, 2 * 25.4))
    assert meta.volume_mm3 == pytest.approx((1 / 6 + 8 / 6) * 25.4**3)


def test_3mf_components_are_expanded():
    xml = _model("millimeter", TETRA.format(id=1)
                 + '<object id="2" type="model"><components><component objectid="1" '
                   'transform="1 0 0 0 1 0 0 0 1 0 0 10"/></components></object>',
                 '<item objectid="2" transform="1 0 0 0 1 0 0 0 1 5 0 0"/>')
    meta = threemf_meta(_threemf(xml))
    assert meta.triangles == 4
    assert meta.bbox_min == pytest.approx((5, 0, 10))


def test_3mf_zip_bomb_is_refused_without_unpacking():
    # 64 MB of spaces inside the model element compresses to about 64 KB: a ratio only a bomb has.
    bomb = '<?xml version="1.0"?><model unit="millimeter">' + " " * (64 << 20) + "</model>"
    data = _threemf(bomb)
    assert len(data) < 1 << 20
    with pytest.raises(UnsafeFileError, match="zip bomb"):
        threemf_meta(data)


def test_3mf_larger_than_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(mm, "MAX_3MF_MODEL_BYTES", 1000)
    with pytest.raises(UnsafeFileError, match="unpacks to"):
        threemf_meta(DATA / "part.3mf")


def test_3mf_entity_expansion_is_refused():
    laughs = ('<?xml version="1.0"?><!DOCTYPE model [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
              '<model unit="millimeter">&lol2;</model>')
    with pytest.raises(UnsafeFileError, match="DTD|ENTITY"):
        threemf_meta(_threemf(laughs))


def test_3mf_damaged_or_missing_model():
    with pytest.raises(MetadataError, match="not a valid zip"):
        threemf_meta(b"PK\x03\x04 this is not really a zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(MetadataError, match="3dmodel.model"):
        threemf_meta(buf.getvalue())
    with pytest.raises(MetadataError, match="missing object"):
        threemf_meta(_threemf(_model("millimeter", "", '<item objectid="7"/>')))


def test_unknown_extension():
    with pytest.raises(ValueError):
        mesh_meta(b"", ".step")
