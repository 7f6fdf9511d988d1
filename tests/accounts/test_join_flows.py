"""Joining end to end, with the real SMTP server and the real delivery code: invite → accept (password and
kiosk PIN) → book; sign-up → confirm the address → approval → book (refused before, with the reason, on the
web page, the API, the kiosk and at the machine); links that do not work; and the token kept out of the
outbox and the admin's sent-mail page."""

from __future__ import annotations

import html
import json
import mailbox
import re
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import func, select

from fablab.domain import audit_actions
from fablab.extensions import db
from fablab.models import Booking, Member, Role
from fablab.models.accounts import AccountLink, AuditEntry
from fablab.models.notifications import Notice, OutboxMail
from fablab.security import token_digest
from fablab.services import authorize, joining, kiosk
from fablab.services import members as member_service
from fablab.services.mail_delivery import deliver_due
from tests.bookings.conftest import open_machine, qualified, slot  # noqa: F401 (fixtures)
from tests.conftest import csrf_token, login

BASE = "https://lab.example.org"
LINK = re.compile(re.escape(BASE) + r"(/join/(?:invite|verify|reset)\?token=([A-Za-z0-9_-]+))")
HX = {"HX-Request": "true"}


@pytest.fixture
def mail_lab(app, app_ctx, smtp_server, monkeypatch):
    """The lab mails through the test's SMTP server, with public sign-up and staff approval on."""
    for key, value in {"FABLAB_SMTP_URL": smtp_server.url, "FABLAB_MAIL_FROM": "lab@fablab.example.org",
                       "FABLAB_BASE_URL": BASE, "FABLAB_LAB_NAME": "Test Lab", "FABLAB_SIGNUP": "open",
                       "FABLAB_SIGNUP_APPROVAL": True}.items():
        monkeypatch.setitem(app.config, key, value)
    return smtp_server


def deliver(sink, n: int) -> list[EmailMessage]:
    """Run the real delivery (`fablab notify`'s code) and wait until `n` mails in all have arrived."""
    deliver_due(datetime.now(UTC) + timedelta(seconds=1))
    return sink.wait_for(n)


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def link_in(msg: EmailMessage) -> tuple[str, str]:
    """(path with query, token) of the one-time link in a mail."""
    found = LINK.search(text_of(msg))
    assert found, text_of(msg)
    return found.group(1), found.group(2)


def mail_to(sink, address: str) -> list[EmailMessage]:
    return [m for m in sink.messages if m["To"].addresses[0].addr_spec == address]


def form_token(page: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert found
    return found.group(1)


def hidden_token(page: str) -> str:
    found = re.search(r'id="token" name="token" type="hidden" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def book_on_page(client, machine, hours: float = 3):
    start, _ = slot(hours)
    token = csrf_token(client, f"/machines/{machine.slug}")
    return client.post(f"/machines/{machine.slug}/book", headers=HX,
                       data={"csrf_token": token, "start": start.isoformat(), "minutes": "60"})


def no_secret_stored(token: str) -> None:
    """The token is nowhere in the outbox once the mails went out, and only its digest is in account_links."""
    db.session.expire_all()
    for mail in db.session.scalars(select(OutboxMail)):
        assert token not in json.dumps(mail.params), mail.params
        assert mail.status == "sent"
    assert db.session.scalar(select(func.count()).select_from(AccountLink)
                             .where(AccountLink.token_hash == token_digest(token))) == 1


def test_invite_accept_with_pin_then_book_on_the_web_and_sign_in_at_the_kiosk(
        app, client, mail_lab, make_member, open_machine, qualified) -> None:  # noqa: F811
    make_member("boss@example.org", role=Role.ADMIN, name="Boss")
    machine = open_machine("laser-1")
    login(client, "boss@example.org")
    page = client.get("/join/invitations").get_data(as_text=True)
    resp = client.post("/join/invitations", data={
        "csrf_token": form_token(page), "addresses": "new@example.org,\nOther Person <other@example.org>; ",
        "name": "", "role": "member"})
    assert resp.status_code == 302
    listed = client.get("/join/invitations").get_data(as_text=True)
    assert "new@example.org" in listed and "other@example.org" in listed and "Send again" in listed
    deliver(mail_lab, 2)
    msg = mail_to(mail_lab, "new@example.org")[0]
    assert "invited" in msg["Subject"] and "Boss invited you" in text_of(msg)
    path, token = link_in(msg)
    no_secret_stored(token)
    invited = db.session.scalars(select(AuditEntry).where(AuditEntry.action == audit_actions.MEMBER_INVITED)).all()
    assert sorted(e.target_label for e in invited) == ["new@example.org", "other@example.org"]
    assert all(token not in e.detail for e in invited)

    guest = app.test_client()
    form = guest.get(path)
    assert form.status_code == 200 and form.headers["Referrer-Policy"] == "no-referrer"
    page = form.get_data(as_text=True)
    assert "new@example.org" in page and "Kiosk PIN" in page
    bad_pin = guest.post("/join/invite", data={"csrf_token": form_token(page), "token": hidden_token(page),
                                               "name": "Nia", "password": "a-long-password", "pin": "12"})
    assert bad_pin.status_code == 422 and "4 to 8 digits" in bad_pin.get_data(as_text=True)
    assert member_service.member_by_email("new@example.org") is None  # nothing was created
    done = guest.post("/join/invite", data={"csrf_token": form_token(page), "token": hidden_token(page),
                                            "name": "Nia", "password": "a-long-password", "pin": "4321"})
    assert done.status_code == 302 and done.location == "/"
    nia = member_service.member_by_email("new@example.org")
    assert nia.name == "Nia" and nia.member_no > 1000 and nia.approved and nia.email_verified_at is not None
    assert member_service.check_pin(nia, "4321")
    assert guest.get("/account").status_code == 200  # signed in by the invitation

    qualified(nia, machine)
    booked = book_on_page(guest, machine)
    assert booked.status_code == 200 and "Booked" in booked.get_data(as_text=True)
    assert db.session.scalar(select(Booking.member_id)) == nia.id

    again = app.test_client().get(path)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)

    device, kiosk_token = kiosk.register_kiosk("front", datetime.now(UTC))
    db.session.commit()
    screen = app.test_client()
    assert screen.get(f"/kiosk/activate/{kiosk_token}").status_code == 302
    signed = screen.post("/kiosk/identify", data={"csrf_token": csrf_token(screen, "/kiosk/"),
                                                   "member_no": str(nia.member_no), "pin": "4321"})
    assert signed.status_code == 200 and "Nia" in signed.get_data(as_text=True)


def test_sign_up_verify_approve_book_refused_everywhere_until_then(
        app, client, mail_lab, make_member, open_machine, qualified) -> None:  # noqa: F811
    steward = make_member("steward@example.org", role=Role.STEWARD, name="Stew")
    machine = open_machine("laser-1")
    login_page = client.get("/login").get_data(as_text=True)
    assert "Join the lab" in login_page and "Forgot password?" in login_page
    page = client.get("/join/signup").get_data(as_text=True)
    resp = client.post("/join/signup", data={"csrf_token": form_token(page), "name": "Sam",
                                             "email": "Sam@Example.org", "password": "sam-password-1"})
    assert resp.status_code == 200 and "Check your mail" in resp.get_data(as_text=True)
    sam = member_service.member_by_email("sam@example.org")
    assert sam.member_no > 1000 and sam.email_verified_at is None and not sam.approved
    deliver(mail_lab, 1)
    path, token = link_in(mail_to(mail_lab, "sam@example.org")[0])
    no_secret_stored(token)

    # Sam can sign in and look around, but not book: first the address.
    assert login(client, "sam@example.org", "sam-password-1").status_code == 302
    assert client.get("/machines/laser-1").status_code == 200
    qualified(sam, machine)
    refused = book_on_page(client, machine)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'data-refusal="account_not_verified"' in body
    assert "confirm your email address" in body and "Send the confirmation link again" in body

    confirm = client.get(path)
    assert confirm.status_code == 200
    db.session.refresh(sam)
    assert sam.email_verified_at is None  # opening the link (a mail scanner) changes nothing
    page = confirm.get_data(as_text=True)
    done = client.post("/join/verify", data={"csrf_token": form_token(page), "token": hidden_token(page)})
    assert done.status_code == 200 and "staff will now look" in done.get_data(as_text=True)
    db.session.refresh(sam)
    assert sam.email_verified_at is not None and not sam.approved
    assert db.session.scalar(select(Notice.kind).where(Notice.member_id == steward.id)) == "signup_pending"

    # Waiting for approval: the same reason on the page, in the API, at the kiosk and at the machine.
    reason = "Your account is waiting for the lab's approval"
    refused = book_on_page(client, machine)
    assert refused.status_code == 422 and reason in html.unescape(refused.get_data(as_text=True))
    api_token = member_service.create_api_token(sam)
    member_service.set_pin(sam, "2468")
    member_service.set_badge(sam, "04AABBCC")
    db.session.commit()
    start, _ = slot(4)
    api = app.test_client().post("/api/v1/bookings", headers={"Authorization": f"Bearer {api_token}"},
                                 json={"machine": "laser-1", "start": start.isoformat(),
                                       "end": (start + timedelta(hours=1)).isoformat()})
    assert api.status_code == 422 and api.json["error"]["code"] == "account_not_approved"
    assert api.json["error"]["message"].startswith(reason)
    decision = authorize.authorize(machine, "04AABBCC", datetime.now(UTC))
    assert not decision.allow and decision.reason.startswith(reason)
    _, kiosk_token = kiosk.register_kiosk("front", datetime.now(UTC))
    db.session.commit()
    screen = app.test_client()
    screen.get(f"/kiosk/activate/{kiosk_token}")
    ktoken = csrf_token(screen, "/kiosk/")
    assert screen.post("/kiosk/identify", data={"csrf_token": ktoken, "member_no": str(sam.member_no),
                                                 "pin": "2468"}).status_code == 200
    at_kiosk = screen.post("/kiosk/book", data={"csrf_token": ktoken, "machine": "laser-1",
                                                "start": start.isoformat(), "minutes": "60"})
    assert reason in html.unescape(at_kiosk.get_data(as_text=True))  # the kiosk shows refusals in its panel
    panel = html.unescape(screen.get("/kiosk/panel").get_data(as_text=True))
    assert "Waiting for the lab's approval" in panel
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 0

    staff = app.test_client()
    login(staff, "steward@example.org")
    listing = staff.get("/join/approvals").get_data(as_text=True)
    assert "Sam" in listing and "confirmed" in listing
    member_page = client.get("/join/approvals")
    assert member_page.status_code == 403  # Sam is no steward
    approved = staff.post(f"/join/approvals/{sam.id}/approve", data={"csrf_token": form_token(listing)})
    assert approved.status_code == 302
    db.session.refresh(sam)
    assert sam.approved
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == audit_actions.MEMBER_APPROVED))
    assert entry.actor_id == steward.id and entry.target_id == sam.id
    mails = deliver(mail_lab, 3)  # the steward's notice mail and Sam's approval
    told = mail_to(mail_lab, "sam@example.org")[-1]
    assert "approved" in told["Subject"] and "you can book machines now" in text_of(told)
    assert any("waits for approval" in m["Subject"] for m in mails)

    booked = book_on_page(client, machine)
    assert booked.status_code == 200 and "Booked" in booked.get_data(as_text=True)


def test_sign_up_with_an_address_that_has_an_account_answers_the_same(app, client, mail_lab, make_member) -> None:
    make_member("ada@example.org", name="Ada")
    page = client.get("/join/signup").get_data(as_text=True)
    known = client.post("/join/signup", data={"csrf_token": form_token(page), "name": "Someone",
                                              "email": "ada@example.org", "password": "whatever-pass"})
    fresh = app.test_client()
    page = fresh.get("/join/signup").get_data(as_text=True)
    new = fresh.post("/join/signup", data={"csrf_token": form_token(page), "name": "Bo",
                                           "email": "bo@example.org", "password": "whatever-pass"})

    def strip(html: str) -> str:
        return re.sub(r'value="[^"]+"', "", re.sub(r"X-CSRFToken\": \"[^\"]+\"", "", html))

    assert known.status_code == new.status_code == 200
    assert strip(known.get_data(as_text=True)) == strip(new.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Member)) == 2
    deliver(mail_lab, 2)
    ada_mail = mail_to(mail_lab, "ada@example.org")[0]
    assert "already have an account" in text_of(ada_mail) and not LINK.search(text_of(ada_mail))
    ada = member_service.member_by_email("ada@example.org")
    assert ada.name == "Ada" and login(app.test_client(), "ada@example.org").status_code == 302  # unchanged


def test_sending_the_link_again_supersedes_the_old_one(app, client, mail_lab) -> None:
    page = client.get("/join/signup").get_data(as_text=True)
    client.post("/join/signup", data={"csrf_token": form_token(page), "name": "Cy", "email": "cy@example.org",
                                      "password": "cy-password-1"})
    deliver(mail_lab, 1)
    old_path, _ = link_in(mail_lab.messages[0])
    login(client, "cy@example.org", "cy-password-1")
    page = client.get("/join/verify/again").get_data(as_text=True)
    assert "Send the link again" in page
    assert client.post("/join/verify/again", data={"csrf_token": form_token(page)}).status_code == 200
    deliver(mail_lab, 2)
    new_path, _ = link_in(mail_lab.messages[1])
    assert new_path != old_path
    old = client.get(old_path)
    assert old.status_code == 410 and "replaced by a newer one" in old.get_data(as_text=True)
    assert "Ask for a new link" in old.get_data(as_text=True)
    page = client.get(new_path).get_data(as_text=True)
    assert client.post("/join/verify", data={"csrf_token": form_token(page),
                                             "token": hidden_token(page)}).status_code == 200
    assert member_service.member_by_email("cy@example.org").email_verified_at is not None


def test_expired_forged_and_damaged_links_say_so_and_change_nothing(app, client, mail_lab, make_member) -> None:
    boss = make_member("boss@example.org", role=Role.ADMIN)
    now = datetime.now(UTC)
    joining.invite(boss, ["late@example.org"], now)
    db.session.commit()
    deliver(mail_lab, 1)
    path, token = link_in(mail_lab.messages[0])
    with time_machine.travel(now + timedelta(days=7, seconds=1), tick=False):
        late = client.get(path)
        assert late.status_code == 410 and "expired" in late.get_data(as_text=True)
        assert "Ask the lab's staff to send you a new invitation" in late.get_data(as_text=True)
    with time_machine.travel(now + timedelta(days=6, hours=23), tick=False):
        assert client.get(path).status_code == 200  # still inside the week
    forged = client.get("/join/invite?token=" + "A" * 43)
    assert forged.status_code == 404 and "not valid" in forged.get_data(as_text=True)
    damaged = client.get("/join/invite?token=abc%22%3E")
    assert damaged.status_code == 400 and "incomplete or damaged" in damaged.get_data(as_text=True)
    assert client.get("/join/reset?token=" + token).status_code == 404  # an invitation is no reset link
    # A forged token posted with a valid form: nothing is created.
    page = client.get(path).get_data(as_text=True)
    resp = client.post("/join/invite", data={"csrf_token": form_token(page), "token": "B" * 43, "name": "X",
                                             "password": "some-long-password"})
    assert resp.status_code == 404
    assert member_service.member_by_email("late@example.org") is None


def test_staff_resend_and_withdraw_invitations(app, client, mail_lab, make_member) -> None:
    make_member("stew@example.org", role=Role.STEWARD)
    login(client, "stew@example.org")
    page = client.get("/join/invitations").get_data(as_text=True)
    assert '<option selected value="member">' in page and 'value="admin"' not in page  # stewards invite members
    escalate = client.post("/join/invitations", data={"csrf_token": form_token(page), "addresses": "x@example.org",
                                                      "role": "admin"})
    assert escalate.status_code == 422 and db.session.scalar(select(func.count()).select_from(AccountLink)) == 0
    broken = client.post("/join/invitations", data={"csrf_token": form_token(page),
                                                    "addresses": "ok@example.org\nnot an address", "role": "member"})
    body = broken.get_data(as_text=True)
    assert broken.status_code == 422 and "not an address" in body and "ok@example.org" in body  # list kept
    assert db.session.scalar(select(func.count()).select_from(AccountLink)) == 0  # nothing sent
    client.post("/join/invitations", data={"csrf_token": form_token(page), "addresses": "dee@example.org",
                                           "name": "Dee", "role": "member"})
    first = db.session.scalar(select(AccountLink))
    assert first.name == "Dee"
    assert client.post(f"/join/invitations/{first.id}/resend", data={"csrf_token": form_token(page)}).status_code == 302
    deliver(mail_lab, 2)
    old_path, _ = link_in(mail_lab.messages[0])
    new_path, _ = link_in(mail_lab.messages[1])
    assert client.get(old_path).status_code == 410
    second = db.session.scalar(select(AccountLink).order_by(AccountLink.id.desc()))
    assert second.name == "Dee" and second.created_by_id is not None
    revoked = client.post(f"/join/invitations/{second.id}/revoke", data={"csrf_token": form_token(page)})
    assert revoked.status_code == 302
    gone = app.test_client().get(new_path)
    assert gone.status_code == 410 and "withdrawn" in gone.get_data(as_text=True)
    again = client.post(f"/join/invitations/{second.id}/revoke", data={"csrf_token": form_token(page)})
    assert again.status_code == 409 and "withdrawn or replaced already" in again.get_data(as_text=True)
    assert client.post("/join/invitations/999999/revoke", data={"csrf_token": form_token(page)}).status_code == 404
    assert "No open invitations" in client.get("/join/invitations").get_data(as_text=True)
    member = app.test_client()
    make_member("plain@example.org")
    login(member, "plain@example.org")
    assert member.get("/join/invitations").status_code == 403


def test_rejected_sign_up_is_told_and_cannot_sign_in(app, client, mail_lab, make_member) -> None:
    make_member("stew@example.org", role=Role.STEWARD)
    page = client.get("/join/signup").get_data(as_text=True)
    client.post("/join/signup", data={"csrf_token": form_token(page), "name": "Spam", "email": "spam@example.org",
                                      "password": "spam-password"})
    spam = member_service.member_by_email("spam@example.org")
    login(client, "stew@example.org")
    listing = client.get("/join/approvals").get_data(as_text=True)
    assert "not confirmed yet" in listing
    resp = client.post(f"/join/approvals/{spam.id}/reject", data={"csrf_token": form_token(listing),
                                                                  "reason": "not a real person"})
    assert resp.status_code == 302
    db.session.refresh(spam)
    assert not spam.active and not spam.approved
    twice = client.post(f"/join/approvals/{spam.id}/approve", data={"csrf_token": form_token(listing)})
    assert twice.status_code == 409 and "decided already" in twice.get_data(as_text=True)
    deliver(mail_lab, 2)
    told = mail_to(mail_lab, "spam@example.org")[-1]
    assert "not accept your sign-up: not a real person" in text_of(told)
    assert login(app.test_client(), "spam@example.org", "spam-password").status_code == 401


def test_closed_lab_has_no_public_sign_up_but_staff_still_invite(app, client, mail_lab, monkeypatch,
                                                                 make_member) -> None:
    monkeypatch.setitem(app.config, "FABLAB_SIGNUP", "closed")
    assert "Join the lab" not in client.get("/login").get_data(as_text=True)
    closed = client.get("/join/signup")
    assert closed.status_code == 404 and "invitation" in closed.get_data(as_text=True)
    make_member("stew@example.org", role=Role.STEWARD)
    login(client, "stew@example.org")
    page = client.get("/join/invitations").get_data(as_text=True)
    assert client.post("/join/invitations", data={"csrf_token": form_token(page), "addresses": "z@example.org",
                                                  "role": "member"}).status_code == 302
    deliver(mail_lab, 1)


def test_the_sent_mail_page_hides_the_link_token(app, client, mail_lab, make_member) -> None:
    """The demo's sent-mail page shows whole mails; a link shown there would still work for its reader."""
    boss = make_member("boss@example.org", role=Role.ADMIN)
    joining.invite(boss, ["eve@example.org"], datetime.now(UTC))
    db.session.commit()
    msg = deliver(mail_lab, 1)[0]
    _, token = link_in(msg)
    maildir = Path(app.instance_path) / "demo-mail"
    box = mailbox.Maildir(maildir, create=True)
    try:
        key = box.add(msg.as_bytes())
        login(client, "boss@example.org")
        assert token not in client.get("/admin/mail/sent").get_data(as_text=True)
        shown = client.get(f"/admin/mail/sent/{key}")
        body = shown.get_data(as_text=True)
        assert shown.status_code == 200 and "/join/invite?token=[hidden]" in body and token not in body
        outbox = client.get("/admin/mail/outbox").get_data(as_text=True)
        assert token not in outbox
    finally:
        shutil.rmtree(maildir)


def test_mail_requests_are_throttled_per_source(app, client, mail_lab) -> None:
    page = client.get("/join/signup").get_data(as_text=True)
    for i in range(5):
        ok = client.post("/join/signup", data={"csrf_token": form_token(page), "name": f"N{i}",
                                               "email": f"n{i}@example.org", "password": "n-password-1"})
        assert ok.status_code == 200
    spent = client.post("/join/signup", data={"csrf_token": form_token(page), "name": "N5",
                                              "email": "n5@example.org", "password": "n-password-1"})
    assert spent.status_code == 429 and "Too many requests from this network" in spent.get_data(as_text=True)
    assert member_service.member_by_email("n5@example.org") is None
    other = app.test_client()  # another source has its own budget
    page = other.get("/join/signup").get_data(as_text=True)
    assert other.post("/join/signup", data={"csrf_token": form_token(page), "name": "M", "email": "m@example.org",
                                            "password": "n-password-1"},
                      environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


def test_concurrent_sign_ups_get_distinct_member_numbers(app, monkeypatch) -> None:
    """Every sign-up reads the same highest number; the unique index and a retry in a savepoint give each
    its own (the race is real on PostgreSQL; SQLite serialises writers)."""
    monkeypatch.setitem(app.config, "FABLAB_SIGNUP", "open")
    n = 8
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    real_create = member_service.create_member

    def slow_create(*args, **kwargs):
        member = real_create(*args, **kwargs)
        time.sleep(0.05)  # hold the new row uncommitted while the others pick their number
        return member

    monkeypatch.setattr(member_service, "create_member", slow_create)

    def sign_up(i: int) -> None:
        try:
            with app.app_context():
                from fablab.database import begin_write

                barrier.wait(timeout=10)
                begin_write()  # SQLite: one writer at a time (as every POST request does)
                joining.sign_up(f"c{i}@example.org", f"C{i}", "c-password-1", datetime.now(UTC))
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with app.app_context():
        numbers = list(db.session.scalars(select(Member.member_no)))
    assert not errors, errors
    assert len(numbers) == n and len(set(numbers)) == n
