"""A GRBL 1.1h controller on a pty: banner, ``ok``/``error:N``, realtime ``?``/``!``/``~``/Ctrl-X, a motion
queue that takes time (Idle -> Run -> Idle), ``[MSG:Pgm End]`` on M2/M30, alarms on demand, and GRBL's
serial RX buffer (``rx_buffer=128``) in front of a 15-block planner: a host that sends more than fits
before the ``ok``s come loses bytes (``rx_overflows``) and gets ``error:1`` for the garbled line.

    sim = GrblSimulator(link="/tmp/cnc-sim", move_time=0.05)
    sim.start()
    sim.run_job(moves=20)   # as if a sender streamed a program: Run for ~1 s, then Pgm End, Idle
    sim.inject_alarm(1)     # hard limit: ALARM:1, state Alarm until $X
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Final, Literal

from devices.simulators.base import PtySimulator

BANNER = "\r\nGrbl 1.1h ['$' for help]\r\n"


class _Marker(Enum):
    PGM_END = "PGM_END"


_PGM_END: Final = _Marker.PGM_END
# What the motion queue holds: a target position [x, y, z], or the end of the program (M2/M30).
_Block = list[float] | Literal[_Marker.PGM_END]


class GrblSimulator(PtySimulator):
    def __init__(
        self,
        link: str | None = None,
        *,
        move_time: float = 0.1,  # seconds per motion block
        homing_lock: bool = False,  # boot into Alarm until $H/$X, like $22=1
        reset_on_open: bool = True,  # False: a controller (native USB, or DTR cut) that keeps its state
        # and prints no banner when a host opens the port
        tick: float = 0.01,
        seed: int | None = None,
        rx_buffer: int | None = None,  # 128: GRBL 1.1's serial RX buffer; bytes beyond it are lost, as on
        # the ATmega328p (None: unlimited, for tests of senders that do not count characters)
        planner_blocks: int = 15,  # motion blocks the planner holds; a full planner stops reading lines
    ) -> None:
        super().__init__(link, tick=tick, seed=seed)
        self.reset_on_open = reset_on_open
        self.move_time = move_time
        self.homing_lock = homing_lock
        self.state = "Idle"
        self.substate: int | None = None
        self.pos = [0.0, 0.0, 0.0]
        self.wco = [0.0, 0.0, 0.0]
        self.feed = 0.0
        self.spindle = 0.0
        self.queue: deque[_Block] = deque()  # target positions, or _PGM_END
        self._move_left = 0.0
        self._status_count = 0
        self.status_queries = 0  # how many '?' the controller answered
        self.rx_buffer = rx_buffer
        self.planner_blocks = planner_blocks
        self._rx = bytearray()  # received, not yet parsed (the RX buffer's content)
        self.rx_overflows = 0  # bytes that arrived with the buffer full (a host not counting characters)
        self.rx_peak = 0
        self._lost_bytes = False

    # -------------------------------------------------------------------------------- control (tests)
    def run_job(self, moves: int = 10, end: bool = True) -> None:
        """Queue a program as if a sender streamed it (not through the bridge)."""
        with self.lock:
            for i in range(moves):
                self.queue.append([float(i % 7), float(i % 5), -1.0])
            if end:
                self.queue.append(_PGM_END)

    def hold(self) -> None:
        with self.lock:
            self._realtime(ord("!"))

    def resume(self) -> None:
        with self.lock:
            self._realtime(ord("~"))

    def inject_alarm(self, code: int = 1) -> None:
        with self.lock:
            self.queue.clear()
            self.state, self.substate = "Alarm", None
            self.send(f"ALARM:{code}\r\n")

    # -------------------------------------------------------------------------------- firmware
    def _status_line(self) -> str:
        self._status_count += 1
        state = self.state if self.substate is None else f"{self.state}:{self.substate}"
        mpos = ",".join(f"{x:.3f}" for x in self.pos)
        fields = [state, f"MPos:{mpos}", f"FS:{self.feed:.0f},{self.spindle:.0f}"]
        if self._status_count % 10 == 1:
            fields.append("WCO:" + ",".join(f"{x:.3f}" for x in self.wco))
        elif self._status_count % 10 == 2:
            fields.append("Ov:100,100,100")
        return "<" + "|".join(fields) + ">\r\n"

    def _reset(self) -> None:
        moving = self.state in ("Run", "Jog", "Home")
        self._rx.clear()
        self._lost_bytes = False
        self.queue.clear()
        self.feed = self.spindle = 0.0
        self.send(BANNER)
        if moving:
            self.state = "Alarm"
            self.send("ALARM:3\r\n")
        elif self.homing_lock:
            self.state = "Alarm"
            self.send("[MSG:'$H'|'$X' to unlock]\r\n")
        else:
            self.state = "Idle"
        self.substate = None

    def on_connect(self, now: float) -> None:
        if self.reset_on_open:
            self.state = "Idle"
            self._reset()

    def on_bytes(self, data: bytes, now: float) -> None:
        # realtime commands act at once, wherever they appear in the stream
        rest = bytearray()
        for b in data:
            if b in (0x3F, 0x21, 0x7E, 0x18):
                self._realtime(b)
            else:
                rest.append(b)
        if rest:
            room = (self.rx_buffer or 1 << 30) - len(self._rx)
            if len(rest) > room:
                self.rx_overflows += len(rest) - room
                self._lost_bytes = True
                rest = rest[: max(0, room)]
            self._rx += rest
            self.rx_peak = max(self.rx_peak, len(self._rx))
            self._drain(now)

    def _drain(self, now: float) -> None:
        """Parse lines out of the RX buffer while the planner has room (a full planner blocks the parser,
        so the buffer fills: the reason a sender must count characters)."""
        while b"\n" in self._rx and len(self.queue) < self.planner_blocks:
            raw, _, rest = bytes(self._rx).partition(b"\n")
            self._rx = bytearray(rest)
            line = raw.decode("utf-8", "replace").strip("\r")
            self.received.append(line)
            if self._lost_bytes:  # part of this line was dropped: what is left is garbled
                self._lost_bytes = False
                self.send("error:1\r\n")
                continue
            self.on_line(line, now)

    def _realtime(self, b: int) -> None:
        if b == 0x3F:  # ?
            self.status_queries += 1
            self.send(self._status_line())
        elif b == 0x21:  # !
            if self.state in ("Run", "Jog"):
                self.state, self.substate = "Hold", 0
        elif b == 0x7E:  # ~
            if self.state == "Hold":
                self.state, self.substate = ("Run" if self.queue else "Idle"), None
        elif b == 0x18:
            self._reset()

    def on_line(self, line: str, now: float) -> None:
        line = line.strip().upper().replace(" ", "")
        if not line:
            self.send("ok\r\n")
            return
        if line.startswith("$"):
            self._system(line)
            return
        if self.state == "Alarm":
            self.send("error:9\r\n")  # G-code locked out during alarm
            return
        if not line[0].isalpha():
            self.send("error:1\r\n")
            return
        words: dict[str, str] = {}
        i = 0
        while i < len(line):
            letter, j = line[i], i + 1
            while j < len(line) and (line[j].isdigit() or line[j] in ".-"):
                j += 1
            words.setdefault(letter, line[i + 1 : j])
            if j == i + 1:
                self.send("error:1\r\n")  # letter without a value
                return
            i = j
        if "F" in words:
            self.feed = float(words["F"])
        if "M" in words and words["M"] in ("2", "30"):
            self.queue.append(_PGM_END)
        elif "G" in words and words["G"] in ("0", "1", "2", "3", "00", "01", "02", "03") or any(
            k in words for k in "XYZ"
        ):
            target = list(self.queue[-1] if self.queue and self.queue[-1] is not _PGM_END else self.pos)
            for axis, k in enumerate("XYZ"):
                if k in words:
                    target[axis] = float(words[k])
            self.queue.append(target)
        self.send("ok\r\n")

    def _system(self, line: str) -> None:
        if line == "$X":
            self.state = "Idle"
            self.send("[MSG:Caution: Unlocked]\r\nok\r\n")
        elif line == "$H":
            self.pos = [0.0, 0.0, 0.0]
            self.state = "Idle"
            self.send("ok\r\n")
        elif line == "$I":
            self.send("[VER:1.1h.20190825:]\r\n[OPT:V,15,128]\r\nok\r\n")
        elif line == "$G":
            self.send("[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]\r\nok\r\n")
        elif line == "$$":
            self.send("$0=10\r\n$1=25\r\n$22=0\r\n$110=500.000\r\nok\r\n")
        elif line == "$":
            self.send("[HLP:$$ $# $G $I $N $x=val $Nx=line $J=line $SLP $C $X $H ~ ! ? ctrl-x]\r\nok\r\n")
        else:
            self.send("error:3\r\n")

    def on_tick(self, now: float, dt: float) -> None:
        if self._rx:
            self._drain(now)
        if not self.connected or self.state in ("Hold", "Alarm", "Door", "Sleep"):
            return
        if not self.queue:
            if self.state == "Run":
                self.state = "Idle"
            return
        head = self.queue[0]
        if head is _PGM_END:
            self.queue.popleft()
            if not self.queue:
                self.state = "Idle"
            self.send("[MSG:Pgm End]\r\n")
            return
        if self.state != "Run":
            self.state, self._move_left = "Run", self.move_time
        self._move_left -= dt
        if self._move_left <= 0:
            self.pos = list(head)
            self.queue.popleft()
            self._move_left = self.move_time
