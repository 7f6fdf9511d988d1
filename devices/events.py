"""The MQTT wire contract (v1) as code: payload dataclasses, JSON encode/decode, topics, ids.

Shared by the bridge, the server worker and the tests, so it imports the standard library only.

Every payload is a JSON object with ``v`` (1), ``msg_id`` (a ULID), ``ts`` (ISO 8601 UTC) and ``src``
(the sender's id). ``decode(topic, payload)`` returns one of the message dataclasses below or raises
``ContractError`` with a reason that can be stored as a dead letter.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, TypedDict, TypeVar, overload

from .msg_ids import new_msg_id as new_msg_id  # ids and timestamps, re-exported
from .msg_ids import ulid_time as ulid_time
from .msg_ids import utc_now_iso as utc_now_iso

VERSION = 1
PREFIX = "fablab/v1"

MACHINE_STATES = frozenset({"offline", "idle", "busy", "printing", "paused", "alarm", "error", "locked"})
EVENT_TYPES = frozenset({"session_started", "session_ended", "job_started", "job_finished", "error"})
DECISIONS = frozenset({"allow", "deny"})
ACTIONS = frozenset({"lock", "unlock", "power_off"})
MACHINE_SUBTOPICS = ("status", "event", "telemetry", "auth/request", "auth/response", "cmd",
                     "job/offer", "job/start", "job/withdraw", "job/progress", "job/result")
TRANSFERS = frozenset({"sd", "stream", "octoprint", "moonraker"})
JOB_PHASES = frozenset({"download", "transfer", "print"})
JOB_RESULTS = frozenset({"ready", "started", "failed", "withdrawn"})
ENVELOPE_KEYS = ("v", "msg_id", "ts", "src")

# Subscriptions a consumer typically needs.
ALL_MACHINES = f"{PREFIX}/machine/+/#"
ALL_BRIDGES = f"{PREFIX}/bridge/+/status"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

# Bounds every producer and consumer keeps, so a payload always fits the server's columns and parser.
MAX_PAYLOAD = 64 * 1024  # bytes of one payload
MAX_DEPTH = 16  # nesting of JSON objects and arrays
MAX_INT = 2**63 - 1  # integers beyond a signed 64-bit column are refused
LIMITS: dict[str, int] = {
    "msg_id": 64, "session_id": 128, "badge.tech": 32, "badge.uid": 64, "job.file": 255, "fw.name": 100,
    "reason": 500, "detail": 4096, "readings": 64, "reading.name": 64, "reading.text": 255,
    "job_id": 64, "file_url": 2048, "by": 160,
}


class ContractError(ValueError):
    """A message or topic that does not follow the contract; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------------- time

def parse_ts(value: str) -> datetime:
    """Parse an ISO 8601 timestamp with an offset (``Z`` allowed) into an aware datetime."""
    if not isinstance(value, str):
        raise ContractError("ts: must be a string")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ContractError(f"ts: not ISO 8601: {value!r}") from None
    if dt.tzinfo is None:
        raise ContractError(f"ts: missing UTC offset: {value!r}")
    return dt


# ---------------------------------------------------------------------------------------------- payloads


@dataclass(kw_only=True)
class Badge:
    tech: str  # e.g. "em4100" (RDM6300), "wedge", "mifare"
    uid: str


@dataclass(kw_only=True)
class JobInfo:
    file: str | None = None
    progress: float | None = None  # 0.0 .. 1.0


@dataclass(kw_only=True)
class FirmwareInfo:
    name: str
    caps: dict[str, bool] = field(default_factory=dict)


@dataclass(kw_only=True)
class Message:
    """Envelope fields common to every payload. ``src`` is the sender's id (bridge id, "server")."""

    src: str
    msg_id: str = field(default_factory=new_msg_id)
    ts: str = field(default_factory=utc_now_iso)
    v: int = VERSION

    SUBTOPIC: ClassVar[str] = ""
    QOS: ClassVar[int] = 1
    RETAIN: ClassVar[bool] = False

    def topic(self) -> str:
        raise NotImplementedError


@dataclass(kw_only=True)
class BridgeStatus(Message):
    """``bridge/{bridge_id}/status`` (retained, also the Last Will)."""

    bridge_id: str
    online: bool
    SUBTOPIC: ClassVar[str] = "status"
    RETAIN: ClassVar[bool] = True

    def topic(self) -> str:
        return bridge_topic(self.bridge_id)


@dataclass(kw_only=True)
class MachineMessage(Message):
    machine: str  # from the topic, not serialized in the payload

    def topic(self) -> str:
        return machine_topic(self.machine, self.SUBTOPIC)


@dataclass(kw_only=True)
class MachineStatus(MachineMessage):
    """``machine/{machine}/status`` (retained)."""

    state: str
    job: JobInfo | None = None
    fw: FirmwareInfo | None = None
    SUBTOPIC: ClassVar[str] = "status"
    RETAIN: ClassVar[bool] = True


@dataclass(kw_only=True)
class MachineEvent(MachineMessage):
    """``machine/{machine}/event``. ``seq`` increases per machine across sessions and bridge restarts;
    ``session_id`` may be None only for ``error`` events outside a session.

    Reasons and details the bridge sends (informative; consumers must accept others): ``job_finished``
    reason done, cancelled, stopped, reset, alarm, error, lost (the serial port went away: sent at the
    time of loss, followed by ``session_ended`` reason lost); ``session_ended`` reason idle, locked,
    checkout, new_badge, lost. ``job_started`` detail ``{"file"?, "resumed": true}`` when the firmware was
    still running a job after the port came back (a new session: the gap is not use). ``job_finished``
    detail ``{"file"?, "sender_errors": n, "last_sender_error": "error:22"}`` counts a G-code sender's
    refused lines during the job; a sender's replies are never ``error`` events. Queued prints add ``job_id``.
    """

    type: str
    session_id: str | None
    seq: int
    badge: Badge | None = None
    energy_wh: float | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None
    SUBTOPIC: ClassVar[str] = "event"


@dataclass(kw_only=True)
class Telemetry(MachineMessage):
    """``machine/{machine}/telemetry`` (QoS 0). ``readings`` are flattened into the payload."""

    readings: dict[str, Any] = field(default_factory=dict)
    SUBTOPIC: ClassVar[str] = "telemetry"
    QOS: ClassVar[int] = 0


@dataclass(kw_only=True)
class AuthRequest(MachineMessage):
    badge: Badge
    SUBTOPIC: ClassVar[str] = "auth/request"


@dataclass(kw_only=True)
class AuthResponse(MachineMessage):
    request_id: str
    decision: str
    reason: str | None = None
    booking_id: int | str | None = None
    valid_until: str | None = None  # ISO 8601
    SUBTOPIC: ClassVar[str] = "auth/response"


@dataclass(kw_only=True)
class Command(MachineMessage):
    action: str
    SUBTOPIC: ClassVar[str] = "cmd"


@dataclass(kw_only=True)
class JobOffer(MachineMessage):
    """``machine/{machine}/job/offer`` (server -> bridge): a queued print is due on this machine. The bridge
    downloads ``file_url`` (a one-time URL on the server), checks ``size`` and ``sha256``, transfers it by
    ``transfer`` and answers ``job/result`` ready (or failed). It never starts the print on its own."""

    job_id: str
    file_url: str
    name: str
    size: int
    sha256: str
    transfer: str
    SUBTOPIC: ClassVar[str] = "job/offer"


@dataclass(kw_only=True)
class JobStart(MachineMessage):
    """``machine/{machine}/job/start`` (server -> bridge): the member confirmed at the machine (badge at its
    reader, or the kiosk beside it) after checking the bed; ``by`` is who (a label for the bridge's log)."""

    job_id: str
    by: str
    SUBTOPIC: ClassVar[str] = "job/start"


@dataclass(kw_only=True)
class JobWithdraw(MachineMessage):
    """``machine/{machine}/job/withdraw`` (server -> bridge): drop an offered job (booking cancelled...)."""

    job_id: str
    reason: str | None = None
    SUBTOPIC: ClassVar[str] = "job/withdraw"


@dataclass(kw_only=True)
class JobProgress(MachineMessage):
    """``machine/{machine}/job/progress`` (bridge -> server, QoS 0): ``done`` of ``total`` bytes in ``phase``."""

    job_id: str
    phase: str
    done: int
    total: int
    SUBTOPIC: ClassVar[str] = "job/progress"
    QOS: ClassVar[int] = 0


@dataclass(kw_only=True)
class JobResult(MachineMessage):
    """``machine/{machine}/job/result`` (bridge -> server): ready (the file is on the machine, waiting for the
    member there), started, failed (``reason``) or withdrawn (dropped on the server's word). The print's
    own start and end still come as ``job_started``/``job_finished`` events; ``detail.job_id`` names the job."""

    job_id: str
    result: str
    reason: str | None = None
    SUBTOPIC: ClassVar[str] = "job/result"


_MACHINE_CLASSES: dict[str, type[MachineMessage]] = {
    cls.SUBTOPIC: cls for cls in (MachineStatus, MachineEvent, Telemetry, AuthRequest, AuthResponse, Command,
                                  JobOffer, JobStart, JobWithdraw, JobProgress, JobResult)
}

# ---------------------------------------------------------------------------------------------- topics


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ContractError(f"{what}: invalid id {value!r} (letters, digits, . _ : -; max 128)")
    return value


def bridge_topic(bridge_id: str) -> str:
    return f"{PREFIX}/bridge/{_check_id(bridge_id, 'bridge_id')}/status"


def machine_topic(machine: str, sub: str) -> str:
    if sub not in MACHINE_SUBTOPICS:
        raise ContractError(f"unknown machine subtopic {sub!r}")
    return f"{PREFIX}/machine/{_check_id(machine, 'machine')}/{sub}"


def parse_topic(topic: str) -> tuple[str, str, str]:
    """``"fablab/v1/machine/prusa-1/auth/request"`` -> ``("machine", "prusa-1", "auth/request")``."""
    if not topic.startswith(PREFIX + "/"):
        raise ContractError(f"topic outside {PREFIX}/: {topic!r}")
    parts = topic[len(PREFIX) + 1 :].split("/")
    if len(parts) < 3:
        raise ContractError(f"topic too short: {topic!r}")
    kind, ident, sub = parts[0], parts[1], "/".join(parts[2:])
    _check_id(ident, kind if kind in ("machine", "bridge") else "id")
    if kind == "bridge" and sub == "status":
        return kind, ident, sub
    if kind == "machine" and sub in MACHINE_SUBTOPICS:
        return kind, ident, sub
    raise ContractError(f"unknown topic: {topic!r}")


# ---------------------------------------------------------------------------------------------- encode


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def to_dict(msg: Message) -> dict[str, Any]:
    """The JSON payload of ``msg`` (without the topic-only ``machine``/``bridge_id``)."""
    out: dict[str, Any] = {"v": msg.v, "msg_id": msg.msg_id, "ts": msg.ts, "src": msg.src}
    if isinstance(msg, BridgeStatus):
        out["online"] = msg.online
    elif isinstance(msg, MachineStatus):
        out["state"] = msg.state
        if msg.job is not None:
            out["job"] = _drop_none({"file": msg.job.file, "progress": msg.job.progress})
        if msg.fw is not None:
            out["fw"] = {"name": msg.fw.name, "caps": dict(msg.fw.caps)}
    elif isinstance(msg, MachineEvent):
        out |= {"type": msg.type, "session_id": msg.session_id, "seq": msg.seq}
        if msg.badge is not None:
            out["badge"] = {"tech": msg.badge.tech, "uid": msg.badge.uid}
        out |= _drop_none({"energy_wh": msg.energy_wh, "reason": msg.reason, "detail": msg.detail})
    elif isinstance(msg, Telemetry):
        clash = set(msg.readings) & set(ENVELOPE_KEYS)
        if clash:
            raise ContractError(f"telemetry reading names clash with envelope: {sorted(clash)}")
        out |= msg.readings
    elif isinstance(msg, AuthRequest):
        out["badge"] = {"tech": msg.badge.tech, "uid": msg.badge.uid}
    elif isinstance(msg, AuthResponse):
        out |= {"request_id": msg.request_id, "decision": msg.decision}
        out |= _drop_none({"reason": msg.reason, "booking_id": msg.booking_id, "valid_until": msg.valid_until})
    elif isinstance(msg, Command):
        out["action"] = msg.action
    elif isinstance(msg, JobOffer):
        out |= {"job_id": msg.job_id, "file_url": msg.file_url, "name": msg.name, "size": msg.size,
                "sha256": msg.sha256, "transfer": msg.transfer}
    elif isinstance(msg, JobStart):
        out |= {"job_id": msg.job_id, "by": msg.by}
    elif isinstance(msg, JobWithdraw):
        out |= _drop_none({"job_id": msg.job_id, "reason": msg.reason})
    elif isinstance(msg, JobProgress):
        out |= {"job_id": msg.job_id, "phase": msg.phase, "done": msg.done, "total": msg.total}
    elif isinstance(msg, JobResult):
        out |= _drop_none({"job_id": msg.job_id, "result": msg.result, "reason": msg.reason})
    else:  # pragma: no cover - programming error
        raise TypeError(f"not a contract message: {type(msg).__name__}")
    return out


def encode(msg: Message) -> bytes:
    """Validate ``msg`` (same rules as ``decode``) and return compact UTF-8 JSON."""
    payload = to_dict(msg)
    from_dict(msg.topic(), payload)
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(data) > MAX_PAYLOAD:
        raise ContractError(f"payload: larger than {MAX_PAYLOAD} bytes ({len(data)})")
    return data


# ---------------------------------------------------------------------------------------------- decode

_MISSING = object()
_T = TypeVar("_T")
_U = TypeVar("_U")


class _Envelope(TypedDict):
    msg_id: str
    ts: str
    src: str
    v: int


# `_get` returns the value as the type it was checked against; None only when not `required`.
@overload
def _get(d: dict[str, Any], key: str, types: type[_T], *, required: Literal[True] = ...) -> _T: ...
@overload
def _get(d: dict[str, Any], key: str, types: type[_T], *, required: bool) -> _T | None: ...
@overload
def _get(d: dict[str, Any], key: str, types: tuple[type[_T], type[_U]], *, required: bool = ...) -> _T | _U | None: ...
def _get(d: dict[str, Any], key: str, types: type | tuple[type, ...], *, required: bool = True) -> object:
    value = d.get(key, _MISSING)
    if value is _MISSING or value is None:
        if required:
            raise ContractError(f"{key}: missing")
        return None
    # bool is an int subclass; never accept it where a number is meant
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ContractError(f"{key}: wrong type bool")
    if not isinstance(value, types):
        raise ContractError(f"{key}: wrong type {type(value).__name__}")
    return value


@overload
def _badge(d: dict[str, Any], key: str, *, required: Literal[True]) -> Badge: ...
@overload
def _badge(d: dict[str, Any], key: str, *, required: bool) -> Badge | None: ...
def _badge(d: dict[str, Any], key: str, *, required: bool) -> Badge | None:
    raw = _get(d, key, dict, required=required)
    if raw is None:
        return None
    tech, uid = _text(raw, "tech", "badge.tech", required=True), _text(raw, "uid", "badge.uid", required=True)
    if not tech or not uid:
        raise ContractError(f"{key}: tech and uid must be non-empty")
    return Badge(tech=tech, uid=uid)


@overload
def _text(d: dict[str, Any], key: str, limit: str, *, required: Literal[True]) -> str: ...
@overload
def _text(d: dict[str, Any], key: str, limit: str, *, required: bool = False) -> str | None: ...
def _text(d: dict[str, Any], key: str, limit: str, *, required: bool = False) -> str | None:
    value = _get(d, key, str, required=required)
    if value is not None and len(value) > LIMITS[limit]:
        raise ContractError(f"{limit}: longer than {LIMITS[limit]} characters ({len(value)})")
    return value


def _detail(d: dict[str, Any]) -> dict[str, Any] | None:
    detail = _get(d, "detail", dict, required=False)
    if detail is not None and len(json.dumps(detail)) > LIMITS["detail"]:
        raise ContractError(f"detail: larger than {LIMITS['detail']} bytes as JSON")
    return detail


def _check_readings(readings: dict[str, Any]) -> None:
    if len(readings) > LIMITS["readings"]:
        raise ContractError(f"telemetry: more than {LIMITS['readings']} readings")
    for name, value in readings.items():
        if len(name) > LIMITS["reading.name"]:
            raise ContractError(f"telemetry: reading name longer than {LIMITS['reading.name']} characters")
        if isinstance(value, str) and len(value) > LIMITS["reading.text"]:
            raise ContractError(f"telemetry: {name}: longer than {LIMITS['reading.text']} characters")


def _check_tree(value: Any, depth: int = 0) -> None:
    """Every value is storable anywhere: finite numbers, 64-bit integers, text without NUL or lone
    surrogates (PostgreSQL and UTF-8 refuse them), bounded nesting."""
    if depth > MAX_DEPTH:
        raise ContractError(f"payload: nested deeper than {MAX_DEPTH}")
    if isinstance(value, str):
        _check_str(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            raise ContractError("payload: integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ContractError(f"payload: non-finite number {value!r}")
    elif isinstance(value, dict):
        for k, x in value.items():
            _check_str(k)
            _check_tree(x, depth + 1)
    elif isinstance(value, list | tuple):
        for x in value:
            _check_tree(x, depth + 1)
    else:
        raise ContractError(f"payload: unsupported value of type {type(value).__name__}")


def _check_str(value: str) -> None:
    if "\x00" in value:
        raise ContractError("payload: text contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError("payload: text contains a lone surrogate") from None


def _number(d: dict[str, Any], key: str) -> float | None:
    value = _get(d, key, (int, float), required=False)
    return None if value is None else float(value)


def from_dict(topic: str, d: Any) -> Message:
    """Build the typed message for ``topic`` from a decoded JSON object, validating every field."""
    kind, ident, sub = parse_topic(topic)
    if not isinstance(d, dict):
        raise ContractError("payload: not a JSON object")
    v = _get(d, "v", int)
    if v != VERSION:
        raise ContractError(f"v: unsupported version {v}")
    _check_tree(d)
    msg_id, ts, src = _get(d, "msg_id", str), _get(d, "ts", str), _get(d, "src", str)
    if not msg_id or len(msg_id) > LIMITS["msg_id"]:
        raise ContractError(f"msg_id: must be 1..{LIMITS['msg_id']} chars")
    if not src:
        raise ContractError("src: must be non-empty")
    _check_id(src, "src")
    parse_ts(ts)
    env: _Envelope = {"msg_id": msg_id, "ts": ts, "src": src, "v": v}
    if kind == "bridge":
        return BridgeStatus(bridge_id=ident, online=_get(d, "online", bool), **env)
    cls = _MACHINE_CLASSES[sub]
    if cls is MachineStatus:
        state = _get(d, "state", str)
        if state not in MACHINE_STATES:
            raise ContractError(f"state: unknown {state!r}")
        job_raw = _get(d, "job", dict, required=False)
        job = None
        if job_raw is not None:
            progress = _number(job_raw, "progress")
            if progress is not None and not 0.0 <= progress <= 1.0:
                raise ContractError("job.progress: outside 0..1")
            job = JobInfo(file=_text(job_raw, "file", "job.file"), progress=progress)
        fw_raw = _get(d, "fw", dict, required=False)
        fw = None
        if fw_raw is not None:
            caps = _get(fw_raw, "caps", dict, required=False) or {}
            if not all(isinstance(k, str) and isinstance(x, bool) for k, x in caps.items()):
                raise ContractError("fw.caps: must map names to booleans")
            if len(caps) > LIMITS["readings"] or any(len(k) > LIMITS["reading.name"] for k in caps):
                raise ContractError("fw.caps: too many or too long names")
            fw = FirmwareInfo(name=_text(fw_raw, "name", "fw.name", required=True), caps=caps)
        return MachineStatus(machine=ident, state=state, job=job, fw=fw, **env)
    if cls is MachineEvent:
        etype = _get(d, "type", str)
        if etype not in EVENT_TYPES:
            raise ContractError(f"type: unknown {etype!r}")
        session_id = _text(d, "session_id", "session_id", required=etype != "error")
        seq = _get(d, "seq", int)
        if seq < 0:
            raise ContractError("seq: negative")
        return MachineEvent(
            machine=ident,
            type=etype,
            session_id=session_id,
            seq=seq,
            badge=_badge(d, "badge", required=False),
            energy_wh=_number(d, "energy_wh"),
            reason=_text(d, "reason", "reason"),
            detail=_detail(d),
            **env,
        )
    if cls is Telemetry:
        readings = {k: x for k, x in d.items() if k not in ENVELOPE_KEYS}
        _check_readings(readings)
        return Telemetry(machine=ident, readings=readings, **env)
    if cls is AuthRequest:
        return AuthRequest(machine=ident, badge=_badge(d, "badge", required=True), **env)
    if cls is AuthResponse:
        decision = _get(d, "decision", str)
        if decision not in DECISIONS:
            raise ContractError(f"decision: unknown {decision!r}")
        valid_until = _get(d, "valid_until", str, required=False)
        if valid_until is not None:
            parse_ts(valid_until)
        return AuthResponse(
            machine=ident,
            request_id=_get(d, "request_id", str),
            decision=decision,
            reason=_get(d, "reason", str, required=False),
            booking_id=_get(d, "booking_id", (int, str), required=False),
            valid_until=valid_until,
            **env,
        )
    if cls in (JobOffer, JobStart, JobWithdraw, JobProgress, JobResult):
        return _job_message(cls, ident, d, env)
    action = _get(d, "action", str)
    if action not in ACTIONS:
        raise ContractError(f"action: unknown {action!r}")
    return Command(machine=ident, action=action, **env)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _count(d: dict[str, Any], key: str) -> int:
    value = _get(d, key, int)
    if isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise ContractError(f"{key}: must be a whole number from 0")
    return value


def _job_message(cls: type[MachineMessage], ident: str, d: dict[str, Any], env: _Envelope) -> MachineMessage:
    job_id = _check_id(_text(d, "job_id", "job_id", required=True), "job_id")
    if cls is JobOffer:
        url = _text(d, "file_url", "file_url", required=True)
        if not url.startswith(("http://", "https://")):
            raise ContractError("file_url: must be an http(s) URL")
        transfer = _get(d, "transfer", str)
        if transfer not in TRANSFERS:
            raise ContractError(f"transfer: unknown {transfer!r}")
        sha = _get(d, "sha256", str)
        if not _SHA256.match(sha):
            raise ContractError("sha256: must be 64 lower-case hex digits")
        return JobOffer(machine=ident, job_id=job_id, file_url=url, name=_text(d, "name", "job.file", required=True),
                        size=_count(d, "size"), sha256=sha, transfer=transfer, **env)
    if cls is JobStart:
        return JobStart(machine=ident, job_id=job_id, by=_text(d, "by", "by", required=True), **env)
    if cls is JobWithdraw:
        return JobWithdraw(machine=ident, job_id=job_id, reason=_text(d, "reason", "reason"), **env)
    if cls is JobProgress:
        phase = _get(d, "phase", str)
        if phase not in JOB_PHASES:
            raise ContractError(f"phase: unknown {phase!r}")
        done, total = _count(d, "done"), _count(d, "total")
        if done > total:
            raise ContractError("done: more than total")
        return JobProgress(machine=ident, job_id=job_id, phase=phase, done=done, total=total, **env)
    result = _get(d, "result", str)
    if result not in JOB_RESULTS:
        raise ContractError(f"result: unknown {result!r}")
    return JobResult(machine=ident, job_id=job_id, result=result, reason=_text(d, "reason", "reason"), **env)


_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(payload: bytes) -> int:
    """Deepest nesting of objects and arrays, found without parsing (strings skipped)."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(payload):
        tok = m.group()
        if tok in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif tok in (b"]", b"}"):
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ContractError(f"payload: non-finite number {name}")


def load_json(payload: bytes | str, *, allow_nonfinite: bool = False) -> Any:
    """The payload's JSON, or ``ContractError``: size and nesting are bounded before parsing, and NaN or
    Infinity are refused unless ``allow_nonfinite`` (a consumer that cleans them itself)."""
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_PAYLOAD:
        raise ContractError(f"payload: larger than {MAX_PAYLOAD} bytes ({len(raw)})")
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(raw) > MAX_DEPTH:
        raise ContractError(f"payload: nested deeper than {MAX_DEPTH}")
    try:
        return json.loads(raw, parse_constant=None if allow_nonfinite else _refuse_constant)
    except ContractError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"payload: invalid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise ContractError(f"payload: not decodable ({type(exc).__name__}: {str(exc)[:200]})") from None


def decode(topic: str, payload: bytes | str) -> Message:
    """Parse and validate one MQTT message; raises ``ContractError`` with a reason on anything invalid."""
    return from_dict(topic, load_json(payload))
