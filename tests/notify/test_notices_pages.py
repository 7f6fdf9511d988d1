"""The member's side of notices: the list and its ownership, marking read (CSRF), the top bar's count (which
must not keep a session alive), the preferences, one-click unsubscribe, and the daily digest's timing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from fablab.extensions import db
from fablab.models import MemberSession, Role
from fablab.models.notifications import Notice, NoticePreference, NoticeSettings, OutboxMail
from fablab.models.types import utcnow
from fablab.services import digest, notify
from fablab.services.notice_render import render
from fablab.worker.jobs import JOBS, run_jobs
from tests.conftest import csrf_token, login
from tests.support.clock import BERLIN, CLOCKS

START = "2026-06-10T12:00:00+00:00"


def _tell(member, machine="Laser One", *, now=None, kind="booking_confirmed", link="/bookings"):
    n = notify.notify(member, kind, {"machine": machine, "start": START, "end": START}, now=now or utcnow(),
                      link=link)
    db.session.commit()
    assert n is not None
    return n


@pytest.fixture
def two(make_member):
    ada = make_member("ada@example.org", name="Ada Lovelace")
    bo = make_member("bo@example.org", name="Bo Berg")
    return ada, bo


def test_a_member_sees_and_marks_only_their_own_notices(client, two) -> None:
    ada, bo = two
    mine = _tell(ada, "Ada's Laser")
    theirs = _tell(bo, "Bo's Lathe")
    login(client, "ada@example.org")
    page = client.get("/notices").get_data(as_text=True)
    assert "Ada&#39;s Laser" in page and "Bo&#39;s Lathe" not in page
    assert f'data-notice="{mine.id}"' in page and f'data-notice="{theirs.id}"' not in page
    token = csrf_token(client, "/notices")
    resp = client.post(f"/notices/{theirs.id}/read", data={"csrf_token": token})
    assert resp.status_code == 404
    assert db.session.get(Notice, theirs.id).read_at is None
    resp = client.post(f"/notices/{mine.id}/read", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert resp.status_code == 200 and resp.headers["HX-Trigger"] == "notices-changed"
    assert "Mark read" not in resp.get_data(as_text=True)
    assert db.session.get(Notice, mine.id).read_at is not None
    # "mark all" marks only hers
    _tell(ada, "Second")
    assert client.post("/notices/read-all", data={"csrf_token": token}).status_code == 302
    assert db.session.scalar(select(Notice).where(Notice.member_id == ada.id, Notice.read_at.is_(None))) is None
    assert db.session.get(Notice, theirs.id).read_at is None


def test_marking_read_needs_the_csrf_token(client, two) -> None:
    ada, _ = two
    n = _tell(ada)
    login(client, "ada@example.org")
    assert client.post(f"/notices/{n.id}/read").status_code == 400
    assert client.post("/notices/read-all").status_code == 400
    assert db.session.get(Notice, n.id).read_at is None


def test_list_is_paginated_newest_first_with_an_empty_state(client, two) -> None:
    ada, _ = two
    login(client, "ada@example.org")
    empty = client.get("/notices").get_data(as_text=True)
    assert "No notices yet" in empty and "waitlist offers" in empty
    base = utcnow() - timedelta(hours=1)
    for i in range(25):
        _tell(ada, f"Machine {i:02d}", now=base + timedelta(minutes=i))
    first = client.get("/notices").get_data(as_text=True)
    assert first.index("Machine 24") < first.index("Machine 23") and "Machine 04" not in first
    assert "Page 1 of 2" in first
    second = client.get("/notices?page=2").get_data(as_text=True)
    assert "Machine 04" in second and "Machine 24" not in second
    assert client.get("/notices?page=abc").status_code == 400


def test_count_partial_is_live_and_does_not_keep_the_session_alive(client, two) -> None:
    ada, _ = two
    _tell(ada)
    _tell(ada, "Printer")
    login(client, "ada@example.org")
    body = client.get("/notices/count").get_data(as_text=True)
    assert "2 unread notices" in body
    page = client.get("/notices").get_data(as_text=True)
    assert 'hx-trigger="load, every 30s' in page and 'aria-live="polite"' in page and "2 unread notices" in page
    # The poll is not activity: last_seen_at stays where it was.
    row = db.session.scalar(select(MemberSession).where(MemberSession.member_id == ada.id))
    old = utcnow() - timedelta(minutes=10)
    row.last_seen_at = old
    db.session.commit()
    for _ in range(3):
        assert "2 unread notices" in client.get("/notices/count", headers={"HX-Request": "true"}).get_data(as_text=True)
    db.session.refresh(row)
    assert abs((row.last_seen_at - old).total_seconds()) < 1
    client.get("/notices")  # a real page view is activity
    db.session.refresh(row)
    assert row.last_seen_at > old + timedelta(minutes=5)
    n = db.session.scalars(select(Notice).where(Notice.member_id == ada.id)).first()
    client.post(f"/notices/{n.id}/read", data={"csrf_token": csrf_token(client, "/notices")})
    assert "1 unread notice<" in client.get("/notices/count").get_data(as_text=True)


def test_count_when_signed_out_stops_polling(client, two) -> None:
    resp = client.get("/notices/count", headers={"HX-Request": "true"})
    assert resp.status_code == 286 and resp.get_data() == b""
    assert client.get("/notices/count").status_code == 302
    login(client, "ada@example.org")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/notices")})
    assert client.get("/notices/count", headers={"HX-Request": "true"}).status_code == 286


def _prefs_form(client) -> dict[str, str]:
    page = client.get("/notices/preferences").get_data(as_text=True)
    data = {"csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)}
    for name in re.findall(r'<select[^>]*name="(kind_\w+)"', page):
        data[name] = "email"
    data.update(reminder_minutes="60", digest_hour="7")
    return data


def test_preferences_round_trip_and_refusals_in_place(client, two, make_member) -> None:
    ada, _ = two
    login(client, "ada@example.org")
    page = client.get("/notices/preferences").get_data(as_text=True)
    assert "Bookings" in page and "Waitlist" in page
    assert 'name="kind_booking_cancelled_by_staff"' not in page and "Always email and in-app" in page
    assert "machine for nothing" in page or "no longer yours" in page  # the safety kind says why
    assert "kind_machine_alarm" not in page and "kind_fairness_weekly" not in page  # staff kinds: staff only
    data = _prefs_form(client)
    data.update(kind_booking_confirmed="app", kind_window_result="off", reminder_minutes="30", digest="y",
                digest_hour="18", kind_booking_cancelled_by_staff="off")
    resp = client.post("/notices/preferences", data=data)
    assert resp.status_code == 302
    assert db.session.get(NoticePreference, (ada.id, "booking_confirmed")).channel == "app"
    assert db.session.get(NoticePreference, (ada.id, "window_result")).channel == "off"
    assert db.session.get(NoticePreference, (ada.id, "booking_cancelled_by_staff")) is None  # ignored
    s = db.session.get(NoticeSettings, ada.id)
    assert (s.reminder_minutes, s.digest, s.digest_hour) == (30, True, 18)
    page = client.get("/notices/preferences").get_data(as_text=True)
    assert re.search(r'name="kind_booking_confirmed">.*?<option selected value="app">', page, re.S)
    assert '<option selected value="30">' in page and '<option selected value="18">' in page
    # bad values: refused in place, nothing changes
    bad = dict(data, kind_booking_confirmed="loud", reminder_minutes="45", digest_hour="25")
    resp = client.post("/notices/preferences", data=bad)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422 and body.count('class="error"') >= 3 and "Not a valid choice" in body
    assert db.session.get(NoticePreference, (ada.id, "booking_confirmed")).channel == "app"
    assert db.session.get(NoticeSettings, ada.id).reminder_minutes == 30
    # stewards choose steward kinds too
    make_member("st@example.org", role=Role.STEWARD)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/notices")})
    login(client, "st@example.org")
    page = client.get("/notices/preferences").get_data(as_text=True)
    assert "kind_machine_alarm" in page and "kind_fairness_weekly" not in page


def test_one_click_unsubscribe_without_a_session(app, two) -> None:
    ada, _ = two
    token = notify.unsubscribe_token(ada.id, "booking_reminder")
    mail_client = app.test_client()  # no cookie, no CSRF token: as a mail provider posts it (RFC 8058)
    resp = mail_client.post(f"/notices/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    assert db.session.get(NoticePreference, (ada.id, "booking_reminder")).channel == "app"
    n = notify.notify(ada, "booking_reminder", {}, now=utcnow())
    assert n is not None and n.email_state == "none"  # still in-app, no mail


def test_unsubscribe_page_asks_then_stops(app, two) -> None:
    ada, _ = two
    token = notify.unsubscribe_token(ada.id, "window_result")
    browser = app.test_client()
    page = browser.get(f"/notices/unsubscribe/{token}").get_data(as_text=True)
    assert "Stop mails about “Request window result”?" in page and "/notices/preferences" in page
    assert db.session.get(NoticePreference, (ada.id, "window_result")) is None
    assert browser.post(f"/notices/unsubscribe/{token}", data={}).status_code == 400  # neither one-click nor form
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = browser.post(f"/notices/unsubscribe/{token}", data={"csrf_token": form_token})
    assert resp.status_code == 200 and "no more mails" in resp.get_data(as_text=True)
    assert db.session.get(NoticePreference, (ada.id, "window_result")).channel == "app"


def test_forged_token_is_a_400_that_says_what_to_do(app, two) -> None:
    ada, _ = two
    token = notify.unsubscribe_token(ada.id, "booking_reminder")
    c = app.test_client()
    for bad in (token[:-3] + "abc", "garbage", notify.unsubscribe_token(999999, "booking_reminder")):
        for resp in (c.get(f"/notices/unsubscribe/{bad}"),
                     c.post(f"/notices/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"})):
            body = resp.get_data(as_text=True)
            assert resp.status_code == 400 and "link is broken" in body and "preferences" in body
    assert db.session.scalar(select(NoticePreference)) is None


def test_safety_kind_cannot_be_unsubscribed(app, two) -> None:
    ada, _ = two
    token = notify.unsubscribe_token(ada.id, "booking_cancelled_by_staff")
    c = app.test_client()
    page = c.get(f"/notices/unsubscribe/{token}").get_data(as_text=True)
    assert "cannot be stopped" in page and "no longer yours" in page and "<form" not in page.split("<main", 1)[1]
    resp = c.post(f"/notices/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 409
    assert db.session.get(NoticePreference, (ada.id, "booking_cancelled_by_staff")) is None


# --- the daily digest ------------------------------------------------------------------------------------


def _digest_member(make_member, hour: int):
    m = make_member()
    db.session.add(NoticeSettings(member_id=m.id, reminder_minutes=60, digest=True, digest_hour=hour))
    db.session.commit()
    return m


def _held(member, at: datetime, machine: str = "Laser One") -> Notice:
    n = _tell(member, machine, now=at - timedelta(hours=3))
    assert n.email_state == "digest"
    return n


def _digests(member) -> list[OutboxMail]:
    return list(db.session.scalars(select(OutboxMail).where(OutboxMail.member_id == member.id,
                                                            OutboxMail.kind == "digest").order_by(OutboxMail.id)))


def _run(now: datetime) -> None:
    digest.send_digests(now.astimezone(UTC))
    db.session.commit()


def test_digest_once_a_day_at_the_hour_in_the_spring_gap(make_member) -> None:
    # 2026-03-29 02:00 does not exist in Berlin: the digest of hour 2 goes out when the clock jumps (03:00 CEST).
    m = _digest_member(make_member, 2)
    before, after = CLOCKS["dst-spring-0130"], CLOCKS["dst-spring-0330"]
    first = _held(m, before)
    _run(before)
    assert _digests(m) == []
    _run(datetime(2026, 3, 29, 1, 0, tzinfo=UTC))  # 03:00 CEST, the first instant past the gap
    (mail,) = _digests(m)
    assert mail.params["notice_ids"] == [first.id]
    assert "Laser One" in mail.params["items"][0]["summary"]
    assert db.session.get(Notice, first.id).email_state == "digested"
    _held(m, after, "Printer")
    _run(after)
    _run(datetime(2026, 3, 29, 23, 59, tzinfo=BERLIN))
    assert len(_digests(m)) == 1  # once a day
    _run(datetime(2026, 3, 30, 1, 59, tzinfo=BERLIN))
    assert len(_digests(m)) == 1
    _run(datetime(2026, 3, 30, 2, 0, tzinfo=BERLIN))
    assert len(_digests(m)) == 2 and "Printer" in _digests(m)[1].params["items"][0]["summary"]


def test_digest_once_in_the_repeated_autumn_hour(make_member) -> None:
    # 2026-10-25 02:00-03:00 happens twice in Berlin: the digest goes at the first 02:00, not again at the second.
    m = _digest_member(make_member, 2)
    second_pass = CLOCKS["dst-fall"]  # 02:30 CET, 01:30 UTC
    _held(m, second_pass)
    _run(datetime(2026, 10, 24, 23, 59, tzinfo=UTC))  # 01:59 CEST
    assert _digests(m) == []
    _run(datetime(2026, 10, 25, 0, 0, tzinfo=UTC))  # 02:00 CEST, the first pass
    assert len(_digests(m)) == 1
    _held(m, second_pass, "Printer")
    _run(second_pass)
    _run(datetime(2026, 10, 25, 1, 0, tzinfo=UTC))  # 02:00 CET, the second pass
    assert len(_digests(m)) == 1
    _run(datetime(2026, 10, 26, 2, 0, tzinfo=BERLIN))
    assert len(_digests(m)) == 2


@pytest.mark.parametrize("name", ["year-end", "new-year", "sunday"])
def test_digest_at_the_local_hour_not_the_utc_one(make_member, name: str) -> None:
    at = CLOCKS[name]
    m = _digest_member(make_member, at.hour)
    _held(m, at)
    _run(at - timedelta(minutes=31))  # the previous local hour
    assert _digests(m) == []
    _run(at)
    _run(at + timedelta(minutes=20))
    assert len(_digests(m)) == 1


def test_digest_job_row_mail_text_and_in_app_only_digest(make_member) -> None:
    assert "send_digests" in {j.name for j in JOBS}
    at = datetime(2026, 6, 10, 7, 5, tzinfo=BERLIN)
    m = _digest_member(make_member, 7)
    a, b = _held(m, at), _held(m, at, "Printer")
    results = run_jobs(at.astimezone(UTC), ["send_digests"])
    assert results["send_digests"] == 1
    (mail,) = _digests(m)
    assert mail.params["notice_ids"] == [a.id, b.id]
    out = render("digest", mail.params, m)
    assert "2 notices" in out.subject and "Laser One" in out.text and "Printer" in out.text
    assert "/bookings" in out.text
    # a member who set the digest itself to in-app only gets no mail; the notices stay in-app
    quiet = _digest_member(make_member, 7)
    db.session.add(NoticePreference(member_id=quiet.id, kind="digest", channel="app"))
    db.session.commit()
    n = _held(quiet, at)
    _run(at + timedelta(minutes=1))
    assert _digests(quiet) == [] and db.session.get(Notice, n.id).email_state == "none"


def test_turning_the_digest_on_waits_for_the_next_hour_and_off_sends_the_held(client, make_member) -> None:
    m = make_member("dd@example.org")
    login(client, "dd@example.org")
    data = _prefs_form(client)
    data.update(digest="y", digest_hour="7")
    assert client.post("/notices/preferences", data=data).status_code == 302
    assert db.session.get(NoticeSettings, m.id).last_digest_at is not None
    n = _tell(m)
    assert n.email_state == "digest"
    _run(utcnow())  # turned on just now: nothing goes out before the next 07:00
    assert _digests(m) == []
    data.pop("digest")
    assert client.post("/notices/preferences", data=data).status_code == 302
    _run(utcnow())  # turned off: what was held goes out at once
    assert len(_digests(m)) == 1 and db.session.get(Notice, n.id).email_state == "digested"


def test_a_notice_that_cannot_render_still_lists(client, two) -> None:
    ada, _ = two
    db.session.add(Notice(member_id=ada.id, kind="gone_kind", params={"x": 1}, created_at=utcnow(),
                          email_state="none"))
    db.session.commit()
    login(client, "ada@example.org")
    resp = client.get("/notices")
    assert resp.status_code == 200 and "Gone kind" in resp.get_data(as_text=True)
