from pathlib import Path

import pytest

from fablab.domain.filetypes import MetadataError, UnsafeFileError
from fablab.domain.vector_meta import VectorMeta, dxf_meta, svg_meta, vector_meta

DATA = Path(__file__).parents[1] / "data" / "designs"


def test_openscad_svg_in_mm_with_public_doctype():
    # OpenSCAD writes <!DOCTYPE svg PUBLIC ...> (no internal subset): harmless and accepted.
    assert svg_meta(DATA / "plate.svg") == VectorMeta("svg", 60.0, 40.0, "mm", "width/height")


def test_svg_in_inches():
    meta = svg_meta(DATA / "badge_in.svg")
    assert (meta.width_mm, meta.height_mm) == pytest.approx((76.2, 50.8))
    assert meta.unit == "in"


def test_svg_with_only_a_viewbox_is_css_pixels():
    meta = vector_meta(DATA / "coaster_px.svg", ".svg")
    assert meta.source == "viewBox"
    assert meta.width_mm == pytest.approx(378 * 25.4 / 96)


@pytest.mark.parametrize(
    ("attrs", "size"),
    [('width="10cm" height="72pt"', (100.0, 25.4)),
     ('width="96" height="48px"', (25.4, 12.7)),
     ('width="6pc" height="40Q"', (25.4, 10.0)),
     ('width="50mm" viewBox="0 0 200 100"', (50.0, 25.0)),  # height follows the aspect ratio
     ('width="100%" height="100%" viewBox="0 0 96 192"', (25.4, 50.8))],
)
def test_svg_units(attrs, size):
    meta = svg_meta(f'<svg xmlns="http://www.w3.org/2000/svg" {attrs}></svg>'.encode())
    assert (meta.width_mm, meta.height_mm) == pytest.approx(size)


def test_svg_without_any_size():
    assert svg_meta(b'<svg xmlns="http://www.w3.org/2000/svg"/>').source == "none"


def test_svg_billion_laughs_and_external_entities_are_refused():
    laughs = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
              b'<svg xmlns="http://www.w3.org/2000/svg" width="&b;"/>')
    with pytest.raises(UnsafeFileError):
        svg_meta(laughs)
    xxe = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>')
    with pytest.raises(UnsafeFileError):
        svg_meta(xxe)


def test_not_svg_or_not_xml():
    with pytest.raises(MetadataError, match="not <svg>"):
        svg_meta(b"<html><body/></html>")
    with pytest.raises(MetadataError, match="malformed"):
        svg_meta(b"<svg width='1mm'")


def test_openscad_dxf_without_header_is_measured_from_its_entities():
    assert dxf_meta(DATA / "plate.dxf") == VectorMeta("dxf", 60.0, 40.0, "unitless", "entities")


def test_dxf_with_insunits_and_extents():
    meta = vector_meta(DATA / "bracket_in.dxf", ".dxf")
    assert meta.source == "extents" and meta.unit == "in"
    assert (meta.width_mm, meta.height_mm) == pytest.approx((4 * 25.4, 2.5 * 25.4))


def _dxf(header: str, entities: str) -> bytes:
    head = f"  0\nSECTION\n  2\nHEADER\n{header}  0\nENDSEC\n" if header else ""
    return (head + f"  0\nSECTION\n  2\nENTITIES\n{entities}  0\nENDSEC\n  0\nEOF\n").encode()


def test_dxf_entities_circle_and_arc_bounds_in_mm_units():
    entities = ("  0\nCIRCLE\n  8\n0\n 10\n10.0\n 20\n10.0\n 40\n5.0\n"
                # upper half arc of radius 20 around (50, 0): from 0 to 180 degrees, reaches y = 20
                "  0\nARC\n  8\n0\n 10\n50.0\n 20\n0.0\n 40\n20.0\n 50\n0.0\n 51\n180.0\n"
                "  0\nPOINT\n  8\n0\n 10\n0.0\n 20\n-3.0\n")
    meta = dxf_meta(_dxf("  9\n$INSUNITS\n 70\n4\n", entities))
    assert meta.source == "entities" and meta.unit == "mm"
    # x from 0 (point) to 70 (arc end), y from -3 (point) to 20 (arc top)
    assert (meta.width_mm, meta.height_mm) == pytest.approx((70.0, 23.0))


def test_dxf_arc_crossing_zero_degrees():
    # from 270 to 90 degrees through 0: x reaches centre + r, y spans -r..r
    meta = dxf_meta(_dxf("", "  0\nARC\n 10\n0\n 20\n0\n 40\n1\n 50\n270\n 51\n90\n"))
    assert (meta.width_mm, meta.height_mm) == pytest.approx((1.0, 2.0))


def test_dxf_sentinel_extents_fall_back_to_entities_and_centimetres_scale():
    header = ("  9\n$INSUNITS\n 70\n5\n  9\n$EXTMIN\n 10\n1e+20\n 20\n1e+20\n 30\n1e+20\n"
              "  9\n$EXTMAX\n 10\n-1e+20\n 20\n-1e+20\n 30\n-1e+20\n")
    entities = "  0\nLWPOLYLINE\n 90\n3\n 10\n0\n 20\n0\n 10\n3\n 20\n0\n 10\n3\n 20\n2\n"
    meta = dxf_meta(_dxf(header, entities))
    assert meta.source == "entities" and meta.unit == "cm"
    assert (meta.width_mm, meta.height_mm) == pytest.approx((30.0, 20.0))


def test_dxf_corrupt():
    with pytest.raises(MetadataError, match="corrupt"):
        dxf_meta(b"  0\nSECTION\n  2\nENTITIES\n  0\nLINE\n 10\nabc\n 20\n0\n")
    with pytest.raises(MetadataError, match="group code"):
        dxf_meta(b"hello\nworld\n")


def test_empty_dxf_has_no_size():
    assert dxf_meta(_dxf("", "")).source == "none"
