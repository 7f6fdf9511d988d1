"""Message ids (ULIDs) and wire timestamps of the MQTT contract (standard library only)."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ulid_lock = threading.Lock()
_ulid_last: tuple[int, int] = (0, 0)


def new_msg_id(now_ms: int | None = None) -> str:
    """A ULID: 26 Crockford base32 chars, 48-bit ms timestamp + 80 random bits.

    Ids made by this process (without ``now_ms``) increase monotonically, even within one millisecond,
    so sorting the strings sorts by creation order.
    """
    global _ulid_last
    if now_ms is not None:  # explicit time: a pure function, outside the monotonic sequence
        value = (now_ms << 80) | int.from_bytes(os.urandom(10), "big")
        return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))
    ms = int(time.time() * 1000)
    with _ulid_lock:
        last_ms, last_rand = _ulid_last
        if ms <= last_ms:
            ms, rand = last_ms, (last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _ulid_last = (ms, rand)
    value = (ms << 80) | rand
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


def ulid_time(msg_id: str) -> datetime:
    """The creation time encoded in a ULID."""
    ms = 0
    for ch in msg_id[:10].upper():
        ms = ms * 32 + _CROCKFORD.index(ch)
    return datetime.fromtimestamp(ms / 1000, UTC)


def utc_now_iso(now: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
