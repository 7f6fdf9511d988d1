"""Demo data for accounts, through the same services the web uses: two open invitations sent by the steward,
and one newcomer who signed up and confirmed her address, waiting for a steward's approval (Members →
Joining shows both). The demo runs with open sign-up and staff approval unless FABLAB_SIGNUP says otherwise."""

from __future__ import annotations

import os
from typing import Any

from ..models import Member
from ..models.types import utcnow
from ..services import joining
from ..services import members as member_service

INVITED = ("newcomer@fablab.example", "workshop.guest@fablab.example")
PENDING_EMAIL = "pending.pia@fablab.example"


def seed_accounts_demo(members: list[Member]) -> str:
    now = utcnow()
    steward = next(m for m in members if m.role == "steward")
    joining.invite(steward, list(INVITED), now)
    pia = member_service.create_member(PENDING_EMAIL, "Pia Pending", verified=True)
    pia.approved = False  # confirmed her address; a steward approves her before she may book
    return f"{len(INVITED)} invitations open, 1 sign-up waiting for approval ({pia.email})"


def demo_signup_settings(config: Any) -> None:
    """Open sign-up with approval in the demo, so both paths can be tried (an explicit setting wins)."""
    if not os.environ.get("FABLAB_SIGNUP"):
        config["FABLAB_SIGNUP"] = "open"
        config["FABLAB_SIGNUP_APPROVAL"] = True
