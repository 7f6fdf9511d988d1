"""Does a G-code file fit a printer? Pure rules, plus the one pass over the file that finds what they need.

`scan(chunks)` reads the moves of a G-code file once (any iterable of byte chunks, so a 20 MB upload is
read while it streams to disk) and returns the extent actually printed (extruding moves only: a travel to
the park position is not the part), the firmware flavour and nozzle the slicer wrote, and the material.
`misfits(file, printer)` compares that with a printer's profile: each reason is a code and its params (the
pages word them; the API sends the code), and an empty list means it fits. What the file does not say is
not held against it (an unknown flavour fits any Marlin-like printer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TOLERANCE_MM = 0.5  # slicers place skirts at the bed's very edge; rounding must not refuse them

# Flavour names as slicers write them → the firmware dialect they target.
_FLAVOURS = {"marlin": "marlin", "marlin2": "marlin", "marlin 2": "marlin", "marlin_legacy": "marlin",
             "reprap": "marlin",  # Cura's "RepRap (Marlin/Sprinter)"
             "reprapfirmware": "reprapfirmware", "reprap (reprapfirmware)": "reprapfirmware", "rrf": "reprapfirmware",
             "klipper": "klipper", "repetier": "repetier", "griffin": "griffin", "ultigcode": "griffin",
             "smoothie": "smoothie", "sprinter": "marlin", "teacup": "marlin", "makerware": "makerbot",
             "sailfish": "makerbot", "mach3": "mach3", "machinekit": "machinekit", "no extrusion": "none"}
# Which dialects each firmware runs (Klipper and RepRapFirmware take Marlin's commands for printing).
RUNS: dict[str, frozenset[str]] = {
    "marlin": frozenset({"marlin", "none"}),
    "prusa": frozenset({"marlin", "none"}),
    "klipper": frozenset({"klipper", "marlin", "none"}),
    "reprapfirmware": frozenset({"reprapfirmware", "marlin", "none"}),
    "repetier": frozenset({"repetier", "marlin", "none"}),
    "smoothie": frozenset({"smoothie", "marlin", "none"}),
    "griffin": frozenset({"griffin"}),
}
FIRMWARES = tuple(RUNS)



@dataclass(frozen=True)
class Extent:
    min_x: float
    max_x: float
    min_y: float
    max_y: float
    max_z: float

    @property
    def size(self) -> tuple[float, float, float]:
        return (round(self.max_x - self.min_x, 2), round(self.max_y - self.min_y, 2), round(self.max_z, 2))


@dataclass(frozen=True)
class PrintFile:
    extent: Extent | None = None
    flavour: str | None = None  # the dialect (see _FLAVOURS), None when the slicer did not say
    nozzle_mm: float | None = None
    material: str | None = None  # PLA, PETG… (the first extruder's)


@dataclass(frozen=True)
class Printer:
    name: str
    build_x_mm: float | None = None
    build_y_mm: float | None = None
    build_z_mm: float | None = None
    firmware: str | None = None
    nozzle_mm: float | None = None
    materials: tuple[str, ...] = ()  # empty: any


@dataclass(frozen=True)
class Misfit:
    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        p = self.params
        if self.code == "too_large":
            return (f"The print is {p['axis'].upper()} {p['size']:g} mm; {p['printer']} builds at most "
                    f"{p['limit']:g} mm.")
        if self.code == "outside_bed":
            return (f"The print reaches {p['axis'].upper()} {p['at']:g} mm, outside {p['printer']}'s bed "
                    f"(0–{p['limit']:g} mm): slice it again for this printer.")
        if self.code == "firmware":
            return (f"The file was sliced for {p['flavour']} firmware; {p['printer']} runs {p['firmware']}. "
                    "Slice it again with this printer's profile.")
        if self.code == "nozzle":
            return (f"The file was sliced for a {p['file']:g} mm nozzle; {p['printer']} has a {p['nozzle']:g} mm "
                    "nozzle.")
        if self.code == "material":
            return f"{p['printer']} does not print {p['material']} (it prints {', '.join(p['allowed'])})."
        if self.code == "not_a_printer":
            return f"{p['printer']} is not set up to receive prints."
        return self.code


def dialect(flavour: str | None) -> str | None:
    """The dialect a slicer's flavour name targets (None: not said, or a name we do not know)."""
    if not flavour:
        return None
    return _FLAVOURS.get(flavour.strip().lower())


def misfits(f: PrintFile, p: Printer) -> list[Misfit]:
    """Why the file does not fit the printer (empty: it fits)."""
    out: list[Misfit] = []
    if p.firmware is None:
        return [Misfit("not_a_printer", {"printer": p.name})]
    if f.extent is not None:
        sizes = dict(zip("xyz", f.extent.size, strict=True))
        limits = {"x": p.build_x_mm, "y": p.build_y_mm, "z": p.build_z_mm}
        for axis in "xyz":
            limit = limits[axis]
            if limit is None:
                continue
            if sizes[axis] > limit + TOLERANCE_MM:
                out.append(Misfit("too_large", {"axis": axis, "size": sizes[axis], "limit": limit, "printer": p.name}))
                continue
            lo, hi = {"x": (f.extent.min_x, f.extent.max_x), "y": (f.extent.min_y, f.extent.max_y),
                      "z": (0.0, f.extent.max_z)}[axis]
            for at in (lo, hi):
                if at < -TOLERANCE_MM or at > limit + TOLERANCE_MM:
                    out.append(Misfit("outside_bed", {"axis": axis, "at": round(at, 2), "limit": limit,
                                                      "printer": p.name}))
                    break
    if f.flavour is not None and f.flavour not in RUNS.get(p.firmware, frozenset()):
        out.append(Misfit("firmware", {"flavour": f.flavour, "firmware": p.firmware, "printer": p.name}))
    if f.nozzle_mm is not None and p.nozzle_mm is not None and abs(f.nozzle_mm - p.nozzle_mm) > 0.01:
        out.append(Misfit("nozzle", {"file": f.nozzle_mm, "nozzle": p.nozzle_mm, "printer": p.name}))
    if f.material and p.materials and f.material.upper() not in {m.upper() for m in p.materials}:
        out.append(Misfit("material", {"material": f.material, "allowed": list(p.materials), "printer": p.name}))
    return out


# One regex walks the file: moves, the few modal codes that change how moves are read, and "; key = value"
# comments (slicer settings). Everything else (temperatures, fans, Cura's ;TYPE: lines) is skipped in C.
_LINE = re.compile(
    rb"^[ \t]*(?:(G0?[01])[ \t]([^;\n]*)"
    rb"|(G9[01]|M8[23]|G92|G28)(?![0-9])([^;\n]*)"
    rb"|;[ \t]*([A-Za-z_][A-Za-z_. ]*?)[ \t]*[=:][ \t]*([^\n]*?)[ \t]*\r?$)", re.M | re.I)
_AXIS = re.compile(rb"([XYZE])[ \t]*(-?\d*\.?\d+)", re.I)


class _Scanner:
    """The state of one pass: position (absolute or relative moves and extrusion), extent, comments."""

    def __init__(self) -> None:
        self.x = self.y = self.z = self.e = 0.0
        self.relative = False
        self.relative_e = False
        self.box: list[float] | None = None  # min_x, max_x, min_y, max_y, max_z
        self.comments: dict[str, str] = {}

    def feed(self, data: bytes) -> None:
        for move, words, code, rest, key, value in _LINE.findall(data):
            if move:
                self._move(words, move[-1:] == b"1")
            elif code:
                self._modal(code.upper(), rest)
            elif len(self.comments) < 2000:
                self.comments.setdefault(key.decode("ascii", "replace").strip().lower(),
                                         value.decode("utf-8", "replace")[:100])

    def _modal(self, code: bytes, rest: bytes) -> None:
        if code == b"G90":
            self.relative = self.relative_e = False
        elif code == b"G91":
            self.relative = self.relative_e = True
        elif code == b"M82":
            self.relative_e = False
        elif code == b"M83":
            self.relative_e = True
        elif code == b"G28":
            self.x = self.y = self.z = 0.0
        else:  # G92: set position
            for axis, value in _AXIS.findall(rest):
                setattr(self, axis.lower().decode(), float(value))

    def _move(self, words: bytes, feed: bool) -> None:
        extruded = False
        x, y, z = self.x, self.y, self.z
        rel = self.relative
        for axis, raw in _AXIS.findall(words):
            v = float(raw)
            a = axis[0] | 0x20  # lower case
            if a == 120:  # x
                x = x + v if rel else v
            elif a == 121:  # y
                y = y + v if rel else v
            elif a == 122:  # z
                z = z + v if rel else v
            elif self.relative_e:
                extruded = v > 0
                self.e += v
            else:
                extruded = v > self.e
                self.e = v
        self.x, self.y, self.z = x, y, z
        if feed and extruded:
            b = self.box
            if b is None:
                self.box = [x, x, y, y, z]
                return
            if x < b[0]:
                b[0] = x
            elif x > b[1]:
                b[1] = x
            if y < b[2]:
                b[2] = y
            elif y > b[3]:
                b[3] = y
            if z > b[4]:
                b[4] = z


def _first_number(text: str | None) -> float | None:
    if not text:
        return None
    m = re.search(r"\d+(?:\.\d+)?", text)
    return float(m.group()) if m else None


def scan(chunks: Iterable[bytes]) -> PrintFile:
    """One pass over the file's bytes (chunks of any size; lines may span chunks)."""
    s = _Scanner()
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        cut = data.rfind(b"\n") + 1  # whole lines only; the rest waits for the next chunk
        s.feed(data[:cut])
        rest = data[cut:]
    if rest:
        s.feed(rest)
    c = s.comments
    extent = Extent(*(round(v, 3) for v in s.box)) if s.box else None
    flavour_name = c.get("flavor") or c.get("gcode_flavor") or c.get("firmware")
    raw_material = c.get("filament_type") or c.get("material") or c.get("filament type")
    material = (raw_material.split(";")[0].split(",")[0].strip() or None) if raw_material else None
    return PrintFile(extent=extent, flavour=dialect(flavour_name) if flavour_name else None,
                     nozzle_mm=_first_number(c.get("nozzle_diameter") or c.get("extruder_train.0.nozzle.diameter")),
                     material=material)
