"""Sending webhook deliveries: `deliver_due(now)`, called by `fablab notify`.

Each delivery is claimed with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so two senders never take the
same one; a sender that dies lets it go when the lease ends), POSTed outside any transaction, and its result
recorded and committed at once. 2xx is sent; anything else (another status, a redirect: never followed, a
timeout, a refused connection, an address that is not allowed) is a failure retried with back-off
(fablab/domain/backoff.py) until the retry budget is spent. A failing hook waits as a whole (one failure per
try, not one per waiting event); after 10 failures in a row it is disabled and admins are told.

At most once, except in the window between the receiver's answer and our commit: then the repeat carries the
same X-Fablab-Delivery id, which receivers use to dedupe.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import or_, select, update

from ..database import begin_write
from ..domain import webhook_urls
from ..domain.backoff import next_attempt, retry_delay
from ..domain.webhook_signing import signed_headers
from ..extensions import db
from ..models.webhooks import Webhook, WebhookDelivery
from . import notify
from . import webhooks as hook_service

log = logging.getLogger("fablab.webhooks")

TIMEOUT = 5.0
# Failed tries in a row after which a hook is disabled (with the back-off, about three hours of failing).
DISABLE_AFTER = 10
LEASE = timedelta(minutes=5)
# Claimed at once: CHUNK deliveries at TIMEOUT each must fit in the lease.
CHUNK = 20
MAX_ANSWER = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # failed tries (each is retried unless the budget is spent)
    disabled: list[int] = field(default_factory=list)


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that was checked, not to whatever the name resolves to a moment later."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _printable(text: str, limit: int = 200) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)[:limit].strip()


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = TIMEOUT) -> Outcome:
    """POST once; no redirects followed; the host's addresses checked again just before connecting."""
    parts = webhook_urls.parse(url)  # again: a stored URL may predate a rule, or be edited by hand
    if not isinstance(parts, SplitResult):
        return Outcome(False, None, webhook_urls.message(parts))
    host = parts.hostname or ""
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    addresses = hook_service.resolve(host, port)
    refusal = webhook_urls.check_addresses(host, addresses)
    if refusal is not None:
        return Outcome(False, None, webhook_urls.message(refusal))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn_type = _PinnedHTTPS if https else _PinnedHTTP
    conn = conn_type(host, port, address=addresses[0], timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        answer = conn.getresponse()
        text = answer.read(MAX_ANSWER).decode("utf-8", "replace")
        status = answer.status
        location = answer.getheader("Location")
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a header or host not encodable
        return Outcome(False, None, _printable(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
    if 200 <= status < 300:
        return Outcome(True, status)
    if 300 <= status < 400:
        return Outcome(False, status, _printable(f"HTTP {status}: redirects are not followed (to {location})"))
    return Outcome(False, status, _printable(f"HTTP {status} {text}"))


Sender = Callable[[str, bytes, dict[str, str]], Outcome]


def claim(now: datetime, limit: int) -> list[int]:
    """Take up to `limit` due deliveries of hooks that are active and not waiting; commits the lease."""
    stmt = (select(WebhookDelivery.id).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                   or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
                   Webhook.active.is_(True), or_(Webhook.retry_at.is_(None), Webhook.retry_at <= now))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
    if db.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=WebhookDelivery)
    begin_write()
    ids = list(db.session.scalars(stmt))
    if ids:
        db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids))
                           .values(lease_until=now + LEASE))
    db.session.commit()
    return ids


def _release(delivery: WebhookDelivery) -> None:
    delivery.lease_until = None


def _record(delivery: WebhookDelivery, hook: Webhook, outcome: Outcome, at: datetime,
            report: DeliveryReport) -> None:
    delivery.attempts += 1
    delivery.last_attempt_at = at
    delivery.lease_until = None
    delivery.last_status_code = outcome.status
    if outcome.ok:
        delivery.status = "sent"
        delivery.sent_at = at
        delivery.last_error = None
        hook.consecutive_failures = 0
        hook.retry_at = None
        report.sent += 1
        return
    report.failed += 1
    delivery.last_error = outcome.error
    retry = next_attempt(delivery.attempts, at, delivery.event_id)
    if retry is None:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = retry
    hook.consecutive_failures += 1
    hook.retry_at = at + retry_delay(hook.consecutive_failures, f"webhook:{hook.id}")
    if hook.consecutive_failures >= DISABLE_AFTER and hook.active:
        reason = f"{hook.consecutive_failures} failed deliveries in a row; the last: {outcome.error}"
        hook_service.disable(hook, reason, at)
        report.disabled.append(hook.id)
        host = urlsplit(hook.url).hostname or ""
        notify.notify_staff("webhook_disabled", {"webhook_id": hook.id, "host": host,
                                                 "description": hook.description, "reason": reason,
                                                 "failures": hook.consecutive_failures, "at": at.isoformat()},
                            now=at, link=f"/admin/webhooks/{hook.id}/deliveries",
                            dedupe_key=f"webhook_disabled:{hook.id}:{at.isoformat()}")
        log.warning("webhook %s to %s disabled: %s", hook.id, host, reason)


def deliver_due(now: datetime, *, limit: int = 200, sender: Sender | None = None) -> DeliveryReport:
    """Send what is due at `now` (at most `limit` tries); each result is committed as soon as it is known.

    Runs its own short transactions (the caller's open one is committed first). On SQLite each write takes
    the write lock up front (database.begin_write): a read snapshot cannot be upgraded once another sender
    committed."""
    send = sender or post
    started = time.monotonic()
    report = DeliveryReport()
    failing: set[int] = set()  # hooks that failed in this run: their other deliveries wait for the back-off
    taken = 0
    db.session.commit()
    while taken < limit:
        ids = claim(now, min(CHUNK, limit - taken))
        if not ids:
            break
        taken += len(ids)
        for delivery_id in ids:
            begin_write()
            delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
            hook = db.session.get(Webhook, delivery.webhook_id, populate_existing=True) if delivery else None
            if delivery is None or hook is None:
                db.session.commit()
                continue
            if hook.id in failing or not hook.active:
                _release(delivery)
                db.session.commit()
                continue
            # The time of signing moves on with the run (a long batch must not sign with a stale time).
            at = now + timedelta(seconds=time.monotonic() - started)
            body = delivery.body.encode()
            headers = signed_headers(hook_service.secret_for(hook), body, event_type=delivery.event_type,
                                     event_id=delivery.event_id, timestamp=int(at.timestamp()))
            url, hook_id = hook.url, hook.id
            db.session.commit()  # no transaction is held while the receiver answers
            outcome = send(url, body, headers)
            begin_write()
            delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
            hook = db.session.get(Webhook, hook_id, populate_existing=True, with_for_update=True)
            if delivery is not None and hook is not None:  # not deleted by an admin meanwhile
                _record(delivery, hook, outcome, at, report)
            db.session.commit()
            if not outcome.ok:
                failing.add(hook_id)
    return report
