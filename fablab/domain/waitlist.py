"""Waitlist: who is offered freed machine time, in which order, and for how long.

- An entry wants either one specific slot (`start`..`end`, the freed time must cover it) or "any free
  time on this machine" inside `start`..`end` (e.g. this week), at least `min_hours` long.
- Freed time (cancel, no-show release, shortened booking) is offered one member at a time in order of
  F (highest first), then join time, then the draft sequence, each offer held for `hold`.
- Once the freed time starts within `first_come_threshold`, it is offered to every matching member at
  once and the first to claim gets it (a hold would waste the slot).
The caller stores offers; `next_offers` is given the offers already made for this freed interval and
only makes new ones when none is still open.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fablab.domain.allocation import RequestOutcome, Status
from fablab.domain.fairshare import MemberId

DEFAULT_HOLD = timedelta(minutes=15)
DEFAULT_FIRST_COME = timedelta(hours=2)


class EntryKind(StrEnum):
    SLOT = "slot"
    ANY = "any"


@dataclass(frozen=True)
class WaitlistEntry:
    id: Hashable
    member_id: MemberId
    machine_id: Hashable
    start: datetime
    end: datetime
    joined_at: datetime
    kind: EntryKind = EntryKind.SLOT
    min_hours: float = 0.0  # for ANY entries: shortest useful time
    sequence: int = 0  # draft order for entries created by a window allocation


@dataclass(frozen=True)
class FreedInterval:
    machine_id: Hashable
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Offer:
    entry_id: Hashable
    member_id: MemberId
    machine_id: Hashable
    start: datetime  # the time offered (the entry's slot, or the freed part of an ANY entry's range)
    end: datetime
    offered_at: datetime
    expires_at: datetime
    first_come: bool  # True: offered to all, first claim wins
    declined: bool = False

    def is_open(self, now: datetime) -> bool:
        return not self.declined and self.offered_at <= now < self.expires_at


def entries_from_allocation(
    waitlisted: Iterable[RequestOutcome], joined_at: datetime
) -> list[WaitlistEntry]:
    """Slot entries for the losers of a window, in draft order (`Allocation.waitlisted()`)."""
    out = []
    for o in waitlisted:
        if o.status is not Status.WAITLISTED:
            continue
        r = o.request
        out.append(WaitlistEntry(r.id, r.member_id, r.machine_id, r.start, r.end, joined_at,
                                 EntryKind.SLOT, sequence=o.waitlist_position or 0))
    return out


def offered_interval(freed: FreedInterval, entry: WaitlistEntry) -> tuple[datetime, datetime] | None:
    """The part of `freed` this entry would get, or None if it does not match."""
    if entry.machine_id != freed.machine_id:
        return None
    if entry.kind is EntryKind.SLOT:
        if freed.start <= entry.start and entry.end <= freed.end:
            return entry.start, entry.end
        return None
    start, end = max(freed.start, entry.start), min(freed.end, entry.end)
    if end <= start or (end - start).total_seconds() / 3600 < entry.min_hours - 1e-9:
        return None
    return start, end


def match_entries(freed: FreedInterval, entries: Iterable[WaitlistEntry]) -> list[WaitlistEntry]:
    return [e for e in entries if offered_interval(freed, e) is not None]


def order_entries(entries: Iterable[WaitlistEntry], factors: Mapping[MemberId, float]) -> list[WaitlistEntry]:
    """F (highest first; members without a value count as 1.0, never used), then join time, sequence."""
    return sorted(entries, key=lambda e: (-factors.get(e.member_id, 1.0), e.joined_at, e.sequence, str(e.id)))


def next_offers(
    freed: FreedInterval,
    entries: Iterable[WaitlistEntry],
    factors: Mapping[MemberId, float],
    now: datetime,
    hold: timedelta = DEFAULT_HOLD,
    first_come_threshold: timedelta = DEFAULT_FIRST_COME,
    previous: Sequence[Offer] = (),
) -> list[Offer]:
    """New offers to make now for `freed` (empty: wait, or nobody left).

    `previous` are the offers already made for this freed interval (open, expired or declined).
    Sequential offers expire at now + hold, but never later than the start of the first-come period.
    First-come offers go to every matching member not yet offered in first-come mode and stay open
    until the freed time ends.
    """
    if now >= freed.end:
        return []
    first_come = freed.start - now <= first_come_threshold
    if first_come:
        already = {o.entry_id for o in previous if o.first_come}
    else:
        if any(o.is_open(now) for o in previous):
            return []
        already = {o.entry_id for o in previous}
    # sequential: a member is offered once; first-come: everyone matching, sequential history aside
    seen_members = {o.member_id for o in previous if o.first_come or not first_come}
    offers = []
    for e in order_entries(match_entries(freed, entries), factors):
        if e.id in already or e.member_id in seen_members:
            continue
        seen_members.add(e.member_id)
        interval = offered_interval(freed, e)
        assert interval is not None  # match_entries kept only the entries that have one
        start, end = interval
        if first_come:
            offers.append(Offer(e.id, e.member_id, e.machine_id, start, end, now, freed.end, True))
            continue
        expires = min(now + hold, freed.start - first_come_threshold)
        return [Offer(e.id, e.member_id, e.machine_id, start, end, now, expires, False)]
    return offers


def split_offers(offers: Iterable[Offer], now: datetime) -> tuple[list[Offer], list[Offer]]:
    """(open, closed) — closed ones are expired or declined and make room for the next member."""
    open_: list[Offer] = []
    closed: list[Offer] = []
    for o in offers:
        (open_ if o.is_open(now) else closed).append(o)
    return open_, closed


def can_claim(offer: Offer, now: datetime) -> bool:
    """Whether the member may still claim; for first-come offers the caller must also check the time is
    still free (the first claim wins)."""
    return offer.is_open(now)
