"""Designs as commons: upload (all files checked before anything is kept), versions, forks under the
licence rules with attribution to every ancestor, lineage, search, "made here", zip and Atom feed.

Files go to the FileStore under generated names; a design row is written only after every file was
stored, sniffed and measured, and any failure deletes what this call stored: nothing half-stored.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO
from typing import IO, Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..domain.filetypes import FileContentError, FileKind, MetadataError, kind_for_name, safe_display_name, sniff
from ..domain.gcode_meta import gcode_meta
from ..domain.licences import LICENCES, LicenceError, check_fork_licence, check_licence
from ..domain.mesh_meta import mesh_meta
from ..domain.svg_safe import sanitize_svg
from ..domain.vector_meta import vector_meta
from ..extensions import db
from ..models import Booking, BookingStatus, Machine, MachineType, Member, Role
from ..models.designs import Design, DesignFile, DesignMade, DesignTag, DesignVersion, design_machine_types
from ..models.types import utcnow
from .file_store import FileStore, Readable, StoredFile, UploadTooLarge
from .thumbnails import make_thumbnail

MAX_TAGS = 12
MAX_FILES = 50
SVG_INLINE_MAX = 2 * 1024 * 1024  # larger drawings are offered for download only
SEARCH_DESCRIPTION_CHARS = 2000
MADE_BOOKING_DAYS = 120  # how far back "I made this" offers my bookings


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


# --- the file store ---------------------------------------------------------------------------------------


def file_store() -> FileStore:
    return FileStore(current_app.config["FABLAB_UPLOAD_DIR"], max_bytes=max_upload_bytes())


def max_upload_bytes() -> int:
    return int(current_app.config["FABLAB_MAX_UPLOAD_MB"]) * 1024 * 1024


def too_large_message() -> str:
    return (f"The upload is larger than this lab's limit of {current_app.config['FABLAB_MAX_UPLOAD_MB']} MB "
            "per file. Make the file smaller (e.g. fewer triangles or a zip of the sources) and try again.")


def _plain(value: Any) -> Any:
    """A metadata dataclass as JSON-able data (tuples to lists, floats rounded a little)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
        if hasattr(value, "size_mm"):
            out["size_mm"] = _plain(value.size_mm)
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return round(value, 4)
    return value


def _metadata(kind: FileKind, ext: str, path: Any) -> dict[str, Any]:
    if kind.kind == "mesh":
        return _plain(mesh_meta(path, ext))
    if kind.kind == "gcode":
        return _plain(gcode_meta(path))
    if ext in (".svg", ".dxf"):
        return _plain(vector_meta(path, ext))
    return {}


def _ingest(store: FileStore, upload: Upload) -> _Ingested:
    """Store one file, check its content against its name, measure it, thumbnail it; refuse with the name."""
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
        kind = sniff(name, stored.head, open_zip=lambda: zipfile.ZipFile(stored.path))
        meta = _metadata(kind, ext, stored.path)
        svg = None
        if ext == ".svg" and stored.size <= SVG_INLINE_MAX:
            cleaned = sanitize_svg(stored.path.read_bytes())
            svg = cleaned.svg
            if cleaned.removed:
                meta["svg_removed"] = sorted(set(cleaned.removed))
        if kind.kind in ("mesh", "image") or ext in (".gcode", ".gco", ".g", ".nc", ".dxf", ".step", ".stp",
                                                     ".svg", ".pdf", ".md", ".txt"):
            thumb_key = store.save(BytesIO(make_thumbnail(stored.path, ext)), max_bytes=16 << 20).key
        return _Ingested(name, ext, kind, stored, meta, thumb_key, svg)
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
                      svg_safe=f.svg_safe, created_at=now)


def _copy_row(f: DesignFile, now: datetime) -> DesignFile:
    return DesignFile(name=f.name, storage_key=f.storage_key, ext=f.ext, kind=f.kind, mime=f.mime, size=f.size,
                      sha256=f.sha256, meta=f.meta, thumb_key=f.thumb_key, svg_safe=f.svg_safe, created_at=now)


def _cover(files: Sequence[DesignFile]) -> str | None:
    """The list picture: a mesh render first, then a photo, then any file's card."""
    for kinds in (("mesh",), ("image",), ("vector",)):
        for f in files:
            if f.kind in kinds and f.thumb_key:
                return f.thumb_key
    return next((f.thumb_key for f in files if f.thumb_key), None)


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
    _commit_or_discard(store, ingested)
    return design


# --- lineage and attribution ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Credit:
    """An ancestor to credit: the design a fork (or a fork of a fork...) came from."""

    design_id: int
    title: str
    author_name: str
    licence: str
    version: int | None  # the version that was forked, if known

    @property
    def licence_name(self) -> str:
        lic = LICENCES.get(self.licence)
        return lic.name if lic else self.licence

    @property
    def licence_url(self) -> str:
        lic = LICENCES.get(self.licence)
        return lic.url if lic else ""


def ancestors(design: Design, limit: int = 200) -> list[Design]:
    """Parent, grandparent, ... up to the original (nearest first)."""
    out: list[Design] = []
    seen = {design.id}
    current = design
    while current.parent_id is not None and len(out) < limit and current.parent_id not in seen:
        parent = db.session.get(Design, current.parent_id)
        if parent is None:
            break
        out.append(parent)
        seen.add(parent.id)
        current = parent
    return out


def _forked_version(design: Design) -> int | None:
    first = design.version(1)
    if first is None or first.parent_version_id is None:
        return None
    parent_version = db.session.get(DesignVersion, first.parent_version_id)
    return parent_version.number if parent_version else None


def attribution(design: Design) -> list[Credit]:
    """Every ancestor's authors and licence, nearest first (what a fork must keep crediting)."""
    credits = []
    child = design
    for anc in ancestors(design):
        credits.append(Credit(anc.id, anc.title, anc.author_name, anc.licence, _forked_version(child)))
        child = anc
    return credits


@dataclass
class LineageNode:
    design_id: int
    title: str
    author_name: str
    licence: str
    created_at: datetime
    current: bool = False
    children: list[LineageNode] = field(default_factory=list)

    def size(self) -> int:
        return 1 + sum(c.size() for c in self.children)


def _node(d: Design | Any, current: bool = False) -> LineageNode:
    return LineageNode(d.id, d.title, d.author_name, d.licence, d.created_at, current)


def lineage(design: Design, max_descendants: int = 500) -> LineageNode:
    """The tree from the original design down through this design's ancestors to it and all its forks
    (forks of forks too, breadth first, at most `max_descendants`)."""
    me = _node(design, current=True)
    frontier = {design.id: me}
    count = 0
    while frontier and count < max_descendants:
        rows = db.session.execute(
            select(Design.id, Design.title, Design.author_name, Design.licence, Design.created_at, Design.parent_id)
            .where(Design.parent_id.in_(list(frontier)))
            .order_by(Design.created_at, Design.id).limit(max_descendants - count)
        ).all()
        nxt: dict[int, LineageNode] = {}
        for row in rows:
            node = _node(row)
            frontier[row.parent_id].children.append(node)
            nxt[row.id] = node
        count += len(rows)
        frontier = nxt
    root = me
    for anc in ancestors(design):
        node = _node(anc)
        node.children.append(root)
        root = node
    return root


def forks_of(design: Design) -> list[Design]:
    return list(db.session.scalars(select(Design).where(Design.parent_id == design.id)
                                   .order_by(Design.created_at, Design.id)))


# --- search ---------------------------------------------------------------------------------------------

SORTS = {
    "newest": (Design.created_at.desc(), Design.id.desc()),
    "forks": (Design.forks_count.desc(), Design.id.desc()),
    "made": (Design.made_count.desc(), Design.id.desc()),
}
SORT_LABELS = {"newest": "Newest", "forks": "Most forked", "made": "Most made"}


@dataclass(frozen=True)
class SearchResult:
    designs: list[Design]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_designs(text: str = "", *, tag: str = "", licence: str = "", machine_type: str = "",
                   sort: str = "newest", page: int = 1, per_page: int = 24) -> SearchResult:
    """Designs matching every word of `text` (title, tags, author, licence, description start), a tag, a
    licence and a machine type slug, sorted newest / most forked / most made."""
    conds = []
    for word in text.lower().split()[:8]:
        conds.append(Design.search_text.like(_like(word), escape="\\"))
    if tag.strip():
        tag_norm = normalise_tags([tag])
        conds.append(Design.id.in_(select(DesignTag.design_id).where(DesignTag.tag.in_(tag_norm or [""]))))
    if licence.strip():
        conds.append(Design.licence == licence.strip())
    if machine_type.strip():
        conds.append(Design.id.in_(
            select(design_machine_types.c.design_id)
            .join(MachineType, MachineType.id == design_machine_types.c.machine_type_id)
            .where(MachineType.slug == machine_type.strip())))
    per_page = max(1, min(per_page, 100))
    page = max(1, page)
    total = db.session.scalar(select(func.count(Design.id)).where(*conds)) or 0
    rows = db.session.scalars(select(Design).where(*conds).order_by(*SORTS.get(sort, SORTS["newest"]))
                              .limit(per_page).offset((page - 1) * per_page))
    return SearchResult(list(rows), total, page, per_page)


def popular_tags(limit: int = 20) -> list[tuple[str, int]]:
    rows = db.session.execute(select(DesignTag.tag, func.count().label("n")).group_by(DesignTag.tag)
                              .order_by(func.count().desc(), DesignTag.tag).limit(limit))
    return [(r.tag, r.n) for r in rows]


def licences_in_use() -> list[str]:
    return list(db.session.scalars(select(Design.licence).distinct().order_by(Design.licence)))


# --- made here ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MadeCount:
    machine_id: int | None
    machine_name: str
    count: int


def eligible_bookings(member: Member, now: datetime | None = None) -> list[Booking]:
    """My recent bookings that have started and were not cancelled: what "I made this" can point to."""
    now = now or utcnow()
    ok = [BookingStatus.CONFIRMED.value, BookingStatus.CHECKED_IN.value, BookingStatus.COMPLETED.value]
    return list(db.session.scalars(
        select(Booking).where(Booking.member_id == member.id, Booking.status.in_(ok), Booking.kind == "normal",
                              Booking.start_at <= now, Booking.start_at >= now - timedelta(days=MADE_BOOKING_DAYS))
        .order_by(Booking.start_at.desc()).limit(30)))


def record_made(design: Design, member: Member, *, booking: Booking | None = None,
                usage_session_id: int | None = None, machine: Machine | None = None,
                version: DesignVersion | None = None, note: str = "", now: datetime | None = None) -> DesignMade:
    """Record that `member` made `design` here, linked to their booking or a usage session (or a machine)."""
    now = now or utcnow()
    if booking is not None:
        if booking.member_id != member.id and not member.has_role(Role.STEWARD):
            raise DesignError(403, "not_your_booking", "You can only link your own bookings.")
        if booking.status in (BookingStatus.CANCELLED.value, BookingStatus.REQUESTED.value,
                              BookingStatus.RELEASED.value, BookingStatus.NO_SHOW.value):
            raise DesignError(422, "booking_not_used", "That booking was not used, so nothing was made in it.")
        if booking.start_at > now:
            raise DesignError(422, "booking_in_future", "That booking has not started yet: record it afterwards.")
        machine = booking.machine
    if booking is None and usage_session_id is None and machine is None:
        raise DesignError(422, "where_made", "Say which booking, usage session or machine it was made on.")
    if version is not None and version.design_id != design.id:
        raise DesignError(422, "wrong_version", "That version belongs to another design.")
    made = DesignMade(design_id=design.id, version_id=version.id if version else None,
                      booking_id=booking.id if booking else None, usage_session_id=usage_session_id,
                      machine_id=machine.id if machine else None, member_id=member.id, note=(note or "")[:255],
                      made_at=now)
    try:
        db.session.add(made)
        db.session.flush()  # the unique (design, booking) constraint catches a double record, even a racing one
        db.session.execute(update(Design).where(Design.id == design.id).values(made_count=Design.made_count + 1))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise DesignError(409, "already_recorded", "This design is already recorded for that booking.") from None
    return made


def made_by_machine(design: Design) -> list[MadeCount]:
    rows = db.session.execute(
        select(DesignMade.machine_id, Machine.name, func.count(DesignMade.id).label("n"))
        .outerjoin(Machine, Machine.id == DesignMade.machine_id)
        .where(DesignMade.design_id == design.id)
        .group_by(DesignMade.machine_id, Machine.name)
        .order_by(func.count(DesignMade.id).desc(), Machine.name))
    return [MadeCount(r.machine_id, r.name or "a machine no longer listed", r.n) for r in rows]


# --- zip with README ------------------------------------------------------------------------------------

_STORED_EXT = {".3mf", ".png", ".jpg", ".jpeg", ".webp", ".pdf"}  # already compressed


def readme_text(design: Design, version: DesignVersion, design_url: str, credits: Sequence[Credit]) -> str:
    lic = LICENCES.get(design.licence)
    lines = [f"# {design.title}", "", f"Version {version.number} of {design.latest_version}, "
             f"{version.created_at:%Y-%m-%d}. Source: {design_url}", "",
             "## Licence", "",
             f"{lic.name if lic else design.licence} (SPDX: {design.licence})" + (f", {lic.url}" if lic else ""),
             "", f"Author: {design.author_name or 'unknown'}", ""]
    if credits:
        lines += ["## Attribution", "", "This design is a fork. It is based on:", ""]
        for c in credits:
            ver = f" version {c.version}" if c.version else ""
            lines.append(f"- “{c.title}”{ver} by {c.author_name or 'unknown'}, licensed {c.licence}"
                         + (f" ({c.licence_url})" if c.licence_url else ""))
        lines += ["", "Keep these credits and the licence terms when you share or change it.", ""]
    if version.changelog:
        lines += ["## Changes in this version", "", version.changelog.strip(), ""]
    if design.description.strip():
        lines += ["## Description", "", design.description.strip(), ""]
    lines += ["## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {f.name} | {f.size} | {f.sha256} |" for f in version.files]
    return "\n".join(lines) + "\n"


def _unique_names(names: Sequence[str], taken: set[str]) -> list[str]:
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in taken:
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
            n += 1
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def write_zip(design: Design, version: DesignVersion, out: IO[bytes], design_url: str) -> None:
    """A zip of one version: a folder `<slug>-v<n>/` with a generated README.md (licence, attribution,
    checksums) and the files under their display names. Streams from the store, so size is no issue."""
    store = file_store()
    folder = f"{design.slug}-v{version.number}"
    names = _unique_names([f.name for f in version.files], {"readme.md"})
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(f"{folder}/README.md", readme_text(design, version, design_url, attribution(design)))
        for f, name in zip(version.files, names, strict=True):
            comp = zipfile.ZIP_STORED if f.ext in _STORED_EXT else zipfile.ZIP_DEFLATED
            zf.write(store.path(f.storage_key), f"{folder}/{name}", compress_type=comp)


# --- Atom feed ------------------------------------------------------------------------------------------

ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass(frozen=True)
class FeedEntry:
    entry_id: str
    title: str
    updated: datetime
    link: str
    author: str
    summary: str
    categories: tuple[str, ...] = ()


def recent_versions(limit: int = 50) -> list[DesignVersion]:
    """The newest versions across all designs (a version 1 is a new design)."""
    return list(db.session.scalars(select(DesignVersion).order_by(DesignVersion.created_at.desc(),
                                                                  DesignVersion.id.desc()).limit(limit)))


def entry_id(authority: str, design: Design, version_number: int) -> str:
    """RFC 4151 tag URI: stable as long as the lab's host name is (dates never change)."""
    return f"tag:{authority},{design.created_at:%Y-%m-%d}:designs/{design.id}/v{version_number}"


def _rfc3339(value: datetime) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z")


def atom_feed(*, feed_id: str, title: str, self_url: str, site_url: str, entries: Sequence[FeedEntry],
              now: datetime) -> bytes:
    """An RFC 4287 feed document (UTF-8 XML)."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", feed_id)
    sub(feed, "title", title)
    sub(feed, "updated", _rfc3339(max((e.updated for e in entries), default=now)))
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(feed, "link", rel="alternate", type="text/html", href=site_url)
    sub(feed, "generator", "fablab")
    for e in entries:
        entry = sub(feed, "entry")
        sub(entry, "id", e.entry_id)
        sub(entry, "title", e.title)
        sub(entry, "updated", _rfc3339(e.updated))
        sub(entry, "link", rel="alternate", type="text/html", href=e.link)
        author = sub(entry, "author")
        sub(author, "name", e.author or "unknown")
        for cat in e.categories:
            sub(entry, "category", term=cat)
        sub(entry, "summary", e.summary, type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def feed_entries(authority: str, link_for: Any, limit: int = 50) -> list[FeedEntry]:
    """Entries for the newest versions; `link_for(design, number)` gives each entry's page URL."""
    out = []
    for v in recent_versions(limit):
        d = v.design
        if v.number == 1:
            title = f"New design: {d.title}" if d.parent_id is None else f"New fork: {d.title}"
            summary = f"{d.description.strip()[:500]}\n\nLicence: {d.licence}".strip()
        else:
            title = f"{d.title}, version {v.number}"
            summary = f"{v.changelog.strip()[:500]}\n\nLicence: {d.licence}".strip()
        author = v.author.name if v.author else d.author_name
        out.append(FeedEntry(entry_id(authority, d, v.number), title, v.created_at, link_for(d, v.number),
                             author, summary, tuple(d.tags) + (d.licence,)))
    return out

