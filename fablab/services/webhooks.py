"""Webhooks for integrations (the lab's chat, door system, Home Assistant): admins register URLs and pick
event types; every matching lab event becomes a delivery row in the publisher's transaction.

`on_event` is a fablab.services.lab_events listener (connected in fablab/wiring.py); it only writes rows.
`fablab notify` sends them (fablab/services/webhook_delivery.py). Secrets are never stored: a hook's secret
is derived from SECRET_KEY, its id and a random salt, shown to the admin on creation and on "rotate".
"""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult

from flask import current_app
from sqlalchemy import delete as sa_delete
from sqlalchemy import func, insert, select
from sqlalchemy import update as sa_update

from ..domain import webhook_urls
from ..domain.webhook_body import EVENT_TYPES, PING, build_body, clean_event_types
from ..domain.webhook_signing import derive_secret
from ..extensions import db
from ..models.types import utcnow
from ..models.webhooks import Webhook, WebhookDelivery
from .lab_events import LabEvent


class WebhookError(ValueError):
    """A refusal with its code (stable) and the sentence shown in the form."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def event_types_of(hook: Webhook) -> list[str]:
    """The hook's subscribed types as stored, read defensively (a hand-edited row may hold any JSON)."""
    raw = hook.event_types
    return [t for t in raw if isinstance(t, str)] if isinstance(raw, list) else []


def secret_for(hook: Webhook) -> str:
    """The hook's signing secret (derived, never stored)."""
    return derive_secret(current_app.config["SECRET_KEY"], hook.id, hook.secret_salt)


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str) -> str:
    """The URL, stripped, when a webhook may be registered for it; else WebhookError with the reason.

    Looks the host up (at registration, in the admin's request): a host that resolves to a link-local or
    cloud metadata address is refused. Delivery checks again before every connection (the name may change).
    """
    parts = webhook_urls.parse(url)
    if not isinstance(parts, SplitResult):  # a refusal (a SplitResult is a tuple too: test for it)
        raise WebhookError(parts[0], webhook_urls.message(parts))
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    refusal = webhook_urls.check_addresses(host, resolve(host, port))
    if refusal is not None:
        raise WebhookError(refusal[0], webhook_urls.message(refusal))
    return url.strip()


def _events(chosen: Iterable[str]) -> list[str]:
    events = clean_event_types(list(chosen))
    if not events:
        raise WebhookError("no_events", "Pick at least one event type.")
    return events


def create(url: str, description: str, events: Iterable[str], *, created_by: int | None,
           now: datetime) -> tuple[Webhook, str]:
    """Register a hook; returns it and its secret (to show once). The caller commits."""
    hook = Webhook(url=check_url(url), description=description.strip(), event_types=_events(events), active=True,
                   consecutive_failures=0, created_by=created_by, created_at=now,
                   secret_salt=secrets.token_hex(16))
    db.session.add(hook)
    db.session.flush()  # the id is part of the secret
    return hook, secret_for(hook)


def update(hook: Webhook, url: str, description: str, events: Iterable[str]) -> None:
    hook.url = check_url(url)
    hook.description = description.strip()
    hook.event_types = _events(events)


def rotate(hook: Webhook) -> str:
    """A new secret (the old one stops working at once; deliveries still waiting are signed with the new)."""
    hook.secret_salt = secrets.token_hex(16)
    return secret_for(hook)


def enable(hook: Webhook, now: datetime) -> None:
    """Enable again: a fresh start (failure count and wait cleared), and what waited goes out at once."""
    hook.active = True
    hook.consecutive_failures = 0
    hook.retry_at = None
    hook.disabled_at = None
    hook.disabled_reason = None
    db.session.execute(sa_update(WebhookDelivery)
                       .where(WebhookDelivery.webhook_id == hook.id, WebhookDelivery.status == "pending",
                              WebhookDelivery.next_attempt_at > now)
                       .values(next_attempt_at=now))


def disable(hook: Webhook, reason: str, now: datetime) -> None:
    hook.active = False
    hook.disabled_at = now
    hook.disabled_reason = reason


def delete(hook: Webhook) -> None:
    db.session.execute(sa_delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    db.session.delete(hook)


def _queue(hook_id: int, event_type: str, event_id: str, body: str, at: datetime) -> WebhookDelivery:
    # Due at once; never later than the real clock, so an event stamped ahead is not held back.
    due = min(at, utcnow())
    delivery = WebhookDelivery(webhook_id=hook_id, event_type=event_type, event_id=event_id, body=body,
                               status="pending", attempts=0, next_attempt_at=due, created_at=at)
    db.session.add(delivery)
    return delivery


def _body(event_id: str, event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    return build_body(event_id, event_type, at, data, show_names=bool(current_app.config["FABLAB_SHOW_MEMBER_NAMES"]))


def on_event(event: LabEvent) -> None:
    """Lab event listener: one delivery per active hook subscribed to the event's type (one event id, the
    same body for all of them). Runs inside booking requests: two light statements (ids and types only, one
    multi-row insert), no ORM objects."""
    if event.type not in EVENT_TYPES:
        return
    rows = db.session.execute(select(Webhook.id, Webhook.event_types).where(Webhook.active.is_(True)))
    hook_ids = [hook_id for hook_id, types in rows if isinstance(types, list) and event.type in types]
    if not hook_ids:
        return
    event_id = str(uuid.uuid4())
    body = _body(event_id, event.type, event.at, event.data)
    due = min(event.at, utcnow())
    db.session.execute(insert(WebhookDelivery), [
        {"webhook_id": hook_id, "event_type": event.type, "event_id": event_id, "body": body, "status": "pending",
         "attempts": 0, "next_attempt_at": due, "created_at": event.at} for hook_id in hook_ids])


def queue_ping(hook: Webhook, now: datetime) -> WebhookDelivery:
    """A test delivery ("ping") to the hook, whatever it subscribed to."""
    event_id = str(uuid.uuid4())
    return _queue(hook.id, PING, event_id, _body(event_id, PING, now, {"webhook_id": hook.id}), now)


def redeliver(delivery: WebhookDelivery, now: datetime) -> None:
    """Send a delivery again: the same body and event id (receivers dedupe on it), a fresh retry budget."""
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.lease_until = None


def hooks() -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).order_by(Webhook.id)))


def get(hook_id: int) -> Webhook | None:
    return db.session.get(Webhook, hook_id)


def delivery_of(hook: Webhook, delivery_id: int) -> WebhookDelivery | None:
    d = db.session.get(WebhookDelivery, delivery_id)
    return d if d is not None and d.webhook_id == hook.id else None


def deliveries(hook: Webhook, page: int, per_page: int = 50) -> tuple[list[WebhookDelivery], int]:
    """One page of the hook's delivery log, newest first, and the number of pages."""
    total = db.session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.webhook_id == hook.id)) or 0
    pages = max(1, -(-total // per_page))
    rows = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
                              .order_by(WebhookDelivery.id.desc()).offset((page - 1) * per_page).limit(per_page))
    return list(rows), pages


def counts(hook_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Deliveries per hook and status, for the list page (one query)."""
    out: dict[int, dict[str, int]] = {i: {} for i in hook_ids}
    rows = db.session.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
                              .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status))
    for hook_id, status, n in rows:
        out.setdefault(hook_id, {})[status] = n
    return out
