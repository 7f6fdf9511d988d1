"""What a webhook says: the event types a hook may subscribe to, and the exact JSON body that is signed.

Pure. The body is `{"created_at", "data", "id", "type"}` with keys sorted and no spaces, so the same event
always makes the same bytes (the signature is over those bytes). Members appear by id only: names and
e-mail addresses are stripped from the data unless the lab chose to show names (then names stay, e-mail
addresses never go out).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# What a hook may subscribe to (the admin's checkboxes), in the order they are shown.
EVENT_TYPES: tuple[str, ...] = (
    "booking.created", "booking.cancelled", "booking.checked_in", "booking.no_show",
    "usage.started", "usage.ended", "machine.status", "offer.made", "task.due", "design.published",
)
# The admin's test request; every hook receives it whatever it subscribed to.
PING = "ping"

# Keys that name or reach a person. Machine names ("machine") and titles are not people and stay.
_NAME_KEYS = frozenset({"member", "member_name", "actor", "actor_name", "assignee", "assignee_name",
                        "author", "author_name", "name", "by", "by_name", "steward", "steward_name"})


def _is_email_key(key: str) -> bool:
    return key == "email" or key.endswith("_email") or key.endswith("_address")


def strip_people(data: Any, *, show_names: bool) -> Any:
    """`data` without members' names (unless `show_names`) and without e-mail addresses, at any depth."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            k = str(key)
            if _is_email_key(k) or (k in _NAME_KEYS and not show_names):
                continue
            out[k] = strip_people(value, show_names=show_names)
        return out
    if isinstance(data, list | tuple):
        return [strip_people(v, show_names=show_names) for v in data]
    return data


def iso_utc(at: datetime) -> str:
    """A time as the body writes it: UTC, seconds, "Z" (e.g. 2026-03-29T01:30:00Z)."""
    if at.tzinfo is None:
        raise ValueError("naive datetime in a webhook body")
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def build_body(event_id: str, event_type: str, created_at: datetime, data: Mapping[str, Any], *,
               show_names: bool = False) -> str:
    """The exact JSON text that is stored, signed and sent."""
    body = {"id": event_id, "type": event_type, "created_at": iso_utc(created_at),
            "data": strip_people(data, show_names=show_names)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def clean_event_types(chosen: list[str]) -> list[str]:
    """The subscribable types among `chosen`, in the canonical order, each once."""
    wanted = set(chosen)
    return [t for t in EVENT_TYPES if t in wanted]
