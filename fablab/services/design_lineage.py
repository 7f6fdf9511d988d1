"""Where a design came from and what travels with it: its ancestors and the credits a fork must keep
(`attribution`), the lineage tree and the direct forks, and the download of one version as a zip whose
generated README carries the licence, the attribution and checksums. Creating, versioning and forking
designs is fablab.services.designs; this module only reads them.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select

from ..domain.licences import LICENCES
from ..extensions import db
from ..models.designs import Design, DesignVersion
from .designs import file_store

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
