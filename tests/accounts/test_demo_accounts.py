"""The demo lab's accounts: two open invitations and a confirmed sign-up waiting for approval, which the
steward's Joining pages list; the demo runs with open sign-up and approval unless FABLAB_SIGNUP is set."""

from __future__ import annotations

from datetime import UTC, datetime

from fablab import demo
from fablab.demo.accounts import INVITED, PENDING_EMAIL, demo_signup_settings
from fablab.services import joining


def test_demo_accounts(app, app_ctx) -> None:
    demo.seed()
    open_invites = {link.email for link in joining.invitations(datetime.now(UTC))}
    assert open_invites == set(INVITED)
    assert [m.email for m in joining.pending_approval()] == [PENDING_EMAIL]


def test_demo_signup_settings_yield_to_the_environment(monkeypatch) -> None:
    config: dict[str, object] = {"FABLAB_SIGNUP": "closed", "FABLAB_SIGNUP_APPROVAL": False}
    monkeypatch.delenv("FABLAB_SIGNUP", raising=False)
    demo_signup_settings(config)
    assert config == {"FABLAB_SIGNUP": "open", "FABLAB_SIGNUP_APPROVAL": True}
    monkeypatch.setenv("FABLAB_SIGNUP", "invite")
    config = {"FABLAB_SIGNUP": "invite", "FABLAB_SIGNUP_APPROVAL": False}
    demo_signup_settings(config)
    assert config["FABLAB_SIGNUP"] == "invite"
