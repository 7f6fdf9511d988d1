"""Share one serial port between the bridge and the operator's G-code sender (UGS, bCNC, LightBurn, CNCjs).

The bridge owns the real port and offers the sender a pseudo-terminal (``PtyPort``; a TCP socket works
the same way). Everything the sender writes goes to the controller unchanged. The bridge injects its own
``?`` status queries; GRBL answers each ``?`` with one ``<...>`` line, so ``GrblStatusFilter`` counts the
queries that are outstanding and withholds as many status replies from the sender as the bridge asked
for, unless the sender asked too. Every line from the controller is still observed by the bridge.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import tty
from collections import deque


class GrblStatusFilter:
    """Pure bookkeeping of who asked for status reports. Not thread-safe: call from one thread."""

    def __init__(self, expire_s: float = 2.0) -> None:
        self.sender_pending = 0
        self._injected: deque[float] = deque()  # send times of our outstanding queries
        self._expire_s = expire_s
        self._partial = bytearray()
        self.dropped = 0

    @property
    def injected_pending(self) -> int:
        return len(self._injected)

    def from_sender(self, data: bytes) -> bytes:
        """Bytes the sender wrote: returned unchanged for the controller; its ``?`` are counted.

        GRBL picks realtime bytes out of the stream anywhere, even inside a line, so every ``?`` counts.
        """
        self.sender_pending += data.count(b"?")
        return data

    def inject_query(self, now: float) -> bytes:
        """Our own status query: write the returned byte to the controller."""
        self._injected.append(now)
        return b"?"

    def from_controller(self, data: bytes, now: float) -> tuple[bytes, list[str]]:
        """Bytes from the controller -> (bytes for the sender, complete lines for the bridge to parse)."""
        while self._injected and now - self._injected[0] > self._expire_s:
            self._injected.popleft()  # a query lost to a reset must not swallow later replies
        self._partial += data
        if b"\n" not in data:
            return b"", []
        *complete, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        to_sender = bytearray()
        lines: list[str] = []
        for raw in complete:
            text = raw.decode("utf-8", "replace").strip("\r")
            lines.append(text)
            if text.startswith("<") and text.rstrip().endswith(">"):
                if self.sender_pending > 0:
                    self.sender_pending -= 1
                elif self._injected:
                    self._injected.popleft()
                    self.dropped += 1
                    continue
            to_sender += raw + b"\n"
        return bytes(to_sender), lines


class PtyPort:
    """The master side of a pseudo-terminal, with a stable symlink to its slave for the other program.

    Used by the passthrough (the sender opens ``path``) and by the simulators (the bridge opens
    ``path``). ``connected()`` tells whether the other side has the slave open (Linux reports POLLHUP
    on the master otherwise). Reads and writes never block for long.
    """

    def __init__(self, link: str | None = None) -> None:
        self.link = link
        self.master: int | None = None
        self.slave_name = ""

    @property
    def path(self) -> str:
        return self.link or self.slave_name

    def open(self) -> str:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.slave_name = os.ttyname(slave)
        os.close(slave)  # so the master sees HUP until a client opens the slave
        os.set_blocking(master, False)
        self.master = master
        if self.link:
            tmp = f"{self.link}.tmp{os.getpid()}"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, self.link)
        return self.path

    def close(self) -> None:
        """Like pulling the USB cable: the client's next read or write fails."""
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
        if self.master is not None:
            fd, self.master = self.master, None
            os.close(fd)

    def connected(self) -> bool:
        if self.master is None:
            return False
        events = select.poll()
        events.register(self.master, select.POLLIN | select.POLLHUP)
        return not any(ev & select.POLLHUP for _, ev in events.poll(0))

    def read(self, timeout: float) -> bytes:
        """Up to 4 KiB, or b"" on timeout or when no client is connected."""
        fd = self.master  # may be closed by another thread (unplug): then poll reports POLLNVAL
        if fd is None:
            time.sleep(timeout)
            return b""
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        result = poller.poll(timeout * 1000)
        if not result:
            return b""
        flags = result[0][1]
        if flags & select.POLLNVAL:
            return b""
        if flags & select.POLLHUP and not flags & select.POLLIN:
            time.sleep(timeout)  # nobody on the other side: poll would return at once, forever
            return b""
        try:
            return os.read(fd, 4096)
        except OSError:
            return b""

    def write(self, data: bytes, timeout: float = 0.5) -> bool:
        """Write all of ``data``; False (data dropped) if the client does not read within ``timeout``."""
        fd = self.master
        if fd is None:
            return False
        view = memoryview(data)
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                if not poller.poll(timeout * 1000):
                    return False
            except OSError:
                return False
        return True
