"""Measuring and picturing uploaded design files within a budget, in the web request or in the worker.

The web request stores the file, checks what is cheap (type, size, an image's pixel count from its
header, a zip's directory) and then measures it under a small share of the lab's limits. A file that needs
more (a big mesh, a large photo) is stored as "processing"; the worker's job `process_pending_uploads`
measures it under the full limits and draws its picture, or marks it "failed" with the reason. Past the
lab's limits a file is refused with the reason, in the request or, found later, on the design's page.
Budgets: fablab.domain.upload_budget; the readers check them in their loops.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..database import begin_write
from ..domain.filetypes import ALLOWED, ZIP_TAIL_BYTES, FileContentError, FileKind, UnsafeFileError, zip_entry_count
from ..domain.gcode_meta import gcode_meta
from ..domain.mesh_meta import MAX_3MF_ENTRIES, read_mesh
from ..domain.svg_safe import sanitize_svg
from ..domain.upload_budget import MB, Budget, Limits
from ..domain.vector_meta import vector_meta
from ..extensions import db
from ..models.designs import Design, DesignFile
from .file_store import FileStore
from .thumbnails import check_image, image_thumbnail, mesh_picture, placeholder_thumbnail

log = logging.getLogger("fablab.designs")

READY, PROCESSING, FAILED = "ready", "processing", "failed"
SVG_INLINE_MAX = 2 * 1024 * 1024  # larger drawings are offered for download only
MAX_ATTEMPTS = 2  # a file that stopped the worker this often is marked failed, not tried again
JOB_FILES = 20  # files the job takes per run; the rest wait for the next run
JOB_SECONDS = 10.0  # no new file is started after this: the worker's other work (MQTT ingest) waits meanwhile
_CARDS = {".gcode": "G-code", ".gco": "G-code", ".g": "G-code", ".nc": "CNC", ".md": "README", ".txt": "TEXT",
          ".step": "STEP", ".stp": "STEP", ".dxf": "DXF", ".svg": "SVG", ".pdf": "PDF"}


@dataclass
class Analysis:
    meta: dict[str, Any]
    thumb_png: bytes | None
    svg_safe: str | None


# --- the store and the budgets ------------------------------------------------------------------------


def file_store() -> FileStore:
    return FileStore(current_app.config["FABLAB_UPLOAD_DIR"], max_bytes=max_upload_bytes())


def max_upload_bytes() -> int:
    return int(current_app.config["FABLAB_MAX_UPLOAD_MB"]) * 1024 * 1024


def limits() -> Limits:
    """The lab's limits: past them a file is refused."""
    c = current_app.config
    return Limits(unpacked_bytes=int(c["FABLAB_UPLOAD_MAX_UNPACKED_MB"]) * MB,
                  elements=int(c["FABLAB_UPLOAD_MAX_ELEMENTS"]), pixels=int(c["FABLAB_UPLOAD_MAX_PIXELS"]),
                  seconds=float(c["FABLAB_UPLOAD_MAX_SECONDS"]))


def request_budget() -> Budget:
    """The full limits, and the web request's share of them: past the share the worker carries on."""
    c = current_app.config
    share = Limits(unpacked_bytes=int(c["FABLAB_UPLOAD_INLINE_UNPACKED_MB"]) * MB,
                   elements=int(c["FABLAB_UPLOAD_INLINE_ELEMENTS"]), pixels=int(c["FABLAB_UPLOAD_INLINE_PIXELS"]),
                   seconds=float(c["FABLAB_UPLOAD_INLINE_SECONDS"]))
    return Budget(limits(), time.monotonic, share)


def worker_budget() -> Budget:
    return Budget(limits(), time.monotonic)


# --- reading one file -----------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A metadata dataclass as JSON-able data (tuples to lists, floats rounded a little)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {k: plain(v) for k, v in dataclasses.asdict(value).items()}
        if hasattr(value, "size_mm"):
            out["size_mm"] = plain(value.size_mm)
        return out
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


def check_archive(path: Path) -> None:
    """A 3MF's zip directory: refuse too many entries before zipfile builds an object for each."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - ZIP_TAIL_BYTES))
        count = zip_entry_count(fh.read())
    if count is not None and count > MAX_3MF_ENTRIES:
        raise UnsafeFileError(f"The 3MF archive has {count} entries; at most {MAX_3MF_ENTRIES} allowed")


def analyse(path: Path, ext: str, kind: FileKind, size: int, budget: Budget) -> Analysis:
    """Metadata, a PNG picture and the sanitized inline SVG of a stored file, within `budget`.

    Raises FileContentError (refused or corrupt, with the reason) or NeedsWorker (past the request's
    share: not an answer about the file)."""
    meta: dict[str, Any] = {}
    picture: bytes | None = None
    svg: str | None = None
    if kind.kind == "mesh":
        mesh, triangles = read_mesh(path, ext, budget)
        meta = plain(mesh)
        budget.tick()
        picture = mesh_picture(triangles)
    elif kind.kind == "image":
        check_image(path, budget)  # from the header: nothing decoded past the pixel limit
        picture = image_thumbnail(path, budget=budget)
    else:
        if kind.kind == "gcode":
            meta = plain(gcode_meta(path))  # reads two fixed windows, whatever the size
        elif ext in (".svg", ".dxf"):
            meta = plain(vector_meta(path, ext, budget))
        if ext == ".svg" and size <= SVG_INLINE_MAX:
            cleaned = sanitize_svg(path.read_bytes(), budget)
            svg = cleaned.svg
            if cleaned.removed:
                meta["svg_removed"] = sorted(set(cleaned.removed))
        if ext in _CARDS:
            picture = placeholder_thumbnail(_CARDS[ext])
    return Analysis(meta, picture, svg)


def cover(files: list[DesignFile]) -> str | None:
    """The list picture: a mesh render first, then a photo, then any file's card."""
    for kinds in (("mesh",), ("image",), ("vector",)):
        for f in files:
            if f.kind in kinds and f.thumb_key:
                return f.thumb_key
    return next((f.thumb_key for f in files if f.thumb_key), None)


# --- the worker's job -------------------------------------------------------------------------------------


def process_pending_uploads(now: datetime) -> int:
    """Measure and picture the files stored as "processing" (oldest first, at most JOB_FILES a run, none
    started after JOB_SECONDS); returns how many stored files were done. Files carried into other
    versions share the stored bytes, so each stored file is read once and every row gets the result."""
    keys = list(db.session.scalars(
        select(DesignFile.storage_key).where(DesignFile.status == PROCESSING)
        .group_by(DesignFile.storage_key).order_by(func.min(DesignFile.id)).limit(JOB_FILES)))
    started = time.monotonic()
    done = 0
    for key in keys:
        if done and time.monotonic() - started > JOB_SECONDS:
            break
        _process(key)
        done += 1
    return done


def _rows(key: str) -> list[DesignFile]:
    return list(db.session.scalars(select(DesignFile).where(DesignFile.storage_key == key,
                                                            DesignFile.status == PROCESSING)))


def _process(key: str) -> None:
    rows = _rows(key)
    if not rows:
        return
    first = rows[0]
    if first.attempts >= MAX_ATTEMPTS:
        _finish(key, None, "Reading this file stopped the worker twice, so it is not tried again. It can "
                           "still be downloaded; upload a smaller or simpler version to get a preview.")
        return
    for row in rows:
        row.attempts += 1
    ext, size, first_id = first.ext, first.size, first.id
    kind = ALLOWED.get(ext)
    # The attempt is recorded before the work (a crash counts), and no write lock is held while reading.
    db.session.commit()
    store = file_store()
    result: Analysis | None = None
    problem: str | None = None
    if kind is None:
        problem = f"Files of type {ext!r} are no longer accepted."
    else:
        try:
            result = analyse(store.path(key), ext, kind, size, worker_budget())
        except FileContentError as err:
            problem = str(err)
        except FileNotFoundError:
            log.error("design file %s (stored as %s) is missing from the store", first_id, key)
            problem = "The stored file is missing; the lab's staff have been told."
        except MemoryError:
            problem = "Reading this file needed more memory than the worker has. Upload a simpler version."
    _finish(key, result, problem)


def _finish(key: str, result: Analysis | None, problem: str | None) -> None:
    thumb_key = None
    if result is not None and result.thumb_png:
        thumb_key = file_store().save(BytesIO(result.thumb_png), max_bytes=16 << 20).key
    begin_write()
    designs: dict[int, Design] = {}
    for row in _rows(key):
        if result is None:
            row.status, row.problem = FAILED, problem
        else:
            row.status, row.problem = READY, None
            row.meta, row.thumb_key, row.svg_safe = result.meta, thumb_key, result.svg_safe
            designs[row.version.design_id] = row.version.design
    for design in designs.values():  # a new picture may be the better cover of the newest version
        latest = design.version()
        if latest is not None:
            design.thumb_key = cover(latest.files) or design.thumb_key
    db.session.commit()
