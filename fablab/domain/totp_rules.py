"""Two-factor sign-in rules (TOTP, RFC 6238), free of any clock: the caller passes the instant.

A code is valid for its 30-second time step and one step either side (a phone whose clock is a little off
still works). A code is accepted once: only steps after the last accepted one count, so a code seen over
someone's shoulder, or replayed from a captured request, is refused even within its window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

PERIOD_SECONDS = 30
DIGITS = 6
WINDOW_STEPS = 1
# The sign-in waits this long for the second factor after the password (or LDAP, OIDC...) was proven.
CHALLENGE_LIFETIME = timedelta(minutes=5)
# Wrong codes one pending sign-in may take before the password has to be given again.
CHALLENGE_MAX_FAILURES = 5

RECOVERY_CODE_COUNT = 10
# Recovery codes: 12 characters from an alphabet without look-alikes (no 0/o, 1/l/i), 59 bits each,
# printed in groups of four. Typed codes are read case-insensitively, with or without dashes and spaces.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 12
_CODE = re.compile(rf"^[0-9]{{{DIGITS}}}$")  # ASCII digits only: \d also matches other scripts' digits


def time_step(unix_seconds: float, period: int = PERIOD_SECONDS) -> int:
    """The TOTP time step an instant falls into."""
    return int(unix_seconds // period)


def fresh_steps(step: int, last_step: int | None, window: int = WINDOW_STEPS) -> list[int]:
    """The steps a code typed during `step` may belong to: the window around it, but only those after the
    last accepted step (the replay rule). Newest first, so a match records the latest step."""
    return [s for s in range(step + window, step - window - 1, -1) if last_step is None or s > last_step]


@dataclass(frozen=True)
class TypedCode:
    kind: str  # "totp" or "recovery"
    value: str  # the digits, or the recovery code normalised (lower case, no separators)


def read_code(text: str | None) -> TypedCode | None:
    """What a person typed in the second-factor field: six digits (spaces allowed, as apps show '123 456'),
    a recovery code, or None when it can be neither."""
    raw = (text or "").strip()
    if len(raw) > 64:
        return None
    digits = raw.replace(" ", "")
    if _CODE.match(digits):
        return TypedCode("totp", digits)
    recovery = normalise_recovery(raw)
    return TypedCode("recovery", recovery) if recovery else None


def normalise_recovery(text: str) -> str | None:
    """A recovery code as stored (lower case, no separators), or None if it cannot be one."""
    value = "".join(ch for ch in text.lower() if ch not in " -\t")
    if len(value) != RECOVERY_LENGTH or any(ch not in RECOVERY_ALPHABET for ch in value):
        return None
    return value


def format_recovery(value: str) -> str:
    """'abcdefghjkmn' → 'abcd-efgh-jkmn', the way it is shown."""
    return "-".join(value[i:i + 4] for i in range(0, len(value), 4))


def challenge_open(expires_at: datetime, failures: int, now: datetime) -> bool:
    """A pending sign-in still takes codes: not expired, not out of attempts."""
    return now < expires_at and failures < CHALLENGE_MAX_FAILURES


def required_for(is_staff: bool, deployment_default: bool, lab_switch: bool) -> bool:
    """Whether this account must use two-factor sign-in: stewards and admins, when the deployment
    (FABLAB_REQUIRE_2FA_STAFF) or an admin (the lab's switch) says so. Either one suffices: an admin cannot
    switch off what the deployment requires."""
    return is_staff and (deployment_default or lab_switch)
