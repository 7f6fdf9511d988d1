"""Who listens to what: the one place where features are connected to each other's events. create_app
calls `wire()` (the web app and the worker both start through it); importing a module never registers
anything. Add a listener here, one line each, with what it means in words.
"""

from __future__ import annotations

from .services import bookings, lab_events, waitlist, webhooks, windows


def wire() -> None:
    """Register every listener; idempotent (the registries keep one of each)."""
    # Request windows guard direct bookings: time a window is collecting requests for goes to the draw.
    bookings.register_guard(windows.direct_booking_block)
    # Freed time is offered to the waitlist: a cancel, early end or no-show gives its time to who waits.
    bookings.on_time_freed(waitlist.on_time_freed)
    # Lab events go out to integrations: each matching active webhook gets a signed delivery queued.
    lab_events.subscribe(webhooks.on_event)
