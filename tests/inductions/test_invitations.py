"""Induction notices carry a calendar invitation: delivered through a real SMTP server, read back with the
test's own iCalendar line parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from fablab.extensions import db
from fablab.services import inductions as svc
from fablab.services.induction_invites import session_uid
from fablab.services.mail_delivery import deliver_due
from tests.notify.test_mail_build import mail_config  # noqa: F401 (fixture)
from tests.support.smtp import parse_ics


def _event(msg: EmailMessage) -> tuple[str, dict]:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert parts, f"no invitation in {msg['Subject']!r}"
    [vcal] = parse_ics(parts[-1].get_content())
    [event] = vcal["_children"]
    return vcal["METHOD"][0][0], event


def test_confirmation_moved_up_and_cancellation_carry_the_sessions_invitation(
        mail_config, make_session, make_member) -> None:  # noqa: F811
    s = make_session(capacity=1)
    ada = make_member("ada@example.org", name="Ada")
    bob = make_member("bob@example.org", name="Bob")
    t0 = datetime.now(UTC)
    svc.sign_up(ada, s.id, now=t0)
    svc.sign_up(bob, s.id, now=t0 + timedelta(seconds=5))  # waitlisted: told in the app, no mail by default
    db.session.commit()
    assert deliver_due(t0 + timedelta(minutes=1)).sent == 1
    by_to = {m["To"].split("<")[-1].rstrip(">"): m for m in mail_config.messages}
    assert set(by_to) == {"ada@example.org"}
    method, event = _event(by_to["ada@example.org"])
    assert method == "REQUEST" and event["STATUS"][0][0] == "CONFIRMED"
    assert event["UID"][0][0] == session_uid(s.id)
    assert event["DTSTART"][0][0] == s.start_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert event["ATTENDEE"][0][0].lower() == "mailto:ada@example.org"
    first_seq = int(event["SEQUENCE"][0][0])

    svc.cancel_signup(ada, s.id, now=t0 + timedelta(minutes=2))  # Bob moves up
    db.session.commit()
    assert deliver_due(t0 + timedelta(minutes=3)).sent == 2
    later = {m["To"].split("<")[-1].rstrip(">"): m for m in mail_config.messages[1:]}
    method, event = _event(later["ada@example.org"])
    assert method == "CANCEL" and event["STATUS"][0][0] == "CANCELLED"
    assert event["UID"][0][0] == session_uid(s.id) and int(event["SEQUENCE"][0][0]) > first_seq
    method, event = _event(later["bob@example.org"])
    assert method == "REQUEST" and event["UID"][0][0] == session_uid(s.id)
    assert event["ATTENDEE"][0][0].lower() == "mailto:bob@example.org"


def test_unknown_session_is_an_invitation_error(app_ctx) -> None:
    import pytest

    from fablab.services import invitations

    with pytest.raises(invitations.InvitationError):
        invitations.invitation_for({"induction_session_id": 999999, "method": "REQUEST"}, None, "a@example.org")
    with pytest.raises(invitations.InvitationError):
        invitations.invitation_for({"induction_session_id": "x", "method": "REQUEST"}, None, "a@example.org")
