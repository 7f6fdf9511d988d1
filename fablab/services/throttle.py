"""Slow down guessing without letting a guesser lock anyone out.

A failure counts against budgets: the source (client address) and the source with the account for web
sign-in; the member number, and the kiosk's PIN or badge reader, at a kiosk. A budget that is spent
locks for base·2^k seconds (at most 15 minutes). No budget is the account's alone: someone guessing a
password from elsewhere cannot keep its owner out, and a spray across many accounts from one source runs
into that source's budget.

The table stays small: keys are keyed hashes (never a typed email, which may be a mistyped password, nor
an address); rows whose window has passed are deleted on every write; and a source cannot create rows
faster than its own budget lets it fail.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, delete, or_

from ..extensions import db
from ..models import LoginThrottle

WINDOW = timedelta(minutes=15)
MAX_LOCK_SECONDS = 15 * 60


@dataclass(frozen=True)
class Budget:
    key: str
    free_attempts: int = 5
    base_seconds: int = 30


def _h(value: str) -> str:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, b"throttle:" + value.encode(), hashlib.sha256).hexdigest()[:24]


def source_of(remote_addr: str | None) -> str:
    """The client's address as a throttle source: IPv6 by its /64 (one host usually holds a whole /64)."""
    try:
        ip = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def login_budgets(remote_addr: str | None, email: str) -> tuple[Budget, ...]:
    """Web sign-in: one account from one source (5 free), and all accounts from one source (20 free)."""
    src = _h(source_of(remote_addr))
    return (Budget(f"login:{src}:{_h(email.strip().lower())}", 5, 30), Budget(f"login-src:{src}", 20, 30))


def device_budgets(device: str, email: str) -> tuple[Budget, ...]:
    """Web sign-in from a browser the member signed in with before: its own budget (5 free), apart from
    the source's, so a guesser sharing the member's address cannot lock them out either."""
    return (Budget(f"login-dev:{_h(device)}:{_h(email.strip().lower())}", 5, 30),)


def mark(value: str) -> str:
    """A keyed hash to name something (a member) in a cookie without revealing it."""
    return _h(value)[:16]


def kiosk_pin_budgets(kiosk_id: int, member_no: int) -> tuple[Budget, ...]:
    """Kiosk PIN: the member number tried (5 free, at every kiosk: a second kiosk is no second chance),
    and PIN sign-in at this kiosk across numbers (20 free). Neither stops badges."""
    return (Budget(f"kiosk-no:{_h(str(member_no))}", 5, 30), Budget(f"kiosk-pin:{kiosk_id}", 20, 30))


def kiosk_badge_budgets(kiosk_id: int) -> tuple[Budget, ...]:
    """Unknown badges at this kiosk (someone typing UIDs into the reader's field): slows badges there."""
    return (Budget(f"kiosk-badge:{kiosk_id}", 5, 30),)


def seconds_locked(budgets: tuple[Budget, ...], now: datetime) -> int:
    """How long the longest lock among `budgets` still runs (0: not locked)."""
    wait = 0
    for budget in budgets:
        row = db.session.get(LoginThrottle, budget.key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = max(wait, math.ceil((row.locked_until - now).total_seconds()))
    return wait


def record_failure(budgets: tuple[Budget, ...], now: datetime) -> int:
    """Count a failure against each budget; returns the longest lock it caused (0 while still free).

    Commits: a failure must count even when the request then errors out.
    """
    prune(now, keep=tuple(b.key for b in budgets))
    lock = 0
    for budget in budgets:
        row = db.session.get(LoginThrottle, budget.key)
        if row is None:
            row = LoginThrottle(key=budget.key, failures=0)
            db.session.add(row)
        elif now - row.last_failure_at > WINDOW:
            row.failures = 0
            row.locked_until = None
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= budget.free_attempts:
            seconds = min(budget.base_seconds * 2 ** min(row.failures - budget.free_attempts, 16), MAX_LOCK_SECONDS)
            row.locked_until = now + timedelta(seconds=seconds)
            lock = max(lock, seconds)
    db.session.commit()
    return lock


def reset(budgets: tuple[Budget, ...]) -> None:
    """After a success: forget these budgets' failures (only those passed: a spray's one hit must not
    refill the source's budget). The caller commits, with the sign-in."""
    for budget in budgets:
        row = db.session.get(LoginThrottle, budget.key)
        if row is not None:
            db.session.delete(row)


def prune(now: datetime, keep: tuple[str, ...] = ()) -> int:
    """Delete the rows whose window has passed and whose lock (if any) has run out (but `keep`, about to
    be written)."""
    result = cast(CursorResult[Any], db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.last_failure_at < now - WINDOW,
        or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now),
        LoginThrottle.key.not_in(keep))))
    return result.rowcount or 0


def describe_wait(seconds: int) -> str:
    """'40 seconds', 'about 4 minutes': how long a person has to wait, in words."""
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"about {round(seconds / 60)} minutes"
