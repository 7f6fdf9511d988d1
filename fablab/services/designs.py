"""Designs as commons: upload (all files checked before anything is kept), versions, and forks under
the licence rules; the file store and the normalising of what people type (titles, tags, licences).
Lineage, attribution and the zip download are fablab.services.design_lineage; search, "made here"
and the Atom feed are fablab.services.design_discovery. Both build on this module, never the reverse.

Files go to the FileStore under generated names; a design row is written only after every file was
stored, sniffed and measured, and any failure deletes what this call stored: nothing half-stored. A file
too heavy to measure within the web request's budget is kept as "processing" and the worker measures
it (fablab.services.design_processing).
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..domain.filetypes import FileContentError, FileKind, MetadataError, kind_for_name, safe_display_name, sniff
from ..domain.licences import LicenceError, check_fork_licence, check_licence
from ..domain.upload_budget import NeedsWorker
from ..extensions import db
from ..models import MachineType, Member, Role
from ..models.designs import Design, DesignFile, DesignTag, DesignVersion
from ..models.types import utcnow
from . import event_data, lab_events
from .design_processing import (
    PROCESSING,
    READY,
    SVG_INLINE_MAX,
    Analysis,
    analyse,
    check_archive,
    cover,
    file_store,
    max_upload_bytes,
    request_budget,
)
from .file_store import FileStore, Readable, StoredFile, UploadTooLarge

__all__ = ["SVG_INLINE_MAX", "file_store", "max_upload_bytes"]  # kept here for the pages and the API

MAX_TAGS = 12
MAX_FILES = 50
SEARCH_DESCRIPTION_CHARS = 2000
log = logging.getLogger("fablab.designs")


class DesignError(Exception):
    """A refused request; `status` is the HTTP status, `code` is stable for the API, `message` for people."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the client sent (untrusted) and a stream to read it from."""

    name: str
    stream: Readable


@dataclass
class _Ingested:
    name: str
    ext: str
    kind: FileKind
    stored: StoredFile
    meta: dict[str, Any]
    thumb_key: str | None
    svg_safe: str | None
    status: str = READY


# --- the file store ---------------------------------------------------------------------------------------


def too_large_message() -> str:
    return (f"The upload is larger than this lab's limit of {current_app.config['FABLAB_MAX_UPLOAD_MB']} MB "
            "per file. Make the file smaller (e.g. fewer triangles or a zip of the sources) and try again.")


def _ingest(store: FileStore, upload: Upload) -> _Ingested:
    """Store one file, check its content against its name, measure it and picture it within the request's
    budget (past it the worker does that later); refuse with the name and the reason."""
    name = safe_display_name(upload.name)
    try:
        kind = kind_for_name(name)
    except FileContentError as err:
        raise DesignError(422, "file_type_refused", f"{name}: {err}") from None
    ext = "." + name.rsplit(".", 1)[-1].lower()
    try:
        stored = store.save(upload.stream)
    except UploadTooLarge:
        raise DesignError(413, "too_large", f"{name}: {too_large_message()}") from None
    thumb_key = None
    try:
        if ext == ".3mf" and stored.head.startswith(b"PK"):
            check_archive(stored.path)
        kind = sniff(name, stored.head, open_zip=lambda: zipfile.ZipFile(stored.path))
        status = READY
        try:
            result = analyse(stored.path, ext, kind, stored.size, request_budget())
        except NeedsWorker:
            result, status = Analysis({}, None, None), PROCESSING
        if result.thumb_png:
            thumb_key = store.save(BytesIO(result.thumb_png), max_bytes=16 << 20).key
        return _Ingested(name, ext, kind, stored, result.meta, thumb_key, result.svg_safe, status)
    except FileContentError as err:
        store.delete(stored.key)
        if thumb_key:
            store.delete(thumb_key)
        code = "file_corrupt" if isinstance(err, MetadataError) else "file_refused"
        raise DesignError(422, code, f"{name}: {err}") from None
    except BaseException:
        store.delete(stored.key)
        if thumb_key:
            store.delete(thumb_key)
        raise


def _ingest_all(store: FileStore, uploads: Sequence[Upload]) -> list[_Ingested]:
    """All files or none: a refusal of any file deletes the ones already stored by this call."""
    if len(uploads) > MAX_FILES:
        raise DesignError(422, "too_many_files", f"At most {MAX_FILES} files per version.")
    done: list[_Ingested] = []
    try:
        for upload in uploads:
            done.append(_ingest(store, upload))
    except BaseException:
        _discard(store, done)
        raise
    return done


def _discard(store: FileStore, files: Iterable[_Ingested]) -> None:
    for f in files:
        store.delete(f.stored.key)
        if f.thumb_key:
            store.delete(f.thumb_key)


def _file_row(f: _Ingested, now: datetime) -> DesignFile:
    return DesignFile(name=f.name, storage_key=f.stored.key, ext=f.ext, kind=f.kind.kind, mime=f.kind.mime,
                      size=f.stored.size, sha256=f.stored.sha256, meta=f.meta, thumb_key=f.thumb_key,
                      svg_safe=f.svg_safe, status=f.status, created_at=now)


def _copy_row(f: DesignFile, now: datetime) -> DesignFile:
    return DesignFile(name=f.name, storage_key=f.storage_key, ext=f.ext, kind=f.kind, mime=f.mime, size=f.size,
                      sha256=f.sha256, meta=f.meta, thumb_key=f.thumb_key, svg_safe=f.svg_safe, status=f.status,
                      problem=f.problem, attempts=f.attempts, created_at=now)


def _cover(files: Sequence[DesignFile]) -> str | None:
    return cover(list(files))


def processing_count(version: DesignVersion) -> int:
    """How many files of a version the worker has still to measure and picture."""
    return sum(1 for f in version.files if f.status == PROCESSING)


def missing_files(version: DesignVersion) -> list[DesignFile]:
    """Files of a version whose stored bytes are gone; each is logged as an error for the lab's staff."""
    store = file_store()
    missing = [f for f in version.files if not store.path(f.storage_key).exists()]
    for f in missing:
        report_missing(f)
    return missing


def report_missing(f: DesignFile) -> None:
    log.error("design %s version %s: file %s %r (stored as %s) is missing from the file store",
              f.version.design_id, f.version.number, f.id, f.name, f.storage_key)


# --- normalising what people type -----------------------------------------------------------------------


def normalise_tags(raw: str | Iterable[str] | None) -> list[str]:
    """Lower-case tags, spaces to hyphens, only letters/digits/-_+., unique, at most MAX_TAGS."""
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    out: list[str] = []
    for item in items:
        tag = unicodedata.normalize("NFKC", str(item)).strip().lower().lstrip("#")
        tag = re.sub(r"\s+", "-", tag)
        tag = re.sub(r"[^\w+.-]", "", tag)[:40].strip("-.")
        if tag and tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise DesignError(422, "too_many_tags", f"At most {MAX_TAGS} tags, please.")
    return out


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:80].strip("-") or "design"


def _search_text(design: Design) -> str:
    parts = [design.title, design.tags_text, design.author_name, design.licence,
             design.description[:SEARCH_DESCRIPTION_CHARS]]
    return " ".join(p for p in parts if p).lower()


def _title(title: str | None) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise DesignError(422, "title_missing", "Give the design a title.")
    if len(title) > 200:
        raise DesignError(422, "title_too_long", "The title can have at most 200 characters.")
    return title


def _licence(spdx: str) -> str:
    try:
        return check_licence(spdx).spdx
    except LicenceError as err:
        raise DesignError(422, err.code, err.message) from None


def machine_types_by_slugs(slugs: Iterable[str]) -> list[MachineType]:
    wanted = [s.strip() for s in slugs if s and s.strip()]
    if not wanted:
        return []
    found = list(db.session.scalars(select(MachineType).where(MachineType.slug.in_(wanted))))
    missing = set(wanted) - {t.slug for t in found}
    if missing:
        raise DesignError(422, "unknown_machine_type", f"Unknown machine type: {', '.join(sorted(missing))}.")
    return found


def _set_tags(design: Design, tags: list[str]) -> None:
    design.tags_text = " ".join(tags)
    design.tag_rows = [DesignTag(tag=t) for t in tags]


def can_edit(member: Member | None, design: Design) -> bool:
    return member is not None and (member.id == design.author_id or member.has_role(Role.ADMIN))


def get_design(design_id: int) -> Design | None:
    return db.session.get(Design, design_id)


def _publish_design(store: FileStore, ingested: list[_Ingested], design: Design, now: datetime) -> None:
    """design.published for a new design (every design is public), in its transaction: the id needs a flush,
    and a failure there must discard the stored files as a failed commit would."""
    try:
        db.session.flush()
        lab_events.publish(event_data.design_published(design, now))
    except BaseException:
        db.session.rollback()
        _discard(store, ingested)
        raise


def _commit_or_discard(store: FileStore, ingested: list[_Ingested]) -> None:
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        _discard(store, ingested)
        raise


# --- create, version, fork ------------------------------------------------------------------------------


def create_design(author: Member, *, title: str, licence: str, files: Sequence[Upload], description: str = "",
                  tags: str | Iterable[str] | None = None, machine_types: Sequence[MachineType] = (),
                  changelog: str = "", now: datetime | None = None) -> Design:
    """A new design with its first version holding `files`; DesignError says what was refused."""
    now = now or utcnow()
    title = _title(title)
    spdx = _licence(licence)
    tag_list = normalise_tags(tags)
    if not files:
        raise DesignError(422, "files_missing", "Add at least one file (a model, drawing, G-code or document).")
    store = file_store()
    ingested = _ingest_all(store, files)
    design = Design(title=title, slug=slugify(title), description=description or "", licence=spdx,
                    author=author, author_name=author.name, latest_version=1, created_at=now, updated_at=now,
                    machine_types=list(machine_types))
    _set_tags(design, tag_list)
    design.search_text = _search_text(design)
    version = DesignVersion(number=1, changelog=changelog or "First version", author=author, created_at=now)
    version.files = [_file_row(f, now) for f in ingested]
    design.versions = [version]
    design.thumb_key = _cover(version.files)
    db.session.add(design)
    _publish_design(store, ingested, design, now)
    _commit_or_discard(store, ingested)
    return design


def add_version(design: Design, member: Member, *, files: Sequence[Upload], changelog: str,
                keep_file_ids: Iterable[int] = (), now: datetime | None = None) -> DesignVersion:
    """A new version: chosen files of the latest version carried over, plus new uploads (a new file with
    the same name as a carried one replaces it). Only the author (or an admin) may add versions."""
    if not can_edit(member, design):
        raise DesignError(403, "forbidden", "Only the design's author can add versions. Fork it to change it.")
    now = now or utcnow()
    changelog = (changelog or "").strip()
    if not changelog:
        raise DesignError(422, "changelog_missing", "Say what changed in this version.")
    latest = design.version()
    keep = set(keep_file_ids)
    carried = [f for f in (latest.files if latest else []) if f.id in keep]
    if not files and not carried:
        raise DesignError(422, "files_missing", "A version needs at least one file.")
    store = file_store()
    ingested = _ingest_all(store, files)
    new_names = {f.name.lower() for f in ingested}
    version = DesignVersion(number=design.latest_version + 1, changelog=changelog, author=member, created_at=now)
    version.files = [_copy_row(f, now) for f in carried if f.name.lower() not in new_names]
    version.files += [_file_row(f, now) for f in ingested]
    design.versions.append(version)
    design.latest_version = version.number
    design.updated_at = now
    design.thumb_key = _cover(version.files) or design.thumb_key
    try:
        _commit_or_discard(store, ingested)
    except IntegrityError:
        raise DesignError(409, "version_conflict", "Someone added a version at the same moment; try again.") from None
    return version


def fork_design(parent: Design, member: Member, *, licence: str, title: str | None = None,
                description: str | None = None, tags: str | Iterable[str] | None = None,
                machine_types: Sequence[MachineType] | None = None, files: Sequence[Upload] = (),
                version_number: int | None = None, changelog: str = "", now: datetime | None = None) -> Design:
    """A new design whose first version starts from `parent`'s version (its files are carried over, new
    uploads replace same-named ones). A copyleft parent limits the fork's licence (LicenceError rules)."""
    now = now or utcnow()
    source = parent.version(version_number)
    if source is None:
        raise DesignError(404, "version_not_found", f"{parent.title} has no version {version_number}.")
    try:
        spdx = check_fork_licence(parent.licence, licence).spdx
    except LicenceError as err:
        raise DesignError(422, err.code, err.message) from None
    title = _title(title or f"{parent.title} (fork)")
    tag_list = normalise_tags(parent.tags if tags is None else tags)
    store = file_store()
    ingested = _ingest_all(store, files)
    new_names = {f.name.lower() for f in ingested}
    design = Design(title=title, slug=slugify(title),
                    description=parent.description if description is None else description,
                    licence=spdx, author=member, author_name=member.name, parent_id=parent.id, latest_version=1,
                    created_at=now, updated_at=now,
                    machine_types=list(parent.machine_types if machine_types is None else machine_types))
    _set_tags(design, tag_list)
    design.search_text = _search_text(design)
    version = DesignVersion(number=1, author=member, created_at=now, parent_version_id=source.id,
                            changelog=changelog or f"Forked from “{parent.title}” version {source.number}")
    version.files = [_copy_row(f, now) for f in source.files if f.name.lower() not in new_names]
    version.files += [_file_row(f, now) for f in ingested]
    design.versions = [version]
    design.thumb_key = _cover(version.files)
    db.session.add(design)
    # A counter update in SQL, not in Python: concurrent forks must not lose a count.
    db.session.execute(update(Design).where(Design.id == parent.id)
                       .values(forks_count=Design.forks_count + 1))
    _publish_design(store, ingested, design, now)
    _commit_or_discard(store, ingested)
    return design
