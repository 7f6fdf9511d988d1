"""The demo's embedded SMTP sink: a real SMTP conversation stores the mail in the instance's Maildir, and
the admin's "Sent mail" page lists and shows it; with FABLAB_SMTP_URL set the demo starts no sink."""

from __future__ import annotations

import shutil
import smtplib
from email.message import EmailMessage

import pytest

from fablab.demo.mail_sink import DemoMailSink, demo_smtp
from fablab.models import Role
from fablab.services import sent_mail
from tests.conftest import login


@pytest.fixture
def demo_sink(app):
    """The sink as the demo starts it (no FABLAB_SMTP_URL), on the test instance's folder."""
    url, sink = demo_smtp(app)
    assert sink is not None and url == sink.url and url.startswith("smtp://127.0.0.1:")
    yield sink
    sink.stop()
    shutil.rmtree(sink.maildir, ignore_errors=True)


def _send(url: str, subject: str, to: str = "ada@fablab.example") -> None:
    msg = EmailMessage()
    msg["From"] = "Fablab <fablab@localhost>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<demo-1@localhost>"
    msg.set_content("Your booking of the Ender 3 is confirmed.")
    msg.add_alternative("<p>Your booking of the <b>Ender 3</b> is confirmed.</p>", subtype="html")
    msg.add_attachment("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n", subtype="calendar",
                       filename="booking.ics")
    host, port = url.removeprefix("smtp://").split(":")
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        smtp.send_message(msg)


def test_sink_stores_real_smtp_and_the_admin_page_lists_it(app, demo_sink, make_member, client):
    with app.app_context():
        assert demo_sink.maildir == sent_mail.maildir_path() and sent_mail.available()
    _send(demo_sink.url, "Booking confirmed: Ender 3", to="first@fablab.example")
    _send(demo_sink.url, "Booking changed: Ender 3", to="second@fablab.example")
    stored = list((demo_sink.maildir / "new").iterdir())
    assert len(stored) == 2
    raw = max(stored, key=lambda p: p.stat().st_mtime_ns).read_bytes()
    assert b"Delivered-To: second@fablab.example" in raw and b"Message-ID: <demo-1@localhost>" in raw

    admin = make_member(role=Role.ADMIN)
    login(client, admin.email)
    machines = client.get("/admin/machines").get_data(as_text=True)
    assert "/admin/mail/sent" in machines  # the navigation shows the page once the sink's Maildir exists
    page = client.get("/admin/mail/sent")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Booking confirmed: Ender 3" in html and "first@fablab.example" in html
    assert html.index("Booking changed") < html.index("Booking confirmed")  # newest first
    key = next(p.name for p in stored if b"first@" in p.read_bytes())
    one = client.get(f"/admin/mail/sent/{key}").get_data(as_text=True)
    assert "Your booking of the Ender 3 is confirmed." in one
    assert "&lt;b&gt;Ender 3&lt;/b&gt;" in one  # the HTML part, inside the frame's srcdoc
    assert "booking.ics" in one and "METHOD:REQUEST" in one


def test_sink_keeps_mails_across_a_restart(app, demo_sink):
    _send(demo_sink.url, "one")
    demo_sink.stop()
    again = DemoMailSink(demo_sink.maildir, port=demo_sink.port)
    again.start()
    try:
        _send(again.url, "two")
    finally:
        again.stop()
    with app.app_context():
        rows, total = sent_mail.page(1)
    assert total == 2 and [r.summary.subject for r in rows] == ["two", "one"]


def test_configured_smtp_url_means_no_sink(app, smtp_server):
    app.config["FABLAB_SMTP_URL"] = smtp_server.url
    try:
        url, sink = demo_smtp(app)
    finally:
        app.config["FABLAB_SMTP_URL"] = ""
    assert (url, sink) == (smtp_server.url, None)
    with app.app_context():
        assert not sent_mail.available()


def test_a_queued_notice_goes_through_deliver_due_into_the_sink_and_shows(app, demo_sink, make_member, client):
    from datetime import UTC, datetime

    from fablab.extensions import db
    from fablab.services import notify
    from fablab.services.mail_delivery import deliver_due

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    ada = make_member(email="ada@fablab.example", name="Ada <b>Lovelace</b>")
    notify.notify(ada, "booking_confirmed", {"machine": "Ender 3", "start": "2026-03-03T10:00:00+00:00",
                                             "end": "2026-03-03T12:00:00+00:00"}, now=now, link="/bookings/1")
    db.session.commit()
    app.config["FABLAB_SMTP_URL"] = demo_sink.url
    try:
        result = deliver_due(now)
    finally:
        app.config["FABLAB_SMTP_URL"] = ""
    assert result.sent == 1
    admin = make_member(role=Role.ADMIN)
    login(client, admin.email)
    html = client.get("/admin/mail/sent").get_data(as_text=True)
    assert "Booked: Ender 3" in html and "ada@fablab.example" in html
    key = next((demo_sink.maildir / "new").iterdir()).name
    one = client.get(f"/admin/mail/sent/{key}").get_data(as_text=True)
    assert "List-Unsubscribe" in one and "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in one
    assert "<b>Lovelace</b>" not in one
