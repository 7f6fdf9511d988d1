"""Triangle meshes (STL ASCII/binary, 3MF, OBJ): triangle count, bounding box, volume and area in mm.

Large files are read in chunks and measured with numpy, so a 50 MB STL never becomes Python lists.
Volume is the absolute sum of signed tetrahedra (exact for a closed mesh). Every reader works within a
`Budget` (fablab.domain.upload_budget): triangles, vertices, unpacked bytes and time are checked inside
the loops, so a small file that is huge inside stops at the limit instead of taking memory or time.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from fablab.domain.filetypes import ByteStream, FileContentError, MetadataError, UnsafeFileError, parse_xml_events
from fablab.domain.upload_budget import Budget, Limits

Source = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO
Vec3 = tuple[float, float, float]

_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])
assert _STL_RECORD.itemsize == 50
_STL_CHUNK_TRIANGLES = 400_000  # 20 MB of records at a time
_TEXT_CHUNK = 8 << 20
_EMIT_CHUNK = 250_000  # triangles gathered at a time from indexed meshes (3MF, OBJ)
_CHECK_EVERY = 8192  # lines or elements between budget checks
KEEP_FOR_PICTURE = 400_000  # triangles kept for a thumbnail: plenty for 256 px, bounded memory

# 3MF zip-bomb guards.
MAX_3MF_MODEL_BYTES = 512 << 20  # uncompressed XML of all model parts together
MAX_3MF_RATIO = 200  # uncompressed / compressed size of any part we read
MAX_3MF_ENTRIES = 10_000
_3MF_UNITS = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8,
              "meter": 1000.0}


@dataclass(frozen=True)
class MeshMeta:
    format: str  # "stl-binary", "stl-ascii", "3mf", "obj"
    triangles: int
    bbox_min: Vec3  # mm
    bbox_max: Vec3  # mm
    volume_mm3: float
    area_mm2: float

    @property
    def size_mm(self) -> Vec3:
        return (self.bbox_max[0] - self.bbox_min[0], self.bbox_max[1] - self.bbox_min[1],
                self.bbox_max[2] - self.bbox_min[2])


def _budget(budget: Budget | None) -> Budget:
    """The caller's budget, or the module's defaults (read at call time, so tests can lower them)."""
    return budget if budget is not None else Budget(Limits(unpacked_bytes=MAX_3MF_MODEL_BYTES))


class _Accumulator:
    """Running totals over batches of triangles shaped (n, 3, 3), float64 in mm.

    With `keep`, float32 copies are kept for rendering, thinned to at most about `keep_max` triangles: when
    more arrive, every other kept one is dropped and the stride doubles (memory stays bounded)."""

    def __init__(self, keep: bool = False, budget: Budget | None = None, keep_max: int = KEEP_FOR_PICTURE) -> None:
        self.batches: list[np.ndarray] | None = [] if keep else None  # float32 copies for rendering
        self.budget = _budget(budget)
        self.keep_max = keep_max
        self.kept = 0
        self.stride = 1
        self.count = 0
        self.lo = np.full(3, np.inf)
        self.hi = np.full(3, -np.inf)
        self.volume6 = 0.0
        self.area2 = 0.0

    def add(self, tri: np.ndarray) -> None:
        if tri.shape[0] == 0:
            return
        self.budget.elements(self.count + tri.shape[0])
        self.budget.tick()
        if not np.isfinite(tri).all():
            raise MetadataError("The mesh has coordinates that are not finite numbers (corrupt file)")
        v0, v1, v2 = tri[:, 0], tri[:, 1], tri[:, 2]
        offset = (-self.count) % self.stride  # keep every stride-th triangle of the whole stream
        self.count += tri.shape[0]
        flat = tri.reshape(-1, 3)
        self.lo = np.minimum(self.lo, flat.min(axis=0))
        self.hi = np.maximum(self.hi, flat.max(axis=0))
        self.volume6 += float(np.einsum("ij,ij->", v0, np.cross(v1, v2)))
        self.area2 += float(np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1).sum())
        if self.batches is not None:
            kept = tri[offset::self.stride].astype(np.float32)
            self.batches.append(kept)
            self.kept += len(kept)
            while self.kept > 2 * self.keep_max:
                thinned = np.concatenate(self.batches)[::2]
                self.batches, self.kept, self.stride = [thinned], len(thinned), self.stride * 2

    def result(self, fmt: str) -> MeshMeta:
        if self.count == 0:
            raise MetadataError("The mesh contains no triangles")
        return MeshMeta(fmt, self.count, _vec(self.lo), _vec(self.hi),
                        abs(self.volume6) / 6.0, self.area2 / 2.0)


def _vec(a: np.ndarray) -> Vec3:
    return (float(a[0]), float(a[1]), float(a[2]))


@contextmanager
def _open(src: Source) -> Iterator[BinaryIO]:
    if isinstance(src, bytes | bytearray | memoryview):
        yield io.BytesIO(bytes(src))
    elif isinstance(src, str | os.PathLike):
        with open(src, "rb") as fh:
            yield fh
    else:
        yield src


def _size(fh: BinaryIO) -> int:
    pos = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(pos)
    return end - pos


# --- STL -------------------------------------------------------------------------------------------

def stl_meta(src: Source, budget: Budget | None = None) -> MeshMeta:
    """Metadata of an ASCII or binary STL. A binary STL may start with "solid": the size decides."""
    acc = _Accumulator(budget=budget)
    return acc.result(_stl(src, acc))


def _stl(src: Source, acc: _Accumulator) -> str:
    with _open(src) as fh:
        size = _size(fh)
        start = fh.tell()
        head = fh.read(84)
        if len(head) == 84:
            n = int.from_bytes(head[80:84], "little")
            if size == 84 + 50 * n:
                return _binary_stl(fh, n, acc)
        if head.lstrip()[:5].lower() == b"solid" and b"\x00" not in head:
            fh.seek(start)
            return _ascii_stl(fh, acc)
        if len(head) < 84:
            raise MetadataError(f"The STL is truncated: {size} bytes is too short for a binary STL")
        n = int.from_bytes(head[80:84], "little")
        expected = 84 + 50 * n
        if size < expected:
            raise MetadataError(
                f"The binary STL is truncated or corrupt: its header announces {n} triangles "
                f"({expected} bytes) but the file has {size} bytes"
            )
        raise MetadataError(
            f"The binary STL is corrupt: its header announces {n} triangles ({expected} bytes) "
            f"but the file has {size} bytes"
        )


def _binary_stl(fh: BinaryIO, n: int, acc: _Accumulator) -> str:
    acc.budget.elements(n)  # the header's count (the size matched it): refuse or hand over before reading
    left = n
    while left:
        take = min(left, _STL_CHUNK_TRIANGLES)
        buf = fh.read(take * 50)
        if len(buf) != take * 50:
            raise MetadataError("The binary STL ended early (truncated)")
        rec = np.frombuffer(buf, dtype=_STL_RECORD)
        acc.add(rec["v"].astype(np.float64))
        left -= take
    return "stl-binary"


_VERTEX = re.compile(rb"vertex\s+(\S+)\s+(\S+)\s+(\S+)")


def _ascii_stl(fh: BinaryIO, acc: _Accumulator) -> str:
    carry = b""
    pending: list[float] = []  # coordinates of a facet split across chunks
    facets = 0
    saw_end = False
    while True:
        chunk = fh.read(_TEXT_CHUNK)
        data = carry + chunk
        if chunk:
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            data, carry = data[: cut + 1], data[cut + 1 :]
        else:
            carry = b""
        acc.budget.tick()
        low = data.lower()
        facets += low.count(b"facet normal")
        saw_end = saw_end or b"endsolid" in low
        coords = _VERTEX.findall(low)
        try:
            values = pending + [float(c) for triple in coords for c in triple]
        except ValueError:
            raise MetadataError("The ASCII STL has a vertex that is not three numbers (corrupt)") from None
        usable = len(values) - len(values) % 9
        if usable:
            acc.add(np.asarray(values[:usable], dtype=np.float64).reshape(-1, 3, 3))
        pending = values[usable:]
        if not chunk:
            break
    if pending or not saw_end:
        raise MetadataError("The ASCII STL is truncated: a facet or the closing 'endsolid' is missing")
    if facets != acc.count:
        raise MetadataError(
            f"The ASCII STL is corrupt: {facets} facets but {acc.count * 3} vertices"
        )
    return "stl-ascii"


# --- OBJ -------------------------------------------------------------------------------------------

def obj_meta(src: Source, budget: Budget | None = None) -> MeshMeta:
    """Metadata of a Wavefront OBJ (v and f lines; polygons fan-triangulated; units taken as mm)."""
    acc = _Accumulator(budget=budget)
    return acc.result(_obj(src, acc))


def _obj(src: Source, acc: _Accumulator) -> str:
    verts = array("d")  # flattened x, y, z: 8 bytes a number, not a Python float object each
    faces = array("i")  # flattened triangle vertex indices (int32: the element limit is far below 2^31)
    budget = acc.budget
    with _open(src) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline=None)
        try:
            for lineno, line in enumerate(text, 1):
                if lineno % _CHECK_EVERY == 0:
                    budget.elements(len(verts) // 3, "vertices")
                    budget.elements(len(faces) // 3)
                    budget.tick()
                if line.startswith("v "):
                    parts = line.split()
                    if len(parts) < 4:
                        raise MetadataError(f"OBJ line {lineno}: a vertex needs three coordinates")
                    verts.extend((float(parts[1]), float(parts[2]), float(parts[3])))
                elif line.startswith("f "):
                    if len(line) > 1 << 20:
                        raise MetadataError(f"OBJ line {lineno}: a face of more than a megabyte is no mesh")
                    idx = []
                    nverts = len(verts) // 3
                    for token in line.split()[1:]:
                        i = int(token.split("/", 1)[0])
                        idx.append(i - 1 if i > 0 else nverts + i)  # negative = relative to the end
                    if len(idx) < 3:
                        raise MetadataError(f"OBJ line {lineno}: a face needs at least three vertices")
                    for k in range(1, len(idx) - 1):
                        faces.extend((idx[0], idx[k], idx[k + 1]))
        except FileContentError:  # a budget's refusal is a ValueError too: keep its message
            raise
        except (ValueError, OverflowError):
            raise MetadataError(f"OBJ line {lineno}: not a number where one is expected") from None
        finally:
            text.detach()
    budget.elements(len(verts) // 3, "vertices")
    budget.elements(len(faces) // 3)
    v = np.frombuffer(verts, dtype=np.float64).reshape(-1, 3)
    f = np.frombuffer(faces, dtype=np.int32).reshape(-1, 3)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise MetadataError("The OBJ refers to vertices that do not exist (corrupt file)")
    _emit_indexed(v, f, acc)
    return "obj"


def _emit_indexed(v: np.ndarray, t: np.ndarray, acc: _Accumulator,
                  matrix: np.ndarray | None = None, scale: float = 1.0) -> None:
    """Gather triangles from a vertex table a chunk at a time (never the whole (n, 3, 3) array at once)."""
    for start in range(0, len(t), _EMIT_CHUNK):
        tri = v[t[start:start + _EMIT_CHUNK]]
        if matrix is not None:
            tri = tri @ matrix[:3] + matrix[3]
        acc.add(tri * scale if scale != 1.0 else tri)


# --- 3MF -------------------------------------------------------------------------------------------

@dataclass
class _Object:
    vertices: array[float]  # flattened x, y, z ("d")
    triangles: array[int]  # flattened v1, v2, v3 ("i": int32 halves the biggest table)
    components: list[tuple[str, np.ndarray]]


def _transform(text: str | None) -> np.ndarray:
    """A 3MF transform (12 numbers, row-vector convention) as a 4x3 matrix; identity when absent."""
    if not text:
        return np.vstack([np.eye(3), np.zeros(3)])
    try:
        values = [float(x) for x in text.split()]
    except ValueError:
        raise MetadataError("The 3MF has a transform that is not numbers") from None
    if len(values) != 12:
        raise MetadataError("The 3MF has a transform without 12 numbers")
    return np.asarray(values, dtype=np.float64).reshape(4, 3)


class _CappedReader(io.RawIOBase):
    """Reads a zip member in chunks, counting every decompressed byte against the budget (and its own
    declared size): it stops at the cap while streaming, whatever the archive's headers claim."""

    def __init__(self, member: ByteStream, cap: int, name: str, budget: Budget) -> None:
        self._member, self._left, self._name, self._budget = member, cap, name, budget

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._member.read(1 << 16 if size < 0 else min(size, 1 << 20))
        self._left -= len(data)
        if self._left < 0:
            raise UnsafeFileError(f"The 3MF part {self._name} unpacks to more than allowed (zip bomb?)")
        self._budget.add_unpacked(len(data), self._name)
        return data


def _check_zip(zf: zipfile.ZipFile, budget: Budget) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_3MF_ENTRIES:
        raise UnsafeFileError(f"The 3MF archive has {len(infos)} entries; at most {MAX_3MF_ENTRIES} allowed")
    models = [i for i in infos if i.filename.lower().endswith(".model")]
    total = sum(i.file_size for i in models)
    budget.check_unpacked(total, "3D/3dmodel.model")  # what the headers declare; the reading counts again
    if total > MAX_3MF_MODEL_BYTES:
        raise UnsafeFileError(
            f"The 3MF model unpacks to {total} bytes, more than the {MAX_3MF_MODEL_BYTES} allowed"
        )
    for i in models:
        if i.file_size > 1 << 20 and i.file_size > MAX_3MF_RATIO * max(i.compress_size, 1):
            raise UnsafeFileError(
                f"The 3MF part {i.filename} is compressed {i.file_size // max(i.compress_size, 1)}:1, "
                "which only a zip bomb does; refused"
            )
    return models


def threemf_meta(src: Source, budget: Budget | None = None) -> MeshMeta:
    """Metadata of a 3MF: all build items (with their transforms and components) in the model's unit."""
    acc = _Accumulator(budget=budget)
    return acc.result(_threemf(src, acc))


def _threemf(src: Source, acc: _Accumulator) -> str:
    with _open(src) as fh:
        try:
            zf = zipfile.ZipFile(fh)
        except zipfile.BadZipFile:
            raise MetadataError("The 3MF is not a valid zip archive") from None
        with zf:
            models = _check_zip(zf, acc.budget)
            main = next((i for i in models if i.filename.lower() == "3d/3dmodel.model"), None)
            if main is None:
                if not models:
                    raise MetadataError("The 3MF has no 3D/3dmodel.model part")
                main = models[0]
            with zf.open(main) as member:
                # Never more than declared (already checked above) nor than the overall cap.
                reader = _CappedReader(member, min(main.file_size, MAX_3MF_MODEL_BYTES), main.filename, acc.budget)
                try:
                    return _parse_3mf_model(reader, acc)
                except (zipfile.BadZipFile, EOFError) as err:
                    raise MetadataError(f"The 3MF archive is damaged ({err})") from None


@dataclass
class _ModelState:
    """What the 3MF parser callbacks carry between elements."""

    unit: float = 1.0  # mm per model unit
    current: _Object | None = None  # the <object> being read


def _parse_3mf_model(stream: ByteStream, acc: _Accumulator) -> str:
    objects: dict[str, _Object] = {}
    build: list[tuple[str, np.ndarray]] = []
    state = _ModelState()
    budget = acc.budget
    counts = [0, 0]  # vertices, triangles of all objects

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rsplit("}", 1)[-1]
        current = state.current
        try:
            if local == "vertex" and current is not None:
                current.vertices.extend((float(attrs["x"]), float(attrs["y"]), float(attrs["z"])))
                counts[0] += 1
                if counts[0] % _CHECK_EVERY == 0:
                    budget.elements(counts[0], "vertices")
            elif local == "triangle" and current is not None:
                current.triangles.extend((int(attrs["v1"]), int(attrs["v2"]), int(attrs["v3"])))
                counts[1] += 1
                if counts[1] % _CHECK_EVERY == 0:
                    budget.elements(counts[1])
            elif local == "object":
                obj = _Object(array("d"), array("i"), [])
                objects[attrs.get("id", "")] = obj
                state.current = obj
            elif local == "component" and current is not None:
                current.components.append((attrs["objectid"], _transform(attrs.get("transform"))))
            elif local == "item":
                build.append((attrs["objectid"], _transform(attrs.get("transform"))))
            elif local == "model":
                unit = attrs.get("unit", "millimeter")
                if unit not in _3MF_UNITS:
                    raise MetadataError(f"The 3MF uses an unknown unit {unit!r}")
                state.unit = _3MF_UNITS[unit]
        except FileContentError:  # a budget's refusal is a ValueError too: keep its message
            raise
        except (KeyError, ValueError, OverflowError) as err:
            raise MetadataError(f"The 3MF has a <{local}> with a missing or bad attribute ({err})") from None

    def end(name: str) -> None:
        if name.rsplit("}", 1)[-1] == "object":
            state.current = None

    parse_xml_events(stream, start, end, budget=budget)

    scale = state.unit

    def emit(object_id: str, matrix: np.ndarray, depth: int) -> None:
        budget.tick()  # components can repeat objects exponentially: the triangle count and time stop it
        if depth > 32:
            raise MetadataError("The 3MF components are nested too deeply (a cycle?)")
        obj = objects.get(object_id)
        if obj is None:
            raise MetadataError(f"The 3MF build refers to a missing object {object_id!r}")
        if obj.triangles:
            v = np.frombuffer(obj.vertices, dtype=np.float64).reshape(-1, 3)
            t = np.frombuffer(obj.triangles, dtype=np.int32).reshape(-1, 3)
            if t.min() < 0 or t.max() >= len(v):
                raise MetadataError(f"The 3MF object {object_id!r} refers to vertices that do not exist")
            _emit_indexed(v, t, acc, matrix, scale)
        for child_id, child_matrix in obj.components:
            # Row vectors: apply the component's transform first, then the parent's.
            combined = np.vstack([child_matrix[:3] @ matrix[:3], child_matrix[3] @ matrix[:3] + matrix[3]])
            emit(child_id, combined, depth + 1)

    identity = _transform(None)
    items = build or [(oid, identity) for oid, o in objects.items() if o.triangles]
    # Count before placing: components can repeat an object 10^10 times in a few KB.
    memo: dict[str, int] = {}
    budget.elements(sum(_placed_triangles(oid, objects, memo, 0) for oid, _m in items))
    for object_id, matrix in items:
        emit(object_id, matrix, 0)
    return "3mf"


def _placed_triangles(object_id: str, objects: dict[str, _Object], memo: dict[str, int], depth: int) -> int:
    """Triangles an object places with all its components (memoised; cycles stop at depth 32)."""
    if object_id in memo:
        return memo[object_id]
    obj = objects.get(object_id)
    if obj is None or depth > 32:
        return 0  # emit() reports a missing object or a cycle with its own message
    n = len(obj.triangles) // 3 + sum(_placed_triangles(c, objects, memo, depth + 1) for c, _m in obj.components)
    memo[object_id] = n
    return n


# --- dispatch --------------------------------------------------------------------------------------

_Reader = Callable[[Source, _Accumulator], str]
_READERS: dict[str, _Reader] = {".stl": _stl, ".3mf": _threemf, ".obj": _obj}


def mesh_meta(src: Source, ext: str, budget: Budget | None = None) -> MeshMeta:
    """Metadata for a mesh file by extension ('.stl', '.3mf', '.obj')."""
    acc = _Accumulator(budget=budget)
    return acc.result(_reader(ext)(src, acc))


def read_mesh(src: Source, ext: str, budget: Budget | None = None,
              keep_max: int = KEEP_FOR_PICTURE) -> tuple[MeshMeta, np.ndarray]:
    """Metadata and triangles for a picture (float32 (n, 3, 3) in mm, evenly thinned to about `keep_max`
    or fewer), read in one pass."""
    acc = _Accumulator(keep=True, budget=budget, keep_max=keep_max)
    meta = acc.result(_reader(ext)(src, acc))  # raises MetadataError for an empty or corrupt mesh
    assert acc.batches is not None
    return meta, (np.concatenate(acc.batches) if len(acc.batches) > 1 else acc.batches[0])


def mesh_triangles(src: Source, ext: str, budget: Budget | None = None,
                   keep_max: int = KEEP_FOR_PICTURE) -> np.ndarray:
    """The triangles of a mesh file as float32 (n, 3, 3) in mm, thinned to about `keep_max` (thumbnails)."""
    return read_mesh(src, ext, budget, keep_max)[1]


def _reader(ext: str) -> _Reader:
    try:
        return _READERS[ext.lower()]
    except KeyError:
        raise ValueError(f"not a mesh extension: {ext}") from None
