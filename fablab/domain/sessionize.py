"""Machine observations (events, status changes, power readings) → usage sessions.

Pure: no I/O, no clock. This module holds the vocabulary (``Observation``, ``UsageSpan``,
``SessionizerConfig``, the total order ``order_key``), the per-machine state machine and
``sessionize``, which runs it on a batch (e.g. to rebuild a range from stored messages). The
incremental ``Sessionizer`` the worker runs on the stream is fablab.domain.sessionizer, the energy
bookkeeping fablab.domain.power_log. Both paths run the same state machine over observations sorted
by ``(ts, seq)``, so they agree on the same set of observations whatever the arrival order.

Sources, by priority: a machine that has sent session events is sessionized by events from then on
(status and power only keep its sessions alive or close them when it goes offline); a machine with
status but no events by its status (busy, printing, … active; idle, locked, offline inactive); a
machine with only a power plug by power above a threshold for a minimum time (hysteresis).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .power_log import PowerLog

SESSION_STARTED = "session_started"
SESSION_ENDED = "session_ended"
JOB_STARTED = "job_started"
JOB_FINISHED = "job_finished"
ERROR = "error"
EVENT_KINDS = frozenset({SESSION_STARTED, SESSION_ENDED, JOB_STARTED, JOB_FINISHED, ERROR})
STATUS = "status"  # a machine/{m}/status message: `state` (and `job_file`) set
POWER = "power"  # a telemetry reading: `power_w` and/or a cumulative meter in `energy_wh`
KINDS = EVENT_KINDS | {STATUS, POWER}

OFFLINE = "offline"
ACTIVE_STATES = frozenset({"busy", "printing", "paused", "alarm", "error"})

# closed_by values
END_EVENT = "end_event"
NEXT_START = "next_start"
TIMEOUT = "timeout"
STATUS_IDLE = "status_idle"  # also used when a power reading stays below the threshold
OFFLINE_CLOSE = "offline"

# source ranks: a higher source takes over a machine for good
_POWER, _STATUS, _EVENT = 1, 2, 3
_SOURCE_NAME = {_POWER: "power", _STATUS: "status", _EVENT: "event"}
# tie-break at equal ts and seq: a start sorts before what happens in a session, an end after
_KIND_RANK = {
    SESSION_STARTED: 0, JOB_STARTED: 1, STATUS: 2, POWER: 2, ERROR: 2, JOB_FINISHED: 3, SESSION_ENDED: 4,
}


@dataclass(frozen=True)
class Observation:
    """One thing a machine reported. ``kind`` is an event type, ``"status"`` or ``"power"``.

    For events, ``energy_wh`` is the session's energy so far; for power readings it is the plug's
    cumulative meter (Wh), used instead of integrating ``power_w`` when present.
    """

    kind: str
    ts: datetime
    machine: str
    session_id: str | None = None
    seq: int | None = None
    badge: str | None = None  # the keyed hash of the badge UID (never the UID itself)
    badge_hint: str | None = None  # its last characters, for a steward to recognise the card
    energy_wh: float | None = None
    power_w: float | None = None
    state: str | None = None
    job_file: str | None = None
    msg_id: str | None = None


@dataclass(frozen=True)
class SessionizerConfig:
    timeout: timedelta = timedelta(minutes=30)  # no sign of activity for this long → session over
    power_on_w: float = 20.0  # a reading >= this counts as "in use"
    power_off_w: float | None = None  # while in use, a reading < this counts as idle; None → power_on_w
    power_min_on: timedelta = timedelta(seconds=60)  # above the threshold this long before it is use
    power_min_off: timedelta = timedelta(seconds=120)  # below it this long before the use ends
    active_states: frozenset[str] = ACTIVE_STATES
    retention: timedelta = timedelta(hours=6)  # Sessionizer only: how late an observation may arrive

    @property
    def off_w(self) -> float:
        return self.power_on_w if self.power_off_w is None else self.power_off_w


@dataclass(frozen=True)
class UsageSpan:
    """A usage session. ``key`` is stable across updates: upsert on it.

    An open span has ``end=None``, ``closed_by=None`` and ``duration`` up to its last sign of activity.
    """

    key: str
    machine: str
    session_id: str | None
    start: datetime
    end: datetime | None
    duration: timedelta
    energy_wh: float | None
    badge: str | None
    job_file: str | None
    source: str  # "event" | "status" | "power"
    closed_by: str | None  # "end_event" | "next_start" | "timeout" | "status_idle" | "offline"
    open: bool
    start_estimated: bool = False  # the start message was lost: start = earliest observation
    badge_hint: str | None = None


# (ts, seq, kind rank, msg_id, repr): see ``order_key``
OrderKey = tuple[datetime, tuple[int, int], int, str, str]


def order_key(obs: Observation) -> OrderKey:
    """Total order: (ts, seq), then kind, msg_id and the whole value so ties never depend on arrival."""
    seq = (1, obs.seq) if obs.seq is not None else (0, 0)
    return (obs.ts, seq, _KIND_RANK.get(obs.kind, 2), obs.msg_id or "", repr(obs))


def _rank(obs: Observation) -> int:
    if obs.kind in EVENT_KINDS:
        return _EVENT
    return _STATUS if obs.kind == STATUS else _POWER


@dataclass
class _EventSession:
    sid: str
    first_ts: datetime
    last_seen: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    closed_at: datetime | None = None  # provisional closure: next start, offline or timeout
    closed_by: str | None = None
    badge: str | None = None
    badge_hint: str | None = None
    job_file: str | None = None
    energy_wh: float | None = None


@dataclass
class _Machine:
    """The per-machine state machine. ``step`` must be given observations in ``order_key`` order."""

    machine: str
    config: SessionizerConfig
    mode: int = 0
    finished: list[UsageSpan] = field(default_factory=list)  # closed status/power spans
    sessions: dict[str, _EventSession] = field(default_factory=dict)
    open_sids: set[str] = field(default_factory=set)
    last_obs: datetime | None = None
    # status source
    s_start: datetime | None = None
    s_job: str | None = None
    # power source
    p_on: bool = False
    p_start: datetime | None = None
    p_cand: datetime | None = None  # when the reading first crossed the threshold (on or off)
    p_last_active: datetime | None = None
    p_last_reading: datetime | None = None
    power: PowerLog = field(init=False)  # power and meter readings, for energy

    def __post_init__(self) -> None:
        self.power = PowerLog(self.config.timeout)

    def clone(self) -> _Machine:
        """A copy that shares nothing mutable (cheaper than deepcopy: observations are immutable)."""
        c = copy.copy(self)
        c.finished = list(self.finished)
        c.sessions = {k: copy.copy(v) for k, v in self.sessions.items()}
        c.open_sids = set(self.open_sids)
        c.power = self.power.clone()
        return c

    # -- feeding --------------------------------------------------------------------------------------
    def step(self, obs: Observation) -> None:
        self._expire(obs.ts)
        rank = _rank(obs)
        if rank > self.mode:
            self._take_over(rank, obs.ts)
        if obs.kind == POWER:
            self._power(obs)
        elif obs.kind == STATUS:
            self._status(obs)
        else:
            self._event(obs)
        self.last_obs = obs.ts if self.last_obs is None else max(self.last_obs, obs.ts)

    def quiescent(self) -> bool:
        """Nothing open or pending: the future depends on nothing before this point but the mode."""
        return not self.open_sids and self.s_start is None and not self.p_on and self.p_cand is None

    def _expire(self, ts: datetime) -> None:
        """Commit timeouts that a gap before ``ts`` proves."""
        timeout = self.config.timeout
        for sid in list(self.open_sids):
            s = self.sessions[sid]
            if ts - s.last_seen > timeout:
                self._close_session(s, s.last_seen, TIMEOUT)
        if self.s_start is not None and self.last_obs is not None and ts - self.last_obs > timeout:
            self._finish(_STATUS, self.s_start, self.last_obs, TIMEOUT, self.s_job)
            self.s_start = None
        if self.p_last_reading is not None and ts - self.p_last_reading > timeout:
            if self.p_on:
                end = self.p_cand or self.p_last_active or self.p_last_reading
                self._finish(_POWER, self.p_start or end, end, TIMEOUT, None)
                self.p_on = False
            self.p_cand = None

    def _take_over(self, rank: int, ts: datetime) -> None:
        # a better source appears: whatever the weaker one had open ends where the stronger one begins
        if self.s_start is not None:
            self._finish(_STATUS, self.s_start, ts, NEXT_START, self.s_job)
            self.s_start = None
        if self.p_on:
            self._finish(_POWER, self.p_start or ts, ts, NEXT_START, None)
            self.p_on = False
        self.p_cand = None
        self.mode = rank

    def _power(self, obs: Observation) -> None:
        ts, cfg = obs.ts, self.config
        if obs.energy_wh is not None:
            self.power.add_meter(ts, obs.energy_wh)
        if obs.power_w is None:
            return
        w = obs.power_w
        self.power.add_reading(ts, w)
        self.p_last_reading = ts
        if w >= cfg.off_w:
            self._keep_alive(ts)
        if self.mode != _POWER:
            return
        if not self.p_on:
            if w < cfg.power_on_w:
                self.p_cand = None  # flicker: below again before the minimum time
                return
            if self.p_cand is None:
                self.p_cand = ts
            if ts - self.p_cand >= cfg.power_min_on:
                self.p_on, self.p_start, self.p_cand, self.p_last_active = True, self.p_cand, None, ts
        elif w >= cfg.off_w:
            self.p_cand, self.p_last_active = None, ts
        else:
            if self.p_cand is None:
                self.p_cand = ts
            if ts - self.p_cand >= cfg.power_min_off:
                self._finish(_POWER, self.p_start or self.p_cand, self.p_cand, STATUS_IDLE, None)
                self.p_on, self.p_cand = False, None

    def _status(self, obs: Observation) -> None:
        ts, state = obs.ts, obs.state
        active = state in self.config.active_states
        if self.mode == _EVENT:
            if state == OFFLINE:
                for sid in list(self.open_sids):
                    self._close_session(self.sessions[sid], ts, OFFLINE_CLOSE)
            elif active:
                self._keep_alive(ts, obs.job_file)
            return
        if active:
            if self.s_start is None:
                self.s_start, self.s_job = ts, obs.job_file
            elif self.s_job is None:
                self.s_job = obs.job_file
        elif self.s_start is not None:
            by = OFFLINE_CLOSE if state == OFFLINE else STATUS_IDLE
            self._finish(_STATUS, self.s_start, ts, by, self.s_job)
            self.s_start = None

    def _event(self, obs: Observation) -> None:
        ts, sid = obs.ts, obs.session_id
        if sid is None:
            if obs.kind == SESSION_STARTED:
                sid = f"@{ts.isoformat()}"
            else:
                # no id: it belongs to the latest open session (only its own id may revive a closed one)
                live = [self.sessions[o] for o in self.open_sids if self.sessions[o].first_ts <= ts]
                if live:
                    sid = max(live, key=lambda s: s.first_ts).sid
                elif obs.kind == SESSION_ENDED:
                    sid = f"@{ts.isoformat()}"
                else:
                    return  # a stray job event with no session: nothing to attach it to
        s = self.sessions.get(sid)
        if s is None:
            # a new session on the machine: the previous one is over (one session at a time)
            for other in list(self.open_sids):
                o = self.sessions[other]
                if o.first_ts <= ts:
                    gap = ts - o.last_seen > self.config.timeout
                    self._close_session(o, o.last_seen if gap else ts, TIMEOUT if gap else NEXT_START)
            s = self.sessions[sid] = _EventSession(sid, first_ts=ts, last_seen=ts)
            self.open_sids.add(sid)
        elif s.closed_by == TIMEOUT and s.ended_at is None:
            # its own id proves the session went on after the gap
            s.closed_at = s.closed_by = None
            self.open_sids.add(sid)
        s.first_ts = min(s.first_ts, ts)
        s.last_seen = max(s.last_seen, ts)
        if obs.kind == SESSION_STARTED:
            s.started_at = ts if s.started_at is None else min(s.started_at, ts)
        if obs.badge and s.badge is None:
            s.badge, s.badge_hint = obs.badge, obs.badge_hint
        if obs.job_file and s.job_file is None:
            s.job_file = obs.job_file
        if obs.energy_wh is not None:
            s.energy_wh = obs.energy_wh
        if obs.kind == SESSION_ENDED and s.ended_at is None:
            s.ended_at = ts
            self.open_sids.discard(sid)

    def _keep_alive(self, ts: datetime, job_file: str | None = None) -> None:
        for sid in self.open_sids:
            s = self.sessions[sid]
            if s.first_ts <= ts:
                s.last_seen = max(s.last_seen, ts)
                if job_file and s.job_file is None:
                    s.job_file = job_file

    def _close_session(self, s: _EventSession, at: datetime, by: str) -> None:
        s.closed_at, s.closed_by = at, by
        self.open_sids.discard(s.sid)

    def _finish(self, rank: int, start: datetime, end: datetime, by: str, job: str | None) -> None:
        end = max(end, start)
        self.finished.append(self._span(rank, None, start, end, end, by, job, None, None, False))

    # -- output ---------------------------------------------------------------------------------------
    def _span(
        self,
        rank: int,
        sid: str | None,
        start: datetime,
        end: datetime | None,
        last: datetime,
        by: str | None,
        job: str | None,
        badge: str | None,
        energy: float | None,
        estimated: bool,
        badge_hint: str | None = None,
    ) -> UsageSpan:
        source = _SOURCE_NAME[rank]
        key = f"{self.machine}/{source}/{sid if sid is not None else start.isoformat()}"
        stop = end if end is not None else max(last, start)
        if energy is None:
            energy = self.power.energy_between(start, stop)
        return UsageSpan(
            key=key,
            machine=self.machine,
            session_id=sid,
            start=start,
            end=end,
            duration=stop - start,
            energy_wh=energy,
            badge=badge,
            job_file=job,
            source=source,
            closed_by=by,
            open=end is None,
            start_estimated=estimated,
            badge_hint=badge_hint,
        )

    def spans(self, now: datetime) -> list[UsageSpan]:
        """Every span so far as seen at ``now``: a span silent for longer than the timeout is closed."""
        timeout = self.config.timeout
        out = list(self.finished)
        for s in self.sessions.values():
            start = s.started_at or s.first_ts
            end: datetime | None
            by: str | None
            if s.ended_at is not None:
                end, by = s.ended_at, END_EVENT
            elif s.closed_at is not None:
                end, by = s.closed_at, s.closed_by
            elif now - s.last_seen > timeout:
                end, by = s.last_seen, TIMEOUT
            else:
                end, by = None, None
            if end is not None:
                end = max(end, start)
            out.append(
                self._span(
                    _EVENT, s.sid, start, end, s.last_seen, by, s.job_file, s.badge, s.energy_wh,
                    s.started_at is None, s.badge_hint,
                )
            )
        if self.s_start is not None and self.last_obs is not None:
            end = self.last_obs if now - self.last_obs > timeout else None
            out.append(
                self._span(_STATUS, None, self.s_start, end, self.last_obs,
                           TIMEOUT if end is not None else None, self.s_job, None, None, False)
            )
        if self.p_on and self.p_start is not None and self.p_last_reading is not None:
            last = self.p_last_active or self.p_start
            end = None
            if now - self.p_last_reading > timeout:
                end = self.p_cand or last
            out.append(self._span(_POWER, None, self.p_start, end, last, TIMEOUT if end is not None else None,
                                  None, None, None, False))
        return out

    def forget_before(self, keep_from: datetime) -> set[str]:
        """Drop closed spans and sessions (quiescent state only); return the dropped session ids."""
        dropped = set(self.sessions)
        self.sessions.clear()
        self.finished.clear()
        self.power.forget_before(keep_from)
        return dropped


def _check(obs: Observation) -> None:
    if obs.kind not in KINDS:
        raise ValueError(f"unknown observation kind {obs.kind!r}")
    if obs.ts.tzinfo is None:
        raise ValueError("observation ts must be timezone-aware")


def _sorted_unique(observations: Iterable[Observation]) -> list[Observation]:
    out: list[Observation] = []
    seen: set[str] = set()
    for obs in sorted(observations, key=order_key):
        _check(obs)
        if obs.msg_id is not None:
            if obs.msg_id in seen:
                continue
            seen.add(obs.msg_id)
        out.append(obs)
    return out


def sessionize(
    observations: Iterable[Observation], now: datetime, config: SessionizerConfig | None = None
) -> list[UsageSpan]:
    """All usage spans of these observations as seen at ``now``, sorted by (machine, start, key)."""
    config = config or SessionizerConfig()
    machines: dict[str, _Machine] = {}
    for obs in _sorted_unique(observations):
        m = machines.get(obs.machine)
        if m is None:
            m = machines[obs.machine] = _Machine(obs.machine, config)
        m.step(obs)
    spans = [s for m in machines.values() for s in m.spans(now)]
    return sorted(spans, key=lambda s: (s.machine, s.start, s.key))
