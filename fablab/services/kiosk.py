"""The kiosk by the door: registered devices, the live board, and a member's quick actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..database import write_transaction
from ..domain import account_standing
from ..domain import policy as pol
from ..domain.intervals import Interval
from ..extensions import db
from ..models import ACTIVE_STATUSES, Booking, BookingKind, KioskDevice, Machine, Member
from ..models.kiosks import KioskActivation
from ..models.types import utcnow
from ..security import new_token, token_digest
from . import bookings as svc
from . import machines as machine_service

# An activation link works once and for a day: it is sent around (mail, chat) and may end up in logs.
ACTIVATION_VALID = timedelta(hours=24)


class ActivationRefused(Exception):
    """An activation link that cannot register this screen; `reason`: unknown, used, expired or revoked."""

    def __init__(self, reason: str, message: str, status: int, at: datetime | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.status, self.at = reason, message, status, at


def register_kiosk(name: str, now: datetime | None = None) -> tuple[KioskDevice, str]:
    """A new kiosk device and its one-time activation token (shown once; only the digest is kept).

    The device's own secret is made when the link is opened; until then it holds the digest of a
    random token nobody has, so no cookie matches it.
    """
    device = KioskDevice(name=name, token_hash=token_digest(new_token()))
    db.session.add(device)
    db.session.flush()
    return device, new_activation(device, now)


def new_activation(device: KioskDevice, now: datetime | None = None) -> str:
    """A fresh activation link for `device` (e.g. the first one expired); older unused links stop working."""
    now = now or utcnow()
    db.session.execute(update(KioskActivation).where(
        KioskActivation.device_id == device.id, KioskActivation.used_at.is_(None),
        KioskActivation.expires_at > now).values(expires_at=now))
    token = new_token()
    db.session.add(KioskActivation(device_id=device.id, token_hash=token_digest(token), created_at=now,
                                   expires_at=now + ACTIVATION_VALID))
    db.session.flush()
    return token


def activate(token: str, now: datetime) -> tuple[KioskDevice, str]:
    """Use an activation link once: the device and its new device token (for the kiosk's cookie).

    Opening it again, after a day, or for a revoked kiosk raises ActivationRefused. The claim is a
    conditional update, so two screens opening the same link at once cannot both get the kiosk.
    """
    with write_transaction():
        act = db.session.scalar(select(KioskActivation).where(KioskActivation.token_hash == token_digest(token)))
        if act is None:
            raise ActivationRefused("unknown", "This kiosk link is not known here.", 404)
        device = act.device
        if device.revoked:
            raise ActivationRefused("revoked", f"The kiosk “{device.name}” was revoked.", 410)
        if act.used_at is not None:
            raise ActivationRefused("used", "This kiosk link was already used.", 410, act.used_at)
        if act.expires_at <= now:
            raise ActivationRefused("expired", "This kiosk link has expired.", 410, act.expires_at)
        claimed = db.session.execute(update(KioskActivation).where(
            KioskActivation.id == act.id, KioskActivation.used_at.is_(None)).values(used_at=now)
            .returning(KioskActivation.id)).first()
        if claimed is None:
            raise ActivationRefused("used", "This kiosk link was already used.", 410, now)
        device_token = new_token()
        device.token_hash = token_digest(device_token)
    return device, device_token


def kiosk_by_token(token: str | None) -> KioskDevice | None:
    if not token:
        return None
    return db.session.scalar(select(KioskDevice).where(KioskDevice.token_hash == token_digest(token),
                                                       KioskDevice.revoked.is_(False)))


def list_kiosks() -> list[KioskDevice]:
    return list(db.session.scalars(select(KioskDevice).order_by(KioskDevice.created_at)))


@dataclass
class BoardRow:
    machine: Machine
    state: str  # free, in_use, booked_soon, out_of_order, maintenance
    label: str
    detail: str = ""
    live: str | None = None


def board(now: datetime, show_names: bool) -> list[BoardRow]:
    """Every machine's state right now, from two queries (not one per machine): it is polled."""
    tz = svc.lab_tz()
    machines = machine_service.list_machines()
    _, day_end = pol.local_day_bounds(now, tz)
    rows = list(db.session.scalars(select(Booking).where(
        Booking.status.in_([s.value for s in ACTIVE_STATUSES]), Booking.end_at > now,
        Booking.start_at < day_end).order_by(Booking.start_at)))
    by_machine: dict[int, list[Booking]] = {}
    for b in rows:
        by_machine.setdefault(b.machine_id, []).append(b)
    out = []
    for m in machines:
        live = _live_label(m)
        if m.status == "out_of_order":
            out.append(BoardRow(m, "out_of_order", "Out of order", live=live))
            continue
        policy = svc.policy_for(m)
        active = [b for b in by_machine.get(m.id, []) if b.kind == BookingKind.MAINTENANCE
                  or svc.effective_status(b, now) in ("confirmed", "checked_in")]
        current = next((b for b in active if b.start_at <= now < b.end_at), None)
        if current is not None and current.kind == BookingKind.MAINTENANCE:
            out.append(BoardRow(m, "maintenance", "Maintenance",
                                f"until {current.end_at.astimezone(tz):%H:%M}", live))
        elif current is not None:
            who = f" by {current.member.name.split()[0]}" if show_names else ""
            out.append(BoardRow(m, "in_use", f"In use{who}", f"until {current.end_at.astimezone(tz):%H:%M}", live))
        elif m.live_state in ("printing", "busy"):
            out.append(BoardRow(m, "in_use", "In use", "running without a booking", live))
        else:
            nxt = next((b for b in active if b.start_at > now), None)
            open_now = bool(pol.opening_pairs(policy, now, now + timedelta(minutes=1), tz))
            if not open_now:
                out.append(BoardRow(m, "closed", "Closed now", live=live))
            elif nxt is not None:
                out.append(BoardRow(m, "booked_soon", "Free now", f"booked from {nxt.start_at.astimezone(tz):%H:%M}",
                                    live))
            else:
                out.append(BoardRow(m, "free", "Free now", "", live))
    return out


def _live_label(m: Machine) -> str | None:
    if not m.live_state:
        return None
    label = m.live_state.replace("_", " ")
    if m.live_progress is not None and m.live_state in ("printing", "busy", "paused"):
        label += f" {m.live_progress:.0f} %"
    return label


@dataclass
class BookNowOption:
    machine: Machine
    start: datetime
    max_length: timedelta
    reason: str = ""  # why it cannot be booked now, if max_length is 0
    choices: tuple[int, ...] = ()  # minutes to offer as buttons, the longest allowed last
    next_free: Interval | None = None  # when it is not free now: the next slot one could book


def _choices(policy: pol.BookingPolicy, longest: timedelta) -> tuple[int, ...]:
    top = int(longest.total_seconds() // 60)
    if top <= 0:
        return ()
    wanted = {policy.min_minutes, 60, 120, top}
    return tuple(sorted(m for m in wanted if policy.min_minutes <= m <= top and m % policy.slot_minutes == 0))


def book_now_options(member: Member, now: datetime) -> list[BookNowOption]:
    out = []
    account = account_standing.account_state(member.email_verified_at is not None, member.approved)
    for m in machine_service.list_machines():
        start, longest = svc.longest_now(m, member, now)
        reason = ""
        if not longest:
            qual = machine_service.qualification_state(member, m, now)
            if account != "ok":  # the booking rules refuse it all until then (account_not_verified/approved)
                reason = "Confirm your email first" if account == "unverified" else "Waiting for the lab's approval"
            elif m.status != "available":
                reason = "Out of order"
            elif not qual.qualified:
                reason = qual.label.capitalize()
            elif not pol.opening_pairs(svc.policy_for(m), now, now + timedelta(minutes=1), svc.lab_tz()):
                reason = "Closed now"
            else:
                reason = "Busy now"
        nxt = svc.next_free(m, now) if reason in ("Closed now", "Busy now") else None
        out.append(BookNowOption(m, start, longest, reason, _choices(svc.policy_for(m), longest), nxt))
    return out


def today_bookings(member: Member, now: datetime) -> list[Booking]:
    tz = svc.lab_tz()
    lo, hi = pol.local_day_bounds(now, tz)
    return [b for b in svc.member_bookings(member, since=max(lo, now - timedelta(hours=1)), until=hi)
            if svc.effective_status(b, now) in ("confirmed", "checked_in")]


def extension_options(booking: Booking, member: Member, now: datetime) -> list[datetime]:
    """New ends the running booking could be extended to (free, within its rules)."""
    policy = svc.policy_for(booking.machine)
    free = svc.availability(booking.machine, booking.end_at, booking.end_at + policy.max_length, now)
    if not free or free[0].start > booking.end_at:
        return []
    out: list[datetime] = []
    end = booking.end_at + policy.slot
    limit = min(free[0].end, booking.start_at + policy.max_length)
    while end <= limit and len(out) < 4:
        out.append(end)
        end += policy.slot
    return out


def touch(device: KioskDevice) -> None:
    now = utcnow()
    if device.last_seen_at is None or now - device.last_seen_at > timedelta(minutes=1):
        # A write inside a polled GET: its own short write transaction (see database.begin_write).
        with write_transaction():
            device.last_seen_at = now
