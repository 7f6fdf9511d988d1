"""Split a byte stream into text lines, keeping a partial last line for the next chunk."""

from __future__ import annotations


class LineBuffer:
    """Feed raw bytes, get complete lines (``\\r``/``\\n`` stripped, undecodable bytes replaced).

    A line longer than ``max_line`` without a newline is cut, so a noisy port cannot grow memory.
    """

    def __init__(self, max_line: int = 4096) -> None:
        self._buf = bytearray()
        self._max = max_line

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        if b"\n" not in data:
            if len(self._buf) > self._max:
                line = bytes(self._buf)
                self._buf.clear()
                return [line.decode("utf-8", "replace").strip("\r")]
            return []
        *complete, rest = self._buf.split(b"\n")
        self._buf = bytearray(rest)
        return [raw.decode("utf-8", "replace").strip("\r") for raw in complete]

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)

    def clear(self) -> None:
        self._buf.clear()
