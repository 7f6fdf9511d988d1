"""All models, imported here so Alembic and the app see every table."""

from . import designs, scheduling, usage  # feature models: imported for their tables
from .bookings import ACTIVE_STATUSES, Booking, BookingKind, BookingStatus
from .kiosks import KioskDevice
from .machines import Machine, MachineStatus, MachineType, Qualification
from .members import ApiToken, LoginThrottle, Member, MemberSession, Role
from . import series  # recurring bookings (booking_series)
from . import notifications  # notices, the mail outbox, preferences
from . import webhooks as webhooks  # webhooks and their deliveries (the alias marks the re-export)
from . import inductions as inductions  # induction sessions, sign-ups, requests, expiry rules
from . import accounts as accounts  # one-time links, external identities, recovery codes, the audit log
from . import two_factor as two_factor  # the lab's two-factor switch, sign-ins waiting for their code
from . import print_jobs as print_jobs  # print queues, printer profiles

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
    "MemberSession",
    "Qualification",
    "Role",
    "designs",
    "notifications",
    "scheduling",
    "series",
    "usage",
]
from . import privacy as privacy  # account deletions waiting for staff confirmation
