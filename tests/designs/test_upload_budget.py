"""The budget itself, on the readers directly: the clock is injected (a list of instants, not a mock), so
time limits are tested without waiting; picture triangles stay bounded however large the mesh."""

from __future__ import annotations

import io
import zipfile

import pytest

from fablab.domain.filetypes import MAX_XML_DEPTH, UnsafeFileError, parse_xml, zip_entry_count
from fablab.domain.mesh_meta import read_mesh, threemf_meta
from fablab.domain.svg_safe import sanitize_svg
from fablab.domain.upload_budget import Budget, LimitExceeded, Limits, NeedsWorker

from .test_upload_limits import _strip_3mf


class Instants:
    """A clock that reads the next given instant each call (and stays on the last one)."""

    def __init__(self, *instants: float) -> None:
        self.instants = list(instants)

    def __call__(self) -> float:
        return self.instants.pop(0) if len(self.instants) > 1 else self.instants[0]


def test_time_past_the_share_hands_over_and_past_the_limit_refuses() -> None:
    budget = Budget(Limits(seconds=30), Instants(0.0, 0.5, 2.0, 31.0), share=Limits(seconds=1))
    budget.tick()  # 0.5 s: within both
    with pytest.raises(NeedsWorker):
        budget.tick()  # 2 s: past the request's share
    with pytest.raises(LimitExceeded, match="longer than this lab's limit of 30 s"):
        budget.tick()


def test_a_slow_3mf_stops_at_the_time_limit() -> None:
    data = _strip_3mf(30_000)
    with pytest.raises(LimitExceeded, match="took longer"):
        threemf_meta(data, Budget(Limits(seconds=5), Instants(0.0, 1.0, 2.0, 6.0)))


def test_unpacked_bytes_are_counted_while_streaming() -> None:
    budget = Budget(Limits(unpacked_bytes=1 << 20))
    budget.add_unpacked(1 << 19, "a")
    with pytest.raises(LimitExceeded, match="unpacks to more than 1 MB"):
        budget.add_unpacked((1 << 19) + 1, "a")
    with pytest.raises(NeedsWorker):
        Budget(Limits(), share=Limits(unpacked_bytes=100)).add_unpacked(101, "b")


def test_picture_triangles_are_thinned_evenly_and_bounded() -> None:
    meta, tri = read_mesh(_strip_3mf(20_000), ".3mf", keep_max=100)
    assert meta.triangles == 20_000  # measured in full
    assert 100 <= len(tri) <= 200  # kept for the picture: thinned by doubling strides
    assert tri[-1, 0, 0] > 9000  # from the whole strip, not only its start


def test_xml_depth_is_bounded_and_the_sanitizer_cannot_overflow() -> None:
    n = MAX_XML_DEPTH - 1
    ok = b"<svg xmlns='http://www.w3.org/2000/svg'>" + b"<g>" * n + b"</g>" * n + b"</svg>"
    assert sanitize_svg(ok).svg.count("<g>") == MAX_XML_DEPTH - 1
    deep = b"<svg>" + b"<g>" * 2000 + b"</g>" * 2000 + b"</svg>"
    with pytest.raises(UnsafeFileError, match="nested more than 256 levels"):
        parse_xml(deep)


def test_xml_elements_are_counted_against_the_budget() -> None:
    svg = b"<svg>" + b"<rect/>" * 10_000 + b"</svg>"
    with pytest.raises(LimitExceeded, match="more than 5,000 XML elements"):
        sanitize_svg(svg, Budget(Limits(elements=5000)))


def test_zip_entry_count_is_read_from_the_directory_end() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(70_000):  # past 65,535: the count is in the Zip64 record
            zf.writestr(f"{i}", b"")
    assert zip_entry_count(buf.getvalue()[-200_000:]) == 70_000
    assert zip_entry_count(b"not a zip") is None
