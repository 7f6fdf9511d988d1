"""What the bridge sends is made to fit the wire contract before it is encoded.

Machines, print servers, badge readers and SD cards say odd things: a NaN temperature, a 400-character
file name, a firmware error line of a kilobyte, a badge UID of garbage. The contract (``devices.events``,
v1) refuses non-finite numbers and over-long fields; these pure functions clean values so that
``events.encode`` accepts them: non-finite numbers are dropped, long texts are cut to the limit (a file
name keeps its extension), text loses NUL characters and lone surrogates.
"""

from __future__ import annotations

import json
import math
from typing import Any

from devices import events

# The bounds of wire contract v1 (devices.events: LIMITS, MAX_PAYLOAD, MAX_DEPTH). A devices.events that
# defines them wins; these are the same values, for one that does not define them.
_V1_LIMITS: dict[str, int] = {
    "msg_id": 64, "session_id": 128, "badge.tech": 32, "badge.uid": 64, "job.file": 255, "fw.name": 100,
    "reason": 500, "detail": 4096, "readings": 64, "reading.name": 64, "reading.text": 255,
}
LIMITS: dict[str, int] = {**_V1_LIMITS, **getattr(events, "LIMITS", {})}
MAX_PAYLOAD: int = getattr(events, "MAX_PAYLOAD", 64 * 1024)
MAX_DEPTH: int = getattr(events, "MAX_DEPTH", 16)
MAX_INT = 2**63 - 1  # integers beyond a signed 64-bit column are refused
ELLIPSIS = "…"
_MAX_EXTENSION = 16  # ".gcode", ".bgcode", ".3mf": a longer "extension" is just part of the name


def number(value: Any) -> float | int | None:
    """A finite number (ints within 64 bits); None for NaN, infinities, bools and anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int):
        return value if -MAX_INT - 1 <= value <= MAX_INT else None
    return value if math.isfinite(value) else None


def progress(value: Any) -> float | None:
    """A job's progress in 0..1 (slightly outside is clamped); None when it is not a finite number."""
    f = number(value)
    return None if f is None else min(1.0, max(0.0, float(f)))


def _plain(value: str) -> str:
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def text(value: Any, limit: int) -> str | None:
    """Text without NUL characters or lone surrogates, cut to ``limit`` characters (ending in "…")."""
    if not isinstance(value, str):
        return None
    value = _plain(value)
    return value if len(value) <= limit else value[: max(0, limit - 1)] + ELLIPSIS


def file_name(value: Any, limit: int = LIMITS["job.file"]) -> str | None:
    """A file name cut to ``limit`` characters, keeping its start and its extension ("long…name.gcode")."""
    if not isinstance(value, str) or not _plain(value):
        return None
    name = _plain(value)
    stem, dot, ext = name.rpartition(".")
    if len(name) <= limit or not dot or not stem or len(ext) + 1 > _MAX_EXTENSION:
        return text(name, limit)
    return name[: limit - len(ext) - 2] + ELLIPSIS + "." + ext


def badge_uid(value: Any) -> str | None:
    """The UID if the contract can carry it; None for an empty or over-long one (never cut: a cut UID
    would name another badge)."""
    uid = _plain(value) if isinstance(value, str) else ""
    return uid if 0 < len(uid) <= LIMITS["badge.uid"] else None


def tree(value: Any, limit: int = LIMITS["reading.text"], dropped: list[str] | None = None, path: str = "",
         depth: int = 1) -> Any:
    """A JSON value (at ``depth`` in the payload) with what the contract refuses taken out: non-finite or
    unsupported values (a dict loses the key, a list item becomes None), keys longer than a reading name,
    nesting past MAX_DEPTH; texts are cut to ``limit``. The paths taken out ("temps.hotend.actual") are
    added to ``dropped``. Returns None when the value itself cannot be sent."""
    if isinstance(value, str):
        return text(value, limit)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return number(value)
    if depth >= MAX_DEPTH:
        return None
    if isinstance(value, dict):
        items = [(k, f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
    elif isinstance(value, list | tuple):
        items = [(i, f"{path}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    out: dict[str, Any] = {}
    listed: list[Any] = []
    for key, sub, v in items:
        ok_key = isinstance(key, int) or (isinstance(key, str) and len(key) <= LIMITS["reading.name"])
        c = tree(v, limit, dropped, sub, depth + 1) if ok_key else None
        if c is None and v is not None and dropped is not None:
            dropped.append(sub[:200])
        if isinstance(key, int):
            listed.append(c)
        elif c is not None and (c != {} or v == {}):  # a dict emptied by cleaning goes too
            out[_plain(key)] = c
    return listed if isinstance(value, list | tuple) else out


def readings(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Telemetry readings the contract accepts, and the dotted names of the values taken out (to log):
    at most ``LIMITS["readings"]`` readings, no envelope names, no non-finite numbers."""
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in values.items():
        if not isinstance(name, str) or name in events.ENVELOPE_KEYS or len(name) > LIMITS["reading.name"] \
                or len(out) >= LIMITS["readings"]:
            dropped.append(str(name)[:200])
            continue
        cleaned = tree(value, dropped=dropped, path=name)
        if cleaned is None and value is not None:
            dropped.append(name)
        elif cleaned != {} or value == {}:
            out[name] = cleaned
    return out, dropped


def detail(value: Any) -> dict[str, Any] | None:
    """An event's detail object cleaned and kept within the contract's size as JSON: the longest texts
    are halved (and other values dropped, largest first) until it fits; None if nothing is left."""
    if not isinstance(value, dict):
        return None
    cleaned = tree(value, limit=LIMITS["detail"])
    while cleaned and _json_size(cleaned) > LIMITS["detail"]:
        key = max(cleaned, key=lambda k: _json_size(cleaned[k]))
        v = cleaned[key]
        if isinstance(v, str) and len(v) > 16:
            cleaned[key] = text(v, len(v) // 2)
        else:
            del cleaned[key]
    return cleaned or None


def caps(value: dict[str, Any]) -> dict[str, bool]:
    """Firmware capabilities: names to booleans, within the contract's count and name length."""
    out: dict[str, bool] = {}
    for k, v in value.items():
        if isinstance(k, str) and isinstance(v, bool) and len(k) <= LIMITS["reading.name"]:
            out[k] = v
            if len(out) >= LIMITS["readings"]:
                break
    return out


def _json_size(value: Any) -> int:
    return len(json.dumps(value))  # as the contract measures it (ASCII escapes, default separators)
