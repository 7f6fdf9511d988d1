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


def openapi_webhooks() -> dict[str, Any]:
    """The OpenAPI 3.1 `webhooks` object: one entry per event type, each a POST of the body above with the
    signature headers (for fablab/api/openapi.py's document)."""
    headers = {
        "X-Fablab-Event": "The event type (the body's `type`).",
        "X-Fablab-Delivery": "The event id (the body's `id`); the same on every retry: dedupe on it.",
        "X-Fablab-Timestamp": "Unix seconds when this attempt was signed.",
        "X-Fablab-Signature-256": "`sha256=` + hex HMAC-SHA256 of the raw body with the hook's secret.",
        "X-Fablab-Signature": "`t=<timestamp>,v1=<hex HMAC-SHA256 of '<timestamp>.' + raw body>`; refuse it when "
                              "the timestamp is more than 5 minutes from your clock (a replay).",
    }
    out: dict[str, Any] = {}
    for event_type in (*EVENT_TYPES, PING):
        body = {"type": "object", "required": ["id", "type", "created_at", "data"], "additionalProperties": False,
                "properties": {"id": {"type": "string", "format": "uuid"}, "type": {"const": event_type},
                               "created_at": {"type": "string", "format": "date-time"},
                               "data": {"type": "object", "description": "The ids of what the event is about "
                                        "(members by id only), times in ISO UTC."}}}
        out[event_type] = {"post": {
            "summary": f"{event_type} (sent to hooks subscribed to it)" if event_type != PING
            else "ping (the admin's test, sent whatever the hook subscribed to)",
            "parameters": [{"name": name, "in": "header", "required": True, "description": text,
                            "schema": {"type": "string"}} for name, text in headers.items()],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"2XX": {"description": "Received; anything else (or no answer within 5 s) is retried"}},
            "security": [],
        }}
    return out
