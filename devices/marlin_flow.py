"""One Marlin serial line shared by the bridge and a G-code sender (OctoPrint-style hosts, Pronterface,
a slicer's "send to printer"): line numbers, acknowledgements and who sees which reply. Pure bookkeeping,
no I/O: the caller writes what it returns.

The printer sees one numbering, the bridge's: every line (the sender's and the bridge's own queries) is
renumbered and checksummed by one ``MarlinLineEncoder``. The sender keeps its own numbering, checked here
as the printer would (a wrong number or checksum is answered ``Resend:`` at once), and its ``M110`` is
answered here and never reaches the printer. One line is in flight at a time, so each ``ok`` belongs to
the oldest line sent, and the bridge's queries go out only between the sender's acknowledged lines.
Replies to the bridge's lines, and the printer's ``Error:``/``Resend:``/``ok`` about the bridge's
numbering, are withheld from the sender; a ``Resend:`` is answered from the encoder's history, and the
``ok`` that completes it acknowledges nothing (the re-sent line gets its own).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from devices.marlin import MarlinLineEncoder, parse_numbered

BRIDGE, SENDER, GONE = "bridge", "sender", "gone"  # GONE: the sender left before its reply came
_RESEND_RE = re.compile(r"(?:Resend|rs)[: ]\s*N?(\d+)")
_HALT_RE = re.compile(r"halted|kill|stopped", re.IGNORECASE)
_N_PARAM_RE = re.compile(r"\bN(-?\d+)", re.IGNORECASE)
# Lines nobody asked for: the sender sees them whoever's line is in flight.
_UNSOLICITED = ("//action:", "start", "T:", "!!")


@dataclass
class _Line:
    n: int
    cmd: str
    owner: str
    raw: str
    sent_at: float


class MarlinFlow:
    def __init__(self, history: int = 64) -> None:
        self.enc = MarlinLineEncoder(history)
        self.inflight: deque[_Line] = deque()
        self.bridge_queue: deque[str] = deque()
        self.sender_queue: deque[str] = deque()
        self.urgent: deque[str] = deque()  # the sender's M112: not held behind anything
        self.sender_last = 0  # the sender's own numbering, as it believes the printer's to be
        self.resends = 0
        self._after_resend = False  # the next line, if ``ok``, completes a Resend and acks nothing
        self._held_error: str | None = None  # an Error: line, until we know whether a Resend follows

    # -------------------------------------------------------------------------------- bridge side
    def reset(self, now: float) -> str:
        """A new connection or a rebooted printer: numbering starts over (``M110 N0``)."""
        self.inflight.clear()
        self._after_resend, self._held_error = False, None
        line = self.enc.reset()
        self.inflight.append(_Line(0, "M110 N0", BRIDGE, line, now))
        return line

    def busy(self, now: float) -> None:
        """``echo:busy``: the line in flight is being worked on, its ``ok`` will come."""
        if self.inflight:
            self.inflight[0].sent_at = now

    def expire(self, now: float, timeout: float) -> None:
        """A bridge line without an answer for ``timeout`` is given up (the sender's lines are waited for,
        as the printer would make the sender wait)."""
        if self.inflight and self.inflight[0].owner != SENDER and now - self.inflight[0].sent_at > timeout:
            self.inflight.popleft()

    def next_lines(self, now: float) -> list[str]:
        """What to write to the printer now: an urgent line, or the next line once nothing is in flight."""
        out = [self._send(self.urgent.popleft(), SENDER, now) for _ in range(len(self.urgent))]
        if not self.inflight:
            if self.bridge_queue:
                out.append(self._send(self.bridge_queue.popleft(), BRIDGE, now))
            elif self.sender_queue:
                out.append(self._send(self.sender_queue.popleft(), SENDER, now))
        return out

    def _send(self, cmd: str, owner: str, now: float) -> str:
        raw = self.enc.encode(cmd)
        self.inflight.append(_Line(self.enc.next_line - 1, cmd, owner, raw, now))
        return raw

    # -------------------------------------------------------------------------------- sender side
    def from_sender(self, line: str) -> str:
        """One line the sender wrote; returns the reply it gets at once ("" when the printer answers)."""
        n, cmd, ok = parse_numbered(line)
        if n is not None and not ok:
            return self._sender_resend("checksum mismatch")
        if cmd[:4].upper() == "M110":
            m = _N_PARAM_RE.search(cmd[4:])
            self.sender_last = int(m.group(1)) if m else (n or 0)
            return "ok\n"  # the sender's numbering only; the printer keeps the bridge's
        if n is not None:
            if n != self.sender_last + 1:
                return self._sender_resend("Line Number is not Last Line Number+1")
            self.sender_last = n
        cmd = cmd.split(";", 1)[0].strip()
        if not cmd:
            return ""  # Marlin skips empty and comment lines without a reply
        if "*" in cmd:
            return f"Error:No Line Number with checksum, Last Line: {self.sender_last}\nok\n"
        (self.urgent if cmd[:4].upper() == "M112" else self.sender_queue).append(cmd)
        return ""

    def _sender_resend(self, why: str) -> str:
        return f"Error:{why}, Last Line: {self.sender_last}\nResend: {self.sender_last + 1}\nok\n"

    def sender_gone(self) -> None:
        """The sender disconnected: its queued lines are dropped, replies to its lines in flight go nowhere
        (a sender connecting next must not count them)."""
        self.sender_queue.clear()
        self.urgent.clear()
        self.sender_last = 0
        for line in self.inflight:
            if line.owner == SENDER:
                line.owner = GONE

    # -------------------------------------------------------------------------------- printer side
    def from_printer(self, line: str, now: float) -> tuple[list[str], list[str]]:
        """One line from the printer -> (lines for the sender, lines to write to the printer)."""
        to_sender: list[str] = []
        write: list[str] = []
        text = line.strip()
        head = self.inflight[0].owner if self.inflight else None
        if self._held_error is not None:
            held, self._held_error = self._held_error, None
            if not text.startswith(("Resend", "rs ")) and head in (SENDER, None):
                to_sender.append(held)
        after_resend, self._after_resend = self._after_resend, False
        if text.startswith("ok"):
            if after_resend:
                return to_sender, write
            if self.inflight:
                self.inflight.popleft()
                if head == SENDER:
                    to_sender.append(line)
            return to_sender, write
        if text.startswith(("Resend", "rs ")):
            m = _RESEND_RE.match(text)
            self.resends += 1
            if m:
                write += self._resend(int(m.group(1)), now)
            self._after_resend = True
            return to_sender, write
        if text.startswith("Error:") and not _HALT_RE.search(text):
            self._held_error = line
            return to_sender, write
        if head in (SENDER, None) or text.startswith(_UNSOLICITED) or text.startswith("Error:"):
            to_sender.append(line)
        return to_sender, write

    def flush(self) -> list[str]:
        """An Error: line nothing followed (the caller's timeout): the sender sees it now."""
        held, self._held_error = self._held_error, None
        return [held] if held is not None else []

    def _resend(self, n: int, now: float) -> list[str]:
        if self.inflight and self.inflight[0].n == n:
            for line in self.inflight:
                line.sent_at = now
            return [line.raw for line in self.inflight]
        # the printer's numbering is not where ours is (a line lost before the one in flight, a reset
        # not seen): start over at N0 and send what is in flight again, renumbered
        again = [(line.cmd, line.owner) for line in self.inflight if line.n != 0 or line.cmd != "M110 N0"]
        out = [self.reset(now)]
        for cmd, owner in again:
            out.append(self._send(cmd, owner, now))
        return out
