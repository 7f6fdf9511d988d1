"""The lab's figures from the tally: who counts, how unequal the use was, how satisfied the requests were,
how busy the machines were, the totals and rates, and the weekly trend.

- Population (Gini, Lorenz): the members who could have used a machine in scope (active, qualified during
  the period), plus anyone who used or requested; a member who could have but did not use counts as zero.
- Satisfaction s = min(1, used / requested); members who requested nothing have none. Gini, Lorenz, Jain and
  the worst-off list are `fablab.domain.metrics`'.
- Rank: by hours used (then hours requested), 1 = most.
- Utilisation = used hours / open hours of the machine in the period (its policy's opening hours).
- No-show and late-cancellation rates are per normal booking.
- Weeks: lab weeks (local Monday to Monday) touching the period, with how much of each lies in it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date

from .. import metrics
from .. import policy as pol
from .clock import week_start
from .period import REJECTED, Period
from .tally import MemberTally, Tally

WORST_K = 5


@dataclass(frozen=True)
class MemberFigures:
    member_id: int
    rank: int  # by hours used, 1 = most
    used_hours: float
    requested_hours: float
    satisfaction: float | None
    tally: MemberTally  # bookings, no-shows, late cancellations, overruns, unbooked use


@dataclass(frozen=True)
class MachineRow:
    slug: str
    name: str
    type_name: str
    metered: bool  # has usage sessions (else bookings stand in for use)
    open_hours: float
    used_hours: float
    booked_hours: float
    maintenance_hours: float
    utilisation: float | None
    unmet_hours: float
    rejected_requests: int
    waitlisted_requests: int
    waitlist_now: int


@dataclass(frozen=True)
class WeekRow:
    week_start: date  # the local Monday
    days: float  # how much of the week lies in the period (7 = all of it)
    used_hours: float
    requested_hours: float
    unmet_hours: float
    bookings: int
    no_shows: int
    gini: float


@dataclass(frozen=True)
class Totals:
    members: int  # the population
    users: int  # members with some use
    used_hours: float
    unattributed_hours: float  # machine use no member could be tied to
    requested_hours: float
    unmet_hours: float
    bookings: int
    no_shows: int
    late_cancels: int
    no_show_rate: float | None
    late_cancel_rate: float | None
    overrun_hours: float
    unbooked_hours: float
    rejected_requests: int
    waitlisted_requests: int
    waitlist_now: int  # active waitlist entries for future time
    waitlist_joined: int  # entries joined during the period


@dataclass(frozen=True)
class LabFigures:
    members: tuple[MemberFigures, ...]  # the population, most used first
    worst_off: tuple[int, ...]  # member ids, lowest satisfaction first
    gini: float  # of usage
    lorenz: tuple[tuple[float, float], ...]
    jain: float  # of satisfaction
    machines: tuple[MachineRow, ...]  # in the period's order
    totals: Totals
    weeks: tuple[WeekRow, ...]


def population(period: Period, tally: Tally) -> set[int]:
    return set(period.qualified) | set(tally.members)


def member_figures(tally: Tally, people: set[int], worst_k: int = WORST_K
                   ) -> tuple[tuple[MemberFigures, ...], tuple[int, ...], metrics.FairnessSummary]:
    """Each member of the population with rank and satisfaction (most used first), the worst off, and the
    lab-wide summary (Gini and Lorenz of usage, Jain of satisfaction)."""
    acc = tally.members
    used = {m: acc[m].used if m in acc else 0.0 for m in people}
    requested = {m: acc[m].requested for m in acc}
    summary = metrics.fairness_summary(used, requested, people, worst_k)
    by_usage = sorted(summary.members, key=lambda m: (-m.used_hours, -m.requested_hours, str(m.member_id)))
    zero = MemberTally()
    rows = tuple(MemberFigures(_int(mf.member_id), rank, mf.used_hours, mf.requested_hours, mf.satisfaction,
                               acc.get(_int(mf.member_id), zero)) for rank, mf in enumerate(by_usage, start=1))
    return rows, tuple(_int(m.member_id) for m in summary.worst_off), summary


def _int(member_id: Hashable) -> int:
    assert isinstance(member_id, int)
    return member_id


@dataclass(frozen=True)
class UnmetByMachine:
    hours: dict[int, float]  # per machine, machines in order of their first unmet wish
    rejected: dict[int, int]
    waitlisted: dict[int, int]


def unmet_by_machine(tally: Tally) -> UnmetByMachine:
    out = UnmetByMachine(defaultdict(float), defaultdict(int), defaultdict(int))
    for r in tally.unmet:
        out.hours[r.machine_id] += (r.end - r.start) / 3600
        if r.status == REJECTED:
            out.rejected[r.machine_id] += 1
        else:
            out.waitlisted[r.machine_id] += 1
    return out


def machine_rows(period: Period, tally: Tally, unmet: UnmetByMachine | None = None) -> tuple[MachineRow, ...]:
    unmet = unmet or unmet_by_machine(tally)
    start_at, end_at = period.start_at, period.end_at
    open_hours: dict[pol.WeekHours, float] = {}  # per distinct weekly hours (machines of a type share them)
    rows = []
    for m in period.machines:
        policy = m.policy
        if policy.opening_hours not in open_hours:
            open_hours[policy.opening_hours] = sum((b - a).total_seconds() / 3600 for a, b in
                                                   pol.opening_pairs(policy, start_at, end_at, period.tz))
        open_h = open_hours[policy.opening_hours]
        used_h = tally.machine_used.get(m.id, 0.0)
        rows.append(MachineRow(m.slug, m.name, m.type_name, m.id in period.first_session, open_h, used_h,
                               tally.machine_booked.get(m.id, 0.0), tally.machine_maintenance.get(m.id, 0.0),
                               metrics.utilisation(used_h, open_h), unmet.hours.get(m.id, 0.0),
                               unmet.rejected.get(m.id, 0), unmet.waitlisted.get(m.id, 0),
                               period.waitlist_now.get(m.id, 0)))
    return tuple(rows)


def totals(period: Period, tally: Tally, members: tuple[MemberFigures, ...],
           unmet: UnmetByMachine | None = None) -> Totals:
    unmet = unmet or unmet_by_machine(tally)
    rates = metrics.lab_behaviour(metrics.BehaviourRates(a.bookings, a.no_shows, a.late_cancels, a.overrun)
                                  for a in tally.members.values())
    return Totals(
        members=len(members), users=sum(1 for m in members if m.used_hours > 0),
        used_hours=sum(m.used_hours for m in members), unattributed_hours=tally.unattributed,
        requested_hours=sum(m.requested_hours for m in members),
        unmet_hours=sum(unmet.hours.values(), 0.0) if period.machines else 0,  # a float for any machine in scope
        bookings=rates.bookings, no_shows=rates.no_shows, late_cancels=rates.late_cancels,
        no_show_rate=rates.no_show_rate, late_cancel_rate=rates.late_cancel_rate, overrun_hours=rates.overrun_hours,
        unbooked_hours=sum(a.unbooked for a in tally.members.values()),
        rejected_requests=sum(unmet.rejected.values()), waitlisted_requests=sum(unmet.waitlisted.values()),
        waitlist_now=sum(period.waitlist_now.values()), waitlist_joined=period.waitlist_joined)


def week_rows(period: Period, tally: Tally, people: set[int]) -> tuple[WeekRow, ...]:
    if period.end <= period.start:
        return ()
    clock = period.clock
    lo, hi = clock.local(period.start) / 86400, clock.local(period.end) / 86400
    weeks = []
    for week in range(clock.week(period.start), clock.week(period.end - 1e-3) + 1, 7):
        used_w = tally.weekly_used.get(week, {})
        other = tally.weekly_other.get(week, (0.0, 0.0, 0, 0))
        days = round(min(hi, week + 7) - max(lo, week), 2)
        weeks.append(WeekRow(week_start(week), days, sum(used_w.values()), other[0], other[1], other[2], other[3],
                             metrics.gini([used_w.get(m, 0.0) for m in people])))
    return tuple(weeks)


def lab_figures(period: Period, tally: Tally, worst_k: int = WORST_K) -> LabFigures:
    people = population(period, tally)
    members, worst, summary = member_figures(tally, people, worst_k)
    unmet = unmet_by_machine(tally)
    return LabFigures(members, worst, summary.gini_usage, summary.lorenz, summary.jain_satisfaction,
                      machine_rows(period, tally, unmet), totals(period, tally, members, unmet),
                      week_rows(period, tally, people))
