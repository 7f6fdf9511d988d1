"""Sending a G-code file over a serial line: pure bookkeeping, no I/O (the caller writes what the methods
return and feeds every line the firmware sends back).

``MarlinStream``: numbered, checksummed lines (``N<n> cmd*<xor>``), one in flight at a time (each ``ok``
then belongs to the one line sent, as with OctoPrint's and Pronterface's default); ``Resend: n`` sends the
line again, and the ``ok`` that completes the Resend acknowledges nothing. Used for streamed printing and,
wrapped in ``M28``/``M29``, for the SD upload (``devices.marlin_upload``).

``GrblStream``: GRBL's character-counting protocol: as many lines in flight as fit the controller's
128-byte serial RX buffer; every ``ok``/``error:N`` frees the oldest line's bytes. ``error:N`` or an
``ALARM`` stops the stream with the reason.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator

from devices.marlin import MarlinLineEncoder

_RESEND_RE = re.compile(r"(?:Resend|rs)[: ]\s*N?(\d+)")
_HALT_RE = re.compile(r"halted|kill|stopped", re.IGNORECASE)
GRBL_RX_BUFFER = 128  # bytes; GRBL 1.1 on an ATmega328p ("[OPT:...,128]")


def gcode_lines(chunks: Iterable[bytes]) -> Iterator[tuple[str, int]]:
    """(command, bytes consumed) per line of a G-code byte stream: comments and blank lines are dropped
    (their bytes still count), so progress is measured against the file's size."""
    partial = b""
    for chunk in chunks:
        data = partial + chunk
        *complete, partial = data.split(b"\n")
        for raw in complete:
            yield _command(raw), len(raw) + 1
    if partial:
        yield _command(partial), len(partial)


def _command(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").split(";", 1)[0]
    if "(" in text:  # GRBL/LinuxCNC comments in parentheses
        text = re.sub(r"\([^)]*\)", "", text)
    return text.replace("*", "").strip()


class _Progress:
    def __init__(self, source: Iterable[tuple[str, int]], total: int) -> None:
        self._source = iter(source)
        self.total = total
        self.done_bytes = 0  # of the source, acknowledged or not
        self.lines_acked = 0
        self.exhausted = False
        self.failed: str | None = None
        self.cancelled = False
        self.paused = False  # no new lines from the file (what is in flight completes); queries still go

    def _next_command(self) -> str | None:
        """The next non-empty command, or None at the end of the source."""
        for cmd, size in self._source:
            self.done_bytes += size
            if cmd:
                return cmd
        self.exhausted = True
        return None

    def cancel(self, why: str = "cancelled") -> None:
        self.cancelled = True
        self.failed = self.failed or why
        self.exhausted = True


class MarlinStream(_Progress):
    """One line in flight. ``start()`` -> the ``M110 N0`` line; then ``next_lines`` / ``feed``."""

    def __init__(self, source: Iterable[tuple[str, int]], total: int, history: int = 64) -> None:
        super().__init__(source, total)
        self.enc = MarlinLineEncoder(history)
        self.inflight: str | None = None  # the raw line awaiting its ok
        self.inflight_n = 0
        self.urgent: deque[str] = deque()  # our own queries (M105) between the file's lines
        self.resends = 0
        self._after_resend = False
        self.held_error: str | None = None
        self._closing: deque[str] | None = None

    @property
    def finished(self) -> bool:
        if self._closing is not None:
            return self.failed is not None and self.inflight is None and not self._closing
        return self.failed is not None or (self.exhausted and self.inflight is None and not self.urgent)

    def cancel(self, why: str = "cancelled", closing: list[str] | None = None) -> None:
        """Stop sending the file; ``closing`` commands (an upload's ``M29``) still go out, each acknowledged,
        unless the printer halted or reset."""
        if closing and self.failed is None:
            self._closing = deque(closing)
        super().cancel(why)

    def start(self) -> str:
        self.inflight, self.inflight_n = self.enc.reset(), 0
        return self.inflight

    def next_lines(self) -> list[str]:
        if self.inflight is not None:
            return []
        if self._closing:
            cmd: str | None = self._closing.popleft()
        elif self.failed is not None:
            return []
        elif self.urgent:
            cmd = self.urgent.popleft()
        else:
            cmd = None if self.exhausted or self.paused else self._next_command()
        if cmd is None:
            return []
        self.inflight_n = self.enc.next_line
        self.inflight = self.enc.encode(cmd)
        return [self.inflight]

    def feed(self, line: str) -> list[str]:
        """One line from the printer; returns lines to write at once (a resend)."""
        text = line.strip()
        after_resend, self._after_resend = self._after_resend, False
        if text.startswith("ok"):
            self.held_error = None
            if not after_resend and self.inflight is not None:
                self.inflight = None
                if self.inflight_n > 0:
                    self.lines_acked += 1
            return []
        if text.startswith(("Resend", "rs ")):
            self.held_error = None
            self.resends += 1
            m = _RESEND_RE.match(text)
            self._after_resend = True
            if m and self.inflight is not None and int(m.group(1)) == self.inflight_n:
                return [self.inflight]
            if m and self.inflight is None and int(m.group(1)) == self.enc.next_line:
                return []  # nothing lost: the printer wants the line we are about to send
            self.failed = f"printer asked for line {m.group(1) if m else '?'}, which was not the one in flight"
            return []
        if text.startswith("Error:") or text.startswith("!!"):
            if text.startswith("!!") or _HALT_RE.search(text):
                self.failed = f"printer halted: {text}"
                self._closing = None
            else:
                self.held_error = text  # a communication error: a Resend follows
            return []
        if text == "start":
            self.failed = "printer reset during the transfer"
            self._closing = None
        elif text.startswith("open failed"):
            self.failed = f"printer refused the file: {text}"
        return []


class GrblStream(_Progress):
    """Character counting: lines in flight while their bytes (with the newline) fit ``rx_buffer``."""

    def __init__(self, source: Iterable[tuple[str, int]], total: int, rx_buffer: int = GRBL_RX_BUFFER) -> None:
        super().__init__(source, total)
        self.rx_buffer = rx_buffer
        self.inflight: deque[tuple[str, int]] = deque()  # (command, bytes on the wire)
        self.inflight_bytes = 0
        self._peeked: str | None = None
        self.line_no = 0  # of the last command sent (1-based, non-empty commands only)

    @property
    def finished(self) -> bool:
        return self.failed is not None or (self.exhausted and self._peeked is None and not self.inflight)

    def next_lines(self) -> list[str]:
        out: list[str] = []
        while self.failed is None and not self.paused:
            cmd = self._peeked if self._peeked is not None else self._next_command()
            if cmd is None:
                break
            wire = cmd.replace(" ", "") + "\n"  # GRBL ignores spaces: fewer bytes in its buffer
            if len(wire) > self.rx_buffer - 1:
                self.failed = f"line {self.line_no + 1} is longer than GRBL's {self.rx_buffer - 1}-byte buffer"
                break
            if self.inflight_bytes + len(wire) > self.rx_buffer - 1:
                self._peeked = cmd  # waits for room
                break
            self._peeked = None
            self.line_no += 1
            self.inflight.append((cmd, len(wire)))
            self.inflight_bytes += len(wire)
            out.append(wire)
        return out

    def feed(self, line: str) -> list[str]:
        text = line.strip()
        if text == "ok" or text.startswith("error:"):
            if not self.inflight:
                return []  # an answer to a line that was not ours (sent before the stream began)
            cmd, size = self.inflight.popleft()
            self.inflight_bytes -= size
            if text == "ok":
                self.lines_acked += 1
            else:
                line_no = self.line_no - len(self.inflight)
                self.failed = self.failed or f"GRBL refused line {line_no} ({cmd}): {text}"  # the first cause
        elif text.startswith("ALARM:"):
            self.failed = self.failed or f"GRBL alarm during the job: {text}"
        elif text.startswith("Grbl "):
            self.failed = self.failed or "GRBL reset during the job"
        return []
