"""Whether an account may book yet, and the words of the refusal when it may not.

A member who signed up themself must confirm their email address first (the mailed link), then, where the
lab asks for it (FABLAB_SIGNUP_APPROVAL), wait for a steward's approval. Until then they may sign in and
look around; every booking path (web, API, kiosk, badge at the machine) refuses with the same reason,
because each goes through the booking rules (fablab/domain/booking_rules.py, `MemberContext.account`).
"""

from __future__ import annotations

from typing import Any

OK = "ok"
UNVERIFIED = "unverified"
UNAPPROVED = "unapproved"
ACCOUNT_STATES = (OK, UNVERIFIED, UNAPPROVED)

_REFUSALS: dict[str, tuple[str, str]] = {
    UNVERIFIED: ("account_not_verified",
                 "Please confirm your email address first: follow the link in the mail we sent you, or have the "
                 "link sent again. Booking opens once it is confirmed."),
    UNAPPROVED: ("account_not_approved",
                 "Your account is waiting for the lab's approval: you can look around, but booking opens once a "
                 "steward has approved it. You will get a mail when that happens."),
}


def account_state(email_verified: bool, approved: bool) -> str:
    """The address must be confirmed, then (where the lab asks) staff approve."""
    if not email_verified:
        return UNVERIFIED
    return OK if approved else UNAPPROVED


def refusal(state: str) -> tuple[str, str, dict[str, Any]]:
    """(code, message, allowed) of the booking refusal for an account in `state` (not OK)."""
    try:
        code, message = _REFUSALS[state]
    except KeyError:
        raise ValueError(f"no refusal for the account state {state!r} (one of {ACCOUNT_STATES})") from None
    return code, message, {"account": state}
