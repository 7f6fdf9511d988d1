"""One machine: its serial port (or power plug), sessions, lock and badge authorization.

The codecs in ``devices`` say what the firmware did; this module turns their observations into contract
messages. Sessions: a badge allowed by the server opens one; a job seen without an open session opens
one implicitly; a session ends on ``lock``, on a check-out scan by the same badge, or after
``session_idle_s`` without a job. ``seq`` increases per machine and survives restarts (SQLite).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import select
import threading
import time
from collections import deque
from typing import Any

import serial

from devices import events
from devices.adapters import MoonrakerAdapter, OctoPrintAdapter
from devices.grbl import STATUS_INTERVAL_MIN, GrblCodec
from devices.marlin import MarlinCodec
from devices.observations import (
    Fault,
    Firmware,
    JobFinished,
    JobStarted,
    Observation,
    Reading,
    Rejected,
    StateChanged,
)
from devices.passthrough import GrblStatusFilter, PtyPort, TcpPort
from devices.power_plug import (
    PowerUseDetector,
    parse_shelly,
    parse_tasmota,
    shelly_switch,
    shelly_topics,
    tasmota_switch,
    tasmota_topics,
)
from devices.rfid import BadgeScan, Rdm6300Parser, WedgeReader
from fablab_bridge import clean
from fablab_bridge.config import MachineConfig
from fablab_bridge.marlin_serial import run_marlin
from fablab_bridge.mqtt_link import MqttLink
from fablab_bridge.port_task import PortTask
from fablab_bridge.store import Store

log = logging.getLogger(__name__)


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    """Readings since the last telemetry message, newest winning: nested ones merged, so a print server
    that reports one heater per message keeps every heater's latest temperature."""
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = dict(into[key])
            _merge(into[key], value)
        else:
            into[key] = value


class MachineRunner:
    def __init__(self, cfg: MachineConfig, bridge_id: str, link: MqttLink, store: Store) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.src = bridge_id
        self.link = link
        self.store = store
        self.ms = store.machine_state(cfg.id)
        self.lock = threading.RLock()
        self.adapter = (
            OctoPrintAdapter(cfg.source or "octoPrint") if cfg.driver == "octoprint"
            else MoonrakerAdapter(cfg.source or "") if cfg.driver == "moonraker"
            else None
        )
        if self.adapter and self.ms.job_open:
            self.adapter.state = "printing"  # a print that was running when the bridge stopped
        # machines seen only through MQTT (plug, print server) are online with the bridge
        self.online = cfg.driver in ("power_plug", "octoprint", "moonraker")
        self.state = "idle" if self.online else "offline"
        self.locked = cfg.start_locked
        self._lock_pending = False
        self.fw: events.FirmwareInfo | None = None
        self.job_file: str | None = None
        self.progress: float | None = None
        self._codec: MarlinCodec | GrblCodec | None = None
        self._connected_at = 0.0
        self._last_activity = time.monotonic()
        self._telemetry: dict[str, Any] = {}
        self._last_telemetry = 0.0
        self._published_progress: float | None = None
        self._dropped_readings: set[str] = set()  # names already logged as not sendable
        self._commands: deque[str] = deque()  # lines for the serial thread to send (Marlin)
        self._resumable = False  # a job was cut off by port loss: one seen running next is its resumption
        self._sender_errors: list[str] = []  # the G-code sender's refused lines during the open job
        self.sender_line = 0  # Marlin pass-through: the sender's own line number, kept across reconnects
        self.port_task: PortTask | None = None  # an SD upload or streamed print: the port is its alone
        self.job_extra: dict[str, Any] = {}  # a queued job's id, added to its job_started/job_finished
        self._auth_waiters: dict[str, list[Any]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._detector = (
            PowerUseDetector(cfg.plug.threshold_w, cfg.plug.min_on_s, cfg.plug.min_off_s)
            if cfg.driver == "power_plug" and cfg.plug
            else None
        )
        # the G-code sender's side of a shared GRBL port: a pty or a TCP listener (config allows one)
        self.passthrough: PtyPort | TcpPort | None = (
            PtyPort(cfg.passthrough) if cfg.passthrough
            else TcpPort(*cfg.passthrough_tcp) if cfg.passthrough_tcp
            else None
        )
        self._passthrough_open = False
        self._wire_mqtt()

    # ================================================================================ lifecycle
    def _wire_mqtt(self) -> None:
        self.link.subscribe(events.machine_topic(self.id, "cmd"), self.handle_cmd)
        self.link.subscribe(events.machine_topic(self.id, "auth/response"), self.handle_auth_response)
        if self.cfg.plug:
            p = self.cfg.plug
            for topic in tasmota_topics(p.device) if p.kind == "tasmota" else shelly_topics(p.device):
                self.link.subscribe(topic, self.handle_plug)
        if self.adapter:
            for topic in self.adapter.topics():
                self.link.subscribe(topic, self.handle_print_server)
        self.link.on_connected(self.publish_status)

    def open_passthrough(self) -> None:
        """Create the pty or bind the TCP port; OSError (address in use, no permission) is left to the
        caller, so the daemon can stop with a clear message before anything runs."""
        if self.passthrough and not self._passthrough_open:
            where = self.passthrough.open()
            self._passthrough_open = True
            log.info("%s: G-code sender pass-through on %s", self.id, where)

    def start(self) -> None:
        self.open_passthrough()
        targets = [self._housekeeping]
        if self.cfg.driver in ("marlin", "grbl"):
            targets.append(self._serial_loop)
        if self.cfg.badge:
            targets.append(self._badge_loop)
        for target in targets:
            t = threading.Thread(target=target, name=f"{self.id}-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.name.endswith("_badge_loop"):
                continue  # may block in open() on a FIFO; it is a daemon thread
            t.join(timeout=3)
        if self.passthrough:
            self.passthrough.close()
            self._passthrough_open = False

    # ================================================================================ publishing
    def status_message(self) -> events.MachineStatus:
        with self.lock:
            state = self.state if self.online else "offline"
            if self.locked and state == "idle":
                state = "locked"
            job = None
            if self.ms.job_open:
                job = events.JobInfo(file=clean.file_name(self.job_file), progress=clean.progress(self.progress))
            return events.MachineStatus(src=self.src, machine=self.id, state=state, job=job, fw=self.fw)

    def publish_status(self) -> None:
        msg = self.status_message()
        self._published_progress = msg.job.progress if msg.job else None
        self.link.publish_now(msg)

    def _emit(self, etype: str, *, before=None, after=None, **fields: Any) -> events.MachineEvent | None:  # noqa: ANN001
        """Append one event to the outbox atomically with the machine state it changes. Its texts and
        numbers are cleaned to the contract first; one the contract still refuses is logged and dropped,
        leaving the machine state as it was (the machine loop carries on)."""
        built: list[events.MachineEvent] = []
        if "reason" in fields:
            fields["reason"] = clean.text(fields["reason"], clean.LIMITS["reason"])
        if "detail" in fields:
            fields["detail"] = clean.detail(fields["detail"])
        if "energy_wh" in fields:
            fields["energy_wh"] = clean.number(fields["energy_wh"])
        saved = dataclasses.replace(self.ms)

        def build(seq: int) -> tuple[str, bytes]:
            if before:
                before(self.ms)
            msg = events.MachineEvent(
                src=self.src, machine=self.id, type=etype, session_id=self.ms.session_id, seq=seq, **fields
            )
            if after:
                after(self.ms)
            built.append(msg)
            return msg.topic(), events.encode(msg)

        try:
            self.store.append_event(self.id, self.ms, build)
        except (ValueError, TypeError) as exc:  # events.ContractError is a ValueError
            vars(self.ms).update(vars(saved))
            log.error("%s: event %s not sent, the contract refuses it: %s", self.id, etype,
                      getattr(exc, "reason", exc))
            return None
        log.info("%s: event %s seq=%s", self.id, etype, built[-1].seq)
        return built[-1]

    def _start_session(self, badge: dict | None = None) -> None:
        def open_session(st: Any) -> None:
            st.session_id, st.session_badge = events.new_msg_id(), badge

        b = events.Badge(**badge) if badge else None
        self._emit("session_started", before=open_session, badge=b)
        self._last_activity = time.monotonic()

    def _end_session(self, reason: str) -> None:
        if self.ms.session_id is None:
            return

        def close(st: Any) -> None:
            st.session_id, st.session_badge = None, None

        self._emit("session_ended", after=close, reason=reason)

    # ================================================================================ observations
    def observe(self, observations: list[Observation]) -> None:
        """Apply codec observations (public so tests and adapters can feed a runner directly)."""
        if not observations:
            return
        with self.lock:
            status_dirty = False
            for obs in observations:
                if isinstance(obs, Reading):
                    _merge(self._telemetry, obs.values)
                    if "progress" in obs.values:
                        self.progress = clean.progress(obs.values["progress"])
                elif isinstance(obs, StateChanged):
                    self.state = obs.state
                    status_dirty = True
                elif isinstance(obs, JobStarted):
                    self.job_file = clean.file_name(obs.file)
                    self.progress = 0.0 if self.cfg.driver == "marlin" else None
                    if not self.ms.job_open:
                        if self.ms.session_id is None:
                            self._start_session()
                        detail: dict[str, Any] | None = {"file": self.job_file} if self.job_file else None
                        if self._resumable:  # still running after the port came back
                            detail = (detail or {}) | {"resumed": True}
                        if self.job_extra:
                            detail = (detail or {}) | self.job_extra
                        self._resumable = False
                        self._sender_errors = []

                        def open_job(st: Any) -> None:
                            st.job_open = True

                        self._emit("job_started", after=open_job, detail=detail)
                    status_dirty = True
                elif isinstance(obs, JobFinished):
                    self._finish_job(obs.reason, obs.energy_wh, obs.file)
                    status_dirty = True
                elif isinstance(obs, Rejected):
                    if self.ms.job_open and len(self._sender_errors) < 1000:
                        self._sender_errors.append(obs.code)  # the sender's business: job detail only
                elif isinstance(obs, Fault):
                    detail = {"message": obs.detail} if obs.detail else None
                    self._emit("error", reason=obs.reason, detail=detail)
                elif isinstance(obs, Firmware):
                    self.fw = events.FirmwareInfo(name=clean.text(obs.name, clean.LIMITS["fw.name"]) or "",
                                                  caps=clean.caps(obs.caps))
                    status_dirty = True
            if status_dirty:
                self.publish_status()

    def _finish_job(self, reason: str, energy_wh: float | None = None, file: str | None = None) -> None:
        if not self.ms.job_open:
            return

        def close_job(st: Any) -> None:
            st.job_open = False

        file = clean.file_name(file) or self.job_file
        detail: dict[str, Any] = {"file": file} if file else {}
        if self._sender_errors:
            detail |= {"sender_errors": len(self._sender_errors), "last_sender_error": self._sender_errors[-1]}
            self._sender_errors = []
        detail |= self.job_extra
        self.job_extra = {}
        self._emit("job_finished", after=close_job, reason=reason, energy_wh=energy_wh, detail=detail or None)
        self.job_file, self.progress = None, None
        self._telemetry.pop("progress", None)
        self._last_activity = time.monotonic()
        if self._lock_pending:
            self._lock_pending = False
            self._apply_lock(True)
            self._end_session("locked")

    def _set_online(self, online: bool) -> None:
        with self.lock:
            if online != self.online:
                self.online = online
                if not online:
                    self.state = "offline"
                self._connected_at = time.monotonic()
                self.publish_status()

    def _housekeeping(self) -> None:
        while not self._stop.wait(0.1):
            now = time.monotonic()
            with self.lock:
                if self._telemetry and now - self._last_telemetry >= self.cfg.telemetry_interval:
                    readings = self._clean_readings()
                    self._telemetry.clear()
                    self._last_telemetry = now
                    if readings:
                        self.link.publish_now(events.Telemetry(src=self.src, machine=self.id, readings=readings))
                    if self.progress != self._published_progress and self.ms.job_open:
                        self.publish_status()
                codec = self._codec
                if self.ms.session_id and not self.ms.job_open and now - self._last_activity > self.cfg.session_idle_s:
                    self._end_session("idle")
                # a job remembered from before a bridge restart that the controller no longer reports
                # once we have heard from it for a while
                settle = self.cfg.boot_wait + 3 * self.cfg.poll_interval + self.cfg.ack_timeout
                if self._resumable and self.online and now - self._connected_at > settle:
                    self._resumable = False  # back, and not running what the loss cut off
                if (
                    self.ms.job_open
                    and self.online
                    and self.port_task is None  # a streamed print: the stream says when it ends
                    and codec is not None
                    and not codec.in_job
                    and now - self._connected_at > settle
                ):
                    self._finish_job("lost")
                    self.publish_status()

    def _clean_readings(self) -> dict[str, Any]:
        readings, dropped = clean.readings(self._telemetry)
        for name in dropped:
            if name not in self._dropped_readings and len(self._dropped_readings) < 1000:
                self._dropped_readings.add(name)
                log.info("%s: telemetry %s not sent: not a finite number or beyond the contract's limits "
                         "(logged once)", self.id, name)
        return readings

    # ================================================================================ serial
    def _serial_loop(self) -> None:
        backoff = self.cfg.reconnect_min
        while not self._stop.is_set():
            try:
                ser = serial.Serial(self.cfg.port, self.cfg.baud, timeout=0.05, write_timeout=2)
            except (serial.SerialException, OSError, ValueError) as exc:
                log.debug("%s: cannot open %s: %s", self.id, self.cfg.port, exc)
                self._set_online(False)
                self._stop.wait(backoff)
                backoff = min(self.cfg.reconnect_max, backoff * 2)
                continue
            backoff = self.cfg.reconnect_min
            log.info("%s: opened %s", self.id, self.cfg.port)
            try:
                if self.cfg.driver == "marlin":
                    run_marlin(self, ser)
                else:
                    self._run_grbl(ser)
            except (serial.SerialException, OSError) as exc:
                log.warning("%s: serial port lost: %s", self.id, exc)
                self._port_lost()
            finally:
                with contextlib.suppress(Exception):
                    ser.close()
                if isinstance(self.passthrough, TcpPort):
                    # the controller resets when it comes back: the sender's streaming state is void,
                    # and a closed connection tells it so (a pty cannot be hung up on its client)
                    self.passthrough.disconnect("controller lost")
                self._codec = None
                self._set_online(False)
                task, self.port_task = self.port_task, None
                if task is not None:
                    task.end("the serial port was lost")

    def run_port_task(self, task: PortTask) -> None:
        """Hand ``task`` to the serial thread and wait for it to end (``task.error`` says how)."""
        with self.lock:
            if self.cfg.driver not in ("marlin", "grbl"):
                task.end(f"driver {self.cfg.driver} has no serial port")
            elif not self.online:
                task.end("the machine is offline (serial port not open)")
            elif self.ms.job_open:  # e.g. a pass-through sender's print: never cut into it
                task.end("the machine is running a job; try again when it is idle")
            elif self.port_task is not None:
                task.end("the serial port is busy with another transfer")
            else:
                self.port_task = task
        task.wait()

    def _port_lost(self) -> None:
        """The cable is out (or the board died): what ran on it ends now, at the time of loss, not when (or
        if) the port returns. A job the firmware turns out to be still running then is a new job (with
        ``resumed`` in its detail) in a new session."""
        with self.lock:
            if self.ms.job_open:
                self._resumable = True
                self._finish_job("lost")
            self._end_session("lost")

    def _run_grbl(self, ser: serial.Serial) -> None:
        codec, filt = GrblCodec(), GrblStatusFilter()
        self._codec = codec
        interval = max(STATUS_INTERVAL_MIN, self.cfg.poll_interval)
        sender = self.passthrough  # PtyPort or TcpPort: same interface
        fd = ser.fileno()
        opened = next_poll = time.monotonic()
        had_sender = asked_version = False
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                ser.write(filt.inject_query(now))
                next_poll = now + interval
            if (not asked_version and codec.firmware is None and now - opened > self.cfg.boot_wait
                    and not (sender and sender.connected())):
                # no banner: a controller that does not reset on open (or it was missed); ask, while no
                # sender can take the replies for its own
                asked_version = True
                ser.write(filt.inject_line(b"$I\n", now))
            task = self.port_task
            if task is not None and not task.begun.is_set() and not filt.own_pending:
                task.begin(now)
            active = task is not None and task.begun.is_set()
            watch = [fd] + (sender.fds() if sender and not active else [])
            ready, _, _ = select.select(watch, [], [], max(0.0, min(0.05, next_poll - now)))
            if fd in ready:
                data = os.read(fd, 4096)
                if not data:
                    raise serial.SerialException("device disconnected")
                to_sender, lines = filt.from_controller(data, time.monotonic())
                if sender and to_sender and sender.connected() and not active:
                    sender.write(to_sender, timeout=0.05)
                for line in lines:
                    if active and task is not None:
                        task.feed(line, now)
                    self.observe(codec.feed(line))
                if not self.online and codec.grbl_state is not None:
                    with self.lock:  # online once its state is known, and published with it
                        self.state = codec.state
                    self._set_online(True)
            if active and task is not None:
                self._grbl_task_step(task, ser, time.monotonic())
            elif sender:
                data = sender.service(ready)
                if data:
                    ser.write(filt.from_sender(data))
                has_sender = sender.connected()
                if had_sender and not has_sender:
                    filt.sender_gone()
                had_sender = has_sender

    def _grbl_task_step(self, task: PortTask, ser: serial.Serial, now: float) -> None:
        for raw in task.next_lines(now):
            ser.write(raw.encode())
        if task.done:
            if task.stream.failed:
                # stop the motion still queued: feed hold, then soft reset (GRBL goes to Alarm if moving)
                self.observe([JobFinished(reason="cancelled" if task.stream.cancelled else "error",
                                          file=task.file)])
                ser.write(b"!")
                time.sleep(0.2)
                ser.write(b"\x18")
            self.port_task = None
            task.end()

    # ================================================================================ print servers
    def handle_print_server(self, topic: str, payload: bytes) -> None:
        assert self.adapter is not None
        self.observe(self.adapter.feed(topic, payload))

    # ================================================================================ plug
    def handle_plug(self, topic: str, payload: bytes) -> None:
        p = self.cfg.plug
        assert p is not None
        reading = parse_tasmota(topic, payload) if p.kind == "tasmota" else parse_shelly(topic, payload)
        if reading is None or self._detector is None:
            return
        power_w = clean.number(reading.power_w)
        if power_w is None:  # a NaN would poison the energy sum for good
            return
        self.observe(self._detector.feed(float(power_w), time.monotonic()))

    def _switch_plug(self, on: bool) -> None:
        p = self.cfg.plug
        if p is None:
            return
        topic, payload = tasmota_switch(p.device, on) if p.kind == "tasmota" else shelly_switch(p.device, on)
        self.link.publish_raw(topic, payload)

    # ================================================================================ lock, commands
    def _apply_lock(self, locked: bool) -> None:
        if self.cfg.lock == "plug":
            self._switch_plug(not locked)
        elif self.cfg.lock == "firmware" and self.cfg.driver == "marlin":
            self._commands.append("M117 Locked - scan badge" if locked else "M117 Ready")

    def lock_machine(self, reason: str = "locked") -> None:
        with self.lock:
            self.locked = True
            if self.ms.job_open:
                self._lock_pending = True  # never cut power under a running job
            else:
                self._apply_lock(True)
                self._end_session(reason)
            self.publish_status()

    def unlock_machine(self) -> None:
        with self.lock:
            self.locked = False
            self._lock_pending = False
            self._apply_lock(False)
            self._last_activity = time.monotonic()
            self.publish_status()

    def power_off(self) -> None:
        with self.lock:
            if self.cfg.plug:
                self._switch_plug(False)
            elif self.cfg.driver == "marlin":
                self._commands.append("M81")

    def handle_cmd(self, topic: str, payload: bytes) -> None:
        try:
            msg = events.decode(topic, payload)
        except events.ContractError as exc:
            log.warning("%s: ignoring malformed cmd: %s", self.id, exc.reason)
            return
        assert isinstance(msg, events.Command)
        log.info("%s: cmd %s from %s", self.id, msg.action, msg.src)
        {"lock": self.lock_machine, "unlock": self.unlock_machine, "power_off": self.power_off}[msg.action]()

    # ================================================================================ badges
    def handle_auth_response(self, topic: str, payload: bytes) -> None:
        try:
            msg = events.decode(topic, payload)
        except events.ContractError as exc:
            log.warning("%s: ignoring malformed auth response: %s", self.id, exc.reason)
            return
        assert isinstance(msg, events.AuthResponse)
        waiter = self._auth_waiters.get(msg.request_id)
        if waiter is not None:
            waiter[1] = msg
            waiter[0].set()

    def badge_scanned(self, scan: BadgeScan) -> bool:
        """Ask the server whether ``scan`` may use the machine; unlock and open a session on ``allow``
        within ``auth_timeout``. A scan by the holder of the open session (no job running) checks out."""
        uid = clean.badge_uid(scan.uid)
        if uid is None:
            log.warning("%s: badge denied: its UID (%d characters) cannot be sent", self.id, len(scan.uid or ""))
            return False
        badge = {"tech": clean.text(scan.tech, clean.LIMITS["badge.tech"]) or "unknown", "uid": uid}
        with self.lock:
            if self.ms.session_id and self.ms.session_badge == badge and not self.ms.job_open:
                self._end_session("checkout")
                self.lock_machine("checkout")
                return False
        req = events.AuthRequest(src=self.src, machine=self.id, badge=events.Badge(**badge))
        waiter: list[Any] = [threading.Event(), None]
        self._auth_waiters[req.msg_id] = waiter
        try:
            if not self.link.publish_now(req):
                log.warning("%s: broker unreachable, badge %s not authorized", self.id, uid)
                return False
            waiter[0].wait(self.cfg.auth_timeout)
        finally:
            self._auth_waiters.pop(req.msg_id, None)
        resp: events.AuthResponse | None = waiter[1]
        if resp is None or resp.decision != "allow":
            log.info("%s: badge %s denied (%s)", self.id, uid, resp.reason if resp else "timeout")
            return False
        with self.lock:
            if not self.ms.job_open:
                self._end_session("new_badge")
                self._start_session(badge)
            self.unlock_machine()
        return True

    def _badge_loop(self) -> None:
        b = self.cfg.badge
        assert b is not None
        while not self._stop.is_set():
            try:
                if b.reader == "rdm6300":
                    parser = Rdm6300Parser(b.debounce_s)
                    with serial.Serial(b.port, b.baud, timeout=0.1) as port:
                        while not self._stop.is_set():
                            for scan in parser.feed(port.read(64), time.monotonic()):
                                self.badge_scanned(scan)
                else:
                    reader = WedgeReader(b.debounce_s)
                    with open(b.port, encoding="utf-8", errors="replace") as stream:
                        for line in stream:
                            if self._stop.is_set():
                                return
                            maybe_scan = reader.feed_line(line, time.monotonic())  # None while debounced
                            if maybe_scan:
                                self.badge_scanned(maybe_scan)
            except (serial.SerialException, OSError) as exc:
                log.debug("%s: badge reader %s: %s", self.id, b.port, exc)
            self._stop.wait(1.0)
