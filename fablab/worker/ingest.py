"""Turning MQTT messages into the lab's usage record.

`Ingestor` is the transport-free part: given a batch of (topic, payload) it stores accepted messages
once (unique msg_id), keeps malformed or unauthorised ones as dead letters, updates live machine
state, sessionizes use and links it to bookings, and decides badge authorizations. `MqttWorker` feeds
it from a persistent MQTT session and acknowledges each message only after its batch is committed,
so a crash at any point loses nothing and doubles nothing (redelivered messages are deduplicated).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask
from sqlalchemy import select, text

from devices import events as ev
from fablab.domain import sessionize as sz

from ..database import begin_write
from ..extensions import db
from ..models import Machine
from ..models.types import utcnow
from ..models.usage import Bridge, DeadLetter, MqttMessage
from ..services import authorize as auth_service
from ..services import usage as usage_service

log = logging.getLogger("fablab.worker")

SERVER_SRC = "fablab-server"
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


_PG_INSERT = text("""
    INSERT INTO mqtt_messages (msg_id, topic, kind, src, machine_id, ts, received_at, payload)
    SELECT * FROM unnest(CAST(:msg_id AS varchar[]), CAST(:topic AS varchar[]), CAST(:kind AS varchar[]),
                         CAST(:src AS varchar[]), CAST(:machine_id AS integer[]), CAST(:ts AS timestamptz[]),
                         CAST(:received_at AS timestamptz[]), CAST(:payload AS json[]))
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
        cols = {k: [r[k] for r in rows] for k in ("msg_id", "topic", "kind", "src", "machine_id", "ts",
                                                  "received_at")}
        cols["payload"] = [json.dumps(r["payload"]) for r in rows]
        return set(db.session.execute(_PG_INSERT, cols).scalars())
    from sqlalchemy.dialects.sqlite import insert

    table = MqttMessage.__table__
    # Core, not ORM, insert: this is the hot path of the worker.
    stmt = insert(table).on_conflict_do_nothing(index_elements=["msg_id"]).returning(table.c.msg_id)
    return set(db.session.execute(stmt, rows).scalars())


class Ingestor:
    def __init__(self, app: Flask, publish: Publish | None = None,
                 config: sz.SessionizerConfig | None = None) -> None:
        self.app = app
        self.publish = publish or (lambda msg: None)
        self.config = config or sz.SessionizerConfig()
        self.sessionizer = sz.Sessionizer(self.config)
        self._machines: dict[str, int] = {}
        self._bridges: dict[str, set[str]] = {}
        self._cache_at = 0.0
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
            rows = db.session.execute(select(MqttMessage.topic, MqttMessage.payload).where(
                MqttMessage.ts >= since, MqttMessage.kind.in_(("status", "event", "telemetry")))
                .order_by(MqttMessage.ts, MqttMessage.id))
            n = 0
            for topic, payload in rows:
                obs = _observation(ev.from_dict(topic, payload))
                if obs is not None:
                    self.sessionizer.feed(obs)
                    n += 1
            db.session.remove()
            return n

    def process(self, batch: list[Incoming], now: datetime | None = None) -> BatchResult:
        now = now or utcnow()
        result = BatchResult()
        with self.app.app_context():
            try:
                begin_write()  # the web app writes too: take the lock before reading (see begin_write)
                auth_requests = self._process(batch, now, result)
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
            for req in auth_requests:
                self._answer(req, now)
                result.auth += 1
        for k in ("stored", "duplicates", "dead", "auth"):
            setattr(self.totals, k, getattr(self.totals, k) + getattr(result, k))
        return result

    def _process(self, batch: list[Incoming], now: datetime, result: BatchResult) -> list[ev.AuthRequest]:
        self._refresh()
        accepted: list[tuple[ev.Message, str]] = []
        rows: list[dict[str, Any]] = []
        dead: list[dict[str, Any]] = []
        for item in batch:
            try:
                data = ev.load_json(item.payload)
                msg = ev.from_dict(item.topic, data)
                kind, ident, sub = ev.parse_topic(item.topic)
            except ev.ContractError as exc:
                dead.append(_dead(item, exc.reason))
                continue
            if msg.src == SERVER_SRC:
                continue  # our own auth responses and commands coming back
            machine_id = None
            if kind == "machine":
                machine_id = self._machine_id(ident)
                if machine_id is None:
                    dead.append(_dead(item, f"unknown machine {ident!r}"))
                    continue
                problem = self._owner_problem(msg, ident)
                if problem:
                    dead.append(_dead(item, problem))
                    continue
            elif self._bridges and msg.src != ident:
                dead.append(_dead(item, f"bridge status for {ident!r} sent by {msg.src!r}"))
                continue
            rows.append({"msg_id": msg.msg_id, "topic": item.topic, "kind": sub.replace("/", "_"), "src": msg.src,
                         "machine_id": machine_id, "ts": ev.parse_ts(msg.ts), "received_at": item.received_at,
                         "payload": data})  # as received: it passed validation
            accepted.append((msg, ident))
        if dead:
            db.session.execute(DeadLetter.__table__.insert(), dead)
            result.dead = len(dead)
        fresh = _insert_ignoring_duplicates(rows)
        result.stored = len(fresh)
        result.duplicates = len(rows) - len(fresh)
        auth: list[ev.AuthRequest] = []
        touched: dict[str, sz.SessionChange] = {}
        for msg, ident in accepted:
            if msg.msg_id not in fresh:
                continue  # already processed once: idempotent
            if isinstance(msg, ev.AuthRequest):
                auth.append(msg)
                continue
            if isinstance(msg, ev.BridgeStatus):
                self._bridge_status(msg, now)
                continue
            if isinstance(msg, ev.MachineStatus):
                machine = db.session.get(Machine, self._machines[ident])
                if machine is not None:
                    usage_service.set_live_state(machine, msg.state, ev.parse_ts(msg.ts),
                                                 msg.job.progress if msg.job else None,
                                                 msg.job.file if msg.job else None)
            obs = _observation(msg)
            if obs is not None:
                for change in self.sessionizer.feed(obs):
                    touched[change.span.key] = change
        self._apply(touched.values(), now)
        return auth

    def _bridge_status(self, msg: ev.BridgeStatus, now: datetime) -> None:
        bridge = db.session.scalar(select(Bridge).where(Bridge.bridge_id == msg.bridge_id))
        if bridge is None:
            return
        bridge.online = msg.online
        bridge.last_seen_at = ev.parse_ts(msg.ts)
        if not msg.online:
            # The Last Will: the machines behind this bridge are offline now, and their use stops here.
            for m in bridge.machines:
                usage_service.set_live_state(m, "offline", ev.parse_ts(msg.ts))
                obs = sz.Observation(kind="status", ts=ev.parse_ts(msg.ts), machine=m.slug, state="offline",
                                     msg_id=f"{msg.msg_id}:{m.slug}")
                self._apply(self.sessionizer.feed(obs), now)

    def _apply(self, changes: Any, now: datetime) -> None:
        secret = self.app.config["SECRET_KEY"]
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
                usage_service.apply_span(change.span, machine, now, secret)

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
        """Timed work: session timeouts, no-shows, maintenance due, request windows and offers."""
        now = now or utcnow()
        with self.app.app_context():
            try:
                begin_write()
                self._refresh()
                self._apply(self.sessionizer.tick(now), now)
                db.session.commit()
                usage_service.record_no_shows(now)
                usage_service.raise_due_maintenance(now)
                usage_service.prune_telemetry(now, self.app.config["FABLAB_TELEMETRY_DAYS"])
                from ..services import scheduling

                scheduling.run_due_jobs(now)
            except Exception:
                db.session.rollback()
                log.exception("timed jobs failed; will retry")
            finally:
                db.session.remove()


def _dead(item: Incoming, reason: str) -> dict[str, Any]:
    return {"topic": item.topic[:512], "payload": item.payload.decode("utf-8", "replace")[:100_000],
            "reason": reason[:500], "received_at": item.received_at, "reviewed": False}


def _observation(msg: ev.Message) -> sz.Observation | None:
    if isinstance(msg, ev.MachineEvent):
        file = (msg.detail or {}).get("file")
        return sz.Observation(kind=msg.type, ts=ev.parse_ts(msg.ts), machine=msg.machine, session_id=msg.session_id,
                              seq=msg.seq, badge=msg.badge.uid if msg.badge else None, energy_wh=msg.energy_wh,
                              job_file=file if isinstance(file, str) else None, msg_id=msg.msg_id)
    if isinstance(msg, ev.MachineStatus):
        return sz.Observation(kind="status", ts=ev.parse_ts(msg.ts), machine=msg.machine, state=msg.state,
                              job_file=msg.job.file if msg.job else None, msg_id=msg.msg_id)
    if isinstance(msg, ev.Telemetry):
        power = msg.readings.get("power_w")
        if isinstance(power, int | float) and not isinstance(power, bool):
            energy = msg.readings.get("energy_wh")
            return sz.Observation(kind="power", ts=ev.parse_ts(msg.ts), machine=msg.machine, power_w=float(power),
                                  energy_wh=float(energy) if isinstance(energy, int | float) else None,
                                  msg_id=msg.msg_id)
    return None


# --- the MQTT side -------------------------------------------------------------------------------------


@dataclass
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> MqttSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"FABLAB_MQTT_URL must be mqtt://[user:pass@]host[:port], got {url!r}")
        tls = parts.scheme in ("mqtts", "ssl")
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883),
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None, tls)


class MqttWorker:
    """A persistent MQTT session (fixed client id, clean start off, QoS 1, manual acks) feeding an
    Ingestor in batches. Several workers share the load with `shared=True` ($share/fablab/...)."""

    def __init__(self, app: Flask, settings: MqttSettings, client_id: str = "fablab-worker",
                 shared: bool = False, batch_max: int = 2000, tick_seconds: float = 15.0) -> None:
        import paho.mqtt.client as mqtt

        self.settings = settings
        self.shared = shared
        self.batch_max = batch_max
        self.tick_seconds = tick_seconds
        self.queue: queue.Queue[Incoming] = queue.Queue()
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.manual_ack_set(True)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(1, 30)
        self.ingestor = Ingestor(app, publish=self._publish)

    @property
    def topic(self) -> str:
        return f"$share/fablab/{ev.PREFIX}/#" if self.shared else f"{ev.PREFIX}/#"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        from paho.mqtt.subscribeoptions import SubscribeOptions

        # noLocal: our own auth responses do not come back (not allowed on shared subscriptions).
        client.subscribe(self.topic, options=SubscribeOptions(qos=1, noLocal=not self.shared))
        self.connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.settings.host, self.settings.port, self.topic)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        self.connected.clear()
        if not self.stop_event.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.queue.put(Incoming(msg.topic, msg.payload, msg.mid, msg.qos))

    def _publish(self, message: ev.Message) -> None:
        self.client.publish(message.topic(), ev.encode(message), qos=message.QOS, retain=message.RETAIN)

    def start(self) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # the broker keeps our queue for a week of downtime
        self.client.connect_async(self.settings.host, self.settings.port, keepalive=30, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def run(self, warm_up: bool = True) -> None:
        """Process until stop(); call from the main thread of `fablab worker`."""
        if warm_up:
            n = self.ingestor.warm_up()
            log.info("sessionizer rebuilt from %d stored observations", n)
        self.start()
        next_tick = time.monotonic()
        while not self.stop_event.is_set():
            batch = self._drain(timeout=0.5)
            if batch:
                self._handle(batch)
            if time.monotonic() >= next_tick:
                self.ingestor.tick()
                next_tick = time.monotonic() + self.tick_seconds
        self.client.disconnect()
        self.client.loop_stop()

    def _drain(self, timeout: float) -> list[Incoming]:
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < self.batch_max:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[Incoming]) -> None:
        for attempt in range(1, 1_000_000):
            try:
                self.ingestor.process(batch)
                break
            except Exception:  # noqa: BLE001 - e.g. the database is away: keep the batch, retry, never ack
                delay = min(30.0, 0.5 * 2 ** min(attempt, 6))
                log.exception("could not store a batch of %d messages; retrying in %.1f s", len(batch), delay)
                if self.stop_event.wait(delay):
                    return  # unacknowledged: the broker redelivers them to the next worker
        for item in batch:
            if item.qos > 0:
                self.client.ack(item.mid, item.qos)

    def stop(self) -> None:
        self.stop_event.set()

