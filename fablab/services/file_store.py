"""Uploaded files on disk, under generated names, outside the web root.

A file is written to a temporary name in its final directory, hashed and size-checked while it
streams, fsynced and renamed into place: a reader never sees half a file, and a failed or interrupted
upload (size limit, client gone, exception) leaves nothing behind. No flask here: the caller passes
any object with `read(n)` (werkzeug's FileStorage.stream, an open file, BytesIO).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from fablab.domain.filetypes import SNIFF_BYTES, FileContentError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
CHUNK = 1 << 20
_KEY = re.compile(r"^[0-9a-f]{32}$")
_PARTIAL_PREFIX = ".upload-"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class UploadTooLarge(FileContentError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The file is larger than the upload limit of {_human(limit)}")
        self.limit = limit


@dataclass(frozen=True)
class StoredFile:
    key: str  # generated name (32 hex chars): store this, never the uploaded name
    path: Path
    size: int
    sha256: str  # hex
    head: bytes  # the first SNIFF_BYTES bytes, for filetypes.sniff()


def _human(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:g} {unit}" if unit == "bytes" else f"{n:.0f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


class FileStore:
    """Files under `root/<key[:2]>/<key>`; `root` must not be served by the web server."""

    def __init__(self, root: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        """Where a stored file lives; refuses anything that is not a generated key (no traversal)."""
        if not _KEY.match(key or ""):
            raise ValueError(f"not a file key: {key!r}")
        return self.root / key[:2] / key

    def save(self, stream: Readable, max_bytes: int | None = None) -> StoredFile:
        """Stream to disk atomically; UploadTooLarge past the limit; on any failure nothing is left."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        key = secrets.token_hex(16)
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = _mkstemp(final.parent)
        tmp = Path(tmp_name)
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise UploadTooLarge(limit)
                    if len(head) < SNIFF_BYTES:
                        head += chunk[: SNIFF_BYTES - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:  # also KeyboardInterrupt / a worker being stopped mid-upload
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return StoredFile(key, final, size, digest.hexdigest(), head)

    def open(self, key: str) -> BinaryIO:
        return open(self.path(key), "rb")

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def remove_stale_partials(self, older_than_s: float = 3600.0, now: float | None = None) -> int:
        """Delete temp files that a killed process (SIGKILL, power loss) could not clean; returns count."""
        cutoff = (time.time() if now is None else now) - older_than_s
        removed = 0
        if not self.root.is_dir():
            return 0
        for partial in self.root.glob(f"*/{_PARTIAL_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    removed += 1
        return removed


def _mkstemp(directory: Path) -> tuple[int, str]:
    return tempfile.mkstemp(dir=directory, prefix=_PARTIAL_PREFIX, suffix=".part")


def _fsync_dir(directory: Path) -> None:
    # The rename itself must survive a crash: fsync the directory entry (POSIX; a no-op elsewhere).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
