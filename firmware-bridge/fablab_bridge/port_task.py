"""Work that needs a machine's serial port to itself: an SD upload or a streamed print.

``print_jobs`` hands a ``PortTask`` to the machine (``MachineRunner.run_port_task``); the machine's serial
thread, the only one that touches the port, drives it between its own lines: it stops polling, holds a
pass-through sender's lines (they wait in the pty, the sender sees no ``ok`` meanwhile) and numbers the
task's lines from ``M110 N0``; afterwards it renumbers its own from ``M110 N0`` again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from devices.gcode_stream import GrblStream, MarlinStream

ProgressFn = Callable[[int, int], None]


class PortTask:
    def __init__(self, stream: MarlinStream | GrblStream, kind: str, *, file: str,
                 on_progress: ProgressFn | None = None, silence_s: float = 30.0,
                 closing: list[str] | None = None) -> None:
        self.stream = stream
        self.kind = kind  # "upload" (Marlin SD) or "print" (streamed)
        self.file = file
        self.on_progress = on_progress
        self.silence_s = silence_s  # no line from the firmware for this long: it stopped answering
        self.begun = threading.Event()
        self.finished = threading.Event()
        self.error: str | None = None
        self.closing = closing  # sent after a cancel (an upload's M29: the printer leaves write mode)
        self._cancel: str | None = None
        self._cancel_applied = False
        self._last_heard = 0.0

    # ---------------------------------------------------------------- any thread
    def cancel(self, why: str = "cancelled") -> None:
        self._cancel = why

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    # ---------------------------------------------------------------- the serial thread
    def begin(self, now: float) -> list[str]:
        self._last_heard = now
        self.begun.set()
        return [self.stream.start()] if isinstance(self.stream, MarlinStream) else []

    def feed(self, line: str, now: float) -> list[str]:
        self._last_heard = now
        return self.stream.feed(line)

    def next_lines(self, now: float) -> list[str]:
        if self._cancel is not None and not self._cancel_applied:
            self._cancel_applied = True
            if isinstance(self.stream, MarlinStream):
                self.stream.cancel(self._cancel, self.closing)
            else:
                self.stream.cancel(self._cancel)
        if now - self._last_heard > self.silence_s and not self.stream.finished:
            self.stream.failed = f"the firmware stopped answering for {self.silence_s:.0f} s"
            return []
        before = self.stream.done_bytes
        out = self.stream.next_lines()
        if self.on_progress and self.stream.done_bytes != before:
            self.on_progress(min(self.stream.done_bytes, self.stream.total), self.stream.total)
        return out

    def inject(self, cmd: str) -> None:
        """A query between the file's lines (streamed prints only; during an upload it would be written)."""
        if self.kind == "print" and isinstance(self.stream, MarlinStream) and cmd not in self.stream.urgent:
            self.stream.urgent.append(cmd)

    @property
    def done(self) -> bool:
        return self.stream.finished

    def end(self, error: str | None = None) -> None:
        if self.finished.is_set():
            return
        self.error = error or self.stream.failed
        self.finished.set()

