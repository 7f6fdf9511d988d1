"""The case for more capacity: per machine type with unmet demand, what one more machine, and opening 2 h
longer on weekdays, would have met of it (the capacity model's replay, `fablab.domain.capacity`), and the
sentence that says so ("a second laser cutter would have met 82 % of last month's unmet evening demand").

The unmet wishes are replayed on the lab's wall clock against the machines' booked time (held bookings and
maintenance blocks) on the days of the wishes; the longer-hours scenario is left out for machines already
open all day. The sentence names the evening share when there was unmet evening demand, else the overall.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .. import capacity as cap
from .opening import merged, opening_of, union_opening
from .period import MachineFacts, Period, Wish
from .tally import Tally

LONGER_HOURS = 2.0
WEEKDAYS = frozenset(range(5))
ORDINALS = {1: "second", 2: "third", 3: "fourth", 4: "fifth"}


@dataclass(frozen=True)
class ReplayRow:
    machine_type: str
    machines: int
    scenario: str  # "one more machine" | "2 h longer on weekdays"
    unmet_hours: float
    met_hours: float  # of the unmet hours, what the scenario would have met beyond what freed time met
    share: float | None
    evening_unmet_hours: float
    evening_share: float | None
    statement: str


def statement(what: str, label: str, est: cap.ReplayEstimate, period: str) -> str:
    """E.g. "a second laser cutter would have met 82 % of last month's unmet evening demand"."""
    evening = est.bucket("evening")
    share: float | None
    if evening is not None and evening.unmet_hours > 0 and evening.share is not None:
        share, demand = evening.share, "unmet evening demand"
    else:
        share, demand = est.share, "unmet demand"
    if share is None:
        return f"there was no unmet demand for the {label} in {period} requests"
    return f"{what} would have met {round(share * 100)} % of {period} {demand}"


def period_label(start: float, end: float, now: float) -> str:
    """"last month's" / "last week's" for a period of about that length ending now, else "the period's"."""
    days = (end - start) / 86400
    if abs(now - end) < 3600 and 27 <= days <= 31.5:
        return "last month's"
    if abs(now - end) < 3600 and 6 <= days <= 7.5:
        return "last week's"
    return "the period's"


def _held_on_days(period: Period, tally: Tally, machine_id: int, days: np.ndarray) -> list[cap.BookedInterval]:
    """The machine's booked time touching one of `days` (local day numbers, sorted), on the wall clock."""
    clock = period.clock
    mine = tally.held.machine == machine_id
    s0, e0 = tally.held.start[mine], tally.held.end[mine]
    first = np.floor_divide(clock.local_array(s0), 86400)
    last = np.floor_divide(clock.local_array(e0), 86400)
    # Some day of the span's (first..last) is a day of a wish.
    touches = np.searchsorted(days, last, side="right") > np.searchsorted(days, first, side="left")
    return [cap.BookedInterval(machine_id, s, e) for s, e in zip(clock.naive_array(s0[touches]),
                                                                 clock.naive_array(e0[touches]), strict=True)]


def _replay_type(period: Period, tally: Tally, machines: list[MachineFacts], unmet: dict[int, list[Wish]],
                 when: str) -> list[ReplayRow]:
    ids = [m.id for m in machines]
    naive, local = period.clock.naive, period.clock.local
    label = machines[0].type_name.lower()
    opening = union_opening([opening_of(m.policy) for m in machines])
    # The capacity model runs on the local wall clock: convert only this type's time.
    # Only booked time on the days of unmet wishes can decide them (a wish is placed within its day).
    days = np.array(sorted({int(local(t) // 86400) for mid in ids for r in unmet.get(mid, ())
                            for t in (r.start, r.end)}))
    held = []
    for mid in ids:
        held += _held_on_days(period, tally, mid, days)
    demand = [cap.DemandRecord(f"r{r.id}", r.member_id, r.machine_id, naive(r.start), naive(r.end), False)
              for mid in ids for r in unmet.get(mid, ())]
    n = len(machines)
    extra = cap.Scenario(extra_machines=1)
    longer = cap.Scenario(longer_hours=LONGER_HOURS, weekdays=WEEKDAYS)
    scenarios = [(extra, f"a {ORDINALS.get(n, 'further')} {label}", "one more machine")]
    if merged(opening.extended(longer.weekdays, longer.longer_hours)) != merged(opening):
        scenarios.append((longer, f"opening the {label} {LONGER_HOURS:g} h longer on weekdays",
                          f"{LONGER_HOURS:g} h longer on weekdays"))  # not for machines open all day
    rows = []
    for scenario, what, name in scenarios:
        est = cap.replay_estimate(demand, held, ids, opening, scenario)
        ev = est.bucket("evening")
        rows.append(ReplayRow(machines[0].type_name, n, name, est.unmet_hours, est.extra_met_hours,
                              est.share, ev.unmet_hours if ev else 0.0, ev.share if ev else None,
                              statement(what, label, est, when)))
    return rows


def replay_rows(period: Period, tally: Tally) -> tuple[ReplayRow, ...]:
    """Per machine type with unmet demand: what one more machine, and 2 h longer weekday hours, would meet;
    the types with most unmet hours first."""
    by_type: dict[int, list[MachineFacts]] = defaultdict(list)
    for m in period.machines:
        by_type[m.type_id].append(m)
    unmet: dict[int, list[Wish]] = defaultdict(list)
    for r in tally.unmet:
        unmet[r.machine_id].append(r)
    when = period_label(period.start, period.end, period.now)
    rows = []
    for machines in by_type.values():
        if any(unmet.get(m.id) for m in machines):
            rows += _replay_type(period, tally, machines, unmet, when)
    rows.sort(key=lambda r: -r.unmet_hours)  # stable: per type, one more machine first
    return tuple(rows)
