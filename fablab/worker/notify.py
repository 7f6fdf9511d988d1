"""The `fablab notify` process: delivers the outboxes, one table of delivery functions run every few seconds.

Each delivery takes `now`, a batch limit and a stop check, runs in its own app context and commits as it
goes; one failing delivery is logged and the others still run. A stop (SIGTERM, SIGINT) finishes the mail
in flight and gives the rest of the batch back. Several processes may run side by side (PostgreSQL): they
share the work through leases.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask

from ..extensions import db
from ..models.types import utcnow
from ..services import mail_delivery

log = logging.getLogger("fablab.worker.notify")


@dataclass(frozen=True)
class Delivery:
    name: str
    run: Callable[..., object]  # run(now, *, limit=..., lease=..., should_stop=...)


# One row per outbox (webhooks: add `Delivery("webhooks", webhook_delivery.deliver_due)`).
DELIVERIES: tuple[Delivery, ...] = (
    Delivery("mail", mail_delivery.deliver_due),
)


class NotifyWorker:
    def __init__(self, app: Flask, *, every: float = 2.0, limit: int = 500,
                 lease: timedelta = mail_delivery.LEASE, clock: Callable[[], datetime] = utcnow) -> None:
        self.app, self.every, self.limit, self.lease, self.clock = app, every, limit, lease, clock
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def run_once(self) -> dict[str, object]:
        """Every delivery once, each in its own app context: its result, or the exception it raised."""
        results: dict[str, object] = {}
        for d in DELIVERIES:
            if self.stop_event.is_set():
                break
            with self.app.app_context():
                try:
                    result = d.run(self.clock(), limit=self.limit, lease=self.lease,
                                   should_stop=self.stop_event.is_set)
                    if getattr(result, "claimed", 0):
                        log.info("%s: %s", d.name, result)
                    results[d.name] = result
                except Exception as exc:  # noqa: BLE001 (the next delivery and the next round still run)
                    db.session.rollback()
                    log.exception("delivery %s failed; it runs again next round", d.name)
                    results[d.name] = exc
                finally:
                    db.session.remove()
        return results

    def run(self) -> None:
        """Until stopped: a round, then wait `every` seconds (at once again when a batch was full)."""
        while not self.stop_event.is_set():
            results = self.run_once()
            full = any(getattr(r, "claimed", 0) >= self.limit for r in results.values())
            if not full:
                self.stop_event.wait(self.every)
