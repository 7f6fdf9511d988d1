"""Turning MQTT messages into the lab's usage record.

`Ingestor` is the transport-free part: given a batch of (topic, payload) it stores accepted messages
once (unique msg_id), keeps malformed or unauthorised ones as dead letters, updates live machine
state, sessionizes use and links it to bookings, and decides badge authorizations. `MqttWorker`
(fablab/worker/mqtt.py) feeds it from a persistent MQTT session and acknowledges each message only after
its batch is committed, so a crash at any point loses nothing and doubles nothing.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard, cast

from flask import Flask
from sqlalchemy import Table, select, text
from sqlalchemy import exc as sa_exc

from devices import events as ev
from fablab.domain import sessionize as sz
from fablab.domain import sessionizer

from .. import metrics
from ..database import begin_write
from ..extensions import db
from ..models import Machine
from ..models.types import utcnow
from ..models.usage import Bridge, DeadLetter, MqttMessage
from ..security import badge_digest
from ..services import authorize as auth_service
from ..services import event_data, lab_events, print_offers, print_results
from ..services import usage as usage_service
from . import jobs

_DEAD_LETTERS = cast(Table, DeadLetter.__table__)  # a declarative model's __table__ is a Table (typed FromClause)

log = logging.getLogger("fablab.worker")

SERVER_SRC = "fablab-server"
_SERVER_JOB_SUBS = ("job/offer", "job/start", "job/withdraw")  # print jobs: the server's side of the contract
Publish = Callable[[ev.Message], None]


@dataclass
class Incoming:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    received_at: datetime = field(default_factory=utcnow)


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    dead: int = 0
    auth: int = 0
    newest: datetime | None = None  # event time of the newest message stored (the ingest lag)


# The whole batch as one JSON parameter: psycopg builds text arrays in Python (escaping every quote of every
# payload), which cost more than the insert itself; one JSON string costs next to nothing.
_PG_INSERT = text("""
    INSERT INTO mqtt_messages (msg_id, topic, kind, src, machine_id, ts, received_at, payload, note)
    SELECT r.msg_id, r.topic, r.kind, r.src, r.machine_id, r.ts, r.received_at, r.payload, r.note
    FROM json_to_recordset(CAST(:rows AS json)) AS r(msg_id varchar, topic varchar, kind varchar, src varchar,
         machine_id integer, ts timestamptz, received_at timestamptz, payload json, note varchar)
    ON CONFLICT (msg_id) DO NOTHING
    RETURNING msg_id
""")


def _insert_ignoring_duplicates(rows: list[dict[str, Any]]) -> set[str]:
    """Insert message rows; return the msg_ids that were new (duplicates are skipped by the database)."""
    if not rows:
        return set()
    if db.session.get_bind().dialect.name == "postgresql":
        # One short statement with array parameters: a multi-row VALUES statement of thousands of
        # parameters costs more to build and parse than to execute.
        batch = json.dumps([{**r, "ts": r["ts"].isoformat(), "received_at": r["received_at"].isoformat()}
                            for r in rows])
        return set(db.session.execute(_PG_INSERT, {"rows": batch}).scalars())
    from sqlalchemy.dialects.sqlite import insert

    table = cast(Table, MqttMessage.__table__)  # a declarative model's __table__ is a Table (typed FromClause)
    # Core, not ORM, insert: this is the hot path of the worker.
    stmt = insert(table).on_conflict_do_nothing(index_elements=["msg_id"]).returning(table.c.msg_id)
    return set(db.session.execute(stmt, rows).scalars())


@dataclass
class _Accepted:
    """A message that passed every check, ready to be stored and acted on."""

    msg: ev.Message  # as received (an auth request keeps the badge UID here, in memory only)
    ident: str
    row: dict[str, Any]  # the mqtt_messages row: badge UIDs replaced by their keyed hash
    obs: sz.Observation | None


def _transient(exc: BaseException) -> bool:
    """The database is away or busy (retry the same batch later), as opposed to a message it refuses."""
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError) or bool(
        getattr(exc, "connection_invalidated", False))


class Ingestor:
    def __init__(self, app: Flask, publish: Publish | None = None,
                 config: sz.SessionizerConfig | None = None) -> None:
        self.app = app
        self.publish = publish or (lambda msg: None)
        self.config = config or sz.SessionizerConfig()
        self.sessionizer = sessionizer.Sessionizer(self.config)
        self.max_skew = timedelta(hours=app.config.get("FABLAB_INGEST_MAX_SKEW_HOURS", 24))
        self.max_age = timedelta(days=app.config.get("FABLAB_INGEST_MAX_AGE_DAYS", 365))
        self._machines: dict[str, int] = {}
        self._bridges: dict[str, set[str]] = {}
        self._cache_at = 0.0
        self._last_run: dict[str, datetime] = {}  # timed job → when it last ran
        self.totals = BatchResult()

    # -- caches of who may write what; refreshed now and then and whenever something is unknown --
    def _refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._cache_at < 30:
            return
        self._machines = {slug: mid for mid, slug in db.session.execute(select(Machine.id, Machine.slug))}
        self._bridges = usage_service.bridges_by_id()
        self._cache_at = time.monotonic()

    def _machine_id(self, slug: str) -> int | None:
        if slug not in self._machines:
            self._refresh(force=True)
        return self._machines.get(slug)

    def _owner_problem(self, msg: ev.Message, slug: str) -> str | None:
        """Each bridge may write only for its own machines (the broker ACL says so too)."""
        if not self._bridges:
            return None  # no bridges registered: a single-bridge demo or test without credentials
        if msg.src not in self._bridges:
            self._refresh(force=True)
        allowed = self._bridges.get(msg.src)
        if allowed is None:
            return f"unknown bridge {msg.src!r}"
        if slug not in allowed:
            return f"bridge {msg.src!r} does not own machine {slug!r}"
        return None

    def warm_up(self, now: datetime | None = None) -> int:
        """Rebuild the sessionizer from stored messages after a restart (its state lives in memory)."""
        now = now or utcnow()
        with self.app.app_context():
            self._refresh(force=True)
            since = now - self.config.retention
            rows = db.session.execute(select(MqttMessage.topic, MqttMessage.ts, MqttMessage.payload).where(
                MqttMessage.ts >= since, MqttMessage.kind.in_(("status", "event", "telemetry")))
                .order_by(MqttMessage.ts, MqttMessage.id))
            n = 0
            bridges = usage_service.bridges_by_id()
            for topic, ts, payload in rows:
                try:
                    found = observations(topic, ts, payload, bridges)
                except (ev.ContractError, KeyError, TypeError, ValueError):
                    log.warning("stored message on %s cannot be replayed; skipped", topic)
                    continue
                for obs in found:
                    self.sessionizer.feed(obs)
                    n += 1
            db.session.remove()
            return n

    # -- a batch: every message ends stored or dead-lettered; a failure is narrowed to its message --
    def process(self, batch: list[Incoming], now: datetime | None = None, isolate: bool = False) -> BatchResult:
        """Store and act on a batch. A batch the database refuses is bisected until the message at fault
        is alone; that one becomes a dead letter and the rest commit. Errors that say the database is
        away (or busy) are raised for the caller to retry the whole batch, unless ``isolate``."""
        now = now or utcnow()
        result = BatchResult()
        self._isolating(batch, now, result, isolate)
        metrics.ingest_processed(len(batch), result.stored, result.duplicates, result.dead)
        for k in ("stored", "duplicates", "dead", "auth"):
            setattr(self.totals, k, getattr(self.totals, k) + getattr(result, k))
        return result

    def _isolating(self, batch: list[Incoming], now: datetime, result: BatchResult, isolate: bool) -> None:
        try:
            self._transaction(batch, now, result)
            return
        except Exception as exc:  # noqa: BLE001 - narrowed below; nothing is dropped
            self._cache_at = 0.0  # e.g. a machine deleted meanwhile: look again before the retry
            if _transient(exc) and not isolate and not self.database_ok():
                raise
            failure = exc
        if len(batch) == 1:
            try:  # once more on its own: a lock timeout or a deadlock is not the message's fault
                self._transaction(batch, now, result)
                return
            except Exception as exc:  # noqa: BLE001
                failure = exc
            self._dead_letter_alone(batch[0], failure)
            result.dead += 1
            return
        mid = len(batch) // 2
        self._isolating(batch[:mid], now, result, isolate)
        self._isolating(batch[mid:], now, result, isolate)

    def _transaction(self, batch: list[Incoming], now: datetime, result: BatchResult) -> None:
        part = BatchResult()
        with self.app.app_context():
            self.sessionizer.begin()
            try:
                begin_write()  # the web app writes too: take the lock before reading (see begin_write)
                auth_requests = self._process(batch, now, part)
                started = time.perf_counter()
                db.session.commit()
                metrics.ingest_committed(time.perf_counter() - started, part.newest)
            except BaseException:
                db.session.rollback()
                self.sessionizer.rollback()  # in-memory state goes back with the transaction
                raise
            finally:
                db.session.remove()
            self.sessionizer.commit()
        for req in auth_requests:
            self._answer(req, now)
            part.auth += 1
        if auth_requests:
            self.flush_print_messages(now)  # a badge that confirmed a print starts it now, not at the next tick
        for k in ("stored", "duplicates", "dead", "auth"):
            setattr(result, k, getattr(result, k) + getattr(part, k))

    def database_ok(self) -> bool:
        """Does the database answer at all? (Tells "it is away" from "it refuses this batch".)"""
        with self.app.app_context():
            try:
                db.session.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001 - any failure means: not reachable now
                return False
            finally:
                db.session.remove()

    def _dead_letter_alone(self, item: Incoming, exc: BaseException) -> None:
        reason = f"not storable: {type(exc).__name__}: {getattr(exc, 'orig', None) or exc}"
        log.warning("dead-lettered a message on %s: %s", _clean_text(item.topic)[:200], reason[:300])
        with self.app.app_context():
            try:
                begin_write()
                db.session.execute(_DEAD_LETTERS.insert(), [self._dead(item, reason)])
                db.session.commit()
            except BaseException:
                db.session.rollback()
                raise  # the database itself fails: the caller retries (nothing was acked)
            finally:
                db.session.remove()

    def _dead(self, item: Incoming, reason: str) -> dict[str, Any]:
        return {"topic": _clean_text(item.topic)[:512], "payload": _dead_payload(item.payload, self._secret()),
                "reason": _clean_text(reason)[:500], "received_at": item.received_at, "reviewed": False}

    def _secret(self) -> str:
        return str(self.app.config["SECRET_KEY"])

    def _prepare(self, item: Incoming, now: datetime) -> _Accepted | dict[str, Any] | None:
        """Check one message: an `_Accepted`, a dead-letter row, or None (our own message echoed back)."""
        notes: list[str] = []
        try:
            kind, ident, sub = ev.parse_topic(item.topic)
            data = ev.load_json(item.payload, allow_nonfinite=sub == "telemetry")
            if sub == "telemetry" and isinstance(data, dict):
                nulled = _null_nonfinite(data)
                if nulled:
                    notes.append("non-finite readings stored as null: " + ", ".join(nulled))
            msg = ev.from_dict(item.topic, data)
            if msg.src == SERVER_SRC and sub in ("auth/response", "cmd", *_SERVER_JOB_SUBS):
                return None  # our own auth responses and commands coming back (elsewhere: a bridge posing as us)
            if sub in _SERVER_JOB_SUBS:
                return self._dead(item, f"{sub} is sent by the server only, not by {msg.src!r}")
            ts = ev.parse_ts(msg.ts).astimezone(UTC)
            if not now - self.max_age <= ts <= now + self.max_skew:
                notes.append(f"ts {msg.ts} is outside the accepted window around the time received "
                             f"(-{self.max_age.days} d, +{self.max_skew.total_seconds() / 3600:g} h): "
                             "received time used")
                ts = now
        except ev.ContractError as exc:
            return self._dead(item, exc.reason)
        except Exception as exc:  # noqa: BLE001 - any byte string ends as a stored message or a dead letter
            return self._dead(item, f"payload not decodable: {type(exc).__name__}: {exc}")
        machine_id = None
        if kind == "machine":
            machine_id = self._machine_id(ident)
            if machine_id is None:
                return self._dead(item, f"unknown machine {ident!r}")
            problem = self._owner_problem(msg, ident)
            if problem:
                return self._dead(item, problem)
        elif self._bridges and msg.src != ident:
            return self._dead(item, f"bridge status for {ident!r} sent by {msg.src!r}")
        payload = redact_badges(data, self._secret())
        row = {"msg_id": msg.msg_id, "topic": item.topic, "kind": sub.replace("/", "_"), "src": msg.src,
               "machine_id": machine_id, "ts": ts, "received_at": item.received_at, "payload": payload,
               "note": "; ".join(notes)[:255] or None}
        return _Accepted(msg, ident, row, observation(item.topic, ts, payload))  # bridges: see _bridge_status

    def _process(self, batch: list[Incoming], now: datetime, result: BatchResult) -> list[ev.AuthRequest]:
        self._refresh()
        accepted: list[_Accepted] = []
        dead: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in batch:
            prepared = self._prepare(item, now)
            if prepared is None:
                continue
            if isinstance(prepared, dict):
                dead.append(prepared)
                continue
            if prepared.msg.msg_id in seen:
                result.duplicates += 1  # once per msg_id, inside a batch too
                continue
            seen.add(prepared.msg.msg_id)
            accepted.append(prepared)
        if dead:
            db.session.execute(_DEAD_LETTERS.insert(), dead)
            result.dead += len(dead)
        fresh = _insert_ignoring_duplicates([a.row for a in accepted])
        result.stored += len(fresh)
        result.newest = max((a.row["ts"] for a in accepted if a.msg.msg_id in fresh), default=None)
        result.duplicates += len(accepted) - len(fresh)
        auth: list[ev.AuthRequest] = []
        touched: dict[str, sessionizer.SessionChange] = {}
        for a in accepted:
            msg = a.msg
            if msg.msg_id not in fresh:
                continue  # already processed once: idempotent
            if isinstance(msg, ev.AuthRequest):
                auth.append(msg)
                continue
            if isinstance(msg, ev.BridgeStatus):
                self._bridge_status(msg, a.row["ts"], now)
                continue
            if isinstance(msg, ev.MachineStatus):
                machine = db.session.get(Machine, self._machines[a.ident])
                if machine is not None:
                    previous = machine.live_state
                    usage_service.set_live_state(machine, msg.state, a.row["ts"],
                                                 msg.job.progress if msg.job else None,
                                                 msg.job.file if msg.job else None)
                    if msg.state != previous:  # a change only, not every retained repeat
                        lab_events.publish(event_data.machine_status(
                            machine, msg.state, previous, a.row["ts"], msg.job.file if msg.job else None))
            self._print_job(a, now)
            if a.obs is not None:
                for change in self.sessionizer.feed(a.obs):
                    touched[change.span.key] = change
        self._apply(touched.values(), now)
        return auth

    def _print_job(self, a: _Accepted, now: datetime) -> None:
        """A bridge's report on a print it was offered (fablab/services/print_results.py)."""
        msg = a.msg
        if isinstance(msg, ev.JobProgress):
            print_results.on_progress(self._machines[a.ident], msg, now)
        elif isinstance(msg, ev.JobResult):
            print_results.on_result(self._machines[a.ident], msg, now)
        elif isinstance(msg, ev.MachineEvent) and msg.detail and "job_id" in msg.detail:
            print_results.on_machine_event(self._machines[a.ident], msg, now)

    def flush_print_messages(self, now: datetime) -> None:
        """Publish what the print queue decided (offers, starts, withdrawals); a failure waits for the next tick."""
        with self.app.app_context():
            try:
                print_offers.flush(self.publish, now)
            except Exception:  # noqa: BLE001 - the outbox keeps what was not sent
                db.session.rollback()
                log.exception("publishing print job messages failed; retrying next tick")
            finally:
                db.session.remove()

    def _bridge_status(self, msg: ev.BridgeStatus, ts: datetime, now: datetime) -> None:
        bridge = db.session.scalar(select(Bridge).where(Bridge.bridge_id == msg.bridge_id))
        if bridge is None:
            return
        bridge.online = msg.online
        bridge.last_seen_at = ts
        if not msg.online:
            # The Last Will: the machines behind this bridge are offline now, and their use stops here.
            for m in bridge.machines:
                previous = m.live_state
                usage_service.set_live_state(m, "offline", ts)
                if previous != "offline":
                    lab_events.publish(event_data.machine_status(m, "offline", previous, ts,
                                                                 f"bridge {bridge.bridge_id} offline"))
            for obs in _bridge_offline(msg.msg_id, ts, sorted(m.slug for m in bridge.machines)):
                self._apply(self.sessionizer.feed(obs), now)

    def _apply(self, changes: Any, now: datetime) -> None:
        for change in changes:
            if change.kind == "removed" or (not change.span.open and not change.span.duration
                                            and change.span.source != "event"):
                # A closed span of no length (e.g. a status seen at the very moment an event took over)
                # is not use.
                usage_service.remove_span(change.span.key)
                continue
            machine_id = self._machines.get(change.span.machine)
            machine = db.session.get(Machine, machine_id) if machine_id else None
            if machine is not None:
                usage_service.apply_span(change.span, machine, now)

    def _answer(self, req: ev.AuthRequest, now: datetime) -> None:
        with self.app.app_context():
            try:
                machine = db.session.get(Machine, self._machines[req.machine])
                decision = auth_service.authorize(machine, req.badge.uid, now) if machine else \
                    auth_service.Decision(False, "unknown machine")
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - the machine must get an answer, a deny is safe
                log.exception("authorization failed")
                db.session.rollback()
                decision = auth_service.Decision(False, f"server error: {type(exc).__name__}")
            finally:
                db.session.remove()
        self.publish(ev.AuthResponse(
            machine=req.machine, src=SERVER_SRC, request_id=req.msg_id,
            decision="allow" if decision.allow else "deny", reason=decision.reason,
            booking_id=decision.booking_id,
            valid_until=ev.utc_now_iso(decision.valid_until) if decision.valid_until else None))

    def tick(self, now: datetime | None = None) -> None:
        """Timed work: session timeouts, then the timed jobs that are due (fablab/worker/jobs.py), each on
        its own (one failing job, e.g. on a stored rule it cannot compute, stops neither the others nor
        the ingest)."""
        now = now or utcnow()
        with self.app.app_context():
            self.sessionizer.begin()
            try:
                begin_write()
                self._refresh()
                self._apply(self.sessionizer.tick(now), now)
                db.session.commit()
                self.sessionizer.commit()
            except Exception:
                db.session.rollback()
                self.sessionizer.rollback()
                log.exception("session timeouts failed; will retry")
            finally:
                db.session.remove()
        with self.app.app_context():
            try:
                due = jobs.due(now, self._last_run)
                jobs.run_jobs(now, due)  # each on its own transaction: a failing one is logged, the rest run
                self._last_run.update(dict.fromkeys(due, now))
            finally:
                db.session.remove()
        self.flush_print_messages(now)


# --- pure helpers: what is stored, and the observation a stored message makes ------------------------


def _clean_text(value: str) -> str:
    """Text any database stores: no NUL, no lone surrogates."""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _null_nonfinite(data: dict[str, Any]) -> list[str]:
    """Telemetry readings that are NaN or infinite (a sensor reading nonsense) become null; their names."""
    nulled = []
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            data[key] = None
            nulled.append(str(key)[:64])
        elif isinstance(value, dict) and any(isinstance(x, float) and not math.isfinite(x) for x in value.values()):
            data[key] = {k: (None if isinstance(x, float) and not math.isfinite(x) else x) for k, x in value.items()}
            nulled.append(str(key)[:64])
    return nulled


def _badge_hint(uid: str) -> str:
    norm = "".join(ch for ch in uid.upper() if ch.isalnum())
    return norm[-4:]


def redact_badges(payload: dict[str, Any], secret: str) -> dict[str, Any]:
    """The payload as stored: a badge UID is replaced by its keyed hash and its last 4 characters."""
    badge = payload.get("badge")
    if not isinstance(badge, dict) or not isinstance(badge.get("uid"), str):
        return payload
    uid = badge["uid"]
    out = dict(payload)
    out["badge"] = {"tech": badge.get("tech"), "uid_hash": badge_digest(secret, uid), "uid_last4": _badge_hint(uid)}
    return out


_UID_TEXT = re.compile(r'("uid"\s*:\s*)"((?:[^"\\]|\\.)*)"')


def _dead_payload(raw: bytes, secret: str) -> str:
    """A refused message keeps its bytes for review, but never a badge UID in clear (parsed or not)."""
    text_ = _clean_text(raw[:100_000].decode("utf-8", "replace"))
    if '"uid"' not in text_:
        return text_
    return _UID_TEXT.sub(lambda m: f'{m.group(1)}"hash:{badge_digest(secret, m.group(2))} '
                                   f'last4:{_badge_hint(m.group(2))}"', text_)


def observation(topic: str, ts: datetime, payload: dict[str, Any]) -> sz.Observation | None:
    """What the sessionizer sees of a stored message (the worker feeds the same when it stores it, so a
    replay from the database rebuilds exactly the state the live stream built)."""
    kind, machine, sub = ev.parse_topic(topic)
    msg_id = payload["msg_id"]
    if sub == "event":
        detail = payload.get("detail") or {}
        file = detail.get("file") if isinstance(detail, dict) else None
        badge = payload.get("badge") or {}
        energy = payload.get("energy_wh")
        return sz.Observation(kind=payload["type"], ts=ts, machine=machine, session_id=payload.get("session_id"),
                              seq=payload["seq"], badge=badge.get("uid_hash"), badge_hint=badge.get("uid_last4"),
                              energy_wh=float(energy) if _is_number(energy) else None,
                              job_file=file[:255] if isinstance(file, str) else None, msg_id=msg_id)
    if sub == "status" and kind == "machine":
        job = payload.get("job") or {}
        return sz.Observation(kind="status", ts=ts, machine=machine, state=payload["state"],
                              job_file=job.get("file"), msg_id=msg_id)
    if sub == "telemetry":
        power = payload.get("power_w")
        if _is_number(power):
            energy = payload.get("energy_wh")
            return sz.Observation(kind="power", ts=ts, machine=machine, power_w=float(power),
                                  energy_wh=float(energy) if _is_number(energy) else None, msg_id=msg_id)
    return None


def _bridge_offline(msg_id: str, ts: datetime, machines: list[str]) -> list[sz.Observation]:
    return [sz.Observation(kind="status", ts=ts, machine=slug, state="offline", msg_id=f"{msg_id}:{slug}")
            for slug in machines]


def observations(topic: str, ts: datetime, payload: dict[str, Any],
                 bridges: dict[str, set[str]]) -> list[sz.Observation]:
    """All a stored message tells the sessionizer, including a bridge's Last Will for its machines."""
    if topic.startswith(f"{ev.PREFIX}/bridge/"):
        _, bridge_id, _ = ev.parse_topic(topic)
        if payload.get("online") is False:
            return _bridge_offline(payload["msg_id"], ts, sorted(bridges.get(bridge_id, ())))
        return []
    obs = observation(topic, ts, payload)
    return [obs] if obs is not None else []


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
