"""Badge readers: RDM6300 (125 kHz EM4100, 9600 baud serial frames) and keyboard-wedge readers.

RDM6300 frame: 0x02, 10 ASCII hex chars (2 version + 8 tag), 2 ASCII hex checksum (XOR of the five
data bytes), 0x03. The reader repeats the frame while a card is held, so repeats of the same uid
within ``debounce_s`` of the previous sighting are suppressed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STX, ETX = 0x02, 0x03
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_WEDGE_RE = re.compile(r"^[0-9A-Za-z]{4,32}$")


@dataclass(frozen=True)
class BadgeScan:
    tech: str
    uid: str


def rdm6300_frame(uid10: str) -> bytes:
    """Build a frame for a 10-hex-char uid (for simulators and tests)."""
    data = bytes.fromhex(uid10)
    cs = 0
    for b in data:
        cs ^= b
    return bytes([STX]) + uid10.upper().encode() + f"{cs:02X}".encode() + bytes([ETX])


class _Debounce:
    def __init__(self, debounce_s: float) -> None:
        self.debounce_s = debounce_s
        self._seen: dict[str, float] = {}

    def fresh(self, uid: str, now: float) -> bool:
        last = self._seen.get(uid)
        self._seen[uid] = now  # a held card keeps extending its window
        return last is None or now - last > self.debounce_s


class Rdm6300Parser:
    """Feed raw bytes, get verified, debounced badge scans. Garbage and bad checksums are skipped."""

    def __init__(self, debounce_s: float = 1.5) -> None:
        self._buf = bytearray()
        self._debounce = _Debounce(debounce_s)
        self.bad_frames = 0

    def feed(self, data: bytes, now: float) -> list[BadgeScan]:
        self._buf += data
        scans: list[BadgeScan] = []
        while True:
            start = self._buf.find(STX)
            if start < 0:
                self._buf.clear()
                break
            del self._buf[:start]
            if len(self._buf) < 14:
                break
            frame = bytes(self._buf[:14])
            if frame[13] != ETX or not all(b in _HEX for b in frame[1:13]):
                self.bad_frames += 1
                del self._buf[:1]  # resync on the next STX
                continue
            del self._buf[:14]
            data_bytes = bytes.fromhex(frame[1:11].decode())
            cs = 0
            for b in data_bytes:
                cs ^= b
            if cs != int(frame[11:13], 16):
                self.bad_frames += 1
                continue
            uid = frame[1:11].decode().upper()
            if self._debounce.fresh(uid, now):
                scans.append(BadgeScan(tech="em4100", uid=uid))
        return scans


class WedgeReader:
    """Keyboard-wedge readers type the uid followed by Enter: feed lines, get debounced scans."""

    def __init__(self, debounce_s: float = 1.5, tech: str = "wedge") -> None:
        self._debounce = _Debounce(debounce_s)
        self.tech = tech

    def feed_line(self, line: str, now: float) -> BadgeScan | None:
        uid = line.strip()
        if not _WEDGE_RE.match(uid):
            return None
        uid = uid.upper()
        return BadgeScan(tech=self.tech, uid=uid) if self._debounce.fresh(uid, now) else None
