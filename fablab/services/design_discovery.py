"""Finding and following designs: search (words, tag, licence, machine type; sorted newest, most forked
or most made), popular tags and licences in use, the "made here" records that link a design to the
booking, usage session or machine it was made on, and the Atom feed of new designs and versions.
Creating, versioning and forking designs is fablab.services.designs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Booking, BookingStatus, Machine, MachineType, Member, Role
from ..models.designs import Design, DesignMade, DesignTag, DesignVersion, design_machine_types
from ..models.types import utcnow
from .designs import DesignError, normalise_tags

MADE_BOOKING_DAYS = 120  # how far back "I made this" offers my bookings


# --- search ---------------------------------------------------------------------------------------------

SORTS: dict[str, tuple[ColumnElement[Any], ...]] = {
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
    conds: list[ColumnElement[bool]] = []
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
