"""All models, imported here so Alembic and the app see every table."""

from .bookings import ACTIVE_STATUSES, Booking, BookingKind, BookingStatus
from .kiosks import KioskDevice
from .machines import Machine, MachineStatus, MachineType, Qualification
from .members import ApiToken, LoginThrottle, Member, Role

__all__ = [
    "ACTIVE_STATUSES",
    "ApiToken",
    "Booking",
    "BookingKind",
    "BookingStatus",
    "KioskDevice",
    "LoginThrottle",
    "Machine",
    "MachineStatus",
    "MachineType",
    "Member",
    "Qualification",
    "Role",
]

# Feature models register their tables by being imported (one line each, appended below).
from . import scheduling  # noqa: E402,F401
from . import designs  # noqa: E402,F401
from . import usage  # noqa: E402,F401
