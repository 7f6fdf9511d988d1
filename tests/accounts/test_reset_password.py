"""Password reset by mail, end to end with the real SMTP server: the same answer (and time) for an unknown
address, a single-use one-hour link, a newer link superseding older ones, every session ended afterwards."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from fablab.extensions import db
from fablab.log_redaction import redact
from fablab.models import MemberSession
from fablab.models.notifications import Notice, OutboxMail
from fablab.services import password_reset
from fablab.web.join.routes import ANSWER_FLOOR_SECONDS
from tests.accounts import test_join_flows as flows
from tests.accounts.test_join_flows import deliver, form_token, hidden_token, link_in
from tests.conftest import login

mail_lab = flows.mail_lab  # the fixture: the lab mails through the test's SMTP server


def ask(client, email: str):
    page = client.get("/join/forgot").get_data(as_text=True)
    started = time.monotonic()
    resp = client.post("/join/forgot", data={"csrf_token": form_token(page), "email": email})
    return resp, time.monotonic() - started


def choose(client, path: str, password: str):
    page = client.get(path).get_data(as_text=True)
    return client.post("/join/reset", data={"csrf_token": form_token(page), "token": hidden_token(page),
                                            "password": password})


def test_reset_ends_every_session_old_password_fails_new_one_works(app, client, mail_lab, make_member) -> None:
    ada = make_member("ada@example.org", name="Ada")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, "ada@example.org")
    login(phone, "ada@example.org")
    assert laptop.get("/account").status_code == 200
    assert "Forgot password?" in client.get("/login").get_data(as_text=True)
    resp, _ = ask(client, "ADA@example.org ")
    assert resp.status_code == 200 and "If an account has this address" in resp.get_data(as_text=True)
    msg = deliver(mail_lab, 1)[0]
    assert "Reset your" in msg["Subject"]
    path, token = link_in(msg)
    assert redact(f"GET {path} HTTP/1.1") == "GET /join/reset?token=[redacted] HTTP/1.1"  # not in request logs
    db.session.expire_all()
    assert all(token not in str(m.params) for m in db.session.scalars(select(OutboxMail)))

    form = client.get(path)
    assert form.status_code == 200 and form.headers["Referrer-Policy"] == "no-referrer"
    short = client.post("/join/reset", data={"csrf_token": form_token(form.get_data(as_text=True)),
                                             "token": token, "password": "short"})
    assert short.status_code == 422 and "At least 10 characters" in short.get_data(as_text=True)
    done = choose(client, path, "a-brand-new-password")
    assert done.status_code == 302 and client.get("/account").status_code == 200  # signed in by the reset
    assert laptop.get("/account").status_code == 302 and phone.get("/account").status_code == 302  # ended
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(MemberSession)) == 1  # only the new one
    assert login(app.test_client(), "ada@example.org").status_code == 401  # the old password
    assert login(app.test_client(), "ada@example.org", "a-brand-new-password").status_code == 302
    told = db.session.scalar(select(Notice).where(Notice.member_id == ada.id, Notice.kind == "account_changed"))
    assert told.params["change"] == "password"

    reused = app.test_client().get(path)
    assert reused.status_code == 410 and "already used" in reused.get_data(as_text=True)
    assert "Ask for a new link" in reused.get_data(as_text=True)


def test_unknown_address_gets_the_same_answer_in_the_same_time(app, client, mail_lab, make_member) -> None:
    make_member("ada@example.org")
    known, t_known = ask(client, "ada@example.org")
    unknown, t_unknown = ask(app.test_client(), "nobody@example.org")

    def strip(html: str) -> str:
        return re.sub(r'"X-CSRFToken": "[^"]+"', "", html)

    assert known.status_code == unknown.status_code == 200
    assert strip(known.get_data(as_text=True)) == strip(unknown.get_data(as_text=True))
    assert t_known >= ANSWER_FLOOR_SECONDS and t_unknown >= ANSWER_FLOOR_SECONDS
    assert abs(t_known - t_unknown) < ANSWER_FLOOR_SECONDS / 2
    assert [m.to_address for m in db.session.scalars(select(OutboxMail))] == ["ada@example.org"]


def test_a_newer_link_supersedes_the_older_one(app, client, mail_lab, make_member) -> None:
    make_member("ada@example.org")
    ask(client, "ada@example.org")
    ask(client, "ada@example.org")
    mails = deliver(mail_lab, 2)
    old_path, _ = link_in(mails[0])
    new_path, _ = link_in(mails[1])
    old = client.get(old_path)
    assert old.status_code == 410 and "replaced by a newer one" in old.get_data(as_text=True)
    assert choose(client, new_path, "the-newest-password").status_code == 302


def test_an_expired_or_forged_link_changes_nothing(app, client, mail_lab, make_member) -> None:
    ada = make_member("ada@example.org")
    hash_before = ada.password_hash
    now = datetime.now(UTC)
    password_reset.request_reset("ada@example.org", now)
    db.session.commit()
    path, token = link_in(deliver(mail_lab, 1)[0])
    with time_machine.travel(now + timedelta(hours=1, seconds=1), tick=False):
        page = client.get(path)
        assert page.status_code == 410 and "expired" in page.get_data(as_text=True)
    with time_machine.travel(now + timedelta(minutes=59), tick=False):
        form = client.get(path).get_data(as_text=True)  # still inside the hour: the form
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        late = client.post("/join/reset", data={"csrf_token": form_token(form), "token": token,
                                                "password": "too-late-password"})
        assert late.status_code == 410
    fresh = form_token(client.get("/join/forgot").get_data(as_text=True))  # (the cookie above is from the future)
    forged = client.post("/join/reset", data={"csrf_token": fresh, "token": "Z" * 43,
                                              "password": "forged-password"})
    assert forged.status_code == 404 and "not valid" in forged.get_data(as_text=True)
    db.session.refresh(ada)
    assert ada.password_hash == hash_before
    assert login(app.test_client(), "ada@example.org").status_code == 302


def test_forgot_password_is_throttled_per_source(app, client, mail_lab, make_member) -> None:
    make_member("ada@example.org")
    for _ in range(5):
        assert ask(client, "ada@example.org")[0].status_code == 200
    spent, _ = ask(client, "ada@example.org")
    assert spent.status_code == 429 and "Too many requests" in spent.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 5
