"""Marlin (3D printer) serial protocol: a pure codec for received lines and an encoder for sent lines.

The codec is fed one line at a time (``feed``) and returns observations; it tracks the machine
state (idle, printing, paused, error) from what the firmware says, so a print started from the
printer's own screen is seen through M27 polling or its ``M27 S<n>`` auto-report.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from devices.observations import (
    Ack,
    Busy,
    Fault,
    Firmware,
    JobFinished,
    JobStarted,
    Observation,
    Reading,
    Resend,
    Reset,
    StateChanged,
)

_TEMP_RE = re.compile(r"(?:^|\s)(T\d?|B|C|P|A|R):\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(-?\d+(?:\.\d+)?))?")
_SD_RE = re.compile(r"SD printing byte (\d+)\s*/\s*(\d+)")
_RESEND_RE = re.compile(r"(?:Resend|rs)[: ]\s*N?(\d+)")
_FW_NAME_RE = re.compile(r"FIRMWARE_NAME:\s*(.+?)(?:\s+[A-Z_]+:|$)")
_FILE_OPENED_RE = re.compile(r"File opened:\s*(\S+)(?:\s+Size:\s*(\d+))?")
_CAP_RE = re.compile(r"Cap:([A-Z0-9_]+):([01])")
# How Marlin announces that it has stopped (kill(), stop()): the halt itself, whatever error came before.
_HALT_RE = re.compile(r"halted|kill|stopped", re.IGNORECASE)

# A print a G-code host streams (pass-through): this many moves within this many seconds start a job.
STREAM_MOVES, STREAM_WINDOW_S = 20, 10.0
_M73_RE = re.compile(r"\bP(\d+(?:\.\d+)?)", re.IGNORECASE)

SENSOR_NAMES = {"T": "hotend", "B": "bed", "C": "chamber", "P": "probe", "A": "ambient", "R": "redundant"}


def checksum(body: str) -> int:
    """Marlin's line checksum: XOR of every byte before the ``*``."""
    cs = 0
    for b in body.encode("ascii", "replace"):
        cs ^= b
    return cs


def parse_temperatures(line: str) -> dict[str, dict[str, float]]:
    """``"ok T:210.0 /210.0 B:60.1 /60.0 @:127"`` -> ``{"hotend": {"actual": 210.0, "target": 210.0}, ...}``."""
    temps: dict[str, dict[str, float]] = {}
    for key, actual, target in _TEMP_RE.findall(line):
        name = SENSOR_NAMES.get(key) or f"hotend{key[1:]}"
        reading = {"actual": float(actual)}
        if target:
            reading["target"] = float(target)
        temps[name] = reading
    return temps


class MarlinCodec:
    """State machine over received Marlin lines. ``feed(line)`` returns a list of observations."""

    def __init__(self) -> None:
        self.state = "idle"
        self.file: str | None = None
        self.file_size: int | None = None
        self.sd_pos: int | None = None
        self.firmware: Firmware | None = None
        self._fw_name: str | None = None
        self._caps: dict[str, bool] = {}
        self._collecting_caps = False
        self._pause_pos: int | None = None
        # An ``Error:`` line whose meaning depends on what follows: ``Resend:``/``ok`` (the firmware
        # carries on: a communication error) or a halt; wordings differ between firmwares and versions.
        self.pending_error: str | None = None
        self.host_job = False  # the job is a stream from the pass-through's sender, not an SD print
        self._host_first = self._host_last = 0.0
        self._host_moves = 0

    @property
    def in_job(self) -> bool:
        return self.state in ("printing", "paused")

    @property
    def progress(self) -> float | None:
        if self.sd_pos is None or not self.file_size:
            return None
        return min(1.0, self.sd_pos / self.file_size)

    def _set_state(self, state: str, out: list[Observation]) -> None:
        if state != self.state:
            self._pause_pos = None
            out.append(StateChanged(state=state, previous=self.state))
            self.state = state

    def _finish(self, reason: str, out: list[Observation], state: str = "idle") -> None:
        if self.in_job:
            out.append(JobFinished(reason=reason, file=self.file))
        self._set_state(state, out)
        self.sd_pos = None
        self.host_job = False

    def feed(self, line: str) -> list[Observation]:
        out: list[Observation] = []
        line = line.strip()
        if not line:
            return out
        if self._collecting_caps and not line.startswith("Cap:"):
            self._collecting_caps = False
            self.firmware = Firmware(name=self._fw_name or "Marlin", caps=dict(self._caps))
            out.append(self.firmware)
        first = line[0]
        if first == "o" and line.startswith("ok"):
            self.pending_error = None  # the firmware answers: whatever the error was, it carried on
            if self.state == "error":
                self._set_state("idle", out)  # answering again (e.g. after M999): tracking resumes
            out.append(Ack())
            if line.startswith("ok T"):
                self._temps(line, out)
            return out
        if first == "T" and (line.startswith("T:") or line[1:2].isdigit()):
            self._temps(line, out)  # M155 auto-report / M109 wait lines
            return out
        if first == "e" and line.startswith("echo:"):
            if line.startswith("echo:busy"):
                out.append(Busy())
            return out
        if first == "S" and line.startswith("SD printing byte"):
            self._sd_status(line, out)
            return out
        if line.startswith(("Resend", "rs ")):
            self.pending_error = None  # a communication error: the line is asked for again
            m = _RESEND_RE.match(line)
            if m:
                out.append(Resend(int(m.group(1))))
            return out
        if line.startswith("Error:") or line.startswith("!!"):
            self._error(line, out)
            return out
        if line == "Not SD printing":
            if self.in_job and not self.host_job:
                self._finish("stopped", out)
            return out
        if line.startswith("Done printing file"):
            if self.in_job:
                self._finish("done", out)
            return out
        if line.startswith("//action:"):
            self._action(line[len("//action:") :].strip(), out)
            return out
        if line == "start":
            # a (re)booted board: anything running is gone, and an error is cleared
            if self.in_job:
                out.append(JobFinished(reason="reset", file=self.file))
            out.append(Reset(banner=line))
            self.pending_error, self.host_job = None, False
            self._set_state("idle", out)
            self.sd_pos = None
            return out
        if line.startswith("FIRMWARE_NAME:"):
            m = _FW_NAME_RE.match(line)
            # "Marlin 2.1.2.1 (Jun 21 2024 10:00:00)" -> "Marlin 2.1.2.1"
            self._fw_name = re.sub(r"\s*\(.*?\)", "", m.group(1)).strip() if m else "Marlin"
            self._caps = {}
            self._collecting_caps = True
            return out
        if line.startswith("Cap:"):
            m = _CAP_RE.match(line)
            if m:
                self._caps[m.group(1)] = m.group(2) == "1"
            return out
        if line.startswith("File opened:"):
            m = _FILE_OPENED_RE.match(line)
            if m:
                self.file = m.group(1)
                self.file_size = int(m.group(2)) if m.group(2) else None
            return out
        if line.startswith("Current file:"):
            self.file = line[len("Current file:") :].strip().split(" ")[0] or self.file
            return out
        return out

    # ---------------------------------------------------------------- prints streamed by a G-code host
    def host_line(self, cmd: str, now: float) -> list[Observation]:
        """A command the pass-through's sender sent. The printer knows nothing of a print a host streams, so
        moves sent steadily are one (``STREAM_MOVES`` within ``STREAM_WINDOW_S``) until the stream stops
        (``host_idle``); a slicer's ``M73 P<percent>`` gives its progress."""
        out: list[Observation] = []
        word = cmd.split(" ", 1)[0].upper()
        if word in ("G0", "G1", "G2", "G3"):
            self._host_last = now
            if self.in_job:
                return out
            if now - self._host_first > STREAM_WINDOW_S:
                self._host_first, self._host_moves = now, 0
            self._host_moves += 1
            if self._host_moves >= STREAM_MOVES:
                self.host_job, self.file, self.file_size, self.sd_pos = True, None, None, None
                out.append(JobStarted(file=None))
                self._set_state("printing", out)
        elif word == "M73" and self.host_job:
            m = _M73_RE.search(cmd[3:])
            if m:
                out.append(Reading({"progress": round(min(100.0, float(m.group(1))) / 100, 4)}))
        return out

    def host_idle(self, now: float, idle_s: float) -> list[Observation]:
        """The host's stream stopped for ``idle_s``: its print is over."""
        if self.host_job and now - self._host_last > idle_s:
            return self.host_stopped("done")
        return []

    def host_stopped(self, reason: str) -> list[Observation]:
        out: list[Observation] = []
        if self.host_job:
            self.host_job = False
            self._host_moves = 0
            self._finish(reason, out)
        return out

    def _temps(self, line: str, out: list[Observation]) -> None:
        temps = parse_temperatures(line)
        if temps:
            out.append(Reading({"temps": temps}))

    def _sd_status(self, line: str, out: list[Observation]) -> None:
        m = _SD_RE.match(line)
        if not m:
            return
        pos, size = int(m.group(1)), int(m.group(2))
        if size <= 0 or pos > size:
            return  # garbled line: ignore rather than invent a job
        self.file_size = size
        if self.state == "error":
            self._set_state("idle", out)  # the firmware reports again: it is no longer halted
        if not self.in_job:
            if pos >= size:
                return  # a finished file that is still open: not a new job
            self.sd_pos = pos
            out.append(JobStarted(file=self.file))
            self._set_state("printing", out)
        elif self.state == "paused":
            # The first report after a pause may still show bytes read before it: take it as the
            # baseline, and only bytes advancing past it mean a resume from the printer's screen.
            if self._pause_pos is None:
                self._pause_pos = pos
            elif pos > self._pause_pos:
                self._set_state("printing", out)
        self.sd_pos = pos
        out.append(Reading({"progress": round(pos / size, 4)}))

    def _error(self, line: str, out: list[Observation]) -> None:
        text = line[6:].strip() if line.startswith("Error:") else line[2:].strip()
        if not (line.startswith("!!") or _HALT_RE.search(text)):
            # Decided by what follows: Resend/ok (recoverable) or a halt; see ``expire_error``.
            if self.pending_error is None:
                self.pending_error = text
            return
        self._halt(text, out)

    def _halt(self, text: str, out: list[Observation]) -> None:
        detail, self.pending_error = self.pending_error or text, None  # the cause, not "Printer halted"
        if self.state == "error":
            return  # one fault per halt; the following lines only repeat it
        out.append(Fault(reason="firmware_error", detail=detail, fatal=True))
        self._finish("error", out, state="error")

    def expire_error(self) -> list[Observation]:
        """An ``Error:`` that neither ``Resend:``/``ok`` nor a halt message followed within the caller's
        timeout: the firmware stopped answering after it, so it is a halt."""
        out: list[Observation] = []
        if self.pending_error is not None:
            self._halt(self.pending_error, out)
        return out

    def _action(self, action: str, out: list[Observation]) -> None:
        name = action.split(" ", 1)[0]
        if name in ("pause", "paused") and self.state == "printing":
            self._set_state("paused", out)
        elif name in ("resume", "resumed") and self.state == "paused":
            self._set_state("printing", out)
        elif name in ("cancel", "abort") and self.in_job:
            self._finish("cancelled", out)


class MarlinLineEncoder:
    """Numbers and checksums outgoing lines (``N<n> cmd*<xor>``) and keeps them for ``Resend: n``."""

    def __init__(self, history: int = 64) -> None:
        self.next_line = 1
        self._history: OrderedDict[int, str] = OrderedDict()
        self._max = history

    def encode(self, command: str) -> str:
        cmd = command.split(";", 1)[0].strip()
        if not cmd or "*" in cmd or "\n" in cmd:
            raise ValueError(f"not a single G-code command: {command!r}")
        n = self.next_line
        line = self._line(n, cmd)
        self._history[n] = line
        while len(self._history) > self._max:
            self._history.popitem(last=False)
        self.next_line += 1
        return line

    def reset(self) -> str:
        """The ``M110 N0`` line that sets the firmware's line counter; the next line is N1."""
        self._history.clear()
        self.next_line = 1
        return self._line(0, "M110 N0")

    def resend(self, n: int) -> list[str]:
        """Lines ``n`` .. last sent, for a ``Resend: n`` request; KeyError when ``n`` is too old."""
        if n >= self.next_line:
            return []
        if n not in self._history:
            raise KeyError(f"line {n} no longer in history")
        return [line for k, line in self._history.items() if k >= n]

    @staticmethod
    def _line(n: int, cmd: str) -> str:
        body = f"N{n} {cmd}"
        return f"{body}*{checksum(body)}\n"


def parse_numbered(line: str) -> tuple[int | None, str, bool]:
    """Split a received host line into (line number, command, checksum ok): the firmware side,
    used by the simulator and tests. Lines without ``N``/``*`` return (None, line, True)."""
    line = line.strip()
    if not line.startswith("N"):
        return None, line.split(";", 1)[0].strip(), True
    body, star, cs = line.partition("*")
    head, _, cmd = body.partition(" ")
    try:
        n = int(head[1:])
    except ValueError:
        return None, line, False
    if not star:
        return n, cmd.strip(), False
    try:
        ok = int(cs) == checksum(body)
    except ValueError:
        ok = False
    return n, cmd.strip(), ok
