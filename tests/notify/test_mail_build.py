"""What a member's mail looks like when it arrives at a real SMTP server: headers, text, HTML, one-click
unsubscribe, and the calendar invitation read back with a parser other than the one that wrote it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import Booking, BookingStatus, Member
from fablab.models.notifications import Notice, OutboxMail
from fablab.services import ical, notify
from fablab.services.mail_build import BuildError, check_address
from fablab.services.mail_delivery import deliver_due
from tests.support.smtp import SmtpSink, parse_ics

NOW = datetime(2030, 3, 10, 9, 0, tzinfo=UTC)  # the feed shows only bookings near the real today
START = datetime(2030, 3, 12, 14, 0, tzinfo=UTC)


@pytest.fixture
def mail_config(app, smtp_server: SmtpSink, monkeypatch) -> SmtpSink:
    """The app sends to the test's SMTP server, as a lab with its own name, address and base URL."""
    monkeypatch.setitem(app.config, "FABLAB_SMTP_URL", smtp_server.url)
    monkeypatch.setitem(app.config, "FABLAB_MAIL_FROM", "lab@fablab.example.org")
    monkeypatch.setitem(app.config, "FABLAB_BASE_URL", "https://lab.example.org")
    monkeypatch.setitem(app.config, "FABLAB_LAB_NAME", "Test Lab")
    return smtp_server


@pytest.fixture
def templates(app) -> Iterator[dict[str, str]]:
    """Extra notice templates for one test (a kind another helper owns, a template that breaks)."""
    extra: dict[str, str] = {}
    original = app.jinja_env.loader
    app.jinja_env.loader = ChoiceLoader([DictLoader(extra), original])
    app.jinja_env.cache = {}
    yield extra
    app.jinja_env.loader = original
    app.jinja_env.cache = {}


def make_booking(member: Member, machine, start: datetime = START, sequence: int = 0) -> Booking:
    b = Booking(machine_id=machine.id, member_id=member.id, start_at=start, end_at=start + timedelta(hours=2),
                status=BookingStatus.CONFIRMED.value, sequence=sequence, updated_at=NOW)
    db.session.add(b)
    db.session.commit()
    return b


def queue_confirmation(member: Member, booking: Booking, method: str = "REQUEST") -> OutboxMail:
    notice = notify.notify(member, "booking_confirmed", {"machine": booking.machine.name,
                                                          "start": booking.start_at.isoformat(),
                                                          "end": booking.end_at.isoformat()},
                           now=NOW, link=f"/bookings/{booking.id}",
                           mail_params={"ics": {"booking_id": booking.id, "method": method,
                                                "sequence": booking.sequence}})
    db.session.commit()
    assert notice is not None
    return db.session.scalars(select(OutboxMail).where(OutboxMail.notice_id == notice.id)).one()


def calendar_parts(msg: EmailMessage) -> list[EmailMessage]:
    return [p for p in msg.walk() if p.get_content_type() == "text/calendar"]


def test_booking_mail_headers_text_html_and_invitation(mail_config, make_member, make_machine):
    member = make_member(email="ada@example.org", name="Ada Lovelace-Zoë")
    machine = make_machine(name="Laser <Mk2> Fräse", location="Room 1")
    booking = make_booking(member, machine, sequence=3)
    mail = queue_confirmation(member, booking)

    result = deliver_due(NOW)
    assert (result.claimed, result.sent, result.failed) == (1, 1, 0)
    [msg] = mail_config.messages
    assert mail_config.envelopes == [("lab@fablab.example.org", ["ada@example.org"])]
    assert msg["From"].addresses[0].display_name == "Test Lab"
    assert msg["From"].addresses[0].addr_spec == "lab@fablab.example.org"
    assert msg["To"].addresses[0].addr_spec == "ada@example.org"
    assert msg["To"].addresses[0].display_name == "Ada Lovelace-Zoë"
    assert msg["Subject"] == "Booked: Laser <Mk2> Fräse, Tue 12 Mar, 15:00"  # in the lab's zone, Europe/Berlin
    assert msg["Message-ID"] == mail.message_id
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Auto-Submitted"] == "auto-generated"
    unsubscribe = msg["List-Unsubscribe"]
    prefix = "<https://lab.example.org/notices/unsubscribe/"
    assert unsubscribe.startswith(prefix) and unsubscribe.endswith(">")
    assert notify.read_unsubscribe_token(unsubscribe[len(prefix):-1]) == (member.id, "booking_confirmed")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text = msg.get_body(("plain",)).get_content()
    assert "Hello Ada Lovelace-Zoë" in text and "Laser <Mk2> Fräse" in text
    assert f"https://lab.example.org/bookings/{booking.id}" in text
    assert "https://lab.example.org/notices/preferences" in text and "You get this mail because" in text
    html = msg.get_body(("html",)).get_content()
    assert "Laser &lt;Mk2&gt; Fräse" in html and "<Mk2>" not in html  # a name someone typed is text, not markup
    assert "Test Lab" in html and 'href="https://lab.example.org/notices/preferences"' in html
    assert "<script" not in html and "<style" not in html  # inline styles only

    parts = calendar_parts(msg)
    assert len(parts) == 2 and all(p.get_param("method") == "REQUEST" for p in parts)
    assert [p.get_filename() for p in parts] == [None, "invite.ics"]
    [vcal] = parse_ics(parts[1].get_content())
    assert vcal["METHOD"][0][0] == "REQUEST" and vcal["VERSION"][0][0] == "2.0"
    [event] = vcal["_children"]
    assert event["_name"] == "VEVENT"
    assert event["DTSTART"][0][0] == "20300312T140000Z" and event["DTEND"][0][0] == "20300312T160000Z"
    assert event["STATUS"][0][0] == "CONFIRMED"
    assert event["ORGANIZER"][0][0].lower() == "mailto:lab@fablab.example.org"
    assert event["ORGANIZER"][0][1]["CN"].strip('"') == "Test Lab"
    assert event["ATTENDEE"][0][0].lower() == "mailto:ada@example.org"
    assert parse_ics(parts[0].get_content()) == [vcal]  # the alternative part is the same invitation

    # The same UID and SEQUENCE as the member's feed: one event in the calendar app, not two.
    [feed] = parse_ics(ical.member_calendar(member, "some.other.host"))
    [feed_event] = [c for c in feed["_children"] if c["_name"] == "VEVENT"]
    assert event["UID"][0][0] == feed_event["UID"][0][0] == f"booking-{booking.id}@lab.example.org"
    assert event["SEQUENCE"][0][0] == feed_event["SEQUENCE"][0][0] == "3"

    db.session.expire_all()
    assert db.session.get(OutboxMail, mail.id).status == "sent"
    assert db.session.get(OutboxMail, mail.id).sent_at is not None


def test_addresses_are_checked_and_international_domains_encoded():
    assert check_address("a.b+c@bücher.example") == "a.b+c@xn--bcher-kva.example"
    assert check_address("root@localhost") == "root@localhost"
    for bad in ("", "no-at", "a@b@c.org", "a b@c.org", "a@c.org\r\nBcc: x@y.org", "<a@c.org>", "zoë@c.org",
                "a@nodot", "a@", "@c.org", "a@c_d.org"):
        with pytest.raises(BuildError):
            check_address(bad)


def test_cancellation_removes_the_event(mail_config, make_member, make_machine):
    member = make_member()
    booking = make_booking(member, make_machine(), sequence=1)
    booking.status, booking.sequence = BookingStatus.CANCELLED.value, 2
    db.session.commit()
    queue_confirmation(member, booking, method="CANCEL")
    assert deliver_due(NOW).sent == 1
    parts = calendar_parts(mail_config.messages[0])
    assert all(p.get_param("method") == "CANCEL" for p in parts)
    [vcal] = parse_ics(parts[1].get_content())
    [event] = vcal["_children"]
    assert vcal["METHOD"][0][0] == "CANCEL" and event["STATUS"][0][0] == "CANCELLED"
    assert event["SEQUENCE"][0][0] == "2" and event["UID"][0][0] == f"booking-{booking.id}@lab.example.org"


def test_safety_kinds_have_no_unsubscribe_link(mail_config, make_member, templates):
    templates["notices/account_changed.txt"] = ("{% block subject %}Your account changed{% endblock %}"
                                                "{% block text %}Your e-mail address was changed.{% endblock %}")
    member = make_member()
    notify.notify(member, "account_changed", {}, now=NOW)
    notify.notify(member, "booking_confirmed", {"machine": "Laser"}, now=NOW)
    db.session.commit()
    assert deliver_due(NOW).sent == 2
    by_subject = {m["Subject"]: m for m in mail_config.messages}
    safety = by_subject["Your account changed"]
    assert safety["List-Unsubscribe"] is None and safety["List-Unsubscribe-Post"] is None
    assert "always sent" in safety.get_body(("plain",)).get_content()
    assert calendar_parts(safety) == []
    other = next(m for s, m in by_subject.items() if s != "Your account changed")
    assert other["List-Unsubscribe"] is not None


def test_a_bad_address_or_a_broken_template_fails_that_mail_only(mail_config, make_member, make_member_admin,
                                                                 templates):
    templates["notices/task_due.txt"] = "{% block subject %}{{ params.task.title.upper() }}{% endblock %}"
    good, bad_address = make_member(), make_member()
    admin = make_member_admin()
    notify.notify(good, "booking_confirmed", {"machine": "Laser"}, now=NOW)
    notify.notify(good, "task_due", {}, now=NOW)  # the template fails on these params
    notify.notify(bad_address, "booking_confirmed", {"machine": "Laser"}, now=NOW)
    notify.notify(good, "booking_confirmed", {"machine": "Printer"}, now=NOW)
    db.session.commit()
    db.session.execute(OutboxMail.__table__.update().where(OutboxMail.member_id == bad_address.id)
                       .values(to_address="no address\r\nBcc: victim@example.org"))
    db.session.commit()

    result = deliver_due(NOW)
    assert (result.sent, result.failed) == (2, 2)
    assert len(mail_config.messages) == 2
    assert all(env[1] == [good.email] for env in mail_config.envelopes)
    failed = db.session.scalars(select(OutboxMail).where(OutboxMail.status == "failed")
                                .order_by(OutboxMail.id)).all()
    assert [f.kind for f in failed] == ["task_due", "booking_confirmed"]
    assert "cannot render task_due" in failed[0].last_error and "not a mail address" in failed[1].last_error
    notices = db.session.scalars(select(Notice).where(Notice.member_id == admin.id,
                                                      Notice.kind == "delivery_failed")).all()
    assert len(notices) == 2


@pytest.fixture
def make_member_admin(make_member):
    from fablab.models import Role

    return lambda: make_member(role=Role.ADMIN)
