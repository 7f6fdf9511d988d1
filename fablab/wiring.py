"""Who listens to what: the one place where features are connected to each other's events. create_app
calls `wire()` (the web app and the worker both start through it); importing a module never registers
anything. Add a listener here, one line each, with what it means in words.
"""

from __future__ import annotations

from . import metrics
from .services import bookings, lab_events, notice_rules, notice_scans, print_offers, waitlist, webhooks, windows


def wire() -> None:
    """Register every listener; idempotent (the registries keep one of each)."""
    # Request windows guard direct bookings: time a window is collecting requests for goes to the draw.
    bookings.register_guard(windows.direct_booking_block)
    # Freed time is offered to the waitlist: a cancel, early end or no-show gives its time to who waits.
    bookings.on_time_freed(waitlist.on_time_freed)
    # Members are told what happened to their bookings, offers, draws and tasks (notices and mails).
    lab_events.subscribe(notice_rules.on_event)
    # A machine in alarm or error is told to the stewards; a task fallen due to its assignee (or the stewards).
    lab_events.subscribe(notice_scans.on_machine_status)
    lab_events.subscribe(notice_scans.on_task_due)
    # Bookings made are counted for Prometheus (fablab/metrics.py).
    lab_events.subscribe(metrics.on_lab_event)
    # Integrations hear what happened: each event a webhook subscribed to is queued for it (signed, retried).
    lab_events.subscribe(webhooks.on_event)
    # A cancelled or released booking withdraws the prints queued for it (kept with the reason; member told).
    lab_events.subscribe(print_offers.on_booking_event)
