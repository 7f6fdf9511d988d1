"""Find a time: the earliest slots of a length on a machine, or on any machine of a type, that the member
may book (qualification, quotas, length limits, horizon, opening hours, request windows)."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..domain import free_slots
from ..domain import policy as pol
from ..models import Machine, Member
from . import bookings as svc
from . import machines as machine_service

MAX_MINUTES = 7 * 24 * 60  # no policy allows more (domain/policy.py)


class FindError(ValueError):
    """The question cannot be asked as given (unknown machine, length out of range); `message` says why."""


@dataclass(frozen=True)
class FoundSlot:
    machine: Machine
    start: datetime
    end: datetime


@dataclass
class FindResult:
    machines: list[Machine]
    length: timedelta
    after: datetime
    slots: list[FoundSlot] = field(default_factory=list)
    excluded: list[tuple[Machine, str]] = field(default_factory=list)  # (machine, why it offers nothing)


def machines_for(target: str) -> list[Machine]:
    """`machine:<slug>` or `type:<slug>` (any machine of that type), as the form's select sends them."""
    kind, _, slug = target.partition(":")
    machines = machine_service.list_machines()
    if kind == "machine":
        chosen = [m for m in machines if m.slug == slug]
    elif kind == "type":
        chosen = [m for m in machines if m.machine_type.slug == slug]
    else:
        raise FindError("Choose a machine or a type of machine.")
    if not chosen:
        raise FindError(f"There is no machine or machine type called “{slug}”.")
    return chosen


def _refuse(machine: Machine, now: datetime) -> Callable[[datetime, datetime], str | None]:
    return lambda start, end: svc.guard_reason(machine, start, end, now)


def _candidate(machine: Machine, member: Member, now: datetime) -> free_slots.Candidate:
    policy = svc.policy_for(machine)
    tz = svc.lab_tz()
    lo = min(pol.local_week_bounds(now, tz)[0], now - policy.buffer)  # quotas look at the whole week
    hi = pol.horizon_end(policy, now, tz) + policy.buffer
    mb = svc.load_machine_bookings(machine, lo, hi, now, member_id=member.id, near=(now - policy.buffer, hi))
    return free_slots.Candidate(machine.id, policy, mb.existing, mb.blocks, svc.member_context(member, machine, now),
                                out_of_order=machine.status != "available", refuse=_refuse(machine, now))


def find(member: Member, target: str, minutes: int, after: datetime | None, now: datetime,
         limit: int = 8) -> FindResult:
    if not 1 <= minutes <= MAX_MINUTES:
        raise FindError(f"Give a length between 1 minute and {MAX_MINUTES // 60} hours.")
    machines = machines_for(target)
    length = timedelta(minutes=minutes)
    start = max(after or now, now)
    found = free_slots.earliest_slots([_candidate(m, member, now) for m in machines], length, start, now,
                                      svc.lab_tz(), limit=limit)
    by_id: dict[Hashable, Machine] = {m.id: m for m in machines}
    result = FindResult(machines, length, start)
    result.slots = [FoundSlot(by_id[s.machine_id], s.start, s.end) for s in found.slots]
    result.excluded = [(by_id[e.machine_id], e.message) for e in found.excluded]
    return result
