"""Firmware simulators behind a real pseudo-terminal, run in a thread, controllable from tests.

Open ``sim.path`` with pyserial like a real port. Opening it counts as a board reset (the banner is
sent, like an Arduino rebooting on DTR); ``unplug()`` removes the device (the client's next read
fails) and ``replug()`` brings it back at the same ``path`` (a symlink, when ``link`` is given).
"""

from __future__ import annotations

import random
import threading
import time

from devices.lines import LineBuffer
from devices.passthrough import PtyPort


class PtySimulator:
    def __init__(self, link: str | None = None, tick: float = 0.02, seed: int | None = None) -> None:
        self._port = PtyPort(link)
        self.tick_s = tick
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.received: list[str] = []  # every line the client sent, for assertions
        self.connected = False
        self._lines = LineBuffer()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick = time.monotonic()

    # -------------------------------------------------------------------------------- lifecycle
    @property
    def path(self) -> str:
        return self._port.path

    def start(self) -> str:
        """Open the pty and start the firmware thread; returns the path for the client."""
        self._port.open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self.lock:
            self._port.close()
            self.connected = False

    def __enter__(self) -> PtySimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unplug(self) -> None:
        with self.lock:
            self._port.close()
            self.connected = False
            self._lines.clear()

    def replug(self) -> str:
        with self.lock:
            return self._port.open()

    # -------------------------------------------------------------------------------- I/O
    def send(self, text: str) -> None:
        """Write to the client (only while it has the port open, as a real board would lose it)."""
        if self.connected:
            self._port.write(text.encode())

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._port.master is None:
                time.sleep(self.tick_s)
                continue
            data = self._port.read(min(self.tick_s, max(0.0, self.wake_in(time.monotonic()))))
            now = time.monotonic()
            with self.lock:
                is_open = self._port.connected()
                if is_open and not self.connected:
                    self.connected = True
                    self._lines.clear()
                    self.on_connect(now)
                elif not is_open and self.connected:
                    self.connected = False
                if data and self.connected:
                    self.on_bytes(data, now)
                if self.connected:
                    self.on_poll(now)
                if now - self._last_tick >= self.tick_s:
                    self.on_tick(now, now - self._last_tick)
                    self._last_tick = now

    def on_bytes(self, data: bytes, now: float) -> None:
        for line in self._lines.feed(data):
            self.received.append(line)
            self.on_line(line, now)

    # -------------------------------------------------------------------------------- firmware hooks
    def on_connect(self, now: float) -> None:
        """The client opened the port (a reset on a real board)."""

    def on_line(self, line: str, now: float) -> None:
        """A complete line from the client."""

    def on_tick(self, now: float, dt: float) -> None:
        """Periodic firmware work (heating, motion, auto-reports)."""

    def on_poll(self, now: float) -> None:
        """Work due at a precise time (a command's delayed ``ok``): runs after every read."""

    def wake_in(self, now: float) -> float:
        """Seconds until ``on_poll`` has work due; at most a tick."""
        return self.tick_s
