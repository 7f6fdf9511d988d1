"""Size in mm of 2D drawings for laser cutters and plotters: SVG (units or viewBox) and ASCII DXF."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from fablab.domain.filetypes import FileContentError, MetadataError, parse_xml_events
from fablab.domain.mesh_meta import Source, _open
from fablab.domain.upload_budget import Budget, unlimited

SVG_NS = "http://www.w3.org/2000/svg"
PX_MM = 25.4 / 96  # CSS pixel
_SVG_UNITS = {"mm": 1.0, "cm": 10.0, "q": 0.25, "in": 25.4, "pt": 25.4 / 72, "pc": 25.4 / 6,
              "px": PX_MM, "": PX_MM}
_LENGTH = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(mm|cm|q|in|pt|pc|px|%)?\s*$", re.I)
# $INSUNITS code -> (name, mm per unit); 0 (unspecified) is taken as mm, as laser software does.
_DXF_UNITS = {0: ("unitless", 1.0), 1: ("in", 25.4), 2: ("ft", 304.8), 3: ("mi", 1_609_344.0),
              4: ("mm", 1.0), 5: ("cm", 10.0), 6: ("m", 1000.0), 7: ("km", 1_000_000.0),
              8: ("µin", 25.4e-6), 9: ("mil", 0.0254), 10: ("yd", 914.4), 11: ("Å", 1e-7),
              12: ("nm", 1e-6), 13: ("µm", 1e-3), 14: ("dm", 100.0)}


@dataclass(frozen=True)
class VectorMeta:
    format: str  # "svg" or "dxf"
    width_mm: float | None
    height_mm: float | None
    unit: str  # the drawing's own unit: mm, in, px, ... ("unitless" DXF is read as mm)
    source: str  # how the size was found: "width/height", "viewBox", "extents", "entities", "none"


class _Stop(Exception):
    pass


def _length_mm(value: str | None) -> tuple[float, str] | None:
    if value is None:
        return None
    m = _LENGTH.match(value)
    if not m or m.group(2) == "%":
        return None
    unit = (m.group(2) or "").lower()
    return float(m.group(1)) * _SVG_UNITS[unit], unit or "px"


def svg_meta(src: Source, budget: Budget | None = None) -> VectorMeta:
    """Width and height in mm from the root <svg> (px at 96 dpi), or from its viewBox as CSS px."""
    root: dict[str, str] = {}
    seen: list[bool] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name not in (f"{{{SVG_NS}}}svg", "svg"):
            raise MetadataError("This is XML but its root element is not <svg>")
        root.update(attrs)
        seen.append(True)
        raise _Stop  # only the root matters: do not parse a large drawing to the end

    with _open(src) as fh:
        try:
            parse_xml_events(fh, start, budget=budget)
        except _Stop:
            pass
    if not seen:
        raise MetadataError("The SVG has no <svg> element")

    box = None
    if "viewBox" in root:
        try:
            parts = [float(x) for x in re.split(r"[\s,]+", root["viewBox"].strip())]
        except ValueError:
            parts = []
        if len(parts) == 4 and parts[2] > 0 and parts[3] > 0:
            box = parts[2], parts[3]
    width, height = _length_mm(root.get("width")), _length_mm(root.get("height"))
    if width and height:
        unit = width[1] if width[1] == height[1] else f"{width[1]}/{height[1]}"
        return VectorMeta("svg", width[0], height[0], unit, "width/height")
    if box is not None:
        if width:  # one side given: the other follows the viewBox aspect ratio
            return VectorMeta("svg", width[0], width[0] * box[1] / box[0], width[1], "width/height")
        if height:
            return VectorMeta("svg", height[0] * box[0] / box[1], height[0], height[1], "width/height")
        return VectorMeta("svg", box[0] * PX_MM, box[1] * PX_MM, "px", "viewBox")
    return VectorMeta("svg", None, None, "px", "none")


class _Bounds:
    def __init__(self) -> None:
        self.lo = [math.inf, math.inf]
        self.hi = [-math.inf, -math.inf]

    def add(self, x: float, y: float) -> None:
        self.lo = [min(self.lo[0], x), min(self.lo[1], y)]
        self.hi = [max(self.hi[0], x), max(self.hi[1], y)]

    def add_arc(self, cx: float, cy: float, r: float, start: float = 0.0, end: float = 360.0) -> None:
        """Endpoints plus each axis extreme (0, 90, 180, 270 degrees) the counter-clockwise arc passes."""
        start, end = start % 360.0, end % 360.0
        sweep = (end - start) % 360.0 or 360.0
        for angle in (start, start + sweep):
            self.add(cx + r * math.cos(math.radians(angle)), cy + r * math.sin(math.radians(angle)))
        for quadrant in (0.0, 90.0, 180.0, 270.0):
            if (quadrant - start) % 360.0 <= sweep:
                self.add(cx + r * math.cos(math.radians(quadrant)), cy + r * math.sin(math.radians(quadrant)))

    @property
    def empty(self) -> bool:
        return self.lo[0] > self.hi[0]


def _pairs(fh: io.TextIOBase) -> Iterator[tuple[int, str]]:
    while True:
        code = fh.readline()
        if not code:
            return
        value = fh.readline()
        try:
            yield int(code), value.strip()
        except ValueError:
            found = code.strip()[:40]
            raise MetadataError(f"The DXF is corrupt: expected a group code, found {found!r}") from None


def _entity_bounds(kind: str, codes: list[tuple[int, float]], bounds: _Bounds) -> None:
    """Extend `bounds` by one entity; LWPOLYLINE bulges and SPLINE fit are approximated by their points."""
    first: dict[int, float] = {}
    for code, value in codes:
        first.setdefault(code, value)
    if kind in ("LWPOLYLINE", "SPLINE", "POLYLINE"):
        xs = [v for c, v in codes if c == 10]
        ys = [v for c, v in codes if c == 20]
        for x, y in zip(xs, ys, strict=False):
            bounds.add(x, y)
    elif kind in ("LINE", "POINT", "VERTEX") and 10 in first and 20 in first:
        bounds.add(first[10], first[20])
        if kind == "LINE" and 11 in first and 21 in first:
            bounds.add(first[11], first[21])
    elif kind == "CIRCLE" and {10, 20, 40} <= first.keys():
        bounds.add_arc(first[10], first[20], first[40])
    elif kind == "ARC" and {10, 20, 40, 50, 51} <= first.keys():
        bounds.add_arc(first[10], first[20], first[40], first[50], first[51])


def dxf_meta(src: Source, budget: Budget | None = None) -> VectorMeta:
    """Size in mm of an ASCII DXF: $EXTMIN/$EXTMAX with $INSUNITS, else computed from the entities
    (LINE, LWPOLYLINE, POLYLINE, CIRCLE, ARC, POINT, SPLINE control points)."""
    budget = budget or unlimited()
    header: dict[str, dict[int, float]] = {}
    bounds = _Bounds()
    section = None
    expect_section_name = False
    variable = None
    kind: str | None = None
    codes: list[tuple[int, float]] = []
    with _open(src) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline=None)
        try:
            for n, (code, value) in enumerate(_pairs(text), 1):
                if n % 8192 == 0:
                    budget.elements(len(codes), "points in one entity")
                    budget.tick()
                if code == 0:
                    if kind is not None and section == "ENTITIES":
                        _entity_bounds(kind, codes, bounds)
                    kind, codes = None, []
                    if value == "SECTION":
                        expect_section_name = True
                    elif value == "ENDSEC":
                        section = None
                    elif value == "EOF":
                        break
                    else:
                        kind = value
                    continue
                if expect_section_name and code == 2:
                    section, expect_section_name = value, False
                    continue
                if section == "HEADER":
                    if code == 9:
                        variable = value
                        header[variable] = {}
                    elif variable is not None and code in (10, 20, 30, 70):
                        header[variable][code] = float(value)
                elif section == "ENTITIES" and kind is not None and code in (10, 20, 11, 21, 40, 50, 51):
                    codes.append((code, float(value)))
        except FileContentError:  # corrupt, or past the budget: keep the message
            raise
        except ValueError:
            raise MetadataError("The DXF is corrupt: a coordinate is not a number") from None
        finally:
            text.detach()
    if kind is not None and section == "ENTITIES":
        _entity_bounds(kind, codes, bounds)

    unit_code = int(header.get("$INSUNITS", {}).get(70, 0))
    unit, scale = _DXF_UNITS.get(unit_code, ("unitless", 1.0))
    lo, hi = header.get("$EXTMIN", {}), header.get("$EXTMAX", {})
    if {10, 20} <= lo.keys() and {10, 20} <= hi.keys():
        width, height = hi[10] - lo[10], hi[20] - lo[20]
        # An empty drawing keeps the sentinel extents (1e20 / -1e20): then measure the entities.
        if 0 <= width < 1e19 and 0 <= height < 1e19 and (width > 0 or height > 0):
            return VectorMeta("dxf", width * scale, height * scale, unit, "extents")
    if bounds.empty:
        return VectorMeta("dxf", None, None, unit, "none")
    return VectorMeta("dxf", (bounds.hi[0] - bounds.lo[0]) * scale, (bounds.hi[1] - bounds.lo[1]) * scale,
                      unit, "entities")


def vector_meta(src: Source, ext: str, budget: Budget | None = None) -> VectorMeta:
    """Size for a 2D drawing by extension ('.svg' or '.dxf')."""
    if ext.lower() == ".svg":
        return svg_meta(src, budget)
    if ext.lower() == ".dxf":
        return dxf_meta(src, budget)
    raise ValueError(f"not a vector extension: {ext}")
