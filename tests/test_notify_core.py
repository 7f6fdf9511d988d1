"""The notification core: a notice and its mail are rows in the caller's transaction; preferences hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from fablab.domain.backoff import RETRY_BUDGET, next_attempt, retry_delay
from fablab.domain.notice_kinds import KINDS, Channel, effective_channel, kind
from fablab.extensions import db
from fablab.models.notifications import Notice, NoticePreference, NoticeSettings, OutboxMail
from fablab.services import notify

NOW = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_backoff_grows_caps_and_gives_up():
    assert retry_delay(1, "a").total_seconds() >= 30
    assert retry_delay(2, "a") > retry_delay(1, "a")
    assert retry_delay(30, "a").total_seconds() <= 3600 * 1.25
    assert next_attempt(RETRY_BUDGET, NOW) is None
    assert next_attempt(1, NOW, "x") == NOW + retry_delay(1, "x")
    with pytest.raises(ValueError):
        retry_delay(0)


def test_safety_kinds_cannot_be_turned_off():
    k = kind("booking_cancelled_by_staff")
    assert effective_channel(k, Channel.OFF) is Channel.EMAIL
    assert effective_channel(kind("booking_confirmed"), Channel.OFF) is Channel.OFF
    assert len({k.name for k in KINDS}) == len(KINDS)
    with pytest.raises(ValueError):
        kind("nope")


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_notice_and_mail_commit_or_roll_back_with_the_change(make_member):
    m = make_member()
    db.session.commit()
    notify.notify(m, "booking_confirmed", {"machine": "Laser"}, now=NOW)
    db.session.rollback()
    assert _count(Notice) == 0 and _count(OutboxMail) == 0
    n = notify.notify(m, "booking_confirmed", {"machine": "Laser"}, now=NOW, dedupe_key="b1")
    db.session.commit()
    assert n is not None and n.email_state == "queued"
    mail = db.session.scalars(select(OutboxMail)).one()
    assert mail.to_address == m.email and mail.message_id.startswith("<") and mail.status == "pending"
    assert notify.notify(m, "booking_confirmed", {}, now=NOW, dedupe_key="b1") is None


def test_preferences_app_only_off_and_digest(make_member):
    m = make_member()
    db.session.add_all([NoticePreference(member_id=m.id, kind="booking_changed", channel="app"),
                        NoticePreference(member_id=m.id, kind="booking_confirmed", channel="off"),
                        NoticePreference(member_id=m.id, kind="booking_cancelled_by_staff", channel="off"),
                        NoticeSettings(member_id=m.id, reminder_minutes=30, digest=True, digest_hour=7)])
    db.session.commit()
    assert notify.notify(m, "booking_confirmed", {}, now=NOW) is None
    assert notify.notify(m, "booking_changed", {}, now=NOW).email_state == "none"
    assert notify.notify(m, "booking_cancelled_by_staff", {}, now=NOW).email_state == "queued"
    assert notify.notify(m, "window_result", {}, now=NOW).email_state == "digest"
    assert notify.notify(m, "waitlist_offer", {}, now=NOW).email_state == "queued"  # urgent: never held


def test_unsubscribe_token_round_trip_and_forgery(app_ctx):
    t = notify.unsubscribe_token(7, "booking_reminder")
    assert notify.read_unsubscribe_token(t) == (7, "booking_reminder")
    assert notify.read_unsubscribe_token(t[:-2] + "xx") is None
    assert notify.read_unsubscribe_token("garbage") is None


def test_render_blocks_and_escaped_html_fallback(make_member):
    from fablab.services.notice_render import render

    m = make_member(name="Ada")
    r = render("booking_confirmed", {"machine": "<b>Laser</b>", "start": "2026-03-29T00:30:00+00:00",
                                     "end": "2026-03-29T02:00:00+00:00"}, m, "/bookings/1")
    assert r.subject == "Booked: <b>Laser</b>, Sun 29 Mar, 01:30"  # Berlin: before the switch to summer time
    assert "04:00" in r.summary  # after it
    assert "Hello Ada" in r.text and "http://localhost:5000/bookings/1" in r.text
    assert "<b>" not in r.html and "&lt;b&gt;Laser" in r.html
