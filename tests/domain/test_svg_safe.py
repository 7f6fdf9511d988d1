from pathlib import Path

import pytest

from fablab.domain.filetypes import MetadataError, UnsafeFileError, parse_xml
from fablab.domain.svg_safe import sanitize_svg

DATA = Path(__file__).parents[1] / "data" / "designs"

EVIL = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     width="10mm" height="10mm" viewBox="0 0 10 10" onload="alert('load')" inkscape:version="1.3">
  <script type="text/javascript">alert('script')</script>
  <defs><linearGradient id="g"><stop offset="0" stop-color="#f00"/></linearGradient>
    <rect id="r" width="1" height="1"/></defs>
  <a xlink:href="javascript:alert('link')"><circle cx="5" cy="5" r="4" style="fill:url(#g)"/></a>
  <a href="  JaVa&#x0A;ScRiPt:alert('spaced')"><rect width="2" height="2"/></a>
  <use xlink:href="#r" x="1"/>
  <use href="https://attacker.example/sprite.svg#x"/>
  <image href="http://tracker.example/pixel.png" width="1" height="1"/>
  <image href="data:image/png;base64,iVBORw0KGgo=" width="1" height="1"/>
  <foreignObject width="10" height="10"><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>
  <rect width="3" height="3" onclick="steal()" ONMOUSEOVER="x()" fill="url(https://evil.example/f.svg#p)"/>
  <set attributeName="href" to="javascript:alert(1)"/>
  <animate attributeName="href" values="javascript:alert(1)"/>
  <style>@import url(https://evil.example/x.css); body { display: none }</style>
  <text x="1" y="9">Fab &amp; Lab &lt;3</text>
  <inkscape:perspective id="p1"/>
</svg>"""


def test_scripts_handlers_and_external_links_are_removed():
    result = sanitize_svg(EVIL)
    svg = result.svg.lower()
    for bad in ["<script", "alert", "onload", "onclick", "onmouseover", "javascript", "foreignobject",
                "attacker.example", "tracker.example", "evil.example", "<set", "<animate", "<style", "inkscape"]:
        assert bad not in svg, bad
    # What stays: geometry, fragment references, inline data images, text (escaped).
    assert 'xlink:href="#r"' in result.svg
    assert "url(#g)" in result.svg
    assert "data:image/png;base64" in result.svg
    assert "<circle" in result.svg and "<rect" in result.svg
    assert "Fab &amp; Lab &lt;3" in result.svg
    # And the uploader can be told what was neutralised.
    removed = " | ".join(result.removed)
    assert "<script> element" in removed and "onload attribute" in removed
    assert "<foreignObject> element" in removed and "link to 'https://attacker.example" in removed


def test_output_is_well_formed_svg():
    root = parse_xml(sanitize_svg(EVIL).svg.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("width") == "10mm"


def test_clean_real_file_keeps_its_drawing():
    result = sanitize_svg((DATA / "badge_in.svg").read_bytes())
    assert result.removed == []
    assert "<rect" in result.svg and "FAB LAB" in result.svg


def test_entities_are_refused_and_non_svg_rejected():
    with pytest.raises(UnsafeFileError):
        sanitize_svg(b'<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>')
    with pytest.raises(MetadataError, match="not <svg>"):
        sanitize_svg(b"<html><script>alert(1)</script></html>")
