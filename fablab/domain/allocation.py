"""Request-window allocation: uncontested requests granted, contested time shared in draft rounds.

Rules (also shown to members, so keep them in sync with the help text):
- Requests on the same machine whose intervals overlap compete for one resource; no two granted
  requests overlap on a machine. A request is *contested* when its group of overlapping requests on
  that machine comes from more than one member.
- Rounds r = 1, 2, ...: each member still holding requests gets a turn. Turn order: priority band
  (floor(F / band_width), higher first), then the lottery ticket of `lottery.ticket(seed, r, member)`.
  On their turn a member walks their requests in their own preference order (rank, then start):
  requests over quota are rejected, requests already taken by others are lost (waitlisted),
  uncontested ones are granted and the walk goes on, the first available contested one is granted
  and ends the turn.
- After each round, hours granted in it count as usage now and every F is recomputed.
- The result is a pure function of (requests, fair-share state, quotas, band width, seed).
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from fablab.domain.fairshare import FairShareState, MemberId
from fablab.domain.lottery import commitment, ticket

DEFAULT_BAND_WIDTH = 0.1
_EPS = 1e-9


@dataclass(frozen=True)
class SlotRequest:
    id: Hashable
    member_id: MemberId
    machine_id: Hashable
    start: datetime
    end: datetime
    rank: int = 1  # the member's preference: 1 = most wanted

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600


@dataclass(frozen=True)
class Quota:
    """Per member per window; None = no limit."""

    max_hours: float | None = None
    max_slots: int | None = None

    def allows(self, hours_so_far: float, slots_so_far: int, hours: float) -> bool:
        if self.max_slots is not None and slots_so_far + 1 > self.max_slots:
            return False
        return self.max_hours is None or hours_so_far + hours <= self.max_hours + _EPS

    def describe(self) -> str:
        parts = []
        if self.max_hours is not None:
            parts.append(f"{self.max_hours:g} h")
        if self.max_slots is not None:
            parts.append(f"{self.max_slots} slot{'s' if self.max_slots != 1 else ''}")
        return " / ".join(parts) or "none"


class Status(StrEnum):
    GRANTED = "granted"
    WAITLISTED = "waitlisted"
    REJECTED = "rejected"


class Reason(StrEnum):
    UNCONTESTED = "uncontested"
    DRAFT = "draft"
    LOST_PRIORITY = "lost_priority"  # taken in the same round by a member in a higher band
    LOST_LOTTERY = "lost_lottery"  # taken in the same round by a member of the same band drawn earlier
    TAKEN_EARLIER = "taken_earlier"  # taken in an earlier round while you got a higher-ranked choice
    QUOTA = "quota"
    OWN_OVERLAP = "own_overlap"  # you were granted an overlapping request on this machine
    INVALID = "invalid"


@dataclass(frozen=True)
class RequestOutcome:
    request: SlotRequest
    status: Status
    reason: Reason
    message: str  # shown to the member; never names other members
    round_no: int | None = None
    factor: float | None = None  # the member's F in that round
    rival_factor: float | None = None  # F of whoever took the slot
    taken_by: Hashable | None = None  # request id that took the slot (admin/debug only)
    waitlist_position: int | None = None  # 1-based draft order among all waitlisted outcomes


@dataclass(frozen=True)
class TurnEntry:
    member_id: MemberId
    factor: float
    band: int
    ticket_hex: str


@dataclass(frozen=True)
class DraftRound:
    number: int
    order: tuple[TurnEntry, ...]  # turn order of the round
    granted: tuple[Hashable, ...]  # request ids granted in the round


@dataclass(frozen=True)
class LotteryEvent:
    """A contested request won by lottery against members of the same band in the same round."""

    round_no: int
    band: int
    request_id: Hashable
    winner: MemberId
    contenders: tuple[MemberId, ...]  # winner first, then the losers in turn order


@dataclass(frozen=True)
class Allocation:
    outcomes: tuple[RequestOutcome, ...]  # same order as the input requests
    rounds: tuple[DraftRound, ...]
    lottery_events: tuple[LotteryEvent, ...]
    seed_hex: str
    commitment_hex: str
    band_width: float

    def granted(self) -> list[SlotRequest]:
        return [o.request for o in self.outcomes if o.status is Status.GRANTED]

    def waitlisted(self) -> list[RequestOutcome]:
        """Losers in draft order, which is the order they join the waitlist."""
        wl = [o for o in self.outcomes if o.status is Status.WAITLISTED]
        return sorted(wl, key=lambda o: o.waitlist_position or 0)

    def by_request(self) -> dict[Hashable, RequestOutcome]:
        return {o.request.id: o for o in self.outcomes}

    def for_member(self, member_id: MemberId) -> list[RequestOutcome]:
        return [o for o in self.outcomes if o.request.member_id == member_id]


def band_of(f: float, band_width: float = DEFAULT_BAND_WIDTH) -> int:
    return int(f / band_width + _EPS)


def contested_ids(requests: Iterable[SlotRequest]) -> set[Hashable]:
    """Ids of requests in an overlap group (same machine) with more than one member (for hybrid mode)."""
    by_machine: dict[Hashable, list[SlotRequest]] = {}
    for r in requests:
        if r.end > r.start:
            by_machine.setdefault(r.machine_id, []).append(r)
    out: set[Hashable] = set()
    for reqs in by_machine.values():
        reqs.sort(key=lambda r: (r.start, r.end))
        group: list[SlotRequest] = []
        group_end: datetime | None = None
        for r in reqs:
            if group_end is not None and r.start >= group_end:
                _close_group(group, out)
                group, group_end = [], None
            group.append(r)
            group_end = r.end if group_end is None else max(group_end, r.end)
        _close_group(group, out)
    return out


def _close_group(group: list[SlotRequest], out: set[Hashable]) -> None:
    if len({r.member_id for r in group}) > 1:
        out.update(r.id for r in group)


@dataclass
class _Grant:
    request: SlotRequest
    round_no: int
    factor: float
    band: int
    turn: int


@dataclass
class _MachineGrants:
    starts: list[datetime] = field(default_factory=list)
    grants: list[_Grant] = field(default_factory=list)

    def overlapping(self, start: datetime, end: datetime) -> list[_Grant]:
        """Grants overlapping [start, end); grants are disjoint, so ends ascend with starts."""
        i = bisect.bisect_left(self.starts, end) - 1
        found = []
        while i >= 0 and self.grants[i].request.end > start:
            found.append(self.grants[i])
            i -= 1
        return found

    def add(self, grant: _Grant) -> None:
        i = bisect.bisect_left(self.starts, grant.request.start)
        self.starts.insert(i, grant.request.start)
        self.grants.insert(i, grant)


def allocate_window(
    requests: Sequence[SlotRequest],
    fair_share: FairShareState,
    seed: bytes,
    quota: Quota = Quota(),
    member_quotas: Mapping[MemberId, Quota] | None = None,
    band_width: float = DEFAULT_BAND_WIDTH,
) -> Allocation:
    """Allocate one window. `fair_share` is not modified. `member_quotas` overrides `quota` per member
    (e.g. reduced by bookings a member already holds in the window)."""
    if band_width <= 0:
        raise ValueError("band_width must be positive")
    member_quotas = member_quotas or {}
    state = fair_share.with_members({r.member_id for r in requests})
    contested = contested_ids(requests)

    outcomes: dict[int, RequestOutcome] = {}
    pending: dict[MemberId, list[int]] = {}
    for i, r in enumerate(requests):
        if r.end <= r.start:
            outcomes[i] = RequestOutcome(
                r, Status.REJECTED, Reason.INVALID, "the request ends before it starts")
        else:
            pending.setdefault(r.member_id, []).append(i)
    for idxs in pending.values():
        idxs.sort(key=lambda i: (requests[i].rank, requests[i].start, str(requests[i].machine_id), i))

    pointer = dict.fromkeys(pending, 0)
    hours_used = dict.fromkeys(pending, 0.0)
    slots_used = dict.fromkeys(pending, 0)
    machines: dict[Hashable, _MachineGrants] = {}
    rounds: list[DraftRound] = []
    events: dict[Hashable, LotteryEvent] = {}
    waitlist_seq = 0
    active = sorted(pending, key=str)
    round_no = 0

    while active:
        round_no += 1
        turns = []
        for m in active:
            f = state.factor(m)
            turns.append(TurnEntry(m, f, band_of(f, band_width), ticket(seed, round_no, m).hex()))
        turns.sort(key=lambda t: (-t.band, t.ticket_hex))
        granted_now: list[Hashable] = []
        round_hours: dict[MemberId, float] = {}

        for turn_no, t in enumerate(turns):
            m = t.member_id
            idxs = pending[m]
            q = member_quotas.get(m, quota)
            while pointer[m] < len(idxs):
                i = idxs[pointer[m]]
                pointer[m] += 1
                r = requests[i]
                book = machines.setdefault(r.machine_id, _MachineGrants())
                blockers = book.overlapping(r.start, r.end)
                if blockers:
                    own = [b for b in blockers if b.request.member_id == m]
                    if own:
                        outcomes[i] = RequestOutcome(
                            r, Status.REJECTED, Reason.OWN_OVERLAP,
                            "you were granted an overlapping request on this machine",
                            round_no, t.factor, taken_by=own[0].request.id)
                        continue
                if not q.allows(hours_used[m], slots_used[m], r.hours):
                    # checked before "taken": a waitlist place beyond the quota is of no use
                    outcomes[i] = RequestOutcome(
                        r, Status.REJECTED, Reason.QUOTA,
                        f"quota reached (at most {q.describe()} per member in this window)",
                        round_no, t.factor)
                    continue
                if blockers:
                    waitlist_seq += 1
                    outcomes[i] = _lost(r, t, round_no, blockers, waitlist_seq, events)
                    continue
                hours_used[m] += r.hours
                slots_used[m] += 1
                round_hours[m] = round_hours.get(m, 0.0) + r.hours
                book.add(_Grant(r, round_no, t.factor, t.band, turn_no))
                granted_now.append(r.id)
                if r.id in contested:
                    outcomes[i] = RequestOutcome(
                        r, Status.GRANTED, Reason.DRAFT,
                        f"granted in round {round_no} (your priority was {t.factor:.2f})", round_no, t.factor)
                    break
                outcomes[i] = RequestOutcome(
                    r, Status.GRANTED, Reason.UNCONTESTED, "granted: no other member asked for this time",
                    round_no, t.factor)

        rounds.append(DraftRound(round_no, tuple(turns), tuple(granted_now)))
        for m, h in round_hours.items():
            state.add_usage(m, h)
        active = [m for m in active if pointer[m] < len(pending[m])]

    return Allocation(
        outcomes=tuple(outcomes[i] for i in range(len(requests))),
        rounds=tuple(rounds),
        lottery_events=tuple(events.values()),
        seed_hex=seed.hex(),
        commitment_hex=commitment(seed),
        band_width=band_width,
    )


def _lost(r: SlotRequest, t: TurnEntry, round_no: int, blockers: list[_Grant], seq: int,
          events: dict[Hashable, LotteryEvent]) -> RequestOutcome:
    first = blockers[0]
    same_round = [b for b in blockers if b.round_no == round_no]
    if not same_round:
        return RequestOutcome(
            r, Status.WAITLISTED, Reason.TAKEN_EARLIER,
            f"slot taken in round {first.round_no} by a member with priority {first.factor:.2f}, while you "
            f"were granted a request you ranked higher; you are on the waitlist",
            round_no, t.factor, first.factor, first.request.id, seq)
    higher = [b for b in same_round if b.band > t.band]
    if higher:
        b = higher[0]
        return RequestOutcome(
            r, Status.WAITLISTED, Reason.LOST_PRIORITY,
            f"slot taken by a member with higher priority ({b.factor:.2f} vs {t.factor:.2f}); "
            f"you are on the waitlist",
            round_no, t.factor, b.factor, b.request.id, seq)
    winners = {b.request.member_id for b in same_round}
    b = same_round[0]
    ev = events.get(b.request.id)
    if ev is None:
        ev = LotteryEvent(round_no, b.band, b.request.id, b.request.member_id, (b.request.member_id,))
    if t.member_id not in ev.contenders:
        events[b.request.id] = LotteryEvent(ev.round_no, ev.band, ev.request_id, ev.winner,
                                            (*ev.contenders, t.member_id))
    n = len(winners)
    return RequestOutcome(
        r, Status.WAITLISTED, Reason.LOST_LOTTERY,
        f"lost the lottery in your priority band ({t.factor:.2f}) to {n} member{'s' if n != 1 else ''}; "
        f"you are on the waitlist",
        round_no, t.factor, b.factor, b.request.id, seq)
