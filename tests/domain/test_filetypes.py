import io
import zipfile
from pathlib import Path

import pytest

from fablab.domain.filetypes import (
    ALLOWED,
    SNIFF_BYTES,
    UnsafeFileError,
    kind_for_name,
    parse_xml,
    safe_display_name,
    sniff,
)

DATA = Path(__file__).parents[1] / "data" / "designs"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.stl", "evil.stl"),
        ("/absolute/path/part.stl", "part.stl"),
        ("bracket\x00.stl", "bracket.stl"),
        ("new\nline\r.svg", "newline.svg"),
        ("..", "file"),
        ("", "file"),
        ("...", "file"),
        ('a<b>c:d"e|f?g*.dxf', "a_b_c_d_e_f_g_.dxf"),
        ("CON.txt", "_CON.txt"),
        ("  spaced name .md ", "spaced name .md"),
        ("Café ☕ holder.3mf", "Café ☕ holder.3mf"),
    ],
)
def test_safe_display_name(raw, safe):
    assert safe_display_name(raw) == safe


def test_safe_display_name_is_bounded():
    name = safe_display_name("x" * 1000 + ".stl")
    assert len(name) <= 200 and name.endswith(".stl")


def test_allow_list():
    for ext in [".stl", ".3mf", ".obj", ".step", ".stp", ".svg", ".dxf", ".gcode", ".gco", ".g", ".nc", ".pdf",
                ".png", ".jpg", ".jpeg", ".webp", ".md", ".txt"]:
        assert ext in ALLOWED
    assert kind_for_name("Part.STL").mime == "model/stl"
    for bad in ["evil.html", "run.exe", "page.svgz", "noext", "x.php"]:
        with pytest.raises(UnsafeFileError, match="not accepted"):
            kind_for_name(bad)


@pytest.mark.parametrize(
    "name",
    ["part_ascii.stl", "part_binary.stl", "part.3mf", "part.obj", "plate.svg", "badge_in.svg", "plate.dxf",
     "bracket_in.dxf", "prusaslicer.gcode", "cura.gcode"],
)
def test_real_files_pass_the_sniffer(name):
    path = DATA / name
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    kind = sniff(name, head, open_zip=lambda: zipfile.ZipFile(path))
    assert kind == ALLOWED[path.suffix]


def test_html_named_stl_is_rejected():
    with pytest.raises(UnsafeFileError, match="HTML"):
        sniff("part.stl", b"<!DOCTYPE html><html><script>alert(1)</script></html>" + bytes(100))
    with pytest.raises(UnsafeFileError, match="HTML"):
        sniff("photo.png", b"  <html><body>hi</body></html>")


def test_text_named_binary_formats_is_rejected():
    with pytest.raises(UnsafeFileError, match="PNG"):
        sniff("photo.png", b"GIF89a" + bytes(100))
    with pytest.raises(UnsafeFileError, match="JPEG"):
        sniff("photo.jpg", PNG)
    with pytest.raises(UnsafeFileError, match="%PDF"):
        sniff("manual.pdf", b"hello, this is not a pdf")
    with pytest.raises(UnsafeFileError, match="ISO-10303-21"):
        sniff("part.step", b"solid not a step file")
    with pytest.raises(UnsafeFileError, match="does not start with 'solid'"):
        sniff("part.stl", b"just some text that goes on " * 20)
    with pytest.raises(UnsafeFileError, match="binary data"):
        sniff("print.gcode", b"G1 X1\x00\x01\x02")


def test_magic_numbers_accepted():
    assert sniff("a.png", PNG).mime == "image/png"
    assert sniff("a.jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF").mime == "image/jpeg"
    assert sniff("a.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 ").mime == "image/webp"
    assert sniff("a.pdf", b"%PDF-1.7\n").mime == "application/pdf"
    assert sniff("a.stp", b"ISO-10303-21;\nHEADER;\n").mime == "model/step"
    assert sniff("README.md", "# Hello ünïcode".encode()).kind == "text"


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_3mf_must_be_a_zip_with_a_model_part():
    good = _zip({"3D/3dmodel.model": b"<model/>"})
    assert sniff("a.3mf", good[:SNIFF_BYTES], open_zip=lambda: zipfile.ZipFile(io.BytesIO(good))).kind == "mesh"
    other = _zip({"word/document.xml": b"<w/>"})
    with pytest.raises(UnsafeFileError, match="3dmodel.model"):
        sniff("a.3mf", other, open_zip=lambda: zipfile.ZipFile(io.BytesIO(other)))
    with pytest.raises(UnsafeFileError, match="not a zip"):
        sniff("a.3mf", b"<model/>")


def test_empty_file_is_refused():
    with pytest.raises(UnsafeFileError, match="empty"):
        sniff("a.txt", b"")


def test_svg_and_dxf_sniffing():
    with pytest.raises(UnsafeFileError, match="SVG"):
        sniff("a.svg", b"just text")
    with pytest.raises(UnsafeFileError, match="binary DXF"):
        sniff("a.dxf", b"AutoCAD Binary DXF\r\n\x1a\x00")


def test_parse_xml_refuses_internal_dtd_but_allows_public_doctype():
    root = parse_xml(b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
                     b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg xmlns="http://www.w3.org/2000/svg"/>')
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    with pytest.raises(UnsafeFileError):
        parse_xml(b'<!DOCTYPE x [<!ELEMENT x ANY>]><x/>')
