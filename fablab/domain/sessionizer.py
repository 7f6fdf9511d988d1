"""The incremental ``Sessionizer``: what the worker runs on the stream of observations, reporting each
change as a ``SessionChange``. Per machine a track holds the observations since its last quiescent
checkpoint, so a late arrival replays only those; checkpoints forget what lies more than ``retention``
behind; units of work (``begin``, ``commit``, ``rollback``) keep it in step with the worker's database
transaction. The state machine, the observation types and the batch ``sessionize`` it must agree with
are fablab.domain.sessionize.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from .sessionize import (
    EVENT_KINDS,
    Observation,
    OrderKey,
    SessionizerConfig,
    UsageSpan,
    _check,  # the same validation as the batch
    _Machine,  # the per-machine state machine the tracks run and replay
    order_key,
)

_MIN_CUT = 64  # fewest observations a checkpoint drops


@dataclass(frozen=True)
class SessionChange:
    kind: str  # "opened" | "updated" | "closed" | "removed" (key vanished after a late observation)
    span: UsageSpan


@dataclass
class _Track:
    base: _Machine  # state at the last checkpoint (quiescent), replayed from on a late arrival
    state: _Machine
    obs: list[Observation] = field(default_factory=list)  # since the checkpoint, in order
    keys: list[OrderKey] = field(default_factory=list)
    quiet: list[int] = field(default_factory=list)  # len(obs) at each point the state was quiescent
    emitted: dict[str, UsageSpan] = field(default_factory=dict)
    msg_ids: set[str] = field(default_factory=set)
    finalized: set[str] = field(default_factory=set)  # session ids dropped at checkpoints
    cut: OrderKey | None = None
    next_try: int = 0  # len(obs) before trying a checkpoint again
    max_ts: datetime | None = None

    def clone(self) -> _Track:
        # `base` is replaced, never changed in place, so it can be shared
        return _Track(base=self.base, state=self.state.clone(), obs=list(self.obs), keys=list(self.keys),
                      quiet=list(self.quiet), emitted=dict(self.emitted), msg_ids=set(self.msg_ids),
                      finalized=set(self.finalized), cut=self.cut, next_try=self.next_try, max_ts=self.max_ts)


class Sessionizer:
    """Incremental sessionizing for the worker: ``feed`` each observation, ``tick`` on a timer.

    Each call returns the spans that changed (upsert on ``span.key``; ``removed`` means delete).
    In-order observations advance the state machine directly; a late one replays the machine's
    observations since its last quiescent checkpoint, so the result equals ``sessionize`` on the same
    observations. Observations older than ``config.retention`` behind the newest one on their machine
    (past a checkpoint) are counted in ``late_dropped`` and ignored, as are events of a session that was
    already forgotten at a checkpoint: rebuild that range with ``sessionize`` from stored messages if
    that ever matters. The clock is the latest of ``tick(now)`` and the newest observation's ts.
    """

    def __init__(self, config: SessionizerConfig | None = None) -> None:
        self.config = config or SessionizerConfig()
        if self.config.retention < 2 * self.config.timeout:
            raise ValueError("retention must be at least twice the timeout")
        self._tracks: dict[str, _Track] = {}
        self._now: datetime | None = None
        self.duplicates = 0
        self.late_dropped = 0
        self._undo: dict[str, _Track | None] | None = None
        self._undo_clock: tuple[datetime | None, int, int] = (None, 0, 0)

    # -- units of work: the worker's database transaction and this state roll back together ---------
    def begin(self) -> None:
        """Remember the state as it is now; ``rollback`` returns to it, ``commit`` forgets it.

        Tracks are copied lazily, the first time a unit of work touches their machine."""
        self._undo = {}
        self._undo_clock = (self._now, self.duplicates, self.late_dropped)

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        if self._undo is None:
            return
        for machine, saved in self._undo.items():
            if saved is None:
                self._tracks.pop(machine, None)
            else:
                self._tracks[machine] = saved
        self._now, self.duplicates, self.late_dropped = self._undo_clock
        self._undo = None

    def _touch(self, machine: str) -> None:
        if self._undo is not None and machine not in self._undo:
            t = self._tracks.get(machine)
            self._undo[machine] = t.clone() if t is not None else None

    def feed(self, obs: Observation) -> list[SessionChange]:
        _check(obs)
        self._touch(obs.machine)
        t = self._tracks.get(obs.machine)
        if t is None:
            base = _Machine(obs.machine, self.config)
            t = self._tracks[obs.machine] = _Track(base=base, state=copy.deepcopy(base))
        if obs.msg_id is not None and obs.msg_id in t.msg_ids:
            self.duplicates += 1
            return []
        key = order_key(obs)
        too_late = t.cut is not None and key <= t.cut
        if too_late or (obs.kind in EVENT_KINDS and obs.session_id in t.finalized):
            self.late_dropped += 1
            return []
        if obs.msg_id is not None:
            t.msg_ids.add(obs.msg_id)
        if not t.keys or key > t.keys[-1]:
            t.obs.append(obs)
            t.keys.append(key)
            t.state.step(obs)
            if t.state.quiescent():
                t.quiet.append(len(t.obs))
        else:
            i = bisect_right(t.keys, key)
            t.keys.insert(i, key)
            t.obs.insert(i, obs)
            self._replay(t)
        t.max_ts = obs.ts if t.max_ts is None else max(t.max_ts, obs.ts)
        self._now = obs.ts if self._now is None else max(self._now, obs.ts)
        changes = self._diff(t)
        self._checkpoint(t)
        return changes

    def tick(self, now: datetime) -> list[SessionChange]:
        """Advance the clock: spans silent for longer than the timeout close."""
        self._now = now if self._now is None else max(self._now, now)
        for machine in self._tracks:
            self._touch(machine)
        return [c for t in self._tracks.values() for c in self._diff(t)]

    def current(self, machine: str | None = None) -> list[UsageSpan]:
        """Spans still held (not yet past a checkpoint), as last reported."""
        if machine is None:
            tracks = list(self._tracks.values())
        else:
            tracks = [self._tracks[machine]] if machine in self._tracks else []
        spans = [s for t in tracks for s in t.emitted.values()]
        return sorted(spans, key=lambda s: (s.machine, s.start, s.key))

    def _replay(self, t: _Track) -> None:
        t.state = copy.deepcopy(t.base)
        t.quiet = []
        for n, o in enumerate(t.obs, 1):
            t.state.step(o)
            if t.state.quiescent():
                t.quiet.append(n)

    def _diff(self, t: _Track) -> list[SessionChange]:
        assert self._now is not None
        fresh = {s.key: s for s in t.state.spans(self._now)}
        changes: list[SessionChange] = []
        for key, span in fresh.items():
            old = t.emitted.get(key)
            if old == span:
                continue
            if old is None:
                kind = "opened" if span.open else "closed"
            else:
                kind = "closed" if old.open and not span.open else "updated"
            changes.append(SessionChange(kind, span))
        for key in t.emitted.keys() - fresh.keys():
            changes.append(SessionChange("removed", t.emitted[key]))
        t.emitted = fresh
        return changes

    def _checkpoint(self, t: _Track) -> None:
        """Forget what lies more than ``retention`` behind the newest observation, at a quiet point."""
        assert t.max_ts is not None
        wanted = max(_MIN_CUT, len(t.obs) // 2)
        # only when it frees a good part of what is held, so replaying stays amortized O(1) per feed
        if len(t.obs) < t.next_try or not t.quiet or t.quiet[-1] < wanted:
            return
        limit = t.max_ts - self.config.retention
        i = bisect_right(t.quiet, limit, key=lambda q: t.obs[q - 1].ts)
        # a session seen on both sides of a cut (revived by its own id after a timeout) forbids it
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for idx, o in enumerate(t.obs):
            if o.kind in EVENT_KINDS and o.session_id is not None:
                first.setdefault(o.session_id, idx)
                last[o.session_id] = idx
        cover = [0] * (len(t.obs) + 2)
        for sid, a in first.items():
            if last[sid] > a:
                cover[a + 1] += 1
                cover[last[sid] + 1] -= 1
        for k in range(1, len(cover)):
            cover[k] += cover[k - 1]
        n = next((q for q in reversed(t.quiet[:i]) if cover[q] == 0), 0)
        if n < wanted:
            t.next_try = len(t.obs) + wanted // 2
            return
        t.next_try = 0
        state = copy.deepcopy(t.base)
        for o in t.obs[:n]:
            state.step(o)
        keep_from = t.obs[n].ts if n < len(t.obs) else t.obs[n - 1].ts
        t.finalized |= state.forget_before(keep_from)
        t.cut = t.keys[n - 1]
        t.msg_ids -= {o.msg_id for o in t.obs[:n] if o.msg_id is not None}
        del t.obs[:n], t.keys[:n]
        t.base = state
        self._replay(t)
        # spans before the cut are final and already reported; stop holding them
        t.emitted = {s.key: s for s in t.state.spans(self._now or t.max_ts)}
