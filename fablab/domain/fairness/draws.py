"""The request windows' draws, checked: each closed window's draw is re-run from its published trace and
revealed seed and compared with the published outcome, and the lotteries inside the draws are tallied per
member against expectation (`fablab.domain.metrics.lottery_vs_expectation`: each of k contenders had a 1/k
chance).

The re-run itself is passed in (`rerun(trace, seed_hex) -> Allocation`), so this module decides only what
is compared and counted. A window without trace or seed is not checked; a trace of another version (a key
missing, a value of the wrong type) is skipped, not an error. The traces name participants by label; they
are mapped back to member ids by the window's requests (`members`: request id -> member id), and a
participant that cannot be mapped is kept as "?<label>".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from .. import allocation as alloc
from .. import metrics

Rerun = Callable[[dict[str, Any], str], alloc.Allocation]
WindowTrace = tuple[int, dict[str, Any] | None, str | None]  # (window id, published trace, revealed seed)
# The caller's request ids (a TypeVar: Mapping is invariant in its key, Hashable would reject dict[int, int]).
RequestId = TypeVar("RequestId", bound=Hashable)


@dataclass(frozen=True)
class DrawCheck:
    windows: int  # closed request windows in the period
    verified: int  # windows whose draw, re-run from the published trace, gave the published outcome
    contested_requests: int  # requests that overlapped another member's request
    events: tuple[alloc.LotteryEvent, ...]  # the draws' lotteries, contenders and winner as member ids
    tallies: tuple[metrics.LotteryTally, ...]  # per member: draws, expected and actual wins
    deviation: float  # Σ (actual - expected)² / expected


def check_draws(windows: Sequence[WindowTrace], members: Mapping[RequestId, int], rerun: Rerun) -> DrawCheck:
    events: list[alloc.LotteryEvent] = []
    verified = contested = 0
    for _wid, trace, seed in windows:
        if not trace or not seed:
            continue
        try:
            labels = {r["participant"]: members.get(r["id"]) for r in trace["requests"]}
            again = rerun(trace, seed)
            published = {o["id"]: o["status"] for o in trace["outcomes"]}
        except (KeyError, TypeError, ValueError):
            continue  # a trace of another version: nothing to compare
        if all(published.get(o.request.id) == o.status.value for o in again.outcomes):
            verified += 1
        contested += len(alloc.contested_ids([o.request for o in again.outcomes]))
        for ev in again.lottery_events:
            ids = tuple(labels.get(c) or f"?{c}" for c in ev.contenders)
            events.append(replace(ev, winner=labels.get(ev.winner) or f"?{ev.winner}", contenders=ids))
    tallies = metrics.lottery_vs_expectation(events)
    return DrawCheck(len(windows), verified, contested, tuple(events), tuple(tallies),
                     metrics.lottery_deviation(tallies))
