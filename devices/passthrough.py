"""Share one serial port between the bridge and the operator's G-code sender (UGS, bCNC, LightBurn, CNCjs).

The bridge owns the real port and offers the sender a pseudo-terminal (``PtyPort``) or a raw TCP socket
like ser2net (``TcpPort``, one sender at a time). Both have the same small interface the bridge's loop
uses: ``open``, ``close``, ``connected``, ``fds`` (to add to its ``select``), ``service`` (the sender's
bytes once one of those fds is readable) and ``write``.

Everything the sender writes goes to the controller unchanged. The bridge injects its own ``?`` status
queries; GRBL answers each ``?`` with one ``<...>`` line, so ``GrblStatusFilter`` counts the queries that
are outstanding and withholds as many status replies from the sender as the bridge asked for, unless
the sender asked too. Every line from the controller is still observed by the bridge. For Marlin the
ports are the same, and ``devices.marlin_flow.MarlinFlow`` keeps the two line streams apart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import time
import tty
from collections import deque

log = logging.getLogger(__name__)


class GrblStatusFilter:
    """Pure bookkeeping of who asked for status reports. Not thread-safe: call from one thread."""

    def __init__(self, expire_s: float = 2.0) -> None:
        self.sender_pending = 0
        self._injected: deque[float] = deque()  # send times of our outstanding queries
        self._expire_s = expire_s
        self._partial = bytearray()
        self._own_lines: deque[float] = deque()  # send times of our own ``$I`` lines awaiting ``ok``
        self.dropped = 0

    @property
    def injected_pending(self) -> int:
        return len(self._injected)

    @property
    def own_pending(self) -> bool:
        """Our own line (``$I``) still awaits its ``ok``: a stream must not take that ok for its own."""
        return bool(self._own_lines)

    def from_sender(self, data: bytes) -> bytes:
        """Bytes the sender wrote: returned unchanged for the controller; its ``?`` are counted.

        GRBL picks realtime bytes out of the stream anywhere, even inside a line, so every ``?`` counts.
        """
        self.sender_pending += data.count(b"?")
        return data

    def sender_gone(self) -> None:
        """The sender disconnected: its unanswered ``?`` must not let status replies through to the next one."""
        self.sender_pending = 0

    def inject_query(self, now: float) -> bytes:
        """Our own status query: write the returned byte to the controller."""
        self._injected.append(now)
        return b"?"

    def inject_line(self, line: bytes, now: float) -> bytes:
        """Our own line command (``$I``), sent only while no sender is connected: its ``[...]`` replies and
        its ``ok`` are withheld from a sender that connects before they arrive."""
        self._own_lines.append(now)
        return line

    def from_controller(self, data: bytes, now: float) -> tuple[bytes, list[str]]:
        """Bytes from the controller -> (bytes for the sender, complete lines for the bridge to parse)."""
        while self._injected and now - self._injected[0] > self._expire_s:
            self._injected.popleft()  # a query lost to a reset must not swallow later replies
        while self._own_lines and now - self._own_lines[0] > self._expire_s:
            self._own_lines.popleft()
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
            elif self._own_lines and text.startswith(("[VER:", "[OPT:", "ok", "error:")):
                if not text.startswith("["):
                    self._own_lines.popleft()
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

    def fds(self) -> list[int]:
        """What to watch for the sender's bytes (nothing while no client has the slave open)."""
        return [self.master] if self.master is not None and self.connected() else []

    def service(self, ready: list[int]) -> bytes:
        """The client's bytes if ``select`` found the master readable."""
        return self.read(0) if self.master is not None and self.master in ready else b""

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


BUSY_MESSAGE = b"fablab-bridge: busy, another G-code sender is connected\r\n"


class TcpPort:
    """A raw TCP listener (ser2net's "raw" mode, not telnet/RFC 2217) for one G-code sender at a time.

    A second connection while a sender is connected is refused: it gets ``BUSY_MESSAGE`` and is closed,
    and the first sender keeps the machine (taking over a port mid-job would leave a half-streamed
    program). Dead peers (a laptop that left the Wi-Fi) are found by TCP keepalive and the TCP user
    timeout within about 30 s, so they do not hold the port forever. Not thread-safe: ``fds``,
    ``service`` and ``write`` run in the thread that owns the serial port; ``open``/``close`` before and
    after it.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, busy_message: bytes = BUSY_MESSAGE) -> None:
        self.host, self.port = host, port
        self.busy_message = busy_message
        self.listener: socket.socket | None = None
        self.client: socket.socket | None = None
        self.peer: str | None = None
        self.refused = 0

    @property
    def address(self) -> tuple[str, int]:
        """The bound address; with port 0 the kernel picked a free port (tests)."""
        if self.listener is None:
            return self.host, self.port
        addr = self.listener.getsockname()
        return addr[0], addr[1]

    @property
    def path(self) -> str:
        host, port = self.address
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def open(self) -> str:
        infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, sockaddr = infos[0]
        listener = socket.create_server(sockaddr[:2], family=family, backlog=4)
        listener.setblocking(False)
        self.listener = listener
        return self.path

    def close(self) -> None:
        self.disconnect("bridge stopping")
        if self.listener is not None:
            sock, self.listener = self.listener, None
            sock.close()

    def connected(self) -> bool:
        return self.client is not None

    def disconnect(self, why: str) -> None:
        """Drop the current sender (it sees the connection close), e.g. when the controller went away."""
        if self.client is None:
            return
        sock, self.client = self.client, None
        log.info("pass-through %s: sender %s disconnected (%s)", self.path, self.peer, why)
        self.peer = None
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def fds(self) -> list[int]:
        fds = [self.listener.fileno()] if self.listener is not None else []
        return fds + ([self.client.fileno()] if self.client is not None else [])

    def service(self, ready: list[int]) -> bytes:
        """Accept or refuse new connections, and return what the sender wrote (b"" if nothing)."""
        client = self.client
        data = b""
        if client is not None and client.fileno() in ready:
            try:
                data = client.recv(4096)
            except BlockingIOError:
                pass
            except OSError as exc:
                self.disconnect(str(exc))
            else:
                if not data:
                    self.disconnect("closed by the sender")
        if self.listener is not None and self.listener.fileno() in ready:
            self._accept()
        return data

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave it in the backlog for the next round
                log.warning("pass-through %s: accept failed: %s", self.path, exc)
                return
            peer = f"{addr[0]}:{addr[1]}"
            if self.client is not None:
                self.refused += 1
                log.info("pass-through %s: refused %s, %s is connected", self.path, peer, self.peer)
                with contextlib.suppress(OSError):
                    sock.setblocking(False)
                    sock.send(self.busy_message)
                    sock.shutdown(socket.SHUT_WR)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each ``ok`` goes out at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            # keepalive finds an idle dead peer; the user timeout one that left data unacknowledged
            for opt, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3),
                               ("TCP_USER_TIMEOUT", 30_000)):
                if hasattr(socket, opt):  # Linux; elsewhere the system defaults apply
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)
            self.client, self.peer = sock, peer
            log.info("pass-through %s: sender %s connected", self.path, peer)

    def write(self, data: bytes, timeout: float = 0.5) -> bool:
        """Send all of ``data`` to the sender. A sender that does not read within ``timeout`` (the socket
        buffer is full) is disconnected rather than silently losing part of its stream; False then."""
        client = self.client
        if client is None:
            return False
        view = memoryview(data)
        poller = select.poll()
        poller.register(client.fileno(), select.POLLOUT)
        while view:
            try:
                view = view[client.send(view):]
            except BlockingIOError:
                if not poller.poll(timeout * 1000):
                    self.disconnect("not reading")
                    return False
            except OSError as exc:
                self.disconnect(str(exc))
                return False
        return True
