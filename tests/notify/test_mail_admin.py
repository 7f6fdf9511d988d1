"""The admin's mail pages: only admins see them; retry and discard change the outbox rows as they say; a
hostile subject or HTML body in a received mail is shown escaped and sanitised, never run."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from fablab.domain import mail_view
from fablab.extensions import db
from fablab.models import Role
from fablab.models.notifications import OutboxMail
from fablab.services import notify, sent_mail
from tests.conftest import csrf_token, login

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _mail(member, status: str, attempts: int = 0, error: str | None = None, kind: str = "booking_confirmed",
          at: datetime = NOW) -> OutboxMail:
    mail = notify.queue_mail(member, kind, at)
    mail.status, mail.attempts, mail.last_error = status, attempts, error
    db.session.commit()
    return mail


@pytest.fixture
def admin(make_member, client):
    m = make_member(role=Role.ADMIN)
    login(client, m.email)
    return m


@pytest.fixture
def sink_dir(app):
    with app.app_context():
        path = sent_mail.maildir_path()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _deliver_to_maildir(path, msg: EmailMessage) -> str:
    import mailbox

    return mailbox.Maildir(path, create=True).add(msg.as_bytes())


@pytest.mark.parametrize("role", [Role.MEMBER, Role.STEWARD])
def test_members_and_stewards_are_refused(make_member, client, sink_dir, role):
    _deliver_to_maildir(sink_dir, EmailMessage())
    m = make_member(role=role)
    failed = _mail(m, "failed", 8, "550 no such user")
    login(client, m.email)
    token = csrf_token(client, "/")
    for path in ("/admin/mail/outbox", "/admin/mail/sent"):
        assert client.get(path).status_code == 403, path
    for action in ("retry", "discard"):
        resp = client.post(f"/admin/mail/outbox/{failed.id}/{action}", data={"csrf_token": token})
        assert resp.status_code == 403
    db.session.refresh(failed)
    assert failed.status == "failed"


def test_admin_sees_counts_and_failed_mails_with_reason(make_member, client, admin):
    m = make_member(email="ada@example.org")
    _mail(m, "pending")
    _mail(m, "pending", attempts=2, error="451 later")
    _mail(m, "sent", attempts=1)
    _mail(m, "failed", attempts=8, error="550 5.1.1 mailbox <ada@example.org> unknown", kind="waitlist_offer")
    page = client.get("/admin/mail/outbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "550 5.1.1 mailbox &lt;ada@example.org&gt; unknown" in html
    assert "waitlist offer" in html and "ada@example.org" in html
    assert "<dt>Waiting</dt><dd>2 (1 after a failed attempt)</dd>" in html
    assert "<dt>Failed</dt><dd>1</dd>" in html and "<dt>Sent</dt><dd>1</dd>" in html
    # No demo sink here: no sent-mail page, and no link to it.
    assert "/admin/mail/sent" not in html
    assert client.get("/admin/mail/sent").status_code == 404
    machines = client.get("/admin/machines").get_data(as_text=True)
    assert "/admin/mail/outbox" in machines and "/admin/mail/sent" not in machines


def test_retry_resets_to_pending_keeping_attempts_and_discard_keeps_the_row(make_member, client, admin):
    m = make_member()
    a = _mail(m, "failed", attempts=8, error="550 nope")
    b = _mail(m, "failed", attempts=8, error="550 nope")
    a.lease_until = NOW + timedelta(minutes=5)
    db.session.commit()
    message_id = a.message_id
    token = csrf_token(client, "/admin/mail/outbox")
    before = datetime.now(UTC)
    resp = client.post(f"/admin/mail/outbox/{a.id}/retry", data={"csrf_token": token})
    assert resp.status_code == 302 and resp.location.endswith("/admin/mail/outbox?page=1")
    resp = client.post(f"/admin/mail/outbox/{b.id}/discard", data={"csrf_token": token})
    assert resp.status_code == 302
    db.session.refresh(a)
    db.session.refresh(b)
    assert (a.status, a.attempts, a.message_id, a.lease_until) == ("pending", 8, message_id, None)
    assert a.next_attempt_at >= before - timedelta(seconds=1)
    assert (b.status, b.attempts) == ("discarded", 8)
    # Neither is failed any more: doing it again is refused with the reason, and changes nothing.
    again = client.post(f"/admin/mail/outbox/{a.id}/discard", data={"csrf_token": token})
    assert again.status_code == 409 and "pending, not failed" in again.get_data(as_text=True)
    assert client.post("/admin/mail/outbox/999999/retry", data={"csrf_token": token}).status_code == 404
    db.session.refresh(a)
    assert a.status == "pending"
    html = client.get("/admin/mail/outbox").get_data(as_text=True)
    assert "<dt>Discarded</dt><dd>1</dd>" in html and "No failed mails." in html


def test_retry_without_csrf_token_is_refused(make_member, client, admin):
    a = _mail(make_member(), "failed", attempts=8, error="550 nope")
    assert client.post(f"/admin/mail/outbox/{a.id}/retry").status_code == 400
    db.session.refresh(a)
    assert a.status == "failed"


def test_failed_mails_are_paginated_newest_first(make_member, client, admin):
    m = make_member()
    for i in range(55):
        _mail(m, "failed", attempts=8, error=f"error number {i:02d}", at=NOW + timedelta(minutes=i))
    first = client.get("/admin/mail/outbox").get_data(as_text=True)
    assert "error number 54" in first and "error number 05" in first and "error number 04" not in first
    assert "Page 1 of 2" in first
    second = client.get("/admin/mail/outbox?page=2").get_data(as_text=True)
    assert "error number 04" in second and "error number 05" not in second
    assert client.get("/admin/mail/outbox?page=abc").status_code == 200
    assert "Page 2 of 2" in client.get("/admin/mail/outbox?page=99").get_data(as_text=True)


def _hostile() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "lab@example.org"
    msg["To"] = "ada@example.org"
    msg["Subject"] = '<script>alert("subject")</script> Your booking'
    msg.set_content("Text part: <b>not bold</b>")
    msg.add_alternative('<p onclick="steal()">Hello <b>Ada</b></p><script>alert("body")</script>'
                        '<img src="https://tracker.example/pixel.gif" onerror="steal()">'
                        '<a href="javascript:steal()">claim</a><a href="https://lab.example/claim">ok</a>',
                        subtype="html")
    msg.add_attachment(b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nSUMMARY:<script>x</script>\r\nEND:VCALENDAR\r\n",
                       maintype="text", subtype="calendar", filename="booking.ics", params={"method": "REQUEST"})
    msg.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="photo.png")
    return msg


def test_hostile_subject_and_html_are_escaped_and_sanitised(client, admin, sink_dir):
    key = _deliver_to_maildir(sink_dir, _hostile())
    listing = client.get("/admin/mail/sent")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; Your booking" in html
    assert "<script>alert" not in html
    page = client.get(f"/admin/mail/sent/{key}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>alert" not in html and 'alert("body")' not in html and "alert(&#34;body" not in html
    assert "steal()" not in html and "tracker.example" not in html and "onclick" not in html
    # The HTML body is in a sandboxed frame's srcdoc, as an escaped attribute value.
    assert 'sandbox=""' in html and "srcdoc=\"&lt;p&gt;Hello &lt;b&gt;Ada&lt;/b&gt;&lt;/p&gt;" in html
    assert "https://lab.example/claim" in html
    assert "Text part: &lt;b&gt;not bold&lt;/b&gt;" in html
    # Attachments are listed; the invitation is shown as text (escaped too).
    assert "booking.ics" in html and "METHOD:REQUEST" in html and "SUMMARY:&lt;script&gt;x&lt;/script&gt;" in html
    assert "photo.png" in html and "image/png" in html


def test_unknown_or_malformed_sent_keys_are_404(client, admin, sink_dir):
    _deliver_to_maildir(sink_dir, _hostile())
    for key in ("nope", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", ".hidden"):
        assert client.get(f"/admin/mail/sent/{key}").status_code == 404, key


def test_mail_view_parses_without_trusting_the_parts():
    view = mail_view.parse(_hostile().as_bytes())
    assert view.subject.startswith("<script>")  # kept as text; the page escapes it
    assert "<script" not in view.html and "onclick" not in view.html and "javascript:" not in view.html
    assert "<img" not in view.html
    assert [a.filename for a in view.attachments] == ["booking.ics", "photo.png"]
    assert view.attachments[0].text and "METHOD:REQUEST" in view.attachments[0].text
    assert view.attachments[1].text is None
    broken = mail_view.parse(b"Subject: =?x-unknown?q?abc?=\r\nContent-Type: text/plain; charset=x-nope\r\n\r\nhi")
    assert broken.text == "hi"
