"""What happened in the lab, told to whoever listens: one small in-process event bus.

A service that changes something publishes a `LabEvent` (type and JSON-safe data) inside its transaction;
listeners (notices, webhooks) run at once, in the same transaction, and only write rows (a notice, an
outbox mail, a webhook delivery). So a change that is rolled back leaves no trace of its event, and a change
that commits always has its deliveries queued. Listeners are connected in fablab/wiring.py, nowhere else.

Event types (the webhook names, plus a few only notices use):
    booking.created  booking.changed  booking.cancelled  booking.checked_in  booking.no_show
    usage.started  usage.ended  machine.status  offer.made  window.result
    task.assigned  task.due  design.published
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

log = logging.getLogger("fablab.events")


@dataclass(frozen=True)
class LabEvent:
    type: str
    at: datetime
    # JSON-safe: ids, strings, numbers, ISO times. What a webhook body's "data" holds.
    data: Mapping[str, Any] = field(default_factory=dict)


Listener = Callable[[LabEvent], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Listener:
    """Register a listener (once; registering it again does nothing)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def publish(event: LabEvent) -> None:
    """Tell every listener, in registration order, in the caller's transaction. A listener's exception
    propagates: the change and its deliveries commit together or not at all."""
    for listener in _listeners:
        listener(event)
