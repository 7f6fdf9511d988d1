"""Webhooks: the URLs admins registered for integrations, and every delivery to them (the outbox and the
delivery log in one table).

A delivery is written in the same transaction as the event that causes it; `fablab notify` sends it
(fablab/services/webhook_delivery.py). No secret is stored: a hook's signing secret is derived from the
installation's SECRET_KEY, its id and `secret_salt` (fablab/domain/webhook_signing.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .types import UTCDateTime, utcnow


class Webhook(Model):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # The subscribed types (fablab.domain.webhook_body.EVENT_TYPES), a JSON list.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Failed attempts in a row (any success resets it); at 10 the hook is disabled and admins are told.
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # While the receiver fails, the hook waits until then before the next try (back-off per hook, so a
    # burst of events to a dead receiver counts as one failure per try, not one per event).
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Changing it ("rotate") changes the secret; random, not secret by itself.
    secret_salt: Mapped[str] = mapped_column(String(64))


class WebhookDelivery(Model):
    """One event to one hook: its exact signed body, whether it went out, and the last try's result."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    # The body's "id" and the X-Fablab-Delivery header: the same on every retry, so receivers can dedupe.
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    body: Mapped[str] = mapped_column(Text)  # the exact JSON text that is signed and sent
    # 'pending' (to send at next_attempt_at), 'sent', 'failed' (retry budget spent).
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A sender that took the delivery holds it until then; one that died lets it go when the lease ends.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    webhook: Mapped[Webhook] = relationship()

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_log", "webhook_id", "id"),
    )
