"""How much work reading one uploaded file may cost: unpacked bytes, elements (triangles, vertices,
points, XML elements), pixels and seconds. Readers call the checks inside their loops, so a file that is
small on the wire but huge inside (zip bomb, millions of triangles, a 60-megapixel PNG of one colour)
stops at the limit instead of taking the process's memory or time.

Two levels: the lab's `limits` (past them the file is refused with the reason) and an optional smaller
`share` for the web request (past it the request stops and hands the file to the worker, which reads it
again under the full limits). The clock is injected: the domain never reads the time itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fablab.domain.filetypes import UnsafeFileError

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    unpacked_bytes: int = 256 * MB  # all archive members read, together, after decompression
    elements: int = 5_000_000  # triangles, vertices, points or XML elements of one file
    pixels: int = 40_000_000  # width x height of an image, checked before it is decoded
    seconds: float | None = None  # reading time; None: no time limit


class LimitExceeded(UnsafeFileError):
    """Past the lab's limits: the file is refused; the message says which limit and what to do."""


class NeedsWorker(Exception):
    """Past the web request's share (not a refusal): the worker reads the file later, under the full limits.
    Deliberately not a FileContentError, so it can never be shown as a refusal by mistake."""


def _mb(n: int) -> str:
    return f"{n / MB:.0f} MB"


class Budget:
    """The running account of one file's reading. `clock` is a monotonic seconds source (or None)."""

    def __init__(self, limits: Limits, clock: Callable[[], float] | None = None,
                 share: Limits | None = None) -> None:
        self.limits = limits
        self.share = share
        self.clock = clock
        self.started = clock() if clock is not None else 0.0
        self.unpacked = 0

    def _over(self, value: float, limit: float, shared: float | None, refusal: str) -> None:
        if value > limit:
            raise LimitExceeded(refusal)
        if shared is not None and value > shared:
            raise NeedsWorker(refusal)

    def elements(self, count: int, what: str = "triangles") -> None:
        self._over(count, self.limits.elements, self.share.elements if self.share else None,
                   f"The file has more than {self.limits.elements:,} {what}, this lab's limit. "
                   "Simplify or decimate the model (e.g. export with a coarser resolution) and upload it again.")

    def add_unpacked(self, n: int, name: str) -> None:
        """Count `n` more decompressed bytes read from an archive (streamed: declared sizes can lie)."""
        self.unpacked += n
        self.check_unpacked(self.unpacked, name)

    def check_unpacked(self, total: int, name: str) -> None:
        self._over(total, self.limits.unpacked_bytes, self.share.unpacked_bytes if self.share else None,
                   f"The archive part {name} unpacks to more than {_mb(self.limits.unpacked_bytes)}, this lab's "
                   "limit (a zip bomb, or a model far too detailed to share). Simplify the model and try again.")

    def pixels(self, width: int, height: int) -> None:
        self._over(width * height, self.limits.pixels, self.share.pixels if self.share else None,
                   f"The image is {width} x {height} pixels, more than this lab's limit of "
                   f"{self.limits.pixels / 1e6:.0f} megapixels. Scale it down and upload it again.")

    def tick(self) -> None:
        """Check the time; readers call it every few thousand items (a monotonic clock read is cheap)."""
        if self.clock is None:
            return
        elapsed = self.clock() - self.started
        limit = self.limits.seconds
        shared = self.share.seconds if self.share else None
        self._over(elapsed, limit if limit is not None else float("inf"), shared,
                   f"Reading this file took longer than this lab's limit of {limit or 0:g} s. "
                   "Make it smaller or simpler and upload it again.")


def unlimited() -> Budget:
    """The default for callers that pass no budget: the lab-wide defaults, no time limit."""
    return Budget(Limits())
