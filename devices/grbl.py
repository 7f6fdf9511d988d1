"""GRBL 1.1 (CNC mills, laser cutters) serial protocol: a pure codec for received lines.

``?`` is a realtime command (one byte, no newline); its reply is one ``<State|Field:..|..>`` line.
Run <-> Idle transitions become job events; ``[MSG:Pgm End]`` ends a job explicitly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from devices.observations import (
    Ack,
    Fault,
    Firmware,
    JobFinished,
    JobStarted,
    Observation,
    Reading,
    Rejected,
    Reset,
    StateChanged,
)

GRBL_STATES = ("Idle", "Run", "Hold", "Jog", "Alarm", "Door", "Check", "Home", "Sleep")
CONTRACT_STATE = {
    "Idle": "idle",
    "Run": "busy",
    "Jog": "busy",
    "Home": "busy",
    "Check": "busy",
    "Hold": "paused",
    "Door": "paused",
    "Alarm": "alarm",
    "Sleep": "idle",
}
ALARMS = {
    1: "hard limit",
    2: "soft limit",
    3: "reset while in motion",
    4: "probe fail: not in expected state",
    5: "probe fail: no contact",
    6: "homing fail: reset",
    7: "homing fail: door opened",
    8: "homing fail: pull-off",
    9: "homing fail: switch not found",
    10: "homing fail: dual axis",
}
REALTIME_STATUS = b"?"
REALTIME_HOLD = b"!"
REALTIME_RESUME = b"~"
REALTIME_RESET = b"\x18"
STATUS_INTERVAL_MIN = 0.2  # at most 5 Hz: status queries cost the controller cycles

# ``$I`` build options (``[OPT:V,15,128]``): letters of compiled-in features, then planner blocks, RX bytes.
OPT_CAPS = {"V": "VARIABLE_SPINDLE", "N": "LINE_NUMBERS", "M": "MIST_COOLANT", "C": "COREXY", "P": "PARKING",
            "+": "SAFETY_DOOR", "L": "HOMING_INIT_LOCK"}
_BANNER_RE = re.compile(r"^Grbl\w*\s+(\S+)")
# Realtime command bytes as the sender may interleave them anywhere in its stream.
REALTIME_BYTES = frozenset(b"?!~\x18") | frozenset(range(0x80, 0xA2))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


@dataclass
class GrblStatus:
    state: str
    substate: int | None = None
    mpos: tuple[float, ...] | None = None
    wpos: tuple[float, ...] | None = None
    wco: tuple[float, ...] | None = None
    feed: float | None = None
    spindle: float | None = None
    buffer: tuple[int, int] | None = None
    line: int | None = None
    overrides: tuple[int, int, int] | None = None
    pins: str = ""
    accessories: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def parse_status(line: str) -> GrblStatus | None:
    """Parse a ``<...>`` status report; None if it is not a well-formed one."""
    line = line.strip()
    if len(line) < 3 or line[0] != "<" or line[-1] != ">":
        return None
    fields = line[1:-1].split("|")
    name, _, sub = fields[0].partition(":")
    if name not in GRBL_STATES:
        return None
    try:
        status = GrblStatus(state=name, substate=int(sub) if sub else None)
        for item in fields[1:]:
            key, _, value = item.partition(":")
            if key == "MPos":
                status.mpos = _floats(value)
            elif key == "WPos":
                status.wpos = _floats(value)
            elif key == "WCO":
                status.wco = _floats(value)
            elif key == "FS":
                f, s = _floats(value)
                status.feed, status.spindle = f, s
            elif key == "F":
                status.feed = float(value)
            elif key == "Bf":
                a, b = (int(x) for x in value.split(","))
                status.buffer = (a, b)
            elif key == "Ln":
                status.line = int(value)
            elif key == "Ov":
                o = tuple(int(x) for x in value.split(","))
                if len(o) != 3:
                    return None
                status.overrides = (o[0], o[1], o[2])
            elif key == "Pn":
                status.pins = value
            elif key == "A":
                status.accessories = value
            elif key:
                status.extra[key] = value
    except ValueError:
        return None
    return status


class GrblCodec:
    """State machine over received GRBL lines. ``feed(line)`` returns a list of observations."""

    def __init__(self) -> None:
        self.grbl_state: str | None = None
        self.state = "idle"  # contract state
        self.in_job = False
        self.wco: tuple[float, ...] | None = None
        self.firmware: Firmware | None = None
        self.last_status: GrblStatus | None = None

    def _set_state(self, state: str, out: list[Observation]) -> None:
        if state != self.state:
            out.append(StateChanged(state=state, previous=self.state))
            self.state = state

    def _finish(self, reason: str, out: list[Observation]) -> None:
        if self.in_job:
            self.in_job = False
            out.append(JobFinished(reason=reason))

    def feed(self, line: str) -> list[Observation]:
        out: list[Observation] = []
        line = line.strip()
        if not line:
            return out
        first = line[0]
        if first == "<":
            status = parse_status(line)
            if status is not None:
                self._status(status, out)
            return out
        if line == "ok":
            out.append(Ack())
            return out
        if first == "e" and line.startswith("error:"):
            # the reply to one line, which came from the operator's sender (the bridge sends none but
            # ``$I``): its business, not a machine fault
            out.append(Rejected(code=f"error:{line[6:].strip()}"))
            return out
        if first == "A" and line.startswith("ALARM:"):
            code = line[6:].strip()
            detail = ALARMS.get(int(code), "") if code.isdigit() else ""
            out.append(Fault(reason=f"alarm:{code}", detail=detail, fatal=True))
            self._finish("alarm", out)
            self.grbl_state = "Alarm"
            self._set_state("alarm", out)
            return out
        if first == "[":
            if line.startswith("[MSG:Pgm End"):
                # M2/M30 waits for the motion to end before saying so: the controller is idle now, and a
                # status published with the finished job must not say busy
                self._finish("done", out)
                if self.grbl_state in ("Run", None):
                    self.grbl_state = "Idle"
                    self._set_state("idle", out)
            elif line.startswith("[VER:"):
                version = line[5:].rstrip("]").split(":", 1)[0]
                self.firmware = Firmware(name=f"Grbl {version}")
                out.append(self.firmware)
            elif line.startswith("[OPT:") and self.firmware is not None:
                letters = line[5:].rstrip("]").split(",", 1)[0]
                caps = {name: letter in letters for letter, name in OPT_CAPS.items()}
                self.firmware = Firmware(name=self.firmware.name, caps=caps)
                out.append(self.firmware)
            return out
        if first == "G":
            m = _BANNER_RE.match(line)
            if m:
                self._finish("reset", out)
                self.firmware = Firmware(name=f"Grbl {m.group(1)}")
                out.append(Reset(banner=line))
                out.append(self.firmware)
                self.grbl_state = None
            return out
        return out

    def _status(self, status: GrblStatus, out: list[Observation]) -> None:
        self.last_status = status
        if status.wco is not None:
            self.wco = status.wco
        name = status.state
        previous, self.grbl_state = self.grbl_state, name
        if name == "Run" and not self.in_job:
            self.in_job = True
            out.append(JobStarted())
        elif name in ("Idle", "Sleep") and self.in_job:
            self._finish("done", out)
        elif name == "Alarm" and previous != "Alarm":
            self._finish("alarm", out)
        state = CONTRACT_STATE[name]
        self._set_state(state, out)
        values: dict[str, object] = {"grbl_state": name if status.substate is None else f"{name}:{status.substate}"}
        mpos, wpos = status.mpos, status.wpos
        if self.wco is not None:
            if mpos is not None and wpos is None:
                wpos = tuple(round(m - o, 3) for m, o in zip(mpos, self.wco, strict=False))
            elif wpos is not None and mpos is None:
                mpos = tuple(round(w + o, 3) for w, o in zip(wpos, self.wco, strict=False))
        if mpos is not None:
            values["mpos"] = list(mpos)
        if wpos is not None:
            values["wpos"] = list(wpos)
        if status.feed is not None:
            values["feed"] = status.feed
        if status.spindle is not None:
            values["spindle"] = status.spindle
        if status.overrides is not None:
            values["overrides"] = list(status.overrides)
        if status.pins:
            values["pins"] = status.pins
        out.append(Reading(values))
