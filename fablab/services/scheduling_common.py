"""What the fair-scheduling features share: request windows (windows.py, their close in window_draw.py),
the waitlist (waitlist.py) and the task board (effort.py) refuse actions with `SchedulingError` and read
the lab's time zone and the database backend the same way. Only such small shared pieces belong here; it
imports no feature module.
"""

from __future__ import annotations

from typing import Any

from ..extensions import db
from . import bookings as booking_service


class SchedulingError(Exception):
    """A scheduling action was refused; `code` names the rule, `status` is the HTTP status to use."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def lab_tz() -> Any:
    """The lab's time zone (local weeks, opening hours, the times shown in messages)."""
    return booking_service.lab_tz()


def is_postgres() -> bool:
    """Whether the session talks to PostgreSQL (row locks and advisory locks; SQLite serialises writers)."""
    return db.session.get_bind().dialect.name == "postgresql"
